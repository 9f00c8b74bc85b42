"""A one-line progress bar for terminals."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO

from ..collection.reports import ScanProgress


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Redraws at most ten times a second on `stream`, which should be a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, progress: ScanProgress) -> None:
        now = time.monotonic()
        if progress.done < progress.total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = shutil.get_terminal_size((80, 20)).columns
        filled = int(20 * progress.done / max(progress.total, 1))
        text = (f"[{'#' * filled}{'-' * (20 - filled)}] {progress.done}/{progress.total} "
                f"{progress.images_per_second:.1f} img/s ETA {_clock(progress.eta_seconds)} "
                f"{os.path.basename(progress.path)}")
        self._stream.write("\r" + text[: width - 1].ljust(width - 1))
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self._stream.write("\r" + " " * (shutil.get_terminal_size((80, 20)).columns - 1) + "\r")
            self._stream.flush()
