"""Finished results into the store, a batch per transaction."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from ..tagging.results import ImageTags
from ..vocabulary.hierarchy import vocabulary
from .discovery import FoundFile
from .files import fingerprint
from .planning import ModelPlan
from .reports import ScanReport
from .store import Failure, NewTag, NewTextLine, TagStore

# A batch is committed when it holds this many images or is this old, whichever
# comes first: few enough transactions to be fast, recent enough that little is redone.
COMMIT_EVERY_IMAGES = 16
COMMIT_EVERY_SECONDS = 1.0


def merge_instances(result: ImageTags,
                    category_of: Callable[[str], str | None] = lambda label: None
                    ) -> list[NewTag]:
    """One stored tag per label: the best score, how many times it was found, and where
    the label sits in the vocabulary."""
    best: dict[str, NewTag] = {}
    for tag in result.tags:
        known = best.get(tag.label)
        box = () if tag.box is None else ((tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2,
                                           tag.score),)
        best[tag.label] = NewTag(tag.label, max(tag.score, known.confidence if known else 0.0),
                                 (known.instances if known else 0) + 1, category_of(tag.label),
                                 (known.boxes if known else ()) + box)
    return list(best.values())


def categories_for(labels: tuple[str, ...]) -> Callable[[str], str | None]:
    """Label -> category in the vocabulary that holds a model's labels."""
    known = vocabulary()
    name = known.vocabulary_of(labels)

    def category_of(label: str) -> str | None:
        entry = known.entry(name, label)
        return entry.category if entry else None

    return category_of


class BatchWriter:
    """Collects one model's finished results and commits them in batches."""

    def __init__(self, store: TagStore, plan: ModelPlan, report: ScanReport,
                 stored: set[str]) -> None:
        self._store, self._plan, self._report, self._stored = store, plan, report, stored
        self._replace = plan.recorded["policy"] == "replace"
        self._category_of = categories_for(plan.labels)
        self._counts = report.models[plan.name]
        self._pending: list[tuple[FoundFile, ImageTags]] = []
        self._oldest = time.monotonic()

    def add(self, found: FoundFile, result: ImageTags) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append((found, result))
        if (len(self._pending) >= COMMIT_EVERY_IMAGES
                or time.monotonic() - self._oldest >= COMMIT_EVERY_SECONDS):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        # Read the files before taking the database's write lock, not while holding it.
        states = [dataclasses.replace(found.state,
                                      fingerprint=fingerprint(found.path, found.state.size))
                  for found, _ in self._pending]
        with self._store.transaction():
            for (found, result), state in zip(self._pending, states, strict=True):
                self._store.record_scan(
                    found.path, self._plan.name, state, self._plan.recorded,
                    width=result.width, height=result.height,
                    tags=merge_instances(result, self._category_of), error=result.error,
                    replace=self._replace,
                    lines=[NewTextLine(line.text, line.confidence, line.box)
                           for line in result.lines])
        for found, result in self._pending:
            self._count(found, result)
        self._report.images_stored = len(self._stored)
        self._pending.clear()

    def _count(self, found: FoundFile, result: ImageTags) -> None:
        self._report.scanned += 1
        self._stored.add(found.path)
        if result.error is not None:
            self._counts.failed += 1
            self._report.failures.append(Failure(found.path, self._plan.name, result.error))
        else:
            self._counts.tagged += 1
