"""libvips decoding: formats, colour variants, orientation, bad files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotags import ImageError, _engine
from helpers.sample_files import make_bad_files, make_variant, save_with_orientation


def fit(width=300, height=300, mode="stretch") -> _engine.InputFit:
    spec = _engine.InputFit()
    spec.width, spec.height = width, height
    spec.mode = getattr(_engine.ResizeMode, mode)
    return spec


def load(path: Path, **kwargs):
    return _engine.load_image(bytes(path), fit(**kwargs))


def vips_loaders() -> str:
    return subprocess.run(["vips", "-l", "foreign"], capture_output=True, text=True).stdout


FORMATS = {
    "jpg": "jpegload", "png": "pngload", "tif": "tiffload", "webp": "webpload",
    "gif": "gifload", "heic": "heifload", "avif": "heifload", "jxl": "jxlload",
}


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_every_format_decodes_like_the_original(photos, tmp_path, vips_cli, extension):
    if FORMATS[extension] not in vips_loaders():
        pytest.skip(f"this system's libvips has no {FORMATS[extension]}")
    converted = tmp_path / f"cat.{extension}"
    subprocess.run([vips_cli, "copy", str(photos["cat"]), str(converted)], check=True)
    pixels, width, height = load(converted)
    reference, ref_width, ref_height = load(photos["cat"])
    assert (width, height) == (ref_width, ref_height) == (451, 300)
    assert pixels.shape == (300, 300, 3) and pixels.dtype == np.uint8
    difference = np.abs(pixels.astype(int) - reference.astype(int)).mean()
    assert difference < 10, f"{extension} decodes too differently: mean abs diff {difference}"


def test_palette_png_decodes(photos, tmp_path):
    palette = tmp_path / "palette.png"
    Image.open(photos["cat"]).convert("P").save(palette)
    pixels, width, height = load(palette)
    assert (width, height) == (451, 300) and pixels.shape == (300, 300, 3)


VARIANT_HEADERS = {
    "grey": "uchar, 1 band, b-w", "cmyk": "uchar, 4 bands, cmyk",
    "rgb16": "ushort, 3 bands, rgb16", "alpha": "uchar, 4 bands, srgb",
}


@pytest.mark.parametrize("variant", sorted(VARIANT_HEADERS))
def test_colour_variants_become_srgb(photos, tmp_path, vips_cli, variant):
    path = make_variant(photos["cat"], tmp_path, vips_cli, variant)
    header = subprocess.run(["vipsheader", str(path)], capture_output=True, text=True,
                            check=True).stdout
    assert VARIANT_HEADERS[variant] in header, "the test file is not the variant it claims"
    pixels, _, _ = load(path)
    reference, _, _ = load(photos["cat"])
    tolerance = 40 if variant in ("grey", "cmyk") else 2
    assert np.abs(pixels.astype(int) - reference.astype(int)).mean() < tolerance


def test_sixteen_bit_keeps_full_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)  # 16-bit greyscale
    pixels, _, _ = load(path, width=256, height=64)
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255


def test_transparent_pixels_become_white(tmp_path):
    path = tmp_path / "transparent.png"
    Image.new("RGBA", (50, 40), (10, 20, 30, 0)).save(path)
    pixels, _, _ = load(path, width=50, height=40)
    assert (pixels == 255).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    displayed = np.zeros((800, 1200, 3), np.uint8)
    displayed[:400, :600] = (255, 0, 0)  # red top-left quadrant, as a viewer shows it
    path = save_with_orientation(Image.fromarray(displayed), tmp_path / "o.jpg", orientation)
    pixels, width, height = load(path, width=120, height=80)
    assert (width, height) == (1200, 800)
    assert pixels[20, 30, 0] > 200 and pixels[20, 30, 1] < 60  # top-left is red
    assert pixels[60, 90].max() < 60  # bottom-right is black


def test_large_jpeg_is_shrunk_on_load(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((3000, 4000, 3), 90, np.uint8)).save(path, quality=90)
    pixels, width, height = load(path, width=640, height=640, mode="letterbox")
    assert (width, height) == (4000, 3000)
    assert pixels.shape == (640, 640, 3)
    assert abs(int(pixels[320, 320, 0]) - 90) <= 2   # image area
    assert tuple(pixels[5, 320]) == (114, 114, 114)  # letterbox padding


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "directory", "missing", "huge"])
def test_bad_file_raises_error_naming_it(photos, tmp_path, kind):
    path, words = make_bad_files(tmp_path, photos["dog"])[kind]
    with pytest.raises(ImageError) as raised:
        load(path)
    assert str(path) in str(raised.value) and words in str(raised.value)
