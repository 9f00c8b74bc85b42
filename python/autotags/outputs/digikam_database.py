"""digiKam's core database (``digikam4.db``, SQLite): finding it, checking it is one this
code understands, mapping its images to files, and putting tags in as digiKam would.

digiKam keeps a closure table of its tag tree (``TagsTree``) with SQLite triggers on
``Tags``; a writer only inserts ``Tags(pid, name)`` level by level (``pid = 0`` at the top)
and ``ImageTags`` rows, and leaves ``TagsTree`` to the triggers. Machine tags are those
with the top-level tag ``auto`` among their ancestors; nothing else is touched, least of
all digiKam's internal tags (``_Digikam_Internal_Tags_``, TagProperty ``internalTag``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..collection.files import glob_escape
from .digikam_engines import Engine, MysqlEngine, SqliteEngine
from .digikam_settings import DigikamError, MysqlLocation, digikam_processes

AUTO_ROOT = "auto"
NEWEST_KNOWN_VERSION = 17  # digiKam 9.2: 16 added AlbumRoots.caseSensitivity, 17 a time zone
OLDEST_KNOWN_VERSION = 8
BUSY_TIMEOUT_SECONDS = 10.0
VISIBLE, IMAGE = 1, 1  # Images.status and Images.category
# Tables and columns this code reads or writes; a database lacking any is refused.
REQUIRED_COLUMNS = {
    "AlbumRoots": {"id", "label", "status", "type", "identifier", "specificPath"},
    "Albums": {"id", "albumRoot", "relativePath"},
    "Images": {"id", "album", "name", "status", "category"},
    "Tags": {"id", "pid", "name"},
    "TagsTree": {"id", "pid"},
    "ImageTags": {"imageid", "tagid"},
    "TagProperties": {"tagid", "property", "value"},
    "Settings": {"keyword", "value"},
}
REQUIRED_TRIGGERS = {"insert_tagstree", "delete_tagstree"}


@dataclass(frozen=True)
class DigikamImage:
    id: int
    path: str


@dataclass
class Collection:
    images: list[DigikamImage] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)  # album roots not reachable now


@dataclass(frozen=True)
class ImageChange:
    image: int
    added: tuple[str, ...]     # tag paths
    removed: tuple[str, ...]


@dataclass
class TagChanges:
    """What one write did (or, in a dry run, would do)."""

    tags_created: list[str] = field(default_factory=list)
    links_added: int = 0
    links_removed: int = 0
    images_changed: int = 0
    per_image: list[ImageChange] | None = None  # kept when asked for (dry runs)
    rows: RowChanges | None = None  # the exact rows, when asked for (the undo journal)
    refused: list[tuple[int, str]] = field(default_factory=list)  # image, why a tag could not go


@dataclass
class RowChanges:
    """The rows a write added to and removed from digiKam's database."""

    tags: list[tuple[int, int, str]] = field(default_factory=list)  # id, pid, name created
    links_added: list[tuple[int, int]] = field(default_factory=list)  # imageid, tagid
    links_removed: list[tuple[int, int]] = field(default_factory=list)


def check_schema(db: Engine) -> int:
    """The database's version, once it is known to have everything this code uses."""
    where = db.where
    tables = db.tables()
    if not {"Settings", "Tags", "Images"} <= tables:
        raise DigikamError(f"{where} is not a digiKam database; it was left as it was")
    row = db.execute("SELECT value FROM Settings WHERE keyword = 'DBVersion'").fetchone()
    try:
        version = int(row[0]) if row else 0
    except ValueError:
        version = 0
    if version > NEWEST_KNOWN_VERSION:
        raise DigikamError(f"{where} has digiKam's database version {version}, newer than the "
                           f"newest this autotags knows ({NEWEST_KNOWN_VERSION}); it was left "
                           "as it was (update autotags)")
    if version < OLDEST_KNOWN_VERSION:
        raise DigikamError(f"{where}: unknown digiKam database version {row[0] if row else '-'}"
                           "; it was left as it was")
    for table, columns in REQUIRED_COLUMNS.items():
        present = db.columns(table)
        if not columns <= present:
            missing = ", ".join(sorted(columns - present))
            raise DigikamError(f"{where}: digiKam's table {table} lacks {missing}; an unknown "
                               "schema, left as it was")
    if not db.triggers() >= REQUIRED_TRIGGERS:
        raise DigikamError(f"{where}: digiKam's tag-tree triggers are missing; an unknown "
                           "schema, left as it was")
    return version


BACKUP_INFIX = ".autotags-backup-"
BACKUPS_KEPT = 3  # the copies of before the last runs that changed something


class DigikamDatabase:
    """One digiKam core database, checked before anything is written to it."""

    def __init__(self, location: str | os.PathLike[str] | MysqlLocation, *,
                 force: bool = False, read_only: bool = False) -> None:
        """Checks and opens digiKam's database: a SQLite file or a MariaDB/MySQL database.
        ``read_only`` (for dry runs) never writes: a file is worked on as a copy in memory,
        a server's changes are rolled back."""
        self.path = None if isinstance(location, MysqlLocation) else \
            Path(location).expanduser()
        if self.path is not None and not self.path.is_file():
            raise DigikamError(f"{self.path}: no such digiKam database")
        running = digikam_processes()
        if running and not force:
            raise DigikamError(
                f"digiKam is running (process {running[0]}); close it first, as it keeps tags "
                "in memory and does not expect another program to change them (or --force)")
        self._db: Engine = SqliteEngine(self.path, read_only=read_only) if self.path else \
            MysqlEngine(location)  # type: ignore[arg-type]
        try:
            self.version = check_schema(self._db)
            self._db.writable()
        except BaseException:
            self._db.close()
            raise
        self.errors = self._db.errors
        self.backup_path: Path | None = None

    @property
    def where(self) -> str:
        """The database, for people to read."""
        return self._db.where

    @property
    def identity(self) -> str:
        """How the journal knows this database again."""
        return self._db.identity

    @property
    def output_target(self) -> str:
        """Its name in autotags' record of what outputs wrote."""
        return f"digikam:{self.path.resolve() if self.path else self.identity}"

    def check_writable(self) -> None:
        """Before any work: the file and its folder (backup, journal) take writes."""
        for place in (self.path, self.path.parent) if self.path else ():
            if not os.access(place, os.W_OK):
                raise DigikamError(f"{place} is read-only: digiKam's database cannot be "
                                   "written (nor its backup made beside it)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DigikamDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reading the collection ------------------------------------------------------

    def collection(self) -> Collection:
        """The visible images of every album root that is reachable now."""
        try:
            return self._collection()
        except self.errors as error:
            raise DigikamError(f"{self.where}: cannot read digiKam's albums ({error})") from None

    def _collection(self) -> Collection:
        found = Collection()
        roots = self._db.execute(
            "SELECT id, label, identifier, specificPath FROM AlbumRoots ORDER BY id").fetchall()
        for root_id, label, identifier, specific in roots:
            root = album_root_path(identifier or "", specific or "/")
            if root is None or not root.is_dir():
                found.unmounted.append(f"{label or identifier} ({identifier})")
                continue
            for image, relative, name in self._db.execute("""
                    SELECT Images.id, Albums.relativePath, Images.name FROM Images
                    JOIN Albums ON Albums.id = Images.album
                    WHERE Albums.albumRoot = ? AND Images.status = ? AND Images.category = ?
                    ORDER BY Images.id""", (root_id, VISIBLE, IMAGE)):
                folder = root / relative.strip("/") if relative.strip("/") else root
                found.images.append(DigikamImage(image, os.fspath(folder / name)))
        return found

    # ---- writing ---------------------------------------------------------------------

    @property
    def can_back_up(self) -> bool:
        """A file is copied before a run changes it; a server's database is not (the
        journal takes a run back, see :mod:`.digikam_journal`)."""
        return isinstance(self._db, SqliteEngine)

    def back_up(self) -> Path | None:
        """A copy of the whole file beside it (SQLite's online backup), once per run;
        only the newest :data:`BACKUPS_KEPT` copies are kept."""
        if not isinstance(self._db, SqliteEngine) or self.path is None:
            return None
        if self.backup_path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target = self.path.with_name(f"{self.path.name}{BACKUP_INFIX}{stamp}")
            try:
                self._db.backup_into(target)
            except sqlite3.Error as error:
                target.unlink(missing_ok=True)
                raise DigikamError(f"cannot make a backup copy {target} before writing "
                                   f"({error}); nothing was written") from None
            self.backup_path = target
            self._remove_old_backups()
        return self.backup_path

    def backups(self) -> list[Path]:
        """autotags' backups of this database, oldest first (the names sort by time)."""
        if self.path is None:
            return []
        pattern = glob_escape(self.path.name + BACKUP_INFIX) + "*"
        return sorted(self.path.parent.glob(pattern))

    def _remove_old_backups(self) -> None:
        for old in self.backups()[:-BACKUPS_KEPT]:
            with contextlib.suppress(OSError):
                old.unlink()

    def transaction(self, *, dry_run: bool = False) -> contextlib.AbstractContextManager[None]:
        """All of a batch or nothing; a dry run is rolled back."""
        return self._db.transaction(dry_run=dry_run)

    def set_machine_tags(self, image: int, paths: Sequence[str], *, replace: bool,
                         rejected: frozenset[str], changes: TagChanges) -> None:
        """Links `image` to the tags `paths` (each ``auto/...``). ``replace`` first drops
        its other tags below ``auto``; tags named in `rejected` go either way. Call inside
        :meth:`transaction`."""
        wanted: dict[int, str] = {}
        for path in paths:
            problem = next(filter(None, map(self._db.name_problem, path.split("/"))), None)
            if problem:
                changes.refused.append((image, problem))
            else:
                wanted[self._tag_id(path, changes)] = path
        current = self._machine_tags_of(image)
        drop = {t for t, name in current.items()
                if t not in wanted and (replace or name in rejected)}
        self._db.executemany("DELETE FROM ImageTags WHERE imageid = ? AND tagid = ?",
                             [(image, t) for t in sorted(drop)])
        added = [wanted[t] for t in sorted(set(wanted) - set(current))]
        self._db.executemany("INSERT OR IGNORE INTO ImageTags(imageid, tagid) VALUES (?, ?)",
                             [(image, t) for t in sorted(set(wanted) - set(current))])
        changes.links_added += len(added)
        changes.links_removed += len(drop)
        if changes.rows is not None:
            changes.rows.links_added += [(image, t) for t in sorted(set(wanted) - set(current))]
            changes.rows.links_removed += [(image, t) for t in sorted(drop)]
        changes.images_changed += bool(added or drop)
        if changes.per_image is not None and (added or drop):
            changes.per_image.append(ImageChange(
                image, tuple(added), tuple(sorted(self._path_of(t) for t in drop))))

    def _path_of(self, tag: int) -> str:
        names = []
        while tag:
            tag, name = self._db.execute("SELECT pid, name FROM Tags WHERE id = ?",
                                         (tag,)).fetchone()
            names.append(name)
        return "/".join(reversed(names))

    def _machine_tags_of(self, image: int) -> dict[int, str]:
        """The image's tags below ``auto`` (never an internal tag), id -> name."""
        auto = self._top_level(AUTO_ROOT)
        if auto is None:
            return {}
        return dict(self._db.execute("""
            SELECT Tags.id, Tags.name FROM ImageTags JOIN Tags ON Tags.id = ImageTags.tagid
            WHERE ImageTags.imageid = ?
              AND Tags.id IN (SELECT id FROM TagsTree WHERE pid = ?)
              AND Tags.id NOT IN (SELECT tagid FROM TagProperties
                                  WHERE property = 'internalTag')""", (image, auto)))

    def _top_level(self, name: str) -> int | None:
        row = self._db.execute("SELECT id FROM Tags WHERE pid = 0 AND name = ?",
                               (name,)).fetchone()
        return row[0] if row else None

    def _tag_id(self, path: str, changes: TagChanges) -> int:
        """The tag at `path`, created level by level as digiKam does."""
        parent = 0
        parts = path.split("/")
        for depth, name in enumerate(parts, 1):
            row = self._db.execute("SELECT id FROM Tags WHERE pid = ? AND name = ?",
                                   (parent, name)).fetchone()
            if row is not None:
                parent = int(row[0])
                continue
            created = self._db.execute("INSERT INTO Tags(pid, name) VALUES (?, ?)",
                                       (parent, name)).lastrowid
            if created is None:
                raise DigikamError(f"{self.where}: digiKam's Tags table gave no id for {name!r}")
            changes.tags_created.append("/".join(parts[:depth]))
            if changes.rows is not None:
                changes.rows.tags.append((created, parent, name))
            parent = created
        return parent

    def integrity_check(self) -> str:
        return self._db.integrity_check()

    def revert(self, rows: RowChanges) -> list[str]:
        """Takes back `rows` (what one run did) where digiKam's database still holds them
        as the run left them, in one transaction; says what it left and why."""
        left: list[str] = []
        with self.transaction():
            for image, tag in rows.links_added:
                if self._db.execute("DELETE FROM ImageTags WHERE imageid = ? AND tagid = ?",
                                    (image, tag)).rowcount == 0:
                    left.append(f"image {image}: tag {tag} was already removed since")
            for image, tag in rows.links_removed:
                left.extend(self._relink(image, tag))
            for tag, pid, name in reversed(rows.tags):
                left.extend(self._remove_created_tag(tag, pid, name))
        return left

    def _relink(self, image: int, tag: int) -> list[str]:
        if self._db.execute("SELECT count(*) FROM Images WHERE id = ?", (image,)).fetchone()[0] \
                == 0 or self._db.execute("SELECT count(*) FROM Tags WHERE id = ?",
                                         (tag,)).fetchone()[0] == 0:
            return [f"image {image}: its tag {tag} cannot be linked again (the image or the tag "
                    "was deleted since)"]
        self._db.execute("INSERT OR IGNORE INTO ImageTags(imageid, tagid) VALUES (?, ?)",
                         (image, tag))
        return []

    def _remove_created_tag(self, tag: int, pid: int, name: str) -> list[str]:
        row = self._db.execute("SELECT pid, name FROM Tags WHERE id = ?", (tag,)).fetchone()
        if row is None:
            return []  # digiKam's user deleted it since: nothing to do
        in_use = any(self._db.execute(query, (tag,)).fetchone()[0] for query in (
            "SELECT count(*) FROM ImageTags WHERE tagid = ?",
            "SELECT count(*) FROM Tags WHERE pid = ?",
            "SELECT count(*) FROM TagProperties WHERE tagid = ?"))
        if tuple(row) != (pid, name) or in_use:
            return [f"tag {name!r} ({tag}) was kept: digiKam's user moved, renamed or used it "
                    "since"]
        self._db.execute("DELETE FROM Tags WHERE id = ?", (tag,))
        return []


def album_root_path(identifier: str, specific_path: str) -> Path | None:
    """Where an album root is mounted now, from digiKam's identifier, or None."""
    scheme, _, query = identifier.partition("?")
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    if scheme == "volumeid:" and "path" in values:
        return Path(values["path"][0])
    base: Path | None = None
    if scheme == "volumeid:" and ("uuid" in values or "label" in values):
        kind = "uuid" if "uuid" in values else "label"
        base = _mount_point_of(kind, values[kind][0])
    elif scheme == "volumeid:" and "mountpath" in values:
        base = Path(values["mountpath"][0])
    elif scheme == "networkshareid:" and "mountpath" in values:
        base = next((Path(p) for p in values["mountpath"] if Path(p).is_dir()), None)
    if base is None:
        return None
    return base / specific_path.strip("/") if specific_path.strip("/") else base


def _mount_point_of(kind: str, value: str) -> Path | None:
    """Where the file system with this UUID or label is mounted: from its /dev/disk link,
    else as findmnt (util-linux) resolves it."""
    with contextlib.suppress(OSError):
        device = os.path.realpath(Path(f"/dev/disk/by-{kind}") / value, strict=True)
        for line in Path("/proc/self/mounts").read_text().splitlines():
            source, target, *_ = line.split()
            if source.startswith("/dev/") and os.path.realpath(source) == device:
                return Path(target.replace("\\040", " "))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found = subprocess.run(["findmnt", "-rn", "-o", "TARGET", "--source",
                                f"{kind.upper()}={value}"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.splitlines()
        if found:
            return Path(found[0].encode().decode("unicode_escape"))
    return None
