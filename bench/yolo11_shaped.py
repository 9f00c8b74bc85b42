"""A YOLO11n-class network for throughput comparisons, built with onnx.helper.

Same signature as digiKam's yolo11n.onnx ([1,3,640,640] -> [1,84,8400]), a backbone and
neck over strides 8/16/32 with SiLU convolutions and residual blocks, and roughly
YOLO11n's compute, so that inference weighs in the pipeline what it weighs with the real
model. The weights are random (seeded): speed does not depend on them, tags would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 80


class _Graph:
    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def conv(self, x: str, inputs: int, outputs: int, kernel: int = 3, stride: int = 1,
             activation: bool = True) -> str:
        weight, bias, out = self.name("w"), self.name("b"), self.name("conv")
        scale = np.sqrt(2.0 / (inputs * kernel * kernel))
        self.weights += [
            numpy_helper.from_array(
                (self.rng.standard_normal((outputs, inputs, kernel, kernel)) * scale)
                .astype(np.float32), weight),
            numpy_helper.from_array(np.zeros(outputs, np.float32), bias)]
        pad = kernel // 2
        self.nodes.append(helper.make_node("Conv", [x, weight, bias], [out],
                                           kernel_shape=[kernel, kernel], strides=[stride] * 2,
                                           pads=[pad] * 4))
        if not activation:
            return out
        gate, silu = self.name("sig"), self.name("silu")
        self.nodes += [helper.make_node("Sigmoid", [out], [gate]),
                       helper.make_node("Mul", [out, gate], [silu])]
        return silu

    def block(self, x: str, channels: int) -> str:
        """Residual bottleneck, as in YOLO's C2f/C3k2 stages."""
        inner = self.conv(self.conv(x, channels, channels // 2, 1), channels // 2, channels)
        out = self.name("res")
        self.nodes.append(helper.make_node("Add", [x, inner], [out]))
        return out

    def op(self, kind: str, inputs: list[str], **attributes: object) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attributes))
        return out

    def constant(self, array: np.ndarray) -> str:
        name = self.name("const")
        self.weights.append(numpy_helper.from_array(array, name))
        return name


def build(path: Path, seed: int = 11) -> Path:
    g = _Graph(seed)
    x = g.conv("images", 3, 16, stride=2)                    # 320
    x = g.block(g.block(g.conv(x, 16, 32, stride=2), 32), 32)  # 160
    p3 = g.block(g.block(g.conv(x, 32, 64, stride=2), 64), 64)           # 80
    p4 = g.block(g.block(g.conv(p3, 64, 128, stride=2), 128), 128)       # 40
    p5 = g.block(g.conv(p4, 128, 256, stride=2), 256)                    # 20
    scales = g.constant(np.array([1, 1, 2, 2], np.float32))
    up5 = g.op("Resize", [p5, "", scales], mode="nearest")
    n4 = g.block(g.conv(g.op("Concat", [up5, p4], axis=1), 384, 128, 1), 128)
    up4 = g.op("Resize", [n4, "", scales], mode="nearest")
    n3 = g.block(g.conv(g.op("Concat", [up4, p3], axis=1), 192, 64, 1), 64)
    d4 = g.block(g.conv(g.op("Concat", [g.conv(n3, 64, 64, stride=2), n4], axis=1), 192, 128, 1),
                 128)
    d5 = g.block(g.conv(g.op("Concat", [g.conv(d4, 128, 128, stride=2), p5], axis=1),
                        384, 256, 1), 256)
    heads = []
    for feature, channels in ((n3, 64), (d4, 128), (d5, 256)):
        boxes = g.conv(g.conv(feature, channels, 64), 64, 4, 1, activation=False)
        scores = g.op("Sigmoid", [g.conv(g.conv(feature, channels, 80), 80, CLASSES, 1,
                                         activation=False)])
        joined = g.op("Concat", [boxes, scores], axis=1)
        heads.append(g.op("Reshape", [joined, g.constant(np.array([1, 4 + CLASSES, -1],
                                                                  np.int64))]))
    g.nodes.append(helper.make_node("Concat", heads, ["output0"], axis=2))
    graph = helper.make_graph(
        g.nodes, "yolo11-shaped",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + CLASSES, 8400])],
        initializer=g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
