"""Protects quick start without stale models: a model is prepared (pre-processing folded
in) once and compiled by path after that, and a prepared copy is never used once the model
file, a setting that shapes the graph or OpenVINO's version has changed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from autotags import Tagger
from autotags.models import runtime
from autotags.models.catalogue import InputSettings
from helpers.model_specs import local_spec
from helpers.synthetic_models import bright_box_yolo, fixed_logits_classifier


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def prepared(home):
    return sorted((home / "compiled" / "prepared").glob("*.xml"))


def classifier(path):
    return Tagger(local_spec(path, kind="classifier", output="classifier", labels=("a", "b", "c"),
                             input_settings=InputSettings(64, 64, resize="stretch",
                                                          scale=(255.0,)),
                             threshold=(1, 1)), precision="f32")


@pytest.fixture()
def photo(tmp_path):
    pixels = np.zeros((80, 80, 3), np.uint8)
    pixels[20:60, 10:50] = 100  # mid-grey: "bright" only when the scale makes it so
    path = tmp_path / "grey.png"
    Image.fromarray(pixels).save(path)
    return path


def test_a_second_start_compiles_the_prepared_copy(home, tmp_path, photo):
    model = fixed_logits_classifier(tmp_path / "m.onnx", np.array([[5.0, 0, 0]]), size=64)
    assert classifier(model).tag_file(photo).labels[0] == "a"
    [copy] = prepared(home)
    made = copy.stat().st_mtime_ns
    assert classifier(model).tag_file(photo).labels[0] == "a"
    assert prepared(home) == [copy] and copy.stat().st_mtime_ns == made


def test_a_changed_model_file_is_prepared_again(home, tmp_path, photo):
    model = fixed_logits_classifier(tmp_path / "m.onnx", np.array([[5.0, 0, 0]]), size=64)
    assert classifier(model).tag_file(photo).labels[0] == "a"
    [old] = prepared(home)
    fixed_logits_classifier(model, np.array([[0, 5.0, 0]]), size=64)  # same size, same name
    assert classifier(model).tag_file(photo).labels[0] == "b"
    [new] = prepared(home)
    assert new != old  # the stale copy is gone, not kept beside the new one


def test_a_damaged_prepared_copy_is_made_again(home, tmp_path, photo):
    model = fixed_logits_classifier(tmp_path / "m.onnx", np.array([[5.0, 0, 0]]), size=64)
    classifier(model)
    [copy] = prepared(home)
    copy.with_suffix(".bin").write_bytes(b"")
    for blob in (home / "compiled").glob("*.blob"):  # so OpenVINO must read the copy
        blob.unlink()
    assert classifier(model).tag_file(photo).labels[0] == "a"
    assert copy.with_suffix(".bin").stat().st_size > 0


def test_a_setting_that_shapes_the_graph_gets_its_own_copy(home, tmp_path, photo):
    model = bright_box_yolo(tmp_path / "yolo.onnx")

    def boxes(scale):
        settings = InputSettings(640, 640, scale=(scale,))
        result = Tagger(local_spec(model, input_settings=settings), precision="f32").tag_file(photo)
        return [t.box.as_list() for t in result.tags]

    def around_the_rectangle(found):
        return len(found) == 1 and found[0] == pytest.approx([10, 20, 50, 60], abs=1)

    assert not around_the_rectangle(boxes(255.0))  # grey 100/255 is not bright
    assert around_the_rectangle(boxes(100.0))      # 100/100 is
    assert not around_the_rectangle(boxes(255.0))  # the first copy still serves its settings
    assert len(prepared(home)) == 2


def test_another_openvino_version_prepares_again(home, tmp_path, photo, monkeypatch):
    model = fixed_logits_classifier(tmp_path / "m.onnx", np.array([[5.0, 0, 0]]), size=64)
    classifier(model)
    [old] = prepared(home)
    monkeypatch.setattr(runtime.openvino, "get_version", lambda: "2099.1.0-future")
    assert classifier(model).tag_file(photo).labels[0] == "a"
    [new] = prepared(home)
    assert new != old
