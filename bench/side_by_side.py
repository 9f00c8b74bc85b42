"""Measure autotags against the baselines and the machine's bound, in one run.

    python bench/side_by_side.py [--model NAME] [--images 48] [--threads N]

Prints a Markdown table: images per second and ratios, all measured now on the same
images and model, so the ratios hold even on a busy machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autotags import load_catalogue, locations
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


def measure(model: str | ModelSpec, images: int, threads: int | None) -> list[str]:
    photos = camera_photos(locations.cache_home() / "bench-photos", images)
    bench = Bench(model, photos, threads=threads)
    model = bench.spec.name
    bench.autotags_end_to_end()  # warm-up: page cache, thread pools, compiled kernels
    autotags = bench.autotags_end_to_end()
    naive, digikam = bench.naive(), bench.digikam_style()
    digikam_opencv = bench.digikam_opencv()
    decode, inference = bench.decode_only(), bench.inference_only()
    limit = bound(decode, inference)

    def row(rate: Rate, note: str = "") -> str:
        return (f"| {rate.name} | {rate.per_second:.1f} | "
                f"{autotags.per_second / rate.per_second:.2f}x | {note} |")
    return [
        f"Model `{model}` on {images} camera-like 4000x3000 JPEGs; {machine()}.",
        "",
        "| pipeline | images/s | autotags is | note |",
        "|---|---:|---:|---|",
        row(autotags, "end to end, results stored"),
        row(naive),
        row(digikam),
        row(digikam_opencv) if digikam_opencv else
        "| digiKam-style, OpenCV DNN | - | - | needs opencv-python-headless<5 |",
        row(decode, "stage bound"),
        row(inference, "stage bound"),
        f"| bound = 1/(1/decode + 1/inference) | {limit:.1f} | "
        f"{autotags.per_second / limit:.2f}x | |",
        *int8_rows(model, photos, threads, autotags, inference),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="catalogue model (repeatable); "
                        "default: ssd-mobilenet-v2")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--yolo11-shaped", action="store_true",
                        help="also measure a YOLO11n-class network (random weights, built here)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models: list[str | ModelSpec] = list(args.model or ([] if args.yolo11_shaped
                                                          else ["ssd-mobilenet-v2"]))
    if args.yolo11_shaped:
        models.append(yolo11_shaped_spec())
    for model in models:
        print("\n".join(measure(model, args.images, args.threads)) + "\n")


if __name__ == "__main__":
    main()
