#include "nms.hpp"

#include <algorithm>

namespace autotags {

float Box::area() const {
    return std::max(0.0f, x2 - x1) * std::max(0.0f, y2 - y1);
}

float intersection_over_union(const Box& a, const Box& b) {
    const Box overlap{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2),
                      std::min(a.y2, b.y2)};
    const float intersection = overlap.area();
    const float union_area = a.area() + b.area() - intersection;
    return union_area > 0 ? intersection / union_area : 0.0f;
}

std::vector<Detection> non_max_suppression(std::vector<Detection> candidates,
                                           const NmsSettings& settings) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> kept;
    for (const Detection& candidate : candidates) {
        if (kept.size() >= settings.max_detections) break;
        const bool suppressed =
            std::any_of(kept.begin(), kept.end(), [&](const Detection& winner) {
                const bool competes =
                    settings.class_agnostic || winner.class_id == candidate.class_id;
                return competes &&
                       intersection_over_union(winner.box, candidate.box) > settings.iou_threshold;
            });
        if (!suppressed) kept.push_back(candidate);
    }
    return kept;
}

}  // namespace autotags
