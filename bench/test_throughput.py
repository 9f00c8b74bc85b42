"""pytest-benchmark view of the side-by-side comparison (run: pytest bench).

Each pipeline runs on the same photos and model in one session; compare the OPS
column (runs per second) or `images_per_second` in extra_info, not absolute times.
"""

from __future__ import annotations

import pytest

from pipelines import Bench, Rate


def record(benchmark, measure) -> None:  # type: ignore[no-untyped-def]
    rates: list[Rate] = []
    benchmark.pedantic(lambda: rates.append(measure()), rounds=3, warmup_rounds=1)
    benchmark.extra_info["images_per_second"] = round(max(r.per_second for r in rates), 2)


@pytest.mark.benchmark(group="pipeline")
def test_autotags_end_to_end(benchmark, bench: Bench) -> None:
    record(benchmark, bench.autotags_end_to_end)


@pytest.mark.benchmark(group="pipeline")
def test_naive_baseline(benchmark, bench: Bench) -> None:
    record(benchmark, bench.naive)


@pytest.mark.benchmark(group="pipeline")
def test_digikam_style_baseline(benchmark, bench: Bench) -> None:
    record(benchmark, bench.digikam_style)


@pytest.mark.benchmark(group="stages")
def test_decode_only(benchmark, bench: Bench) -> None:
    record(benchmark, bench.decode_only)


@pytest.mark.benchmark(group="stages")
def test_inference_only(benchmark, bench: Bench) -> None:
    record(benchmark, bench.inference_only)
