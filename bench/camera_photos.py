"""Reproducible 12-megapixel camera-like JPEGs made from real photos.

Real photos (Debian's darknet samples, scikit-image's data) are scaled up to 4000x3000 and
given sensor-like grain, so that they decode like camera files (3-5 MB, full of detail)
while still showing real objects. Same arguments, same bytes.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

CAMERA_SIZE = (4000, 3000)
GRAIN_SIGMA = 6.0
JPEG_QUALITY = 92


def source_photos() -> list[Path]:
    darknet = Path("/usr/share/darknet/data")
    found = sorted(darknet.glob("*.jpg"))
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.origin:
        data = Path(spec.origin).parent / "data"
        found += [data / name for name in ("astronaut.png", "chelsea.png", "coffee.png",
                                           "rocket.jpg") if (data / name).is_file()]
    if not found:
        raise RuntimeError("no source photos: install Debian's darknet package or scikit-image")
    return found


def make_camera_photo(source: Path, target: Path, seed: int) -> Path:
    image = Image.open(source).convert("RGB")
    if image.height > image.width:
        image = image.rotate(90, expand=True)
    image = image.resize(CAMERA_SIZE, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * GRAIN_SIGMA
    grainy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    grainy.save(target, "JPEG", quality=JPEG_QUALITY)
    return target


def camera_photos(directory: Path, count: int = 48) -> list[Path]:
    """`count` photos in `directory`, made once and reused afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = source_photos()
    paths = []
    for index in range(count):
        path = directory / f"IMG_{index:04d}.jpg"
        if not path.is_file():
            partial = path.with_suffix(".partial")
            make_camera_photo(sources[index % len(sources)], partial, seed=index)
            partial.rename(path)
        paths.append(path)
    log.info("%d camera-like photos in %s", count, directory)
    return paths
