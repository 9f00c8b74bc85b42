"""Scanning a collection: decide what needs tagging, tag it, store it in batches."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from .. import locations
from ..models.catalogue import DEFAULT_ACCURACY, load_catalogue
from ..tagging.results import ImageTags
from ..tagging.tagger import DEFAULT_MAX_MEGAPIXELS, Tagger, as_path_list
from ..vocabulary.hierarchy import vocabulary
from .cluster import Cluster, ModelRequest, parse_cluster
from .discovery import FoundFile, discover
from .files import current_state, fingerprint
from .policy import (
    SCAN_MODES,
    Policy,
    ScanMode,
    check_policy,
    recorded_settings,
    scan_reason,
)
from .quarantine import find_crashing_files
from .store import Failure, NewTag, StoreError, TagStore

log = logging.getLogger(__name__)


# A batch is committed when it holds this many images or is this old, whichever
# comes first: few enough transactions to be fast, recent enough that little is redone.
COMMIT_EVERY_IMAGES = 16
COMMIT_EVERY_SECONDS = 1.0
# Files handed to the engine at a time, each chunk marked in flight first: small enough
# that checking a chunk after a crash is quick, large enough that the pipeline stays full.
IN_FLIGHT_CHUNK = 128


class ScanBusyError(RuntimeError):
    """Another scan is writing to the same database."""


@dataclass(frozen=True)
class ScanProgress:
    done: int
    total: int
    path: str
    model: str
    images_per_second: float

    @property
    def eta_seconds(self) -> float | None:
        if self.images_per_second <= 0:
            return None
        return (self.total - self.done) / self.images_per_second


@dataclass
class ModelCounts:
    """What one model did with the images of a scan."""

    tagged: int = 0            # images it tagged now
    failed: int = 0            # images it could not read
    up_to_date: int = 0        # images it had tagged already, unchanged since
    new_settings: int = 0      # of the tagged: rescanned because the accuracy changed
    seconds: float = 0.0       # time spent tagging, model loading not included

    @property
    def images_per_second(self) -> float:
        done = self.tagged + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ScanReport:
    found: int = 0                 # image files below the given paths
    scanned: int = 0               # image x model runs that finished (tagged or failed)
    skipped: int = 0               # image x model runs already up to date
    inferred: int = 0              # images sent through a network
    newly_missing: int = 0         # known images that have disappeared
    back: int = 0                  # images missing before, found again
    moved: int = 0                 # images found under a new name (tags kept)
    images_stored: int = 0         # distinct images whose result was stored now
    not_photos: list[str] = field(default_factory=list)  # videos and audio, skipped
    loading_seconds: float = 0.0   # loading and compiling models
    models: dict[str, ModelCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def tagging_seconds(self) -> float:
        return sum(counts.seconds for counts in self.models.values())

    @property
    def images_per_second(self) -> float:
        """Image x model runs per second of tagging; model loading is not counted."""
        seconds = self.tagging_seconds
        return self.scanned / seconds if seconds > 0 else 0.0


class ScanInterrupted(KeyboardInterrupt):
    """Ctrl-C during a scan; everything finished before it is stored."""

    def __init__(self, report: ScanReport) -> None:
        super().__init__("scan interrupted")
        self.report = report


ProgressCallback = Callable[[ScanProgress], None]


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


def lock_path(database: Path) -> Path:
    """Beside the database, so that every scan of that file finds it, whatever its
    environment (cron has no runtime folder, a desktop session has one)."""
    database = database.resolve()
    return database.with_name(database.name + "-scan.lock")


@contextlib.contextmanager
def exclusive_scan(database: Path) -> Iterator[None]:
    """One scan per database at a time; the lock goes with the process, even on kill -9.
    The lock file is removed when the scan ends, so nothing is left beside the database."""
    path = lock_path(database)
    while True:
        try:
            lock = open(path, "a")  # noqa: SIM115  (held for the whole scan)
        except OSError as error:
            raise ScanBusyError(f"cannot lock {database} for this scan: {error.strerror} "
                                f"({path})") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ScanBusyError(
                f"another autotags scan is writing to {database}; wait for it to finish "
                "or use another --db") from None
        if _still_named(lock, path):
            break
        lock.close()  # the scan before removed it while this one waited: lock the new one
    with lock:
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _still_named(lock: IO[str], path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
    except FileNotFoundError:
        return False


class _BatchWriter:
    """Collects finished results and commits them in batches."""

    def __init__(self, store: TagStore, model: str, settings: dict[str, object],
                 replace: bool, report: ScanReport, stored: set[str],
                 category_of: Callable[[str], str | None]) -> None:
        self._store, self._model, self._settings = store, model, settings
        self._category_of = category_of
        self._replace, self._report, self._stored = replace, report, stored
        self._counts = report.models[model]
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
                    found.path, self._model, state, self._settings, width=result.width,
                    height=result.height, tags=merge_instances(result, self._category_of),
                    error=result.error,
                    replace=self._replace)
        for found, result in self._pending:
            self._report.scanned += 1
            self._stored.add(found.path)
            if result.error is not None:
                self._counts.failed += 1
                self._report.failures.append(Failure(found.path, self._model, result.error))
            else:
                self._counts.tagged += 1
        self._report.images_stored = len(self._stored)
        self._pending.clear()


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


ModelChoice = str | Tagger


class OutputWriter(Protocol):
    """Something that copies stored tags to another program (XMP files, digiKam)."""

    def write(self, store: TagStore, paths: Sequence[str]) -> None:
        """Bring the images among `paths` whose tags changed up to date."""


def _model_choices(model: ModelChoice | Sequence[ModelChoice] | None) -> list[ModelChoice]:
    """Catalogue names (checked now, before any work) or ready taggers."""
    catalogue = load_catalogue()
    if model is None:
        return [catalogue.default_models[0]]
    choices = [model] if isinstance(model, str | Tagger) else list(model)
    if not choices:
        raise ValueError("no model given")
    return [c if isinstance(c, Tagger) else catalogue.get(c).name for c in choices]


def _name_of(choice: ModelChoice) -> str:
    return choice.model_name if isinstance(choice, Tagger) else choice


def _threshold_of(choice: ModelChoice, accuracy: int) -> float:
    if isinstance(choice, Tagger):
        return choice.threshold
    return load_catalogue().get(choice).threshold(accuracy)


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
    outputs: Sequence[OutputWriter] = (),
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
    if mode not in SCAN_MODES:
        raise ValueError(f"mode must be one of {SCAN_MODES}, got {mode!r}")
    check_policy(policy)
    database = Path(db).expanduser() if db is not None else locations.default_database(
        make_folder=True)
    started = time.monotonic()
    report = ScanReport()

    choices = _model_choices(model)
    taggers: dict[str, Tagger] = {}

    def tagger_for(choice: ModelChoice) -> Tagger:
        # Built only when there is work: a scan with nothing to do loads no model.
        name = _name_of(choice)
        if name not in taggers:
            loading = time.monotonic()
            taggers[name] = choice if isinstance(choice, Tagger) else Tagger(
                choice, device=device, accuracy=accuracy, threads=threads, precision=precision,
                max_megapixels=max_megapixels)
            report.loading_seconds += time.monotonic() - loading
        return taggers[name]

    if cluster is not None:
        parse_cluster(cluster)  # a mistyped address fails before any work
        if any(isinstance(choice, Tagger) for choice in choices):
            raise ValueError("a cluster scan takes model names, not Tagger objects")
    clusters: list[Cluster] = []

    with contextlib.ExitStack() as resources:
        store = resources.enter_context(TagStore(database))  # checks the file is one
        resources.enter_context(exclusive_scan(database))

        def run_for(choice: ModelChoice, todo: list[FoundFile]) -> ModelRun:
            if cluster is None:
                return local_run(store, tagger_for(choice))
            if not clusters:  # started only when there is work, as models are loaded
                clusters.append(resources.enter_context(
                    Cluster(cluster, security_file=cluster_security)))
            workers = clusters[0]
            workers.check_visible(todo)
            return cluster_run(store, workers, ModelRequest(
                _name_of(choice), device, accuracy, threads or workers.local_threads(),
                precision, max_megapixels))

        found = discover(as_path_list(paths))
        report.found = len(found.files)
        report.not_photos = found.not_photos
        report.failures.extend(Failure(p.path, "", p.reason) for p in found.problems)
        with store.transaction():
            present = {os.fsencode(f.path) for f in found.files}
            report.newly_missing = store.mark_missing(found.folders, present)
            report.newly_missing += store.mark_missing_files(found.vanished)
            report.back = store.mark_present(present)
            report.moved = _follow_moves(store, found.files)
        for choice in choices:
            report.models.setdefault(_name_of(choice), ModelCounts())
        _quarantine(store, choices, tagger_for, {"policy": policy}, report)

        plans = [(choice, _plan(store, choice, found.files, mode, retry_failed, accuracy,
                                report)) for choice in choices]
        progress_counter = _Progress(sum(len(todo) for _, todo in plans), progress)
        stored: set[str] = set()
        try:
            for choice, todo in plans:
                if todo:
                    _tag_into_store(store, run_for(choice, todo), todo, policy, report,
                                    stored, progress_counter)
        except KeyboardInterrupt:
            store.clear_in_flight([_name_of(c) for c in choices])  # not a crash
            report.interrupted = True
        except (sqlite3.Error, StoreError, OSError):
            # The database failed (disk full, I/O error): the files in flight did not
            # crash a decoder, so the next scan need not check them one by one.
            with contextlib.suppress(sqlite3.Error):
                store.clear_in_flight([_name_of(c) for c in choices])
            raise
        for output in outputs:
            output.write(store, [f.path for f in found.files])
        report.elapsed = time.monotonic() - started
        if report.interrupted:
            raise ScanInterrupted(report)
    return report


def _quarantine(store: TagStore, choices: list[ModelChoice],
                tagger_for: Callable[[ModelChoice], Tagger], settings: dict[str, object],
                report: ScanReport) -> None:
    """Files a dead process left in flight are decoded again one by one, apart; the ones
    that kill the decoder are recorded as failed, so this scan does the rest."""
    left = store.in_flight()
    for choice in choices:
        name = _name_of(choice)
        if name not in left:
            continue
        tagger = tagger_for(choice)
        log.warning("the last scan with %s died while tagging %d files; checking them one "
                    "by one", name, len(left[name]))
        crashed = find_crashing_files(left[name], tagger.decoding())
        with store.transaction():
            for path, reason in crashed.items():
                state = current_state(path)
                if state is not None:
                    store.record_scan(path, name, state, {**settings, **_settings_of(tagger)},
                                      error=reason)
                    report.failures.append(Failure(path, name, reason))
                    report.models[name].failed += 1
        store.clear_in_flight([name])


def _settings_of(tagger: Tagger) -> dict[str, object]:
    return recorded_settings(tagger.accuracy, tagger.threshold)


def _plan(store: TagStore, choice: ModelChoice, files: list[FoundFile], mode: ScanMode,
          retry_failed: bool, accuracy: int, report: ScanReport) -> list[FoundFile]:
    """The files this model must tag now, with the others counted as up to date."""
    name, threshold = _name_of(choice), _threshold_of(choice, accuracy)
    counts = report.models[name]
    records = store.scan_records(name)
    reasons = [scan_reason(f.state, records.get(os.fsencode(f.path)), mode, retry_failed,
                           threshold)
               for f in files]
    todo = [f for f, reason in zip(files, reasons, strict=True) if reason]
    counts.new_settings = reasons.count("settings")
    counts.up_to_date = len(files) - len(todo)
    report.skipped += counts.up_to_date
    return todo


@dataclass
class _Progress:
    total: int
    callback: ProgressCallback | None
    done: int = 0

    def step(self, path: str, model: str, done_by_model: int, seconds: float) -> None:
        self.done += 1
        if self.callback is not None:
            rate = done_by_model / seconds if seconds > 0 else 0.0
            self.callback(ScanProgress(self.done, self.total, path, model, rate))


def _chunks(files: list[FoundFile], size: int) -> Iterator[list[FoundFile]]:
    for start in range(0, len(files), size):
        yield files[start:start + size]


def _tag_into_store(store: TagStore, run: ModelRun, todo: list[FoundFile], policy: Policy,
                    report: ScanReport, stored: set[str], progress: _Progress) -> None:
    writer = _BatchWriter(store, run.name, {**run.settings, "policy": policy},
                          policy == "replace", report, stored, categories_for(run.labels))
    tagging = time.monotonic()
    done_here = 0
    try:
        for found_file, result, inferred in run.results(todo):
            writer.add(found_file, result)
            report.inferred += inferred
            done_here += 1
            progress.step(found_file.path, run.name, done_here, time.monotonic() - tagging)
    finally:
        writer.flush()
        report.models[run.name].seconds += time.monotonic() - tagging


Results = Iterator[tuple[FoundFile, ImageTags, int]]  # file, result, images inferred


@dataclass
class ModelRun:
    """One model's tagging: on this machine, or on a cluster."""

    name: str
    labels: tuple[str, ...]
    settings: dict[str, object]          # recorded with each scan: accuracy, threshold
    results: Callable[[list[FoundFile]], Results]


def local_run(store: TagStore, tagger: Tagger) -> ModelRun:
    def results(todo: list[FoundFile]) -> Results:
        # Each chunk is marked in flight before the engine sees it: if a decoder kills
        # the process, the next scan knows which files to check (see quarantine).
        for chunk in _chunks(todo, IN_FLIGHT_CHUNK):
            store.mark_in_flight(tagger.model_name, [f.path for f in chunk])
            # The engine counts on its own threads while this generator is suspended: read
            # the counter once per result, or images counted meanwhile go uncounted.
            before = tagger.images_inferred
            for found_file, result in zip(chunk, tagger.tag(f.path for f in chunk),
                                          strict=False):
                now = tagger.images_inferred
                yield found_file, result, now - before
                before = now

    return ModelRun(tagger.model_name, tagger.spec.labels, _settings_of(tagger), results)


def cluster_run(store: TagStore, cluster: Cluster, request: ModelRequest) -> ModelRun:
    spec = load_catalogue().get(request.name)

    def results(todo: list[FoundFile]) -> Results:
        # Every chunk goes out at once, and a worker may die on any of them.
        store.mark_in_flight(request.name, [f.path for f in todo])
        yield from cluster.tag(request, todo)

    settings = recorded_settings(request.accuracy, spec.threshold(request.accuracy))
    return ModelRun(request.name, spec.labels, settings, results)
