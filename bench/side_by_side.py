"""Measure autotags against the baselines and the machine's bound, in one run.

    python bench/side_by_side.py [--model NAME] [--images 48] [--threads N]

Prints a Markdown table: images per second and ratios, all measured now on the same
images and model. The pipelines run interleaved in rounds (`--rounds`, default 3) and each
ratio is formed within a round, so a neighbour that comes and goes moves both sides of it;
the median and the range of the rounds are printed, with the share of the cores other
processes took meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autotags import load_catalogue, locations
from autotags.benchmark import BUSY_SHARE, CpuWatch
from autotags.models.catalogue import ModelSpec
from camera_photos import camera_photos
from pipelines import Bench, Rate, bound
from yolo11_shaped import build as build_yolo11_shaped


def machine() -> str:
    model_name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model_name}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def int8_rows(model: str, photos: list, threads: int | None, fp32_end_to_end: Rate,
              fp32_inference: Rate) -> list[str]:
    """Rows for the INT8 copy (`autotags models quantize`), when there is one."""
    if model not in load_catalogue().models:
        return []  # not a catalogue model: nothing to quantize
    if f"{model}-int8" not in load_catalogue().models:
        return [f"| INT8 copy | - | - | make it with `autotags models quantize {model}` |"]
    int8 = Bench(f"{model}-int8", photos, threads=threads)
    int8.autotags_end_to_end()  # warm-up
    end_to_end, inference = int8.autotags_end_to_end(), int8.inference_only()
    f32 = Bench(model, photos, threads=threads, precision="f32").inference_only()
    return [
        f"| autotags with the INT8 copy (scan into SQLite) | {end_to_end.per_second:.1f} | "
        f"{end_to_end.per_second / fp32_end_to_end.per_second:.2f}x the FP32 model | |",
        f"| inference only, INT8 copy | {inference.per_second:.1f} | "
        f"{inference.per_second / fp32_inference.per_second:.2f}x default, "
        f"{inference.per_second / f32.per_second:.2f}x f32 | default = bf16 where the CPU has "
        "it |",
    ]


def yolo11_shaped_spec() -> ModelSpec:
    """digiKam's YOLOv11-Nano entry running a YOLO11n-class network of our own making."""
    path = locations.cache_home() / "bench-models" / "yolo11-shaped.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_yolo11_shaped(path)
    return dataclasses.replace(load_catalogue().get("yolo11n"), name="yolo11-shaped",
                               source=None, local_file=path)


def one_round(bench: Bench) -> dict[str, Rate]:
    """Every pipeline once, one after another, under the same conditions."""
    rates = {"autotags": bench.autotags_end_to_end(), "naive": bench.naive(),
             "digikam": bench.digikam_style()}
    opencv = bench.digikam_opencv()
    if opencv is not None:
        rates["digikam_opencv"] = opencv
    return {**rates, "decode": bench.decode_only(), "inference": bench.inference_only()}


def ratio_cell(ratios: list[float]) -> str:
    """The median ratio, and the rounds' range when there are several."""
    middle = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{middle:.2f}x"
    return f"{middle:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def measure(model: str | ModelSpec, images: int, threads: int | None, rounds: int) -> list[str]:
    photos = camera_photos(locations.cache_home() / "bench-photos", images)
    bench = Bench(model, photos, threads=threads)
    model = bench.spec.name
    bench.autotags_end_to_end()  # warm-up: page cache, thread pools, compiled kernels
    watch = CpuWatch()
    measured = [one_round(bench) for _ in range(rounds)]
    busy = watch.others_share()

    def row(name: str, note: str = "") -> str:
        if name not in measured[0]:
            return "| digiKam-style, OpenCV DNN | - | - | needs opencv-python-headless<5 |"
        ratios = [r["autotags"].per_second / r[name].per_second for r in measured]
        median = statistics.median(r[name].per_second for r in measured)
        return f"| {measured[0][name].name} | {median:.1f} | {ratio_cell(ratios)} | {note} |"

    bounds = [bound(r["decode"], r["inference"]) for r in measured]
    to_bound = [r["autotags"].per_second / limit for r, limit in zip(measured, bounds,
                                                                     strict=True)]
    limit = statistics.median(bounds)
    autotags, inference = measured[0]["autotags"], measured[0]["inference"]
    return [
        f"Model `{model}` on {images} camera-like 4000x3000 JPEGs; {machine()}. Medians of "
        f"{rounds} interleaved rounds (the range in brackets); other processes took "
        f"{busy:.0%} of the cores meanwhile.",
        *([f"**Warning:** other processes took {busy:.0%} of the cores: measure again on a "
           "quiet machine."] if busy > BUSY_SHARE else []),
        "",
        "| pipeline | images/s | autotags is | note |",
        "|---|---:|---:|---|",
        row("autotags", "end to end, results stored"),
        row("naive"),
        row("digikam"),
        row("digikam_opencv"),
        row("decode", "stage bound"),
        row("inference", "stage bound"),
        f"| bound = 1/(1/decode + 1/inference) | {limit:.1f} | {ratio_cell(to_bound)} | |",
        *int8_rows(model, photos, threads, autotags, inference),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="catalogue model (repeatable); "
                        "default: ssd-mobilenet-v2")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; ratios are formed within each")
    parser.add_argument("--yolo11-shaped", action="store_true",
                        help="also measure a YOLO11n-class network (random weights, built here)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models: list[str | ModelSpec] = list(args.model or ([] if args.yolo11_shaped
                                                          else ["ssd-mobilenet-v2"]))
    if args.yolo11_shaped:
        models.append(yolo11_shaped_spec())
    for model in models:
        print("\n".join(measure(model, args.images, args.threads, args.rounds)) + "\n")


if __name__ == "__main__":
    main()
