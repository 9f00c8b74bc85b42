"""Typed results handed to callers of the public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def without_path(error: str, path: str) -> str:
    """An engine error message names its file; drop that where the path is shown anyway."""
    prefix = path + ": "
    return error[len(prefix):] if error.startswith(prefix) else error


@dataclass(frozen=True)
class Box:
    """A box in original-image pixels (EXIF orientation applied)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]


@dataclass(frozen=True)
class Tag:
    """One label: where a detector found it (box) or a classifier's whole-image guess."""

    label: str
    score: float
    box: Box | None = None


Corner = tuple[float, float]


@dataclass(frozen=True)
class TextLine:
    """A line of text a text model read, with its box: four corners in original-image
    pixels, clockwise from where the line starts (its top-left when upright)."""

    text: str
    confidence: float
    box: tuple[Corner, Corner, Corner, Corner]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 4),
                "box": [[round(x, 1), round(y, 1)] for x, y in self.box]}


@dataclass(frozen=True)
class ImageTags:
    """Everything one model said about one image, or why it could not."""

    path: str
    width: int
    height: int
    model: str
    tags: list[Tag] = field(default_factory=list)
    error: str | None = None
    # Where the pixels came from: "image" (the file's own), or for camera RAW files
    # "preview" (the embedded JPEG) or "raw" (the sensor data, processed at half size);
    # None when the file could not be read.
    source: str | None = "image"
    # A text model's lines in reading order (its one tag, ``text``, says there are some).
    lines: list[TextLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def labels(self) -> list[str]:
        """Distinct labels, best score first."""
        return list(dict.fromkeys(tag.label for tag in sorted(self.tags, key=lambda t: -t.score)))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "model": self.model,
            "tags": [
                {"label": t.label, "score": round(t.score, 4),
                 "box": t.box.as_list() if t.box else None}
                for t in self.tags
            ],
            "text": [line.to_json() for line in self.lines],
            "error": self.error,
            "source": self.source,
        }
