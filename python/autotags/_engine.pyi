# Types of the C++ extension (cpp/module.cpp). Kept by hand beside it: every binding
# there has its line here, and `mypy --strict` checks the Python layer against them.
from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from .errors import AutotagsError

class ImageError(AutotagsError, ValueError): ...
class ModelError(AutotagsError, RuntimeError): ...

class _Enum:
    name: str
    value: int
    def __init__(self, value: int) -> None: ...
    def __int__(self) -> int: ...

class ResizeMode(_Enum):
    letterbox: ClassVar[ResizeMode]
    stretch: ClassVar[ResizeMode]
    centre_crop: ClassVar[ResizeMode]

class PadPlacement(_Enum):
    centre: ClassVar[PadPlacement]
    top_left: ClassVar[PadPlacement]

class TensorLayout(_Enum):
    automatic: ClassVar[TensorLayout]
    nchw: ClassVar[TensorLayout]
    nhwc: ClassVar[TensorLayout]

class OutputFormat(_Enum):
    yolo: ClassVar[OutputFormat]
    ssd: ClassVar[OutputFormat]
    ssd_raw: ClassVar[OutputFormat]
    classifier: ClassVar[OutputFormat]

class Softmax(_Enum):
    automatic: ClassVar[Softmax]
    always: ClassVar[Softmax]
    never: ClassVar[Softmax]

class InputFit:
    width: int
    height: int
    mode: ResizeMode
    placement: PadPlacement
    pad_colour: list[int]
    def __init__(self) -> None: ...

class InputSpec:
    width: int
    height: int
    batch: int
    layout: TensorLayout
    bgr: bool
    mean: list[float]
    scale: list[float]
    any_width: bool
    any_batch: bool
    def __init__(self) -> None: ...

class NmsSettings:
    iou_threshold: float
    class_agnostic: bool
    max_detections: int
    def __init__(self) -> None: ...

class DecoderSettings:
    format: OutputFormat
    num_classes: int
    score_threshold: float
    nms: NmsSettings
    top_k: int
    softmax: Softmax
    output_scale: float
    class_map: list[int]
    def __init__(self) -> None: ...

class RegionSettings:
    pixel_threshold: float
    region_threshold: float
    unclip_ratio: float
    min_side: float
    max_regions: int
    def __init__(self) -> None: ...

class TextSettings:
    regions: RegionSettings
    min_confidence: float
    flip_confidence: float
    max_line_width: int
    space_in_gap: float
    reading_side: int
    batch: int
    def __init__(self) -> None: ...

class PipelineSettings:
    decode_threads: int
    infer_requests: int
    max_source_pixels: int
    def __init__(self) -> None: ...

class InferenceModel:
    def __init__(self, path: str, device: str, input: InputSpec, config: dict[str, str],
                 prepared_path: str = "") -> None: ...
    @property
    def input_width(self) -> int: ...
    @property
    def input_height(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def request_count(self) -> int: ...
    @property
    def images_inferred(self) -> int: ...
    def measure_inference_rate(self, image: npt.NDArray[np.uint8], inferences: int) -> float: ...
    @property
    def output_shapes(self) -> list[list[int]]: ...
    @property
    def output_names(self) -> list[list[str]]: ...

Box = tuple[float, float, float, float]
Detection = tuple[int, float, Box | None]  # class id, score, box in source pixels
Corners = list[float]  # x1, y1 .. x4, y4
TextLine = tuple[str, float, Corners]  # text, confidence, corners in source pixels
# index, stage, width, height, detections, error (bytes: it names the file), pixel
# source, a text model's lines
Result = tuple[int, int, int, int, list[Detection], bytes | None, str, list[TextLine]]

class TextReader:
    def __init__(self, recogniser: InferenceModel, orientation: InferenceModel | None,
                 characters: Sequence[str], settings: TextSettings) -> None: ...

class ResultStream:
    def __iter__(self) -> Iterator[Result]: ...
    def __next__(self) -> Result: ...
    def cancel(self) -> None: ...

class PipelineStage:
    def __init__(self, model: InferenceModel, decoder: DecoderSettings, fit: InputFit,
                 text: TextReader | None = None) -> None: ...

class Pipeline:
    def __init__(self, stages: Sequence[PipelineStage], settings: PipelineSettings) -> None: ...
    @property
    def stage_count(self) -> int: ...
    def run(self, paths: Sequence[bytes], wanted: Sequence[Sequence[bool]] = ...
            ) -> ResultStream: ...

def load_image(path: bytes | str, fit: InputFit, max_source_pixels: int = 300_000_000
               ) -> tuple[npt.NDArray[np.uint8], int, int]: ...
def load_image_each(path: bytes | str, fits: Sequence[InputFit],
                    max_source_pixels: int = 300_000_000) -> list[npt.NDArray[np.uint8]]: ...
def non_max_suppression(candidates: Sequence[tuple[int, float, Box]], settings: NmsSettings
                        ) -> list[Detection]: ...
def find_text_regions(map: npt.NDArray[np.float32], valid_width: int, valid_height: int,
                      settings: RegionSettings) -> list[tuple[Corners, float]]: ...
def libvips_version() -> str: ...

camera_raw_extensions: list[str]

def is_camera_raw(path: bytes) -> bool: ...
