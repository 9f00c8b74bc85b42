"""The tag database's file: opening it (or refusing it untouched), its schema and the
migrations from older versions, and transactions.

The database runs in WAL mode, so readers see a consistent state while a scan writes,
and a killed process leaves the last committed state behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ...errors import AutotagsError
from ...sqlite_transactions import immediate_transaction
from ..files import StrPath, canonical_path, kind_of

SCHEMA_VERSION = 6
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE images (
    id          INTEGER PRIMARY KEY,
    path        BLOB NOT NULL UNIQUE,        -- absolute, as file-system bytes
    size        INTEGER,
    mtime_ns    INTEGER,
    fingerprint TEXT,                        -- hash of size, head and tail of the file
    width       INTEGER,
    height      INTEGER,
    missing     INTEGER NOT NULL DEFAULT 0   -- 1: gone at the last scan, history kept
);
CREATE TABLE scans (                         -- one row per image and model
    image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    settings    TEXT NOT NULL,               -- JSON: accuracy, threshold, policy
    scanned_at  REAL NOT NULL,
    size        INTEGER,                     -- the file as it was when scanned
    mtime_ns    INTEGER,
    fingerprint TEXT,
    error       TEXT,                        -- why it failed, NULL on success
    PRIMARY KEY (image_id, model)
);
CREATE TABLE tags (
    id        INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES tags(id),
    name      TEXT NOT NULL COLLATE NOCASE
);
CREATE UNIQUE INDEX tags_by_parent_and_name ON tags(ifnull(parent_id, 0), name);
CREATE TABLE image_tags (
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags(id),
    source     TEXT NOT NULL,                -- model name, or 'manual'
    confidence REAL,                         -- best score, NULL for manual tags
    instances  INTEGER NOT NULL DEFAULT 1,   -- how many times the model found it
    PRIMARY KEY (image_id, tag_id, source)
);
CREATE INDEX image_tags_by_tag ON image_tags(tag_id);
CREATE INDEX scans_by_model ON scans(model);
"""
# Each schema version's additions, applied in order to older databases.
_MIGRATIONS = {
    2: """
CREATE TABLE in_flight (                     -- files handed to a model, not yet stored:
    path  BLOB NOT NULL,                     -- left behind only when the process died
    model TEXT NOT NULL,
    PRIMARY KEY (path, model)
);
""",
    # A machine tag's category, e.g. animal/dog. (No comment inside: SQLite splices the
    # column's text into the table's CREATE statement.)
    3: "ALTER TABLE image_tags ADD COLUMN category TEXT",
    4: """
CREATE TABLE rejections (                    -- machine tags a person removed from an image:
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag_id   INTEGER NOT NULL REFERENCES tags(id),  -- no scan adds them back
    PRIMARY KEY (image_id, tag_id)
);
CREATE TABLE tag_boxes (                     -- where each instance of a tag was found
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag_id   INTEGER NOT NULL REFERENCES tags(id),
    source   TEXT NOT NULL,
    score    REAL NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL
);
CREATE INDEX tag_boxes_by_image ON tag_boxes(image_id, tag_id, source);
""",
    5: """
CREATE TABLE written_keywords (              -- what autotags last put into an image's file
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    target   TEXT NOT NULL,                  -- 'sidecar' or 'embed'
    paths    TEXT NOT NULL,                  -- JSON: the tag paths written
    owned_by_others TEXT NOT NULL,           -- JSON: flat keywords that were there before
    up_to_date INTEGER NOT NULL DEFAULT 1,   -- 0: the image's tags changed since
    PRIMARY KEY (image_id, target)
);
""",
    6: """
CREATE TABLE text_lines (                    -- lines of text a text model read
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    source     TEXT NOT NULL,                -- the model
    line       INTEGER NOT NULL,             -- reading order
    text       TEXT NOT NULL,
    confidence REAL NOT NULL,
    box        TEXT NOT NULL                 -- JSON: four [x, y] corners
);
CREATE INDEX text_lines_by_image ON text_lines(image_id, source);
CREATE VIRTUAL TABLE text_index USING fts5(text, content='text_lines', content_rowid='id',
                                           tokenize='unicode61 remove_diacritics 2');
""",
}


class StoreError(AutotagsError, RuntimeError):
    """The database cannot be used: newer schema, not a database, bad tag name."""


def encode(path: StrPath) -> bytes:
    """An image's key: its canonical path as the file system's bytes."""
    return os.fsencode(canonical_path(path))


def decode(raw: bytes) -> str:
    return os.fsdecode(raw)


# A list of image ids of any length as one parameter: one `?` per id runs into SQLite's
# limit on parameters (999 before SQLite 3.32) on a collection's larger searches.
ID_LIST = "SELECT value FROM json_each(?)"


def id_list(ids: Iterable[int]) -> str:
    """The parameter of an :data:`ID_LIST`."""
    return json.dumps(list(ids))


class Database:
    """One open tag database. Every part of the store reads and writes through it."""

    def __init__(self, path: Path, *, create: bool, read_only: bool) -> None:
        self.path = path
        _check_file(path, must_exist=read_only or not create)
        try:
            self._sql = _connect_read_only(path) if read_only else _connect(path)
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot open it: {error}") from error
        try:
            version = self.scalar("PRAGMA user_version")
            if read_only or version or self.scalar("SELECT count(*) FROM sqlite_master"):
                self._check_schema(version)  # before anything could change the file
            if not read_only:
                self.execute("PRAGMA foreign_keys = ON")
                self.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode loses nothing when the process dies, only on power loss.
                self.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except (sqlite3.DatabaseError, StoreError) as error:
            self._sql.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"{path}: cannot use it as a tag database: {error}") from error

    def close(self) -> None:
        self._sql.close()

    def execute(self, statement: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self._sql.execute(statement, parameters)

    def executemany(self, statement: str, rows: Any) -> sqlite3.Cursor:
        return self._sql.executemany(statement, rows)

    def scalar(self, statement: str, parameters: Any = ()) -> Any:
        """The first column of the first row."""
        return self._sql.execute(statement, parameters).fetchone()[0]

    def image_id(self, path: StrPath) -> int | None:
        row = self.execute("SELECT id FROM images WHERE path = ?", (encode(path),)).fetchone()
        return row[0] if row else None

    def ensure_image(self, path: StrPath) -> int:
        raw = encode(path)
        self.execute("INSERT OR IGNORE INTO images(path) VALUES (?)", (raw,))
        return int(self.scalar("SELECT id FROM images WHERE path = ?", (raw,)))

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """All or nothing; two writers queue for the lock instead of failing half-way."""
        return immediate_transaction(self._sql)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that must agree with each other see one committed state."""
        if self._sql.in_transaction:
            yield
            return
        self._sql.execute("BEGIN")
        try:
            yield
        finally:
            self._sql.execute("COMMIT")

    def _check_schema(self, version: int) -> None:
        """Refuses newer schemas and SQLite files of other programs (given by mistake)."""
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer autotags "
                             f"(schema {version}; this one knows {SCHEMA_VERSION})")
        tables = {row[0] for row in self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if (version == 0 and tables) or (version and not {"images", "tags"} <= tables):
            raise StoreError(f"{self.path} is not an autotags tag database; it was left as "
                             "it was (give another --db)")
        if version == 0:
            raise StoreError(f"{self.path}: an empty tag database (run `autotags scan` first)")

    def _migrate(self) -> None:
        with self.transaction():
            version = self.scalar("PRAGMA user_version")
            if version == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.execute(statement)
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, _MIGRATIONS[step].split(";")):
                    self.execute(statement)
            self.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _check_file(path: Path, *, must_exist: bool) -> None:
    """Refuses what cannot be a database file before SQLite creates anything."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give the database's file name, e.g. "
                         f"{path / 'tags.sqlite3'}")
    if path.exists() and not path.is_file():
        raise StoreError(f"{path} is {kind_of(path.stat().st_mode)}, not a tag database; "
                         "give a file name")
    if must_exist and not path.exists():
        raise StoreError(f"{path}: no such tag database (run `autotags scan` first)")
    if not path.parent.is_dir():
        raise StoreError(f"{path}: the folder {path.parent} does not exist")


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit, see Database.transaction().
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the file. On read-only media a WAL database cannot
    get its shared-memory file; it is then read as immutable, as nobody can write there."""
    path = path.resolve()
    uri = "file:" + urllib.parse.quote(os.fsencode(path))  # bytes: names that are not UTF-8
    try:
        return _probed(uri + "?mode=ro")
    except sqlite3.OperationalError:
        _refuse_unreadable_log(path)
        return _probed(uri + "?immutable=1")


def _refuse_unreadable_log(path: Path) -> None:
    """Read as immutable, SQLite ignores the write-ahead log: committed tags still in it
    would be silently missing from every answer."""
    log_file = path.with_name(path.name + "-wal")
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > 0:
            raise StoreError(
                f"{path}: its latest changes are in {log_file}, which cannot be read here "
                f"without {path.name}-shm (read-only media or folder); open it once where "
                "it can be written, or copy the three files to a writable folder")


def _probed(uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                         check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db
