"""How autotags behaves as collections grow.

    python bench/scale.py [--model NAME]

- peak resident memory of `autotags scan` over 200 and over 2,000 images (the decode
  queue is bounded, so memory should stay flat);
- files per second of a `--mode new` rescan of an unchanged tree of 10,000 files.

The 10,000-file tree is recorded as scanned by writing the same rows a scan writes
(running the network over 10,000 images first would only make this take an hour);
the rescan itself is the real command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autotags import scan
from autotags.collection.store import FileState, NewTag, TagStore
from camera_photos import source_photos


def photo_tree(root: Path, count: int) -> Path:
    """`count` real photos (hard links to the sample photos) in folders of 100."""
    sources = [p for p in source_photos() if p.suffix == ".jpg"]
    for index in range(count):
        folder = root / f"roll{index // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        source = sources[index % len(sources)]
        try:
            os.link(source, folder / f"IMG_{index:05d}.jpg")
        except OSError:
            shutil.copy(source, folder / f"IMG_{index:05d}.jpg")
    return root


def peak_memory_mb(images: int, model: str, scratch: Path) -> tuple[float, float]:
    """(peak resident MB, seconds) of a scan subprocess over `images` photos."""
    tree = photo_tree(scratch / f"tree{images}", images)
    command = [sys.executable, "-m", "autotags.cli", "-q", "scan", str(tree), "--db",
               str(scratch / f"mem{images}.sqlite3"), "--model", model, "--json"]
    start = time.perf_counter()
    # A fresh interpreter per measurement: RUSAGE_CHILDREN keeps the largest child.
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL); print(resource.getrusage("
             "resource.RUSAGE_CHILDREN).ru_maxrss)")
    output = subprocess.run([sys.executable, "-c", probe, *command], check=True,
                            capture_output=True, text=True).stdout
    return int(output.strip()) / 1024, time.perf_counter() - start


def rescan_rate(files: int, model: str, scratch: Path) -> float:
    tree = photo_tree(scratch / "rescan", files)
    database = scratch / "rescan.sqlite3"
    settings = {"accuracy": 7, "threshold": 0.6, "policy": "replace"}
    with TagStore(database) as store, store.transaction():
        for path in sorted(tree.rglob("*.jpg")):
            info = path.stat()
            store.record_scan(path, model, FileState(info.st_size, info.st_mtime_ns), settings,
                              width=640, height=480, tags=[NewTag("dog", 0.9)])
    start = time.perf_counter()
    report = scan([tree], db=database, model=model, mode="new")
    seconds = time.perf_counter() - start
    assert report.inferred == 0 and report.skipped == files, report
    return files / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ssd-mobilenet-v2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        small, small_seconds = peak_memory_mb(200, args.model, Path(scratch))
        large, large_seconds = peak_memory_mb(2000, args.model, Path(scratch))
        rate = rescan_rate(10_000, args.model, Path(scratch))
    print(f"Model `{args.model}`, {os.cpu_count()} cores.\n")
    print("| measurement | value |\n|---|---:|")
    print(f"| peak memory, scan of 200 images | {small:.0f} MB ({small_seconds:.0f} s) |")
    print(f"| peak memory, scan of 2,000 images | {large:.0f} MB ({large_seconds:.0f} s) |")
    print(f"| 2,000 / 200 | {large / small:.2f}x |")
    print(f"| `--mode new` rescan of 10,000 unchanged files | {rate:,.0f} files/s |")


if __name__ == "__main__":
    main()
