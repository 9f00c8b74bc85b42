"""The keyword fields photo managers read, and how autotags' tags merge into them.

Pure data: reading and writing files is in :mod:`metadata_files`. A file carries the
same keywords several times over (reference: digiKam's and Lightroom's conventions):

- hierarchical fields, full paths: ``Xmp.digiKam.TagsList`` (``auto/dog``),
  ``Xmp.MicrosoftPhoto.LastKeywordXMP`` (``auto/dog``), ``Xmp.lr.hierarchicalSubject``
  (``auto|dog``);
- flat fields, leaf names only: ``Xmp.dc.subject`` and, embedded in JPEG and TIFF,
  ``Iptc.Application2.Keywords`` (``dog``).

Only keywords below ``auto`` are autotags'; every other keyword is someone else's and
stays. A flat name cannot say whose it is, so it is removed only when the auto path it
stood for goes, no remaining path still stands for it, and it was not already in the
file before autotags wrote that path (``owned_by_others``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

AUTO_ROOT = "auto"


@dataclass(frozen=True)
class HierarchicalField:
    key: str
    separator: str
    container: str  # "seq" or "bag"


@dataclass(frozen=True)
class FlatField:
    key: str


TAGS_LIST = HierarchicalField("Xmp.digiKam.TagsList", "/", "seq")
MICROSOFT_KEYWORDS = HierarchicalField("Xmp.MicrosoftPhoto.LastKeywordXMP", "/", "bag")
LIGHTROOM_HIERARCHY = HierarchicalField("Xmp.lr.hierarchicalSubject", "|", "bag")
HIERARCHICAL_FIELDS = (TAGS_LIST, MICROSOFT_KEYWORDS, LIGHTROOM_HIERARCHY)
DUBLIN_CORE_SUBJECT = FlatField("Xmp.dc.subject")
IPTC_KEYWORDS = FlatField("Iptc.Application2.Keywords")
# digiKam's reading order: the first field that is not empty holds the keywords.
READING_ORDER = (TAGS_LIST, MICROSOFT_KEYWORDS, LIGHTROOM_HIERARCHY)


@dataclass(frozen=True)
class FileKeywords:
    """The keyword fields of one file, each value exactly as the file has it (with the
    field's own separator); ``iptc`` is None where the file has no IPTC."""

    hierarchical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subject: tuple[str, ...] = ()
    iptc: tuple[str, ...] | None = None

    def paths_in(self, hierarchy: HierarchicalField) -> tuple[str, ...]:
        """A hierarchical field's values as paths with ``/``."""
        return tuple(v.replace(hierarchy.separator, "/")
                     for v in self.hierarchical.get(hierarchy.key, ()))

    def paths(self) -> tuple[str, ...]:
        """The keywords as paths, read as digiKam does: the first hierarchical field
        that has any, else the flat names."""
        for hierarchy in READING_ORDER:
            if self.hierarchical.get(hierarchy.key):
                return self.paths_in(hierarchy)
        return self.subject or self.iptc or ()

    def all_paths(self) -> set[str]:
        return {p for hierarchy in HIERARCHICAL_FIELDS for p in self.paths_in(hierarchy)}


def leaf(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_auto(path: str) -> bool:
    return path.split("/", 1)[0].casefold() == AUTO_ROOT and "/" in path


@dataclass(frozen=True)
class MergeResult:
    keywords: FileKeywords
    owned_by_others: frozenset[str]  # flat names that were there before autotags' paths


def merge(existing: FileKeywords, wanted: Iterable[str],
          remove: Callable[[str], bool], owned_by_others: Iterable[str] = ()) -> MergeResult:
    """`existing` with the paths `wanted` added, and the auto paths for which `remove`
    is true taken out; keywords that are not autotags' are kept in place and order."""
    wanted = list(dict.fromkeys(wanted))
    removed: set[str] = set()
    hierarchical: dict[str, tuple[str, ...]] = {}
    for hierarchy in HIERARCHICAL_FIELDS:
        kept = []  # other people's values stay exactly as written
        for value, path in zip(existing.hierarchical.get(hierarchy.key, ()),
                               existing.paths_in(hierarchy), strict=True):
            if is_auto(path) and remove(path):
                removed.add(path)
            else:
                kept.append(value)
        present = {v.replace(hierarchy.separator, "/") for v in kept}
        hierarchical[hierarchy.key] = tuple(kept + [
            p.replace("/", hierarchy.separator) for p in wanted if p not in present])
    names_in_use = {leaf(v.replace(h.separator, "/")) for h in HIERARCHICAL_FIELDS
                    for v in hierarchical[h.key]}
    names_wanted = [leaf(p) for p in wanted]
    previous_auto_names = {leaf(p) for p in existing.all_paths() if is_auto(p)}
    flat_before = set(existing.subject) | set(existing.iptc or ())
    others = set(owned_by_others) | {
        name for name in names_wanted if name in flat_before and name not in previous_auto_names}
    droppable = {leaf(p) for p in removed} - names_in_use - others

    def flat(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_appended([v for v in values if v not in droppable], names_wanted))

    merged = FileKeywords(hierarchical, flat(existing.subject),
                          None if existing.iptc is None else flat(existing.iptc))
    return MergeResult(merged, frozenset(others))


def _appended(values: list[str], more: Iterable[str]) -> list[str]:
    present = set(values)
    return values + [v for v in dict.fromkeys(more) if v not in present]
