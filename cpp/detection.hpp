// Value types shared by the output decoders, NMS and the pipeline.
#pragma once

#include <vector>

namespace autotags {

struct Point {
    float x = 0, y = 0;
};

// Axis-aligned box, corners in pixels (x2/y2 exclusive edges).
struct Box {
    float x1 = 0, y1 = 0, x2 = 0, y2 = 0;

    float area() const;
};

float intersection_over_union(const Box& a, const Box& b);

struct Detection {
    int class_id = -1;
    float score = 0;
    Box box;
    bool has_box = true;  // false for whole-image classifier labels
};

}  // namespace autotags
