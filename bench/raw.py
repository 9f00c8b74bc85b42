"""Camera RAW decoding against a 12-MP JPEG, measured in the same run: decoding to the
default model's input, the part of tagging that RAW files change.

    .venv/bin/python bench/raw.py [--runs 15]

- JPEG: a 12-MP photo (darknet's dog photo enlarged by libvips, quality 90);
- CR2 preview: Debian rawtran-doc's Canon EOS 30D file (8 MP sensor), through its 1728x1152
  embedded JPEG;
- DNG preview / DNG raw: a 12-MP DNG written by the tests' writer (tests/helpers/camera_raw.py),
  with a full-size preview, and with a preview too small, which makes LibRaw demosaic the
  sensor data at half size.
Each figure is the median of the runs; the ratio is the JPEG's time over the file's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from autotags import Tagger

# The tests' DNG writer, so that the benchmark measures the files the tests check.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.camera_raw import write_dng

DOG = Path("/usr/share/darknet/data/dog.jpg")
CR2 = Path("/usr/share/doc/rawtran/IMG_5952.CR2")


def decode_seconds(tagger: Tagger, path: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        tagger.decode(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tagger = Tagger()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        jpeg = folder / "12mp.jpg"
        subprocess.run(["vips", "resize", DOG, f"{jpeg}[Q=90]", "5.2"], check=True)
        with Image.open(jpeg) as big:
            picture = big.resize((big.width // 2, big.height // 2))  # sensor = 2x this
        files = {
            "JPEG, 12 MP": jpeg,
            "CR2 through its preview (8 MP sensor)": CR2,
            "DNG through its preview (12 MP sensor)": write_dng(folder / "preview.dng", picture),
            "DNG through LibRaw, half size (12 MP sensor)": write_dng(
                folder / "raw.dng", picture, preview_size=(160, 120)),
        }
        seconds = {name: decode_seconds(tagger, path, args.runs) for name, path in files.items()}
    base = seconds["JPEG, 12 MP"]
    print(f"{'file':48} {'decode':>9} {'JPEG time / this':>17}")
    for name, value in seconds.items():
        print(f"{name:48} {value * 1000:7.1f} ms {base / value:16.2f}x")


if __name__ == "__main__":
    main()
