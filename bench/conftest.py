"""Shared benchmark fixtures: camera-like photos and a ready model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from autotags import locations
from camera_photos import camera_photos
from pipelines import Bench

IMAGES = int(os.environ.get("AUTOTAGS_BENCH_IMAGES", "48"))
MODEL = os.environ.get("AUTOTAGS_BENCH_MODEL", "ssd-mobilenet-v2")


@pytest.fixture(scope="session")
def bench() -> Bench:
    return Bench(MODEL, camera_photos(locations.cache_home() / "bench-photos", IMAGES))
