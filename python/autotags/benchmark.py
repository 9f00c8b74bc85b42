"""`autotags bench`: how close a scan comes to what this machine can do.

Three rates on the same images and model, measured in one run: end to end (a scan into
a throw-away tag database), decoding alone (the engine's decoder on all cores) and
inference alone (every infer request busy). If decoding and inference shared the cores
perfectly, images would flow at the bound 1 / (1/decode + 1/inference); the ratio of
the end-to-end rate to the bound says how much of the machine the pipeline uses.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .collection.scanning import scan
from .errors import SettingsError
from .tagging.results import ImageTags
from .tagging.tagger import Tagger


@dataclass(frozen=True)
class BenchReport:
    model: str
    images: int
    end_to_end: float      # images per second, results stored
    decode_only: float
    inference_only: float

    @property
    def bound(self) -> float:
        return 1 / (1 / self.decode_only + 1 / self.inference_only)

    @property
    def ratio_to_bound(self) -> float:
        return self.end_to_end / self.bound


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("inf")


def run_benchmark(paths: list[str], tagger: Tagger, *, threads: int | None = None) -> BenchReport:
    if not paths:
        raise SettingsError("no images to measure")
    list(tagger.tag(paths[: min(4, len(paths))]))  # warm-up: caches and thread pools

    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        scan(paths, db=Path(scratch) / "bench.sqlite3", model=tagger, mode="all")
        end_to_end = _rate(len(paths), time.perf_counter() - start)

    workers = threads or os.cpu_count() or 1
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(tagger.decode, paths))  # the engine's decoder releases the GIL
    decode_only = _rate(len(paths), time.perf_counter() - start)

    inference_only = tagger.measure_inference_rate(paths[0], max(64, len(paths)))
    return BenchReport(tagger.model_name, len(paths), end_to_end, decode_only, inference_only)


@dataclass(frozen=True)
class Comparison:
    """Another model (an INT8 copy, say) on the same images, measured in the same run."""

    model: str
    inference_speedup: float   # its inference-only rate / the first model's
    end_to_end_speedup: float
    agreement: float           # shared (image, label) pairs / all pairs either found


def tag_agreement(first: list[ImageTags], second: list[ImageTags]) -> float:
    """How far two models' tags agree: shared (image, label) pairs over all pairs."""
    pairs = [{(r.path, label) for r in results for label in r.labels}
             for results in (first, second)]
    union = pairs[0] | pairs[1]
    return len(pairs[0] & pairs[1]) / len(union) if union else 1.0


def compare(paths: list[str], report: BenchReport, tagger: Tagger, other: Tagger, *,
            threads: int | None = None) -> Comparison:
    other_report = run_benchmark(paths, other, threads=threads)
    return Comparison(
        other.model_name,
        other_report.inference_only / report.inference_only,
        other_report.end_to_end / report.end_to_end,
        tag_agreement(list(tagger.tag(paths)), list(other.tag(paths))))
