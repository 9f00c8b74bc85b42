"""Where the real photos the tests use come from: Debian packages and scikit-image."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DARKNET_DATA = Path("/usr/share/darknet/data")
OPENCV_DOCS = Path("/usr/share/doc/opencv-doc")  # Debian opencv-doc: sample and tutorial photos
OPENCV_DATA = OPENCV_DOCS / "examples" / "data"


def skimage_data() -> Path:
    found = importlib.util.find_spec("skimage")
    assert found is not None and found.origin, "scikit-image is a test dependency"
    return Path(found.origin).parent / "data"
