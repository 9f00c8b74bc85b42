"""TensorFlow Object Detection API SSD graphs, cut before their postprocessing.

Such a graph ends in the API's postprocessor: per-class non-maximum suppression written
as a TensorFlow while loop over every class, thousands of nodes that OpenVINO rebuilds at
each start (most of a two-second start) and runs more slowly than the engine's own NMS.
The cut model outputs what the postprocessor starts from: the decoded boxes
``[N, anchors, 4]`` (ymin, xmin, ymax, xmax in [0, 1]) and the per-class scores
``[N, anchors, classes]`` (after the sigmoid, class 0 the background). The engine's
``ssd_raw`` decoder and NMS do the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import AutotagsError

SCORES = "Postprocessor/convert_scores"
DECODED_BOXES = "Postprocessor/Decode/transpose_1"


class TfSsdError(AutotagsError, ValueError):
    """The graph is not a TensorFlow Object Detection API SSD this cut understands."""


def cut_before_postprocessing(model: Any) -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    nodes = {op.get_friendly_name(): op for op in model.get_ops()}
    missing = [name for name in (SCORES, DECODED_BOXES) if name not in nodes]
    if missing:
        raise TfSsdError(f"no {' or '.join(missing)} node: not an Object Detection API SSD")
    scores = nodes[SCORES].output(0)
    anchors = scores.get_partial_shape()[1]
    if not anchors.is_static:
        raise TfSsdError(f"{SCORES} has no fixed number of anchors: {scores.get_partial_shape()}")
    # The decoded boxes come flat, [N * anchors, 4]: one row of boxes per image again.
    boxes = ops.reshape(nodes[DECODED_BOXES].output(0),
                        ops.constant(np.array([-1, anchors.get_length(), 4], np.int64)),
                        special_zero=False)
    outputs = [ops.result(boxes), ops.result(scores)]
    for result, name in zip(outputs, ("boxes", "scores"), strict=True):
        result.output(0).get_tensor().set_names({name})
    return ov.Model(outputs, model.get_parameters(), "ssd_raw")
