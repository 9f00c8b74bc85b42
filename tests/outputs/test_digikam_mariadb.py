"""Protects tagging into digiKam's MariaDB/MySQL database (issue: digiKam on MariaDB): a
private mariadbd started by the test, digiKam's database built from dbconfig.xml's QMYSQL
section, real photos tagged and written as on SQLite, with MySQL's own rules; and the way
back (digikam undo) on it."""

from __future__ import annotations

import base64
import os
import random
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from autotags.outputs.digikam_settings import qt_checksum
from helpers.mariadb_server import (
    PASSWORD,
    create_digikam_schema,
    fill_collection,
    private_mariadb,
    table_rows,
)

DETECTOR = "ssd-mobilenet-v2"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with private_mariadb(tmp_path_factory.mktemp("mariadb") / "server") as running:
        yield running


@pytest.fixture()
def digikam(server, tmp_path, photos):
    """A fresh digiKam database on the server, with a collection of real photos."""
    with server.connect(database=None, user="root") as root:
        root.cursor().execute("DROP DATABASE IF EXISTS digikam")
        root.cursor().execute("CREATE DATABASE digikam")
    db = server.connect()
    create_digikam_schema(db)
    collection = fill_collection(db, tmp_path / "Pictures", photos)
    yield db, collection
    db.close()


def autotags(*args: object, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AUTOTAGS_DIGIKAM_PASSWORD": PASSWORD,
                               **(env or {})})


def rows_outside_auto(db) -> dict[str, list[tuple[object, ...]]]:
    cursor = db.cursor()
    cursor.execute("SELECT id FROM Tags WHERE pid = 0 AND name = 'auto'")
    auto = cursor.fetchone()[0]
    cursor.execute("SELECT id FROM TagsTree WHERE pid = %s", (auto,))
    below = {r[0] for r in cursor.fetchall()} | {auto}
    rows = table_rows(db)
    return {"Tags": [r for r in rows["Tags"] if r[0] not in below],
            "TagsTree": [r for r in rows["TagsTree"] if r[0] not in below],
            "TagProperties": [r for r in rows["TagProperties"] if r[0] not in below],
            "ImageTags": [r for r in rows["ImageTags"] if r[1] not in below]}


def assert_tag_tree_is_the_closure_of_pid(db) -> None:
    cursor = db.cursor()
    cursor.execute("SELECT id, pid FROM Tags WHERE id > 0")
    parents = dict(cursor.fetchall())
    for tag in parents:
        ancestors, current = set(), parents[tag]
        while current:
            ancestors.add(current)
            current = parents[current]
        cursor.execute("SELECT pid FROM TagsTree WHERE id = %s", (tag,))
        assert {r[0] for r in cursor.fetchall()} == ancestors | {0}, tag


def machine_tags(db, image: int) -> dict[str, int]:
    cursor = db.cursor()
    cursor.execute("""SELECT Tags.name, Tags.id FROM ImageTags JOIN Tags ON Tags.id = tagid
                      WHERE imageid = %s AND tagid IN (SELECT id FROM TagsTree WHERE pid =
                      (SELECT id FROM Tags WHERE pid = 0 AND name = 'auto'))""", (image,))
    return dict(cursor.fetchall())


def test_a_scan_writes_tags_into_mariadb_as_into_sqlite(server, digikam, tmp_path):
    db, collection = digikam
    before = rows_outside_auto(db)
    result = autotags("digikam", "scan", "--digikam-db", server.address, "--db",
                      tmp_path / "tags.sqlite3", "--model", DETECTOR)
    assert result.returncode == 0, result.stderr
    assert "backup" not in result.stdout and "recorded as run 1" in result.stdout
    assert rows_outside_auto(db) == before  # byte for byte: nothing outside auto changed
    assert_tag_tree_is_the_closure_of_pid(db)
    dog = machine_tags(db, collection.images["dog.jpg"])
    assert "Dog" in dog and "dog" not in dog  # the existing auto/Dog, reused as MySQL compares
    cursor = db.cursor()
    cursor.execute("SELECT count(*) FROM Tags WHERE name = 'dog' AND pid = "
                   "(SELECT id FROM Tags WHERE pid = 0 AND name = 'auto')")
    assert cursor.fetchone()[0] == 1
    first = machine_tags(db, collection.images["dog.jpg"])
    assert "Cat" not in first  # Replace dropped digiKam's own older auto tag
    assert "horse" in machine_tags(db, collection.images["horses.jpg"])


def test_update_keeps_older_auto_tags_and_undo_restores_the_rows(server, digikam, tmp_path):
    db, collection = digikam
    before = table_rows(db)
    store = tmp_path / "tags.sqlite3"
    result = autotags("digikam", "scan", "--digikam-db", server.address, "--db", store,
                      "--model", DETECTOR, "--policy", "update")
    assert result.returncode == 0, result.stderr
    assert "Cat" in machine_tags(db, collection.images["dog.jpg"])  # Update keeps it
    undone = autotags("digikam", "undo", "--digikam-db", server.address, "--db", store)
    assert undone.returncode == 0, undone.stderr
    assert table_rows(db) == before
    assert_tag_tree_is_the_closure_of_pid(db)


def test_a_name_mysqls_tables_cannot_hold_is_a_per_tag_error(server, digikam, tmp_path):
    db, collection = digikam
    store = tmp_path / "tags.sqlite3"
    eagle = collection.paths["eagle.jpg"]
    assert autotags("tag-manual", eagle, "auto/\U0001f985", "--db", store).returncode == 0
    result = autotags("digikam", "scan", "--digikam-db", server.address, "--db", store,
                      "--model", DETECTOR)
    assert result.returncode == 1, result.stderr
    assert f"{eagle}: the tag name '\U0001f985' has a character" in result.stdout
    assert "bird" in machine_tags(db, collection.images["eagle.jpg"])  # the rest went in
    assert "dog" in {n.lower() for n in machine_tags(db, collection.images["dog.jpg"])}


def digikam_encrypted(password: str) -> str:
    """A password as digiKam stores it: o2's O0SimpleCrypt with key 0, checksum on."""
    plain = password.encode("utf-8")
    data = bytearray([random.randrange(256)]) + struct.pack(">H", qt_checksum(plain)) + plain
    last = 0
    for position, value in enumerate(data):
        data[position] = value ^ last  # every key part is 0
        last = data[position]
    return base64.b64encode(bytes([3, 0x02]) + bytes(data)).decode()


@pytest.mark.parametrize("form", ["plain", "encrypted"])
def test_the_database_is_found_from_digikamrc(server, digikam, tmp_path, form):
    config = tmp_path / "config"
    config.mkdir()
    secret = (f"Database Password={PASSWORD}" if form == "plain" else
              f"Database Encrypted Password={digikam_encrypted(PASSWORD)}")
    (config / "digikamrc").write_text(
        "[Database Settings]\nDatabase Type=QMYSQL\nDatabase Name=digikam\n"
        "Database Hostname=localhost\nDatabase Port=3306\nDatabase Username=digikam\n"
        f"{secret}\nDatabase Connectoptions=UNIX_SOCKET={server.socket}\n"
        "Internal Database Server=false\n", encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(config), "AUTOTAGS_DIGIKAM_PASSWORD": ""}
    store = tmp_path / "tags.sqlite3"
    _, collection = digikam
    assert autotags("tag-manual", collection.paths["horses.jpg"], "auto/horse", "--db",
                    store).returncode == 0
    result = autotags("digikam", "sync", "--dry-run", "--db", store, env=env)
    assert result.returncode == 0, result.stderr
    assert "digikam: 1 images would change (1 tags added" in result.stdout


def test_an_internal_server_that_is_not_running_is_one_line(tmp_path):
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    (config / "digikamrc").write_text(
        "[Database Settings]\nDatabase Type=QMYSQL\nDatabase Name=digikam\n"
        "Internal Database Server=true\n", encoding="utf-8")
    result = autotags("digikam", "sync", "--db", tmp_path / "tags.sqlite3",
                      env={"XDG_CONFIG_HOME": str(config), "XDG_DATA_HOME": str(data)})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal database server is not running" in lines[0]
    assert str(data / "digikam" / "db_misc" / "mysql.socket") in lines[0]


def test_the_encrypted_password_reader_refuses_what_digikam_did_not_write(tmp_path):
    from autotags.outputs.digikam_settings import DigikamError, decrypt_password

    good = digikam_encrypted("s3cret ü")
    assert decrypt_password(good, tmp_path) == "s3cret ü"
    damaged = bytearray(base64.b64decode(good))
    damaged[-1] ^= 0x40
    for text in (base64.b64encode(bytes(damaged)).decode(), "not base64!", ""):
        with pytest.raises(DigikamError, match="encrypted database password"):
            decrypt_password(text, tmp_path)
    compressed = zlib.compress(b"x" * 200)
    plain = struct.pack(">I", 200) + compressed
    data = bytearray([7]) + struct.pack(">H", qt_checksum(plain)) + plain
    last = 0
    for position, value in enumerate(data):
        data[position] = value ^ last
        last = data[position]
    assert decrypt_password(base64.b64encode(bytes([3, 0x03]) + bytes(data)).decode(),
                            tmp_path) == "x" * 200


def test_a_server_gone_is_one_line_and_the_next_run_completes(tmp_path, photos):
    with private_mariadb(tmp_path / "own-server") as own:
        db = own.connect()
        create_digikam_schema(db)
        collection = fill_collection(db, tmp_path / "Pictures", photos)
        db.close()
        store = tmp_path / "tags.sqlite3"
        # The photos are tagged first, so that the run into digiKam is the writing alone.
        assert autotags("scan", collection.root, "--db", store, "--model",
                        DETECTOR).returncode == 0
        own.stop()
        failed = autotags("digikam", "sync", "--digikam-db", own.address, "--db", store)
        assert failed.returncode == 3 and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
        own.start()  # the same data again
        done = autotags("digikam", "sync", "--digikam-db", own.address, "--db", store)
        assert done.returncode == 0, done.stderr
        with own.connect() as db:
            assert "horse" in machine_tags(db, collection.images["horses.jpg"])
            assert_tag_tree_is_the_closure_of_pid(db)


def test_undo_on_mariadb_leaves_a_link_digikams_user_removed(server, digikam, tmp_path):
    db, collection = digikam
    store = tmp_path / "tags.sqlite3"
    assert autotags("digikam", "scan", "--digikam-db", server.address, "--db", store,
                    "--model", DETECTOR).returncode == 0
    horses = collection.images["horses.jpg"]
    horse = machine_tags(db, horses)["horse"]
    db.cursor().execute("DELETE FROM ImageTags WHERE imageid = %s AND tagid = %s",
                        (horses, horse))
    undone = autotags("digikam", "undo", "--digikam-db", server.address, "--db", store)
    assert undone.returncode == 1, undone.stderr
    assert f"image {horses}: tag {horse} was already removed since" in undone.stdout
    assert machine_tags(db, collection.images["dog.jpg"]) == {"Cat": machine_tags(
        db, collection.images["dog.jpg"])["Cat"]}  # digiKam's own auto/Cat is back
    assert_tag_tree_is_the_closure_of_pid(db)


def test_an_unknown_layout_on_mariadb_is_refused_untouched(server, digikam, tmp_path):
    db, _ = digikam
    db.cursor().execute("DROP TRIGGER move_tagstree")
    db.cursor().execute("DROP TRIGGER insert_tagstree")
    before = table_rows(db)
    result = autotags("digikam", "scan", "--digikam-db", server.address, "--db",
                      tmp_path / "tags.sqlite3", "--model", DETECTOR)
    assert result.returncode == 3 and "tag-tree triggers are missing" in result.stderr
    assert table_rows(db) == before


def linked_images(server) -> int:
    with server.connect() as db:
        cursor = db.cursor()
        cursor.execute("""SELECT count(DISTINCT imageid) FROM ImageTags WHERE tagid IN
                          (SELECT id FROM TagsTree WHERE pid =
                           (SELECT id FROM Tags WHERE pid = 0 AND name = 'auto'))""")
        return int(cursor.fetchone()[0])


def stored_as_scanned(store: Path, collection) -> None:
    """autotags' store as a detector scan leaves it (the writing into digiKam is what is
    under test, so the 1,200 photos are recorded, not run through a network again)."""
    from autotags import TagStore
    from autotags.collection.store import FileState, NewTag

    with TagStore(store) as tags, tags.transaction():
        for name, path in collection.paths.items():
            info = path.stat()
            label = name.split("-", 1)[0].rstrip("s")  # dog, horse, person, eagle
            tags.record_scan(path, DETECTOR, FileState(info.st_size, info.st_mtime_ns),
                             {"accuracy": 7}, width=768, height=576,
                             tags=[NewTag(label, 0.9)])


def wait_until_writing_began(server, process) -> None:
    deadline = time.monotonic() + 300
    while linked_images(server) < 2:  # the first batch is in
        assert process.poll() is None and time.monotonic() < deadline, "never began writing"
        time.sleep(0.002)


def test_a_killed_run_and_a_server_stopped_mid_run_leave_whole_batches(tmp_path, photos):
    with private_mariadb(tmp_path / "own-server") as own:
        with own.connect() as db:
            create_digikam_schema(db)
            collection = fill_collection(db, tmp_path / "Pictures", photos, copies=300)
        store = tmp_path / "tags.sqlite3"
        stored_as_scanned(store, collection)
        command = [sys.executable, "-m", "autotags.cli", "digikam", "sync", "--digikam-db",
                   own.address, "--db", store]
        env = {**os.environ, "AUTOTAGS_DIGIKAM_PASSWORD": PASSWORD}
        killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_until_writing_began(own, killed)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        after_kill = linked_images(own)
        assert 0 < after_kill < len(collection.images) and after_kill % 256 == 0
        with own.connect() as db:
            assert_tag_tree_is_the_closure_of_pid(db)
        stopped = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while linked_images(own) <= after_kill:
            assert stopped.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        own.stop()  # the server goes away while a batch is written
        _, errors = stopped.communicate(timeout=120)
        assert stopped.returncode == 3 and "Traceback" not in errors, errors
        own.start()
        assert linked_images(own) % 256 == 0  # whole batches only
        done = autotags("digikam", "sync", "--digikam-db", own.address, "--db", store)
        assert done.returncode == 0, done.stderr
        assert linked_images(own) == len(collection.images)
        with own.connect() as db:
            assert_tag_tree_is_the_closure_of_pid(db)
