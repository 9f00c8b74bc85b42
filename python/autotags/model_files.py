"""Reading model files with the OpenVINO frontend their extension names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FRAMEWORKS = {".onnx": "onnx", ".pb": "tf", ".tflite": "tflite", ".xml": ""}


class ModelFileError(ValueError):
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
