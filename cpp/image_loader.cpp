#include "image_loader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <vips/vips8>

#include "errors.hpp"
#include "jpeg_shrink.hpp"

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
        // libvips picks a loader by content, whatever a file is called, so a crafted
        // `photo.jpg` could reach PDF, SVG, FITS, OpenSlide, ImageMagick or the matrix and
        // CSV readers. Only photo formats are allowed; every other loader is blocked.
        vips_operation_block_set("VipsForeignLoad", TRUE);
        for (const char* loader : {"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
                                   "VipsForeignLoadTiff", "VipsForeignLoadHeif", "VipsForeignLoadNsgif",
                                   "VipsForeignLoadJxl", "VipsForeignLoadJp2k", "VipsForeignLoadPpm"})
            vips_operation_block_set(loader, FALSE);
    });
}

namespace {

// libvips keeps one error buffer for the whole process, which decodes running at the
// same time write into. Loads hold this shared; a failed load is decoded again holding
// it exclusively, from a cleared buffer, so that its message is its own.
std::shared_mutex& error_buffer_users() {
    static std::shared_mutex users;
    return users;
}

std::string kind_of(std::filesystem::file_type type) {
    using std::filesystem::file_type;
    switch (type) {
        case file_type::fifo: return "a FIFO";
        case file_type::character: return "a character device";
        case file_type::block: return "a block device";
        case file_type::socket: return "a socket";
        default: return "something else";
    }
}

void check_is_readable_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) throw ImageError(path, "no such file");
    if (error) throw ImageError(path, error.message());
    if (fs::is_directory(status)) throw ImageError(path, "is a directory, not an image file");
    if (!fs::is_regular_file(status))
        throw ImageError(path, "not a regular file but " + kind_of(status.type()) + "; not read");
    if (fs::file_size(path, error) == 0 && !error) throw ImageError(path, "empty file");
}

int orientation(const VImage& header) {
    if (header.get_typeof(VIPS_META_ORIENTATION) == 0) return 1;
    const int tag = header.get_int(VIPS_META_ORIENTATION);
    return tag >= 1 && tag <= 8 ? tag : 1;
}

// Whatever the file claimed to be, the result is 3-band 8-bit sRGB, or the file fails:
// an interpretation label does not promise a band count (a crafted 2-band "sRGB" image).
VImage to_srgb_uint8(VImage image, const std::string& path) {
    if (image.interpretation() != VIPS_INTERPRETATION_sRGB)
        image = image.colourspace(VIPS_INTERPRETATION_sRGB);
    if (image.has_alpha())
        image = image.flatten(VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
    if (image.bands() < 3) {
        const VImage grey = image.extract_band(0);
        image = grey.bandjoin({grey, grey});
    }
    if (image.bands() > 3) image = image.extract_band(0, VImage::option()->set("n", 3));
    if (image.bands() != 3 || image.format() != VIPS_FORMAT_UCHAR)
        throw ImageError(path, "cannot convert its pixels to 8-bit RGB");
    return image;
}

std::vector<std::uint8_t> copy_pixels(const VImage& image, const std::string& path) {
    std::size_t size = 0;
    const std::unique_ptr<void, decltype(&g_free)> pixels(image.write_to_memory(&size), g_free);
    const std::size_t expected = std::size_t(image.width()) * std::size_t(image.height()) * 3;
    if (!pixels || size != expected)
        throw ImageError(path, "decoded to " + std::to_string(size) + " bytes where " +
                                   std::to_string(expected) + " were expected");
    const auto* begin = static_cast<const std::uint8_t*>(pixels.get());
    return {begin, begin + size};
}

// libvips reports errors in its own vocabulary; say the common ones plainly.
std::string readable_reason(std::string reason) {
    if (reason.find("not in a known format") != std::string::npos)
        return "not an image, or a format this system's libvips cannot read";
    const std::size_t blocked = reason.find("load_source: operation is blocked");
    if (blocked != std::string::npos) {
        std::string format = reason.substr(0, blocked);
        std::transform(format.begin(), format.end(), format.begin(), ::toupper);
        return "a " + format + " file, not a photo; only photo formats are read (JPEG, PNG, "
               "WebP, TIFF, HEIF/AVIF, GIF, JPEG XL, JPEG 2000, PNM)";
    }
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    return reason.empty() ? "cannot decode the image" : reason;
}

struct Size {
    int width, height;
};

using Fits = std::vector<const InputFit*>;

// The size the whole (oriented) image takes before padding (letterbox) or cropping.
Size scaled_size(const InputFit& fit, int width, int height) {
    if (fit.mode == ResizeMode::stretch) return {fit.width, fit.height};
    const double across = double(fit.width) / width, down = double(fit.height) / height;
    const double scale = fit.mode == ResizeMode::letterbox ? std::min(across, down)
                                                          : std::max(across, down);
    const auto scaled = [&](int length, int limit) {
        const int result = std::max(1, int(std::lround(length * scale)));
        return fit.mode == ResizeMode::letterbox ? std::min(result, limit) : std::max(result, limit);
    };
    return {scaled(width, fit.width), scaled(height, fit.height)};
}

// What to decode a `width` x `height` image to so that every fit can be made from it:
// exactly the one fit's size, or the image's own proportions covering all of them.
Size covering_size(const Fits& fits, int width, int height) {
    if (fits.size() == 1) return scaled_size(*fits.front(), width, height);
    double scale = 0;
    for (const InputFit* fit : fits) {
        const Size scaled = scaled_size(*fit, width, height);
        scale = std::max({scale, double(scaled.width) / width, double(scaled.height) / height});
    }
    return {std::max(1, int(std::ceil(width * scale))), std::max(1, int(std::ceil(height * scale)))};
}

// The largest JPEG shrink-on-load factor that leaves every fit its detail.
int covering_jpeg_shrink(const Fits& fits, int width, int height) {
    int shrink = 8;
    for (const InputFit* fit : fits) {
        const Size scaled = scaled_size(*fit, width, height);
        shrink = std::min(shrink, jpeg_shrink(width, height, scaled.width, scaled.height));
    }
    return shrink;
}

// Pads (letterbox) or crops (centre_crop) a scaled image to the input size.
VImage place_in_input(const VImage& image, int left, int top, const InputFit& fit) {
    if (image.width() == fit.width && image.height() == fit.height) return image;
    if (fit.mode == ResizeMode::centre_crop)
        return image.extract_area(-left, -top, fit.width, fit.height);
    const auto& pad = fit.pad_colour;
    return image.embed(left, top, fit.width, fit.height,
                       VImage::option()
                           ->set("extend", VIPS_EXTEND_BACKGROUND)
                           ->set("background",
                                 std::vector<double>{double(pad[0]), double(pad[1]), double(pad[2])}));
}

std::string loader_of(const VImage& header) {
    return header.get_typeof("vips-loader") != 0 ? header.get_string("vips-loader") : "";
}

bool is_jpeg(const VImage& header) { return loader_of(header).rfind("jpegload", 0) == 0; }

// Most loaders stream rows or shrink while decoding, so memory stays small whatever the
// image size; interlaced PNG, progressive JPEG, GIF, HEIF and JPEG XL hold it whole.
constexpr std::uint64_t max_whole_decode_bytes = std::uint64_t(512) << 20;

bool decoded_whole(const VImage& header) {
    if (header.get_typeof("interlaced") != 0 && header.get_int("interlaced") != 0) return true;
    const std::string loader = loader_of(header);
    for (const char* whole : {"gifload", "heifload", "jxlload"})
        if (loader.rfind(whole, 0) == 0) return true;
    return false;
}

VImage decode_jpeg(const std::string& path, int shrink, bool rotated) {
    // Turning an image needs its rows out of order; it is small after the shrink.
    const VipsAccess access = rotated ? VIPS_ACCESS_RANDOM : VIPS_ACCESS_SEQUENTIAL;
    return VImage::new_from_source(VSource::new_from_file(path.c_str()), "",
                                   VImage::option()
                                       ->set("shrink", shrink)
                                       ->set("access", access)
                                       // Fail rather than tag the grey filler of a cut-off file.
                                       ->set("fail_on", VIPS_FAIL_ON_TRUNCATED))
        .autorot();
}

// Other formats: thumbnail_source knows each loader's own shrink-on-load (WebP, HEIF,
// TIFF pyramids, PDF/SVG scale) and applies the orientation and ICC profile.
VImage decode_with_thumbnail(const std::string& path, Size target) {
    return VImage::thumbnail_source(VSource::new_from_file(path.c_str()), target.width,
                                    VImage::option()
                                        ->set("height", target.height)
                                        ->set("size", VIPS_SIZE_FORCE)
                                        ->set("option_string", "fail_on=truncated"));
}

VImage resize_exactly(const VImage& image, Size target) {
    if (image.width() == target.width && image.height() == target.height) return image;
    const VImage resized =
        image.resize(double(target.width) / image.width(),
                     // Lanczos, not linear: cheaper kernels cost the detectors accuracy.
                     VImage::option()->set("vscale", double(target.height) / image.height()));
    // Rounding inside resize may leave a one-pixel difference; settle it with the edge.
    return resized.embed(0, 0, target.width, target.height,
                         VImage::option()->set("extend", VIPS_EXTEND_COPY));
}

// Scales an sRGB image of `width` x `height` source pixels (or larger by a shrink-on-load
// factor) into one model input.
LoadedImage fit_into_input(const VImage& srgb, int width, int height, PixelSource pixels,
                           const std::string& path, const InputFit& fit) {
    const Size scaled = scaled_size(fit, width, height);
    const VImage image = resize_exactly(srgb, scaled);

    Geometry geometry;
    geometry.pixels = pixels;
    geometry.source_width = width;
    geometry.source_height = height;
    geometry.scale_x = double(width) / scaled.width;
    geometry.scale_y = double(height) / scaled.height;
    const bool centred = fit.placement == PadPlacement::centre ||
                         fit.mode == ResizeMode::centre_crop;
    geometry.offset_x = centred ? (fit.width - scaled.width) / 2 : 0;
    geometry.offset_y = centred ? (fit.height - scaled.height) / 2 : 0;
    LoadedImage loaded{
        copy_pixels(place_in_input(image, int(geometry.offset_x), int(geometry.offset_y), fit),
                    path),
        geometry};
    if (loaded.rgb.size() != input_bytes(fit))
        throw ImageError(path, "decoded to " + std::to_string(loaded.rgb.size()) +
                                   " bytes, not the model input's " +
                                   std::to_string(input_bytes(fit)));
    return loaded;
}

}  // namespace

namespace {

float to_source_axis(float input, double offset, double scale, int size) {
    return static_cast<float>(std::clamp((input - offset) * scale, 0.0, double(size)));
}

}  // namespace

Box Geometry::to_source(const Box& input_box) const {
    return {to_source_axis(input_box.x1, offset_x, scale_x, source_width),
            to_source_axis(input_box.y1, offset_y, scale_y, source_height),
            to_source_axis(input_box.x2, offset_x, scale_x, source_width),
            to_source_axis(input_box.y2, offset_y, scale_y, source_height)};
}

Point Geometry::to_source(const Point& input_point) const {
    return {to_source_axis(input_point.x, offset_x, scale_x, source_width),
            to_source_axis(input_point.y, offset_y, scale_y, source_height)};
}

int Geometry::covered_width() const {
    return int(std::ceil(offset_x + source_width / scale_x));
}

int Geometry::covered_height() const {
    return int(std::ceil(offset_y + source_height / scale_y));
}

ImageLoader::ImageLoader(InputFit fit, std::uint64_t max_source_pixels)
    : ImageLoader(std::vector<InputFit>{fit}, max_source_pixels) {}

ImageLoader::ImageLoader(std::vector<InputFit> fits, std::uint64_t max_source_pixels)
    : fits_(std::move(fits)), max_source_pixels_(max_source_pixels) {
    if (fits_.empty()) throw std::invalid_argument("an image loader needs a model input");
    for (const InputFit& fit : fits_)
        if (fit.width <= 0 || fit.height <= 0)
            throw std::invalid_argument("model input size must be positive");
    initialise_libvips();
}

LoadedImage ImageLoader::load(const std::string& path) const {
    std::vector<bool> first(fits_.size(), false);
    first.front() = true;
    return std::move(*load_each(path, first).front());
}

std::vector<const InputFit*> ImageLoader::wanted_fits(const std::vector<bool>& wanted) const {
    std::vector<const InputFit*> fits;
    for (std::size_t i = 0; i < fits_.size(); ++i)
        if (wanted[i]) fits.push_back(&fits_[i]);
    return fits;
}

LoadedImages ImageLoader::load_each(const std::string& path, const std::vector<bool>& wanted) const {
    if (wanted.size() != fits_.size())
        throw std::invalid_argument("wanted names " + std::to_string(wanted.size()) +
                                    " model inputs, the loader has " +
                                    std::to_string(fits_.size()));
    if (std::none_of(wanted.begin(), wanted.end(), [](bool w) { return w; }))
        return LoadedImages(fits_.size());
    // Test hook: the crash-quarantine tests need a real process death on a chosen file,
    // as a decoder bug in a third-party library would cause.
    if (const char* poison = std::getenv("AUTOTAGS_TEST_CRASH_ON");
        poison != nullptr && *poison != '\0' && path.find(poison) != std::string::npos)
        std::abort();
    check_is_readable_file(path);
    {
        const std::shared_lock decoding(error_buffer_users());
        try {
            return decode(path, wanted);
        } catch (const vips::VError&) {
            // The message may hold other files' errors: see error_buffer_users().
        }
    }
    const std::unique_lock alone(error_buffer_users());
    vips_error_clear();
    try {
        return decode(path, wanted);
    } catch (const vips::VError& error) {
        const std::string reason = error.what();
        vips_error_clear();
        throw ImageError(path, readable_reason(reason));
    }
}

LoadedImages ImageLoader::decode(const std::string& path, const std::vector<bool>& wanted) const {
    if (is_camera_raw(path)) return decode_camera_raw(path, wanted);
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
    const std::uint64_t whole_bytes =
        pixels * std::uint64_t(header.bands()) * vips_format_sizeof(header.format());
    if (decoded_whole(header) && whole_bytes > max_whole_decode_bytes)
        throw ImageError(path, "interlaced image of " + std::to_string(header.width()) + "x" +
                                   std::to_string(header.height()) +
                                   " pixels: decoding it would need " +
                                   std::to_string(whole_bytes >> 20) + " MiB, over the limit of " +
                                   std::to_string(max_whole_decode_bytes >> 20) + " MiB");
    const int turn = orientation(header);
    const bool swapped = turn >= 5;  // tags 5-8 swap the axes of the displayed image
    const int width = swapped ? header.height() : header.width();
    const int height = swapped ? header.width() : header.height();
    const Fits fits = wanted_fits(wanted);

    const VImage image =
        is_jpeg(header) ? decode_jpeg(path, covering_jpeg_shrink(fits, width, height), turn != 1)
                        : decode_with_thumbnail(path, covering_size(fits, width, height));
    return fit_into_inputs(image, width, height, PixelSource::image, path, wanted);
}

LoadedImages ImageLoader::decode_camera_raw(const std::string& path,
                                            const std::vector<bool>& wanted) const {
    const Fits fits = wanted_fits(wanted);
    const auto needed = [&fits](int width, int height) {
        const Size covering = covering_size(fits, width, height);
        return std::pair{covering.width, covering.height};
    };
    const RawPicture picture = load_camera_raw(path, needed, max_source_pixels_);
    return fit_into_inputs(picture.image, picture.sensor_width, picture.sensor_height,
                           picture.source, path, wanted);
}

LoadedImages ImageLoader::fit_into_inputs(VImage image, int width, int height, PixelSource pixels,
                                          const std::string& path,
                                          const std::vector<bool>& wanted) const {
    image = to_srgb_uint8(image, path);
    // Several inputs: the decode runs once, into memory, and each input is made from it.
    if (std::count(wanted.begin(), wanted.end(), true) > 1) image = image.copy_memory();
    LoadedImages loaded(fits_.size());
    for (std::size_t i = 0; i < fits_.size(); ++i)
        if (wanted[i]) loaded[i] = fit_into_input(image, width, height, pixels, path, fits_[i]);
    return loaded;
}

}  // namespace autotags
