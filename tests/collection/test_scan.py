"""Scanning real photo collections into real SQLite files."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotags import Tagger, scan
from autotags.collection.reports import ScanProgress
from autotags.collection.scan_lock import ScanBusyError, exclusive_scan
from autotags.collection.store import TagStore
from helpers.sample_files import make_bad_files
from helpers.scan_processes import (
    big_collection,
    integrity,
    scanned_rows,
    start_scan,
    wait_for_rows,
)


@pytest.fixture()
def collection(tmp_path, photos) -> Path:
    """Real photos in nested folders, with things a walk must not take."""
    root = tmp_path / "photos"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    shutil.copy(photos["cat"], root / "cat.png")
    shutil.copy(photos["dog"], root / "dog.jpg")
    shutil.copy(photos["astronaut"], root / "2024" / "astronaut.png")
    shutil.copy(photos["person"], root / "2024" / "person.jpg")
    shutil.copy(photos["coffee"], root / "2024" / "summer" / "coffee")  # no extension
    shutil.copy(photos["cat"], root / ".thumbnails" / "hidden.png")
    (root / "notes.txt").write_text("not a photo")
    (root / "2024" / "back-to-top").symlink_to(root)  # a loop
    return root


def tag_sets(db: Path) -> dict[str, set[str]]:
    with TagStore(db) as store, sqlite3.connect(db) as raw:
        paths = [os.fsdecode(p) for (p,) in raw.execute("SELECT path FROM images")]
        return {p: {f"{t.path}@{t.source}" for t in store.tags_of(p)} for p in paths}


def test_scan_then_search_show_and_tags(collection, detector, tmp_path):
    db = tmp_path / "tags.sqlite3"
    report = scan([collection], db=db, model=detector)
    assert report.found == 5 and report.scanned == 5 and not report.failures
    with TagStore(db) as store:
        assert store.search("cat") == [str(collection / "cat.png")]
        assert store.search("person") == [str(collection / "2024" / "astronaut.png"),
                                          str(collection / "2024" / "person.jpg")]
        assert store.search("cup") == [str(collection / "2024" / "summer" / "coffee")]
        dog_tags = {t.path: t for t in store.tags_of(collection / "dog.jpg")}
        assert {"auto/dog", "auto/bicycle"} <= set(dog_tags)
        assert dog_tags["auto/dog"].source == "ssd-mobilenet-v2"
        assert 0.6 <= dog_tags["auto/dog"].confidence <= 1
        tree = {node.path: node.images for node in store.tag_tree()}
        assert tree["auto"] == 5 and tree["auto/person"] == 2 and tree["auto/animal/cat"] == 1


def test_several_models_give_one_merged_tag_set(collection, detector, classifier, tmp_path):
    db = tmp_path / "tags.sqlite3"
    scan([collection / "cat.png"], db=db, model=[detector, classifier])
    with TagStore(db) as store:
        sources = {t.source for t in store.tags_of(collection / "cat.png")}
        assert sources == {"ssd-mobilenet-v2", "efficientnet-lite3"}
        assert store.search("cat") == store.search("Egyptian cat") == [str(collection / "cat.png")]


def test_new_mode_skips_unchanged_rescans_changed_and_marks_missing(collection, detector,
                                                                    photos, tmp_path):
    db = tmp_path / "tags.sqlite3"
    first = scan([collection], db=db, model=detector)
    assert first.inferred == 5

    before = detector.images_inferred
    again = scan([collection], db=db, model=detector)
    assert (again.inferred, again.scanned, again.skipped) == (0, 0, 5)
    assert detector.images_inferred == before  # the engine itself ran nothing

    dog = collection / "dog.jpg"
    os.utime(dog, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched
    touched = scan([collection], db=db, model=detector)
    assert (touched.inferred, touched.skipped) == (1, 4)

    shutil.copy(photos["horses"], collection / "cat.png")  # replaced by another photo
    replaced = scan([collection], db=db, model=detector)
    assert replaced.inferred == 1
    with TagStore(db) as store:
        assert str(collection / "cat.png") in store.search("horse")
        assert store.search("cat") == []  # replace policy dropped the old cat

    (collection / "2024" / "person.jpg").unlink()
    deleted = scan([collection], db=db, model=detector)
    assert (deleted.inferred, deleted.newly_missing) == (0, 1)
    with TagStore(db) as store:
        gone = str(collection / "2024" / "person.jpg")
        assert gone not in store.search("person")
        assert gone in store.search("person", include_missing=True)
        assert store.tags_of(gone), "history of a missing file is kept"
        assert store.image_info(gone)["missing"] is True

    mode_all = scan([collection], db=db, model=detector, mode="all")
    assert mode_all.inferred == 4


def test_update_policy_keeps_earlier_auto_tags(collection, photos, tmp_path):
    db = tmp_path / "tags.sqlite3"
    image = collection / "dog.jpg"
    loose = Tagger("ssd-mobilenet-v2", accuracy=1, precision="f32")
    strict = Tagger("ssd-mobilenet-v2", accuracy=10, precision="f32")
    scan([image], db=db, model=loose)
    with TagStore(db) as store:
        many = {t.path for t in store.tags_of(image)}
        store.add_manual_tag(image, "pets/rex")
    scan([image], db=db, model=strict, mode="all", policy="update")
    with TagStore(db) as store:
        assert {t.path for t in store.tags_of(image)} == many | {"pets/rex"}
    scan([image], db=db, model=strict, mode="all", policy="replace")
    with TagStore(db) as store:
        kept = {t.path for t in store.tags_of(image)}
        assert "pets/rex" in kept and len(kept) < len(many) + 1
        assert all(t.confidence >= 0.8 for t in store.tags_of(image) if t.source != "manual")


def test_images_inferred_while_the_caller_is_busy_are_counted(collection, detector, tmp_path):
    """The engine keeps inferring on its own threads while a slow progress callback runs;
    every image it sent through the network must still be in the report."""
    before = detector.images_inferred
    report = scan([collection], db=tmp_path / "tags.sqlite3", model=detector,
                  progress=lambda _: time.sleep(0.3))
    assert report.inferred == detector.images_inferred - before == 5


def test_progress_reports_done_total_file_and_rate(collection, detector, tmp_path):
    seen: list[ScanProgress] = []
    scan([collection], db=tmp_path / "tags.sqlite3", model=detector, progress=seen.append)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert {p.total for p in seen} == {5}
    assert {os.path.basename(p.path) for p in seen} == {
        "cat.png", "dog.jpg", "astronaut.png", "person.jpg", "coffee"}
    assert all(p.model == "ssd-mobilenet-v2" and p.images_per_second > 0 for p in seen)
    assert seen[-1].eta_seconds == 0


def test_bad_inputs_in_a_tree_are_recorded_and_the_scan_finishes(collection, detector, photos,
                                                                  tmp_path, monkeypatch):
    bad_dir = collection / "bad"
    bad_dir.mkdir()
    bad = make_bad_files(bad_dir, photos["dog"])
    os.rmdir(bad_dir / "folder.jpg")
    non_utf8 = os.fsencode(collection) + b"/caf\xe9-\xff.jpg"
    shutil.copy(photos["dog"], non_utf8)
    locked = collection / "private"
    locked.mkdir()
    shutil.copy(photos["cat"], locked / "secret.png")
    if os.geteuid() == 0:
        # root reads any folder, so the permission error is the one fault simulated here
        real_scandir = os.scandir

        def scandir(path):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        locked.chmod(0)

    db = tmp_path / "tags.sqlite3"
    report = scan([collection, bad["missing"][0]], db=db, model=detector)
    failed = {f.path: f.error for f in report.failures}
    for kind in ("empty", "truncated", "text", "huge", "missing"):
        path, words = bad[kind]
        assert words in failed[str(path)], kind
    assert "Permission denied" in failed[str(locked)]
    assert report.found == 5 + 4 + 1  # good photos, bad files, the non-UTF-8 one
    with TagStore(db) as store:
        assert os.fsdecode(non_utf8) in store.search("dog")
        assert {f.path for f in store.failures()} == {str(bad[k][0]) for k in
                                                      ("empty", "truncated", "text", "huge")}

    retry = scan([collection], db=db, model=detector)
    assert retry.scanned == 0  # failures are not retried while unchanged
    forced = scan([collection], db=db, model=detector, retry_failed=True)
    assert forced.scanned == 4 and len(forced.failures) == 5  # 4 files + the folder


def test_second_concurrent_scan_is_refused_clearly(tmp_path):
    db = tmp_path / "tags.sqlite3"
    with exclusive_scan(db), pytest.raises(ScanBusyError, match="another autotags scan"):
        scan([tmp_path], db=db)


# ---- whole processes -----------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_at_random_points_leaves_a_consistent_resumable_database(photos, tmp_path,
                                                                          detector):
    folder = big_collection(tmp_path / "photos", photos, copies=16)  # 96 images
    reference_db = tmp_path / "reference.sqlite3"
    scan([folder], db=reference_db, model=detector)
    reference = tag_sets(reference_db)
    assert len(reference) == 96

    db = tmp_path / "killed.sqlite3"
    chance = random.Random(2026)
    stopped_partway = 0
    # Each run resumes the previous one; each is killed once its progress passes a mark,
    # after a random extra moment (during decoding, inference or a commit).
    for mark in (0, 1, 30, 60, 80):
        process = start_scan(folder, db, "--threads", "1")
        wait_for_rows(db, mark, process)
        time.sleep(chance.uniform(0, 0.3))
        process.kill()
        process.wait()
        if db.exists():
            assert integrity(db) == "ok"
            stopped_partway += 0 < scanned_rows(db) < 96
    assert stopped_partway >= 2, "the kills should land in the middle of scans"

    finish = start_scan(folder, db)
    assert finish.wait(timeout=300) == 0, finish.stderr.read()
    assert integrity(db) == "ok"
    assert tag_sets(db) == reference  # same tags, no duplicate links
    assert scanned_rows(db) == 96


READER = r"""
import sqlite3, sys, time
from autotags.collection.store import TagStore
db, seconds = sys.argv[1], float(sys.argv[2])
orphans = '''SELECT count(*) FROM image_tags t WHERE t.source != 'manual' AND NOT EXISTS
             (SELECT 1 FROM scans s WHERE s.image_id = t.image_id AND s.model = t.source
              AND s.error IS NULL)'''
last, reads, end = 0, 0, time.monotonic() + seconds
while time.monotonic() < end:
    with TagStore(db) as store:
        store.search("dog")
        scanned = store.counts()["images"]
        assert scanned >= last, (scanned, last)
        last = scanned
        assert store._db.execute(orphans).fetchone()[0] == 0
    reads += 1
print(reads, last)
"""


@pytest.mark.slow
def test_readers_see_consistent_data_while_a_scan_writes(photos, tmp_path):
    folder = big_collection(tmp_path / "photos", photos, copies=16)  # 96 images
    db = tmp_path / "tags.sqlite3"
    TagStore(db).close()
    writer = start_scan(folder, db, "--threads", "1")
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(db), "4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    wait_for_rows(db, 1, writer)
    assert writer.poll() is None, "the first scan should still be writing"
    second = start_scan(folder, db)
    _, second_error = second.communicate(timeout=120)
    assert writer.poll() is None, "the first scan should still be writing"
    assert second.returncode == 3
    assert "another autotags scan is writing to" in second_error

    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        assert int(out.split()[0]) > 1
    assert writer.wait(timeout=300) == 0
    assert integrity(db) == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interrupted_scan_keeps_finished_work_and_a_rerun_completes(photos, tmp_path, stop):
    folder = big_collection(tmp_path / "photos", photos, copies=8)  # 48 images
    db = tmp_path / "tags.sqlite3"
    process = start_scan(folder, db, "--threads", "1")
    wait_for_rows(db, 1, process)
    process.send_signal(stop)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "run the same command again to continue" in error
    assert "Traceback" not in error
    assert integrity(db) == "ok"
    kept = scanned_rows(db)
    assert 0 < kept < 48

    rerun = start_scan(folder, db)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert json.loads(out)["scanned"] == 48 - kept  # continues, does not start over
    assert scanned_rows(db) == 48


def test_a_file_only_one_model_still_needs_is_decoded_only_for_it(tmp_path, photos):
    """Two models share one decode, but --mode new asks each model only for its own
    work: a photo the detector already tagged goes through the classifier alone."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("dog", "horses", "cat"):
        shutil.copy(photos[name], folder / f"{name}{photos[name].suffix}")
    db = tmp_path / "tags.sqlite3"
    scan([folder / "dog.jpg"], db=db, model="ssd-mobilenet-v2", precision="f32")
    report = scan(folder, db=db, model=["ssd-mobilenet-v2", "efficientnet-lite3"],
                  precision="f32")
    detector, classifier = report.models["ssd-mobilenet-v2"], report.models["efficientnet-lite3"]
    assert (detector.tagged, detector.up_to_date) == (2, 1)
    assert (classifier.tagged, classifier.up_to_date) == (3, 0)
    assert report.inferred == 5  # 2 + 3: the detector did not see dog.jpg again
    assert report.images_stored == 3
    with TagStore(db) as store:
        assert {t.source for t in store.tags_of(folder / "dog.jpg")} == {
            "ssd-mobilenet-v2", "efficientnet-lite3"}
