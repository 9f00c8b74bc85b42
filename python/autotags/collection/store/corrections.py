"""What people say about an image's tags: manual tags, confirmations and rejections of
machine tags, and the keywords they already had in their files."""

from __future__ import annotations

from collections.abc import Sequence

from ...vocabulary.hierarchy import vocabulary
from ..files import StrPath
from .database import ID_LIST, Database, StoreError, id_list
from .keyword_ledger import keywords_changed
from .records import AUTO_ROOT, IMPORTED_SOURCE, MANUAL_SOURCE
from .tag_tree import image_tag_paths, split_tag_path, tag_id


def split_added_tag(tag: str) -> list[str]:
    """The parts of a tag a person adds: any tag but ``auto`` alone, the root of the
    machine tags, which no model gives and so cannot be confirmed."""
    parts = split_tag_path(tag)
    if len(parts) == 1 and _is_machine_tag(parts):
        raise StoreError(f"{tag!r} is the root of the machine tags: name one below it "
                         f"({AUTO_ROOT}/dog) or a tag of your own")
    return parts


def add_manual_tag(db: Database, path: StrPath, tag: str) -> None:
    """See :meth:`autotags.TagStore.add_manual_tag`."""
    parts = split_added_tag(tag)
    with db.transaction():
        image = db.ensure_image(path)
        tag_key = tag_id(db, parts, create=True)
        if _is_machine_tag(parts):
            _confirm(db, image, tag_key)
            return
        keywords_changed(db, image)
        db.execute("""INSERT OR IGNORE INTO image_tags(image_id, tag_id, source)
                      VALUES (?, ?, ?)""", (image, tag_key, MANUAL_SOURCE))


def remove_manual_tag(db: Database, path: StrPath, tag: str) -> bool:
    """See :meth:`autotags.TagStore.remove_manual_tag`."""
    parts = split_tag_path(tag)
    with db.transaction():
        image = db.image_id(path)
        tag_key = tag_id(db, parts, create=False)
        if image is None or tag_key is None:
            return False
        if _is_machine_tag(parts) and len(parts) > 1:  # `auto` alone is no machine tag
            _reject(db, image, tag_key)
            return True  # rejected from now on, whether or not a model had added it yet
        keywords_changed(db, image)
        return db.execute(
            "DELETE FROM image_tags WHERE image_id = ? AND tag_id = ? AND source = ?",
            (image, tag_key, MANUAL_SOURCE)).rowcount > 0


def correct_machine_tag(db: Database, images: Sequence[int], tag: str, *,
                        confirm: bool) -> int:
    """See :meth:`autotags.TagStore.correct_machine_tag`."""
    parts = split_tag_path(tag)
    if not _is_machine_tag(parts) or len(parts) < 2:
        raise StoreError(f"{tag!r} is not a machine tag: only tags below {AUTO_ROOT}/ can be "
                         "confirmed or rejected")
    with db.transaction():
        tag_key = tag_id(db, parts, create=confirm)
        known = [r[0] for r in db.execute(
            f"SELECT id FROM images WHERE id IN ({ID_LIST}) ORDER BY id", (id_list(images),))]
        if tag_key is None:
            return 0  # no image has it, so there is nothing to reject
        for image in known:
            (_confirm if confirm else _reject)(db, image, tag_key)
    return len(known)


def _is_machine_tag(parts: Sequence[str]) -> bool:
    return parts[0].lower() == AUTO_ROOT


def _confirm(db: Database, image: int, tag_key: int | None) -> None:
    """A person says the machine tag is right: it survives every scan, and a rejection
    of it is lifted. It keeps the category a model stored it with."""
    keywords_changed(db, image)
    db.execute("DELETE FROM rejections WHERE image_id = ? AND tag_id = ?", (image, tag_key))
    row = db.execute("""SELECT category FROM image_tags WHERE image_id = ? AND tag_id = ?
                        AND category IS NOT NULL""", (image, tag_key)).fetchone()
    db.execute("""INSERT OR IGNORE INTO image_tags(image_id, tag_id, source, category)
                  VALUES (?, ?, ?, ?)""", (image, tag_key, MANUAL_SOURCE, row[0] if row else None))


def _reject(db: Database, image: int, tag_key: int | None) -> None:
    """A person says the machine tag is wrong: every instance goes, and no scan of this
    image adds it back."""
    keywords_changed(db, image)
    db.execute("DELETE FROM image_tags WHERE image_id = ? AND tag_id = ?", (image, tag_key))
    db.execute("DELETE FROM tag_boxes WHERE image_id = ? AND tag_id = ?", (image, tag_key))
    db.execute("INSERT OR IGNORE INTO rejections(image_id, tag_id) VALUES (?, ?)",
               (image, tag_key))


def rejected_tags(db: Database, path: StrPath) -> list[str]:
    with db.snapshot():
        image = db.image_id(path)
        paths = image_tag_paths(db, image)
        rows = db.execute("SELECT tag_id FROM rejections WHERE image_id = ?", (image,))
        return sorted(paths[r[0]] for r in rows)


def import_keywords(db: Database, path: StrPath, tags: Sequence[str]) -> int:
    """See :meth:`autotags.TagStore.import_keywords`."""
    known = vocabulary()
    added = 0
    with db.transaction():
        image = db.ensure_image(path)
        rejected = {r[0] for r in db.execute(
            "SELECT tag_id FROM rejections WHERE image_id = ?", (image,))}
        before = {r[0] for r in db.execute(
            "SELECT tag_id FROM image_tags WHERE image_id = ?", (image,))}
        db.execute("DELETE FROM image_tags WHERE image_id = ? AND source = ?",
                   (image, IMPORTED_SOURCE))
        keywords_changed(db, image)
        for tag in dict.fromkeys(tags):
            parts = split_tag_path(tag)
            source, category = MANUAL_SOURCE, None
            if parts[0].lower() == AUTO_ROOT and len(parts) > 1:
                parts = [AUTO_ROOT, parts[-1]]
                source = IMPORTED_SOURCE
                entry = known.entry(known.vocabulary_of((parts[1],)), parts[1])
                category = entry.category if entry else None
            tag_key = tag_id(db, parts, create=True)
            held = db.scalar("SELECT count(*) FROM image_tags WHERE image_id = ? AND tag_id = ?",
                             (image, tag_key))
            if held or tag_key in rejected:
                continue
            db.execute("""INSERT INTO image_tags(image_id, tag_id, source, category)
                          VALUES (?, ?, ?, ?)""", (image, tag_key, source, category))
            added += tag_key not in before
    return added
