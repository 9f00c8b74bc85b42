"""autotags' text reader against RapidOCR's own pipeline, whole processes, in one run.

    python bench/text_reading.py [--copies 4] [--plain 24] [--rounds 3]

RapidOCR (`rapidocr-onnxruntime==1.4.4`, the same PP-OCRv4 files, on onnxruntime) is
installed into a virtual environment of its own in the per-user cache, for this
benchmark only. Both read the same folders: photos with text (opencv-doc's two pages
and real photos with text drawn by libvips, several copies of each) and 12-MP
camera-like photos without text. Each round runs `autotags scan --model pp-ocrv4` into
a new database and a RapidOCR process (cv2.imread + RapidOCR, its documented use) over
each folder, interleaved; the ratio of their images/s is formed within a round and the
median printed with its range. Then the words: the share of the words drawn or printed
on the photos that each one found as words of their own (as a search finds them), and
the share of the words one read that the other read too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from autotags import TagStore, locations
from camera_photos import camera_photos
from helpers.text_photos import DRAWN, OPENCV_PAGE_TEXT, OPENCV_PAGES, draw_text, recall, words

RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
RAPIDOCR_RUN = """
import json, sys
import cv2
from rapidocr_onnxruntime import RapidOCR
engine = RapidOCR()
read = {}
for path in sys.argv[1:]:
    result, _ = engine(cv2.imread(path))
    read[path] = [text for _, text, _ in (result or [])]
print(json.dumps(read))
"""
def rapidocr_python() -> Path:
    """RapidOCR in a virtual environment of its own, made once."""
    home = locations.cache_home() / "bench-rapidocr"
    python = home / "bin" / "python"
    if not python.exists():
        venv.create(home, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", RAPIDOCR], check=True)
    return python


def text_photos(folder: Path, copies: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    vips = shutil.which("vips")
    if not vips:
        raise SystemExit("the vips command (Debian libvips-tools) is needed")
    made = [draw_text(photo, folder / f"{name}.jpg", lines, vips, size=size)
            for name, (photo, size, lines) in DRAWN.items()]
    for name, page in OPENCV_PAGES.items():
        made.append(Path(shutil.copy(page, folder / f"{name}.png")))
    for copy in range(1, copies):
        for path in list(made[: len(DRAWN) + len(OPENCV_PAGES)]):
            made.append(Path(shutil.copy(path, folder / f"{path.stem}-{copy}{path.suffix}")))
    return sorted(made)


def run_autotags(folder: Path, scratch: Path) -> tuple[float, dict[str, list[str]]]:
    db = scratch / f"tags-{time.monotonic_ns()}.sqlite3"
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autotags.cli", "scan", str(folder), "--db", str(db),
                    "--model", "pp-ocrv4"], check=True, capture_output=True)
    seconds = time.perf_counter() - begin
    with TagStore(db, create=False) as store:
        read = {str(p): [line.text for line in store.text_of(p)] for p in folder.iterdir()}
    db.unlink()
    return seconds, read


def run_rapidocr(python: Path, paths: list[Path]) -> tuple[float, dict[str, list[str]]]:
    begin = time.perf_counter()
    done = subprocess.run([str(python), "-c", RAPIDOCR_RUN, *map(str, paths)], check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - begin, json.loads(done.stdout)


def text_there(path: Path) -> str | None:
    """The words drawn or printed on one of the photos `text_photos` made, if it is one."""
    name = path.stem.rsplit("-", 1)[0] if path.stem[-1].isdigit() else path.stem
    if name in OPENCV_PAGES:
        return OPENCV_PAGE_TEXT
    return " ".join(line.text for line in DRAWN[name][2]) if name in DRAWN else None


def found(read: dict[str, list[str]]) -> str:
    """The share of the words on the photos that `read` has as words of their own."""
    wanted = {path: text for path in read if (text := text_there(Path(path))) is not None}
    if not wanted:
        return "-"
    total = sum(len(words(text)) for text in wanted.values())
    hits = sum(recall(text, read[path]) * len(words(text)) for path, text in wanted.items())
    return f"{hits / total:.0%}"


def agreement(first: dict[str, list[str]], second: dict[str, list[str]]) -> str:
    """The share of the words `first` read that `second` read too, image by image."""
    shared = total = 0
    for path, lines in first.items():
        mine = words(" ".join(lines))
        theirs = set(words(" ".join(second.get(path, []))))
        shared += sum(word in theirs for word in mine)
        total += len(mine)
    return f"{shared / total:.0%} of {total}" if total else "none read"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of each photo with text")
    parser.add_argument("--plain", type=int, default=24, help="12-MP photos without text")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = rapidocr_python()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        sets = {"photos with text": text_photos(scratch / "text", args.copies),
                "12-MP photos without text": camera_photos(scratch / "plain", args.plain)}
        print("| photos | autotags images/s | RapidOCR images/s | autotags / RapidOCR "
              "(median, range) | words on the photos found by autotags | by RapidOCR | "
              "words RapidOCR read that autotags read too | and the other way |")
        print("|---|---|---|---|---|---|---|---|")
        for name, paths in sets.items():
            folder = paths[0].parent
            run_autotags(folder, scratch)  # warm-up: the compiled-model cache
            rounds = []
            for _ in range(args.rounds):
                ours, our_words = run_autotags(folder, scratch)
                theirs, their_words = run_rapidocr(python, sorted(folder.iterdir()))
                rounds.append((len(paths) / ours, len(paths) / theirs))
            ratios = sorted(ours / theirs for ours, theirs in rounds)
            print(f"| {name} ({len(paths)}) | {statistics.median(r[0] for r in rounds):.2f} | "
                  f"{statistics.median(r[1] for r in rounds):.2f} | "
                  f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}) | "
                  f"{found(our_words)} | {found(their_words)} | "
                  f"{agreement(their_words, our_words)} | "
                  f"{agreement(our_words, their_words)} |")


if __name__ == "__main__":
    main()
