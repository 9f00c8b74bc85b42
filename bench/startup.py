"""Start-up: time to the first result of `autotags tag PHOTO`, against the time Python
takes to import OpenVINO and create its Core, measured in the same run.

    .venv/bin/python bench/startup.py [--model NAME ...] [--runs 5]

For each model (installed first, outside the timings):
- first ever: a private cache holding the installed model but nothing compiled, so the
  model is read, prepared, saved and compiled;
- warm: the same cache afterwards, where the prepared model is compiled by path and
  OpenVINO's compiled-model cache serves it.
Each figure is the median of the runs; the ratio is warm / OpenVINO's own start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autotags import install, load_catalogue, locations

PHOTO = "/usr/share/darknet/data/dog.jpg"
OPENVINO_START = [sys.executable, "-c", "import openvino as ov; ov.Core()"]


def seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def median_of(runs: int, command: list[str], env: dict[str, str],
              before_each: object = None) -> float:
    times = []
    for _ in range(runs):
        if callable(before_each):
            before_each()
        times.append(seconds(command, env))
    return statistics.median(times)


def measure(model: str, runs: int) -> tuple[float, float, float]:
    """(OpenVINO start, first ever, warm) in seconds."""
    spec = load_catalogue().get(model)
    installed = install.ensure_installed(spec).parent
    tag = [sys.executable, "-m", "autotags.cli", "-q", "tag", "--model", model, PHOTO]
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        shutil.copytree(installed, home / "models" / model)
        env = {**os.environ, "AUTOTAGS_HOME": str(home)}

        def forget_compiled() -> None:
            shutil.rmtree(home / "compiled", ignore_errors=True)

        baseline = median_of(runs, OPENVINO_START, env)
        first = median_of(runs, tag, env, forget_compiled)
        seconds(tag, env)  # leaves the warm cache
        warm = median_of(runs, tag, env)
        baseline = statistics.median([baseline, median_of(runs, OPENVINO_START, env)])
    return baseline, first, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model to measure (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    models = args.model or [load_catalogue().default_models[0], "yolov3-tiny"]
    print(f"cache of installed models: {locations.models_dir()}; {os.cpu_count()} cores\n")
    print("| model | OpenVINO import + Core | first ever | warm | warm / OpenVINO |")
    print("|---|---|---|---|---|")
    for model in models:
        baseline, first, warm = measure(model, args.runs)
        print(f"| {model} | {baseline:.2f} s | {first:.2f} s | {warm:.2f} s | "
              f"{warm / baseline:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
