#include "image_loader.hpp"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>
#include <vips/vips8>

#include "errors.hpp"

namespace autotags {

using vips::VImage;
using vips::VSource;

void initialise_libvips() {
    static std::once_flag started;
    std::call_once(started, [] {
        if (VIPS_INIT("autotags")) throw std::runtime_error("libvips failed to start");
        // Parallelism comes from decoding several images at once; libvips' own
        // per-image threads and operation cache would only add contention and memory.
        vips_concurrency_set(1);
        vips_cache_set_max(0);
        // Problems surface as per-file errors; libvips' warnings would only clutter stderr.
        g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING,
                          [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {}, nullptr);
    });
}

namespace {

void check_is_readable_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) throw ImageError(path, "no such file");
    if (error) throw ImageError(path, error.message());
    if (fs::is_directory(status)) throw ImageError(path, "is a directory, not an image file");
    if (!fs::is_regular_file(status)) throw ImageError(path, "not a regular file");
    if (fs::file_size(path, error) == 0 && !error) throw ImageError(path, "empty file");
}

// Orientation tags 5-8 swap the axes of the displayed image.
bool orientation_swaps_axes(const VImage& header) {
    if (header.get_typeof(VIPS_META_ORIENTATION) == 0) return false;
    const int orientation = header.get_int(VIPS_META_ORIENTATION);
    return orientation >= 5 && orientation <= 8;
}

VImage to_srgb_uint8(VImage image) {
    if (image.interpretation() != VIPS_INTERPRETATION_sRGB)
        image = image.colourspace(VIPS_INTERPRETATION_sRGB);
    if (image.has_alpha())
        image = image.flatten(VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
    if (image.bands() == 1) image = image.bandjoin({image, image});
    if (image.bands() > 3) image = image.extract_band(0, VImage::option()->set("n", 3));
    return image;
}

std::vector<std::uint8_t> copy_pixels(const VImage& image) {
    std::size_t size = 0;
    const std::unique_ptr<void, decltype(&g_free)> pixels(image.write_to_memory(&size), g_free);
    const auto* begin = static_cast<const std::uint8_t*>(pixels.get());
    return {begin, begin + size};
}

// libvips reports errors in its own vocabulary; say the common ones plainly.
std::string readable_reason(std::string reason) {
    if (reason.find("not in a known format") != std::string::npos)
        return "not an image, or a format this system's libvips cannot read";
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    return reason.empty() ? "cannot decode the image" : reason;
}

VipsSize thumbnail_size_rule(ResizeMode mode) {
    return mode == ResizeMode::stretch ? VIPS_SIZE_FORCE : VIPS_SIZE_BOTH;
}

}  // namespace

Box Geometry::to_source(const Box& input_box) const {
    const auto map_x = [&](float x) {
        return static_cast<float>(std::clamp((x - offset_x) * scale_x, 0.0, double(source_width)));
    };
    const auto map_y = [&](float y) {
        return static_cast<float>(std::clamp((y - offset_y) * scale_y, 0.0, double(source_height)));
    };
    return {map_x(input_box.x1), map_y(input_box.y1), map_x(input_box.x2), map_y(input_box.y2)};
}

ImageLoader::ImageLoader(InputFit fit, std::uint64_t max_source_pixels)
    : fit_(fit), max_source_pixels_(max_source_pixels) {
    if (fit_.width <= 0 || fit_.height <= 0)
        throw std::invalid_argument("model input size must be positive");
    initialise_libvips();
}

LoadedImage ImageLoader::load(const std::string& path) const {
    check_is_readable_file(path);
    try {
        // Reading the header first costs little and rejects decompression bombs
        // before any pixel is decoded.
        const VImage header = VImage::new_from_source(
            VSource::new_from_file(path.c_str()), "",
            VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
        const std::uint64_t pixels = std::uint64_t(header.width()) * std::uint64_t(header.height());
        if (pixels > max_source_pixels_)
            throw ImageError(path, "image is " + std::to_string(header.width()) + "x" +
                                       std::to_string(header.height()) + " pixels, over the limit of " +
                                       std::to_string(max_source_pixels_ / 1000000) + " megapixels");
        const bool swapped = orientation_swaps_axes(header);

        // thumbnail_source shrinks on load (JPEG DCT scaling, WebP/HEIF/PDF scale),
        // applies the EXIF orientation and handles ICC profiles.
        auto options = VImage::option()
                           ->set("height", fit_.height)
                           ->set("size", thumbnail_size_rule(fit_.mode))
                           // Fail rather than tag the grey filler of a cut-off file.
                           ->set("option_string", "fail_on=truncated");
        if (fit_.mode == ResizeMode::centre_crop) options->set("crop", VIPS_INTERESTING_CENTRE);
        VImage image = to_srgb_uint8(
            VImage::thumbnail_source(VSource::new_from_file(path.c_str()), fit_.width, options));

        Geometry geometry;
        geometry.source_width = swapped ? header.height() : header.width();
        geometry.source_height = swapped ? header.width() : header.height();
        if (fit_.mode == ResizeMode::centre_crop) {
            const double scale = std::max(double(fit_.width) / geometry.source_width,
                                          double(fit_.height) / geometry.source_height);
            geometry.scale_x = geometry.scale_y = 1.0 / scale;
            geometry.offset_x = (fit_.width - geometry.source_width * scale) / 2;
            geometry.offset_y = (fit_.height - geometry.source_height * scale) / 2;
        } else {
            geometry.scale_x = double(geometry.source_width) / image.width();
            geometry.scale_y = double(geometry.source_height) / image.height();
        }
        if (image.width() != fit_.width || image.height() != fit_.height) {
            const bool centred = fit_.placement == PadPlacement::centre;
            const int left = centred ? (fit_.width - image.width()) / 2 : 0;
            const int top = centred ? (fit_.height - image.height()) / 2 : 0;
            const auto& pad = fit_.pad_colour;
            image = image.embed(left, top, fit_.width, fit_.height,
                                VImage::option()
                                    ->set("extend", VIPS_EXTEND_BACKGROUND)
                                    ->set("background", std::vector<double>{double(pad[0]), double(pad[1]),
                                                                            double(pad[2])}));
            geometry.offset_x = left;
            geometry.offset_y = top;
        }

        return {copy_pixels(image), geometry};
    } catch (const vips::VError& error) {
        vips_error_clear();
        throw ImageError(path, readable_reason(error.what()));
    }
}

}  // namespace autotags
