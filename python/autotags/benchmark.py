"""`autotags bench`: how close a scan comes to what this machine can do.

Rates on the same images and models, measured in one run: end to end (a scan into a
throw-away tag database), decoding alone (the engine's decoder on all cores, one decode
for all the models) and each model's inference alone (every infer request busy). If
decoding and inference shared the cores perfectly, images would flow at the bound
1 / (1/decode + sum of 1/inference); the ratio of the end-to-end rate to the bound says
how much of the machine the pipeline uses.

A machine that does other things meanwhile (every NAS and laptop) moves each rate, so,
as pyperf and hyperfine do, the measurements run interleaved in rounds, the ratio is
formed within a round, and the report is the median round with the spread of all of
them; the CPU time other processes took meanwhile (from /proc/stat) is reported too, and
either one too large is said in a warning instead of a confident number.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import _engine
from .collection.scanning import scan
from .errors import SettingsError
from .tagging.results import ImageTags
from .tagging.tagger import Tagger

ROUNDS = 5
STEADY_SPREAD = 0.10     # rounds' ratios further apart than this: the machine was not steady
BUSY_SHARE = 0.10        # other processes took more of the cores than this meanwhile
OVER_THE_BOUND = 1.05    # a ratio above this needs its reason said


@dataclass(frozen=True)
class RoundRates:
    """One round: every rate measured one after another under the same conditions."""

    end_to_end: float
    decode_only: float
    inference_each: tuple[float, ...]   # per model

    @property
    def bound(self) -> float:
        return 1 / (1 / self.decode_only + sum(1 / rate for rate in self.inference_each))

    @property
    def ratio(self) -> float:
        return self.end_to_end / self.bound


@dataclass(frozen=True)
class BenchReport:
    """The median round's rates (so that its ratio is end to end over its bound), the
    spread of every round's ratio, and how busy the machine was otherwise."""

    models: tuple[str, ...]
    images: int
    rounds: tuple[RoundRates, ...]
    others_cpu_share: float   # of the cores this process may use, taken by other processes
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return ",".join(self.models)

    @property
    def median_round(self) -> RoundRates:
        ordered = sorted(self.rounds, key=lambda r: r.ratio)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def end_to_end(self) -> float:
        return self.median_round.end_to_end

    @property
    def decode_only(self) -> float:
        return self.median_round.decode_only

    @property
    def inference_each(self) -> tuple[float, ...]:
        return self.median_round.inference_each

    @property
    def inference_only(self) -> float:
        """Images per second through every model's network, one after another."""
        return 1 / sum(1 / rate for rate in self.inference_each)

    @property
    def bound(self) -> float:
        return self.median_round.bound

    @property
    def ratio_to_bound(self) -> float:
        return self.median_round.ratio

    @property
    def ratio_spread(self) -> float:
        ratios = [r.ratio for r in self.rounds]
        return max(ratios) - min(ratios)


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("inf")


class CpuWatch:
    """CPU time spent on this process's cores by everyone, and by this process."""

    def __init__(self) -> None:
        self.cores = sorted(os.sched_getaffinity(0))
        self.started = time.monotonic()
        self.busy, self.own = self._busy(), self._own()

    def others_share(self) -> float:
        """The share of the cores' time that other processes took since the start."""
        elapsed = time.monotonic() - self.started
        if elapsed <= 0:
            return 0.0
        others = (self._busy() - self.busy) - (self._own() - self.own)
        return max(0.0, others / (elapsed * len(self.cores)))

    def _busy(self) -> float:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                lines = {parts[0]: parts[1:] for parts in (line.split() for line in stat)}
        except OSError:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        busy = 0
        for core in self.cores:
            # user nice system idle iowait irq softirq steal ...: all but idle and iowait
            values = [int(v) for v in lines.get(f"cpu{core}", [])[:8]]
            busy += sum(values) - sum(values[3:5]) if values else 0
        return busy / tick

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system


def _decode_once(taggers: Sequence[Tagger], path: str) -> None:
    fits = [tagger.fit for tagger in taggers]
    _engine.load_image_each(os.fsencode(path), fits, taggers[0].settings.max_pixels)


def _measure_round(paths: list[str], taggers: Sequence[Tagger], workers: int) -> RoundRates:
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        scan(paths, db=Path(scratch) / "bench.sqlite3", model=list(taggers), mode="all")
        end_to_end = _rate(len(paths), time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # the engine's decoder releases the GIL
        list(pool.map(lambda path: _decode_once(taggers, path), paths))
    decode_only = _rate(len(paths), time.perf_counter() - start)
    inference = tuple(t.measure_inference_rate(paths[0], max(64, len(paths))) for t in taggers)
    return RoundRates(end_to_end, decode_only, inference)


def run_benchmark(paths: list[str], taggers: Tagger | Sequence[Tagger], *,
                  threads: int | None = None, rounds: int = ROUNDS) -> BenchReport:
    models = [taggers] if isinstance(taggers, Tagger) else list(taggers)
    if not paths:
        raise SettingsError("no images to measure")
    if not models or rounds < 1:
        raise SettingsError("a benchmark needs a model and at least one round")
    for tagger in models:
        list(tagger.tag(paths[: min(4, len(paths))]))  # warm-up: caches and thread pools
    workers = threads or len(os.sched_getaffinity(0))
    watch = CpuWatch()
    measured = tuple(_measure_round(paths, models, workers) for _ in range(rounds))
    report = BenchReport(tuple(t.model_name for t in models), len(paths), measured,
                         watch.others_share())
    report.warnings.extend(_doubts(report))
    if any(tagger.spec.kind == "text" for tagger in models):
        report.warnings.append(
            "a text model's inference here is its detector alone: reading the lines it finds "
            "(cutting out, orientation, recognition) is part of end to end only, so on photos "
            "with text end to end stays well below the bound")
    return report


def _doubts(report: BenchReport) -> list[str]:
    doubts = []
    if report.others_cpu_share > BUSY_SHARE:
        doubts.append(f"other processes took {report.others_cpu_share:.0%} of the cores during "
                      "the run: the rates are lower than this machine can do, and the ratio "
                      "less certain; measure again when it is quiet")
    if len(report.rounds) > 1 and report.ratio_spread > STEADY_SPREAD:
        ratios = sorted(r.ratio for r in report.rounds)
        doubts.append(f"the rounds' ratios differ by {report.ratio_spread:.2f} ({ratios[0]:.2f} "
                      f"to {ratios[-1]:.2f}): the machine was not steady, so the median is "
                      "only a rough figure")
    if report.ratio_to_bound > OVER_THE_BOUND:
        doubts.append("end to end came out above the bound: decoding and inference measured "
                      "apart ran slower than together (the CPU's clock or caches, or a "
                      "neighbour that came and went), so the bound is no ceiling here")
    return doubts


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
    other_report = run_benchmark(paths, other, threads=threads, rounds=len(report.rounds))
    return Comparison(
        other.model_name,
        other_report.inference_only / report.inference_only,
        other_report.end_to_end / report.end_to_end,
        tag_agreement(list(tagger.tag(paths)), list(other.tag(paths))))
