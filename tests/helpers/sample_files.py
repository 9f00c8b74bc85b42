"""Test images made on the fly from real photos: colour variants, EXIF orientations, bad files."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

from PIL import Image


def make_variant(source: Path, tmp_path: Path, vips_cli: str, variant: str) -> Path:
    target = tmp_path / f"{variant}.{'jpg' if variant == 'cmyk' else 'png'}"
    commands = {
        "grey": [["colourspace", str(source), str(target), "b-w"]],
        "cmyk": [["icc_export", str(source), str(target), "--output-profile", "cmyk"]],
        "rgb16": [["colourspace", str(source), str(target), "rgb16"]],
        "alpha": [["bandjoin_const", str(source), str(target), "255"]],
    }
    for command in commands[variant]:
        subprocess.run([vips_cli, *command], check=True)
    return target


# Pillow transpose that turns the displayed image into what a camera stores under
# each EXIF orientation (the inverse of what a viewer applies).
STORE_FOR_ORIENTATION = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


def save_with_orientation(displayed: Image.Image, path: Path, orientation: int) -> Path:
    transpose = STORE_FOR_ORIENTATION[orientation]
    stored = displayed.transpose(transpose) if transpose is not None else displayed
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, quality=95, exif=exif)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return path


def make_bad_files(directory: Path, good_jpeg: Path) -> dict[str, tuple[Path, str]]:
    """Bad inputs with the words their error must contain."""
    (directory / "empty.jpg").write_bytes(b"")
    data = good_jpeg.read_bytes()
    (directory / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (directory / "text.jpg").write_text("this is not an image\n")
    (directory / "folder.jpg").mkdir()
    png_header_only(directory / "huge.png", 30000, 30000)
    return {
        "empty": (directory / "empty.jpg", "empty file"),
        "truncated": (directory / "truncated.jpg", "Premature end"),
        "text": (directory / "text.jpg", "not an image"),
        "directory": (directory / "folder.jpg", "is a directory"),
        "missing": (directory / "missing.jpg", "no such file"),
        "huge": (directory / "huge.png", "30000x30000"),
    }
