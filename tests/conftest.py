"""Shared fixtures: real sample photos and real catalogue models. What tests import
lives in the package `helpers`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autotags import Tagger
from helpers.photo_sources import DARKNET_DATA, skimage_data


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos from scikit-image and Debian's darknet package."""
    found = {
        "astronaut": skimage_data() / "astronaut.png",
        "cat": skimage_data() / "chelsea.png",
        "coffee": skimage_data() / "coffee.png",
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


@pytest.fixture(autouse=True, scope="session")
def _quiet_openvino_cache() -> None:
    os.environ.setdefault("OV_LOG_LEVEL", "ERROR")
