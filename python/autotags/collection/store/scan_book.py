"""The scans' bookkeeping: each model's verdict on each image, files in flight, and
images gone missing, found again or moved."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from ..files import FileState, StrPath
from .database import Database, decode, encode
from .keyword_ledger import keywords_changed
from .records import AUTO_ROOT, NewTag, NewTextLine, ScanRecord
from .tag_tree import split_tag_path, tag_id
from .text_lines import store_lines


def scan_records(db: Database, model: str) -> dict[bytes, ScanRecord]:
    rows = db.execute("""
        SELECT images.path, scans.size, scans.mtime_ns, scans.fingerprint, scans.error,
               scans.scanned_at, scans.settings
        FROM scans JOIN images ON images.id = scans.image_id WHERE scans.model = ?""", (model,))
    return {path: ScanRecord(FileState(size, mtime, fingerprint), error, scanned_at,
                             json.loads(settings))
            for path, size, mtime, fingerprint, error, scanned_at, settings in rows}


def record_scan(db: Database, path: StrPath, model: str, state: FileState,
                settings: dict[str, object], *, width: int, height: int, tags: Iterable[NewTag],
                error: str | None, replace: bool, lines: Sequence[NewTextLine] = ()) -> None:
    """See :meth:`autotags.TagStore.record_scan`."""
    image = db.ensure_image(path)
    db.execute("""
        UPDATE images SET size = ?, mtime_ns = ?, fingerprint = ?, missing = 0,
               width = CASE WHEN ? > 0 THEN ? ELSE width END,
               height = CASE WHEN ? > 0 THEN ? ELSE height END
        WHERE id = ?""", (state.size, state.mtime_ns, state.fingerprint, width, width, height,
                          height, image))
    db.execute("""
        INSERT OR REPLACE INTO scans(image_id, model, settings, scanned_at, size, mtime_ns,
                                     fingerprint, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
               (image, model, json.dumps(settings, sort_keys=True), time.time(), state.size,
                state.mtime_ns, state.fingerprint, error))
    db.execute("DELETE FROM in_flight WHERE path = ? AND model = ?", (encode(path), model))
    if error is not None:
        return
    keywords_changed(db, image)
    if replace:
        db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?", (image, model))
        db.execute("DELETE FROM tag_boxes WHERE image_id = ? AND source = ?", (image, model))
    rejected = {r[0] for r in db.execute(
        "SELECT tag_id FROM rejections WHERE image_id = ?", (image,))}
    for tag in tags:
        tag_key = tag_id(db, [AUTO_ROOT, *split_tag_path(tag.label)], create=True)
        if tag_key in rejected:
            continue  # a person said it is not there
        _store_tag(db, image, tag_key, model, tag)
    if lines or replace:
        store_lines(db, image, model, lines, replace=replace)


def _store_tag(db: Database, image: int, tag_key: int | None, model: str, tag: NewTag) -> None:
    db.execute("DELETE FROM tag_boxes WHERE image_id = ? AND tag_id = ? AND source = ?",
               (image, tag_key, model))
    db.executemany("""
        INSERT INTO tag_boxes(image_id, tag_id, source, score, x1, y1, x2, y2)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                   [(image, tag_key, model, b[4], *b[:4]) for b in tag.boxes])
    db.execute("""
        INSERT INTO image_tags(image_id, tag_id, source, confidence, instances, category)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(image_id, tag_id, source) DO UPDATE SET
            confidence = max(confidence, excluded.confidence),
            instances = max(instances, excluded.instances),
            category = excluded.category""",
               (image, tag_key, model, tag.confidence, tag.instances, tag.category))


def mark_missing(db: Database, under: Sequence[StrPath], present: set[bytes]) -> int:
    missing = 0
    for folder in under:
        prefix = encode(folder).rstrip(b"/") + b"/"
        rows = db.execute(
            "SELECT id, path FROM images WHERE missing = 0 AND substr(path, 1, ?) = ?",
            (len(prefix), prefix)).fetchall()
        gone = [(image,) for image, path in rows if path not in present]
        db.executemany("UPDATE images SET missing = 1 WHERE id = ?", gone)
        missing += len(gone)
    return missing


def mark_present(db: Database, present: set[bytes]) -> int:
    back = [(image,) for image, path in db.execute(
        "SELECT id, path FROM images WHERE missing = 1").fetchall() if path in present]
    db.executemany("UPDATE images SET missing = 0 WHERE id = ?", back)
    return len(back)


def missing_by_size(db: Database) -> dict[int, list[tuple[int, str | None]]]:
    found: dict[int, list[tuple[int, str | None]]] = {}
    for image, size, fingerprint in db.execute(
            "SELECT id, size, fingerprint FROM images WHERE missing = 1"):
        found.setdefault(size, []).append((image, fingerprint))
    return found


def in_flight(db: Database) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, model in db.execute("SELECT path, model FROM in_flight ORDER BY path"):
        found.setdefault(model, []).append(decode(path))
    return found
