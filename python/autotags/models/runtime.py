"""A catalogue model compiled by the C++ engine: the spec turned into engine settings,
the network compiled for an OpenVINO device, and the decode + inference pipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import openvino

from .. import _engine, locations
from ..errors import AutotagsError, SettingsError
from .catalogue import DEFAULT_ACCURACY, MAX_ACCURACY, MIN_ACCURACY, ModelSpec
from .text_model import TextModelFiles

DEVICES = ("CPU", "GPU", "AUTO")
# Bump when the engine changes how it prepares a graph, so older prepared copies go.
PREPARED_FORMAT = 1
DEFAULT_MAX_MEGAPIXELS = 300
MAX_MEGAPIXELS = 100_000   # 100 gigapixels: past any real photo, within the engine's integers
MAX_THREADS = 4096
# PP-OCR's recogniser and line-orientation classifier read lines 48 pixels high; the
# classifier's input is 192 wide.
TEXT_LINE_HEIGHT = 48
TEXT_ORIENTATION_WIDTH = 192


class TaggerError(AutotagsError, RuntimeError):
    """The tagger cannot start: unknown device, missing model, bad settings."""


def check_device(device: str) -> str:
    normalised = device.upper()
    if normalised == "AUTO" or normalised.startswith(("AUTO:", "MULTI:", "HETERO:")):
        return normalised
    available = openvino.Core().available_devices
    if not any(d == normalised or d.startswith(normalised + ".") for d in available):
        raise TaggerError(
            f"device {device!r} is not available on this machine; available: "
            + ", ".join([*available, "AUTO"])
        )
    return normalised


def _input_spec(spec: ModelSpec, batch: int) -> _engine.InputSpec:
    settings = spec.input
    engine_input = _engine.InputSpec()
    engine_input.width, engine_input.height = settings.width, settings.height
    engine_input.batch = batch
    engine_input.layout = getattr(_engine.TensorLayout, settings.layout)
    engine_input.bgr = settings.bgr
    engine_input.mean = list(settings.mean)
    engine_input.scale = list(settings.scale)
    return engine_input


def _input_fit(spec: ModelSpec) -> _engine.InputFit:
    fit = _engine.InputFit()
    fit.width, fit.height = spec.input.width, spec.input.height
    fit.mode = getattr(_engine.ResizeMode, spec.input.resize)
    fit.placement = getattr(_engine.PadPlacement, spec.input.pad)
    fit.pad_colour = list(spec.input.pad_colour)
    return fit


def _decoder_settings(spec: ModelSpec, accuracy: int) -> _engine.DecoderSettings:
    decode = spec.decode
    settings = _engine.DecoderSettings()
    settings.format = getattr(_engine.OutputFormat, spec.output)
    settings.num_classes = spec.raw_class_count
    settings.score_threshold = spec.threshold(accuracy)
    settings.top_k = decode.top_k
    settings.output_scale = decode.output_scale
    settings.softmax = getattr(_engine.Softmax, decode.softmax)
    settings.class_map = spec.class_map()
    nms = _engine.NmsSettings()
    nms.iou_threshold = decode.nms_iou
    nms.class_agnostic = decode.class_agnostic
    nms.max_detections = decode.max_detections
    settings.nms = nms
    return settings


def _openvino_config(threads: int | None, precision: str | None,
                     cached: bool = True) -> dict[str, str]:
    config = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if cached:
        config["CACHE_DIR"] = str(locations.compiled_cache_dir())
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


@dataclass(frozen=True)
class RunSettings:
    """How models run: the user's choices, not the models'. One value travels from the
    command line or :func:`autotags.scan` to every Tagger, here or on cluster workers."""

    device: str = "CPU"
    accuracy: int = DEFAULT_ACCURACY
    threads: int | None = None
    batch: int = 1
    requests: int | None = None
    precision: str | None = None
    max_megapixels: int = DEFAULT_MAX_MEGAPIXELS

    def __post_init__(self) -> None:
        if not MIN_ACCURACY <= self.accuracy <= MAX_ACCURACY:
            raise SettingsError(f"accuracy must be {MIN_ACCURACY}..{MAX_ACCURACY}, got "
                                f"{self.accuracy}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise TaggerError(f"threads must be from 1 to {MAX_THREADS}, got {self.threads}")
        if not 1 <= self.max_megapixels <= MAX_MEGAPIXELS:
            raise TaggerError(f"max_megapixels must be from 1 to {MAX_MEGAPIXELS}, got "
                              f"{self.max_megapixels}")
        if self.batch < 1:
            raise TaggerError(f"batch must be at least 1, got {self.batch}")

    @property
    def max_pixels(self) -> int:
        return self.max_megapixels * 1_000_000


@dataclass(frozen=True)
class CompiledModel:
    network: _engine.InferenceModel
    stage: _engine.PipelineStage   # the model as one stage of a pipeline
    pipeline: _engine.Pipeline     # ... and its own pipeline of that one stage
    settings: _engine.PipelineSettings
    fit: _engine.InputFit          # how images are fitted to the network's real input
    max_pixels: int

    def decode(self, path: bytes) -> tuple[npt.NDArray[np.uint8], int, int]:
        """One image as the network sees it: (HxWx3 uint8 array, width, height)."""
        return _engine.load_image(path, self.fit, self.max_pixels)

    def decoding(self) -> dict[str, object]:
        """How this model decodes images, as plain data another process can repeat."""
        return {"width": self.fit.width, "height": self.fit.height, "mode": self.fit.mode.name,
                "placement": self.fit.placement.name, "pad_colour": list(self.fit.pad_colour),
                "max_pixels": self.max_pixels}


def decoder_from(decoding: dict[str, object]) -> tuple[_engine.InputFit, int]:
    """The engine settings of :meth:`CompiledModel.decoding`."""
    fit = _engine.InputFit()
    fit.width, fit.height = int(decoding["width"]), int(decoding["height"])  # type: ignore[call-overload]
    fit.mode = getattr(_engine.ResizeMode, str(decoding["mode"]))
    fit.placement = getattr(_engine.PadPlacement, str(decoding["placement"]))
    fit.pad_colour = list(decoding["pad_colour"])  # type: ignore[call-overload]
    return fit, int(decoding["max_pixels"])  # type: ignore[call-overload]


def _file_state(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def prepared_model_path(spec: ModelSpec, model_path: Path, batch: int) -> Path:
    """Where the engine keeps `model_path` with its pre-processing folded in. The name
    covers everything that shapes that graph: the model file (and its weights) as they
    are now, the input settings, the batch and OpenVINO's version, so a change to any of
    them makes a new copy, and older copies of the same file are removed."""
    source = model_path.resolve()
    files = [source, source.with_suffix(".bin")] if source.suffix == ".xml" else [source]
    state = json.dumps([PREPARED_FORMAT, openvino.get_version(),
                        [_file_state(f) for f in files if f.exists()]])
    shape = json.dumps([dataclasses.asdict(spec.input), batch], sort_keys=True)
    prefix, current = _digest(str(source)), _digest(state)
    folder = locations.compiled_cache_dir() / "prepared"
    for stale in folder.glob(f"{prefix}-*"):
        if not stale.name.startswith(f"{prefix}-{current}-"):
            stale.unlink(missing_ok=True)
    return folder / f"{prefix}-{current}-{_digest(shape)}.xml"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _precision(spec: ModelSpec, settings: RunSettings) -> str | None:
    """Text is read at full precision unless asked otherwise: bf16 on the CPUs that have
    it changes which characters a line is read as, and so what a search finds."""
    return settings.precision or ("f32" if spec.kind == "text" else None)


def _text_reader(spec: ModelSpec, model_path: Path, settings: RunSettings,
                 cached: bool) -> _engine.TextReader:
    """The recogniser and orientation classifier installed beside a text detector."""
    files = TextModelFiles.beside(model_path)
    if not files.complete():
        raise TaggerError(f"model {spec.name!r} is missing its recogniser files in "
                          f"{model_path.parent}; run: autotags models install --force {spec.name}")
    config = _openvino_config(settings.threads, _precision(spec, settings), cached)
    recogniser_input = _input_spec(spec, 1)
    recogniser_input.width, recogniser_input.height = 0, TEXT_LINE_HEIGHT
    recogniser_input.any_width = recogniser_input.any_batch = True
    orientation_input = _input_spec(spec, 1)
    orientation_input.width, orientation_input.height = TEXT_ORIENTATION_WIDTH, TEXT_LINE_HEIGHT
    orientation_input.any_batch = True
    recogniser = _engine.InferenceModel(str(files.recogniser), settings.device, recogniser_input,
                                        config)
    orientation = _engine.InferenceModel(str(files.orientation), settings.device,
                                         orientation_input, config)
    text_settings = _engine.TextSettings()
    text_settings.min_confidence = spec.threshold(settings.accuracy)
    return _engine.TextReader(recogniser, orientation, files.read_characters(), text_settings)


def compile_model(spec: ModelSpec, model_path: Path, settings: RunSettings, *,
                  cached: bool = True) -> CompiledModel:
    """Compile `model_path` as `spec` describes it; raises the engine's ModelError when
    OpenVINO cannot compile or the outputs do not fit the spec. A trial model that will
    not be run again is compiled with `cached=False`: nothing of it goes into the cache."""
    prepared = str(prepared_model_path(spec, model_path, settings.batch)) if cached else ""
    network = _engine.InferenceModel(
        str(model_path), settings.device, _input_spec(spec, settings.batch),
        _openvino_config(settings.threads, _precision(spec, settings), cached), prepared)
    pipeline_settings = _engine.PipelineSettings()
    pipeline_settings.decode_threads = settings.threads or 0
    pipeline_settings.infer_requests = settings.requests or 0
    pipeline_settings.max_source_pixels = settings.max_pixels
    fit = _input_fit(spec)
    fit.width, fit.height = network.input_width, network.input_height
    text = _text_reader(spec, model_path, settings, cached) if spec.kind == "text" else None
    decoder = _engine.DecoderSettings() if text else _decoder_settings(spec, settings.accuracy)
    stage = _engine.PipelineStage(network, decoder, fit, text)
    pipeline = _engine.Pipeline([stage], pipeline_settings)
    return CompiledModel(network, stage, pipeline, pipeline_settings, fit, settings.max_pixels)
