"""INT8 copies of models by post-training quantization (NNCF), calibrated on photos.

On CPUs with VNNI (AVX-512 VNNI / AVX-VNNI) INT8 convolutions run about twice as fast as
FP32. The copy is registered as ``<name>-int8`` in the user catalogue with the same
labels, input and thresholds as the original, so it is used like any other model.

The steps: NNCF places the quantizers and measures activation ranges; weight_rounding.py
rounds the weights again with GPTQ; mixed_precision.py returns to float the layers whose
noise moves tag scores the most for the least speed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from typing import Any

from .. import _engine, locations
from ..errors import AutotagsError
from .adding import spec_entry
from .catalogue import ModelSpec, spec_from_entry
from .install import ensure_installed
from .mixed_precision import ScoreProbe, choose_float_layers
from .model_files import RawInput
from .runtime import RunSettings, compile_model
from .user_catalogue import read_user_entries, write_user_entries
from .weight_rounding import round_weights

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 300
# Calibration photos (spread over all of them) that each trial of the mixed-precision search
# tags: about 2 s a trial on two cores.
PROBE_PHOTOS = 200
# The arithmetic that turns raw outputs into boxes and scores (sigmoid, exp, grid offsets,
# anchors) is cheap, but INT8 there shifts scores across the thresholds; the speed-up
# lives in the convolutions, which stay INT8.
KEPT_IN_FLOAT = ["Multiply", "Sigmoid", "Exp", "Add", "Concat"]


class QuantizeError(AutotagsError, RuntimeError):
    """The model cannot be quantized (already INT8, no photos, NNCF missing)."""


def head_convolutions(model: Any) -> list[str]:
    """Convolutions with no other convolution between them and an output: the layers
    that produce the raw scores. They are small; INT8 there would move every score."""
    heads = []
    for op in model.get_ops():
        if op.get_type_name() != "Convolution":
            continue
        pending, seen, reaches_output = [op], set(), False
        while pending and not reaches_output:
            node = pending.pop()
            for output in node.outputs():
                for target in output.get_target_inputs():
                    consumer = target.get_node()
                    kind = consumer.get_type_name()
                    if kind == "Result":
                        reaches_output = True
                    elif kind != "Convolution" and consumer.get_friendly_name() not in seen:
                        seen.add(consumer.get_friendly_name())
                        pending.append(consumer)
        if reaches_output:
            heads.append(op.get_friendly_name())
    return heads


def full_resolution_convolutions(model: Any) -> list[str]:
    """Convolutions whose output is at least half the input's height: they see the photo's
    whole dynamic range, and the noise INT8 adds there runs through every later layer. With
    few channels they are also where INT8 saves the least time."""
    height = model.input().get_partial_shape()[2]
    if not height.is_static:
        return []
    kept = []
    for op in model.get_ops():
        shape = op.get_output_partial_shape(0)
        if op.get_type_name() != "Convolution" or shape.rank.get_length() != 4:
            continue
        if shape[2].is_static and 2 * shape[2].get_length() >= height.get_length():
            kept.append(op.get_friendly_name())
    return kept


def spread(items: Sequence[str], count: int) -> list[str]:
    """At most `count` of `items`, evenly spaced from first to last, each at most once."""
    taken = min(count, len(items))
    return [items[i * len(items) // taken] for i in range(taken)]


def _already_quantized(model: object) -> bool:
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())  # type: ignore[attr-defined]


def quantize(spec: ModelSpec, photos: Sequence[str], *, name: str | None = None,
             samples: int = DEFAULT_SAMPLES) -> ModelSpec:
    """Make and register an INT8 copy of `spec` calibrated on up to `samples` photos."""
    try:
        import nncf
        from nncf.quantization.advanced_parameters import (
            AdvancedQuantizationParameters,
            OverflowFix,
        )
    except ImportError as error:
        raise QuantizeError("INT8 quantization needs NNCF: pip install 'autotags[int8]'") from error
    import openvino as ov

    name = name or f"{spec.name}-int8"
    installed = ensure_installed(spec)
    model = ov.Core().read_model(str(installed))
    if _already_quantized(model):
        raise QuantizeError(f"{spec.name} is already quantized")
    raw_input = RawInput.of(model)

    reader = compile_model(spec, installed, RunSettings())
    calibration, readable = [], []
    for path in photos[:samples]:
        try:
            pixels, _, _ = reader.decode(os.fsencode(path))
        except _engine.ImageError as error:
            log.warning("skipping %s", error)
            continue
        calibration.append(raw_input.prepare(pixels, spec.input))
        readable.append(path)
    if not calibration:
        raise QuantizeError("no readable calibration photos")
    if not model.input().get_partial_shape().is_static:
        model.reshape(calibration[0].shape)
    log.info("quantizing %s on %d photos", spec.name, len(calibration))
    if not log.isEnabledFor(logging.DEBUG):
        nncf.set_log_level(logging.WARNING)
    # Without VNNI (AVX2-only CPUs) OpenVINO multiplies u8 activations by s8 weights with
    # vpmaddubsw, whose 16-bit sums saturate: scores then depend on the CPU. Weights
    # quantized to 7 bits in every layer cannot overflow, so the copy gives the same tags
    # on every x86-64 CPU; GPTQ rounding (weight_rounding.py) wins back the lost bit.
    # Activations are asymmetric (MIXED): after (leaky) ReLU they are nearly all positive, and
    # a symmetric range would waste half the levels. NNCF's bias correction is fitted to its
    # own rounding, which GPTQ replaces, so it is left out.
    advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE,
                                              disable_bias_correction=True)
    kept = head_convolutions(model) + full_resolution_convolutions(model)
    quantized = nncf.quantize(model.clone(), nncf.Dataset(calibration),
                              subset_size=len(calibration), preset=nncf.QuantizationPreset.MIXED,
                              advanced_parameters=advanced,
                              ignored_scope=nncf.IgnoredScope(names=kept, types=KEPT_IN_FLOAT,
                                                              validate=False))
    rounded = round_weights(quantized, model, calibration)
    log.info("GPTQ rounded the weights of %d convolutions", rounded)
    probe = ScoreProbe(spec, spread(readable, PROBE_PHOTOS))
    mixed = choose_float_layers(quantized, model, probe)

    directory = locations.user_models_dir() / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    ov.save_model(quantized, str(directory / "model.xml"), compress_to_fp16=False)
    entry = spec_entry(spec, directory, title=f"{spec.title} (INT8)",
                       description=f"{spec.name} quantized to INT8 on {len(calibration)} photos, "
                       f"{len(mixed.float_layers)} of {mixed.int8_layers} layers kept "
                       f"in float for accuracy; tag scores move by "
                       f"{mixed.score_change:.4f} on average")
    entries = read_user_entries()
    entries[name] = entry
    write_user_entries(entries)
    return spec_from_entry(name, entry, directory)

