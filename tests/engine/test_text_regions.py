"""Text regions from crafted detector outputs: bounded, inside the image, no crash."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotags import _engine


def regions(probabilities, valid=None, **settings):
    chosen = _engine.RegionSettings()
    for name, value in settings.items():
        setattr(chosen, name, value)
    height, width = probabilities.shape
    valid_width, valid_height = valid or (width, height)
    return _engine.find_text_regions(np.ascontiguousarray(probabilities, np.float32),
                                     valid_width, valid_height, chosen)


def corners(found):
    return [(found[i], found[i + 1]) for i in range(0, 8, 2)]


def test_a_line_of_text_becomes_one_rectangle_grown_to_the_texts_extent():
    probabilities = np.zeros((200, 400), np.float32)
    probabilities[90:110, 50:350] = 0.9
    [(found, score)] = regions(probabilities)
    assert score == pytest.approx(0.9, abs=0.05)
    (x1, y1), (x2, y2), (x3, y3), _ = corners(found)
    assert x1 < 50 and x2 > 349 and y1 < 90 and y3 > 109  # unclipped beyond the kernel
    assert y1 == pytest.approx(y2, abs=0.5) and x2 == pytest.approx(x3, abs=0.5)


def test_a_turned_line_keeps_its_reading_direction():
    probabilities = np.zeros((400, 400), np.float32)
    for step in range(300):  # a band 10 pixels thick, rising at 30 degrees
        x = 50 + step * math.cos(math.radians(30))
        y = 300 - step * math.sin(math.radians(30))
        probabilities[int(y) - 5:int(y) + 5, int(x)] = 0.95
    [(found, _)] = regions(probabilities)
    (x1, y1), (x2, y2), _, _ = corners(found)
    assert math.degrees(math.atan2(y1 - y2, x2 - x1)) == pytest.approx(30, abs=3)


def test_an_all_ones_map_gives_one_region_inside_the_image():
    found = regions(np.ones((960, 960), np.float32), valid=(700, 500))
    assert len(found) == 1
    for x, y in corners(found[0][0]):
        assert -400 < x < 1100 and -400 < y < 900  # grown, but around the image only


def test_thousands_of_tiny_regions_are_dropped_as_noise():
    probabilities = np.zeros((960, 960), np.float32)
    probabilities[::4, ::4] = 1.0  # 57,600 single pixels
    assert regions(probabilities) == []


def test_thousands_of_real_looking_regions_are_capped():
    probabilities = np.zeros((960, 960), np.float32)
    for top in range(0, 960, 12):
        for left in range(0, 960, 24):
            probabilities[top:top + 6, left:left + 16] = 0.9  # 3,200 small word shapes
    found = regions(probabilities, max_regions=300)
    assert len(found) == 300


def test_a_region_wider_than_the_image_is_cut_at_the_images_edge():
    probabilities = np.zeros((100, 960), np.float32)
    probabilities[40:60, :] = 0.9  # across the padding too
    [(found, _)] = regions(probabilities, valid=(500, 100))
    xs = [x for x, _ in corners(found)]
    assert max(xs) < 560  # the band's end in the image, grown a little, not the padding


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_maps_with_values_that_are_not_probabilities_do_not_crash(value):
    probabilities = np.full((64, 64), value, np.float32)
    probabilities[20:30, 5:60] = 0.9
    found = regions(probabilities)
    assert len(found) <= 1


def test_an_empty_or_degenerate_valid_area_finds_nothing():
    probabilities = np.ones((32, 32), np.float32)
    assert regions(probabilities, valid=(0, 0)) == []
    assert regions(probabilities, valid=(-5, 1000)) == []
    with pytest.raises(ValueError):
        _engine.find_text_regions(np.ones((2, 2, 2), np.float32), 2, 2, _engine.RegionSettings())


def test_the_reader_is_bounded_on_photos_made_to_look_like_pages_of_text(tmp_path):
    """Through the whole engine: detection, cutting out, orientation and recognition of
    hundreds of text-like stripes, and of a page of real text turned half over."""
    from PIL import Image

    from autotags import Tagger
    from helpers.text_photos import OPENCV_PAGES

    stripes = np.full((1200, 1600, 3), 255, np.uint8)
    for top in range(0, 1200, 9):
        stripes[top:top + 4, (top * 7) % 200: 1600 - (top * 3) % 300] = 0
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    with Image.open(OPENCV_PAGES["imageTextN"]) as page:
        page.rotate(180).save(tmp_path / "upside-down.png")
    reader = Tagger("pp-ocrv4")
    striped, turned = reader.tag([tmp_path / "stripes.png", tmp_path / "upside-down.png"])
    assert striped.ok and len(striped.lines) <= 300
    assert turned.ok and any("technical details" in line.text for line in turned.lines)
