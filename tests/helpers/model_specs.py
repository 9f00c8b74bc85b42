"""Catalogue entries for model files a test makes."""

from __future__ import annotations

from pathlib import Path

from autotags import load_catalogue
from autotags.models.catalogue import DecodeSettings, InputSettings, ModelSpec

COCO80 = load_catalogue().get("ssd-mobilenet-v2").labels


def local_spec(path: Path, *, name: str = "synthetic", kind: str = "detector",
               output: str = "yolo", labels: tuple[str, ...] = COCO80,
               input_settings: InputSettings | None = None,
               decode: DecodeSettings | None = None,
               threshold: tuple[float, float] = (32, 88)) -> ModelSpec:
    """A catalogue entry for a model file made by a test."""
    return ModelSpec(
        name=name, title=name, description="made by a test", kind=kind,  # type: ignore[arg-type]
        output=output, labels=labels, label_ids=None,  # type: ignore[arg-type]
        threshold_min=threshold[0], threshold_max=threshold[1],
        input=input_settings or InputSettings(640, 640, scale=(255.0,)),
        decode=decode or DecodeSettings(), local_file=path,
    )
