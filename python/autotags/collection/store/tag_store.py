"""TagStore: the face of the tag database that everything else uses.

Paths are stored as the bytes the file system uses, so names that are not valid UTF-8
survive. Machine-made tags live below the root tag ``auto`` (``auto/cat``); manual tags
anywhere else. Every change happens inside a transaction (see :mod:`.database`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from ...vocabulary.hierarchy import TagPaths
from ..files import FileState, StrPath, canonical_path
from . import browsing, corrections, scan_book
from .browsing import ImageMatch, ImageRecord
from .database import Database, decode, encode
from .keyword_ledger import KeywordLedger, keywords_to_write
from .records import (
    MANUAL_SOURCE,
    Box,
    Failure,
    KeywordsToWrite,
    NewTag,
    NewTextLine,
    ScanRecord,
    ScanSummary,
    StoredTag,
    StoredTextLine,
    TagNode,
)
from .search import search as search_images
from .tag_tree import image_tag_paths
from .tag_tree import tag_tree as tag_tree_of
from .text_lines import lines_of


class TagStore:
    """One SQLite file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: StrPath, *, create: bool = True, read_only: bool = False) -> None:
        """Opens (``create``: or makes) the tag database at `path`. ``read_only`` opens it
        for queries only: nothing in the file changes, and a file that is not an autotags
        database is refused untouched. The folder must exist: nothing is created but
        the file itself."""
        self.path = Path(path).expanduser()
        self._db = Database(self.path, create=create, read_only=read_only)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TagStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """All or nothing; writers queue for the lock instead of failing half-way."""
        return self._db.transaction()

    # ---- scans ----------------------------------------------------------------------

    def image_id(self, path: StrPath) -> int | None:
        return self._db.image_id(path)

    def scan_records(self, model: str) -> dict[bytes, ScanRecord]:
        """Last scan by `model` of every known image, keyed by encoded path."""
        return scan_book.scan_records(self._db, model)

    def record_scan(self, path: StrPath, model: str, state: FileState, settings: dict[str, object],
                    *, width: int = 0, height: int = 0, tags: Iterable[NewTag] = (),
                    error: str | None = None, replace: bool = True,
                    lines: Sequence[NewTextLine] = ()) -> None:
        """Store one model's verdict on one image. Call inside :meth:`transaction`.

        ``replace`` drops the tags (and lines of text) this model made before
        (digiKam's Replace); otherwise they are kept and new ones added (Update). Other
        models' and manual tags are never touched. A failed scan changes nothing.
        """
        scan_book.record_scan(self._db, path, model, state, settings, width=width,
                              height=height, tags=tags, error=error, replace=replace,
                              lines=lines)

    def mark_missing(self, under: Sequence[StrPath], present: set[bytes]) -> int:
        """Flag known images below the folders `under` that are not in `present`.
        Their tags and history stay. Call inside :meth:`transaction`."""
        return scan_book.mark_missing(self._db, under, present)

    def mark_missing_files(self, paths: Sequence[StrPath]) -> int:
        """Flag the given known images as gone. Call inside :meth:`transaction`."""
        return sum(self._db.execute("UPDATE images SET missing = 1 WHERE path = ? AND missing = 0",
                                    (encode(path),)).rowcount for path in paths)

    def mark_present(self, present: set[bytes]) -> int:
        """Clear the missing flag of known images found again (a drive back, a folder
        readable again). Call inside :meth:`transaction`."""
        return scan_book.mark_present(self._db, present)

    def missing_by_size(self) -> dict[int, list[tuple[int, str | None]]]:
        """Missing images as size -> [(image id, fingerprint)], to recognise them moved."""
        return scan_book.missing_by_size(self._db)

    def move_image(self, image: int, path: StrPath) -> None:
        """The file of a known image now lives at `path`: its tags and history follow it.
        Call inside :meth:`transaction`."""
        self._db.execute("UPDATE images SET path = ?, missing = 0 WHERE id = ?",
                         (encode(path), image))

    def mark_in_flight(self, model: str, paths: Sequence[StrPath]) -> None:
        """Files about to be decoded for `model`; each mark goes when its result is
        stored, so marks found later name the files a dead process was working on."""
        with self._db.transaction():
            self._db.executemany("INSERT OR IGNORE INTO in_flight(path, model) VALUES (?, ?)",
                                 [(encode(p), model) for p in paths])

    def in_flight(self) -> dict[str, list[str]]:
        """Marks left by a process that died: model -> paths."""
        return scan_book.in_flight(self._db)

    def clear_in_flight(self, models: Sequence[str]) -> None:
        with self._db.transaction():
            self._db.executemany("DELETE FROM in_flight WHERE model = ?", [(m,) for m in models])

    # ---- corrections ------------------------------------------------------------------

    def add_manual_tag(self, path: StrPath, tag: str) -> None:
        """Tags an image by hand. A tag below ``auto/`` confirms a machine tag instead: it
        then survives every scan, and a rejection of it is lifted."""
        corrections.add_manual_tag(self._db, path, tag)

    def remove_manual_tag(self, path: StrPath, tag: str) -> bool:
        """Removes a tag added by hand. A tag below ``auto/`` is rejected instead: every
        model's instance of it goes, and no later scan of this image adds it back."""
        return corrections.remove_manual_tag(self._db, path, tag)

    def rejected_tags(self, path: StrPath) -> list[str]:
        """Machine tags a person removed from this image."""
        return corrections.rejected_tags(self._db, path)

    def correct_machine_tag(self, images: Sequence[int], tag: str, *, confirm: bool) -> int:
        """Confirms (``confirm``) or rejects the machine tag `tag` (``auto/dog``) on every
        image of `images` (ids) in one transaction, as :meth:`add_manual_tag` and
        :meth:`remove_manual_tag` do for one. Returns how many of the ids were images."""
        if not images:
            return 0
        return corrections.correct_machine_tag(self._db, images, tag, confirm=confirm)

    def import_keywords(self, path: StrPath, tags: Sequence[str]) -> int:
        """Keywords found in an image's file: tags below ``auto/`` become machine tags of
        source ``xmp`` (by their label, the last part), unless a person rejected them or
        a model already gave them; the rest become manual tags. Returns how many tags
        the image did not have yet."""
        return corrections.import_keywords(self._db, path, tags)

    # ---- other programs' copies ---------------------------------------------------------

    def keywords(self, target: str) -> KeywordLedger:
        """The record of what autotags wrote to `target` (``"sidecar"``, ``"embed"``, a
        digiKam database): what an output reads and updates, and nothing else."""
        return KeywordLedger(self._db, target)

    def keywords_to_write(self, path: StrPath, style: TagPaths) -> KeywordsToWrite:
        """The tags of an image for its file's keyword fields: machine tags in `style`
        (see :func:`autotags.vocabulary.hierarchy.tag_path`), manual tags as they are.
        Machine tags read from the file itself (source ``xmp``) are not written back:
        they are already there."""
        return keywords_to_write(self._db, path, style)

    # ---- queries --------------------------------------------------------------------

    def search(self, terms: str | Sequence[str] = (), *, text: Sequence[str] = (),
               match_any: bool = False, min_score: float | None = None,
               max_score: float | None = None, include_missing: bool = False) -> list[str]:
        """Images matching every term (``match_any``: any term), sorted by path.

        ``text`` words are looked for in the lines of text that text models read: all of
        them (``match_any``: any), ignoring case and accents, ``word*`` as a prefix. With
        terms as well, an image must match both the terms and the words.

        A term matches, ignoring case and as whole words, a tag's name or full path
        ('cat', 'auto/cat', 'people/alice', with every tag below it), the other names of
        a machine tag's label ('motorbike' finds motorcycle) and every category above it
        ('dog' finds malamute, 'animal' finds both). A term that names a category
        ('dog') finds what is in it, not other labels with the word ('hot dog').
        A tag's confidence on an image is the best score any model gave it there; a tag
        a person added or confirmed is certain. ``min_score`` drops machine tags below
        that confidence (0..1), ``max_score`` those above it and the certain ones, so
        that what is left is what still needs checking.
        """
        return search_images(self._db, terms, text=text, match_any=match_any,
                             min_score=min_score, max_score=max_score,
                             include_missing=include_missing)

    def find_images(self, terms: str | Sequence[str], *, text: Sequence[str] = (),
                    match_any: bool = False, min_score: float | None = None,
                    max_score: float | None = None,
                    include_missing: bool = False) -> list[ImageMatch]:
        """As :meth:`search`, with each image's id, the tags that made it match
        (``auto/text`` for the words of ``text``) and how sure the surest of them is
        (``score``: None when a person added or confirmed it)."""
        return browsing.find_images(self._db, terms, text=text, match_any=match_any,
                                    min_score=min_score, max_score=max_score,
                                    include_missing=include_missing)

    def image(self, image_id: int) -> ImageRecord | None:
        """An image by its id."""
        return browsing.images_by_id(self._db, [image_id]).get(image_id)

    def recent_scans(self, limit: int = 10) -> list[ScanSummary]:
        return browsing.recent_scans(self._db, limit)

    def outputs_out_of_date(self) -> dict[str, int]:
        """Per output target written before (``sidecar``, ``embed``, a digiKam
        database): how many images changed since."""
        return browsing.outputs_out_of_date(self._db)

    def tags_of(self, path: StrPath) -> list[StoredTag]:
        with self._db.snapshot():
            image = self._db.image_id(path)
            if image is None:
                return []
            paths = image_tag_paths(self._db, image)
            boxes: dict[tuple[int, str], list[Box]] = {}
            for t, s, score, x1, y1, x2, y2 in self._db.execute(
                    """SELECT tag_id, source, score, x1, y1, x2, y2 FROM tag_boxes
                       WHERE image_id = ? ORDER BY score DESC""", (image,)):
                boxes.setdefault((t, s), []).append((x1, y1, x2, y2, score))
            rows = self._db.execute("""SELECT tag_id, source, confidence, instances
                                       FROM image_tags WHERE image_id = ?""", (image,))
            tags = [StoredTag(paths[t], s, c, n, tuple(boxes.get((t, s), ())))
                    for t, s, c, n in rows]
        return sorted(tags, key=lambda t: (t.source == MANUAL_SOURCE, -(t.confidence or 0), t.path))

    def text_of(self, path: StrPath) -> list[StoredTextLine]:
        """The lines of text read in an image, by model and in reading order."""
        with self._db.snapshot():
            image = self._db.image_id(path)
            return [] if image is None else lines_of(self._db, image)

    def image_info(self, path: StrPath) -> dict[str, object] | None:
        with self._db.snapshot():
            row = self._db.execute("""SELECT id, width, height, size, missing FROM images
                                      WHERE path = ?""", (encode(path),)).fetchone()
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
        return tag_tree_of(self._db)

    def failures(self) -> list[Failure]:
        with self._db.snapshot():
            rows = self._db.execute("""
                SELECT images.path, scans.model, scans.error FROM scans
                JOIN images ON images.id = scans.image_id
                WHERE scans.error IS NOT NULL AND images.missing = 0 ORDER BY images.path""")
            return [Failure(decode(p), m, e) for p, m, e in rows]

    def counts(self) -> dict[str, int]:
        with self._db.snapshot():
            images, missing = self._db.execute(
                "SELECT count(*), ifnull(sum(missing), 0) FROM images").fetchone()
            links = self._db.scalar("SELECT count(*) FROM image_tags")
        return {"images": images, "missing": missing, "tag_links": links}
