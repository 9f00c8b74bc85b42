"""Scanning a collection: take stock, decide what each model must tag, tag it, store it
in batches, then bring the outputs up to date."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .. import locations
from ..errors import SettingsError
from ..models.catalogue import DEFAULT_ACCURACY
from ..models.runtime import RunSettings
from ..tagging.tagger import DEFAULT_MAX_MEGAPIXELS, as_path_list
from .batches import BatchWriter
from .cluster import parse_cluster
from .discovery import FoundFile, discover
from .files import current_state
from .inventory import take_stock
from .planning import ModelChoice, ModelPlan, files_to_tag, resolve_models
from .policy import SCAN_MODES, Policy, ScanMode, check_policy
from .quarantine import find_crashing_files
from .reports import ModelCounts, ProgressCallback, ProgressCounter, ScanInterrupted, ScanReport
from .runners import Runners
from .scan_lock import exclusive_scan
from .store import Failure, StoreError, TagStore

log = logging.getLogger(__name__)


class Output(Protocol):
    """Something that copies stored tags to another program (XMP files, digiKam)."""

    def write(self, store: TagStore, paths: Sequence[str]) -> None:
        """Bring the images among `paths` whose tags changed up to date."""


def scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    db: str | os.PathLike[str] | None = None,
    model: ModelChoice | Sequence[ModelChoice] | None = None,
    mode: ScanMode = "new",
    policy: Policy = "replace",
    accuracy: int = DEFAULT_ACCURACY,
    device: str = "CPU",
    threads: int | None = None,
    precision: str | None = None,
    max_megapixels: int = DEFAULT_MAX_MEGAPIXELS,
    retry_failed: bool = False,
    progress: ProgressCallback | None = None,
    outputs: Sequence[Output] = (),
    cluster: str | None = None,
    cluster_security: str | os.PathLike[str] | None = None,
) -> ScanReport:
    """Tag the images below `paths` (folders or files; one path may be given alone, and
    `~` is expanded) into the tag database `db`.

    ``mode="new"`` (default) tags only images this model has not seen, that changed
    since (size or modification time) or that it tagged at another accuracy; ``"all"``
    tags everything again. ``policy``
    ``"replace"`` (default, as digiKam) swaps the auto tags a model made before for its
    new ones; ``"update"`` keeps them and adds. Manual tags and tags of other models are
    never touched. Several models give one merged tag set. Images that fail are recorded
    with the reason and retried only when they change or with ``retry_failed``.

    Results are committed in batches; Ctrl-C raises :class:`ScanInterrupted` after
    storing everything finished, and a later scan continues where this one stopped.
    Each of `outputs` (e.g. ``autotags.XmpWriter``) is then given the images found, to
    bring other programs' copies of their tags up to date, also after Ctrl-C.

    ``cluster`` runs the tagging on Dask workers: ``"local:N"`` starts N worker processes
    on this machine, ``"tcp://HOST:PORT"`` uses a running scheduler. Planning and the
    store stay here; every worker must read the files at the same paths.
    ``"tls://HOST:PORT"`` encrypts and authenticates with Dask's TLS settings: from
    ``cluster_security`` (a file in Dask's configuration format) or Dask's configuration.
    """
    started = time.monotonic()
    settings = RunSettings(device=device, accuracy=accuracy, threads=threads,
                           precision=precision, max_megapixels=max_megapixels)
    if mode not in SCAN_MODES:
        raise SettingsError(f"mode must be one of {SCAN_MODES}, got {mode!r}")
    check_policy(policy)
    plans = resolve_models(model, settings, policy)
    if cluster is not None:
        parse_cluster(cluster)  # a mistyped address fails before any work
        if any(plan.tagger for plan in plans):
            raise SettingsError("a cluster scan takes model names, not Tagger objects")
    database = Path(db).expanduser() if db is not None else locations.default_database(
        make_folder=True)
    report = ScanReport(models={plan.name: ModelCounts() for plan in plans})

    with contextlib.ExitStack() as resources:
        store = resources.enter_context(TagStore(database))  # checks the file is one
        resources.enter_context(exclusive_scan(database))
        runners = Runners(store, settings, report, resources, cluster=cluster,
                          cluster_security=cluster_security)
        found = discover(as_path_list(paths))
        take_stock(store, found, report)
        _quarantine(store, plans, runners, report)
        work = [(plan, files_to_tag(store, plan, found.files, mode, retry_failed, report))
                for plan in plans]
        _tag_all(store, work, runners, report, progress)
        for output in outputs:
            output.write(store, [f.path for f in found.files])
        report.elapsed = time.monotonic() - started
        if report.interrupted:
            raise ScanInterrupted(report)
    return report


def _quarantine(store: TagStore, plans: list[ModelPlan], runners: Runners,
                report: ScanReport) -> None:
    """Files a dead process left in flight are decoded again one by one, apart; the ones
    that kill the decoder are recorded as failed, so this scan does the rest."""
    left = store.in_flight()
    for plan in plans:
        if plan.name not in left:
            continue
        log.warning("the last scan with %s died while tagging %d files; checking them one "
                    "by one", plan.name, len(left[plan.name]))
        crashed = find_crashing_files(left[plan.name], runners.tagger(plan).decoding())
        with store.transaction():
            for path, reason in crashed.items():
                state = current_state(path)
                if state is not None:
                    store.record_scan(path, plan.name, state, plan.recorded, error=reason)
                    report.failures.append(Failure(path, plan.name, reason))
                    report.models[plan.name].failed += 1
        store.clear_in_flight([plan.name])


def _tag_all(store: TagStore, work: list[tuple[ModelPlan, list[FoundFile]]], runners: Runners,
             report: ScanReport, progress: ProgressCallback | None) -> None:
    """Every model's files, stored as they finish. Ctrl-C ends it with what is stored."""
    busy = [(plan, todo) for plan, todo in work if todo]
    names = [plan.name for plan, _ in work]
    try:
        if busy:
            _tag_into_store(store, busy, runners, report,
                            ProgressCounter(sum(len(todo) for _, todo in busy), progress))
    except KeyboardInterrupt:
        store.clear_in_flight(names)  # not a crash
        report.interrupted = True
    except (sqlite3.Error, StoreError, OSError):
        # The database failed (disk full, I/O error): the files in flight did not
        # crash a decoder, so the next scan need not check them one by one.
        with contextlib.suppress(sqlite3.Error):
            store.clear_in_flight(names)
        raise


def _tag_into_store(store: TagStore, work: list[tuple[ModelPlan, list[FoundFile]]],
                    runners: Runners, report: ScanReport, progress: ProgressCounter) -> None:
    results = runners.results(work)
    stored: set[str] = set()
    writers = [BatchWriter(store, plan, report, stored) for plan, _ in work]
    done = [0] * len(work)
    tagging = time.monotonic()
    try:
        for position, found_file, result, inferred in results:
            writers[position].add(found_file, result)
            report.inferred += inferred
            done[position] += 1
            progress.step(found_file.path, work[position][0].name, done[position],
                          time.monotonic() - tagging)
    finally:
        for writer in writers:
            writer.flush()
        _share_time(report, work, done, time.monotonic() - tagging)


def _share_time(report: ScanReport, work: list[tuple[ModelPlan, list[FoundFile]]],
                done: list[int], seconds: float) -> None:
    """The models tagged side by side from the same decodes: each is counted its share of
    the time by how many of the results were its own."""
    total = sum(done)
    for (plan, _), count in zip(work, done, strict=True):
        report.models[plan.name].seconds += seconds * count / total if total else 0.0
