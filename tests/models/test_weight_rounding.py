"""GPTQ rounding of INT8 convolution weights, against OpenVINO's own convolution."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from autotags.models.weight_rounding import (
    RoundableConvolution,
    gptq_round,
    input_gram_matrices,
    input_patches,
)


def convolution_model(weights: np.ndarray, strides: int, pads: int) -> ov.Model:
    image = ops.parameter([1, weights.shape[1], 23, 19], np.float32, name="image")
    conv = ops.convolution(image, ops.constant(weights.astype(np.float32)), [strides] * 2,
                           [pads] * 2, [pads] * 2, [1, 1])
    conv.set_friendly_name("conv")
    return ov.Model([ops.relu(conv)], [image])


def layer_for(weights: np.ndarray, strides: int, pads: int) -> RoundableConvolution:
    return RoundableConvolution(
        name="conv", float_weights=weights.reshape(weights.shape[0], -1),
        scales=np.abs(weights).reshape(weights.shape[0], -1).max(axis=1) / 63, lowest=-63,
        highest=63, integer_weights=None, kernel=weights.shape[2:],
        strides=(strides, strides), pads=(pads, pads, pads, pads))


@pytest.mark.parametrize(("strides", "pads"), [(1, 1), (2, 1), (1, 0), (2, 0)])
def test_patches_times_weights_is_openvinos_convolution(strides, pads):
    rng = np.random.default_rng(strides * 10 + pads)
    weights = rng.normal(size=(6, 4, 3, 3))
    image = rng.normal(size=(1, 4, 23, 19)).astype(np.float32)
    model = convolution_model(weights, strides, pads)
    conv = next(op for op in model.get_ops() if op.get_friendly_name() == "conv")
    model.add_outputs([conv.output(0)])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    expected = compiled(image)[compiled.outputs[1]][0]  # [out, h, w]

    layer = layer_for(weights, strides, pads)
    patches = input_patches(image[0], layer)
    got = (patches @ layer.float_weights.T).T.reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_gram_matrices_are_of_the_inputs_the_convolution_reads():
    rng = np.random.default_rng(7)
    weights = rng.normal(size=(5, 3, 3, 3))
    model = convolution_model(weights, 1, 1)
    images = [rng.normal(size=(1, 3, 23, 19)).astype(np.float32) for _ in range(3)]
    layer = layer_for(weights, 1, 1)
    ((found, gram),) = input_gram_matrices(model, [layer], images)
    expected = sum(input_patches(i[0], layer).T.astype(np.float64) @ input_patches(i[0], layer)
                   for i in images)
    assert found is layer
    # Each image's product is a float32 GEMM: its error scales with the sums it adds up,
    # not with an entry that cancels to near zero, and the kernel (hence the rounding)
    # differs between CPUs. A bound on the largest entry's scale holds on every one.
    np.testing.assert_allclose(gram, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_gptq_keeps_outputs_closer_than_rounding_to_nearest():
    rng = np.random.default_rng(3)
    # Inputs that vary together, as neighbouring pixels and channels do in photos.
    mixing = rng.normal(size=(72, 72))
    inputs = rng.normal(size=(2000, 72)) @ mixing
    weights = rng.normal(size=(16, 72))
    scales = np.abs(weights).max(axis=1) / 63
    nearest = np.clip(np.round(weights / scales[:, None]), -63, 63)
    rounded = gptq_round(weights, scales, inputs.T @ inputs, -63, 63)

    def output_error(integers: np.ndarray) -> float:
        return float(np.linalg.norm(inputs @ (weights - integers * scales[:, None]).T))

    assert rounded.min() >= -63 and rounded.max() <= 63
    assert np.array_equal(rounded, np.round(rounded))
    assert output_error(rounded) < 0.8 * output_error(nearest)


def test_gptq_rounds_weights_of_inputs_that_never_varied_to_nearest():
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(500, 10))
    inputs[:, 3] = 0.0  # a dead channel on every calibration photo
    weights = rng.normal(size=(4, 10))
    scales = np.abs(weights).max(axis=1) / 63
    rounded = gptq_round(weights, scales, inputs.T @ inputs, -63, 63)
    assert np.array_equal(rounded[:, 3], np.round(weights[:, 3] / scales))
    assert np.all(np.isfinite(rounded))
