"""Layers of an NNCF INT8 model returned to float, and the tag scores that guide the choice."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import nncf
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from autotags import install, load_catalogue, locations
from autotags.models.mixed_precision import (
    MAX_SCORE_CHANGE,
    Int8Layer,
    ScoreProbe,
    choose_float_layers,
    int8_layers,
    keep_in_float,
)
from helpers.photo_sources import DARKNET_DATA

SIZE = 32


def convolution(data: ov.Output, out_channels: int, kernel: int, name: str, rng) -> ov.Output:
    in_channels = data.get_partial_shape()[1].get_length()
    weights = rng.normal(scale=0.3, size=(out_channels, in_channels, kernel, kernel))
    pad = kernel // 2
    conv = ops.convolution(data, ops.constant(weights.astype(np.float32)), [1, 1], [pad, pad],
                           [pad, pad], [1, 1])
    conv.set_friendly_name(name)
    return ops.relu(conv).output(0)


def small_network() -> ov.Model:
    """first -> pooled -> shared, read by both `wide` and `narrow` (one quantizer, two readers)."""
    rng = np.random.default_rng(3)
    image = ops.parameter([1, 3, SIZE, SIZE], np.float32, name="image")
    first = convolution(image.output(0), 8, 3, "first", rng)
    pooled = ops.max_pool(first, [2, 2], [1, 1], [0, 0], [0, 0], [2, 2]).output(0)
    shared = convolution(pooled, 16, 3, "pooled", rng)
    wide = convolution(shared, 16, 3, "wide", rng)
    narrow = convolution(shared, 16, 1, "narrow", rng)
    return ov.Model([wide, narrow], [image])


@pytest.fixture(scope="module")
def networks() -> tuple[ov.Model, ov.Model, list[np.ndarray]]:
    """(FP32 network, its NNCF INT8 copy, calibration tensors)."""
    rng = np.random.default_rng(5)
    data = [rng.uniform(0, 1, size=(1, 3, SIZE, SIZE)).astype(np.float32) for _ in range(8)]
    original = small_network()
    nncf.set_log_level(logging.WARNING)
    quantized = nncf.quantize(original.clone(), nncf.Dataset(data), subset_size=len(data))
    return original, quantized, data


def run(model: ov.Model, data: list[np.ndarray]) -> np.ndarray:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = [compiled(x) for x in data]
    return np.stack([np.concatenate([found[0], found[1]]) for found in outputs])


def fake_quantize_readers(model: ov.Model) -> set[str]:
    return {target.get_node().get_friendly_name() for op in model.get_ops()
            if op.get_type_name() == "FakeQuantize"
            for target in op.output(0).get_target_inputs()}


def weight_type(model: ov.Model, name: str) -> str:
    conv = next(op for op in model.get_ops() if op.get_friendly_name() == name)
    source = conv.input(1).get_source_output().get_node()
    while source.get_type_name() != "Constant":
        source = source.input(0).get_source_output().get_node()
    return source.get_element_type().get_type_name()


def test_int8_layers_are_those_reading_quantized_data_with_their_cost(networks):
    _, quantized, _ = networks
    layers = {layer.name: layer for layer in int8_layers(quantized)}
    assert set(layers) == {"first", "pooled", "wide", "narrow"}
    pooled_side = SIZE // 2
    assert layers["pooled"] == Int8Layer("pooled", pooled_side ** 2 * 16 * 8 * 3 * 3)
    assert layers["narrow"].multiply_adds == pooled_side ** 2 * 16 * 16


def test_all_layers_back_in_float_give_the_fp32_network(networks):
    original, quantized, data = networks
    restored = quantized.clone()
    keep_in_float(restored, original, [layer.name for layer in int8_layers(quantized)])
    assert not fake_quantize_readers(restored)
    assert not np.allclose(run(quantized, data), run(original, data), atol=1e-4)
    np.testing.assert_allclose(run(restored, data), run(original, data), rtol=1e-5, atol=1e-5)


def test_one_reader_of_a_shared_quantizer_goes_float_the_other_stays_int8(networks):
    original, quantized, _ = networks
    mixed = quantized.clone()
    keep_in_float(mixed, original, ["wide"])
    assert "narrow" in fake_quantize_readers(mixed) and "wide" not in fake_quantize_readers(mixed)
    assert weight_type(mixed, "wide") == "f32" and weight_type(mixed, "narrow") == "i8"
    assert [layer.name for layer in int8_layers(mixed)] == ["first", "pooled", "narrow"]


def test_a_layer_that_reads_float_data_cannot_be_returned(networks):
    original, quantized, _ = networks
    mixed = quantized.clone()
    keep_in_float(mixed, original, ["wide"])
    with pytest.raises(ValueError, match="wide does not read INT8 data"):
        keep_in_float(mixed, original, ["wide"])


def test_score_change_counts_the_pairs_both_runs_found():
    reference = [{1: 0.50, 2: 0.30}, {7: 0.90}, {}]
    trial = [{1: 0.46, 3: 0.40}, {7: 0.92}, {5: 0.2}]
    assert ScoreProbe.change(reference, trial) == pytest.approx(0.03)  # (0.04 + 0.02) / 2
    assert ScoreProbe.change([{}], [{4: 0.9}]) == 0.0


def test_trial_models_are_tagged_as_a_scan_would_and_leave_nothing_behind():
    spec = load_catalogue().get("yolov3-tiny")
    model = ov.Core().read_model(str(install.ensure_installed(spec)))
    probe = ScoreProbe(spec, [str(DARKNET_DATA / "dog.jpg"), str(DARKNET_DATA / "nothing.jpg")])
    cache = locations.compiled_cache_dir()
    cached_before = sorted(cache.rglob("*")) if cache.exists() else []
    temporary_before = set(Path(tempfile.gettempdir()).glob("autotags-trial-*"))

    first, second = probe.scores(model), probe.scores(model)
    dog, bicycle = spec.labels.index("dog"), spec.labels.index("bicycle")
    assert first[0][dog] > 0.5 and first[0][bicycle] > 0.5
    assert first[1] == {}  # an unreadable photo gives no scores, and no error
    assert first == second
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == cached_before
    assert set(Path(tempfile.gettempdir()).glob("autotags-trial-*")) == temporary_before


def test_quantize_help_states_the_target_the_search_uses(capsys):
    from autotags.cli import main

    with pytest.raises(SystemExit):
        main(["models", "quantize", "--help"])
    assert f"less than {MAX_SCORE_CHANGE} on average" in " ".join(capsys.readouterr().out.split())


def test_photos_without_any_tag_leave_the_copy_as_it_is(caplog):
    spec = load_catalogue().get("yolov3-tiny")
    original = ov.Core().read_model(str(install.ensure_installed(spec)))
    untouched = original.clone()  # stands in for an INT8 copy: nothing may be changed
    probe = ScoreProbe(spec, [str(DARKNET_DATA / "missing.jpg")])
    with caplog.at_level(logging.WARNING):
        chosen = choose_float_layers(untouched, original, probe)
    assert chosen.float_layers == () and chosen.score_change == 0.0
    assert "calibrate on photos like the ones you will tag" in caplog.text


def test_a_product_of_two_quantized_tensors_is_no_layer_with_weights():
    rng = np.random.default_rng(9)
    left = ops.parameter([1, 4, 8], np.float32, name="left")
    right = ops.parameter([1, 8, 6], np.float32, name="right")
    product = ops.matmul(left, right, False, False)
    weighted = ops.matmul(product, ops.constant(rng.normal(size=(6, 5)).astype(np.float32)),
                          False, False)
    weighted.set_friendly_name("weighted")
    model = ov.Model([weighted], [left, right])
    data = [{"left": rng.normal(size=(1, 4, 8)).astype(np.float32),
             "right": rng.normal(size=(1, 8, 6)).astype(np.float32)} for _ in range(4)]
    quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
    assert [layer.name for layer in int8_layers(quantized)] == ["weighted"]
