"""Non-maximum suppression in the C++ engine."""

from __future__ import annotations

import pytest

from autotags import _engine


def nms(candidates, *, iou=0.5, agnostic=True, max_detections=300):
    settings = _engine.NmsSettings()
    settings.iou_threshold = iou
    settings.class_agnostic = agnostic
    settings.max_detections = max_detections
    kept = _engine.non_max_suppression(candidates, settings)
    return [(c, round(s, 4), list(b)) for c, s, b in kept]


def test_empty_input_gives_empty_output():
    assert nms([]) == []


def test_overlapping_box_of_lower_score_is_suppressed():
    kept = nms([(0, 0.6, (0, 0, 10, 10)), (0, 0.9, (1, 1, 11, 11))])
    assert kept == [(0, 0.9, [1, 1, 11, 11])]


def test_boxes_overlapping_less_than_threshold_both_survive():
    # IoU of these two is 25/175 = 0.14
    kept = nms([(0, 0.9, (0, 0, 10, 10)), (0, 0.8, (5, 5, 15, 15))], iou=0.5)
    assert [k[1] for k in kept] == [0.9, 0.8]


def test_iou_exactly_at_threshold_is_kept():
    # IoU = 50 / 150 = 1/3; suppression needs IoU strictly above the threshold.
    kept = nms([(0, 0.9, (0, 0, 10, 10)), (0, 0.8, (5, 0, 15, 10))], iou=1 / 3)
    assert len(kept) == 2


def test_class_agnostic_suppresses_across_classes():
    candidates = [(0, 0.9, (0, 0, 10, 10)), (1, 0.8, (0, 0, 10, 10))]
    assert [k[0] for k in nms(candidates, agnostic=True)] == [0]


def test_class_aware_keeps_other_classes():
    candidates = [(0, 0.9, (0, 0, 10, 10)), (1, 0.8, (0, 0, 10, 10)), (1, 0.7, (0, 0, 10, 10))]
    assert [(k[0], k[1]) for k in nms(candidates, agnostic=False)] == [(0, 0.9), (1, 0.8)]


def test_equal_scores_keep_input_order():
    candidates = [(3, 0.5, (0, 0, 10, 10)), (4, 0.5, (0, 0, 10, 10))]
    assert [k[0] for k in nms(candidates)] == [3]
    assert [k[0] for k in nms(list(reversed(candidates)))] == [4]


def test_zero_area_boxes_do_not_suppress():
    candidates = [(0, 0.9, (5, 5, 5, 5)), (0, 0.8, (0, 0, 10, 10))]
    assert len(nms(candidates)) == 2


def test_max_detections_caps_the_output_best_first():
    candidates = [(0, s / 10, (s * 20, 0, s * 20 + 10, 10)) for s in range(1, 8)]
    assert [k[1] for k in nms(candidates, max_detections=3)] == [0.7, 0.6, 0.5]


@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_output_sorted_by_score_and_pairwise_below_threshold(iou):
    candidates = [(i % 3, ((i * 37) % 100) / 100, (i * 3, i * 2, i * 3 + 20, i * 2 + 20))
                  for i in range(40)]
    kept = nms(candidates, iou=iou, agnostic=True)
    scores = [k[1] for k in kept]
    assert scores == sorted(scores, reverse=True)

    def overlap(a, b):
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    for i, a in enumerate(kept):
        for b in kept[i + 1:]:
            assert overlap(a[2], b[2]) <= iou + 1e-6
