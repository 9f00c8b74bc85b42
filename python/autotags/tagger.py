"""Tagger: runs one catalogue model over image files through the C++ engine."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import openvino

from . import _engine, locations
from .catalogue import DEFAULT_ACCURACY, Catalogue, ModelSpec, load_catalogue
from .install import ensure_installed, installed_path
from .results import Box, ImageTags, Tag

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]
DEFAULT_MAX_MEGAPIXELS = 300
DEVICES = ("CPU", "GPU", "AUTO")


class TaggerError(RuntimeError):
    """The tagger cannot start: unknown device, missing model, bad settings."""


def _check_device(device: str) -> str:
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
        self.accuracy = accuracy
        self.threshold = self.spec.threshold(accuracy)
        if threads is not None and threads < 1:
            raise TaggerError(f"threads must be at least 1, got {threads}")
        if batch < 1:
            raise TaggerError(f"batch must be at least 1, got {batch}")
        self.device = _check_device(device)
        model_path = ensure_installed(self.spec) if install else installed_path(self.spec)
        if model_path is None:
            raise TaggerError(f"model {self.spec.name!r} is not installed; "
                              f"run: autotags models install {self.spec.name}")
        self._model = _engine.InferenceModel(
            str(model_path), self.device, _input_spec(self.spec, batch),
            self._openvino_config(threads, precision),
        )
        pipeline_settings = _engine.PipelineSettings()
        pipeline_settings.decode_threads = threads or 0
        pipeline_settings.infer_requests = requests or 0
        pipeline_settings.max_source_pixels = max_megapixels * 1_000_000
        self._max_pixels = pipeline_settings.max_source_pixels
        self._fit = _input_fit(self.spec)
        self._fit.width, self._fit.height = self._model.input_width, self._model.input_height
        self._pipeline = _engine.Pipeline(
            self._model, _decoder_settings(self.spec, accuracy), self._fit, pipeline_settings,
        )
        log.debug("model %s ready on %s with %d infer requests", self.spec.name, self.device,
                  self._model.request_count)

    @staticmethod
    def _openvino_config(threads: int | None, precision: str | None) -> dict[str, str]:
        config = {"PERFORMANCE_HINT": "THROUGHPUT",
                  "CACHE_DIR": str(locations.compiled_cache_dir())}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        return config

    @property
    def model_name(self) -> str:
        return self.spec.name

    def decode(self, path: StrPath) -> tuple[object, int, int]:
        """One image as the model sees it: (HxWx3 uint8 array, width, height)."""
        return _engine.load_image(os.fsencode(os.fspath(path)), self._fit, self._max_pixels)

    def measure_inference_rate(self, path: StrPath, inferences: int) -> float:
        """Images per second through the network alone, every infer request busy."""
        pixels, _, _ = self.decode(path)
        return float(self._model.measure_inference_rate(pixels, inferences))

    @property
    def images_inferred(self) -> int:
        """Images this tagger has sent through the network so far."""
        return int(self._model.images_inferred)

    def tag(self, paths: Iterable[StrPath]) -> Iterator[ImageTags]:
        """Yields one result per path, in the order given. Files that cannot be read
        yield a result whose ``error`` says why; the others are still tagged."""
        path_list = [os.fsdecode(p) for p in paths]
        stream = self._pipeline.run([os.fsencode(p) for p in path_list])
        try:
            for index, width, height, detections, error in stream:
                yield self._to_result(path_list[index], width, height, detections, error)
        finally:
            stream.cancel()

    def tag_file(self, path: StrPath) -> ImageTags:
        return next(self.tag([path]))

    def _to_result(self, path: str, width: int, height: int,
                   detections: list[tuple[int, float, tuple[float, float, float, float] | None]],
                   error: bytes | None) -> ImageTags:
        if error is not None:
            return ImageTags(path, 0, 0, self.spec.name, [], os.fsdecode(error))
        tags = [
            Tag(self.spec.labels[class_id], float(score), Box(*box) if box is not None else None)
            for class_id, score, box in detections
        ]
        return ImageTags(path, width, height, self.spec.name, tags)
