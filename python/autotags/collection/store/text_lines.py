"""The lines of text that text models read, and their full-text index.

Lines live in ``text_lines``; the FTS5 table ``text_index`` indexes their text (by the
line's id), with case and accents folded, so ``cafe`` finds "Café". The index is kept
in step here, in the same transaction as the lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .database import Database, StoreError
from .records import AUTO_ROOT, NewTextLine, StoredTextLine
from .tag_tree import tag_id

TEXT_TAG = "text"  # images with lines also carry auto/text


def text_tag_id(db: Database) -> int | None:
    """The id of ``auto/text``, if any image has had it."""
    return tag_id(db, [AUTO_ROOT, TEXT_TAG], create=False)


def store_lines(db: Database, image: int, model: str, lines: Sequence[NewTextLine], *,
                replace: bool) -> None:
    """`model`'s reading of the image. ``replace`` drops its earlier lines; otherwise
    (Update) those are kept and only lines not read before are added."""
    earlier = db.execute("SELECT id, text FROM text_lines WHERE image_id = ? AND source = ?",
                         (image, model)).fetchall()
    if replace:
        db.executemany("INSERT INTO text_index(text_index, rowid, text) VALUES ('delete', ?, ?)",
                       earlier)
        db.execute("DELETE FROM text_lines WHERE image_id = ? AND source = ?", (image, model))
        earlier = []
    known = {text for _, text in earlier}
    first = len(earlier)
    for number, line in enumerate((line for line in lines if line.text not in known), first):
        cursor = db.execute("""
            INSERT INTO text_lines(image_id, source, line, text, confidence, box)
            VALUES (?, ?, ?, ?, ?, ?)""",
                            (image, model, number, line.text, line.confidence,
                             json.dumps([list(corner) for corner in line.box])))
        db.execute("INSERT INTO text_index(rowid, text) VALUES (?, ?)",
                   (cursor.lastrowid, line.text))


def lines_of(db: Database, image: int) -> list[StoredTextLine]:
    rows = db.execute("""SELECT source, text, confidence, box FROM text_lines
                         WHERE image_id = ? ORDER BY source, line""", (image,))
    return [StoredTextLine(source, text, confidence,
                           tuple(tuple(corner) for corner in json.loads(box)))
            for source, text, confidence, box in rows]


def full_text_query(words: Sequence[str], *, match_any: bool) -> str:
    """FTS5's query for `words`: each one quoted (so that nothing in it is taken as FTS5
    syntax), ``word*`` a prefix; all of them, or any."""
    terms = []
    for word in words:
        prefix = word.endswith("*")
        core = word.rstrip("*").strip()
        if not core:
            raise StoreError(f"search --text: {word!r} has no letters to look for")
        terms.append('"' + core.replace('"', '""') + '"' + ("*" if prefix else ""))
    if not terms:
        raise StoreError("search --text needs at least one word")
    return (" OR " if match_any else " AND ").join(terms)


def images_with_text(db: Database, words: Sequence[str], *, match_any: bool,
                     include_missing: bool) -> set[int]:
    """Images whose lines hold all of `words` (``match_any``: any), the words in any
    line of the image. An image whose auto/text tag a person rejected is left out."""
    # Each word may sit in another line: all words are matched one by one, then per image.
    parts = [full_text_query(words, match_any=True)] if match_any else [
        full_text_query([word], match_any=False) for word in words]
    if not parts:
        raise StoreError("search --text needs at least one word")
    rejected_text = text_tag_id(db)
    found: set[int] | None = None
    for part in parts:
        rows = db.execute("""
            SELECT DISTINCT text_lines.image_id FROM text_index
            JOIN text_lines ON text_lines.id = text_index.rowid
            JOIN images ON images.id = text_lines.image_id
            WHERE text_index MATCH ? AND (? OR images.missing = 0)
              AND NOT EXISTS (SELECT 1 FROM rejections WHERE rejections.image_id = images.id
                              AND rejections.tag_id = ?)""",
                          (part, include_missing, rejected_text or -1))
        images = {row[0] for row in rows}
        found = images if found is None else found & images
    return found or set()
