"""Where a scan's models run: a Tagger in this process, or workers of a Dask cluster.

Both are started only when a model has work, so a scan with nothing to do loads no
model. Every file is marked in flight before an engine sees it: if a decoder kills the
process, the next scan knows which files to check (see :mod:`.quarantine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator

from ..models.runtime import RunSettings
from ..tagging.results import ImageTags
from ..tagging.tagger import Tagger
from .cluster import Cluster
from .discovery import FoundFile
from .planning import ModelPlan
from .reports import ScanReport
from .store import TagStore

# Files handed to the engine at a time, each chunk marked in flight first: small enough
# that checking a chunk after a crash is quick, large enough that the pipeline stays full.
IN_FLIGHT_CHUNK = 128

Results = Iterator[tuple[FoundFile, ImageTags, int]]  # file, result, images inferred


class Runners:
    def __init__(self, store: TagStore, settings: RunSettings, report: ScanReport,
                 resources: contextlib.ExitStack, *, cluster: str | None = None,
                 cluster_security: str | os.PathLike[str] | None = None) -> None:
        self._store, self._settings, self._report = store, settings, report
        self._resources = resources
        self._cluster_address, self._cluster_security = cluster, cluster_security
        self._cluster: Cluster | None = None
        self._taggers: dict[str, Tagger] = {}

    def tagger(self, plan: ModelPlan) -> Tagger:
        """The model loaded in this process (the caller's own tagger if it gave one)."""
        if plan.name not in self._taggers:
            loading = time.monotonic()
            self._taggers[plan.name] = plan.tagger or Tagger.from_settings(plan.name,
                                                                           self._settings)
            self._report.loading_seconds += time.monotonic() - loading
        return self._taggers[plan.name]

    def results(self, plan: ModelPlan, todo: list[FoundFile]) -> Results:
        if self._cluster_address is None:
            return self._here(self.tagger(plan), todo)
        return self._on_cluster(self._cluster_address, plan, todo)

    def _here(self, tagger: Tagger, todo: list[FoundFile]) -> Results:
        for start in range(0, len(todo), IN_FLIGHT_CHUNK):
            chunk = todo[start:start + IN_FLIGHT_CHUNK]
            self._store.mark_in_flight(tagger.model_name, [f.path for f in chunk])
            # The engine counts on its own threads while this generator is suspended: read
            # the counter once per result, or images counted meanwhile go uncounted.
            before = tagger.images_inferred
            for found_file, result in zip(chunk, tagger.tag(f.path for f in chunk),
                                          strict=False):
                now = tagger.images_inferred
                yield found_file, result, now - before
                before = now

    def _on_cluster(self, address: str, plan: ModelPlan, todo: list[FoundFile]) -> Results:
        workers = self._workers(address)
        workers.check_visible(todo)
        settings = dataclasses.replace(
            self._settings, threads=self._settings.threads or workers.local_threads())
        # Every chunk goes out at once, and a worker may die on any of them.
        self._store.mark_in_flight(plan.name, [f.path for f in todo])
        return workers.tag(plan.name, settings, todo)

    def _workers(self, address: str) -> Cluster:
        if self._cluster is None:
            self._cluster = self._resources.enter_context(
                Cluster(address, security_file=self._cluster_security))
        return self._cluster
