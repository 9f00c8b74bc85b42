// Decodes image files with libvips straight to a model's input size.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <vips/vips8>

#include "detection.hpp"
#include "raw_loader.hpp"

namespace autotags {

enum class ResizeMode {
    letterbox,    // fit inside the input keeping aspect, pad the rest
    stretch,      // scale each axis to the input size independently
    centre_crop,  // fill the input keeping aspect, crop the overflow evenly
};

enum class PadPlacement { centre, top_left };

struct InputFit {
    int width = 640;
    int height = 640;
    ResizeMode mode = ResizeMode::letterbox;
    PadPlacement placement = PadPlacement::centre;
    std::array<std::uint8_t, 3> pad_colour{114, 114, 114};
};

// How model-input pixels relate to the original, EXIF-oriented image:
// input = source / scale + offset.
struct Geometry {
    int source_width = 0;
    int source_height = 0;
    double scale_x = 1, scale_y = 1;
    double offset_x = 0, offset_y = 0;
    PixelSource pixels = PixelSource::image;  // where the model's pixels came from

    // Maps a box or a point in input pixels to source pixels, clipped to the image.
    Box to_source(const Box& input_box) const;
    Point to_source(const Point& input_point) const;
    // The part of the input that shows the image, from the top-left corner.
    int covered_width() const;
    int covered_height() const;
};

struct LoadedImage {
    std::vector<std::uint8_t> rgb;  // fit.height x fit.width x 3, sRGB, 8-bit
    Geometry geometry;
};

// Bytes of one image at the model input size: height x width x RGB.
inline std::size_t input_bytes(const InputFit& fit) {
    return std::size_t(fit.width) * std::size_t(fit.height) * 3;
}

// One image fitted into each of several model inputs, or nothing where it was not wanted.
using LoadedImages = std::vector<std::optional<LoadedImage>>;

class ImageLoader {
public:
    ImageLoader(InputFit fit, std::uint64_t max_source_pixels);
    // Several models' inputs, filled from one decode of each file (see load_each).
    ImageLoader(std::vector<InputFit> fits, std::uint64_t max_source_pixels);

    // The image in the first input. Throws ImageError naming the file when it cannot be
    // decoded.
    LoadedImage load(const std::string& path) const;

    // Decodes `path` once, at the smallest scale that covers every input with `wanted`
    // set, and fits that one image into each of them. Throws ImageError as load() does.
    LoadedImages load_each(const std::string& path, const std::vector<bool>& wanted) const;

    const InputFit& fit() const { return fits_.front(); }
    std::uint64_t max_source_pixels() const { return max_source_pixels_; }
    std::size_t input_count() const { return fits_.size(); }

private:
    // The decode itself; libvips failures come out as vips::VError.
    LoadedImages decode(const std::string& path, const std::vector<bool>& wanted) const;
    LoadedImages decode_camera_raw(const std::string& path, const std::vector<bool>& wanted) const;
    // The wanted inputs filled from a decoded, oriented image of `width` x `height` source
    // pixels (exactly, or larger by a shrink-on-load factor).
    LoadedImages fit_into_inputs(vips::VImage image, int width, int height, PixelSource pixels,
                                 const std::string& path, const std::vector<bool>& wanted) const;
    std::vector<const InputFit*> wanted_fits(const std::vector<bool>& wanted) const;

    std::vector<InputFit> fits_;
    std::uint64_t max_source_pixels_;
};

// Starts libvips once per process; safe to call repeatedly.
void initialise_libvips();

}  // namespace autotags
