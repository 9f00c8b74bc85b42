"""Error-compensating rounding of INT8 convolution weights (GPTQ, Frantar et al., 2022).

NNCF rounds every weight to the nearest step of its output channel's scale. With the 7-bit
weights that keep CPUs without VNNI from overflowing (see quantize.py), that rounding alone
moves detector scores by a few hundredths, enough to push tags across the threshold. GPTQ
rounds one input column at a time and spreads each rounding error over the columns not yet
rounded, weighted by how the layer's inputs vary together on the calibration photos: the
layer's outputs stay close to FP32 rather than each weight. NNCF offers GPTQ only for weight
compression of MatMul layers; this is the same method for the convolutions of an INT8 model.
It keeps NNCF's scales and integer range, so the copy runs exactly as fast.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Gram matrices of a whole model can exceed what a small NAS box has to spare: the inputs of
# the layers are gathered in passes over the photos that each hold at most this much.
GRAM_BYTES_PER_PASS = 256 << 20
# Ridge added to each Gram matrix, relative to its mean diagonal: inputs that never vary on
# the calibration photos must not make the rounding of their weights arbitrary.
DAMPING = 0.01
BLOCK_COLUMNS = 128


@dataclass
class RoundableConvolution:
    """An INT8 convolution of the quantized model and what GPTQ needs to round it again."""

    name: str
    float_weights: np.ndarray  # [out, in * kh * kw], from the FP32 model
    scales: np.ndarray  # [out], NNCF's per-channel step
    lowest: int  # the integer range NNCF used for this layer
    highest: int
    integer_weights: Any  # the int8 Constant node the rounded weights replace
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right

    @property
    def columns(self) -> int:
        return int(self.float_weights.shape[1])


def constant_data(node: Any) -> np.ndarray | None:
    """The value of a Constant, or of a Convert of one (FP16-compressed weights)."""
    if node.get_type_name() == "Convert":
        node = node.input(0).get_source_output().get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.asarray(node.get_data(), dtype=np.float64)


def _int8_weights(convolution: Any) -> tuple[Any, np.ndarray] | None:
    """(int8 Constant, per-channel scales) when the weights are NNCF's Constant -> Convert ->
    Multiply(scale) and nothing else (no zero point)."""
    multiply = convolution.input(1).get_source_output().get_node()
    if multiply.get_type_name() != "Multiply":
        return None
    convert = multiply.input(0).get_source_output().get_node()
    scales = constant_data(multiply.input(1).get_source_output().get_node())
    if convert.get_type_name() != "Convert" or scales is None:
        return None
    constant = convert.input(0).get_source_output().get_node()
    if constant.get_type_name() != "Constant":
        return None
    if constant.get_element_type().get_type_name() != "i8":
        return None
    out_channels = int(constant.get_output_shape(0)[0])
    if scales.size != out_channels:
        return None
    return constant, scales.reshape(out_channels)


def roundable_convolutions(quantized: Any, original: Any) -> list[RoundableConvolution]:
    """INT8 2-D convolutions of `quantized` (dilation 1) whose FP32 weights `original` holds."""
    float_weights = {
        op.get_friendly_name(): constant_data(op.input(1).get_source_output().get_node())
        for op in original.get_ops() if op.get_type_name() == "Convolution"
    }
    found = []
    for op in quantized.get_ordered_ops():
        if op.get_type_name() != "Convolution" or len(op.input(1).get_shape()) != 4:
            continue
        attributes = op.get_attributes()
        weights = float_weights.get(op.get_friendly_name())
        integer = _int8_weights(op)
        if weights is None or integer is None or any(d != 1 for d in attributes["dilations"]):
            continue
        constant, scales = integer
        values = constant.get_data()
        if values.shape != weights.shape:
            continue
        begin, end = attributes["pads_begin"], attributes["pads_end"]
        found.append(RoundableConvolution(
            name=op.get_friendly_name(), float_weights=weights.reshape(weights.shape[0], -1),
            scales=scales, lowest=int(values.min()), highest=int(values.max()),
            integer_weights=constant, kernel=(int(weights.shape[2]), int(weights.shape[3])),
            strides=(int(attributes["strides"][0]), int(attributes["strides"][1])),
            pads=(int(begin[0]), int(begin[1]), int(end[0]), int(end[1]))))
    return found


def input_patches(activation: np.ndarray, layer: RoundableConvolution) -> np.ndarray:
    """The receptive fields a convolution multiplies by its weights: [positions, in*kh*kw]."""
    top, left, bottom, right = layer.pads
    padded = np.pad(activation.astype(np.float32), ((0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, layer.kernel, axis=(1, 2))
    windows = windows[:, ::layer.strides[0], ::layer.strides[1]]
    return windows.transpose(1, 2, 0, 3, 4).reshape(windows.shape[1] * windows.shape[2], -1)


def _passes(layers: Sequence[RoundableConvolution]) -> Iterator[list[RoundableConvolution]]:
    batch: list[RoundableConvolution] = []
    held = 0
    for layer in layers:
        size = layer.columns ** 2 * 8
        if batch and held + size > GRAM_BYTES_PER_PASS:
            yield batch
            batch, held = [], 0
        batch.append(layer)
        held += size
    if batch:
        yield batch


def _output_key(output: Any) -> tuple[str, int]:
    return output.get_node().get_friendly_name(), output.get_index()


def input_gram_matrices(
    original: Any, layers: Sequence[RoundableConvolution], calibration: Sequence[np.ndarray],
) -> Iterator[tuple[RoundableConvolution, np.ndarray]]:
    """Each layer with the Gram matrix of its FP32 inputs over the calibration tensors."""
    import openvino as ov

    core = ov.Core()
    for batch in _passes(layers):
        model = original.clone()
        by_name = {op.get_friendly_name(): op for op in model.get_ops()}
        sources = [by_name[layer.name].input(0).get_source_output() for layer in batch]
        model.add_outputs(sources)
        position = {_output_key(result.get_node().input(0).get_source_output()): index
                    for index, result in enumerate(model.outputs)}
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        probes = [compiled.output(position[_output_key(source)]) for source in sources]
        grams = [np.zeros((layer.columns, layer.columns)) for layer in batch]
        for tensor in calibration:
            results = compiled(tensor)
            for layer, probe, gram in zip(batch, probes, grams, strict=True):
                patches = input_patches(results[probe][0], layer)
                gram += patches.T @ patches  # float32 product, summed in float64
        yield from zip(batch, grams, strict=True)


def gptq_round(weights: np.ndarray, scales: np.ndarray, gram: np.ndarray,
               lowest: int, highest: int) -> np.ndarray:
    """Integer weights [out, columns] on the given per-row scales that keep weights @ inputs
    close for inputs with this Gram matrix (GPTQ with lazy block updates)."""
    weights = weights.astype(np.float64).copy()
    gram = gram.copy()
    # An input that never varied on the calibration photos may still vary on others: its
    # weights are rounded to nearest, and the identity row keeps its error to itself.
    unused = np.diag(gram) == 0
    gram[unused, unused] = 1.0
    gram[np.diag_indices_from(gram)] += DAMPING * np.mean(np.diag(gram))
    inverse_factor = np.linalg.cholesky(np.linalg.inv(gram)).T
    integers = np.zeros_like(weights)
    columns = weights.shape[1]
    for start in range(0, columns, BLOCK_COLUMNS):
        stop = min(start + BLOCK_COLUMNS, columns)
        block = weights[:, start:stop].copy()
        errors = np.zeros_like(block)
        factor = inverse_factor[start:stop, start:stop]
        for column in range(stop - start):
            rounded = np.clip(np.round(block[:, column] / scales), lowest, highest)
            integers[:, start + column] = rounded
            error = (block[:, column] - rounded * scales) / factor[column, column]
            block[:, column:] -= np.outer(error, factor[column, column:])
            errors[:, column] = error
        weights[:, stop:] -= errors @ inverse_factor[start:stop, stop:]
    return integers


def round_weights(quantized: Any, original: Any, calibration: Sequence[np.ndarray]) -> int:
    """Replace NNCF's rounding of every INT8 convolution of `quantized` by GPTQ's, using the
    FP32 model `original`; returns how many layers were rounded again."""
    import openvino as ov

    layers = roundable_convolutions(quantized, original)
    for layer, gram in input_gram_matrices(original, layers, calibration):
        integers = gptq_round(layer.float_weights, layer.scales, gram, layer.lowest, layer.highest)
        shape = layer.integer_weights.get_output_shape(0)
        replacement = ov.op.Constant(integers.astype(np.int8).reshape(tuple(shape)))
        for target in list(layer.integer_weights.output(0).get_target_inputs()):
            target.replace_source_output(replacement.output(0))
        log.debug("GPTQ rounding of %s (%d columns)", layer.name, layer.columns)
    return len(layers)
