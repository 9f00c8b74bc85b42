"""How many cluster workers one client can feed: the client's two jobs measured on this
machine, planning (finding files and deciding what needs tagging) and storing results.

    .venv/bin/python bench/cluster_scale.py [--files 20000]

The files are small stand-ins (the client only stats them and reads 64 KiB of each for
the fingerprint, as it would a photo's head and tail); the results are what a worker
returns for a photo with a detector: three tags with one box each. Both go through the
scan's own code (discovery, the plan, the batch writer into a real SQLite store).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from autotags.collection.batches import BatchWriter
from autotags.collection.discovery import FoundFile, discover
from autotags.collection.planning import ModelPlan, files_to_tag, resolve_models
from autotags.collection.reports import ModelCounts, ScanReport
from autotags.collection.store import TagStore
from autotags.models.runtime import RunSettings
from autotags.tagging.results import Box, ImageTags, Tag

MODEL = "ssd-mobilenet-v2"
PHOTO_BYTES = 128 * 1024  # head and tail of the fingerprint both read


def make_files(folder: Path, count: int) -> None:
    block = os.urandom(PHOTO_BYTES)
    for index in range(count):
        sub = folder / f"{index // 1000:04d}"
        sub.mkdir(exist_ok=True)
        (sub / f"photo-{index:07d}.jpg").write_bytes(block)


def store_synthetic_results(store: TagStore, plan: ModelPlan, todo: list[FoundFile],
                            report: ScanReport) -> None:
    writer = BatchWriter(store, plan, report, set())
    for found in todo:
        tags = [Tag(label, 0.9, Box(10, 20, 300, 400)) for label in ("dog", "car", "bicycle")]
        writer.add(found, ImageTags(found.path, 4000, 3000, MODEL, tags))
    writer.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args()
    plan = resolve_models(MODEL, RunSettings(), "replace")[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        make_files(folder, args.files)
        with TagStore(Path(scratch) / "tags.sqlite3") as store:
            timings = {}
            for label in ("plan, new collection", "store results", "plan, all up to date"):
                report = ScanReport(models={MODEL: ModelCounts()})
                start = time.perf_counter()
                found = discover([folder])
                todo = files_to_tag(store, plan, found.files, "new", False, report)
                if label == "store results":
                    start = time.perf_counter()  # the plan is measured apart
                    store_synthetic_results(store, plan, todo, report)
                timings[label] = args.files / (time.perf_counter() - start)
    for label, rate in timings.items():
        print(f"{label:24} {rate:10.0f} files/s")


if __name__ == "__main__":
    main()
