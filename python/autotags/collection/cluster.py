"""Tagging on a Dask cluster: the client plans and stores, workers only tag.

Each worker process loads a model once (kept for every later chunk) and tags chunks of
paths with the same engine as a local scan, returning the results; only the client
writes the store, so its guarantees hold unchanged. A worker that dies has its chunks run
again elsewhere by Dask's scheduler, and each chunk's results are stored once, whichever
worker delivered them. Needs the ``cluster`` extra: ``pip install 'autotags[cluster]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AutotagsError, SettingsError
from ..models.runtime import RunSettings
from ..tagging.results import ImageTags
from ..tagging.tagger import Tagger
from .discovery import FoundFile

log = logging.getLogger(__name__)

CHUNKS_PER_WORKER = 4    # a lost worker costs at most a quarter of its share, then less
MAX_CHUNK = 32           # ... and never more than this many images
VISIBILITY_SAMPLE = 8    # paths each worker must see before any work is sent
CONNECT_SECONDS = 10
WAIT_FOR_WORKERS_SECONDS = 60   # a scheduler without workers: wait this long for one
STALL_SECONDS = 900             # no chunk finished for this long: the workers are gone
# A local cluster listens on the loopback interface only; its status page (which Dask
# always serves) takes any free port rather than failing on a busy 8787.
LOOPBACK_ANY_PORT = "127.0.0.1:0"


class ClusterError(AutotagsError, RuntimeError):
    """The cluster cannot be used: not reachable, files not visible, a model not loading."""


@dataclass(frozen=True)
class ChunkResult:
    results: list[ImageTags]
    inferred: int  # images the worker sent through the network for this chunk


_taggers: dict[tuple[str, RunSettings], Tagger] = {}  # per worker: each model loaded once


def tag_chunk(model: str, settings: RunSettings, paths: list[str]) -> ChunkResult:
    """Runs on a worker: the same Tagger as a local scan would build."""
    tagger = _taggers.get((model, settings))
    if tagger is None:
        tagger = _taggers[model, settings] = Tagger.from_settings(model, settings)
    before = tagger.images_inferred
    results = list(tagger.tag(paths))
    return ChunkResult(results, tagger.images_inferred - before)


def missing_paths(paths: list[str]) -> list[str]:
    """Runs on every worker: the paths it cannot read."""
    return [p for p in paths if not os.access(p, os.R_OK)]


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until a local cluster has started (a second or two): one
    stopped half-way is left to Dask's exit handler, which fails with a traceback. A stop
    asked for meanwhile is remembered and given to the program's own handler once it has
    started, so the cluster is closed in order. (Python runs signal handlers in the main
    thread, whichever thread the signal reached, so this holds with Dask's threads running.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.signal(number, lambda number, _: asked.append(number))
              for number in stops}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    for stop in dict.fromkeys(asked):
        signal.raise_signal(stop)


def _local_security() -> Any:
    """Temporary certificates for a local cluster, so that no other user of this machine
    can reach its scheduler on the loopback interface and run code as this one."""
    from distributed import Security

    try:
        return Security.temporary()
    except ImportError:  # Dask without `cryptography`: loopback only, as Dask's default
        return None


def _dask() -> tuple[Any, Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("scanning on a cluster needs Dask: pip install "
                           "'autotags[cluster]'") from None
    return Client, LocalCluster


def parse_cluster(address: str) -> tuple[str, int | str]:
    """('local', N) for 'local:N', ('scheduler', address) for 'tcp://host:port' or
    'tls://host:port'. N is at most the cores this process may use: each worker takes a
    core, and more workers than cores only fight over them (and over memory)."""
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise SettingsError(f"local:N needs a number of workers of at least 1, got {address!r}")
        cores = len(os.sched_getaffinity(0))
        if int(count) > cores:
            raise SettingsError(f"{address} asks for {count} worker processes, but autotags may "
                             f"use {cores} cores here and each worker takes one: use "
                             f"local:{cores} or fewer")
        return "local", int(count)
    if address.startswith(("tcp://", "tls://")) and address.split("://", 1)[1]:
        return "scheduler", address
    raise SettingsError(f"cluster must be local:N, tls://HOST:PORT or tcp://HOST:PORT, got "
                     f"{address!r}")


def security_settings(address: str, security_file: str | os.PathLike[str] | None) -> Any:
    """Dask's TLS settings for `address`: from `security_file` (Dask's configuration
    format, relative paths from its folder) or else from Dask's own configuration. A
    tls:// address without certificates is refused before anything is sent."""
    import dask.config
    from distributed import Security

    overrides = _read_security_file(security_file) if security_file else {}
    with dask.config.set(overrides):
        security = Security()
    if address.startswith("tls://") and not (security.tls_ca_file and security.tls_client_cert):
        raise ClusterError(
            f"{address} needs Dask's TLS settings (the cluster's CA file and this client's "
            "certificate and key): give --cluster-security FILE, or set "
            "distributed.comm.tls.ca-file and distributed.comm.tls.client.cert/key in Dask's "
            "configuration (~/.config/dask/)")
    return security


_SECURITY_KEYS = ("ca-file", "ciphers", "client.cert", "client.key")


def _read_security_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle) or {}
        tls = content["distributed"]["comm"]["tls"]
    except OSError as error:
        raise ClusterError(f"{path}: cannot read it: {error.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError) as error:
        reason = " ".join(str(error).split())  # YAML's messages span several lines
        raise ClusterError(
            f"{path}: not Dask security settings ({type(error).__name__}: {reason}); expected "
            "distributed: comm: tls: ca-file, client: cert, key, as in Dask's "
            "configuration") from None
    folder = os.path.dirname(os.path.abspath(path))
    settings: dict[str, Any] = {}
    for key in _SECURITY_KEYS:
        value = tls
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            is_file = key != "ciphers"
            settings[f"distributed.comm.tls.{key}"] = (
                os.path.join(folder, os.path.expanduser(value)) if is_file else value)
    settings["distributed.comm.require-encryption"] = True
    return settings


async def _answers_as_scheduler(address: str, security: Any) -> None:
    """Dask's own connect, handshake included, which it does not bound itself."""
    from distributed.comm import connect

    comm = await connect(address, timeout=CONNECT_SECONDS,
                         **security.get_connection_args("client"))
    await comm.close()


class Cluster:
    """A connection to a Dask scheduler (or a local cluster made for one scan)."""

    def __init__(self, address: str, *,
                 security_file: str | os.PathLike[str] | None = None) -> None:
        kind, where = parse_cluster(address)
        client_type, local_cluster_type = _dask()
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # failures come as results
        # Dask's event loop runs on Tornado, which logs a failing callback with a traceback;
        # Ctrl-C at the wrong moment makes Dask's own cancel callback fail that way
        # (distributed.utils.sync), although the interrupted scan ends in order.
        logging.getLogger("tornado.application").setLevel(logging.CRITICAL)
        self._local = None
        try:
            if kind == "local":
                with _stop_signals_held():
                    self._local = local_cluster_type(
                        n_workers=int(where), threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=LOOPBACK_ANY_PORT,
                        # Workers' errors reach this process as results; their own
                        # logs would print tracebacks, e.g. of a heartbeat that finds
                        # the scheduler gone while Ctrl-C closes the cluster.
                        silence_logs=logging.CRITICAL, security=_local_security())
                    self.client = client_type(self._local)
            else:
                security = security_settings(address, security_file)
                self._probe(address, security)
                self.client = client_type(where, timeout=f"{CONNECT_SECONDS}s",
                                          security=security)
        except (OSError, TimeoutError) as error:
            self.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {address} ({error})"
                               ) from None
        except BaseException:
            self.close()
            raise
        try:
            self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_SECONDS)
        except TimeoutError:
            self.close()
            raise ClusterError(f"the Dask scheduler at {address} has no workers (none joined "
                               f"in {WAIT_FOR_WORKERS_SECONDS} s); start some with "
                               f"`dask worker {address}`") from None

    @staticmethod
    def _probe(address: str, security: Any) -> None:
        try:
            asyncio.run(asyncio.wait_for(_answers_as_scheduler(address, security),
                                         CONNECT_SECONDS))
        except (OSError, TimeoutError) as error:
            reason = str(error) or "no answer"
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} within {CONNECT_SECONDS} s "
                f"({reason}); is `dask scheduler` running there, with the same protocol "
                "(tcp or tls)?") from None
        except Exception as error:  # Dask's own errors for a peer that is not Dask
            raise ClusterError(f"{address} is not a Dask scheduler ({type(error).__name__}: "
                               f"{error})") from None

    def close(self) -> None:
        for part in (getattr(self, "client", None), self._local):
            if part is not None:
                with contextlib.suppress(Exception):  # already gone: nothing to release
                    part.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def local_threads(self) -> int | None:
        """Cores each worker of a local cluster may use, so that they do not fight."""
        if self._local is None:
            return None
        return max(1, len(os.sched_getaffinity(0)) // max(1, self.workers()))

    def check_visible(self, files: Sequence[FoundFile]) -> None:
        """Every worker must read the files at the same paths as the client."""
        if not files:
            return
        step = max(1, len(files) // VISIBILITY_SAMPLE)
        sample = [f.path for f in files[::step][:VISIBILITY_SAMPLE]]
        for worker, missing in self.client.run(missing_paths, sample).items():
            if missing:
                raise ClusterError(
                    f"the worker {worker} cannot read {missing[0]} (and {len(missing) - 1} "
                    "more of a sample of the files): every worker must see the photos at "
                    "the same paths as this machine, e.g. the same network share mounted at "
                    "the same place")

    def tag(self, model: str, settings: RunSettings, todo: list[FoundFile]
            ) -> Iterator[tuple[FoundFile, ImageTags, int]]:
        """(file, result, images inferred for its chunk or 0) as chunks finish, in any
        order. Stopping early cancels what is left."""
        from dask.distributed import wait

        size = max(1, min(MAX_CHUNK, math.ceil(len(todo) / (max(1, self.workers())
                                                              * CHUNKS_PER_WORKER))))
        chunks = {self.client.submit(tag_chunk, model, settings, [f.path for f in chunk],
                                     pure=False):
                  chunk for chunk in (todo[i:i + size] for i in range(0, len(todo), size))}
        pending = set(chunks)
        try:
            while pending:
                finished, pending = wait(pending, timeout=STALL_SECONDS,
                                         return_when="FIRST_COMPLETED")
                for future in finished:
                    yield from self._results_of(future, chunks[future], model)
        except TimeoutError:
            raise ClusterError(f"no chunk of photos finished in {STALL_SECONDS // 60} minutes: "
                               "the cluster has lost its workers") from None
        finally:
            self.client.cancel(list(chunks))

    @staticmethod
    def _results_of(future: Any, chunk: list[FoundFile], model: str
                    ) -> Iterator[tuple[FoundFile, ImageTags, int]]:
        outcome = Cluster._outcome(future, model)
        for index, (found, result) in enumerate(zip(chunk, outcome.results, strict=True)):
            yield found, result, outcome.inferred if index == 0 else 0

    @staticmethod
    def _outcome(future: Any, model: str) -> ChunkResult:
        from dask.distributed import KilledWorker

        try:
            return future.result()  # type: ignore[no-any-return]
        except KilledWorker:
            raise ClusterError(
                "workers died again and again on the same chunk of files; they stay marked "
                "as in flight, and the next scan (on this machine or the cluster) checks "
                "them one by one to find the file that kills the decoder") from None
        except Exception as error:
            raise ClusterError(f"tagging with {model} failed on the cluster: "
                               f"{type(error).__name__}: {error}") from None
