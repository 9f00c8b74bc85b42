"""Protects the engine against crafted and odd files (issue: nothing crashes): whatever a
file claims, it gives tags or a per-file error, never a dead process, and the good
photos beside it are tagged as if alone. Every input is made here, in code."""

from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest
from PIL import Image

from autotags import Tagger


@pytest.fixture(scope="module")
def letterbox_tagger() -> Tagger:
    """yolov3-tiny letterboxes into 416x416: the path that aborted on thin JPEGs."""
    return Tagger("yolov3-tiny", precision="f32")


def tiff_with(path, width, height, samples, photometric):
    """An uncompressed 8-bit TIFF whose header says what we like."""
    pixels = bytes(range(256)) * (width * height * samples // 256 + 1)
    pixels = pixels[: width * height * samples]
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, photometric), (273, 4, 1, 0), (277, 3, 1, samples),
               (278, 3, 1, height), (279, 4, 1, len(pixels))]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    entries = [(t, k, n, data_offset if t == 273 else v) for t, k, n, v in entries]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", t, k, n, v) if k == 4 else struct.pack("<HHIHH", t, k, n, v, 0)
        for t, k, n, v in entries) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + pixels)
    return path


@pytest.fixture()
def crafted(tmp_path, vips_cli):
    made = {}
    native = tmp_path / "two-band.v"
    subprocess.run([vips_cli, "black", str(native), "64", "48", "--bands", "2"], check=True)
    labelled = tmp_path / "IMG_0001.jpg"  # a 2-band image labelled sRGB, named like a photo
    subprocess.run([vips_cli, "copy", str(native), str(tmp_path / "srgb2.v"),
                    "--interpretation", "srgb"], check=True)
    (tmp_path / "srgb2.v").rename(labelled)
    made["vips native, 2 bands, sRGB label"] = labelled
    made["TIFF, 2 samples, RGB label"] = tiff_with(tmp_path / "two.tif", 64, 48, 2, 2)
    made["TIFF, 4 samples, RGB label"] = tiff_with(tmp_path / "four.tif", 64, 48, 4, 2)
    made["TIFF, 1 sample, RGB label"] = tiff_with(tmp_path / "one.tif", 64, 48, 1, 2)
    (tmp_path / "doc.jpg").write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
        b"/Count 1>>endobj 3 0 obj<</Type/Page/MediaBox[0 0 612 792]/Parent 2 0 R>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n")
    made["PDF named .jpg"] = tmp_path / "doc.jpg"
    (tmp_path / "pic.jpg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" '
                                      'height="48"><rect width="64" height="48"/></svg>')
    made["SVG named .jpg"] = tmp_path / "pic.jpg"
    (tmp_path / "matrix.jpg").write_text("2 2\n1 2\n3 4\n")
    made["matrix named .jpg"] = tmp_path / "matrix.jpg"
    (tmp_path / "table.jpg").write_text("1,2,3\n4,5,6\n")
    made["CSV named .jpg"] = tmp_path / "table.jpg"
    grey_alpha = tmp_path / "grey-alpha.png"
    Image.fromarray(np.full((48, 64, 2), 200, np.uint8), "LA").save(grey_alpha)
    made["PNG, grey + alpha"] = grey_alpha
    return made


def test_crafted_files_give_tags_or_an_error_and_spare_their_neighbours(
        crafted, photos, letterbox_tagger, detector):
    for tagger in (letterbox_tagger, detector):
        alone = tagger.tag_file(photos["dog"])
        paths = [photos["dog"], *crafted.values(), photos["dog"]]
        results = list(tagger.tag(paths))
        assert [r.path for r in results] == [str(p) for p in paths]
        for result in (results[0], results[-1]):
            assert result.tags == alone.tags  # no pixels from a neighbour's buffer
        for what, result in zip(crafted, results[1:-1], strict=True):
            assert result.ok or result.error, what
            if result.ok:
                assert (result.width, result.height) == (64, 48), what


@pytest.mark.parametrize("kind", ["PDF named .jpg", "SVG named .jpg", "matrix named .jpg",
                                  "CSV named .jpg", "vips native, 2 bands, sRGB label"])
def test_only_photo_loaders_are_allowed(crafted, detector, kind):
    result = detector.tag_file(crafted[kind])
    assert not result.ok
    assert "not a photo" in result.error or "not an image" in result.error


def test_files_that_claim_rgb_with_other_band_counts_become_rgb(crafted, detector):
    for kind in ("TIFF, 2 samples, RGB label", "TIFF, 4 samples, RGB label",
                 "TIFF, 1 sample, RGB label", "PNG, grey + alpha"):
        pixels, width, height = detector.decode(crafted[kind])
        assert pixels.shape == (300, 300, 3) and (width, height) == (64, 48), kind


@pytest.mark.parametrize("size", [(2000, 1), (1, 2000), (20000, 7), (7, 20000), (9, 9)])
def test_thin_jpegs_decode_with_a_letterbox_model(tmp_path, letterbox_tagger, size):
    path = tmp_path / "thin.jpg"
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
    result = letterbox_tagger.tag_file(path)
    assert result.ok, result.error
    assert (result.width, result.height) == size


def test_images_decoded_whole_are_bounded_in_memory(tmp_path, vips_cli, detector):
    """An interlaced 16-bit RGBA PNG under the megapixel limit that would take 513 MiB
    decoded whole: refused from its header, before any pixel is decoded."""
    black = tmp_path / "black.v"
    subprocess.run([vips_cli, "black", str(black), "8200", "8200", "--bands", "4"], check=True)
    wide = tmp_path / "wide.v"
    subprocess.run([vips_cli, "cast", str(black), str(wide), "ushort"], check=True)
    labelled = tmp_path / "rgb16.v"
    subprocess.run([vips_cli, "copy", str(wide), str(labelled), "--interpretation", "rgb16"],
                   check=True)
    png = tmp_path / "interlaced.png"
    subprocess.run([vips_cli, "pngsave", str(labelled), str(png), "--interlace",
                    "--compression", "1", "--bitdepth", "16"], check=True)
    result = detector.tag_file(png)
    assert not result.ok and "interlaced" in result.error and "MiB" in result.error
