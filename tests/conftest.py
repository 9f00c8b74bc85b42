"""Shared fixtures: real sample photos, real catalogue models, synthetic model specs."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from autotags import Tagger, load_catalogue
from autotags.models.catalogue import DecodeSettings, InputSettings, ModelSpec

DARKNET_DATA = Path("/usr/share/darknet/data")
OPENCV_DOCS = Path("/usr/share/doc/opencv-doc")  # Debian opencv-doc: sample and tutorial photos
OPENCV_DATA = OPENCV_DOCS / "examples" / "data"
COCO80 = load_catalogue().get("ssd-mobilenet-v2").labels


def _skimage_data() -> Path:
    found = importlib.util.find_spec("skimage")
    assert found is not None and found.origin, "scikit-image is a test dependency"
    return Path(found.origin).parent / "data"


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos from scikit-image and Debian's darknet package."""
    skimage_data = _skimage_data()
    found = {
        "astronaut": skimage_data / "astronaut.png",
        "cat": skimage_data / "chelsea.png",
        "coffee": skimage_data / "coffee.png",
        **{name: DARKNET_DATA / f"{name}.jpg"
           for name in ("dog", "horses", "giraffe", "person", "eagle", "kite")},
    }
    missing = [str(p) for p in found.values() if not p.is_file()]
    assert not missing, f"sample photos missing (install Debian's darknet package): {missing}"
    return found


@pytest.fixture(scope="session")
def detector() -> Tagger:
    return Tagger("ssd-mobilenet-v2", precision="f32")


@pytest.fixture(scope="session")
def classifier() -> Tagger:
    return Tagger("efficientnet-lite3", precision="f32")


@pytest.fixture()
def vips_cli() -> str:
    path = shutil.which("vips")
    assert path, "the vips command (Debian libvips-tools) is a test dependency"
    return path


def local_spec(path: Path, *, name: str = "synthetic", kind: str = "detector",
               output: str = "yolo", labels: tuple[str, ...] = COCO80,
               input_settings: InputSettings | None = None,
               decode: DecodeSettings | None = None,
               threshold: tuple[float, float] = (32, 88)) -> ModelSpec:
    """A catalogue entry for a model file made by a test."""
    return ModelSpec(
        name=name, title=name, description="made by a test", kind=kind,  # type: ignore[arg-type]
        output=output, labels=labels, label_ids=None,  # type: ignore[arg-type]
        threshold_min=threshold[0], threshold_max=threshold[1],
        input=input_settings or InputSettings(640, 640, scale=(255.0,)),
        decode=decode or DecodeSettings(), local_file=path,
    )


@pytest.fixture(autouse=True, scope="session")
def _quiet_openvino_cache() -> None:
    os.environ.setdefault("OV_LOG_LEVEL", "ERROR")
