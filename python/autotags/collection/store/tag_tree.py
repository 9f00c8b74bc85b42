"""The tree of tag names (``auto/cat``, ``people/alice``): finding, making and naming
tags. Names compare without regard to case, as the schema's NOCASE collation does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...vocabulary.hierarchy import tag_path
from .database import ID_LIST, Database, StoreError, id_list
from .records import AUTO_ROOT, TagNode


def split_tag_path(tag: str) -> list[str]:
    parts = [part.strip() for part in tag.strip().strip("/").split("/")]
    if not parts or any(not part for part in parts):
        raise StoreError(f"invalid tag {tag!r}: use names separated by '/', e.g. people/alice")
    return parts


def tag_id(db: Database, parts: Sequence[str], *, create: bool) -> int | None:
    parent: int | None = None
    for name in parts:
        row = db.execute(
            "SELECT id FROM tags WHERE ifnull(parent_id, 0) = ifnull(?, 0) AND name = ?",
            (parent, name)).fetchone()
        if row is None:
            if not create:
                return None
            row = (db.execute("INSERT INTO tags(parent_id, name) VALUES (?, ?)",
                              (parent, name)).lastrowid,)
        parent = row[0]
    return parent


def matching_tag_ids(db: Database, tag: str) -> list[int]:
    """Tags whose name or full path is `tag` (any case), with everything below them."""
    parts = split_tag_path(tag)
    seeds: set[int] = set()
    if len(parts) == 1:
        seeds.update(r[0] for r in db.execute("SELECT id FROM tags WHERE name = ?", (parts[0],)))
    full = tag_id(db, parts, create=False)
    if full is not None:
        seeds.add(full)
    if not seeds:
        return []
    placeholders = ",".join("?" * len(seeds))
    rows = db.execute(f"""
        WITH RECURSIVE below(id) AS (
            SELECT id FROM tags WHERE id IN ({placeholders})
            UNION SELECT tags.id FROM tags JOIN below ON tags.parent_id = below.id)
        SELECT id FROM below""", tuple(seeds))
    return [r[0] for r in rows]


def all_tag_paths(db: Database) -> dict[int, str]:
    rows = db.execute("""
        WITH RECURSIVE tree(id, path) AS (
            SELECT id, name FROM tags WHERE parent_id IS NULL
            UNION ALL
            SELECT tags.id, tree.path || '/' || tags.name
            FROM tags JOIN tree ON tags.parent_id = tree.id)
        SELECT id, path FROM tree""")
    return dict(rows.fetchall())


def image_tag_paths(db: Database, image: int | None) -> dict[int, str]:
    """Full paths of the tags one image carries or rejected, walked up from those
    tags alone: the per-image queries must not cost the size of the whole tree."""
    return _paths_up_from(db, """SELECT tag_id FROM image_tags WHERE image_id = ?
                                 UNION SELECT tag_id FROM rejections WHERE image_id = ?""",
                          (image, image))


def tag_paths(db: Database, tag_ids: Iterable[int]) -> dict[int, str]:
    """Full paths of the given tags, walked up from them alone."""
    return _paths_up_from(db, ID_LIST, (id_list(tag_ids),))


def _paths_up_from(db: Database, seeds: str, parameters: tuple[object, ...]) -> dict[int, str]:
    rows = db.execute(f"""
        WITH RECURSIVE up(tag, parent, path) AS (
            SELECT tags.id, tags.parent_id, tags.name FROM tags WHERE tags.id IN ({seeds})
            UNION ALL
            SELECT up.tag, tags.parent_id, tags.name || '/' || up.path
            FROM up JOIN tags ON tags.id = up.parent)
        SELECT tag, path FROM up WHERE parent IS NULL""", parameters)
    return dict(rows.fetchall())


def tag_tree(db: Database) -> list[TagNode]:
    """Every tag that a present image carries (itself or a tag below it), in
    depth-first order, with how many images that is. Machine tags appear below
    their categories (auto/animal/dog/malamute)."""
    with db.snapshot():
        paths = all_tag_paths(db)
        totals: dict[str, set[int]] = {}
        # One row per tag and category, not per image: the collection's size is spent in
        # SQLite and in set unions, the names are made once per tag.
        for tag, category, images in db.execute("""
                SELECT image_tags.tag_id, image_tags.category, group_concat(image_tags.image_id)
                FROM image_tags JOIN images ON images.id = image_tags.image_id
                WHERE images.missing = 0 GROUP BY image_tags.tag_id, image_tags.category"""):
            path = paths[tag]
            if category and path.startswith(AUTO_ROOT + "/"):
                path = tag_path(path[len(AUTO_ROOT) + 1:], category, "hierarchical")
            carrying = set(map(int, images.split(",")))
            parts = path.split("/")
            for depth in range(1, len(parts) + 1):
                totals.setdefault("/".join(parts[:depth]), set()).update(carrying)
    return [TagNode(path, path.count("/"), len(totals[path]))
            for path in sorted(totals, key=lambda p: p.lower().split("/"))]
