"""What autotags last wrote into other programs' copies of an image's tags (a sidecar,
the image file, digiKam's database), and whether that is still what the store holds.

An output reaches it as one :class:`KeywordLedger` per target: one read and one write
per file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ...vocabulary.hierarchy import TagPaths, tag_path
from ..files import FileState, StrPath
from .database import Database, encode
from .records import AUTO_ROOT, IMPORTED_SOURCE, KeywordsToWrite, WrittenKeywords
from .tag_tree import image_tag_paths


@dataclass(frozen=True)
class KeywordEntry:
    """One image as an output sees it."""

    wanted: KeywordsToWrite                # its tags now
    previous: WrittenKeywords | None       # what was written to this target last time


def keywords_to_write(db: Database, path: StrPath, style: TagPaths) -> KeywordsToWrite:
    """See :meth:`autotags.TagStore.keywords_to_write`."""
    with db.snapshot():
        image = db.image_id(path)
        if image is None:
            return KeywordsToWrite((), frozenset())
        paths = image_tag_paths(db, image)
        written: list[str] = []
        for tag_id, source, category in db.execute(
                "SELECT tag_id, source, category FROM image_tags WHERE image_id = ?", (image,)):
            tag = paths[tag_id]
            if tag.startswith(AUTO_ROOT + "/"):
                if source == IMPORTED_SOURCE:
                    continue
                tag = tag_path(tag[len(AUTO_ROOT) + 1:], category, style)
            written.append(tag)
        rejected = frozenset(paths[r[0]].rsplit("/", 1)[-1] for r in db.execute(
            "SELECT tag_id FROM rejections WHERE image_id = ?", (image,)))
        scanned = db.scalar("SELECT count(*) FROM scans WHERE image_id = ? AND error IS NULL",
                            (image,)) > 0
    return KeywordsToWrite(tuple(sorted(set(written), key=str.lower)), rejected, scanned)


def keywords_changed(db: Database, image: int) -> None:
    """The image's copies elsewhere no longer show its tags: the next output run writes
    them (see :meth:`KeywordLedger.out_of_date`)."""
    db.execute("UPDATE written_keywords SET up_to_date = 0 WHERE image_id = ?", (image,))


class KeywordLedger:
    """The record of one output target: ``"sidecar"``, ``"embed"`` or a digiKam database."""

    def __init__(self, db: Database, target: str) -> None:
        self._db, self.target = db, target

    def out_of_date(self, among: Iterable[StrPath]) -> list[str]:
        """Images among `among` whose tags changed since autotags last wrote them to this
        target (or were never written), in the order given."""
        with self._db.snapshot():
            stale = {r[0] for r in self._db.execute("""
                SELECT path FROM images WHERE missing = 0 AND (
                    id IN (SELECT image_id FROM written_keywords
                           WHERE target = ? AND up_to_date = 0)
                    OR (id NOT IN (SELECT image_id FROM written_keywords WHERE target = ?)
                        AND (id IN (SELECT image_id FROM image_tags)
                             OR id IN (SELECT image_id FROM rejections)
                             OR id IN (SELECT image_id FROM scans WHERE error IS NULL))))""",
                                                     (self.target, self.target))}
        return [os.fspath(p) for p in among if encode(p) in stale]

    def read(self, path: StrPath, style: TagPaths) -> KeywordEntry:
        """The image's tags in `style`, and what this target was given last time."""
        with self._db.snapshot():
            wanted = keywords_to_write(self._db, path, style)
            row = self._db.execute("""
                SELECT paths, owned_by_others FROM written_keywords
                JOIN images ON images.id = written_keywords.image_id
                WHERE images.path = ? AND target = ?""", (encode(path), self.target)).fetchone()
        previous = WrittenKeywords(tuple(json.loads(row[0])), tuple(json.loads(row[1]))) \
            if row else None
        return KeywordEntry(wanted, previous)

    def record(self, path: StrPath, written: WrittenKeywords, *,
               replaced_imported: bool = False,
               rewritten: tuple[FileState, FileState] | None = None) -> None:
        """The target now shows the image's tags, in one transaction.

        ``replaced_imported``: another tool's machine tags, read from the file, were
        replaced there by the models' own (Replace), so the store drops them too.
        ``rewritten`` (before, after): autotags itself rewrote the image file (embedded
        keywords), so scans that saw it as it was count for it as it is, and
        ``--mode new`` does not tag it again."""
        with self._db.transaction():
            image = self._db.image_id(path)
            if image is None:
                return  # never scanned nor tagged: nothing to remember it by
            if replaced_imported:
                self._db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?",
                                 (image, IMPORTED_SOURCE))
            self._db.execute("""
                INSERT OR REPLACE INTO written_keywords(image_id, target, paths, owned_by_others)
                VALUES (?, ?, ?, ?)""", (image, self.target, json.dumps(list(written.paths)),
                                         json.dumps(sorted(written.owned_by_others))))
            if rewritten is not None:
                self._follow_rewrite(image, *rewritten)

    def _follow_rewrite(self, image: int, before: FileState, after: FileState) -> None:
        new = (after.size, after.mtime_ns, after.fingerprint)
        for table, key in (("images", "id"), ("scans", "image_id")):
            self._db.execute(f"""UPDATE {table} SET size = ?, mtime_ns = ?, fingerprint = ?
                                 WHERE {key} = ? AND size = ? AND mtime_ns = ?""",
                             (*new, image, before.size, before.mtime_ns))
