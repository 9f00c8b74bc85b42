"""The `autotags` command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autotags.cli import build_parser


def autotags(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_tag_help_documents_every_option():
    parser = build_parser()
    tag_parser = parser._subparsers._group_actions[0].choices["tag"]  # type: ignore[union-attr]
    help_text = autotags("tag", "--help").stdout
    for action in tag_parser._actions:
        assert action.help, f"option {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in help_text
    for words in ("--accuracy", "digiKam", "--json", "exit status", "AUTO", "--threads"):
        assert words in help_text


def test_tag_prints_labels_and_reports_failures(photos, tmp_path):
    missing = tmp_path / "missing.jpg"
    completed = autotags("tag", "--precision", "f32", photos["cat"], missing, photos["coffee"])
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{photos['cat']} (451x300): cat ")
    assert lines[1] == f"{missing}: error: no such file"
    assert "cup" in lines[2]
    assert "1 of 3 files could not be tagged" in completed.stderr


def test_tag_json_has_one_object_per_file(photos, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    completed = autotags("tag", "--json", "--precision", "f32", photos["dog"], text)
    assert completed.returncode == 1
    objects = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [o["path"] for o in objects] == [str(photos["dog"]), str(text)]
    dog, bad = objects
    assert set(dog) == {"path", "width", "height", "model", "tags", "error"}
    assert (dog["width"], dog["height"], dog["error"]) == (768, 576, None)
    assert {"dog", "bicycle"} <= {t["label"] for t in dog["tags"]}
    for tag in dog["tags"]:
        assert set(tag) == {"label", "score", "box"} and len(tag["box"]) == 4
        assert 0.6 <= tag["score"] <= 1
    assert bad["tags"] == [] and str(text) in bad["error"]


def test_classifier_json_has_no_boxes(photos):
    completed = autotags("tag", "--json", "--model", "efficientnet-lite3", photos["cat"])
    result = json.loads(completed.stdout)
    assert completed.returncode == 0
    assert result["tags"] and all(tag["box"] is None for tag in result["tags"])


@pytest.mark.parametrize(("args", "message"), [
    (["tag", "--accuracy", "11", "x.jpg"], "--accuracy: must be a whole number from 1 to 10"),
    (["tag", "--accuracy", "high", "x.jpg"], "--accuracy: must be a whole number from 1 to 10"),
    (["tag", "--threads", "0", "x.jpg"], "--threads: must be a whole number of at least 1"),
    (["tag"], "the following arguments are required: PATH"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_wrong_arguments_exit_2_with_a_message(args, message):
    completed = autotags(*args)
    assert completed.returncode == 2
    assert message in completed.stderr


def test_unknown_model_and_missing_device_exit_3(photos):
    unknown = autotags("tag", "--model", "yolo99", photos["cat"])
    assert unknown.returncode == 3 and "unknown model 'yolo99'" in unknown.stderr
    no_device = autotags("tag", "--device", "NPU.7", photos["cat"])
    assert no_device.returncode == 3
    assert "device 'NPU.7' is not available on this machine; available: CPU" in no_device.stderr


def test_models_lists_the_catalogue():
    completed = autotags("models", "list", "--json")
    rows = {row["name"]: row for row in map(json.loads, completed.stdout.splitlines())}
    assert rows["ssd-mobilenet-v2"]["kind"] == "detector"
    assert rows["ssd-mobilenet-v2"]["classes"] == 80 and rows["ssd-mobilenet-v2"]["default"]
    assert rows["efficientnet-lite3"]["kind"] == "classifier"
    assert rows["efficientnet-lite3"]["input"] == "280x280"
    info = json.loads(autotags("models", "info", "ssd-mobilenet-v2").stdout)
    assert info["threshold_at_accuracy"]["7"] == pytest.approx(0.6)
