"""Stored tags into the XMP keywords photo managers read (sidecars or embedded), and
keywords people already have in their files into the store.

Only keywords below ``auto`` are autotags' own. Under Replace the auto keywords of a
file that a model tagged are swapped for the store's; under Update they are kept and
the store's added. Either way tags a person rejected (``untag``) leave the file, and
manual tags (``tag-manual``) are written too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..collection.files import FileState, current_state
from ..collection.policy import Policy
from ..collection.store import (
    Failure,
    KeywordEntry,
    KeywordLedger,
    StoreError,
    TagStore,
    WrittenKeywords,
)
from ..errors import SettingsError
from ..vocabulary.hierarchy import TagPaths
from .base import OutputReport, OutputWriter
from .keyword_fields import HIERARCHICAL_FIELDS, FileKeywords, leaf, merge
from .metadata_files import (
    SIDECAR_NAMES,
    TARGETS,
    MetadataError,
    OpenedFile,
    SidecarName,
    Target,
    read_existing_keywords,
    read_keywords,
    sidecar_for,
    write_keywords,
)

log = logging.getLogger(__name__)

XMP_SOURCE = "xmp"  # the model column of failures while writing files


@dataclass
class XmpReport(OutputReport):
    written: int = 0      # files changed
    unchanged: int = 0    # files that already showed the image's tags
    without_tags: int = 0  # images with no tags and no sidecar: nothing to write


class XmpWriter(OutputWriter):
    """Writes stored tags into each image's XMP sidecar (``target="sidecar"``) or into
    the image file itself (``"embed"``: JPEG, TIFF, DNG, PNG, WebP). Give it to
    :func:`autotags.scan` as an output, or call :meth:`write` / :meth:`write_all`."""

    name = "xmp"
    target: Target
    report: XmpReport

    def __init__(self, target: Target = "sidecar", *, sidecar_name: SidecarName = "full",
                 tag_paths: TagPaths = "flat", policy: Policy = "replace") -> None:
        if target not in TARGETS:
            raise SettingsError(f"target must be one of {TARGETS}, got {target!r}")
        if sidecar_name not in SIDECAR_NAMES:
            raise SettingsError(f"sidecar_name must be one of {SIDECAR_NAMES}, got "
                                f"{sidecar_name!r}")
        super().__init__(target, tag_paths=tag_paths, policy=policy)
        self.sidecar_name = sidecar_name
        self.report = XmpReport()

    def write_all(self, store: TagStore, paths: Sequence[str]) -> None:
        ledger = store.keywords(self.target)
        for path in paths:
            try:
                outcome = self._write_one(ledger, path)
            except (MetadataError, StoreError) as error:
                self.report.failures.append(Failure(path, XMP_SOURCE, str(error)))
                continue
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)

    def summary(self) -> list[str]:
        report = self.report
        kind = "sidecars" if self.target == "sidecar" else "image files"
        untagged = f", {report.without_tags} images without tags" if report.without_tags \
            else ""
        return [f"xmp: {report.written} {kind} written, {report.unchanged} already up to "
                f"date{untagged}, {len(report.failures)} failed"]

    def _write_one(self, ledger: KeywordLedger, path: str) -> str:
        """Brings one file up to date; says which count of the report it adds to."""
        entry = ledger.read(path, self.tag_paths)
        wanted, previous = entry.wanted, entry.previous
        destination = sidecar_for(path, self.sidecar_name) if self.target == "sidecar" \
            else Path(path)
        if self.target == "sidecar" and not wanted.paths and not destination.exists():
            # No empty sidecars; remembered, so that the next scan does not look again.
            ledger.record(path, WrittenKeywords((), ()))
            return "without_tags"
        existing, opened = read_keywords(destination, self.target)
        replacing = self.policy == "replace" and wanted.scanned
        result = merge(existing, wanted.paths, self._removal(entry, replacing),
                       previous.owned_by_others if previous else ())
        changed = not _same(result.keywords, existing)
        rewritten = self._rewrite(path, destination, opened, result.keywords) if changed \
            else None
        ledger.record(path, WrittenKeywords(wanted.paths, tuple(result.owned_by_others)),
                      replaced_imported=replacing, rewritten=rewritten)
        return "written" if changed else "unchanged"

    def _rewrite(self, path: str, destination: Path, opened: OpenedFile | None,
                 keywords: FileKeywords) -> tuple[FileState, FileState] | None:
        """Writes the file. An image rewritten by autotags itself keeps counting as
        scanned: its state before and after go to the store."""
        if self.target == "sidecar":
            write_keywords(destination, opened, keywords)
            return None
        before = current_state(path)
        write_keywords(destination, opened, keywords)
        after = current_state(path)
        return (before, after) if before and after else None

    @staticmethod
    def _removal(entry: KeywordEntry, replacing: bool) -> Callable[[str], bool]:
        wanted, previous = entry.wanted, entry.previous
        keep = set(wanted.paths)
        if replacing:
            return lambda path: path not in keep
        ours_before = set(previous.paths) if previous else set()
        return lambda path: path not in keep and (
            path in ours_before or leaf(path) in wanted.rejected)


def _same(first: FileKeywords, second: FileKeywords) -> bool:
    return (first.subject == second.subject and first.iptc == second.iptc and all(
        first.hierarchical.get(h.key, ()) == second.hierarchical.get(h.key, ())
        for h in HIERARCHICAL_FIELDS))


@dataclass
class ImportReport:
    files: int = 0          # images whose files had keywords
    tags_added: int = 0     # tags the store did not have yet
    failures: list[Failure] = field(default_factory=list)


def import_keywords(store: TagStore, paths: Sequence[str]) -> ImportReport:
    """Reads the keywords of each image's sidecar (else its embedded XMP or IPTC) into
    the store: paths from the hierarchical fields, else the flat names; keywords below
    ``auto`` as machine tags of source ``xmp``, the rest as manual tags."""
    report = ImportReport()
    for path in paths:
        try:
            keywords = read_existing_keywords(path).paths()
            if keywords:
                report.tags_added += store.import_keywords(path, keywords)
                report.files += 1
        except (MetadataError, StoreError) as error:
            report.failures.append(Failure(path, XMP_SOURCE, str(error)))
        except OSError as error:
            report.failures.append(Failure(path, XMP_SOURCE, f"{path}: {error.strerror}"))
    log.debug("imported keywords of %d files", report.files)
    return report
