"""Stored machine tags into digiKam's database, as digiKam's own Auto-Tags Assignment
would put them there: ``auto/<label>`` (or ``auto/<category>/<label>``), linked to the
images of its collection. Replace drops an image's other tags below ``auto`` (digiKam's
own older auto tags too), Update keeps them; tags a person rejected go either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..collection.files import canonical_path
from ..collection.policy import Policy, check_policy
from ..collection.store import KeywordsToWrite, TagStore, WrittenKeywords
from ..vocabulary.hierarchy import TagPaths
from .digikam_database import DigikamDatabase, DigikamError, TagChanges
from .keyword_fields import is_auto

BATCH_IMAGES = 256  # images per transaction in digiKam's database


@dataclass
class DigikamReport:
    changes: TagChanges = field(default_factory=TagChanges)
    images_checked: int = 0           # images whose tags were compared and written
    backup: Path | None = None
    integrity: str | None = None          # PRAGMA integrity_check after writing


class DigikamWriter:
    """Writes stored machine tags of the images of a digiKam collection into its
    database. Give it to :func:`autotags.scan` as an output, or call :meth:`write_all`.
    ``dry_run`` works out every change and rolls it back."""

    def __init__(self, database: DigikamDatabase, image_ids: dict[str, int], *,
                 tag_paths: TagPaths = "flat", policy: Policy = "replace",
                 dry_run: bool = False) -> None:
        check_policy(policy)
        self.database, self.tag_paths, self.policy = database, tag_paths, policy
        self.dry_run = dry_run
        self.target = f"digikam:{database.path.resolve()}"
        self._ids = {canonical_path(path): image for path, image in image_ids.items()}
        self.paths = {image: path for path, image in self._ids.items()}
        self.report = DigikamReport()
        if dry_run:
            self.report.changes.per_image = []

    def write(self, store: TagStore, paths: Sequence[str]) -> None:
        """Writes the images among `paths` whose tags changed since they were last
        written here (what a scan does)."""
        self.write_all(store, paths if self.dry_run else
                       store.keywords_out_of_date(self.target, paths))

    def write_all(self, store: TagStore, paths: Sequence[str]) -> None:
        known = [p for p in (canonical_path(p) for p in paths) if p in self._ids]
        for start in range(0, len(known), BATCH_IMAGES):
            batch = [(p, store.keywords_to_write(p, self.tag_paths))
                     for p in known[start:start + BATCH_IMAGES]]
            self._write_batch(store, batch)
        if self.report.images_checked and not self.dry_run:
            self.report.integrity = self.database.integrity_check()

    def _would_change(self, batch: list[tuple[str, KeywordsToWrite]]) -> bool:
        changes = TagChanges()
        with self.database.transaction(dry_run=True):
            self._set_tags(batch, changes)
        return bool(changes.images_changed or changes.tags_created)

    def _set_tags(self, batch: list[tuple[str, KeywordsToWrite]], changes: TagChanges) -> None:
        for path, wanted in batch:
            self.database.set_machine_tags(
                self._ids[path], [p for p in wanted.paths if is_auto(p)],
                replace=self.policy == "replace" and wanted.scanned,
                rejected=wanted.rejected, changes=changes)

    def _write_batch(self, store: TagStore, batch: list[tuple[str, KeywordsToWrite]]) -> None:
        try:
            if not self.dry_run and self.report.backup is None and self._would_change(batch):
                self.report.backup = self.database.back_up()  # before the first change only
            with self.database.transaction(dry_run=self.dry_run):
                self._set_tags(batch, self.report.changes)
        except sqlite3.Error as error:
            raise DigikamError(f"{self.database.path}: writing failed ({error}); the batch "
                               "was rolled back, the database is as it was before it") from None
        self.report.images_checked += len(batch)
        if not self.dry_run:  # after digiKam's commit: a crash in between writes again
            for path, wanted in batch:
                store.record_written_keywords(path, self.target,
                                              WrittenKeywords(wanted.paths, ()))
