"""Reading text in real photos with the real PP-OCRv4 models through the engine."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from autotags import Tagger
from helpers.camera_raw import write_dng
from helpers.photo_sources import DARKNET_DATA, skimage_data
from helpers.sample_files import save_with_orientation
from helpers.text_photos import DRAWN, OPENCV_PAGE_TEXT, OPENCV_PAGES, DrawnLine, draw_text, recall

# The issue asks for 90% of the words; the recogniser's spaces, recovered where it ranked
# them just behind the blank, bring these photos to 99-100%, so less is a regression.
WORDS_FOUND = 0.95

TEXT_FREE = [
    *(DARKNET_DATA / f"{name}.jpg" for name in ("dog", "eagle", "horses", "person", "kite")),
    *(skimage_data() / f"{name}.png" for name in ("astronaut", "chelsea", "coffee", "camera")),
]


@pytest.fixture(scope="module")
def reader() -> Tagger:
    return Tagger("pp-ocrv4")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, reader):
    import shutil

    folder = tmp_path_factory.mktemp("drawn")
    vips = shutil.which("vips")
    assert vips, "the vips command (Debian libvips-tools) is a test dependency"
    return {name: (draw_text(photo, folder / f"{name}.jpg", lines, vips, size=size), lines)
            for name, (photo, size, lines) in DRAWN.items()}


@pytest.mark.parametrize("page", sorted(OPENCV_PAGES))
def test_the_words_of_opencv_doc_pages_are_read(reader, page):
    result = reader.tag_file(OPENCV_PAGES[page])
    assert result.ok, result.error
    assert recall(OPENCV_PAGE_TEXT, [line.text for line in result.lines]) >= WORDS_FOUND
    assert [tag.label for tag in result.tags] == ["text"]
    assert all(0.5 <= line.confidence <= 1 for line in result.lines)


def test_text_drawn_on_photos_is_read(reader, drawn):
    expected, read = [], []
    for path, lines in drawn.values():
        result = reader.tag_file(path)
        assert result.ok and result.lines, (path, result.error)
        expected += [line.text for line in lines]
        read += [line.text for line in result.lines]
    assert recall(" ".join(expected), read) >= WORDS_FOUND, read


def test_chinese_signs_are_read_without_spaces_between_characters(reader, tmp_path):
    import shutil

    signs = [DrawnLine("北京欢迎你", "WenQuanYi Micro Hei 40", (30, 30)),
             DrawnLine("Hotel 北京饭店 Beijing", "WenQuanYi Micro Hei 30", (40, 250), angle=5),
             DrawnLine("营业时间早上九点", "WenQuanYi Micro Hei 32", (40, 400),
                       colour=(255, 230, 0))]
    photo = draw_text(DARKNET_DATA / "horses.jpg", tmp_path / "signs.jpg", signs,
                      str(shutil.which("vips")))
    read = [line.text for line in reader.tag_file(photo).lines]
    assert "北京欢迎你" in read and "营业时间早上九点" in read, read
    mixed = next(line for line in read if "北京饭店" in line)
    assert mixed.split() == ["Hotel", "北京饭店", "Beijing"], read


def test_photos_without_text_get_no_text_and_no_text_tag(reader):
    for result in reader.tag(TEXT_FREE):
        assert result.ok, result.error
        assert result.lines == [] and result.tags == [], (result.path, result.lines)


def _centre(box):
    return (sum(x for x, _ in box) / 4, sum(y for _, y in box) / 4)


def _line_starting(result, word):
    return next(line for line in result.lines if line.text.lower().startswith(word))


def test_boxes_are_in_the_upright_pictures_pixels_for_every_orientation(tmp_path, reader):
    upright = reader.tag_file(OPENCV_PAGES["imageTextN"])
    expected = _line_starting(upright, "technical")
    with Image.open(OPENCV_PAGES["imageTextN"]) as page:
        for orientation in (3, 6, 8):
            turned = save_with_orientation(page.convert("RGB"),
                                           tmp_path / f"page-{orientation}.jpg", orientation)
            result = reader.tag_file(turned)
            assert (result.width, result.height) == page.size
            found = _line_starting(result, "technical")
            assert math.dist(_centre(found.box), _centre(expected.box)) < 4, orientation
            # The first corner is where the line starts: on the left of the upright page.
            assert math.dist(found.box[0], expected.box[0]) < 6, orientation


def test_boxes_of_a_raw_preview_are_in_the_sensors_pixels(tmp_path, reader):
    # A camera's preview is large: the page at four times its size, the sensor twice that.
    with Image.open(OPENCV_PAGES["imageTextN"]) as page:
        large = page.convert("RGB").resize((page.width * 4, page.height * 4),
                                           Image.Resampling.LANCZOS)
    dng = write_dng(tmp_path / "page.dng", large, 6)
    result = reader.tag_file(dng)
    assert result.ok and result.source == "preview", result.error
    assert (result.width, result.height) == (2 * large.width, 2 * large.height)
    expected = _line_starting(reader.tag_file(OPENCV_PAGES["imageTextN"]), "technical")
    found = _line_starting(result, "technical")
    x, y = _centre(expected.box)
    assert math.dist(_centre(found.box), (8 * x, 8 * y)) < 30


def test_a_line_wider_than_the_reader_takes_is_squeezed_not_lost(tmp_path, reader):
    import shutil

    line = DrawnLine("the quick brown fox jumps over the lazy dog " * 3, "DejaVu Sans 40", (10, 10))
    with Image.open(skimage_data() / "coffee.png") as photo:
        size = (5200, photo.height)
    vips = shutil.which("vips")
    assert vips
    path = draw_text(skimage_data() / "coffee.png", tmp_path / "wide.jpg", [line], vips, size=size)
    result = reader.tag_file(path)
    assert result.ok, result.error
    assert result.lines and all(line.box[1][0] <= 5200 for line in result.lines)
