"""What a scan tells its caller: progress while it runs, the report when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .store import Failure


@dataclass(frozen=True)
class ScanProgress:
    done: int
    total: int
    path: str
    model: str
    images_per_second: float

    @property
    def eta_seconds(self) -> float | None:
        if self.images_per_second <= 0:
            return None
        return (self.total - self.done) / self.images_per_second


ProgressCallback = Callable[[ScanProgress], None]


@dataclass
class ModelCounts:
    """What one model did with the images of a scan."""

    tagged: int = 0            # images it tagged now
    failed: int = 0            # images it could not read
    up_to_date: int = 0        # images it had tagged already, unchanged since
    new_settings: int = 0      # of the tagged: rescanned because the accuracy changed
    seconds: float = 0.0       # time spent tagging, model loading not included (models
                               # tagged side by side from one decode share it by results)

    @property
    def images_per_second(self) -> float:
        done = self.tagged + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ScanReport:
    found: int = 0                 # image files below the given paths
    scanned: int = 0               # image x model runs that finished (tagged or failed)
    skipped: int = 0               # image x model runs already up to date
    inferred: int = 0              # images sent through a network
    newly_missing: int = 0         # known images that have disappeared
    back: int = 0                  # images missing before, found again
    moved: int = 0                 # images found under a new name (tags kept)
    images_stored: int = 0         # distinct images whose result was stored now
    not_photos: list[str] = field(default_factory=list)  # videos and audio, skipped
    loading_seconds: float = 0.0   # loading and compiling models
    models: dict[str, ModelCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def tagging_seconds(self) -> float:
        return sum(counts.seconds for counts in self.models.values())

    @property
    def images_per_second(self) -> float:
        """Image x model runs per second of tagging; model loading is not counted."""
        seconds = self.tagging_seconds
        return self.scanned / seconds if seconds > 0 else 0.0


class ScanInterrupted(KeyboardInterrupt):
    """Ctrl-C during a scan; everything finished before it is stored."""

    def __init__(self, report: ScanReport) -> None:
        super().__init__("scan interrupted")
        self.report = report


@dataclass
class ProgressCounter:
    """Counts results over all models of a scan for the caller's callback."""

    total: int
    callback: ProgressCallback | None
    done: int = 0

    def step(self, path: str, model: str, done_by_model: int, seconds: float) -> None:
        self.done += 1
        if self.callback is not None:
            rate = done_by_model / seconds if seconds > 0 else 0.0
            self.callback(ScanProgress(self.done, self.total, path, model, rate))
