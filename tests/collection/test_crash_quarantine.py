"""Protects a collection from a file that kills the process (issue: nothing wedges a
scan): after a real crash (the engine's test hook aborts on a chosen file name, as a
decoder bug in a third-party library would), the next scan finds that file, records it
as failed, and tags the rest; it is retried only when changed or with --retry-failed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

from autotags import TagStore

POISON = "poison"


def scan(folder, db, *options, poison=True):
    env = {**os.environ, **({"AUTOTAGS_TEST_CRASH_ON": POISON} if poison else {})}
    return subprocess.run([sys.executable, "-m", "autotags.cli", "scan", str(folder), "--db",
                           str(db), "--precision", "f32", "--json", *options],
                          capture_output=True, text=True, timeout=300, env=env)


def test_the_file_that_killed_a_scan_is_quarantined_and_the_rest_tagged(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ("cat", "dog", "coffee", "astronaut", "horses", "person")
    for index, name in enumerate(names):
        shutil.copy(photos[name], folder / f"{index}-{name}{photos[name].suffix}")
    poisoned = folder / f"2-{POISON}.jpg"
    shutil.copy(photos["kite"], poisoned)
    db = tmp_path / "tags.sqlite3"

    died = scan(folder, db)
    assert died.returncode in (-signal.SIGABRT, 128 + signal.SIGABRT), died.stderr

    finished = scan(folder, db)
    assert finished.returncode == 1, finished.stderr  # one file failed, the rest is stored
    report = json.loads(finished.stdout)
    [failure] = report["failures"]
    assert failure["path"] == str(poisoned)
    assert "the decoder crashed on this file (killed by SIGABRT)" in failure["error"]
    with TagStore(db, read_only=True) as store:
        assert store.search("cat") and store.search("dog") and store.search("horse")
        assert store.in_flight() == {}
        assert store.counts()["images"] == len(names) + 1

    again = scan(folder, db)  # unchanged: not retried, nothing crashes
    assert again.returncode == 0 and json.loads(again.stdout)["inferred"] == 0

    retried = scan(folder, db, "--retry-failed")  # retried on request: it kills again
    assert retried.returncode in (-signal.SIGABRT, 128 + signal.SIGABRT)
    healed = scan(folder, db, "--retry-failed", poison=False)  # e.g. after a libvips fix
    assert healed.returncode == 0, healed.stderr
    with TagStore(db, read_only=True) as store:
        [scanned] = store.image_info(poisoned)["scans"]  # type: ignore[index]
        assert scanned["error"] is None
        assert store.tags_of(poisoned)


def test_an_interrupted_scan_leaves_nothing_to_check(tmp_path, photos):
    """Ctrl-C is no crash: the files it had in flight are not probed next time."""
    from helpers.scan_processes import big_collection, start_scan, wait_for_rows

    folder = big_collection(tmp_path / "photos", photos, copies=8)
    db = tmp_path / "tags.sqlite3"
    process = start_scan(folder, db, "--threads", "1")
    wait_for_rows(db, 1, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    with TagStore(db, read_only=True) as store:
        assert store.in_flight() == {}


def test_a_two_model_scan_that_died_quarantines_the_file_for_both(tmp_path, photos):
    """Both models share each decode: the file that killed it is failed for each."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cat", "dog", "horses"):
        shutil.copy(photos[name], folder / f"{name}{photos[name].suffix}")
    poisoned = folder / f"{POISON}.jpg"
    shutil.copy(photos["kite"], poisoned)
    db = tmp_path / "tags.sqlite3"
    models = ("--model", "ssd-mobilenet-v2,efficientnet-lite3")
    died = scan(folder, db, *models)
    assert died.returncode in (-signal.SIGABRT, 128 + signal.SIGABRT), died.stderr
    finished = scan(folder, db, *models)
    assert finished.returncode == 1, finished.stderr
    failures = json.loads(finished.stdout)["failures"]
    assert sorted((f["path"], f["model"]) for f in failures) == [
        (str(poisoned), "efficientnet-lite3"), (str(poisoned), "ssd-mobilenet-v2")]
    with TagStore(db, read_only=True) as store:
        assert store.search("dog") and store.search("horse") and store.in_flight() == {}
        assert {t.source for t in store.tags_of(folder / "dog.jpg")} == {
            "ssd-mobilenet-v2", "efficientnet-lite3"}
