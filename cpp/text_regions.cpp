#include "text_regions.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace autotags {

namespace {

struct PixelPoint {
    long x, y;
};

// A connected region of text pixels: for each row it covers, its leftmost and rightmost
// pixel (enough for its convex hull), and the map values it covers.
struct Blob {
    std::vector<PixelPoint> row_ends;
    double probability_sum = 0;
    std::size_t pixels = 0;
};

struct RotatedRect {
    Point centre;
    Point along;  // unit vector of the side measured by `length`
    float length = 0;
    float height = 0;
};

long cross(const PixelPoint& o, const PixelPoint& a, const PixelPoint& b) {
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

// Andrew's monotone chain; the hull goes counter-clockwise without repeated points.
std::vector<PixelPoint> convex_hull(std::vector<PixelPoint> points) {
    std::sort(points.begin(), points.end(), [](const PixelPoint& a, const PixelPoint& b) {
        return a.x < b.x || (a.x == b.x && a.y < b.y);
    });
    points.erase(std::unique(points.begin(), points.end(),
                             [](const PixelPoint& a, const PixelPoint& b) {
                                 return a.x == b.x && a.y == b.y;
                             }),
                 points.end());
    if (points.size() < 3) return points;
    std::vector<PixelPoint> hull(2 * points.size());
    std::size_t k = 0;
    for (const PixelPoint& p : points) {
        while (k >= 2 && cross(hull[k - 2], hull[k - 1], p) <= 0) --k;
        hull[k++] = p;
    }
    for (std::size_t i = points.size() - 1, lower = k + 1; i-- > 0;) {
        while (k >= lower && cross(hull[k - 2], hull[k - 1], points[i]) <= 0) --k;
        hull[k++] = points[i];
    }
    hull.resize(k - 1);
    return hull;
}

// The smallest-area rectangle holding the hull: one of its sides lies on a hull edge.
RotatedRect smallest_rectangle(const std::vector<PixelPoint>& hull) {
    RotatedRect best;
    double best_area = std::numeric_limits<double>::max();
    for (std::size_t i = 0; i < hull.size(); ++i) {
        const PixelPoint& a = hull[i];
        const PixelPoint& b = hull[(i + 1) % hull.size()];
        const double dx = double(b.x - a.x), dy = double(b.y - a.y);
        const double norm = std::hypot(dx, dy);
        if (norm == 0) continue;
        const double ux = dx / norm, uy = dy / norm;
        double min_u = 1e300, max_u = -1e300, min_v = 1e300, max_v = -1e300;
        for (const PixelPoint& p : hull) {
            const double u = double(p.x) * ux + double(p.y) * uy;
            const double v = -double(p.x) * uy + double(p.y) * ux;
            min_u = std::min(min_u, u), max_u = std::max(max_u, u);
            min_v = std::min(min_v, v), max_v = std::max(max_v, v);
        }
        const double area = (max_u - min_u) * (max_v - min_v);
        if (area < best_area) {
            best_area = area;
            const double cu = (min_u + max_u) / 2, cv = (min_v + max_v) / 2;
            best.centre = {float(cu * ux - cv * uy), float(cu * uy + cv * ux)};
            best.along = {float(ux), float(uy)};
            best.length = float(max_u - min_u);
            best.height = float(max_v - min_v);
        }
    }
    return best;
}

// The reading direction: the side nearest horizontal, unless the other is clearly the
// longer (a line of text standing up); pointing right (or down when upright), so that
// the 180-degree classifier only ever has to turn a crop over.
RotatedRect reading_direction(RotatedRect rect) {
    const Point across{-rect.along.y, rect.along.x};
    const bool along_is_flatter = std::abs(rect.along.x) >= std::abs(across.x);
    bool swap = !along_is_flatter;
    if (along_is_flatter && rect.height >= 1.5f * rect.length) swap = true;
    if (!along_is_flatter && rect.length >= 1.5f * rect.height) swap = false;
    if (swap) {
        rect.along = across;
        std::swap(rect.length, rect.height);
    }
    if (rect.along.x < 0 || (rect.along.x == 0 && rect.along.y < 0))
        rect.along = {-rect.along.x, -rect.along.y};
    return rect;
}

TextRegion to_region(const RotatedRect& rect, float score) {
    const Point u{rect.along.x * rect.length / 2, rect.along.y * rect.length / 2};
    const Point v{-rect.along.y * rect.height / 2, rect.along.x * rect.height / 2};
    const Point c = rect.centre;
    TextRegion region;
    region.corners = {Point{c.x - u.x - v.x, c.y - u.y - v.y}, Point{c.x + u.x - v.x, c.y + u.y - v.y},
                      Point{c.x + u.x + v.x, c.y + u.y + v.y}, Point{c.x - u.x + v.x, c.y - u.y + v.y}};
    region.score = score;
    return region;
}

// Text pixels of the valid area, grown by one pixel up and left as DBNet's reference
// postprocessing does (a 2x2 dilation), so that broken strokes join.
std::vector<std::uint8_t> text_mask(const float* map, int map_width, int width, int height,
                                    float threshold) {
    std::vector<std::uint8_t> text(std::size_t(width) * std::size_t(height));
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            text[std::size_t(y) * width + x] = map[std::size_t(y) * map_width + x] > threshold;
    std::vector<std::uint8_t> grown(text.size());
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const auto at = [&](int xx, int yy) {
                return xx >= 0 && yy >= 0 && text[std::size_t(yy) * width + xx];
            };
            grown[std::size_t(y) * width + x] = at(x, y) || at(x - 1, y) || at(x, y - 1) ||
                                                at(x - 1, y - 1);
        }
    return grown;
}

// Visits every 8-connected region of `mask` once (clearing it) and hands it to `use`.
template <typename Use>
void for_each_blob(std::vector<std::uint8_t>& mask, const float* map, int map_width, int width,
                   int height, Use use) {
    // Row extremes of the blob being visited; rows are reset once it is done.
    std::vector<long> first_x(std::size_t(height), static_cast<long>(width));
    std::vector<long> last_x(std::size_t(height), -1L);
    std::vector<std::size_t> stack;
    for (std::size_t start = 0; start < mask.size(); ++start) {
        if (!mask[start]) continue;
        Blob blob;
        long top = height, bottom = -1;
        mask[start] = 0;
        stack.assign(1, start);
        while (!stack.empty()) {
            const std::size_t at = stack.back();
            stack.pop_back();
            const long x = long(at % std::size_t(width)), y = long(at / std::size_t(width));
            top = std::min(top, y), bottom = std::max(bottom, y);
            first_x[std::size_t(y)] = std::min(first_x[std::size_t(y)], x);
            last_x[std::size_t(y)] = std::max(last_x[std::size_t(y)], x);
            blob.probability_sum += map[std::size_t(y) * std::size_t(map_width) + std::size_t(x)];
            ++blob.pixels;
            for (long dy = -1; dy <= 1; ++dy)
                for (long dx = -1; dx <= 1; ++dx) {
                    const long nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
                    const std::size_t next = std::size_t(ny) * std::size_t(width) + std::size_t(nx);
                    if (mask[next]) {
                        mask[next] = 0;
                        stack.push_back(next);
                    }
                }
        }
        for (long row = top; row <= bottom; ++row) {
            const auto r = std::size_t(row);
            blob.row_ends.push_back({first_x[r], row});
            if (last_x[r] != first_x[r]) blob.row_ends.push_back({last_x[r], row});
            first_x[r] = width, last_x[r] = -1;
        }
        use(blob);
    }
}

// Lines top to bottom, and left to right within a line, as people read them.
void sort_for_reading(std::vector<TextRegion>& regions) {
    std::sort(regions.begin(), regions.end(), [](const TextRegion& a, const TextRegion& b) {
        const Point& p = a.corners[0];
        const Point& q = b.corners[0];
        return p.y < q.y || (p.y == q.y && p.x < q.x);
    });
    for (std::size_t i = 1; i < regions.size(); ++i)
        for (std::size_t j = i; j > 0; --j) {
            const Point& earlier = regions[j - 1].corners[0];
            const Point& later = regions[j].corners[0];
            if (std::abs(later.y - earlier.y) >= 10 || later.x >= earlier.x) break;
            std::swap(regions[j - 1], regions[j]);
        }
}

}  // namespace

float TextRegion::length() const {
    return std::hypot(corners[1].x - corners[0].x, corners[1].y - corners[0].y);
}

float TextRegion::height() const {
    return std::hypot(corners[2].x - corners[1].x, corners[2].y - corners[1].y);
}

std::vector<TextRegion> find_text_regions(const float* map, int map_width, int map_height,
                                          int valid_width, int valid_height,
                                          const RegionSettings& settings) {
    const int width = std::clamp(valid_width, 0, map_width);
    const int height = std::clamp(valid_height, 0, map_height);
    if (width == 0 || height == 0) return {};
    std::vector<std::uint8_t> mask = text_mask(map, map_width, width, height,
                                               settings.pixel_threshold);
    std::vector<TextRegion> regions;
    for_each_blob(mask, map, map_width, width, height, [&](const Blob& blob) {
        if (blob.row_ends.size() < 3) return;
        const float score = float(blob.probability_sum / double(blob.pixels));
        if (score < settings.region_threshold) return;
        RotatedRect rect = smallest_rectangle(convex_hull(blob.row_ends));
        if (std::min(rect.length, rect.height) < settings.min_side) return;
        const float growth = rect.length * rect.height * settings.unclip_ratio /
                             (2 * (rect.length + rect.height));
        rect.length += 2 * growth;
        rect.height += 2 * growth;
        if (std::min(rect.length, rect.height) < settings.min_side + 2) return;
        regions.push_back(to_region(reading_direction(rect), score));
    });
    if (regions.size() > settings.max_regions) {
        std::partial_sort(regions.begin(), regions.begin() + std::ptrdiff_t(settings.max_regions),
                          regions.end(),
                          [](const TextRegion& a, const TextRegion& b) { return a.score > b.score; });
        regions.resize(settings.max_regions);
    }
    sort_for_reading(regions);
    return regions;
}

}  // namespace autotags
