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
from ..tagging.tagger import Tagger, TaggerGroup
from .cluster import Cluster
from .discovery import FoundFile
from .planning import ModelPlan
from .reports import ScanReport
from .store import TagStore

# Files handed to the engine at a time, each chunk marked in flight first: small enough
# that checking a chunk after a crash is quick, large enough that the pipeline stays full.
IN_FLIGHT_CHUNK = 128

# The plan's position in the work, the file, its result, images inferred meanwhile.
Results = Iterator[tuple[int, FoundFile, ImageTags, int]]
Work = list[tuple[ModelPlan, list[FoundFile]]]


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

    def results(self, work: Work) -> Results:
        """Every plan's files tagged. Here, all models share one pipeline: each file is
        decoded once for the models that still need it. A cluster runs them in turn."""
        if self._cluster_address is None:
            return self._here(work)
        return self._on_cluster(self._cluster_address, work)

    def _here(self, work: Work) -> Results:
        taggers = [self.tagger(plan) for plan, _ in work]
        group = TaggerGroup(taggers)
        needed: dict[str, list[bool]] = {}
        files: dict[str, FoundFile] = {}
        for position, (_, todo) in enumerate(work):
            for found in todo:
                files.setdefault(found.path, found)
                needed.setdefault(found.path, [False] * len(work))[position] = True
        ordered = list(files.values())
        for start in range(0, len(ordered), IN_FLIGHT_CHUNK):
            chunk = ordered[start:start + IN_FLIGHT_CHUNK]
            for position, tagger in enumerate(taggers):
                self._store.mark_in_flight(tagger.model_name, [
                    f.path for f in chunk if needed[f.path][position]])
            # The engine counts on its own threads while this generator is suspended: read
            # the counters once per result, or images counted meanwhile go uncounted.
            counted = [tagger.images_inferred for tagger in taggers]
            for index, position, result in group.tag([f.path for f in chunk],
                                                     [needed[f.path] for f in chunk]):
                now = taggers[position].images_inferred
                yield position, chunk[index], result, now - counted[position]
                counted[position] = now

    def _on_cluster(self, address: str, work: Work) -> Results:
        workers = self._workers(address)
        settings = dataclasses.replace(
            self._settings, threads=self._settings.threads or workers.local_threads())
        for position, (plan, todo) in enumerate(work):
            workers.check_visible(todo)
            # Every chunk goes out at once, and a worker may die on any of them.
            self._store.mark_in_flight(plan.name, [f.path for f in todo])
            for found, result, inferred in workers.tag(plan.name, settings, todo):
                yield position, found, result, inferred

    def _workers(self, address: str) -> Cluster:
        if self._cluster is None:
            self._cluster = self._resources.enter_context(
                Cluster(address, security_file=self._cluster_security))
        return self._cluster
