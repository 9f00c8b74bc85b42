"""What one decode for several models saves: a whole-process two-model scan against the
two one-model scans of the same photos, interleaved in rounds on the same machine.

    python bench/shared_decode.py [--models ssd-mobilenet-v2,efficientnet-lite3] [--rounds 5]

Each round runs `autotags scan --mode all` three times into fresh databases: the first
model alone, the second alone, both together. The ratio together / (first + second) is
formed within the round; the median and the spread of the rounds are reported, with the
share of the cores other processes took meanwhile. The tags the two-model scan stores are
compared with those of the two one-model scans.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autotags import TagStore
from autotags.benchmark import CpuWatch
from camera_photos import camera_photos


def timed_scan(folder: Path, db: Path, models: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autotags.cli", "-q", "scan", str(folder), "--db",
                    str(db), "--model", models, "--mode", "all", "--json"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def stored(db: Path, photos: list[Path]) -> dict[tuple[str, str, str], float]:
    with TagStore(db, read_only=True) as store:
        return {(str(p), t.path, t.source): t.confidence or 0.0
                for p in photos for t in store.tags_of(p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ssd-mobilenet-v2,efficientnet-lite3")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    first, second = args.models.split(",")
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autotags" / \
        "bench-photos"
    photos = camera_photos(folder, 48)
    ratios = []
    watch = CpuWatch()
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(args.rounds):
            db = {name: Path(scratch) / f"{name}-{round_number}.sqlite3"
                  for name in ("first", "second", "both")}
            alone = timed_scan(folder, db["first"], first) + timed_scan(folder, db["second"],
                                                                        second)
            together = timed_scan(folder, db["both"], args.models)
            ratios.append(together / alone)
        separate = {**stored(db["first"], photos), **stored(db["second"], photos)}
        shared = stored(db["both"], photos)
    busy = watch.others_share()
    moved = [abs(shared[k] - separate[k]) for k in shared.keys() & separate.keys()]
    print(f"{len(photos)} photos of 12 MP, {len(os.sched_getaffinity(0))} cores, "
          f"{args.rounds} rounds, other processes took {busy:.0%} of the cores")
    print(f"  {args.models} together / the two alone: median {statistics.median(ratios):.2f} "
          f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"  tags only alone: {len(separate.keys() - shared.keys())}, only together: "
          f"{len(shared.keys() - separate.keys())}, of {len(separate)}; scores moved at most "
          f"{max(moved, default=0):.3f}, mean {statistics.fmean(moved) if moved else 0:.4f}")


if __name__ == "__main__":
    main()
