"""The default models on real photos, through the whole engine."""

from __future__ import annotations

import pytest

from autotags import Tagger
from helpers.sample_files import make_bad_files, make_variant


@pytest.mark.parametrize(("photo", "expected"), [
    ("cat", "cat"), ("astronaut", "person"), ("coffee", "cup"),
    ("dog", "dog"), ("horses", "horse"), ("giraffe", "giraffe"),
])
def test_detector_finds_the_object(detector, photos, photo, expected):
    result = detector.tag_file(photos[photo])
    assert result.ok, result.error
    assert expected in result.labels, f"{photo}: got {result.labels}"


def test_detector_boxes_lie_inside_the_original_image(detector, photos):
    result = detector.tag_file(photos["dog"])
    assert (result.width, result.height) == (768, 576)
    for tag in result.tags:
        assert tag.box is not None
        assert 0 <= tag.box.x1 < tag.box.x2 <= result.width
        assert 0 <= tag.box.y1 < tag.box.y2 <= result.height
    dog = next(tag for tag in result.tags if tag.label == "dog")
    # the dog sits in the lower-left part of the photo
    assert dog.box.x1 < 250 and dog.box.y1 > 150 and dog.box.x2 < 450


def test_classifier_top_label_on_cat_photo_is_a_cat(classifier, photos):
    result = classifier.tag_file(photos["cat"])
    assert result.ok
    assert result.tags[0].label in {"tabby", "tiger cat", "Egyptian cat", "Persian cat",
                                    "Siamese cat"}
    assert result.tags[0].box is None
    assert result.tags == sorted(result.tags, key=lambda tag: -tag.score)


def test_higher_accuracy_keeps_fewer_tags(photos):
    loose = Tagger("ssd-mobilenet-v2", accuracy=1, precision="f32").tag_file(photos["kite"])
    strict = Tagger("ssd-mobilenet-v2", accuracy=10, precision="f32").tag_file(photos["kite"])
    assert len(strict.tags) < len(loose.tags)
    assert min(tag.score for tag in loose.tags) >= 0.20
    assert min(tag.score for tag in strict.tags) >= 0.80


@pytest.mark.parametrize("variant", ["grey", "cmyk", "rgb16", "alpha"])
def test_colour_variants_tag_like_their_rgb_twin(detector, photos, tmp_path, vips_cli, variant):
    twin = detector.tag_file(photos["cat"])
    result = detector.tag_file(make_variant(photos["cat"], tmp_path, vips_cli, variant))
    assert result.labels[0] == twin.labels[0] == "cat"
    assert result.tags[0].score == pytest.approx(twin.tags[0].score, abs=0.08)


def test_bad_files_fail_alone_and_the_others_are_tagged(detector, photos, tmp_path):
    bad = make_bad_files(tmp_path, photos["dog"])
    paths = [photos["cat"], *[path for path, _ in bad.values()], photos["dog"], photos["coffee"]]
    results = list(detector.tag(paths))
    assert [r.path for r in results] == [str(p) for p in paths]  # input order kept
    assert "cat" in results[0].labels
    assert "dog" in results[-2].labels and "cup" in results[-1].labels
    for result, (path, words) in zip(results[1:-2], bad.values(), strict=True):
        assert not result.ok and result.tags == []
        assert str(path) in result.error and words in result.error


def test_many_images_come_back_once_each_in_order(detector, photos):
    paths = [photos[name] for name in ("cat", "dog", "coffee", "horses")] * 12
    results = list(detector.tag(paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    first = {r.path: r.labels for r in results[:4]}
    assert all(r.labels == first[r.path] for r in results)


def test_stopping_early_cancels_cleanly(detector, photos):
    stream = detector.tag([photos["cat"]] * 40)
    assert next(stream).ok
    stream.close()  # the engine stops decoding; nothing hangs or leaks
    assert detector.tag_file(photos["dog"]).ok


@pytest.mark.parametrize("batch", [2, 4])
def test_batched_inference_gives_the_same_tags(detector, photos, batch):
    paths = [photos[name] for name in ("cat", "dog", "coffee", "horses", "astronaut", "giraffe")]
    single = list(detector.tag(paths))
    batched = list(Tagger("ssd-mobilenet-v2", batch=batch, precision="f32").tag(paths))
    assert len(batched) == 6  # includes a partial last batch for batch=4
    for one, many in zip(single, batched, strict=True):
        assert one.labels == many.labels
        assert [t.score for t in one.tags] == pytest.approx([t.score for t in many.tags], abs=1e-3)


def test_the_gil_is_free_while_the_engine_works(detector, photos):
    import threading
    import time

    def tag_many() -> None:
        list(detector.tag([photos["dog"]] * 24))

    worker = threading.Thread(target=tag_many)
    worker.start()
    python_steps = 0
    while worker.is_alive():
        python_steps += 1  # runs only while the tagging thread does not hold the GIL
        time.sleep(0)
    assert python_steps > 1000


def test_pipelined_path_gives_the_simple_paths_tags_in_any_order(photos):
    paths = [photos[name] for name in ("cat", "dog", "coffee", "horses", "astronaut",
                                       "giraffe", "person", "kite")] * 2
    simple = Tagger("ssd-mobilenet-v2", precision="f32", threads=1, requests=1)
    pipelined = Tagger("ssd-mobilenet-v2", precision="f32", batch=2, requests=4)
    expected = {r.path: r.tags for r in simple.tag(paths)}
    shuffled = paths[::-1]
    results = list(pipelined.tag(shuffled))
    assert [r.path for r in results] == [str(p) for p in shuffled]
    for result in results:
        assert [t.label for t in result.tags] == [t.label for t in expected[result.path]]
        assert [t.score for t in result.tags] == pytest.approx(
            [t.score for t in expected[result.path]], abs=1e-3)


def test_cancelling_loses_and_duplicates_nothing_already_delivered(detector, photos):
    paths = [photos["dog"]] * 30 + [photos["cat"]] * 30
    stream = detector.tag(paths)
    delivered = [next(stream) for _ in range(17)]
    stream.close()
    assert [r.path for r in delivered] == [str(p) for p in paths[:17]]
    assert all(r.ok and "dog" in r.labels for r in delivered)
    again = list(detector.tag(paths))  # the engine is usable, and complete, afterwards
    assert len(again) == 60 and [r.path for r in again] == [str(p) for p in paths]


def test_streams_abandoned_at_random_points_leave_the_engine_sound(photos, tmp_path):
    import random

    tagger = Tagger("ssd-mobilenet-v2", batch=2, precision="f32")
    paths = [photos["dog"], photos["horses"], tmp_path / "missing.jpg"] * 6
    chance = random.Random(7)
    for _ in range(20):
        stream = tagger.tag(paths)
        for _ in range(chance.randint(0, 5)):
            next(stream)
        stream.close()
    results = list(tagger.tag(paths))
    assert [r.ok for r in results] == [True, True, False] * 6
