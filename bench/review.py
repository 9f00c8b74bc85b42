"""How fast the review page answers on a large store, and how fast it makes thumbnails.

    python bench/review.py [--images 5000]

A store of `--images` photos (hard links to 48 camera-like 12-MP JPEGs, each recorded with
three machine tags and their boxes, as a scan writes them) is served by a real
`autotags serve`; the pages are fetched over HTTP on 127.0.0.1 as a browser fetches them.
Thumbnails are made cold (empty cache) by as many parallel requests as there are cores,
and compared with the engine decoding the same photos to the same size on every core in
the same run: their ratio is what the page adds to decoding (JPEG encoding, HTTP).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from autotags import _engine
from autotags.collection.store import FileState, NewTag, TagStore
from autotags.review.renditions import THUMBNAIL_SIDE, fitted_size
from camera_photos import camera_photos
from helpers.review_server import request, review_server

LABELS = ("dog", "cat", "person", "car", "bicycle", "bird", "boat", "chair", "cup", "tree")
WIDTH, HEIGHT = 4000, 3000


def make_store(scratch: Path, count: int) -> tuple[Path, list[Path]]:
    sources = camera_photos(scratch / "camera", 48)
    db = scratch / "tags.sqlite3"
    rng = random.Random(7)
    paths = []
    with TagStore(db) as store, store.transaction():
        for index in range(count):
            folder = scratch / "photos" / f"roll{index // 500:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"IMG_{index:05d}.jpg"
            os.link(sources[index % len(sources)], path)
            info = path.stat()
            tags = [NewTag(label, rng.uniform(0.3, 0.99), 1, None,
                           ((100.0, 200.0, 1500.0, 2500.0, 0.9),))
                    for label in rng.sample(LABELS, 3)]
            store.record_scan(path, "ssd-mobilenet-v2", FileState(info.st_size, info.st_mtime_ns),
                              {"accuracy": 7}, width=WIDTH, height=HEIGHT, tags=tags)
            paths.append(path)
    return db, sources


def median_seconds(url: str, path: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        status, _, _ = request(url, path)
        times.append(time.perf_counter() - start)
        assert status == 200, (path, status)
    return statistics.median(times)


def thumbnails_per_second(url: str, ids: list[int]) -> float:
    cores = len(os.sched_getaffinity(0))
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        answers = list(pool.map(lambda i: request(url, f"/image/{i}/thumbnail"), ids))
    seconds = time.perf_counter() - start
    assert all(a[1]["content-type"] == "image/jpeg" for a in answers)
    return len(ids) / seconds


def decodes_per_second(paths: list[Path]) -> float:
    fit = _engine.InputFit()
    fit.width, fit.height = fitted_size(WIDTH, HEIGHT, THUMBNAIL_SIDE)
    fit.mode = _engine.ResizeMode.stretch
    cores = len(os.sched_getaffinity(0))
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(lambda p: _engine.load_image(os.fsencode(p), fit), paths))
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        os.environ["AUTOTAGS_HOME"] = str(scratch / "home")  # a cold thumbnail cache
        db, sources = make_store(scratch, args.images)
        with TagStore(db, read_only=True) as store:
            dogs = store.find_images("dog")
        first_ids = [m.image.id for m in store_sample(db, len(sources))]
        with review_server(db) as url:
            request(url, "/")  # first request: templates compiled
            home = median_seconds(url, "/", 10)
            results = median_seconds(url, "/results?q=dog", 10)
            photo = median_seconds(url, f"/image/{dogs[0].image.id}", 10)
            decode_rate = decodes_per_second(sources)
            thumbnail_rate = thumbnails_per_second(url, first_ids)
    print(f"{args.images} images, {len(dogs)} tagged dog, {os.cpu_count()} cores")
    print(f"  home page (tag tree, scans)        {home * 1000:7.1f} ms")
    print(f"  results page (100 of {len(dogs)})        {results * 1000:7.1f} ms")
    print(f"  photo page                         {photo * 1000:7.1f} ms")
    print(f"  thumbnails, cold cache             {thumbnail_rate:7.1f} /s")
    print(f"  engine decode to the same size     {decode_rate:7.1f} /s")
    print(f"  thumbnails / decode                {thumbnail_rate / decode_rate:7.2f}")


def store_sample(db: Path, count: int) -> list:  # type: ignore[type-arg]
    """The first `count` images: one per distinct photo file, none cached yet."""
    with TagStore(db, read_only=True) as store:
        return [m for m in store.find_images(list(LABELS), match_any=True)][:count]


if __name__ == "__main__":
    main()
