#pragma once

#include <cstddef>
#include <vector>

#include "detection.hpp"

namespace autotags {

struct NmsSettings {
    float iou_threshold = 0.5f;
    bool class_agnostic = true;
    std::size_t max_detections = 300;
};

// Greedy non-maximum suppression. Highest score first; equal scores keep their input
// order, so the result is deterministic. Class-aware mode only lets boxes of the same
// class suppress each other.
std::vector<Detection> non_max_suppression(std::vector<Detection> candidates,
                                           const NmsSettings& settings);

}  // namespace autotags
