"""Before tagging: what the store knows against what is on disk now. Images gone are
flagged missing (tags kept), images back are unflagged, and moved images keep their
tags under their new names."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .discovery import Discovery, FoundFile
from .files import fingerprint
from .reports import ScanReport
from .store import Failure, TagStore


def take_stock(store: TagStore, found: Discovery, report: ScanReport) -> None:
    report.found = len(found.files)
    report.not_photos = found.not_photos
    report.failures.extend(Failure(p.path, "", p.reason) for p in found.problems)
    with store.transaction():
        present = {os.fsencode(f.path) for f in found.files}
        report.newly_missing = store.mark_missing(found.folders, present)
        report.newly_missing += store.mark_missing_files(found.vanished)
        report.back = store.mark_present(present)
        report.moved = _follow_moves(store, found.files)


def _follow_moves(store: TagStore, files: Sequence[FoundFile]) -> int:
    """Files new to the store that have the size and fingerprint of a missing image are
    that image, moved or renamed: it keeps its row, manual tags and history."""
    missing = store.missing_by_size()
    moved = 0
    for found_file in files:
        candidates = missing.get(found_file.state.size)
        if not candidates or store.image_id(found_file.path) is not None:
            continue
        content = fingerprint(found_file.path, found_file.state.size)
        match = next((c for c in candidates if c[1] is not None and c[1] == content), None)
        if match is not None:
            store.move_image(match[0], found_file.path)
            candidates.remove(match)
            moved += 1
    return moved
