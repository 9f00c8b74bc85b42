"""The model catalogue and digiKam's accuracy formula."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from autotags import CatalogueError, load_catalogue
from helpers.model_specs import local_spec


@pytest.mark.parametrize(
    ("threshold_range", "accuracy", "expected"),
    [
        # digiKam's models at the default accuracy 7 (reference numbers)
        ((32, 88), 7, 0.6933),  # YOLOv11-Nano
        ((33, 87), 7, 0.69),    # YOLOv11-XLarge
        ((20, 80), 7, 0.60),    # EfficientNet-B7
        # the ends of the slider are the ends of the range
        ((32, 88), 1, 0.32),
        ((32, 88), 10, 0.88),
        ((20, 80), 4, 0.40),
    ],
)
def test_accuracy_formula_matches_digikam(tmp_path, threshold_range, accuracy, expected):
    spec = local_spec(tmp_path / "m.onnx", threshold=threshold_range)
    assert spec.threshold(accuracy) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("accuracy", [0, 11, -3])
def test_accuracy_outside_slider_is_refused(tmp_path, accuracy):
    with pytest.raises(ValueError, match=r"accuracy must be 1\.\.10"):
        local_spec(tmp_path / "m.onnx").threshold(accuracy)


def test_default_models_exist_and_share_coco_labels():
    catalogue = load_catalogue()
    assert catalogue.default_models == ("ssd-mobilenet-v2",)
    ssd = catalogue.get("ssd-mobilenet-v2")
    assert len(ssd.labels) == 80
    assert ssd.labels[0] == "person" and "cat" in ssd.labels and "dining table" in ssd.labels
    # COCO-91 ids: 1 = person, 17 = cat, 90 = toothbrush; 12 is unused
    class_map = ssd.class_map()
    assert ssd.labels[class_map[1]] == "person"
    assert ssd.labels[class_map[17]] == "cat"
    assert ssd.labels[class_map[90]] == "toothbrush"
    assert class_map[12] == -1 and class_map[0] == -1


def test_imagenet_labels_are_readable_and_unique():
    labels = load_catalogue().get("efficientnet-lite3").labels
    assert len(labels) == 1000 == len(set(labels))
    assert labels[281] == "tabby"
    assert all("," not in label and "/" not in label and not label.startswith("n0")
               for label in labels)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(CatalogueError, match=r"unknown model 'nope'.*ssd-mobilenet-v2"):
        load_catalogue().get("nope")


# ---- read once per process (issue 21) --------------------------------------------------

COUNT_CATALOGUE_READS = """
import atexit, collections, os, sys
reads = collections.Counter()

def count(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.endswith("catalogue.toml") or os.sep + "labels" + os.sep in path:
            reads[path] += 1

sys.addaudithook(count)
atexit.register(lambda: print("READS", dict(reads), file=sys.stderr))
from autotags.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_two_model_scan_reads_the_catalogue_and_each_label_file_once(photos, tmp_path):
    """Counted by Python's own audit events for every file the process opens."""
    completed = subprocess.run(
        [sys.executable, "-c", COUNT_CATALOGUE_READS, "scan", photos["dog"], photos["cat"],
         "--model", "ssd-mobilenet-v2,efficientnet-lite3", "--db", tmp_path / "tags.sqlite3"],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    reads = ast.literal_eval(completed.stderr.rsplit("READS ", 1)[1].strip())
    catalogue_reads = [n for path, n in reads.items() if path.endswith("catalogue.toml")]
    label_reads = {path: n for path, n in reads.items() if "/labels/" in path}
    assert catalogue_reads == [1]
    assert len(label_reads) >= 2  # both models' label files were read ...
    assert set(label_reads.values()) == {1}  # ... each of them once
