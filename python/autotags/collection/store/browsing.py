"""What a person looking through the collection asks of the store: an image by its id,
a page of results with their tags, the recent scans, and how many images the outputs
have not caught up with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .database import ID_LIST, Database, decode, id_list
from .records import ScanSummary
from .search import matching_tags_and_text
from .tag_tree import tag_paths


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    width: int | None
    height: int | None
    missing: bool


@dataclass(frozen=True)
class ImageMatch:
    image: ImageRecord
    matched: tuple[str, ...]   # the tags that made it match, as full paths
    # How sure the surest of those tags is: the best score a model gave it, or None when
    # a person put it there or confirmed it.
    score: float | None = None


def find_images(db: Database, terms: str | Sequence[str], *, text: Sequence[str],
                match_any: bool, min_score: float | None, max_score: float | None,
                include_missing: bool) -> list[ImageMatch]:
    with db.snapshot():
        found = matching_tags_and_text(db, terms, text=text, match_any=match_any,
                                       min_score=min_score, max_score=max_score,
                                       include_missing=include_missing)
        records = images_by_id(db, list(found))
        # The matched tags are few, the images many: each tag's path is made once.
        paths = tag_paths(db, set().union(*found.values()))
        matches = [ImageMatch(records[image], tuple(sorted(paths[t] for t in tags)),
                              _surest(tags.values()))
                   for image, tags in found.items()]
    return sorted(matches, key=lambda match: match.image.path)


def _surest(certainties: Iterable[float | None]) -> float | None:
    """The surest of a match's tags: None (a person's word) beats every score."""
    scores = list(certainties)
    return None if None in scores else max((s for s in scores if s is not None), default=None)


def images_by_id(db: Database, ids: Sequence[int]) -> dict[int, ImageRecord]:
    rows = db.execute(f"""SELECT id, path, width, height, missing FROM images
                           WHERE id IN ({ID_LIST})""", (id_list(ids),))
    return {image: ImageRecord(image, decode(path), width or None, height or None,
                               bool(missing))
            for image, path, width, height, missing in rows}


def recent_scans(db: Database, limit: int) -> list[ScanSummary]:
    """The last days' scans, a line per model and day, newest first."""
    rows = db.execute("""
        SELECT model, date(scanned_at, 'unixepoch', 'localtime') AS day, count(*),
               sum(error IS NOT NULL), max(scanned_at)
        FROM scans GROUP BY model, day ORDER BY max(scanned_at) DESC LIMIT ?""", (limit,))
    return [ScanSummary(model, day, images, failed, last)
            for model, day, images, failed, last in rows]


def outputs_out_of_date(db: Database) -> dict[str, int]:
    """Per output target written before: images whose tags changed since."""
    return dict(db.execute("""SELECT target, count(*) FROM written_keywords
                              WHERE up_to_date = 0 GROUP BY target ORDER BY target"""))

