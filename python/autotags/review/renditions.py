"""Thumbnails and screen-sized copies of photos, made by the engine (libvips
shrink-on-load, camera RAW previews, EXIF orientation) and kept in the per-user cache,
keyed by the file's identity: an edited photo gets new ones."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import _engine, locations
from ..collection.files import current_state
from ..collection.store import ImageRecord
from ..outputs.file_replacement import replace_atomically

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320      # long side, pixels: sharp in a grid on a high-density screen
VIEW_SIDE = 1600          # long side of the copy shown on a photo's page
JPEG_QUALITY = 85
MAX_SOURCE_PIXELS = 300_000_000
BACKGROUND = (40, 40, 40)  # around a thumbnail whose proportions are not known

PLACEHOLDER = b"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 3" width="320"
height="240"><rect width="4" height="3" fill="#3a3a3a"/><path d="M1.4 1.1 2.6 1.9M2.6 1.1 1.4 1.9"
stroke="#999" stroke-width=".12"/></svg>"""


@dataclass(frozen=True)
class Rendition:
    content: bytes
    media_type: str   # image/jpeg, or image/svg+xml for the placeholder
    problem: str | None = None  # why the photo could not be shown


class Renditions:
    """Makes and caches copies of photos at a few sizes; at most one decode per core at
    a time, so that a page of thumbnails does not starve the machine."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or locations.cache_home() / "thumbnails"
        self._decoders = threading.BoundedSemaphore(len(os.sched_getaffinity(0)))

    def thumbnail(self, image: ImageRecord) -> Rendition:
        return self._rendition(image, THUMBNAIL_SIDE)

    def view(self, image: ImageRecord) -> Rendition:
        return self._rendition(image, VIEW_SIDE)

    def _rendition(self, image: ImageRecord, side: int) -> Rendition:
        state = current_state(image.path)
        if state is None:
            return Rendition(PLACEHOLDER, "image/svg+xml", "the file is gone")
        key = hashlib.sha256(b"\0".join([
            os.fsencode(image.path), str(state.size).encode(), str(state.mtime_ns).encode(),
            str(side).encode()])).hexdigest()
        cached = self.folder / key[:2] / f"{key}.jpg"
        try:
            return Rendition(cached.read_bytes(), "image/jpeg")
        except OSError:
            pass
        try:
            with self._decoders:
                content = _encoded(image, side)
        except (_engine.ImageError, OSError, ValueError) as error:
            log.debug("cannot show %s: %s", image.path, error)
            return Rendition(PLACEHOLDER, "image/svg+xml", str(error))
        self._keep(cached, content)
        return Rendition(content, "image/jpeg")

    @staticmethod
    def _keep(cached: Path, content: bytes) -> None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(cached, content)
        except OSError as error:  # a full or read-only cache only costs speed
            log.debug("cannot cache %s: %s", cached, error)


def fitted_size(width: int, height: int, side: int) -> tuple[int, int]:
    """Within `side` on the long edge, proportions kept, never enlarged."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encoded(image: ImageRecord, side: int) -> bytes:
    from PIL import Image

    fit = _engine.InputFit()
    if image.width and image.height:
        fit.width, fit.height = fitted_size(image.width, image.height, side)
        fit.mode = _engine.ResizeMode.stretch  # to its own proportions: nothing stretched
    else:
        fit.width = fit.height = side
        fit.mode = _engine.ResizeMode.letterbox
        fit.pad_colour = list(BACKGROUND)
    pixels, _, _ = _engine.load_image(os.fsencode(image.path), fit, MAX_SOURCE_PIXELS)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
