"""The SQLite tag store: images, the tag tree, and which model or person tagged what.

Paths are stored as the bytes the file system uses, so names that are not valid UTF-8
survive. Machine-made tags live below the root tag ``auto`` (``auto/cat``); manual tags
anywhere else. Every change happens inside a transaction, and the database runs in WAL
mode, so readers see a consistent state while a scan writes, and a killed process leaves
the last committed state behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..vocabulary.hierarchy import TagPaths, contains_words, tag_path, vocabulary, words
from .files import FileState, StrPath, canonical_path, kind_of

AUTO_ROOT = "auto"
MANUAL_SOURCE = "manual"
IMPORTED_SOURCE = "xmp"  # machine tags found in a file's metadata (another tool's)
SCHEMA_VERSION = 5
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
}


class StoreError(RuntimeError):
    """The database cannot be used: newer schema, not a database, bad tag name."""


@dataclass(frozen=True)
class ScanRecord:
    """The last scan of one image by one model."""

    state: FileState
    error: str | None
    scanned_at: float
    settings: dict[str, object]


@dataclass(frozen=True)
class StoredTag:
    path: str            # full tag path, e.g. "auto/cat"
    source: str          # the model that made it, or "manual"
    confidence: float | None
    instances: int
    boxes: tuple[tuple[float, float, float, float, float], ...] = ()  # x1, y1, x2, y2, score


@dataclass(frozen=True)
class TagNode:
    path: str
    depth: int
    images: int          # images carrying this tag or one below it


@dataclass(frozen=True)
class Failure:
    path: str
    model: str
    error: str


@dataclass(frozen=True)
class KeywordsToWrite:
    """An image's tags as another program should see them."""

    paths: tuple[str, ...]       # manual tags and machine tags (auto/...), in the chosen style
    rejected: frozenset[str]     # labels a person removed (untag)
    scanned: bool = False        # a model tagged it: its tags replace other tools' auto tags


@dataclass(frozen=True)
class WrittenKeywords:
    paths: tuple[str, ...]
    owned_by_others: tuple[str, ...]


@dataclass(frozen=True)
class NewTag:
    """A tag a model produced for an image, ready to store."""

    label: str
    confidence: float
    instances: int = 1
    category: str | None = None  # where the label sits in the vocabulary, e.g. animal/dog
    boxes: tuple[tuple[float, float, float, float, float], ...] = ()  # x1, y1, x2, y2, score


def _encode(path: StrPath) -> bytes:
    return os.fsencode(canonical_path(path))


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit, see TagStore.transaction().
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


def _decode(raw: bytes) -> str:
    return os.fsdecode(raw)


def split_tag_path(tag: str) -> list[str]:
    parts = [part.strip() for part in tag.strip().strip("/").split("/")]
    if not parts or any(not part for part in parts):
        raise StoreError(f"invalid tag {tag!r}: use names separated by '/', e.g. people/alice")
    return parts


class TagStore:
    """One SQLite file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: StrPath, *, create: bool = True, read_only: bool = False) -> None:
        """Opens (``create``: or makes) the tag database at `path`. ``read_only`` opens it
        for queries only: nothing in the file changes, and a file that is not an autotags
        database is refused untouched. The folder must exist: nothing is created but
        the file itself."""
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; give the database's file name, e.g. "
                             f"{self.path / 'tags.sqlite3'}")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path} is {kind_of(self.path.stat().st_mode)}, not a tag "
                             "database; give a file name")
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"{self.path}: no such tag database (run `autotags scan` first)")
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist")
        try:
            self._db = _connect_read_only(self.path) if read_only else _connect(self.path)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot open it: {error}") from error
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if read_only or version or self._db.execute(
                    "SELECT count(*) FROM sqlite_master").fetchone()[0]:
                self._check_schema(version)  # before anything could change the file
            if not read_only:
                self._db.execute("PRAGMA foreign_keys = ON")
                self._db.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode loses nothing when the process dies, only on power loss.
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except (sqlite3.DatabaseError, StoreError) as error:
            self._db.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"{self.path}: cannot use it as a tag database: {error}") from error

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TagStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_schema(self, version: int) -> None:
        """Refuses newer schemas and SQLite files of other programs (given by mistake)."""
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer autotags "
                             f"(schema {version}; this one knows {SCHEMA_VERSION})")
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if (version == 0 and tables) or (version and not {"images", "tags"} <= tables):
            raise StoreError(f"{self.path} is not an autotags tag database; it was left as "
                             "it was (give another --db)")
        if version == 0:
            raise StoreError(f"{self.path}: an empty tag database (run `autotags scan` first)")

    def _migrate(self) -> None:
        with self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, _MIGRATIONS[step].split(";")):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing. IMMEDIATE takes the write lock up front, so two writers
        queue instead of failing half-way."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            # Also when COMMIT itself failed (disk full, I/O error): the next transaction
            # must not find this one still open.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # ---- tag tree -------------------------------------------------------------------

    def _tag_id(self, parts: Sequence[str], *, create: bool) -> int | None:
        parent: int | None = None
        for name in parts:
            row = self._db.execute(
                "SELECT id FROM tags WHERE ifnull(parent_id, 0) = ifnull(?, 0) AND name = ?",
                (parent, name)).fetchone()
            if row is None:
                if not create:
                    return None
                row = (self._db.execute("INSERT INTO tags(parent_id, name) VALUES (?, ?)",
                                        (parent, name)).lastrowid,)
            parent = row[0]
        return parent

    def _matching_tag_ids(self, tag: str) -> list[int]:
        """Tags whose name or full path is `tag` (any case), with everything below them."""
        parts = split_tag_path(tag)
        seeds: set[int] = set()
        if len(parts) == 1:
            seeds.update(r[0] for r in self._db.execute("SELECT id FROM tags WHERE name = ?",
                                                         (parts[0],)))
        full = self._tag_id(parts, create=False)
        if full is not None:
            seeds.add(full)
        if not seeds:
            return []
        placeholders = ",".join("?" * len(seeds))
        rows = self._db.execute(f"""
            WITH RECURSIVE below(id) AS (
                SELECT id FROM tags WHERE id IN ({placeholders})
                UNION SELECT tags.id FROM tags JOIN below ON tags.parent_id = below.id)
            SELECT id FROM below""", tuple(seeds))
        return [r[0] for r in rows]

    def _tag_paths(self) -> dict[int, str]:
        rows = self._db.execute("""
            WITH RECURSIVE tree(id, path) AS (
                SELECT id, name FROM tags WHERE parent_id IS NULL
                UNION ALL
                SELECT tags.id, tree.path || '/' || tags.name
                FROM tags JOIN tree ON tags.parent_id = tree.id)
            SELECT id, path FROM tree""")
        return dict(rows.fetchall())

    def _image_tag_paths(self, image: int | None) -> dict[int, str]:
        """Full paths of the tags one image carries or rejected, walked up from those
        tags alone: the per-image queries must not cost the size of the whole tree."""
        rows = self._db.execute("""
            WITH RECURSIVE up(tag, parent, path) AS (
                SELECT tags.id, tags.parent_id, tags.name FROM tags WHERE tags.id IN (
                    SELECT tag_id FROM image_tags WHERE image_id = :image
                    UNION SELECT tag_id FROM rejections WHERE image_id = :image)
                UNION ALL
                SELECT up.tag, tags.parent_id, tags.name || '/' || up.path
                FROM up JOIN tags ON tags.id = up.parent)
            SELECT tag, path FROM up WHERE parent IS NULL""", {"image": image})
        return dict(rows.fetchall())

    # ---- images ---------------------------------------------------------------------

    def image_id(self, path: StrPath) -> int | None:
        row = self._db.execute("SELECT id FROM images WHERE path = ?", (_encode(path),)).fetchone()
        return row[0] if row else None

    def _ensure_image(self, path: StrPath) -> int:
        raw = _encode(path)
        self._db.execute("INSERT OR IGNORE INTO images(path) VALUES (?)", (raw,))
        return self._db.execute("SELECT id FROM images WHERE path = ?", (raw,)).fetchone()[0]

    def scan_records(self, model: str) -> dict[bytes, ScanRecord]:
        """Last scan by `model` of every known image, keyed by encoded path."""
        rows = self._db.execute("""
            SELECT images.path, scans.size, scans.mtime_ns, scans.fingerprint, scans.error,
                   scans.scanned_at, scans.settings
            FROM scans JOIN images ON images.id = scans.image_id WHERE scans.model = ?""",
                                (model,))
        return {path: ScanRecord(FileState(size, mtime, fingerprint), error, scanned_at,
                                 json.loads(settings))
                for path, size, mtime, fingerprint, error, scanned_at, settings in rows}

    def record_scan(self, path: StrPath, model: str, state: FileState, settings: dict[str, object],
                    *, width: int = 0, height: int = 0, tags: Iterable[NewTag] = (),
                    error: str | None = None, replace: bool = True) -> None:
        """Store one model's verdict on one image. Call inside :meth:`transaction`.

        ``replace`` drops the tags this model made before (digiKam's Replace); otherwise
        they are kept and new ones added (Update). Other models' and manual tags are
        never touched. A failed scan changes no tags.
        """
        image = self._ensure_image(path)
        self._db.execute("""
            UPDATE images SET size = ?, mtime_ns = ?, fingerprint = ?, missing = 0,
                   width = CASE WHEN ? > 0 THEN ? ELSE width END,
                   height = CASE WHEN ? > 0 THEN ? ELSE height END
            WHERE id = ?""",
                         (state.size, state.mtime_ns, state.fingerprint, width, width, height,
                          height, image))
        self._db.execute("""
            INSERT OR REPLACE INTO scans(image_id, model, settings, scanned_at, size, mtime_ns,
                                         fingerprint, error)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                         (image, model, json.dumps(settings, sort_keys=True), time.time(),
                          state.size, state.mtime_ns, state.fingerprint, error))
        self._db.execute("DELETE FROM in_flight WHERE path = ? AND model = ?",
                         (_encode(path), model))
        if error is not None:
            return
        self._keywords_changed(image)
        if replace:
            self._db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?",
                             (image, model))
            self._db.execute("DELETE FROM tag_boxes WHERE image_id = ? AND source = ?",
                             (image, model))
        rejected = {r[0] for r in self._db.execute(
            "SELECT tag_id FROM rejections WHERE image_id = ?", (image,))}
        for tag in tags:
            tag_id = self._tag_id([AUTO_ROOT, *split_tag_path(tag.label)], create=True)
            if tag_id in rejected:
                continue  # a person said it is not there
            self._db.execute(
                "DELETE FROM tag_boxes WHERE image_id = ? AND tag_id = ? AND source = ?",
                (image, tag_id, model))
            self._db.executemany("""
                INSERT INTO tag_boxes(image_id, tag_id, source, score, x1, y1, x2, y2)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                                 [(image, tag_id, model, b[4], *b[:4]) for b in tag.boxes])
            self._db.execute("""
                INSERT INTO image_tags(image_id, tag_id, source, confidence, instances, category)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(image_id, tag_id, source) DO UPDATE SET
                    confidence = max(confidence, excluded.confidence),
                    instances = max(instances, excluded.instances),
                    category = excluded.category""",
                             (image, tag_id, model, tag.confidence, tag.instances, tag.category))

    def mark_missing(self, under: Sequence[StrPath], present: set[bytes]) -> int:
        """Flag known images below the folders `under` that are not in `present`.
        Their tags and history stay. Call inside :meth:`transaction`."""
        missing = 0
        for folder in under:
            prefix = _encode(folder).rstrip(b"/") + b"/"
            rows = self._db.execute(
                "SELECT id, path FROM images WHERE missing = 0 AND substr(path, 1, ?) = ?",
                (len(prefix), prefix)).fetchall()
            gone = [(image,) for image, path in rows if path not in present]
            self._db.executemany("UPDATE images SET missing = 1 WHERE id = ?", gone)
            missing += len(gone)
        return missing

    # ---- files in flight --------------------------------------------------------

    def mark_in_flight(self, model: str, paths: Sequence[StrPath]) -> None:
        """Files about to be decoded for `model`; each mark goes when its result is
        stored, so marks found later name the files a dead process was working on."""
        with self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO in_flight(path, model) VALUES (?, ?)",
                                 [(_encode(p), model) for p in paths])

    def in_flight(self) -> dict[str, list[str]]:
        """Marks left by a process that died: model -> paths."""
        found: dict[str, list[str]] = {}
        for path, model in self._db.execute("SELECT path, model FROM in_flight ORDER BY path"):
            found.setdefault(model, []).append(_decode(path))
        return found

    def clear_in_flight(self, models: Sequence[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM in_flight WHERE model = ?", [(m,) for m in models])

    def mark_present(self, present: set[bytes]) -> int:
        """Clear the missing flag of known images found again (a drive back, a folder
        readable again). Call inside :meth:`transaction`."""
        back = [(image,) for image, path in self._db.execute(
            "SELECT id, path FROM images WHERE missing = 1").fetchall() if path in present]
        self._db.executemany("UPDATE images SET missing = 0 WHERE id = ?", back)
        return len(back)

    def missing_by_size(self) -> dict[int, list[tuple[int, str | None]]]:
        """Missing images as size -> [(image id, fingerprint)], to recognise them moved."""
        found: dict[int, list[tuple[int, str | None]]] = {}
        for image, size, fingerprint in self._db.execute(
                "SELECT id, size, fingerprint FROM images WHERE missing = 1"):
            found.setdefault(size, []).append((image, fingerprint))
        return found

    def move_image(self, image: int, path: StrPath) -> None:
        """The file of a known image now lives at `path`: its tags and history follow it.
        Call inside :meth:`transaction`."""
        self._db.execute("UPDATE images SET path = ?, missing = 0 WHERE id = ?",
                         (_encode(path), image))

    def mark_missing_files(self, paths: Sequence[StrPath]) -> int:
        """Flag the given known images as gone. Call inside :meth:`transaction`."""
        return sum(self._db.execute("UPDATE images SET missing = 1 WHERE path = ? AND missing = 0",
                                    (_encode(path),)).rowcount for path in paths)

    # ---- manual tags ----------------------------------------------------------------

    def add_manual_tag(self, path: StrPath, tag: str) -> None:
        """Tags an image by hand. A tag below ``auto/`` confirms a machine tag instead: it
        then survives every scan, and a rejection of it is lifted."""
        parts = split_tag_path(tag)
        with self.transaction():
            image = self._ensure_image(path)
            tag_id = self._tag_id(parts, create=True)
            self._keywords_changed(image)
            category = None
            if parts[0].lower() == AUTO_ROOT:
                self._db.execute("DELETE FROM rejections WHERE image_id = ? AND tag_id = ?",
                                 (image, tag_id))
                row = self._db.execute("""SELECT category FROM image_tags WHERE image_id = ?
                                          AND tag_id = ? AND category IS NOT NULL""",
                                       (image, tag_id)).fetchone()
                category = row[0] if row else None
            self._db.execute("""INSERT OR IGNORE INTO image_tags(image_id, tag_id, source,
                                                                  category)
                                VALUES (?, ?, ?, ?)""", (image, tag_id, MANUAL_SOURCE, category))

    def remove_manual_tag(self, path: StrPath, tag: str) -> bool:
        """Removes a tag added by hand. A tag below ``auto/`` is rejected instead: every
        model's instance of it goes, and no later scan of this image adds it back."""
        parts = split_tag_path(tag)
        with self.transaction():
            image = self.image_id(path)
            tag_id = self._tag_id(parts, create=False)
            if image is None or tag_id is None:
                return False
            self._keywords_changed(image)
            if parts[0].lower() != AUTO_ROOT:
                return self._db.execute(
                    "DELETE FROM image_tags WHERE image_id = ? AND tag_id = ? AND source = ?",
                    (image, tag_id, MANUAL_SOURCE)).rowcount > 0
            self._db.execute("DELETE FROM image_tags WHERE image_id = ? AND tag_id = ?",
                             (image, tag_id))
            self._db.execute("DELETE FROM tag_boxes WHERE image_id = ? AND tag_id = ?",
                             (image, tag_id))
            self._db.execute("INSERT OR IGNORE INTO rejections(image_id, tag_id) VALUES (?, ?)",
                             (image, tag_id))
            return True  # rejected from now on, whether or not a model had added it yet

    def rejected_tags(self, path: StrPath) -> list[str]:
        """Machine tags a person removed from this image."""
        with self._snapshot():
            image = self.image_id(path)
            paths = self._image_tag_paths(image)
            rows = self._db.execute("SELECT tag_id FROM rejections WHERE image_id = ?", (image,))
            return sorted(paths[r[0]] for r in rows)

    # ---- keywords in files -----------------------------------------------------------

    def keywords_to_write(self, path: StrPath, style: TagPaths) -> KeywordsToWrite:
        """The tags of an image for its file's keyword fields: machine tags in `style`
        (see :func:`tag_path`), manual tags as they are. Machine tags read from the
        file itself (source ``xmp``) are not written back: they are already there."""
        with self._snapshot():
            image = self.image_id(path)
            if image is None:
                return KeywordsToWrite((), frozenset())
            paths = self._image_tag_paths(image)
            written: list[str] = []
            for tag_id, source, category in self._db.execute(
                    "SELECT tag_id, source, category FROM image_tags WHERE image_id = ?",
                    (image,)):
                tag = paths[tag_id]
                if tag.startswith(AUTO_ROOT + "/"):
                    if source == IMPORTED_SOURCE:
                        continue
                    tag = tag_path(tag[len(AUTO_ROOT) + 1:], category, style)
                written.append(tag)
            rejected = frozenset(paths[r[0]].rsplit("/", 1)[-1] for r in self._db.execute(
                "SELECT tag_id FROM rejections WHERE image_id = ?", (image,)))
            scanned = self._db.execute("SELECT count(*) FROM scans WHERE image_id = ? "
                                       "AND error IS NULL", (image,)).fetchone()[0] > 0
        return KeywordsToWrite(tuple(sorted(set(written), key=str.lower)), rejected, scanned)

    def _keywords_changed(self, image: int) -> None:
        """The image's files no longer show its tags: the next scan that writes
        keywords writes them (see :meth:`keywords_out_of_date`)."""
        self._db.execute("UPDATE written_keywords SET up_to_date = 0 WHERE image_id = ?",
                         (image,))

    def keywords_out_of_date(self, target: str, among: Iterable[StrPath]) -> list[str]:
        """Images among `among` whose tags changed since autotags last wrote them to
        `target` (or were never written), in the order given."""
        with self._snapshot():
            stale = {r[0] for r in self._db.execute("""
                SELECT path FROM images WHERE missing = 0 AND (
                    id IN (SELECT image_id FROM written_keywords
                           WHERE target = ? AND up_to_date = 0)
                    OR (id NOT IN (SELECT image_id FROM written_keywords WHERE target = ?)
                        AND (id IN (SELECT image_id FROM image_tags)
                             OR id IN (SELECT image_id FROM rejections)
                             OR id IN (SELECT image_id FROM scans WHERE error IS NULL))))""",
                                                     (target, target))}
        return [os.fspath(p) for p in among if _encode(p) in stale]

    def written_keywords(self, path: StrPath, target: str) -> WrittenKeywords | None:
        row = self._db.execute("""
            SELECT paths, owned_by_others FROM written_keywords
            JOIN images ON images.id = written_keywords.image_id
            WHERE images.path = ? AND target = ?""", (_encode(path), target)).fetchone()
        return WrittenKeywords(tuple(json.loads(row[0])), tuple(json.loads(row[1]))) \
            if row else None

    def record_written_keywords(self, path: StrPath, target: str, written: WrittenKeywords,
                                *, replaced_imported: bool = False) -> None:
        """The file now shows the image's tags. ``replaced_imported``: another tool's
        machine tags, read from the file, were replaced there by the models' own
        (Replace), so the store drops them too."""
        with self.transaction():
            image = self.image_id(path)
            if image is None:
                return  # never scanned nor tagged: nothing to remember it by
            if replaced_imported:
                self._db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?",
                                 (image, IMPORTED_SOURCE))
            self._db.execute("""
                INSERT OR REPLACE INTO written_keywords(image_id, target, paths, owned_by_others)
                VALUES (?, ?, ?, ?)""", (image, target, json.dumps(list(written.paths)),
                                         json.dumps(sorted(written.owned_by_others))))

    def record_rewritten_file(self, path: StrPath, before: FileState, after: FileState) -> None:
        """autotags itself rewrote the file (embedded keywords): scans that saw it as it
        was now count for it as it is, so `--mode new` does not tag it again."""
        with self.transaction():
            image = self.image_id(path)
            if image is None:
                return
            new = (after.size, after.mtime_ns, after.fingerprint)
            self._db.execute("""UPDATE images SET size = ?, mtime_ns = ?, fingerprint = ?
                                WHERE id = ? AND size = ? AND mtime_ns = ?""",
                             (*new, image, before.size, before.mtime_ns))
            self._db.execute("""UPDATE scans SET size = ?, mtime_ns = ?, fingerprint = ?
                                WHERE image_id = ? AND size = ? AND mtime_ns = ?""",
                             (*new, image, before.size, before.mtime_ns))

    def import_keywords(self, path: StrPath, tags: Sequence[str]) -> int:
        """Keywords found in an image's file: tags below ``auto/`` become machine tags of
        source ``xmp`` (by their label, the last part), unless a person rejected them or
        a model already gave them; the rest become manual tags. Returns how many tags
        the image did not have yet."""
        known = vocabulary()
        added = 0
        with self.transaction():
            image = self._ensure_image(path)
            rejected = {r[0] for r in self._db.execute(
                "SELECT tag_id FROM rejections WHERE image_id = ?", (image,))}
            before = {r[0] for r in self._db.execute(
                "SELECT tag_id FROM image_tags WHERE image_id = ?", (image,))}
            self._db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?",
                             (image, IMPORTED_SOURCE))
            self._keywords_changed(image)
            for tag in dict.fromkeys(tags):
                parts = split_tag_path(tag)
                source, category = MANUAL_SOURCE, None
                if parts[0].lower() == AUTO_ROOT and len(parts) > 1:
                    parts = [AUTO_ROOT, parts[-1]]
                    source = IMPORTED_SOURCE
                    entry = known.entry(known.vocabulary_of((parts[1],)), parts[1])
                    category = entry.category if entry else None
                tag_id = self._tag_id(parts, create=True)
                held = self._db.execute("SELECT count(*) FROM image_tags WHERE image_id = ? "
                                        "AND tag_id = ?", (image, tag_id)).fetchone()[0]
                if held or tag_id in rejected:
                    continue
                self._db.execute("""INSERT INTO image_tags(image_id, tag_id, source, category)
                                    VALUES (?, ?, ?, ?)""", (image, tag_id, source, category))
                added += tag_id not in before
        return added

    # ---- queries --------------------------------------------------------------------

    def search(self, terms: str | Sequence[str], *, match_any: bool = False,
               min_score: float | None = None, include_missing: bool = False) -> list[str]:
        """Images matching every term (``match_any``: any term), sorted by path.

        A term matches, ignoring case and as whole words, a tag's name or full path
        ('cat', 'auto/cat', 'people/alice', with every tag below it), the other names of
        a machine tag's label ('motorbike' finds motorcycle) and every category above it
        ('dog' finds malamute, 'animal' finds both). A term that names a category
        ('dog') finds what is in it, not other labels with the word ('hot dog').
        ``min_score`` drops machine tags below that confidence (0..1).
        """
        wanted = [terms] if isinstance(terms, str) else list(terms)
        if not wanted:
            raise StoreError("search needs at least one term")
        found: set[int] | None = None
        with self._snapshot():
            rows = self._db.execute(
                "SELECT DISTINCT tag_id, category FROM image_tags").fetchall()
            leaves = {t: p.rsplit("/", 1)[-1] for t, p in self._tag_paths().items()}
            for term in wanted:
                images = self._images_with(self._rows_matching(term, rows, leaves), min_score,
                                           include_missing)
                found = images if found is None else (
                    found | images if match_any else found & images)
            placeholders = ",".join("?" * len(found or ()))
            paths = self._db.execute(
                f"SELECT path FROM images WHERE id IN ({placeholders})", tuple(found or ()))
            return sorted(_decode(r[0]) for r in paths)

    def _rows_matching(self, term: str, rows: list[tuple[int, str | None]],
                       leaves: dict[int, str]) -> set[tuple[int, str | None]]:
        known = vocabulary()
        by_name = set(self._matching_tag_ids(term))
        nodes = known.category_nodes(term)
        if nodes:
            return {(t, c) for t, c in rows
                    if (c is not None and any(c == n or c.startswith(n + "/") for n in nodes))
                    or (c is None and t in by_name)}
        called = known.labels_called(term)
        term_words = words(term)
        return {(t, c) for t, c in rows if t in by_name or leaves[t] in called
                or contains_words(words(leaves[t]), term_words)}

    def _images_with(self, keys: set[tuple[int, str | None]], min_score: float | None,
                     include_missing: bool) -> set[int]:
        if not keys:
            return set()
        tag_ids = sorted({t for t, _ in keys})
        placeholders = ",".join("?" * len(tag_ids))
        rows = self._db.execute(f"""
            SELECT image_tags.image_id, image_tags.tag_id, image_tags.category,
                   image_tags.confidence
            FROM image_tags JOIN images ON images.id = image_tags.image_id
            WHERE image_tags.tag_id IN ({placeholders}) AND (? OR images.missing = 0)""",
                                (*tag_ids, include_missing))
        return {image for image, tag, category, confidence in rows
                if (tag, category) in keys
                and (min_score is None or confidence is None or confidence >= min_score)}

    def tags_of(self, path: StrPath) -> list[StoredTag]:
        with self._snapshot():
            image = self.image_id(path)
            if image is None:
                return []
            paths = self._image_tag_paths(image)
            boxes: dict[tuple[int, str], list[tuple[float, float, float, float, float]]] = {}
            for t, s, score, x1, y1, x2, y2 in self._db.execute(
                    """SELECT tag_id, source, score, x1, y1, x2, y2 FROM tag_boxes
                       WHERE image_id = ? ORDER BY score DESC""", (image,)):
                boxes.setdefault((t, s), []).append((x1, y1, x2, y2, score))
            rows = self._db.execute("""SELECT tag_id, source, confidence, instances
                                       FROM image_tags WHERE image_id = ?""", (image,))
            tags = [StoredTag(paths[t], s, c, n, tuple(boxes.get((t, s), ())))
                    for t, s, c, n in rows]
        return sorted(tags, key=lambda t: (t.source == MANUAL_SOURCE, -(t.confidence or 0), t.path))

    def image_info(self, path: StrPath) -> dict[str, object] | None:
        with self._snapshot():
            row = self._db.execute("""SELECT id, width, height, size, missing FROM images
                                      WHERE path = ?""", (_encode(path),)).fetchone()
            if row is None:
                return None
            image, width, height, size, missing = row
            scans = self._db.execute("""SELECT model, settings, scanned_at, error FROM scans
                                        WHERE image_id = ? ORDER BY model""", (image,))
            return {
                "path": canonical_path(path), "width": width, "height": height,
                "size": size, "missing": bool(missing),
                "scans": [{"model": m, "settings": json.loads(s), "scanned_at": t, "error": e}
                          for m, s, t, e in scans],
            }

    def tag_tree(self) -> list[TagNode]:
        """Every tag that a present image carries (itself or a tag below it), in
        depth-first order, with how many images that is. Machine tags appear below
        their categories (auto/animal/dog/malamute)."""
        with self._snapshot():
            paths = self._tag_paths()
            totals: dict[str, set[int]] = {}
            for tag_id, image, category in self._db.execute("""
                    SELECT image_tags.tag_id, image_tags.image_id, image_tags.category
                    FROM image_tags JOIN images ON images.id = image_tags.image_id
                    WHERE images.missing = 0"""):
                path = paths[tag_id]
                if category and path.startswith(AUTO_ROOT + "/"):
                    path = tag_path(path[len(AUTO_ROOT) + 1:], category, "hierarchical")
                parts = path.split("/")
                for depth in range(1, len(parts) + 1):
                    totals.setdefault("/".join(parts[:depth]), set()).add(image)
        return [TagNode(path, path.count("/"), len(totals[path]))
                for path in sorted(totals, key=lambda p: p.lower().split("/"))]

    def failures(self) -> list[Failure]:
        with self._snapshot():
            rows = self._db.execute("""
                SELECT images.path, scans.model, scans.error FROM scans
                JOIN images ON images.id = scans.image_id
                WHERE scans.error IS NOT NULL AND images.missing = 0 ORDER BY images.path""")
            return [Failure(_decode(p), m, e) for p, m, e in rows]

    def counts(self) -> dict[str, int]:
        with self._snapshot():
            images, missing = self._db.execute(
                "SELECT count(*), ifnull(sum(missing), 0) FROM images").fetchone()
            links = self._db.execute("SELECT count(*) FROM image_tags").fetchone()[0]
        return {"images": images, "missing": missing, "tag_links": links}

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that must agree with each other see one committed state."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")
