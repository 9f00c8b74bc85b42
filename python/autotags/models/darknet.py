"""Darknet YOLO (cfg + weights) rebuilt as an OpenVINO graph.

OpenVINO cannot read darknet files, so the network is built layer by layer with its
graph API: convolutions with batch-norm folded in, leaky ReLU, max-pooling, nearest
upsampling and routes. Each ``[yolo]`` head is decoded inside the graph (sigmoid,
grid offsets, anchors, objectness times class score) and the heads are joined into
the YOLOv8/YOLO11 layout ``[N, 4 + classes, candidates]`` (centre x, centre y, width,
height in input pixels, then class scores), so the engine's one YOLO decoder and NMS
serve darknet models too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from ..errors import AutotagsError

LEAKY_SLOPE = 0.1
BATCH_NORM_EPSILON = 1e-6  # darknet's own


class DarknetError(AutotagsError, ValueError):
    """The cfg or weights file is not a darknet network this builder understands."""


@dataclass
class Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)

    def number(self, key: str, default: int | None = None) -> int:
        if key not in self.options:
            if default is None:
                raise DarknetError(f"[{self.kind}] needs '{key}'")
            return default
        return int(self.options[key])

    def ints(self, key: str) -> list[int]:
        return [int(part) for part in self.options[key].split(",") if part.strip()]


def parse_cfg(text: str) -> list[Section]:
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append(Section(line[1:-1].strip()))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise DarknetError(f"cannot read cfg line {raw!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise DarknetError("a darknet cfg starts with a [net] section")
    return sections


class WeightReader:
    """Darknet weights: a small header, then float32 values in layer order."""

    def __init__(self, data: bytes) -> None:
        major, minor, _revision = np.frombuffer(data, np.int32, 3)
        seen_bytes = 8 if major * 10 + minor >= 2 else 4
        self._values = np.frombuffer(data, np.float32, offset=12 + seen_bytes)
        self._position = 0

    def take(self, count: int) -> np.ndarray:
        if self._position + count > self._values.size:
            raise DarknetError("the weights file ends before the network does: cfg and "
                               "weights do not belong together")
        chunk = self._values[self._position:self._position + count]
        self._position += count
        return chunk

    def check_consumed(self) -> None:
        if self._position != self._values.size:
            raise DarknetError(f"{self._values.size - self._position} weights left over: cfg "
                               "and weights do not belong together")


class _Builder:
    def __init__(self, sections: list[Section], weights: WeightReader) -> None:
        net = sections[0]
        self.width, self.height = net.number("width"), net.number("height")
        self.channels = net.number("channels", 3)
        self.sections = sections[1:]
        self.weights = weights
        self.input = ops.parameter([1, self.channels, self.height, self.width], np.float32,
                                   name="images")
        self.outputs: list[ov.Output] = []
        self.channel_counts: list[int] = []
        self.heads: list[ov.Output] = []
        self.classes: int | None = None

    def build(self) -> ov.Model:
        x, channels = self.input.output(0), self.channels
        for section in self.sections:
            x, channels = self._layer(section, x, channels)
            self.outputs.append(x)
            self.channel_counts.append(channels)
        self.weights.check_consumed()
        if not self.heads:
            raise DarknetError("the cfg has no [yolo] layer")
        joined = self.heads[0] if len(self.heads) == 1 else ops.concat(self.heads, axis=2).output(0)
        result = ops.result(joined, name="output0")
        return ov.Model([result], [self.input], "darknet-yolo")

    def _layer(self, section: Section, x: ov.Output, channels: int) -> tuple[ov.Output, int]:
        if section.kind == "convolutional":
            return self._convolution(section, x, channels)
        if section.kind == "maxpool":
            size, stride = section.number("size"), section.number("stride", 1)
            pooled = ops.max_pool(x, [stride, stride], [1, 1], [0, 0], [size - 1, size - 1],
                                  [size, size])
            return pooled.output(0), channels
        if section.kind == "upsample":
            stride = section.number("stride", 2)
            scaled = ops.interpolate(x, np.array([stride, stride], np.float32), "nearest",
                                     "scales", axes=np.array([2, 3], np.int64),
                                     coordinate_transformation_mode="asymmetric",
                                     nearest_mode="floor")
            return scaled.output(0), channels
        if section.kind == "route":
            here = len(self.outputs)
            picked = [index if index >= 0 else here + index for index in section.ints("layers")]
            parts = [self.outputs[index] for index in picked]
            total = sum(self.channel_counts[index] for index in picked)
            return (parts[0] if len(parts) == 1 else ops.concat(parts, axis=1).output(0)), total
        if section.kind == "yolo":
            self.heads.append(self._yolo_head(section, x, channels))
            return x, channels
        raise DarknetError(f"layer type [{section.kind}] is not supported")

    def _convolution(self, section: Section, x: ov.Output,
                     channels: int) -> tuple[ov.Output, int]:
        filters, size = section.number("filters"), section.number("size")
        stride = section.number("stride", 1)
        padding = size // 2 if section.number("pad", 0) else section.number("padding", 0)
        if section.number("batch_normalize", 0):
            beta, gamma, mean, variance = (self.weights.take(filters) for _ in range(4))
            kernel = self.weights.take(filters * channels * size * size).reshape(
                filters, channels, size, size)
            factor = gamma / np.sqrt(variance + BATCH_NORM_EPSILON)
            kernel = kernel * factor[:, None, None, None]
            bias = beta - mean * factor
        else:
            bias = self.weights.take(filters)
            kernel = self.weights.take(filters * channels * size * size).reshape(
                filters, channels, size, size)
        y = ops.convolution(x, ops.constant(kernel.astype(np.float32)), [stride, stride],
                            [padding, padding], [padding, padding], [1, 1])
        y = ops.add(y, ops.constant(bias.astype(np.float32).reshape(1, filters, 1, 1)))
        activation = section.options.get("activation", "linear")
        if activation == "leaky":
            y = ops.prelu(y, ops.constant(np.array([LEAKY_SLOPE], np.float32)))
        elif activation != "linear":
            raise DarknetError(f"activation '{activation}' is not supported")
        return y.output(0), filters

    def _yolo_head(self, section: Section, x: ov.Output, channels: int) -> ov.Output:
        classes = section.number("classes")
        if self.classes not in (None, classes):
            raise DarknetError("the [yolo] layers disagree on the number of classes")
        self.classes = classes
        anchors = np.array(section.ints("anchors"), np.float32).reshape(-1, 2)
        mask = section.ints("mask") if "mask" in section.options else list(range(len(anchors)))
        boxes, values = len(mask), 5 + classes
        if channels != boxes * values:
            raise DarknetError(f"[yolo] expects {boxes * values} channels, gets {channels}")
        shape = x.get_partial_shape()
        rows, columns = shape[2].get_length(), shape[3].get_length()
        stride_x, stride_y = self.width / columns, self.height / rows

        # [N, boxes, values, rows, columns]; a 0 keeps the batch size whatever it is.
        grid = ops.reshape(x, np.array([0, boxes, values, rows, columns], np.int64), True)
        xy, wh, objectness, scores = ops.variadic_split(
            grid, 2, np.array([2, 2, 1, classes], np.int64)).outputs()
        cells = np.stack(np.meshgrid(np.arange(columns), np.arange(rows)), 0).astype(np.float32)
        strides = np.array([stride_x, stride_y], np.float32).reshape(1, 1, 2, 1, 1)
        centres = ops.multiply(ops.add(ops.sigmoid(xy), cells.reshape(1, 1, 2, rows, columns)),
                               strides)
        sizes = ops.multiply(ops.exp(wh), anchors[mask].reshape(1, boxes, 2, 1, 1))
        class_scores = ops.multiply(ops.sigmoid(scores), ops.sigmoid(objectness))
        decoded = ops.concat([centres, sizes, class_scores], axis=2)  # [N, boxes, 4+C, r, c]
        channels_first = ops.transpose(decoded, np.array([0, 2, 1, 3, 4], np.int64))
        flat = ops.reshape(channels_first, np.array([0, 4 + classes, -1], np.int64), True)
        return flat.output(0)


def build_model(cfg_text: str, weights: bytes) -> ov.Model:
    """The network of a darknet cfg with its weights, ending in one YOLO11-layout output."""
    return _Builder(parse_cfg(cfg_text), WeightReader(weights)).build()


def build_model_from_files(cfg: Path, weights: Path) -> ov.Model:
    return build_model(cfg.read_text(encoding="utf-8"), weights.read_bytes())
