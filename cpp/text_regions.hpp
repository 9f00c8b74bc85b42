// Text regions from a text detector's probability map (DBNet's postprocessing): the map
// is thresholded, split into connected regions, each scored and fitted with the smallest
// rotated rectangle, which is then grown back to the text's full extent ("unclip").
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "detection.hpp"

namespace autotags {

// A rotated rectangle around one line of text. The corners go clockwise from the
// line's start at the top: along the reading direction first, then down.
struct TextRegion {
    std::array<Point, 4> corners;
    float score = 0;  // mean probability of text over the region's pixels

    float length() const;  // corner 0 to 1: along the line
    float height() const;  // corner 1 to 2: across it
};

struct RegionSettings {
    float pixel_threshold = 0.3f;   // map value at which a pixel is text
    float region_threshold = 0.5f;  // mean map value a region needs to be kept
    float unclip_ratio = 1.6f;      // growth: area * ratio / perimeter on every side
    float min_side = 3;             // regions thinner than this are noise
    std::size_t max_regions = 300;  // per image, the best scored first
};

// `map` is `map_height` rows of `map_width` probabilities; only its top-left
// `valid_width` x `valid_height` pixels show the image (the rest is padding).
std::vector<TextRegion> find_text_regions(const float* map, int map_width, int map_height,
                                          int valid_width, int valid_height,
                                          const RegionSettings& settings);

}  // namespace autotags
