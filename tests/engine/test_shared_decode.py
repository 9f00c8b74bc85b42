"""Protects one decode for several models (issue: pipeline): a file is decoded once at the
scale the largest input needs and fitted into every model's input, each with its own
letterbox geometry, so every model's boxes map back to the original pixels; failures,
files only some models need, and a stream abandoned midway behave as with one model."""

from __future__ import annotations

import pytest

from autotags import Tagger
from autotags.models.catalogue import InputSettings
from autotags.tagging.tagger import tag_together
from helpers.model_specs import local_spec
from helpers.sample_files import save_with_orientation
from helpers.synthetic_models import bright_box_yolo

# Two detectors of different input sizes and padding: each letterboxes the same decode.
INPUTS = {"large": (640, "centre"), "small": (320, "top_left")}


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    made = []
    for name, (size, pad) in INPUTS.items():
        model = bright_box_yolo(folder / f"{name}.onnx", size=size, candidates=2100)
        settings = InputSettings(size, size, pad=pad, pad_colour=(0, 0, 0), scale=(255.0,))
        made.append(Tagger(local_spec(model, name=name, input_settings=settings),
                           precision="f32"))
    return made


def rectangle_photo(tmp_path, size, box, name="rect.png"):
    import numpy as np
    from PIL import Image

    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = 255
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize(("size", "box"), [
    ((4000, 3000), (1000, 700, 2500, 1300)),
    ((3000, 4000), (500, 1500, 2000, 3750)),
    ((320, 200), (40, 20, 120, 180)),  # smaller than both inputs: upscaled
])
def test_every_model_maps_its_boxes_back_to_the_original_pixels(detectors, tmp_path, size,
                                                                 box):
    for suffix in (".png", ".jpg"):  # libvips' thumbnail path, and JPEG shrink-on-load
        path = rectangle_photo(tmp_path, size, box, f"rect{suffix}")
        results = list(tag_together(detectors, [path]))
        assert [(index, stage) for index, stage, _ in results] == [(0, 0), (0, 1)]
        for _, stage, result in results:
            assert result.ok, result.error
            assert result.model == detectors[stage].model_name
            assert (result.width, result.height) == size
            [tag] = result.tags
            tolerance = max(size) / INPUTS[result.model][0] * 1.5  # a model input pixel
            assert [tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2] == pytest.approx(
                box, abs=tolerance), result.model


def test_a_shared_decode_follows_exif_orientation_for_every_model(detectors, tmp_path):
    import numpy as np
    from PIL import Image

    displayed, box = (1200, 1920), (150, 300, 600, 1200)
    pixels = np.zeros((displayed[1], displayed[0], 3), np.uint8)
    pixels[box[1]:box[3], box[0]:box[2]] = 255
    path = save_with_orientation(Image.fromarray(pixels), tmp_path / "turned.jpg", 6)
    for _, _, result in tag_together(detectors, [path]):
        [tag] = result.tags
        assert (result.width, result.height) == displayed
        assert [tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2] == pytest.approx(box, abs=10)


def test_the_tags_are_those_of_each_model_alone(detectors, photos):
    paths = [photos[name] for name in ("dog", "horses", "cat", "astronaut")]
    alone = [[(t.label, t.score) for t in r.tags] for tagger in detectors
             for r in tagger.tag(paths)]
    together = {(stage, index): [(t.label, t.score) for t in r.tags]
                for index, stage, r in tag_together(detectors, paths)}
    shared = [together[stage, index] for stage in range(2) for index in range(len(paths))]
    assert [[label for label, _ in tags] for tags in shared] == \
           [[label for label, _ in tags] for tags in alone]


def test_a_file_that_fails_is_reported_for_every_model_that_needed_it(detectors, tmp_path,
                                                                     photos):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    paths = [photos["dog"], broken, tmp_path / "missing.jpg", photos["cat"]]
    wanted = [[True, True], [True, True], [False, True], [True, False]]
    results = [(index, stage, r) for index, stage, r in tag_together(detectors, paths, wanted)]
    assert [(index, stage) for index, stage, _ in results] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (3, 0)]
    errors = {(index, stage): r.error for index, stage, r in results}
    assert errors[0, 0] is None and errors[3, 0] is None
    assert str(broken) in errors[1, 0] and errors[1, 0] == errors[1, 1]
    assert "no such file" in errors[2, 1]


def test_a_file_only_one_model_needs_goes_only_to_that_model(detectors, photos):
    paths = [photos["dog"], photos["horses"], photos["cat"]]
    inferred = [tagger.images_inferred for tagger in detectors]
    wanted = [[True, False], [False, True], [False, False]]
    results = [(index, stage) for index, stage, _ in tag_together(detectors, paths, wanted)]
    assert results == [(0, 0), (1, 1)]
    assert [t.images_inferred - n for t, n in zip(detectors, inferred, strict=True)] == [1, 1]


def test_a_stream_abandoned_midway_stops_cleanly(detectors, photos):
    paths = [photos[name] for name in ("dog", "horses", "person", "eagle", "kite")] * 20
    stream = tag_together(detectors, paths)
    first = [next(stream) for _ in range(3)]
    stream.close()  # cancels the engine's stream; nothing hangs, nothing crashes
    assert [(i, s) for i, s, _ in first] == [(0, 0), (0, 1), (1, 0)]
    again = list(tag_together(detectors, paths[:2]))  # and the models work on
    assert len(again) == 4 and all(r.ok for _, _, r in again)


def test_wrong_wanted_rows_are_refused(detectors, photos):
    with pytest.raises(ValueError, match="rows"):
        list(tag_together(detectors, [photos["dog"]], [[True, True], [True, True]]))
    with pytest.raises(ValueError, match="models"):
        list(tag_together(detectors, [photos["dog"]], [[True]]))


def test_real_models_sharing_a_decode_keep_their_tags(detector, classifier, photos):
    """A detector (300 px) and a classifier (its own size) from one decode: the same
    labels as alone; scores move only by the other resize source (measured: at most
    0.015 on these photos; held to 0.05)."""
    paths = [photos[name] for name in ("dog", "horses", "giraffe", "person", "eagle", "cat",
                                       "astronaut", "coffee")]
    models = [detector, classifier]
    alone = {(stage, index): {t.label: t.score for t in r.tags}
             for stage, tagger in enumerate(models) for index, r in enumerate(tagger.tag(paths))}
    together = {(stage, index): {t.label: t.score for t in r.tags}
                for index, stage, r in tag_together(models, paths)}
    assert together.keys() == alone.keys()
    for key, scores in alone.items():
        shared = together[key]
        near_threshold = {label for label, score in {**scores, **shared}.items()
                          if abs(score - models[key[0]].threshold) < 0.05}
        assert set(shared) - near_threshold == set(scores) - near_threshold, key
        for label in set(scores) & set(shared):
            assert shared[label] == pytest.approx(scores[label], abs=0.05), (key, label)
