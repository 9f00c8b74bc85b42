"""One vocabulary for every model: the category above each label, and the other words
people use for it, read from ``models/vocabulary.tsv`` (made by
``models/make_vocabulary.py`` from WordNet 3.0 and COCO's super-categories).

A label belongs to a vocabulary (``coco`` or ``imagenet``): the same word can mean two
things, ImageNet's ``kite`` being a bird of prey and COCO's the toy. A model's vocabulary
is the one that holds its labels.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..locations import packaged_data_dir

TagPaths = Literal["flat", "hierarchical"]


@dataclass(frozen=True)
class Entry:
    vocabulary: str
    label: str
    category: str                  # e.g. "animal/dog"
    other_names: tuple[str, ...]   # synonyms and other spellings, lower case


def words(text: str) -> tuple[str, ...]:
    """Lower-case words, for matching whole words: 'Sports-Ball' -> ('sports', 'ball')."""
    return tuple(re.findall(r"[a-z0-9']+", text.lower()))


def contains_words(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    span = len(needle)
    return span > 0 and any(haystack[i:i + span] == needle
                            for i in range(len(haystack) - span + 1))


class Vocabulary:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self._by_key = {(e.vocabulary, e.label): e for e in entries}
        self.categories = sorted({e.category for e in entries} | {
            "/".join(e.category.split("/")[:depth]) for e in entries
            for depth in range(1, e.category.count("/") + 1)})

    @classmethod
    def read(cls, path: Path) -> Vocabulary:
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            vocabulary, label, category, others = line.split("\t")
            entries.append(Entry(vocabulary, label, category,
                                 tuple(o for o in others.split("|") if o)))
        return cls(entries)

    def vocabulary_of(self, labels: tuple[str, ...]) -> str | None:
        """The vocabulary holding all of a model's labels, if one does."""
        for name in sorted({e.vocabulary for e in self.entries}):
            if labels and all((name, label) in self._by_key for label in labels):
                return name
        return None

    def entry(self, vocabulary: str | None, label: str) -> Entry | None:
        return self._by_key.get((vocabulary, label)) if vocabulary else None

    def category_nodes(self, term: str) -> list[str]:
        """Categories a search term names: 'dog' -> ['animal/dog'], 'animal' ->
        ['animal'], 'animal/dog' -> ['animal/dog']."""
        wanted = words(term)
        return [c for c in self.categories
                if c == term.lower().strip("/") or words(c.rsplit("/", 1)[-1]) == wanted]

    def labels_called(self, term: str) -> set[str]:
        """Labels whose name or other names contain the term as whole words."""
        wanted = words(term)
        return {e.label for e in self.entries
                if contains_words(words(e.label), wanted)
                or any(contains_words(words(other), wanted) for other in e.other_names)}


@functools.cache
def vocabulary() -> Vocabulary:
    return Vocabulary.read(packaged_data_dir() / "vocabulary.tsv")


def tag_path(label: str, category: str | None, style: TagPaths) -> str:
    """The path a machine tag gets in other programs: ``flat`` is digiKam's own
    ``auto/malamute``; ``hierarchical`` is ``auto/animal/dog/malamute`` (a label that
    names its category, COCO's ``dog``, is not repeated: ``auto/animal/dog``)."""
    if style == "flat" or not category:
        return f"auto/{label}"
    if category.rsplit("/", 1)[-1].lower() == label.lower():
        return f"auto/{category}"
    return f"auto/{category}/{label}"
