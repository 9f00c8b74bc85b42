"""Stored machine tags into digiKam's database, as digiKam's own Auto-Tags Assignment
would put them there: ``auto/<label>`` (or ``auto/<category>/<label>``), linked to the
images of its collection. Replace drops an image's other tags below ``auto`` (digiKam's
own older auto tags too), Update keeps them; tags a person rejected go either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..collection.files import canonical_path
from ..collection.policy import Policy
from ..collection.store import Failure, KeywordLedger, KeywordsToWrite, TagStore, WrittenKeywords
from ..vocabulary.hierarchy import TagPaths
from .base import OutputReport, OutputWriter
from .digikam_database import DigikamDatabase, RowChanges, TagChanges
from .digikam_journal import DigikamJournal
from .digikam_settings import DigikamError
from .keyword_fields import is_auto

BATCH_IMAGES = 256  # images per transaction in digiKam's database


@dataclass
class DigikamReport(OutputReport):
    changes: TagChanges = field(default_factory=TagChanges)
    images_checked: int = 0           # images whose tags were compared and written
    backup: Path | None = None
    integrity: str | None = None          # PRAGMA integrity_check after writing
    run: int | None = None                # its number in the journal (digikam undo RUN)


class DigikamWriter(OutputWriter):
    """Writes stored machine tags of the images of a digiKam collection into its
    database. Give it to :func:`autotags.scan` as an output, or call :meth:`write_all`.
    ``dry_run`` works out every change and rolls it back. A `journal` records every
    row each batch changes, so that ``autotags digikam undo`` can take the run back."""

    name = "digikam"
    report: DigikamReport

    def __init__(self, database: DigikamDatabase, image_ids: dict[str, int], *,
                 tag_paths: TagPaths = "flat", policy: Policy = "replace",
                 dry_run: bool = False, journal: DigikamJournal | None = None) -> None:
        super().__init__(database.output_target, tag_paths=tag_paths, policy=policy)
        self.database, self.dry_run = database, dry_run
        self.journal = None if dry_run else journal
        self._ids = {canonical_path(path): image for path, image in image_ids.items()}
        self.paths = {image: path for path, image in self._ids.items()}
        self.report = DigikamReport()
        if dry_run:
            self.report.changes.per_image = []

    def write(self, store: TagStore, paths: Sequence[str]) -> None:
        """As :meth:`OutputWriter.write`; a dry run shows every image's changes."""
        if self.dry_run:
            self.write_all(store, paths)
        else:
            super().write(store, paths)

    def write_all(self, store: TagStore, paths: Sequence[str]) -> None:
        ledger = store.keywords(self.target)
        known = [p for p in (canonical_path(p) for p in paths) if p in self._ids]
        for start in range(0, len(known), BATCH_IMAGES):
            batch = [(p, ledger.read(p, self.tag_paths).wanted)
                     for p in known[start:start + BATCH_IMAGES]]
            self._write_batch(ledger, batch)
        if self.report.images_checked and not self.dry_run:
            self._check_integrity()

    def _check_integrity(self) -> None:
        self.report.integrity = self.database.integrity_check()
        if self.report.integrity != "ok":
            self.report.failures.append(Failure(
                self.database.where, self.name,
                f"digiKam's database fails its integrity check after writing; the backup "
                f"{self.report.backup} holds it as it was"))

    def _report_refused(self) -> None:
        """Tags digiKam's database cannot hold: a failure of their image, the rest goes."""
        for image, reason in self.report.changes.refused:
            self.report.failures.append(Failure(self.paths[image], self.name, reason))
        self.report.changes.refused.clear()

    def _journal(self, rows: RowChanges | None) -> None:
        """What the batch digiKam just committed changed, for `digikam undo`."""
        self.report.changes.rows = None
        if self.journal is None or rows is None or not (
                rows.tags or rows.links_added or rows.links_removed):
            return
        if self.report.run is None:
            self.report.run = self.journal.start(self.database.identity)
        self.journal.record(self.report.run, rows)

    def summary(self) -> list[str]:
        report, changes = self.report, self.report.changes
        verb = "would change" if self.dry_run else "changed"
        lines = [f"digikam: {changes.images_changed} images {verb} ({changes.links_added} "
                 f"tags added, {changes.links_removed} removed) of {report.images_checked} "
                 "checked"]
        lines += [f"  {'would create' if self.dry_run else 'created'} tag {path}"
                  for path in changes.tags_created]
        for change in changes.per_image or []:
            parts = ("add " + ", ".join(change.added) if change.added else "",
                     "remove " + ", ".join(change.removed) if change.removed else "")
            lines.append(f"  {self.paths[change.image]}: " + "; ".join(p for p in parts if p))
        if report.backup:
            lines.append(f"  backup of the database before writing: {report.backup}")
        if report.integrity is not None:
            lines.append(f"  integrity check: {report.integrity}")
        if report.run is not None:
            lines.append(f"  recorded as run {report.run}: `autotags digikam undo` takes it back")
        return lines

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

    def _write_batch(self, ledger: KeywordLedger, batch: list[tuple[str, KeywordsToWrite]]) -> None:
        try:
            if not self.dry_run and self.database.can_back_up and self.report.backup is None \
                    and self._would_change(batch):
                self.report.backup = self.database.back_up()  # before the first change only
            self.report.changes.rows = RowChanges() if self.journal else None
            with self.database.transaction(dry_run=self.dry_run):
                self._set_tags(batch, self.report.changes)
        except self.database.errors as error:
            raise DigikamError(f"{self.database.where}: writing failed ({error}); the batch "
                               "was rolled back, the database is as it was before it") from None
        self._journal(self.report.changes.rows)
        self._report_refused()
        self.report.images_checked += len(batch)
        if not self.dry_run:  # after digiKam's commit: a crash in between writes again
            for path, wanted in batch:
                ledger.record(path, WrittenKeywords(wanted.paths, ()))
