"""Exact engine behaviour with ONNX models whose outputs are known."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from autotags import ModelError, Tagger
from autotags.models.catalogue import DecodeSettings, InputSettings
from helpers.model_specs import local_spec
from helpers.sample_files import save_with_orientation
from helpers.synthetic_models import bright_box_yolo, fixed_logits_classifier


@pytest.fixture(scope="module")
def bright_box_model(tmp_path_factory):
    return bright_box_yolo(tmp_path_factory.mktemp("models") / "yolo11-like.onnx")


def yolo_tagger(model_path, pad="centre", pad_colour=(114, 114, 114)):
    settings = InputSettings(640, 640, pad=pad, pad_colour=pad_colour, scale=(255.0,))
    return Tagger(local_spec(model_path, input_settings=settings), precision="f32")


def image_with_rectangle(width, height, box):
    pixels = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = 255
    return Image.fromarray(pixels)


def assert_single_box(result, expected_box, expected_size):
    assert result.ok, result.error
    assert (result.width, result.height) == expected_size
    assert len(result.tags) == 1
    tag = result.tags[0]
    assert tag.label == "cat" and tag.score == pytest.approx(0.9)
    assert [tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2] == pytest.approx(expected_box, abs=1)


# Rectangle corners sit on multiples of the downscale step, so the resampled edges
# are sharp and the expected box is exact to the pixel.
@pytest.mark.parametrize(("size", "box", "pad"), [
    ((4000, 3000), (1000, 700, 2500, 1300), "centre"),       # landscape 12 MP
    ((3000, 4000), (500, 1500, 2000, 3750), "centre"),       # portrait 12 MP
    ((1200, 800), (150, 300, 615, 450), "top_left"),         # digiKam-style padding
    ((320, 200), (40, 20, 120, 180), "centre"),              # upscaled small image
])
def test_boxes_map_back_to_original_pixels(bright_box_model, tmp_path, size, box, pad):
    path = tmp_path / "rect.png"
    image_with_rectangle(*size, box).save(path)
    tagger = yolo_tagger(bright_box_model, pad=pad, pad_colour=(0, 0, 0))
    assert_single_box(tagger.tag_file(path), box, size)


@pytest.mark.parametrize("orientation", [3, 5, 6, 8])
def test_boxes_follow_exif_orientation(bright_box_model, tmp_path, orientation):
    displayed_size, box = (1200, 1920), (150, 300, 600, 1200)  # scaled by exactly 1/3
    path = save_with_orientation(image_with_rectangle(*displayed_size, box),
                                 tmp_path / "rotated.jpg", orientation)
    assert_single_box(yolo_tagger(bright_box_model).tag_file(path), box, displayed_size)


def test_detection_below_threshold_is_dropped(bright_box_model, tmp_path):
    path = tmp_path / "rect.png"
    image_with_rectangle(640, 480, (10, 10, 100, 100)).save(path)
    settings = InputSettings(640, 640, scale=(255.0,))
    # score 0.9 is below the threshold of accuracy 10 when the range tops out at 95%
    strict = Tagger(local_spec(bright_box_model, input_settings=settings, threshold=(50, 95)),
                    accuracy=10, precision="f32")
    assert strict.tag_file(path).tags == []


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_classifier_logits_get_softmax_and_top_k(tmp_path, photos, layout):
    logits = np.full((1, 1000), -4.0, np.float32)
    logits[0, 281], logits[0, 282], logits[0, 7] = 3.0, 2.0, 1.0
    model = fixed_logits_classifier(tmp_path / f"b7-like-{layout}.onnx", logits, layout=layout)
    labels = tuple(f"class{i}" for i in range(1000))
    spec = local_spec(model, kind="classifier", output="classifier", labels=labels,
                      input_settings=InputSettings(600, 600, resize="centre_crop"),
                      decode=DecodeSettings(top_k=5), threshold=(1, 10))
    result = Tagger(spec, accuracy=1, precision="f32").tag_file(photos["cat"])
    exp = np.exp(logits[0].astype(np.float64))
    probabilities = exp / exp.sum()
    assert [t.label for t in result.tags] == ["class281", "class282", "class7"]
    assert [t.score for t in result.tags] == pytest.approx(probabilities[[281, 282, 7]], abs=1e-4)


def test_corrupt_model_file_gives_one_clear_error(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"broken\.onnx: cannot read model file"):
        Tagger(local_spec(broken))


def test_truncated_model_file_gives_one_clear_error(bright_box_model, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(bright_box_model.read_bytes()[:5000])
    with pytest.raises(ModelError, match=r"truncated\.onnx"):
        Tagger(local_spec(truncated))


def test_output_that_does_not_fit_the_labels_is_refused(bright_box_model):
    wrong_labels = tuple(f"c{i}" for i in range(20))
    expected = r"YOLO output \[1,84,8400\] does not match \[batch, 4\+20"
    with pytest.raises(ModelError, match=expected):
        Tagger(local_spec(bright_box_model, labels=wrong_labels))


def test_transposed_yolo_output_decodes_the_same(tmp_path):
    model = bright_box_yolo(tmp_path / "transposed.onnx", transposed=True, candidates=2100,
                            size=320, class_id=2)
    path = tmp_path / "rect.png"
    image_with_rectangle(640, 480, (100, 40, 300, 240)).save(path)
    settings = InputSettings(320, 320, scale=(255.0,))
    result = Tagger(local_spec(model, input_settings=settings), precision="f32").tag_file(path)
    [tag] = result.tags
    assert tag.label == "car"
    assert [tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2] == pytest.approx(
        [100, 40, 300, 240], abs=2)
