"""Small ONNX models with known outputs, built with onnx.helper, for exact engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def _extent_nodes(profile: str, length: int, prefix: str) -> list[onnx.NodeProto]:
    """First and one-past-last index where a [1, length] 0/1 profile is 1, as floats."""
    return [
        helper.make_node("ArgMax", [profile], [f"{prefix}_first_i"], axis=1, keepdims=0),
        helper.make_node("Slice", [profile, "rev_starts", "rev_ends", "axis1", "rev_steps"],
                         [f"{prefix}_reversed"]),
        helper.make_node("ArgMax", [f"{prefix}_reversed"], [f"{prefix}_last_from_end_i"],
                         axis=1, keepdims=0),
        helper.make_node("Cast", [f"{prefix}_first_i"], [f"{prefix}_first"], to=TensorProto.FLOAT),
        helper.make_node("Cast", [f"{prefix}_last_from_end_i"], [f"{prefix}_last_from_end"],
                         to=TensorProto.FLOAT),
        _const(f"{prefix}_length", np.array([float(length)], np.float32)),
        helper.make_node("Sub", [f"{prefix}_length", f"{prefix}_last_from_end"], [f"{prefix}_end"]),
        helper.make_node("Add", [f"{prefix}_first", f"{prefix}_end"], [f"{prefix}_sum"]),
        helper.make_node("Mul", [f"{prefix}_sum", "half"], [f"{prefix}_centre"]),
        helper.make_node("Sub", [f"{prefix}_end", f"{prefix}_first"], [f"{prefix}_size"]),
    ]


def bright_box_yolo(path: Path, *, size: int = 640, classes: int = 80, candidates: int = 8400,
                    class_id: int = 15, score: float = 0.9, transposed: bool = False) -> Path:
    """A YOLO11-signature model ([1,3,size,size] -> [1,4+classes,candidates], or
    [1,candidates,4+classes] when `transposed`) that 'detects' the bounding box of the
    bright (> 0.8) pixels of its input as `class_id` with `score`. All other candidates
    are zero."""
    big = np.iinfo(np.int64).max
    scores = np.zeros((1, classes, 1), np.float32)
    scores[0, class_id, 0] = score
    nodes = [
        _const("rev_starts", np.array([-1], np.int64)),
        _const("rev_ends", np.array([-big], np.int64)),
        _const("axis1", np.array([1], np.int64)),
        _const("rev_steps", np.array([-1], np.int64)),
        _const("half", np.array([0.5], np.float32)),
        _const("bright", np.array(0.8, np.float32)),
        helper.make_node("ReduceMean", ["images"], ["grey"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["grey", "bright"], ["mask_b"]),
        helper.make_node("Cast", ["mask_b"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["mask"], ["columns"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", ["mask"], ["rows"], axes=[2], keepdims=0),
        *_extent_nodes("columns", size, "x"),
        *_extent_nodes("rows", size, "y"),
        helper.make_node("Concat", ["x_centre", "y_centre", "x_size", "y_size"], ["box"], axis=0),
        _const("box_shape", np.array([1, 4, 1], np.int64)),
        helper.make_node("Reshape", ["box", "box_shape"], ["box_column"]),
        _const("scores", scores),
        helper.make_node("Concat", ["box_column", "scores"], ["candidate"], axis=1),
        _const("others", np.zeros((1, 4 + classes, candidates - 1), np.float32)),
        helper.make_node("Concat", ["candidate", "others"],
                         ["channels_first" if transposed else "output0"], axis=2),
    ]
    output_shape = [1, 4 + classes, candidates]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["channels_first"], ["output0"],
                                      perm=[0, 2, 1]))
        output_shape = [1, candidates, 4 + classes]
    graph = helper.make_graph(
        nodes, "bright_box_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, output_shape)],
    )
    return _save(graph, path)


def fixed_logits_classifier(path: Path, logits: np.ndarray, *, size: int = 600,
                            layout: str = "nchw") -> Path:
    """An EfficientNet-B7-signature classifier that ignores its input and outputs
    `logits` ([1, C]); `layout` picks [1,3,size,size] or [1,size,size,3] input."""
    shape = [1, 3, size, size] if layout == "nchw" else [1, size, size, 3]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=0),
        _const("zero", np.array([0.0], np.float32)),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        _const("logits", logits.astype(np.float32)),
        helper.make_node("Add", ["logits", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "fixed_logits_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(logits.shape))],
    )
    return _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
