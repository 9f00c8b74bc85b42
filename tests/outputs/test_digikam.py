"""Protects tagging into digiKam's own database (issue: digiKam): tags below `auto` created
as digiKam creates them, its triggers keeping TagsTree, Replace and Update as in digiKam,
everything else byte for byte the same; refusals that leave the file untouched; a killed
run that leaves the database consistent."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotags import TagStore
from autotags.outputs.digikam_database import album_root_path
from helpers.digikam_collection import (
    add_tag,
    make_collection,
    rows_outside_auto,
    tag_path,
    tag_paths_of,
)


def autotags(*args: object, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_auto_paths(db: Path, image: Path, style: str = "flat") -> set[str]:
    with TagStore(db, read_only=True) as store:
        return {p for p in store.keywords_to_write(image, style).paths  # type: ignore[arg-type]
                if p.startswith("auto/")}


def assert_tag_tree_consistent(database: Path) -> None:
    """Every tag's TagsTree rows are exactly the tag with each of its ancestors and 0."""
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        parents = dict(db.execute("SELECT id, pid FROM Tags"))
        for tag in parents:
            ancestors, current = set(), parents[tag]
            while current:
                ancestors.add(current)
                current = parents[current]
            tree = {r[0] for r in db.execute("SELECT pid FROM TagsTree WHERE id = ?", (tag,))}
            assert tree == ancestors | {0}, tag_path(db, tag)


@pytest.mark.parametrize("policy", ["replace", "update"])
def test_a_scan_writes_tags_as_digikam_does(tmp_path, photos, policy):
    collection = make_collection(tmp_path, photos)
    before = rows_outside_auto(collection.database)
    db = tmp_path / "tags.sqlite3"
    result = autotags("digikam", "scan", "--digikam-db", collection.database, "--db", db,
                      "--policy", policy)
    assert result.returncode == 0, result.stderr
    assert "USB disk" in result.stderr and "not mounted" in result.stderr
    assert "integrity check: ok" in result.stdout
    backups = list(collection.root.glob("digikam4.db.autotags-backup-*"))
    assert len(backups) == 1 and str(backups[0]) in result.stdout

    first = next(iter(collection.images))
    for name, image in collection.images.items():
        wanted = stored_auto_paths(db, collection.paths[name])
        assert wanted, name
        in_digikam = tag_paths_of(collection.database, image)
        machine = {p for p in in_digikam if p.startswith("auto/")}
        if name == first:
            assert {"People/Alice", "_Digikam_Internal_Tags_/Color Label Red"} <= in_digikam
            # digiKam's own older auto tag: Replace drops it, Update keeps it
            expected_old = {"auto/cat"} if policy == "update" else set()
            assert machine == wanted | expected_old, name
        else:
            assert machine == wanted, name
    with sqlite3.connect(collection.database) as digikam:
        assert digikam.execute("SELECT count(*) FROM Tags WHERE pid = 0 AND name = 'auto'"
                               ).fetchone()[0] == 1
        untouched = digikam.execute("SELECT count(*) FROM ImageTags JOIN Images ON "
                                    "Images.id = imageid WHERE Images.name IN "
                                    "('trashed.png', 'clip.mp4')").fetchone()[0]
    assert untouched == 0
    assert rows_outside_auto(collection.database) == before
    assert_tag_tree_consistent(collection.database)


def test_hierarchical_paths_rejections_and_sync(tmp_path, photos):
    collection = make_collection(tmp_path, photos, names=("dog", "person"))
    db = tmp_path / "tags.sqlite3"
    result = autotags("digikam", "scan", "--digikam-db", collection.database, "--db", db,
                      "--tag-paths", "hierarchical")
    assert result.returncode == 0, result.stderr
    dog = collection.images["dog.jpg"]
    paths = tag_paths_of(collection.database, dog)
    assert "auto/animal/dog" in paths and "auto/vehicle/bicycle" in paths
    assert_tag_tree_consistent(collection.database)

    with TagStore(db) as store:
        store.remove_manual_tag(collection.paths["dog.jpg"], "auto/bicycle")
    dry = autotags("digikam", "sync", "--digikam-db", collection.database, "--db", db,
                   "--tag-paths", "hierarchical", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 images would change (0 tags added, 1 removed)" in dry.stdout
    assert f"{collection.paths['dog.jpg']}: remove auto/vehicle/bicycle" in dry.stdout
    assert "auto/vehicle/bicycle" in tag_paths_of(collection.database, dog)
    synced = autotags("digikam", "sync", "--digikam-db", collection.database, "--db", db,
                      "--tag-paths", "hierarchical")
    assert synced.returncode == 0, synced.stderr
    assert "auto/vehicle/bicycle" not in tag_paths_of(collection.database, dog)
    assert_tag_tree_consistent(collection.database)


def test_the_database_is_found_from_digikams_settings(tmp_path, photos):
    collection = make_collection(tmp_path, photos, names=("eagle",))
    config = tmp_path / "config"
    config.mkdir()
    (config / "digikamrc").write_text(
        "[General]\nVersion=8.4.0\n\n[Database Settings]\nDatabase Type=QSQLITE\n"
        f"Database Name={collection.root}/\nDatabase Name Thumbnails={collection.root}/\n",
        encoding="utf-8")
    result = autotags("digikam", "scan", "--db", tmp_path / "tags.sqlite3",
                      env={"XDG_CONFIG_HOME": str(config)})
    assert result.returncode == 0, result.stderr
    assert "auto/bird" in tag_paths_of(collection.database, collection.images["eagle.jpg"])


def refused(tmp_path: Path, photos: dict[str, Path], *args: object,
            env: dict[str, str] | None = None, version: int = 17,
            change: str | None = None) -> str:
    """Runs `digikam scan` on a database that must be refused; returns the message after
    checking it is one line, exit status 3, and the database's bytes unchanged."""
    collection = make_collection(tmp_path, photos, names=("eagle",), version=version)
    if change:
        with sqlite3.connect(collection.database) as db:
            db.execute(change)
    before = digest(collection.database)
    command = ["digikam", "scan", "--db", tmp_path / "tags.sqlite3", *args]
    if env is None:
        command += ["--digikam-db", collection.database]
    result = autotags(*command, env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert digest(collection.database) == before
    assert not list(collection.root.glob("*.autotags-backup-*"))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_newer_or_unknown_schema_is_refused_untouched(tmp_path, photos):
    assert "newer" in refused(tmp_path / "a", photos, version=18)
    assert "unknown schema" in refused(tmp_path / "b", photos,
                                       change="DROP TRIGGER insert_tagstree")


def test_a_running_digikam_is_refused(tmp_path, photos):
    digikam = tmp_path / "bin" / "digikam"  # a process called digikam, as the real one
    digikam.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", digikam)
    process = subprocess.Popen([digikam, "60"])
    try:
        message = refused(tmp_path / "db", photos)
    finally:
        process.kill()
        process.wait()
    assert "digiKam is running" in message and "--force" in message


def test_a_mysql_configuration_without_its_server_is_one_line(tmp_path, photos):
    """MariaDB/MySQL databases are written since issue 24; one that cannot be reached is
    refused in one line (the server here: a socket nobody listens on)."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "digikamrc").write_text(
        "[Database Settings]\nDatabase Type=QMYSQL\nDatabase Name=digikam\n"
        f"Database Connectoptions=UNIX_SOCKET={tmp_path / 'nobody.sock'}\n", encoding="utf-8")
    message = refused(tmp_path / "db", photos, env={"XDG_CONFIG_HOME": str(config)})
    assert "cannot connect to digiKam's database mysql://root@" in message


def images_linked(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.01) as db:
            return db.execute("SELECT count(DISTINCT imageid) FROM ImageTags").fetchone()[0]
    except sqlite3.OperationalError:  # being written
        return 0


def test_a_killed_scan_leaves_digikams_database_consistent(tmp_path, photos):
    """SIGKILL as soon as the writing into digiKam's database has begun: integrity holds,
    every tag path is whole, and the next run completes."""
    collection = make_collection(tmp_path, photos, copies=150)  # 600 images, 3 batches
    db = tmp_path / "tags.sqlite3"
    command = [sys.executable, "-m", "autotags.cli", "digikam", "scan", "--digikam-db",
               collection.database, "--db", db]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while images_linked(collection.database) < 2:  # the first batch is in
        assert process.poll() is None and time.monotonic() < deadline, "never began writing"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert images_linked(collection.database) < len(collection.images)  # killed half-way
    assert_tag_tree_consistent(collection.database)
    with sqlite3.connect(collection.database) as digikam:
        leaves_without_images = digikam.execute("""
            SELECT count(*) FROM Tags WHERE id IN (SELECT id FROM TagsTree WHERE pid =
                (SELECT id FROM Tags WHERE pid = 0 AND name = 'auto'))
            AND id NOT IN (SELECT pid FROM Tags) AND id NOT IN (SELECT tagid FROM ImageTags)
            AND name != 'cat'""").fetchone()[0]
    assert leaves_without_images == 0  # a tag is created with its first image, or not at all
    result = autotags("digikam", "scan", "--digikam-db", collection.database, "--db", db)
    assert result.returncode == 0, result.stderr
    for name, image in collection.images.items():
        machine = {p for p in tag_paths_of(collection.database, image) if p.startswith("auto/")}
        assert machine == stored_auto_paths(db, collection.paths[name]), name
    assert_tag_tree_consistent(collection.database)


def test_tags_are_created_level_by_level_under_a_top_level_auto(tmp_path, photos):
    """An auto tag digiKam already has is reused, not duplicated."""
    collection = make_collection(tmp_path, photos, names=("dog",))
    with sqlite3.connect(collection.database) as db:
        existing_dog = add_tag(db, "auto/dog")
    result = autotags("digikam", "scan", "--digikam-db", collection.database,
                      "--db", tmp_path / "tags.sqlite3")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(collection.database) as db:
        dogs = db.execute("SELECT id FROM Tags WHERE name = 'dog'").fetchall()
        auto = db.execute("SELECT id FROM Tags WHERE name = 'auto'").fetchall()
        linked = db.execute("SELECT count(*) FROM ImageTags WHERE tagid = ?",
                            (existing_dog,)).fetchone()[0]
    assert dogs == [(existing_dog,)] and len(auto) == 1 and linked == 1


def test_album_roots_are_found_however_digikam_names_them(tmp_path):
    share = tmp_path / "share"
    (share / "photos").mkdir(parents=True)
    cases = {
        (f"volumeid:?path={share}", "/"): share,
        (f"volumeid:?mountpath={share}", "/photos"): share / "photos",
        (f"networkshareid:?mountpath={tmp_path}/gone&mountpath={share}", "/"): share,
        ("volumeid:?uuid=00000000-0000-0000-0000-00000000dead", "/photos"): None,
        ("volumeid:?label=NO_SUCH_DISK", "/"): None,
        ("networkshareid:?mountpath=/no/such/share", "/"): None,
    }
    for (identifier, specific), expected in cases.items():
        assert album_root_path(identifier, specific) == expected, identifier


def test_a_root_on_a_mount_path_is_tagged(tmp_path, photos):
    collection = make_collection(tmp_path, photos, names=("eagle",))
    with sqlite3.connect(collection.database) as db:
        db.execute("UPDATE AlbumRoots SET identifier = ?, specificPath = ? WHERE label = "
                   "'Pictures'", (f"volumeid:?mountpath={tmp_path}", "/Pictures"))
    result = autotags("digikam", "scan", "--digikam-db", collection.database,
                      "--db", tmp_path / "tags.sqlite3")
    assert result.returncode == 0, result.stderr
    assert "auto/bird" in tag_paths_of(collection.database, collection.images["eagle.jpg"])


def test_a_read_only_database_folder_is_refused_before_any_work(tmp_path, photos):
    """A real EACCES: as root the command runs without the capability to write anywhere."""
    collection = make_collection(tmp_path, photos, names=("dog",))
    before = digest(collection.database)
    command = [sys.executable, "-m", "autotags.cli", "digikam", "scan", "--digikam-db",
               str(collection.database), "--db", str(tmp_path / "tags.sqlite3")]
    if os.geteuid() == 0:
        without = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={without}", f"--bounding-set={without}", *command]
    collection.root.chmod(0o555)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        collection.root.chmod(0o755)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "read-only" in result.stderr.strip().splitlines()[-1]
    assert digest(collection.database) == before
    assert not (tmp_path / "tags.sqlite3").exists()  # nothing was tagged for nothing


def test_a_dry_run_needs_no_write_access_and_changes_nothing(tmp_path, photos):
    """A real EACCES again: --dry-run opened digiKam's database for writing."""
    collection = make_collection(tmp_path, photos, names=("dog",))
    db = tmp_path / "tags.sqlite3"
    assert autotags("digikam", "scan", "--digikam-db", collection.database, "--db", db,
                    "--dry-run").returncode == 0
    before = digest(collection.database)
    command = [sys.executable, "-m", "autotags.cli", "digikam", "sync", "--digikam-db",
               str(collection.database), "--db", str(db), "--dry-run"]
    if os.geteuid() == 0:
        without = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={without}", f"--bounding-set={without}", *command]
    collection.root.chmod(0o555)
    collection.database.chmod(0o444)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        collection.root.chmod(0o755)
        collection.database.chmod(0o644)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 images would change" in result.stdout
    assert digest(collection.database) == before
    assert sorted(p.name for p in collection.root.glob("digikam4.db*")) == ["digikam4.db"]


def test_backups_are_made_only_for_changes_and_only_the_newest_kept(tmp_path, photos):
    collection = make_collection(tmp_path, photos, names=("dog", "person"))
    db = tmp_path / "tags.sqlite3"
    dog = collection.paths["dog.jpg"]

    def backups() -> list[Path]:
        return sorted(collection.root.glob("digikam4.db.autotags-backup-*"))

    assert autotags("digikam", "scan", "--digikam-db", collection.database,
                    "--db", db).returncode == 0
    assert len(backups()) == 1
    unchanged = autotags("digikam", "sync", "--digikam-db", collection.database, "--db", db)
    assert unchanged.returncode == 0 and "0 images changed" in unchanged.stdout
    assert "backup" not in unchanged.stdout and len(backups()) == 1
    for run in range(4):  # each run changes one tag, one second apart: distinct names
        time.sleep(1.1)
        with TagStore(db) as store:
            if run % 2:
                store.add_manual_tag(dog, "auto/dog")
            else:
                store.remove_manual_tag(dog, "auto/dog")
        changed = autotags("digikam", "sync", "--digikam-db", collection.database, "--db", db)
        assert changed.returncode == 0 and "1 images changed" in changed.stdout, changed.stdout
        assert str(backups()[-1]) in changed.stdout
    assert len(backups()) == 3
    for backup in backups():
        with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_writer_works_from_python_as_the_readme_shows(tmp_path, photos):
    """The package face: DigikamDatabase and DigikamWriter, and one error base."""
    import autotags

    collection = make_collection(tmp_path, photos)
    db = tmp_path / "tags.sqlite3"
    dog = collection.paths["dog.jpg"]
    with autotags.TagStore(db) as store:
        store.add_manual_tag(dog, "auto/dog")
    before = digest(collection.database)
    with autotags.DigikamDatabase(str(collection.database)) as database, \
            autotags.TagStore(db) as store:
        images = {image.path: image.id for image in database.collection().images}
        writer = autotags.DigikamWriter(database, images, dry_run=True)
        writer.write_all(store, sorted(images))
    assert isinstance(writer, autotags.OutputWriter)
    assert writer.summary()[0].startswith("digikam: 1 images would change (1 tags added")
    assert f"  {dog}: add auto/dog" in writer.summary()
    assert digest(collection.database) == before  # a dry run
    with pytest.raises(autotags.AutotagsError, match="no such digiKam database"):
        autotags.DigikamDatabase(tmp_path / "none.db")
    assert issubclass(autotags.DigikamError, RuntimeError)


# ---- a way back (issue: digiKam on MariaDB, part 4, on SQLite) ----------------------------

def all_tag_rows(database: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(database) as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}"))
                for table in ("Tags", "TagsTree", "ImageTags", "TagProperties")}


def test_undo_restores_the_exact_rows_of_before_the_run(tmp_path, photos):
    collection = make_collection(tmp_path, photos)
    before = all_tag_rows(collection.database)
    db = tmp_path / "tags.sqlite3"
    scanned = autotags("digikam", "scan", "--digikam-db", collection.database, "--db", db)
    assert scanned.returncode == 0, scanned.stderr
    assert "recorded as run 1" in scanned.stdout
    after = all_tag_rows(collection.database)
    assert after != before  # auto tags created and linked, digiKam's old auto/cat replaced
    listed = autotags("digikam", "undo", "--list", "--digikam-db", collection.database,
                      "--db", db)
    assert listed.returncode == 0 and listed.stdout.startswith("run 1 on ")
    undone = autotags("digikam", "undo", "--digikam-db", collection.database, "--db", db)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.startswith("digikam: took back run 1")
    assert all_tag_rows(collection.database) == before
    assert_tag_tree_consistent(collection.database)
    again = autotags("digikam", "undo", "--digikam-db", collection.database, "--db", db)
    assert again.returncode == 3 and "no run to undo" in again.stderr  # once is enough


def test_undo_leaves_and_reports_what_digikams_user_changed_since(tmp_path, photos):
    collection = make_collection(tmp_path, photos)
    db = tmp_path / "tags.sqlite3"
    assert autotags("digikam", "scan", "--digikam-db", collection.database, "--db",
                    db).returncode == 0
    dog = collection.images["dog.jpg"]
    with sqlite3.connect(collection.database) as raw:
        dog_tag = raw.execute("""SELECT Tags.id FROM Tags JOIN ImageTags ON tagid = Tags.id
                                 WHERE imageid = ? AND name = 'dog'""", (dog,)).fetchone()[0]
        # digiKam's user removes the dog link, and files the photo under the new tag too
        raw.execute("DELETE FROM ImageTags WHERE imageid = ? AND tagid = ?", (dog, dog_tag))
        horse = raw.execute("SELECT id FROM Tags WHERE name = 'horse'").fetchone()[0]
        raw.execute("INSERT INTO ImageTags(imageid, tagid) VALUES (?, ?)",
                    (collection.images["eagle.jpg"], horse))
    undone = autotags("digikam", "undo", "--digikam-db", collection.database, "--db", db)
    assert undone.returncode == 1, undone.stderr
    assert f"left as it is: image {dog}: tag {dog_tag} was already removed since" in \
        undone.stdout
    assert "tag 'horse'" in undone.stdout and "was kept" in undone.stdout
    paths = tag_paths_of(collection.database, collection.images["eagle.jpg"])
    assert "auto/horse" in paths  # the user's own link stays, and so does its tag
    assert "auto/dog" not in tag_paths_of(collection.database, dog)
    assert_tag_tree_consistent(collection.database)
