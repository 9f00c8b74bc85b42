"""digiKam's models (proven with stand-ins of their exact signatures), YOLOv3-tiny with
its real weights, and bringing your own model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from autotags import InstallError, Tagger, install, load_catalogue
from autotags.models.catalogue import ModelSpec, SourceFile
from helpers.synthetic_models import bright_box_yolo, fixed_logits_classifier

DIGIKAM = {  # name: (file, bytes, sha256, input, labels, threshold range) from dnnmodels.conf
    "yolo11n": ("yolo11n.onnx", 10720316,
                "82f23e3cdc299fb44317e8a4b2c1d4d67efd0acd5eb3abcb5bf87a307bca5c43",
                640, 80, (32, 88)),
    "yolo11x": ("yolo11x.onnx", 228016573,
                "dd81d4d06a4c92a6e1066d024219efe5c4c1982566ddf6ce5c280ebd847f117a",
                640, 80, (33, 87)),
    "efficientnet-b7": ("efficientnetb7.onnx", 265323876,
                        "5133666ad23c6bd45c8d817739e66a4743f84080ba9e47301c323ed0986a52a1", 600,
                        1000, (20, 80)),
}


@pytest.mark.parametrize("name", sorted(DIGIKAM))
def test_catalogue_has_digikams_models_exactly(name):
    file, size, sha, side, classes, (low, high) = DIGIKAM[name]
    spec = load_catalogue().get(name)
    assert spec.source is not None
    assert spec.source.files == (SourceFile(file, size, sha),)
    assert spec.source.urls == ("https://files.kde.org/digikam/autotags",
                                "https://cdn.files.kde.org/digikam/autotags")
    assert (spec.input.width, spec.input.height) == (side, side)
    assert len(spec.labels) == classes
    assert (spec.threshold_min, spec.threshold_max) == (low, high)


def test_every_coco_model_shares_one_label_list():
    catalogue = load_catalogue()
    coco = [spec.labels for spec in catalogue.models.values() if len(spec.labels) == 80]
    assert len(coco) >= 4 and all(labels == coco[0] for labels in coco)


def stand_in(spec: ModelSpec, made: Path) -> ModelSpec:
    """The catalogue entry with the stand-in's checksum in place of digiKam's file's,
    and mirrors nobody answers at: anything not found locally fails loudly."""
    data = made.read_bytes()
    item = SourceFile(spec.source.weights.name, len(data), hashlib.sha256(data).hexdigest())
    source = dataclasses.replace(spec.source, files=(item,), urls=("http://127.0.0.1:9/none",))
    return dataclasses.replace(spec, source=source)


@pytest.fixture()
def digikam_folder(tmp_path, monkeypatch) -> Path:
    """An empty per-user cache and a digiKam installation's model folder."""
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "autotags"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "data" / "digikam" / "facesengine"
    folder.mkdir(parents=True)
    return folder


def bright_rectangle(tmp_path: Path) -> Path:
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[100:300, 200:400] = 255
    path = tmp_path / "rectangle.png"
    Image.fromarray(pixels).save(path)
    return path


# (score the stand-in gives, accuracy, kept?) against threshold(7) = 0.69333 and
# threshold(8) = 0.75556 of YOLOv11-Nano's 32..88 range.
YOLO_CASES = [(0.70, 7, True), (0.69, 7, False), (0.76, 8, True), (0.75, 8, False),
              (0.33, 1, True), (0.31, 1, False), (0.89, 10, True), (0.87, 10, False)]


@pytest.mark.parametrize(("score", "accuracy", "kept"), YOLO_CASES)
def test_yolo11_stand_in_is_found_in_digikams_folder_and_thresholded(
        digikam_folder, tmp_path, score, accuracy, kept):
    made = bright_box_yolo(digikam_folder / "yolo11n.onnx", score=score, class_id=16)
    spec = stand_in(load_catalogue().get("yolo11n"), made)
    model_xml = install.install(spec)  # no download: the mirrors are dead
    assert model_xml.is_file()
    result = Tagger(spec, accuracy=accuracy, precision="f32").tag_file(bright_rectangle(tmp_path))
    assert [t.label for t in result.tags] == (["dog"] if kept else [])
    if kept:
        assert [round(v) for v in result.tags[0].box.as_list()] == [200, 100, 400, 300]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize(("top", "accuracy", "kept"), [(0.61, 7, True), (0.59, 7, False),
                                                       (0.81, 10, True), (0.79, 10, False)])
def test_efficientnet_b7_stand_in_keeps_top_one_over_threshold(
        digikam_folder, photos, layout, top, accuracy, kept):
    probabilities = np.full((1, 1000), (1 - top) / 999, np.float32)
    probabilities[0, 281] = top
    made = fixed_logits_classifier(digikam_folder / "efficientnetb7.onnx", probabilities,
                                   layout=layout)
    spec = stand_in(load_catalogue().get("efficientnet-b7"), made)
    install.install(spec)
    result = Tagger(spec, accuracy=accuracy, precision="f32").tag_file(photos["cat"])
    assert [(t.label, round(t.score, 4)) for t in result.tags] == ([("tabby", top)] if kept else [])


def test_files_from_a_given_folder_are_used_and_wrong_ones_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTAGS_HOME", str(tmp_path / "autotags"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "nothing-here"))
    mine = tmp_path / "my-models"
    mine.mkdir()
    made = bright_box_yolo(mine / "yolo11n.onnx")
    spec = stand_in(load_catalogue().get("yolo11n"), made)
    assert install.install(spec, search=[mine]).is_file()

    install.remove(spec)
    tampered = dataclasses.replace(spec, source=dataclasses.replace(
        spec.source, files=(SourceFile("yolo11n.onnx", made.stat().st_size, "0" * 64),)))
    with pytest.raises(InstallError, match=r"could not download yolo11n\.onnx"):
        install.install(tampered, search=[mine])  # the local copy does not verify


@pytest.fixture(scope="module")
def yolov3_tiny() -> Tagger:
    return Tagger("yolov3-tiny", precision="f32")  # installs from the package index


@pytest.mark.parametrize(("photo", "expected"), [
    ("dog", [{"dog"}, {"bicycle"}, {"car", "truck"}]),
    ("person", [{"person"}, {"horse"}]),
    ("horses", [{"horse"}]),
])
def test_yolov3_tiny_with_real_weights_finds_objects(yolov3_tiny, photos, photo, expected):
    labels = set(yolov3_tiny.tag_file(photos[photo]).labels)
    for choices in expected:
        assert labels & choices, f"{photo}: none of {choices} in {labels}"


def test_yolov3_tiny_boxes_land_on_the_objects(yolov3_tiny, photos):
    result = yolov3_tiny.tag_file(photos["dog"])
    dog = next(t for t in result.tags if t.label == "dog")
    assert dog.box.x1 < 200 and dog.box.y1 > 150 and dog.box.x2 < 420 and dog.box.y2 > 450


# ---- bring your own model ------------------------------------------------------------

def autotags(*args: object, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={"AUTOTAGS_HOME": str(home), "PATH": "/usr/bin:/bin",
                               "HOME": str(home)})


def ultralytics_like(path: Path, names: dict[int, str], size: int = 320) -> Path:
    bright_box_yolo(path, size=size, candidates=2100, classes=len(names), class_id=1)
    model = onnx.load(str(path))
    for key, value in {"names": repr(names), "imgsz": f"[{size}, {size}]"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_add_an_ultralytics_export_then_tag_list_and_remove(tmp_path):
    home = tmp_path / "home"
    model = ultralytics_like(tmp_path / "fruit.onnx", {0: "apple", 1: "pear", 2: "plum"})
    added = autotags("models", "add", model, "--name", "fruit", home=home)
    assert added.returncode == 0, added.stderr
    assert "detector, 3 classes, input 320x320, output yolo" in added.stdout

    rows = {r["name"]: r for r in map(json.loads,
                                      autotags("models", "list", "--json", home=home)
                                      .stdout.splitlines())}
    assert rows["fruit"]["installed"] and rows["fruit"]["classes"] == 3
    tagged = autotags("tag", "--json", "--model", "fruit", bright_rectangle(tmp_path), home=home)
    assert [t["label"] for t in json.loads(tagged.stdout)["tags"]] == ["pear"]

    assert autotags("models", "remove", "fruit", home=home).returncode == 0
    assert "fruit" not in autotags("models", "list", home=home).stdout


def test_add_refuses_what_it_cannot_use(tmp_path):
    home = tmp_path / "home"
    notes = tmp_path / "notes.onnx"
    notes.write_text("not a model")
    undecodable = tmp_path / "segmenter.onnx"
    fixed_logits_classifier(undecodable, np.zeros((1, 4, 8, 8), np.float32), size=64)
    plain = bright_box_yolo(tmp_path / "plain.onnx", size=320, candidates=2100, classes=3,
                            class_id=0)
    cases = [
        ((notes, "--name", "a"), "notes.onnx: cannot read it as a model"),
        ((tmp_path / "photo.jpg", "--name", "a"), "no such file"),
        ((undecodable, "--name", "a"),
         "output shape [1, 4, 8, 8] is not one the engine can decode"),
        ((plain, "--name", "a"), "carries no class names: give them with --labels FILE"),
        ((plain, "--name", "a", "--labels", tmp_path / "missing.txt"),
         "labels file " + str(tmp_path / "missing.txt") + " not found"),
        ((plain, "--name", "yolov3-tiny"), "'yolov3-tiny' is a built-in model"),
        ((plain, "--name", "Bad Name!"), "invalid model name"),
    ]
    for args, message in cases:
        completed = autotags("models", "add", *args, home=home)
        assert completed.returncode == 3, (args, completed.stderr)
        assert message in completed.stderr, (message, completed.stderr)
    packaged = len(load_catalogue(with_user_models=False).models)
    assert autotags("models", "list", "--json", home=home).stdout.count('"name"') == packaged


# ---- a broken user catalogue (issue: nothing crashes) ---------------------------------

def test_a_broken_user_catalogue_is_one_warning_and_every_command_still_works(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.toml").write_text("[models.mine\nthis is not TOML")
    for command in (("--version",), ("models", "list"), ("search", "cat", "--db",
                                                          tmp_path / "none.sqlite3")):
        completed = autotags(*command, home=home)
        assert "Traceback" not in completed.stderr, command
        assert completed.stderr.count("models.toml: cannot read it") == 1, command
    assert autotags("models", "list", home=home).returncode == 0
    assert autotags("--version", home=home).stdout.startswith("autotags ")


def test_an_entry_whose_files_were_deleted_is_skipped_and_can_be_removed(tmp_path):
    home = tmp_path / "home"
    model = ultralytics_like(tmp_path / "fruit.onnx", {0: "apple", 1: "pear", 2: "plum"})
    assert autotags("models", "add", model, "--name", "fruit", home=home).returncode == 0
    assert (home / "user-models" / "fruit" / "model.xml").is_file()  # user data, not cache
    assert not (home / "models" / "fruit").exists()
    shutil.rmtree(home / "user-models" / "fruit")
    listed = autotags("models", "list", home=home)
    assert listed.returncode == 0 and "fruit" not in listed.stdout
    assert "skipped (remove it with: autotags models remove fruit)" in listed.stderr
    removed = autotags("models", "remove", "fruit", home=home)
    assert removed.returncode == 0, removed.stderr
    assert "skipped" not in autotags("models", "list", home=home).stderr


def test_model_names_that_are_paths_never_reach_the_file_system(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    (home / "models.toml").write_text(
        '[models."../../victim"]\nkind = "detector"\n')
    for name in ("../../victim", "../victim", "a/b"):
        completed = autotags("models", "remove", name, home=home)
        assert completed.returncode == 3, name
        assert "Traceback" not in completed.stderr
    assert (victim / "precious.txt").read_text() == "keep me"
