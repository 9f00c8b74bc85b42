"""Tagger: runs one catalogue model over image files through the C++ engine."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from .. import _engine
from ..models.catalogue import DEFAULT_ACCURACY, Catalogue, ModelSpec, load_catalogue
from ..models.install import ensure_installed, installed_path
from ..models.runtime import (
    DEFAULT_MAX_MEGAPIXELS,
    RunSettings,
    TaggerError,
    check_device,
    compile_model,
)
from .results import Box, ImageTags, Tag, TextLine

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]

__all__ = ["DEFAULT_MAX_MEGAPIXELS", "Tagger", "TaggerError"]


def as_path_list(paths: StrPath | Iterable[StrPath]) -> list[StrPath]:
    """Paths as a list; a single str, bytes or PathLike is one path."""
    if isinstance(paths, str | bytes | os.PathLike):
        return [paths]
    return list(paths)


class Tagger:
    """Tags image files with one model.

    >>> tagger = Tagger("ssd-mobilenet-v2")
    >>> for result in tagger.tag(["cat.jpg"]):
    ...     print(result.path, result.labels)

    ``accuracy`` follows digiKam's slider (1..10, default 7): higher keeps fewer, surer
    tags. ``precision="f32"`` forces full-precision inference (CPUs with bf16 use it by
    default). ``threads`` caps the CPU cores used for decoding and inference; ``batch``
    sets images per inference and ``requests`` inferences in flight (default: OpenVINO's
    optimum for the device).
    """

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        *,
        device: str = "CPU",
        accuracy: int = DEFAULT_ACCURACY,
        threads: int | None = None,
        batch: int = 1,
        requests: int | None = None,
        precision: str | None = None,
        max_megapixels: int = DEFAULT_MAX_MEGAPIXELS,
        install: bool = True,
        catalogue: Catalogue | None = None,
    ) -> None:
        if isinstance(model, ModelSpec):
            self.spec = model
        else:
            catalogue = catalogue or load_catalogue()
            self.spec = catalogue.get(model or catalogue.default_models[0])
        self.settings = RunSettings(device=device, accuracy=accuracy, threads=threads,
                                    batch=batch, requests=requests, precision=precision,
                                    max_megapixels=max_megapixels)
        self.accuracy = accuracy
        self.threshold = self.spec.threshold(accuracy)
        self.device = check_device(device)
        self.settings = dataclasses.replace(self.settings, device=self.device)
        model_path = ensure_installed(self.spec) if install else installed_path(self.spec)
        if model_path is None:
            raise TaggerError(f"model {self.spec.name!r} is not installed; "
                              f"run: autotags models install {self.spec.name}")
        self._compiled = compile_model(self.spec, model_path, self.settings)
        log.debug("model %s ready on %s with %d infer requests", self.spec.name, self.device,
                  self._compiled.network.request_count)

    @classmethod
    def from_settings(cls, model: str | ModelSpec | None, settings: RunSettings, *,
                      install: bool = True, catalogue: Catalogue | None = None) -> Tagger:
        """A tagger that runs as `settings` say (what a scan builds for each model)."""
        return cls(model, device=settings.device, accuracy=settings.accuracy,
                   threads=settings.threads, batch=settings.batch, requests=settings.requests,
                   precision=settings.precision, max_megapixels=settings.max_megapixels,
                   install=install, catalogue=catalogue)

    @property
    def model_name(self) -> str:
        return self.spec.name

    def decode(self, path: StrPath) -> tuple[npt.NDArray[np.uint8], int, int]:
        """One image as the model sees it: (HxWx3 uint8 array, width, height)."""
        return self._compiled.decode(os.fsencode(os.path.expanduser(os.fspath(path))))

    @property
    def fit(self) -> _engine.InputFit:
        """How images are fitted to the network's input."""
        return self._compiled.fit

    def decoding(self) -> dict[str, object]:
        """How this tagger decodes images, as plain data (see the crash quarantine)."""
        return self._compiled.decoding()

    def measure_inference_rate(self, path: StrPath, inferences: int) -> float:
        """Images per second through the network alone, every infer request busy."""
        pixels, _, _ = self.decode(path)
        return float(self._compiled.network.measure_inference_rate(pixels, inferences))

    @property
    def images_inferred(self) -> int:
        """Images this tagger has sent through the network so far."""
        return int(self._compiled.network.images_inferred)

    def tag(self, paths: StrPath | Iterable[StrPath]) -> Iterator[ImageTags]:
        """Yields one result per path, in the order given (a single path is one path, not
        a sequence of characters; `~` is expanded). Files that cannot be read yield a
        result whose ``error`` says why; the others are still tagged."""
        for _, _, result in tag_together([self], paths):
            yield result

    def tag_file(self, path: StrPath) -> ImageTags:
        return next(self.tag([path]))

    def to_result(self, path: str, width: int, height: int,
                  detections: list[tuple[int, float, tuple[float, float, float, float] | None]],
                  error: bytes | None, source: str,
                  lines: list[tuple[str, float, list[float]]]) -> ImageTags:
        if error is not None:
            return ImageTags(path, 0, 0, self.spec.name, [], os.fsdecode(error), source=None)
        tags = [
            Tag(self.spec.labels[class_id], float(score), Box(*box) if box is not None else None)
            for class_id, score, box in detections
        ]
        read = [TextLine(text, float(confidence),
                         tuple(zip(corners[0::2], corners[1::2], strict=True)))  # type: ignore[arg-type]
                for text, confidence, corners in lines]
        if read:  # the image's one tag: it has text, as sure as its surest line
            tags.append(Tag(self.spec.labels[0], max(line.confidence for line in read)))
        return ImageTags(path, width, height, self.spec.name, tags, source=source, lines=read)


class TaggerGroup:
    """Several taggers sharing one pipeline: each file is decoded once, at the scale the
    largest input needs, for every model that wants it. The first tagger's settings say
    how many cores decode. Built once, it tags any number of path lists."""

    def __init__(self, taggers: Sequence[Tagger]) -> None:
        self.taggers = list(taggers)
        compiled = [tagger._compiled for tagger in self.taggers]
        self._pipeline = compiled[0].pipeline if len(compiled) == 1 else _engine.Pipeline(
            [c.stage for c in compiled], compiled[0].settings)

    def tag(self, paths: StrPath | Iterable[StrPath],
            wanted: Sequence[Sequence[bool]] | None = None) -> Iterator[tuple[int, int, ImageTags]]:
        """Tags every path with each tagger that ``wanted[path][tagger]`` names (default:
        all). Yields (position of the path, position of the tagger, result) in path order,
        and in tagger order within a path."""
        path_list = [os.path.expanduser(os.fsdecode(p)) for p in as_path_list(paths)]
        stream = self._pipeline.run([os.fsencode(p) for p in path_list],
                                    [list(row) for row in wanted] if wanted is not None else [])
        try:
            for index, stage, width, height, detections, error, source, lines in stream:
                yield index, stage, self.taggers[stage].to_result(
                    path_list[index], width, height, detections, error, source, lines)
        finally:
            stream.cancel()


def tag_together(taggers: Sequence[Tagger], paths: StrPath | Iterable[StrPath],
                 wanted: Sequence[Sequence[bool]] | None = None
                 ) -> Iterator[tuple[int, int, ImageTags]]:
    """:meth:`TaggerGroup.tag` for one list of paths."""
    return TaggerGroup(taggers).tag(paths, wanted)
