"""DNG files written with the standard library and numpy, the way cameras and converters
lay them out: IFD0 holds a JPEG preview (and the DNG tags), a SubIFD the raw CFA data.

The raw data is a real photo mosaiced into an RGGB Bayer pattern at twice its size, in
linear light, with a colour matrix that makes the camera's primaries sRGB's: LibRaw's
half-size processing gives the photo back."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .sample_files import STORE_FOR_ORIENTATION

# XYZ (D65) -> linear sRGB: a DNG ColorMatrix maps XYZ to the camera's space.
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))

BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL = 1, 2, 3, 4, 5, 10
_FORMATS = {BYTE: "B", ASCII: "c", SHORT: "H", LONG: "I", RATIONAL: "II", SRATIONAL: "ii"}


def stored_for(displayed: Image.Image, orientation: int) -> Image.Image:
    transpose = STORE_FOR_ORIENTATION[orientation]
    return displayed.transpose(transpose) if transpose is not None else displayed


def bayer_mosaic(stored: Image.Image) -> np.ndarray:
    """RGGB data at twice the size of `stored`, 16-bit linear."""
    linear = (np.asarray(stored.convert("RGB"), dtype=np.float64) / 255.0) ** 2.2
    values = np.round(linear * 65535).astype(np.uint16)
    height, width, _ = values.shape
    mosaic = np.empty((height * 2, width * 2), dtype=np.uint16)
    mosaic[0::2, 0::2] = values[:, :, 0]
    mosaic[0::2, 1::2] = values[:, :, 1]
    mosaic[1::2, 0::2] = values[:, :, 1]
    mosaic[1::2, 1::2] = values[:, :, 2]
    return mosaic


class _Tiff:
    """A little-endian TIFF assembled in memory: data blocks first, then the IFDs."""

    def __init__(self) -> None:
        self.data = bytearray(b"II*\x00\x00\x00\x00\x00")

    def append(self, block: bytes) -> int:
        if len(self.data) % 2:
            self.data += b"\x00"
        offset = len(self.data)
        self.data += block
        return offset

    def ifd(self, entries: dict[int, tuple[int, object]], next_ifd: int = 0) -> int:
        """Writes an IFD (entries: tag -> (type, values)); returns its offset."""
        encoded = []
        for tag in sorted(entries):
            kind, values = entries[tag]
            if kind == ASCII:
                raw = str(values).encode() + b"\x00"
                count = len(raw)
            else:
                items = list(values) if isinstance(values, list | tuple) else [values]
                flat = [v for item in items for v in (item if isinstance(item, tuple) else (item,))]
                raw = struct.pack("<" + _FORMATS[kind][0] * len(flat), *flat)
                count = len(items)
            field = raw.ljust(4, b"\x00") if len(raw) <= 4 else \
                struct.pack("<I", self.append(raw))
            encoded.append(struct.pack("<HHI", tag, kind, count) + field)
        return self.append(struct.pack("<H", len(encoded)) + b"".join(encoded) +
                           struct.pack("<I", next_ifd))

    def finish(self, first_ifd: int) -> bytes:
        self.data[4:8] = struct.pack("<I", first_ifd)
        return bytes(self.data)


def write_dng(path: Path, displayed: Image.Image, orientation: int = 1, *,
              preview_size: tuple[int, int] | None = None, preview: bool = True) -> Path:
    """A DNG of `displayed` (the upright picture) stored under EXIF `orientation`; the
    sensor is twice the picture's size. The preview is the stored picture, or scaled to
    `preview_size` (a preview too small for a model); without `preview`, IFD0 holds the
    raw data itself."""
    stored = stored_for(displayed.convert("RGB"), orientation)
    mosaic = bayer_mosaic(stored)
    tiff = _Tiff()
    raw_offset = tiff.append(mosaic.astype("<u2").tobytes())
    height, width = mosaic.shape
    raw_entries: dict[int, tuple[int, object]] = {
        254: (LONG, 0), 256: (LONG, width), 257: (LONG, height), 258: (SHORT, 16),
        259: (SHORT, 1), 262: (SHORT, 32803), 273: (LONG, raw_offset), 277: (SHORT, 1),
        278: (LONG, height), 279: (LONG, mosaic.nbytes), 33421: (SHORT, (2, 2)),
        33422: (BYTE, (0, 1, 1, 2)), 50714: (LONG, 0), 50717: (LONG, 65535),
    }
    matrix = [(round(v * 10000), 10000) for row in XYZ_TO_SRGB for v in row]
    dng_entries: dict[int, tuple[int, object]] = {
        271: (ASCII, "autotags"), 272: (ASCII, "test camera"), 274: (SHORT, orientation),
        50706: (BYTE, (1, 4, 0, 0)), 50707: (BYTE, (1, 1, 0, 0)),
        50708: (ASCII, "autotags test camera"), 50721: (SRATIONAL, matrix),
        50728: (RATIONAL, [(1, 1), (1, 1), (1, 1)]), 50778: (SHORT, 21),
    }
    if not preview:
        path.write_bytes(tiff.finish(tiff.ifd({**raw_entries, **dng_entries})))
        return path
    small = stored if preview_size is None else stored.resize(preview_size)
    jpeg = io.BytesIO()
    small.save(jpeg, "JPEG", quality=95)
    preview_offset = tiff.append(jpeg.getvalue())
    first = tiff.ifd({
        **dng_entries, 254: (LONG, 1), 256: (LONG, small.width), 257: (LONG, small.height),
        258: (SHORT, (8, 8, 8)), 259: (SHORT, 7), 262: (SHORT, 6),
        273: (LONG, preview_offset), 277: (SHORT, 3), 278: (LONG, small.height),
        279: (LONG, len(jpeg.getvalue())), 330: (LONG, tiff.ifd(raw_entries)),
    })
    path.write_bytes(tiff.finish(first))
    return path
