"""Models people bring themselves: inspected, converted to IR, proven to compile and
registered in the user catalogue (see :mod:`autotags.models.user_catalogue`)."""

from __future__ import annotations

import ast
import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _engine, locations
from ..errors import AutotagsError
from .catalogue import ModelSpec, read_labels, spec_from_entry
from .model_files import ModelFileError, read_model
from .runtime import RunSettings, compile_model
from .user_catalogue import (
    NAME_PATTERN,
    read_user_entries,
    user_catalogue_path,
    write_user_entries,
)

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = (25.0, 85.0)


class AddModelError(AutotagsError, ValueError):
    """The file cannot become a catalogue model; the message says why."""


@dataclass(frozen=True)
class ModelRequest:
    """What `autotags models add` was told; None means: read it from the file."""

    path: Path
    name: str
    kind: str | None = None
    labels: Path | None = None
    input_size: tuple[int, int] | None = None
    output: str | None = None
    layout: str | None = None
    resize: str | None = None
    scale: tuple[float, ...] | None = None
    mean: tuple[float, ...] = ()
    bgr: bool = False
    threshold: tuple[float, float] = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Inspection:
    """What the model file says about itself."""

    layout: str
    input_size: tuple[int, int] | None
    output: str
    classes: int | None
    labels: tuple[str, ...] | None
    float_input: bool


def _metadata(model: Any) -> dict[str, str]:
    """ONNX metadata_props (Ultralytics exports put `names` and `imgsz` there)."""
    found: dict[str, str] = {}
    for key in ("names", "imgsz", "task"):
        if model.has_rt_info(["framework", key]):
            found[key] = model.get_rt_info(["framework", key]).astype(str)
    return found


def _labels_from_metadata(text: str) -> tuple[str, ...] | None:
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return tuple(str(names[key]) for key in sorted(names))
    if isinstance(names, list):
        return tuple(map(str, names))
    return None


def _output_format(shapes: list[list[int]], names: list[set[str]]) -> tuple[str, int]:
    if any("detection_boxes" in name for output in names for name in output):
        return "ssd", 0
    first = shapes[0]
    if len(first) == 3 and first[0] == 1:
        channels = min(first[1], first[2])  # 4 + classes is far shorter than the candidates
        if channels > 4:
            return "yolo", channels - 4
    per_image = 1
    for dimension in first[1:]:
        per_image *= dimension
    if first and first[0] == 1 and len([d for d in first[1:] if d > 1]) == 1:
        return "classifier", per_image
    raise AddModelError(
        f"output shape {first} is not one the engine can decode: it reads YOLO "
        "[1, 4+classes, candidates] (or its transpose), TensorFlow SSD outputs "
        "(detection_boxes, ...) and classifier scores [1, classes]")


def read_model_file(path: Path) -> Any:
    if not path.is_file():
        raise AddModelError(f"{path}: no such file")
    try:
        return read_model(path)
    except ModelFileError as error:
        raise AddModelError(str(error)) from error


def inspect_model(model: Any, path: Path) -> Inspection:
    """What the model read from `path` says about its input, outputs and classes."""
    import openvino as ov

    if len(model.inputs) != 1 or model.input().get_partial_shape().rank.get_length() != 4:
        raise AddModelError(f"{path}: an image model has one 4-D input; this one has "
                            f"{[str(i.get_partial_shape()) for i in model.inputs]}")
    shape = model.input().get_partial_shape()
    dims = [d.get_length() if d.is_static else 0 for d in shape]
    layout = "nchw" if dims[1] == 3 else "nhwc" if dims[3] == 3 else ""
    if not layout:
        raise AddModelError(f"{path}: input {shape} is not [N,3,H,W] or [N,H,W,3]")
    height, width = (dims[2], dims[3]) if layout == "nchw" else (dims[1], dims[2])
    metadata = _metadata(model)
    size = (width, height) if width and height else None
    if size is None and "imgsz" in metadata:
        parsed = ast.literal_eval(metadata["imgsz"])
        size = (int(parsed[1]), int(parsed[0]))
    output_shapes = [[d.get_length() if d.is_static else 0 for d in o.get_partial_shape()]
                     for o in model.outputs]
    output, classes = _output_format(output_shapes, [o.get_names() for o in model.outputs])
    labels = _labels_from_metadata(metadata["names"]) if "names" in metadata else None
    float_input = model.input().get_element_type() != ov.Type.u8
    return Inspection(layout, size, output, classes or None, labels, float_input)


def _read_labels(request: ModelRequest, inspection: Inspection) -> tuple[str, ...]:
    if request.labels is not None:
        if not request.labels.is_file():
            raise AddModelError(f"labels file {request.labels} not found")
        labels = read_labels(request.labels)
    elif inspection.labels is not None:
        labels = inspection.labels
    else:
        raise AddModelError(f"{request.path} carries no class names: give them with "
                            "--labels FILE (one name per line, in the model's class order)")
    if inspection.classes is not None and len(labels) != inspection.classes:
        raise AddModelError(f"{len(labels)} labels, but the model outputs "
                            f"{inspection.classes} classes")
    if any("/" in label for label in labels):
        raise AddModelError("labels cannot contain '/', which separates tag levels")
    return labels


def _entry(request: ModelRequest, inspection: Inspection, directory: Path) -> dict[str, Any]:
    size = request.input_size or inspection.input_size
    if size is None:
        raise AddModelError(f"{request.path}: the input size is dynamic; give it with --input")
    output = request.output or inspection.output
    kind = request.kind or ("classifier" if output == "classifier" else "detector")
    detector = kind == "detector"
    scale = request.scale if request.scale is not None else (
        (255.0,) if inspection.float_input else ())
    return {
        "title": request.name,
        "description": f"added from {request.path}",
        "kind": kind,
        "output": output,
        "labels": str(directory / "labels.txt"),
        "file": str(directory / "model.xml"),
        "threshold": {"min": request.threshold[0], "max": request.threshold[1]},
        "input": {"width": size[0], "height": size[1],
                  "resize": request.resize or ("letterbox" if detector else "centre_crop"),
                  "layout": request.layout or inspection.layout, "bgr": request.bgr,
                  "scale": list(scale), "mean": list(request.mean)},
    }


def write_labels(directory: Path, labels: tuple[str, ...]) -> Path:
    path = directory / "labels.txt"
    path.write_text("\n".join(labels) + "\n", encoding="utf-8")
    return path


def spec_entry(spec: ModelSpec, directory: Path, *, title: str, description: str) -> dict[str, Any]:
    """A user-catalogue entry that runs `directory`/model.xml exactly as `spec` runs its
    model: same labels, input, decoding and thresholds."""
    labels_file = write_labels(directory, spec.labels)
    entry: dict[str, Any] = {
        "title": title, "description": description, "kind": spec.kind, "output": spec.output,
        "labels": str(labels_file), "file": str(directory / "model.xml"),
        "threshold": {"min": spec.threshold_min, "max": spec.threshold_max},
        "input": dataclasses.asdict(spec.input), "decode": dataclasses.asdict(spec.decode),
    }
    if spec.label_ids is not None:
        (directory / "label-ids.txt").write_text("\n".join(map(str, spec.label_ids)) + "\n")
        entry["label_ids"] = str(directory / "label-ids.txt")
    return entry


def add_model(request: ModelRequest, *, builtin_names: set[str], replace: bool = False) -> Path:
    """Import the model file; returns the user catalogue it was written to."""
    import openvino as ov

    if not NAME_PATTERN.fullmatch(request.name):
        raise AddModelError(f"invalid model name {request.name!r}: use lower-case letters, "
                            "digits, '.', '-' and '_'")
    entries = read_user_entries()
    if request.name in builtin_names:
        raise AddModelError(f"{request.name!r} is a built-in model; choose another name")
    if request.name in entries and not replace:
        raise AddModelError(f"a model named {request.name!r} exists; remove it first")
    model = read_model_file(request.path)
    inspection = inspect_model(model, request.path)
    labels = _read_labels(request, inspection)
    directory = locations.user_models_dir() / request.name
    entry = _entry(request, inspection, directory)
    staged = directory.with_name(directory.name + ".adding")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    try:
        ov.save_model(model, str(staged / "model.xml"), compress_to_fp16=False)
        write_labels(staged, labels)
        _check_the_engine_runs_it(request.name, entry, staged)
        shutil.rmtree(directory, ignore_errors=True)
        staged.rename(directory)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    entries[request.name] = entry
    write_user_entries(entries)
    return user_catalogue_path()


def _check_the_engine_runs_it(name: str, entry: dict[str, Any], staged: Path) -> None:
    """Compile it exactly as tagging will, so a bad model fails now, not mid-scan."""
    trial = {**entry, "labels": str(staged / "labels.txt"), "file": str(staged / "model.xml")}
    try:
        compile_model(spec_from_entry(name, trial, staged), staged / "model.xml", RunSettings())
    except _engine.ModelError as error:
        raise AddModelError(str(error).replace(str(staged / "model.xml"), name)) from error


def remove_user_model(name: str) -> bool:
    """Removes a model the user added, broken entries included; False if there is none."""
    if not NAME_PATTERN.fullmatch(name):
        raise AddModelError(f"invalid model name {name!r}")
    entries = read_user_entries()
    if name not in entries:
        return False
    del entries[name]
    write_user_entries(entries)
    shutil.rmtree(locations.user_models_dir() / name, ignore_errors=True)
    return True
