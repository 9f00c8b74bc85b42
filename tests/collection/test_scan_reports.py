"""Protects honest scan reports: images are counted once and each model's work apart, the
tagging rate leaves model loading out, --mode new notices a changed accuracy, the resume
hint is true for the mode that ran, tags nobody carries leave `tags`, and no lock file is
left beside the database."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest

from autotags import Tagger, TagStore, scan
from autotags.collection.store import FileState, NewTag
from helpers.scan_processes import (
    big_collection,
    integrity,
    scanned_rows,
    start_scan,
    wait_for_rows,
)


def autotags(*args):
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def three_photos(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cat", "dog", "horses"):
        shutil.copy(photos[name], folder / photos[name].name)
    return folder


def test_two_models_count_images_once_and_each_model_apart(three_photos, tmp_path, detector,
                                                            classifier):
    db = tmp_path / "tags.sqlite3"
    report = scan([three_photos], db=db, model=[detector, classifier])
    assert (report.found, report.images_stored, report.scanned) == (3, 3, 6)
    assert {name: (c.tagged, c.failed, c.up_to_date) for name, c in report.models.items()} == {
        "ssd-mobilenet-v2": (3, 0, 0), "efficientnet-lite3": (3, 0, 0)}
    assert report.tagging_seconds > 0 and report.images_per_second == pytest.approx(
        6 / report.tagging_seconds)

    again = scan([three_photos], db=db, model=[detector, classifier])
    assert again.images_stored == 0
    assert {c.up_to_date for c in again.models.values()} == {3}


def test_the_summary_speaks_of_images_and_of_each_model(three_photos, tmp_path):
    db = tmp_path / "tags.sqlite3"
    out = autotags("scan", three_photos, "--db", db, "--precision", "f32",
                   "--model", "ssd-mobilenet-v2,efficientnet-lite3").stdout
    assert out.startswith("3 images found, 3 stored now, 0 newly missing")
    assert "loading models" in out
    assert "  ssd-mobilenet-v2: 3 tagged, 0 failed, 0 already up to date in" in out
    assert "  efficientnet-lite3: 3 tagged, 0 failed, 0 already up to date in" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "tags.sqlite3"]


def test_new_mode_rescans_what_was_tagged_at_another_accuracy(three_photos, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    scan([three_photos], db=db, model=detector)
    stricter = Tagger("ssd-mobilenet-v2", accuracy=9, precision="f32")
    report = scan([three_photos], db=db, model=stricter)
    counts = report.models["ssd-mobilenet-v2"]
    assert (report.inferred, counts.tagged, counts.new_settings) == (3, 3, 3)
    with TagStore(db) as store:
        shown = store.image_info(three_photos / "horses.jpg")
    assert shown["scans"][0]["settings"]["accuracy"] == 9  # type: ignore[index]
    assert scan([three_photos], db=db, model=stricter).inferred == 0


def test_a_tag_that_loses_its_last_image_leaves_the_tag_list(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        state = FileState(1, 1)
        with store.transaction():
            store.record_scan(tmp_path / "a.jpg", "m", state, {}, tags=[NewTag("cat", 0.9)])
            store.record_scan(tmp_path / "b.jpg", "m", state, {}, tags=[NewTag("dog", 0.9)])
        assert [n.path for n in store.tag_tree()] == ["auto", "auto/cat", "auto/dog"]
        with store.transaction():
            store.record_scan(tmp_path / "a.jpg", "m", state, {}, tags=[NewTag("dog", 0.8)])
        assert [(n.path, n.images) for n in store.tag_tree()] == [("auto", 2), ("auto/dog", 2)]


def test_tag_takes_several_models_like_scan(photos):
    completed = autotags("tag", "--model", "ssd-mobilenet-v2,efficientnet-lite3",
                         "--precision", "f32", photos["cat"])
    assert completed.returncode == 0, completed.stderr
    line = completed.stdout.strip()
    assert line.startswith(f"{photos['cat']} (451x300): cat ")
    assert "[ssd-mobilenet-v2]; " in line and line.endswith("[efficientnet-lite3]")
    objects = [json.loads(row) for row in autotags(
        "tag", "--json", "--model", "ssd-mobilenet-v2,efficientnet-lite3",
        photos["cat"]).stdout.splitlines()]
    assert [o["model"] for o in objects] == ["ssd-mobilenet-v2", "efficientnet-lite3"]
    assert autotags("tag", "--model", ",", photos["cat"]).returncode == 2


@pytest.mark.slow
def test_an_interrupted_mode_all_says_how_to_finish_and_that_works(photos, tmp_path):
    folder = big_collection(tmp_path / "photos", photos, copies=8)  # 48 images
    db = tmp_path / "tags.sqlite3"
    process = start_scan(folder, db, "--threads", "1", "--mode", "all")
    wait_for_rows(db, 1, process)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130
    kept = scanned_rows(db)
    assert f"interrupted: {kept} images stored" in error
    assert "run it again with --mode new" in error
    assert integrity(db) == "ok"

    rerun = start_scan(folder, db, "--mode", "new")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert json.loads(out)["scanned"] == 48 - kept
