"""Which layers of an INT8 copy go back to float (mixed precision).

Activations are quantized per tensor, so every INT8 layer adds a little noise, and in a
detector the noise of all layers adds up: tags that sit near the threshold flip. The layers
differ in how much noise they add for how much speed they give: a layer with few input
channels at high resolution costs many multiply-adds in float yet gains little from INT8.
This module measures, on the calibration photos and through the engine's own decoding, how
far each INT8 layer alone moves the tag scores, and returns layers to float, those that move
them the most per multiply-add first, until the copy's scores move less than a target.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AutotagsError
from .catalogue import MIN_ACCURACY, ModelSpec
from .runtime import RunSettings, compile_model
from .weight_rounding import constant_data

log = logging.getLogger(__name__)


class MixedPrecisionError(AutotagsError, ValueError):
    """A quantized graph is not shaped as the float fallback expects."""

# Mean change of a tag's score (0..1) the INT8 copy may make on the calibration photos; bf16
# inference of the FP32 model itself moves scores by about 0.005 on ordinary photos. Stopping
# at 0.006 left yolov3-tiny at 0.93-0.975 agreement on photos it was not calibrated on.
MAX_SCORE_CHANGE = 0.0045
# The search stops before more than this share of the multiply-adds INT8 would do runs in
# float instead: past that, the copy would be hardly faster than the original.
MAX_FLOAT_SHARE = 0.5
WEIGHTED_LAYERS = {"Convolution", "GroupConvolution", "MatMul"}
# What stands between a layer and its weights' constant in an NNCF model.
WEIGHT_DECOMPRESSION = {"Convert", "Subtract", "Multiply", "FakeQuantize", "Reshape"}
# Ops that move or pick values without arithmetic: quantizing before or after them is the same.
PASS_THROUGH = {"MaxPool", "Reshape", "Transpose", "Interpolate", "Squeeze", "Unsqueeze"}


@dataclass(frozen=True)
class Int8Layer:
    name: str
    multiply_adds: int  # per image


@dataclass(frozen=True)
class MixedPrecision:
    """The layers a search returned to float and what the copy then measured."""

    float_layers: tuple[str, ...]
    int8_layers: int  # INT8 layers before the search
    score_change: float  # mean change of the tag scores with float_layers in float


TagScores = list[dict[int, float]]  # per photo: class id -> its highest score


def _input_quantizer(op: Any) -> tuple[Any, Any] | None:
    """(the input that reads the FakeQuantize feeding `op`'s data, that FakeQuantize), when
    everything between them serves `op` alone; None when `op` does not read INT8 data."""
    reader = op.input(0)
    while True:
        node = reader.get_source_output().get_node()
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return reader, node
        if kind not in PASS_THROUGH or len(node.output(0).get_target_inputs()) != 1:
            return None
        reader = node.input(0)


def multiply_adds(op: Any) -> int:
    """Multiply-adds per image of a Convolution, GroupConvolution or MatMul."""
    output = op.get_output_partial_shape(0)
    weights = op.get_input_partial_shape(1)
    if not (output.is_static and weights.is_static):
        return 0
    output_shape, weight_shape = output.to_shape(), weights.to_shape()
    channels = output_shape[-1] if op.get_type_name() == "MatMul" else output_shape[1]
    return int(np.prod(output_shape)) * int(np.prod(weight_shape)) // max(int(channels), 1)


def _has_constant_weights(op: Any) -> bool:
    """Whether `op`'s second input is weights (a constant, perhaps quantized), not data."""
    node = op.input(1).get_source_output().get_node()
    while node.get_type_name() in WEIGHT_DECOMPRESSION:
        node = node.input(0).get_source_output().get_node()
    return bool(node.get_type_name() == "Constant")


def int8_layers(quantized: Any) -> list[Int8Layer]:
    """The layers of `quantized` that read INT8 data and could run in float instead."""
    found = []
    for op in quantized.get_ordered_ops():
        if (op.get_type_name() in WEIGHTED_LAYERS and _has_constant_weights(op)
                and _input_quantizer(op) is not None):
            cost = multiply_adds(op)
            if cost > 0:
                found.append(Int8Layer(op.get_friendly_name(), cost))
    return found


def keep_in_float(quantized: Any, original: Any, names: Sequence[str]) -> None:
    """Runs the named INT8 layers of `quantized` in float: their data is read before its
    quantizer and their weights are the FP32 weights of `original`."""
    import openvino as ov

    originals = {op.get_friendly_name(): op for op in original.get_ops()}
    wanted = set(names)
    for op in [op for op in quantized.get_ordered_ops() if op.get_friendly_name() in wanted]:
        found = _input_quantizer(op)
        if found is None:
            raise MixedPrecisionError(f"{op.get_friendly_name()} does not read INT8 data")
        reader, quantizer = found
        reader.replace_source_output(quantizer.input(0).get_source_output())
        fp32 = constant_data(originals[op.get_friendly_name()].input(1).get_source_output()
                             .get_node())
        if fp32 is None:
            raise MixedPrecisionError(f"{op.get_friendly_name()} has no constant FP32 weights")
        weights = ov.op.Constant(fp32.astype(np.float32))
        op.input(1).replace_source_output(weights.output(0))
    quantized.validate_nodes_and_infer_types()


class ScoreProbe:
    """Tag scores of trial models on a few photos, decoded by the engine as in a real scan
    (at the lowest accuracy setting, so scores below every threshold a user can pick are
    left out), in FP32 so that nothing but the quantization moves them."""

    def __init__(self, spec: ModelSpec, photos: Sequence[str]) -> None:
        self.spec = spec
        self.photos = [os.fsencode(p) for p in photos]

    def scores(self, model: Any) -> TagScores:
        import openvino as ov

        folder = Path(tempfile.mkdtemp(prefix="autotags-trial-"))
        try:
            path = folder / "model.xml"
            ov.save_model(model, str(path), compress_to_fp16=False)
            compiled = compile_model(self.spec, path, RunSettings(accuracy=MIN_ACCURACY,
                                                                  precision="f32"), cached=False)
            found: TagScores = [{} for _ in self.photos]
            for index, _, _, _, detections, error, _, _ in compiled.pipeline.run(self.photos):
                if error is None:
                    for class_id, score, _ in detections:
                        best = found[index]
                        best[class_id] = max(best.get(class_id, 0.0), float(score))
            return found
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def change(reference: TagScores, trial: TagScores) -> float:
        """Mean absolute change of the scores of the (photo, tag) pairs both runs found.
        Pairs only one run found are left out: they are scores crossing the lowest
        threshold, or a box whose two best classes swap places, and one such jump would
        outweigh the steady changes of all other pairs."""
        changes = [abs(before[label] - after[label])
                   for before, after in zip(reference, trial, strict=True)
                   for label in before.keys() & after.keys()]
        # Rounded so that float noise of the CPU's FP32 kernels cannot change a choice.
        return round(float(np.mean(changes)), 5) if changes else 0.0


def choose_float_layers(quantized: Any, original: Any, probe: ScoreProbe,
                        target: float = MAX_SCORE_CHANGE,
                        float_share: float = MAX_FLOAT_SHARE) -> MixedPrecision:
    """Returns layers of `quantized` to float until its tag scores move less than `target`
    from `original`'s, giving back at most `float_share` of the INT8 multiply-adds;
    `quantized` is changed in place."""
    reference = probe.scores(original)

    def change_with(names: Sequence[str]) -> float:
        trial = quantized.clone()
        keep_in_float(trial, original, names)
        return probe.change(reference, probe.scores(trial))

    layers = int8_layers(quantized)
    if not any(reference):
        log.warning("no calibration photo has a tag even at the lowest accuracy, so how far "
                    "INT8 moves tags cannot be measured: calibrate on photos like the ones "
                    "you will tag")
        return MixedPrecision((), len(layers), 0.0)
    budget = float_share * sum(layer.multiply_adds for layer in layers)
    current = change_with([])
    log.info("INT8 moves tag scores by %.4f on average (target %.4f)", current, target)
    chosen: list[str] = []
    if current > target:
        for layer in _noisiest_first(layers, change_with):
            if current <= target:
                break
            if layer.multiply_adds <= budget:
                chosen.append(layer.name)
                budget -= layer.multiply_adds
                current = change_with(chosen)
                log.info("%s back to float: scores move by %.4f", layer.name, current)
    if current > target:
        log.warning("the INT8 copy moves tag scores by %.4f on average, more than the "
                    "target %.4f: more layers in float would leave it little faster than "
                    "the original", current, target)
    keep_in_float(quantized, original, chosen)
    return MixedPrecision(tuple(chosen), len(layers), current)


def _noisiest_first(layers: Sequence[Int8Layer],
                    change_with: Callable[[Sequence[str]], float]) -> list[Int8Layer]:
    """The layers that move the scores when they alone run in INT8, the most change per
    multiply-add first. Each is measured against FP32 rather than against the all-INT8
    copy: there its share would be a small difference of two large, noisy changes."""
    names = [layer.name for layer in layers]
    alone = {layer.name: change_with([name for name in names if name != layer.name])
             for layer in layers}
    return sorted((layer for layer in layers if alone[layer.name] > 0),
                  key=lambda layer: (-alone[layer.name] / layer.multiply_adds, layer.name))
