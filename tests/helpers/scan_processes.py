"""Helpers for tests that run whole scan processes: a collection of real photos on disk,
a scan in a child process, and looks into the database it writes."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def big_collection(root: Path, photos: dict[str, Path], copies: int) -> Path:
    for index in range(copies):
        folder = root / f"roll{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("cat", "dog", "coffee", "astronaut", "horses", "person"):
            shutil.copy(photos[name], folder / f"{name}-{index}{photos[name].suffix}")
    return root


def start_scan(folder: Path, db: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autotags.cli", "-q", "scan", str(folder), "--db", str(db),
         "--precision", "f32", "--json", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def scanned_rows(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT count(*) FROM scans").fetchone()[0]


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as raw:
        return raw.execute("PRAGMA integrity_check").fetchone()[0]


def wait_for_rows(db: Path, rows: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if scanned_rows(db) >= rows:
                return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.02)
