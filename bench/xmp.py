"""The cost of writing XMP: sidecars for N images, against scanning the same images,
both measured in the same run.

    .venv/bin/python bench/xmp.py [--images 1000] [--model ssd-mobilenet-v2]

The images are N copies of a real 12-MP-class photo (darknet's sample photos, enlarged
by libvips) in a temporary folder. The scan is timed without XMP; then `XmpWriter`
writes every image's sidecar from the store (the first write, the expensive case: each
sidecar is created), then once more with nothing changed (what every later scan does).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from autotags import TagStore, XmpWriter, scan

PHOTOS = ("dog", "horses", "person", "giraffe", "eagle", "kite")
DARKNET = Path("/usr/share/darknet/data")


def make_collection(folder: Path, count: int) -> list[str]:
    """`count` photos of about 12 MP (4000x3000-class), copies of six real ones."""
    sources = []
    for name in PHOTOS:
        large = folder / f"source-{name}.jpg"
        subprocess.run(["vips", "resize", DARKNET / f"{name}.jpg", f"{large}[Q=90]", "5.2"],
                       check=True)
        sources.append(large)
    images = folder / "images"
    images.mkdir()
    paths = []
    for index in range(count):
        path = images / f"photo-{index:05d}.jpg"
        shutil.copy(sources[index % len(sources)], path)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--model", default="ssd-mobilenet-v2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = make_collection(folder, args.images)
        db = folder / "tags.sqlite3"
        report = scan(folder / "images", db=db, model=args.model)
        scan_seconds = report.elapsed
        timings = {}
        with TagStore(db) as store:
            for label in ("first write", "nothing changed"):
                writer = XmpWriter("sidecar")
                start = time.perf_counter()
                if label == "first write":
                    writer.write_all(store, paths)
                else:
                    writer.write(store, paths)
                timings[label] = (time.perf_counter() - start, writer.report.written)
    print(f"scan of {args.images} images with {args.model}: {scan_seconds:.1f} s "
          f"({report.images_per_second:.1f} images/s)")
    for label, (seconds, written) in timings.items():
        print(f"xmp sidecars, {label}: {seconds:.2f} s, {written} written, "
              f"{seconds / scan_seconds:.1%} of the scan")


if __name__ == "__main__":
    main()
