"""What every request of the review page shares: the store (one connection, one request
at a time), the renditions, the guard, and what the page may change."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..collection.store import TagStore
from ..outputs.metadata_files import Target
from ..outputs.xmp import XmpWriter
from .renditions import Renditions
from .security import Guard


@dataclass
class Review:
    database: Path
    guard: Guard
    read_only: bool = False
    xmp: Target | None = None          # write sidecars (or embed) as corrections are made
    renditions: Renditions = field(default_factory=Renditions)
    _store: TagStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        self._store = TagStore(self.database, read_only=self.read_only, create=False)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @contextlib.contextmanager
    def store(self) -> Iterator[TagStore]:
        """The store, for one request's reads or one correction: SQLite's connection is
        not shared by two threads at once."""
        if self._store is None:
            raise RuntimeError("the review page's store is not open")
        with self._lock:
            yield self._store

    def after_correction(self, store: TagStore, images: list[int]) -> list[str]:
        """Brings the corrected images' XMP up to date when asked to; the failures."""
        if self.xmp is None:
            return []
        records = (store.image(image) for image in images)
        writer = XmpWriter(self.xmp)
        writer.write(store, [record.path for record in records if record is not None])
        return [f"{f.path}: {f.error}" for f in writer.report.failures]
