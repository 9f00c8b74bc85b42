"""What the store holds and hands out, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from ..files import FileState

AUTO_ROOT = "auto"
MANUAL_SOURCE = "manual"
IMPORTED_SOURCE = "xmp"  # machine tags found in a file's metadata (another tool's)

Box = tuple[float, float, float, float, float]  # x1, y1, x2, y2, score


@dataclass(frozen=True)
class ScanRecord:
    """The last scan of one image by one model."""

    state: FileState
    error: str | None
    scanned_at: float
    settings: dict[str, object]


@dataclass(frozen=True)
class StoredTag:
    path: str            # full tag path, e.g. "auto/cat"
    source: str          # the model that made it, or "manual"
    confidence: float | None
    instances: int
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class NewTextLine:
    """A line of text a text model read, as a scan hands it to the store."""

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]  # four corners, clockwise from the line's start


@dataclass(frozen=True)
class StoredTextLine:
    source: str          # the text model that read it
    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]  # four corners, clockwise from the line's start


@dataclass(frozen=True)
class TagNode:
    path: str
    depth: int
    images: int          # images carrying this tag or one below it


@dataclass(frozen=True)
class Failure:
    path: str
    model: str
    error: str


@dataclass(frozen=True)
class NewTag:
    """A tag a model produced for an image, ready to store."""

    label: str
    confidence: float
    instances: int = 1
    category: str | None = None  # where the label sits in the vocabulary, e.g. animal/dog
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class KeywordsToWrite:
    """An image's tags as another program should see them."""

    paths: tuple[str, ...]       # manual tags and machine tags (auto/...), in the chosen style
    rejected: frozenset[str]     # labels a person removed (untag)
    scanned: bool = False        # a model tagged it: its tags replace other tools' auto tags


@dataclass(frozen=True)
class WrittenKeywords:
    paths: tuple[str, ...]
    owned_by_others: tuple[str, ...]


@dataclass(frozen=True)
class ScanSummary:
    """What one model did on one day."""

    model: str
    day: str             # YYYY-MM-DD, local time
    images: int
    failed: int
    last: float          # when its last image was scanned (seconds since the epoch)
