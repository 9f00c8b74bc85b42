"""Reading model files with the OpenVINO frontend their extension names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AutotagsError
from .catalogue import InputSettings

FRAMEWORKS = {".onnx": "onnx", ".pb": "tf", ".tflite": "tflite", ".xml": ""}


class ModelFileError(AutotagsError, ValueError):
    """The file is not a model OpenVINO can read."""


def concise(message: str) -> str:
    """OpenVINO's messages start with lines naming its own source files; keep the rest."""
    kept = [line for line in message.splitlines()
            if line.strip() and not line.startswith(("Exception from ", "Check '"))]
    return " ".join(kept) or message


def read_model(path: Path) -> Any:
    """The model in `path` (ONNX, OpenVINO IR, TensorFlow .pb or TFLite). Naming the
    frontend spares the others trying, and complaining about, a file that is not theirs."""
    import openvino as ov
    from openvino.frontend import FrontEndManager

    framework = FRAMEWORKS.get(path.suffix.lower())
    if framework is None:
        raise ModelFileError(f"{path}: not a model file type autotags reads (.onnx, OpenVINO "
                             "IR .xml, TensorFlow .pb or .tflite)")
    try:
        if not framework:
            return ov.Core().read_model(str(path))
        frontend = FrontEndManager().load_by_framework(framework)
        return frontend.convert(frontend.load(str(path)))
    except Exception as error:  # OpenVINO raises plain exceptions of several kinds
        raise ModelFileError(f"{path}: cannot read it as a model: {concise(str(error))}") from error


@dataclass(frozen=True)
class RawInput:
    """The form a model file itself takes its image in, before the engine folds its own
    pre-processing into the compiled graph: for calibrating or running it directly."""

    planar: bool    # [N, 3, H, W] rather than [N, H, W, 3]
    floating: bool  # float values rather than 8-bit

    @classmethod
    def of(cls, model: Any) -> RawInput:
        import openvino as ov

        shape = model.input().get_partial_shape()
        return cls(planar=shape[1].is_static and shape[1].get_length() == 3,
                   floating=model.input().get_element_type() != ov.Type.u8)

    def prepare(self, pixels: np.ndarray, settings: InputSettings) -> np.ndarray:
        """A decoded HxWx3 RGB image as a batch of one in this form."""
        data: np.ndarray = pixels[..., ::-1] if settings.bgr else pixels
        if self.floating:
            data = data.astype(np.float32)
            if settings.mean:
                data = data - np.asarray(settings.mean, np.float32)
            if settings.scale:
                data = data / np.asarray(settings.scale, np.float32)
        if self.planar:
            data = data.transpose(2, 0, 1)
        return np.ascontiguousarray(data[None])
