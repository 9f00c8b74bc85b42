"""Protects a photo's tags in the store (issue: nothing loses a photo's tags): images found
again stop being missing, moved or renamed photos keep their manual tags and history,
linked folders do not duplicate images, queries never write, SQLite failures are one
line and roll back, nothing creates folders nobody asked for, and the Python API takes a
single path as one path and expands `~`; the scan lock holds whatever the environment,
devices and unreadable logs are never taken for databases, and trees of any depth are
walked."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autotags import TagStore, scan
from autotags.collection.discovery import discover
from autotags.collection.scan_lock import exclusive_scan, lock_path
from autotags.collection.store import FileState, StoreError


def autotags(*args, env=None):
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture()
def collection(tmp_path, photos):
    root = tmp_path / "photos"
    (root / "2024").mkdir(parents=True)
    (root / "2025").mkdir()
    shutil.copy2(photos["cat"], root / "2024" / "cat.png")
    shutil.copy2(photos["dog"], root / "2025" / "dog.jpg")
    return root


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_folder_that_comes_back_is_not_missing_any_more(collection, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    scan([collection], db=db, model=detector)
    shutil.move(collection / "2024", tmp_path / "away")
    assert scan([collection], db=db, model=detector).newly_missing == 1
    shutil.move(tmp_path / "away", collection / "2024")
    report = scan([collection], db=db, model=detector)
    assert (report.back, report.inferred) == (1, 0)
    with TagStore(db) as store:
        assert store.search("cat") == [str(collection / "2024" / "cat.png")]
        assert store.image_info(collection / "2024" / "cat.png")["missing"] is False


def test_a_renamed_or_moved_photo_keeps_its_manual_tags_and_history(collection, tmp_path,
                                                                     detector):
    db = tmp_path / "tags.sqlite3"
    scan([collection], db=db, model=detector)
    with TagStore(db) as store:
        store.add_manual_tag(collection / "2025" / "dog.jpg", "pets/rex")
        before = store.image_info(collection / "2025" / "dog.jpg")
    os.rename(collection / "2025" / "dog.jpg", collection / "2024" / "rex-on-the-beach.jpg")
    report = scan([collection], db=db, model=detector)
    assert (report.moved, report.newly_missing, report.inferred) == (1, 1, 0)
    with TagStore(db) as store:
        moved = collection / "2024" / "rex-on-the-beach.jpg"
        assert store.search("rex") == [str(moved)]
        assert store.search("dog") == [str(moved)]
        assert store.image_info(moved)["scans"] == before["scans"]
        assert store.image_info(collection / "2025" / "dog.jpg") is None
        assert store.counts()["images"] == 2


def test_a_photo_reached_through_a_linked_folder_is_one_image(collection, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    link = tmp_path / "linked"
    link.symlink_to(collection)
    report = scan([collection, link], db=db, model=detector)
    assert report.found == 2
    assert scan([link], db=db, model=detector).inferred == 0
    with TagStore(db) as store:
        assert store.counts()["images"] == 2
        assert store.search("cat") == [str(collection / "2024" / "cat.png")]
        assert [t.path for t in store.tags_of(link / "2024" / "cat.png")] == ["auto/cat"]


def test_queries_change_nothing_and_refuse_other_programs_databases(collection, tmp_path,
                                                                     detector):
    db = tmp_path / "tags.sqlite3"
    scan([collection], db=db, model=detector)
    before = digest(db)
    for command in (("search", "cat"), ("show", collection / "2024" / "cat.png"), ("tags",)):
        completed = autotags(*command, "--db", db)
        assert completed.returncode == 0, completed.stderr
    assert digest(db) == before
    # SQLite's own shared-memory files of a WAL database may appear; nothing else does.
    assert {p.name for p in tmp_path.iterdir()} <= {"photos", "tags.sqlite3", "tags.sqlite3-wal",
                                                    "tags.sqlite3-shm"}

    foreign = tmp_path / "other-program.db"
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT)")
        other.execute("INSERT INTO notes(text) VALUES ('mine')")
    other.close()
    untouched = digest(foreign)
    for command in (("search", "cat"), ("tags",), ("tag-manual", collection, "x"),
                    ("scan", collection)):
        completed = autotags(*command, "--db", foreign)
        assert completed.returncode == 3, command
        assert "not an autotags tag database" in completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1
        assert digest(foreign) == untouched


@pytest.mark.parametrize("problem", ["folder", "no such folder", "not a database", "env"])
def test_database_problems_are_one_line_with_status_3(tmp_path, photos, problem):
    env = None
    if problem == "folder":
        db = tmp_path
    elif problem == "no such folder":
        db = tmp_path / "typo" / "deeper" / "tags.sqlite3"
    elif problem == "env":
        db, env = None, {"AUTOTAGS_DB": str(tmp_path / "typo" / "tags.sqlite3")}
    else:
        db = tmp_path / "garbage.sqlite3"
        db.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    for command in (("scan", photos["cat"]), ("search", "cat"), ("tag-manual", photos["cat"],
                                                                 "x")):
        completed = autotags(*command, *(("--db", db) if db else ()), env=env)
        assert completed.returncode == 3, (command, completed.stderr)
        assert "Traceback" not in completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert not (tmp_path / "typo").exists()


def test_a_failed_commit_is_rolled_back_and_the_store_goes_on(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
            # A deferred foreign key makes COMMIT itself fail, as a full disk would.
            db.execute("PRAGMA defer_foreign_keys = ON")
            db.execute("INSERT INTO image_tags(image_id, tag_id, source) VALUES (99, 99, 'x')")
        with store.transaction():
            store.record_scan(tmp_path / "a.jpg", "m", FileState(1, 1), {})
        assert store.counts() == {"images": 1, "missing": 0, "tag_links": 0}


def test_a_database_that_is_not_ours_is_refused_by_the_api_too(tmp_path):
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE t(x)")
    other.close()
    untouched = digest(foreign)
    with pytest.raises(StoreError, match="not an autotags tag database"):
        TagStore(foreign)
    with pytest.raises(StoreError, match="not an autotags tag database"):
        TagStore(foreign, read_only=True)
    assert digest(foreign) == untouched


def test_a_single_path_is_one_path_and_tilde_is_expanded(tmp_path, photos, detector,
                                                         monkeypatch):
    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    shutil.copy(photos["cat"], home / "Pictures" / "cat.png")
    (tmp_path / "elsewhere.png").write_bytes(b"")  # must not be reached
    monkeypatch.setenv("HOME", str(home))
    db = tmp_path / "tags.sqlite3"
    report = scan("~/Pictures/cat.png", db=db, model=detector)
    assert (report.found, report.failures) == (1, [])
    assert scan(home / "Pictures", db=db, model=detector).found == 1
    assert [r.labels for r in detector.tag("~/Pictures/cat.png")] == [["cat"]]
    with TagStore(db) as store:
        assert [t.path for t in store.tags_of("~/Pictures/cat.png")] == ["auto/cat"]


def without_write_permission(command: list[str]) -> list[str]:
    """`command` run as it would be by a user who cannot write where the files are: as
    root, without the capabilities that let root ignore permissions."""
    if os.geteuid() != 0:
        return command
    without = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={without}", f"--bounding-set={without}", *command]


def test_the_scan_lock_belongs_to_the_database_not_the_environment(tmp_path, photos):
    """A scan from cron (no runtime folder) and one from a desktop session (with one) on
    the same database: the second waits its turn instead of calling the first dead."""
    db = tmp_path / "tags.sqlite3"
    TagStore(db).close()
    with exclusive_scan(db):
        for runtime in ({"XDG_RUNTIME_DIR": str(tmp_path)}, {}):
            env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
            result = subprocess.run(
                [sys.executable, "-m", "autotags.cli", "scan", str(photos["dog"]), "--db",
                 str(db)], capture_output=True, text=True, timeout=300,
                env={**env, **runtime})
            assert result.returncode == 3, result.stderr
            assert "another autotags scan is writing to" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tags.sqlite3"]
    with exclusive_scan(db):  # free again, and nothing left beside the database after
        pass
    assert not lock_path(db).exists()


def test_a_failing_database_leaves_no_files_marked_in_flight(tmp_path, photos, detector,
                                                            monkeypatch, caplog):
    """A database error (disk full) is no decoder crash: the next scan must not report
    one and decode those files one by one."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("dog", "horses", "kite"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
    db = tmp_path / "tags.sqlite3"

    def disk_full(*args, **kwargs):  # SQLITE_FULL cannot be had on demand on this disk
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(TagStore, "record_scan", disk_full)
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            scan(folder, db=db, model=detector)
    with TagStore(db, read_only=True) as store:
        assert store.in_flight() == {}
    report = scan(folder, db=db, model=detector)
    assert report.models["ssd-mobilenet-v2"].tagged == 3 and not report.failures
    assert "died" not in caplog.text


def test_a_device_is_never_taken_for_a_database(tmp_path, photos):
    """`--db /dev/null` on a write command created /dev/null-journal."""
    journal = Path("/dev/null-journal")
    left_before = journal.stat().st_mtime_ns if journal.exists() else None  # by older runs
    for command in (["tag-manual", photos["dog"], "x"], ["tags"], ["scan", photos["dog"]]):
        result = autotags(*command, "--db", "/dev/null")
        assert result.returncode == 3, (command, result.stderr)
        assert "character device, not a tag database" in result.stderr
    assert (journal.stat().st_mtime_ns if journal.exists() else None) == left_before
    assert not Path("/dev/null-scan.lock").exists()
    with pytest.raises(StoreError, match="not a tag database"):
        TagStore("/dev/null")


def test_a_database_whose_name_is_not_utf8_can_be_queried(tmp_path, photos):
    db = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.sqlite3")
    assert autotags("tag-manual", photos["dog"], "pets/rex", "--db", db).returncode == 0
    result = autotags("search", "rex", "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(photos["dog"])


def test_committed_tags_left_in_the_log_on_read_only_media_are_not_ignored(tmp_path, photos):
    """Read as immutable, SQLite ignores the -wal file: search would silently miss the
    tags committed there. Refused in one line instead."""
    media = tmp_path / "media"
    media.mkdir()
    db = media / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(photos["dog"], "pets/rex")
    # A writer that stopped before checkpointing, as a disk pulled out leaves it.
    keeper = sqlite3.connect(db, isolation_level=None)
    keeper.execute("PRAGMA wal_autocheckpoint = 0")
    keeper.execute("INSERT INTO tags(parent_id, name) VALUES (NULL, 'late')")
    shutil.copy(db, tmp_path / "copy.sqlite3")
    shutil.copy(db.with_name("tags.sqlite3-wal"), tmp_path / "copy.sqlite3-wal")
    keeper.close()  # checkpoints: the copies keep the state from before
    for name in ("tags.sqlite3", "tags.sqlite3-wal", "tags.sqlite3-shm"):
        (media / name).unlink(missing_ok=True)
    for name in ("copy.sqlite3", "copy.sqlite3-wal"):
        shutil.move(tmp_path / name, media / name.replace("copy", "tags"))
    assert not db.with_name("tags.sqlite3-shm").exists()
    assert db.with_name("tags.sqlite3-wal").stat().st_size > 0
    media.chmod(0o555)
    try:
        result = subprocess.run(without_write_permission(
            [sys.executable, "-m", "autotags.cli", "search", "rex", "--db", str(db)]),
            capture_output=True, text=True, timeout=300)
    finally:
        media.chmod(0o755)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot be read here" in result.stderr and "-shm" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_folder_tree_of_any_depth_is_walked(tmp_path, photos):
    """Walking was recursive: about 1,000 levels aborted the whole scan."""
    root = tmp_path / "deep"
    root.mkdir()
    folder = os.fspath(root)
    for _ in range(1100):  # one level at a time: os.makedirs recurses too
        folder = os.path.join(folder, "d")
        os.mkdir(folder)
    try:
        shutil.copy(photos["dog"], os.path.join(folder, "dog.jpg"))
        shutil.copy(photos["kite"], root / "kite.jpg")
        found = discover([root])
        assert [Path(f.path).name for f in found.files] == ["dog.jpg", "kite.jpg"]
        assert not found.problems
    finally:  # bottom up: shutil.rmtree, and so pytest's clean-up, recurse per level
        os.unlink(os.path.join(folder, "dog.jpg"))
        while folder != os.fspath(root):
            os.rmdir(folder)
            folder = os.path.dirname(folder)
