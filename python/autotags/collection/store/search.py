"""Finding images by tag, the way people ask: names, other names and categories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...vocabulary.hierarchy import contains_words, vocabulary, words
from .database import ID_LIST, Database, StoreError, decode, id_list
from .records import MANUAL_SOURCE
from .tag_tree import all_tag_paths, matching_tag_ids
from .text_lines import images_with_text, text_tag_id

_TagKey = tuple[int, str | None]  # a tag and the category it was stored with
# Image id -> its tags that made it match -> how sure that tag is: the highest confidence
# any model gave it, or None when a person put it there or confirmed it (certain).
Matches = dict[int, dict[int, float | None]]


def search(db: Database, terms: str | Sequence[str], *, text: Sequence[str] = (),
           match_any: bool = False, min_score: float | None = None,
           max_score: float | None = None, include_missing: bool = False) -> list[str]:
    """See :meth:`autotags.TagStore.search`."""
    with db.snapshot():
        found = matching_tags_and_text(db, terms, text=text, match_any=match_any,
                                       min_score=min_score, max_score=max_score,
                                       include_missing=include_missing)
        paths = db.execute(f"SELECT path FROM images WHERE id IN ({ID_LIST})",
                           (id_list(found),))
        return sorted(decode(r[0]) for r in paths)


def matching_tags_and_text(db: Database, terms: str | Sequence[str], *,
                           text: Sequence[str] = (), match_any: bool = False,
                           min_score: float | None = None, max_score: float | None = None,
                           include_missing: bool = False) -> Matches:
    """The images and the tags that made them match: the terms' tags, and auto/text when
    words of its text did. With both, an image must match the terms and the words."""
    found: Matches | None = None
    if terms or not text:
        found = matching_images(db, terms, match_any=match_any, min_score=min_score,
                                max_score=max_score, include_missing=include_missing)
    if not text:
        return found or {}
    with_text = images_with_text(db, text, match_any=match_any, include_missing=include_missing)
    text_tag = text_tag_id(db)
    marks = {} if text_tag is None else _certainties(db.execute(
        f"""SELECT image_id, tag_id, source, confidence FROM image_tags
            WHERE tag_id = ? AND image_id IN ({ID_LIST})""", (text_tag, id_list(with_text))))
    return {image: {**({} if found is None else found[image]), **marks.get(image, {})}
            for image in with_text if found is None or image in found}


def matching_images(db: Database, terms: str | Sequence[str], *, match_any: bool = False,
                    min_score: float | None = None, max_score: float | None = None,
                    include_missing: bool = False) -> Matches:
    """The images carrying tags that `terms` name, and those tags."""
    wanted = [terms] if isinstance(terms, str) else list(terms)
    if not wanted:
        raise StoreError("search needs at least one term")
    found: Matches | None = None
    with db.snapshot():
        rows = db.execute("SELECT DISTINCT tag_id, category FROM image_tags").fetchall()
        leaves = {t: p.rsplit("/", 1)[-1] for t, p in all_tag_paths(db).items()}
        for term in wanted:
            images = _images_with(db, _keys_matching(db, term, rows, leaves),
                                  _ScoreRange(min_score, max_score), include_missing)
            found = images if found is None else _combined(found, images, match_any)
    return found or {}


def _combined(first: Matches, second: Matches, match_any: bool) -> Matches:
    images = first.keys() | second.keys() if match_any else first.keys() & second.keys()
    return {image: {**first.get(image, {}), **second.get(image, {})} for image in images}


class _ScoreRange:
    """Which tags count: machine tags whose best score is in range; certain ones (manual
    or confirmed, no score) count unless an upper bound asks for the doubtful ones."""

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low, self.high = low, high

    def holds(self, confidence: float | None) -> bool:
        if confidence is None:
            return self.high is None
        return (self.low is None or confidence >= self.low) and (
            self.high is None or confidence <= self.high)


def _keys_matching(db: Database, term: str, rows: list[_TagKey],
                   leaves: dict[int, str]) -> set[_TagKey]:
    known = vocabulary()
    by_name = set(matching_tag_ids(db, term))
    nodes = known.category_nodes(term)
    if nodes:
        return {(t, c) for t, c in rows
                if (c is not None and any(c == n or c.startswith(n + "/") for n in nodes))
                or (c is None and t in by_name)}
    called = known.labels_called(term)
    term_words = words(term)
    return {(t, c) for t, c in rows if t in by_name or leaves[t] in called
            or contains_words(words(leaves[t]), term_words)}


def _images_with(db: Database, keys: set[_TagKey], scores: _ScoreRange,
                 include_missing: bool) -> Matches:
    if not keys:
        return {}
    tag_ids = sorted({t for t, _ in keys})
    placeholders = ",".join("?" * len(tag_ids))
    rows = db.execute(f"""
        SELECT image_tags.image_id, image_tags.tag_id, image_tags.category,
               image_tags.source, image_tags.confidence
        FROM image_tags JOIN images ON images.id = image_tags.image_id
        WHERE image_tags.tag_id IN ({placeholders}) AND (? OR images.missing = 0)""",
                      (*tag_ids, include_missing))
    certainties = _certainties((image, tag, source, confidence)
                               for image, tag, category, source, confidence in rows
                               if (tag, category) in keys)
    found: Matches = {}
    for image, tags in certainties.items():
        kept = {tag: sure for tag, sure in tags.items() if scores.holds(sure)}
        if kept:
            found[image] = kept
    return found


def _certainties(rows: Iterable[tuple[int, int, str, float | None]]) -> Matches:
    """How sure each (image, tag) of `rows` (image, tag, source, confidence) is: a
    person's word (a manual tag, a confirmation) beats every model, and the surest model
    speaks for the others, so that a tag confirmed on a photo is no longer doubtful."""
    found: Matches = {}
    for image, tag, source, confidence in rows:
        tags = found.setdefault(image, {})
        if source == MANUAL_SOURCE or confidence is None:
            tags[tag] = None
        elif tag not in tags:
            tags[tag] = confidence
        elif (held := tags[tag]) is not None:
            tags[tag] = max(held, confidence)
    return found
