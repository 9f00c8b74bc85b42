#include "raw_loader.hpp"

#include <libraw/libraw.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>

#include "errors.hpp"
#include "jpeg_shrink.hpp"

namespace autotags {

using vips::VImage;

const char* to_string(PixelSource source) {
    switch (source) {
        case PixelSource::preview: return "preview";
        case PixelSource::raw: return "raw";
        case PixelSource::image: break;
    }
    return "image";
}

const std::vector<std::string>& camera_raw_extensions() {
    static const std::vector<std::string> extensions{
        ".3fr", ".ari", ".arw", ".bay", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng",
        ".erf", ".fff", ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw",
        ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f"};
    return extensions;
}

namespace {

std::string lower_extension(const std::string& path) {
    const std::size_t dot = path.find_last_of('.');
    const std::size_t slash = path.find_last_of('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string extension = path.substr(dot);
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return extension;
}

// A LibRaw instance that keeps quiet: it reports damaged data on stderr by default,
// where here it reaches callers as errors.
std::unique_ptr<LibRaw> quiet_libraw() {
    auto raw = std::make_unique<LibRaw>();
    raw->set_dataerror_handler([](void*, const char*, const int) {}, nullptr);
    return raw;
}

// RAW content in a file whose name does not say: the signatures of RAW formats libvips
// does not claim, and TIFF-based files (NEF, ARW, DNG, ...) that LibRaw identifies as a
// camera's, which libvips would read as the small TIFF in their first directory.
bool has_raw_content(const std::string& path) {
    std::array<char, 16> head{};
    std::ifstream file(path, std::ios::binary);
    if (!file.read(head.data(), head.size())) return false;
    const auto starts = [&](const char* magic, std::size_t length, std::size_t at = 0) {
        return std::memcmp(head.data() + at, magic, length) == 0;
    };
    if (starts("FUJIFILMCCD-RAW", 15) || starts("IIRO", 4) || starts("IIRS", 4) ||
        starts("MMOR", 4) || starts("IIU\0", 4) || starts("II\x1a\0\0\0HEAPCCDR", 14) ||
        (starts("ftyp", 4, 4) && starts("crx ", 4, 8)))
        return true;
    if (!starts("II*\0", 4) && !starts("MM\0*", 4)) return false;
    const auto raw = quiet_libraw();
    return raw->open_file(path.c_str()) == LIBRAW_SUCCESS && raw->imgdata.idata.raw_count > 0;
}

// LibRaw's `flip` as the EXIF orientation tag that means the same turn.
int exif_orientation(int flip) {
    static constexpr std::array<int, 8> orientation_of_flip{1, 2, 4, 3, 5, 8, 6, 7};
    return flip >= 0 && flip < 8 ? orientation_of_flip[std::size_t(flip)] : 1;
}

bool swaps_axes(int flip) { return (flip & 4) != 0; }

class RawFile {
public:
    explicit RawFile(const std::string& path) : path_(path), raw_(quiet_libraw()) {
        check(raw_->open_file(path.c_str()),
              "cannot read it as a camera RAW file: it is damaged, cut short or not RAW");
    }

    // The picture's size as the camera frames it: the maker's recommended crop of the
    // sensor where the file has one (what exiftool and photo managers report), else
    // LibRaw's visible area.
    int width() const { return framed() ? inset().cwidth : raw_->imgdata.sizes.width; }
    int height() const { return framed() ? inset().cheight : raw_->imgdata.sizes.height; }
    int flip() const { return raw_->imgdata.sizes.flip; }

    // The embedded JPEG preview LibRaw considers the largest, if there is one.
    bool unpack_jpeg_preview() {
        return raw_->unpack_thumb() == LIBRAW_SUCCESS &&
               raw_->imgdata.thumbnail.tformat == LIBRAW_THUMBNAIL_JPEG &&
               raw_->imgdata.thumbnail.thumb != nullptr && raw_->imgdata.thumbnail.tlength > 0;
    }

    const char* preview_data() const { return raw_->imgdata.thumbnail.thumb; }
    std::size_t preview_size() const { return raw_->imgdata.thumbnail.tlength; }

    // The sensor data demosaiced at half size, oriented, 8-bit sRGB.
    VImage half_size_image() {
        raw_->imgdata.params.half_size = 1;
        raw_->imgdata.params.use_camera_wb = 1;
        raw_->imgdata.params.output_bps = 8;
        check(raw_->unpack(), "cannot read its raw data");
        check(raw_->dcraw_process(), "cannot process its raw data");
        int error = LIBRAW_SUCCESS;
        const std::unique_ptr<libraw_processed_image_t, decltype(&LibRaw::dcraw_clear_mem)>
            processed(raw_->dcraw_make_mem_image(&error), &LibRaw::dcraw_clear_mem);
        check(error, "cannot process its raw data");
        if (!processed || processed->type != LIBRAW_IMAGE_BITMAP || processed->colors != 3 ||
            processed->bits != 8 ||
            processed->data_size != std::size_t(processed->width) * processed->height * 3)
            throw ImageError(path_, "its raw data did not process to an 8-bit RGB image");
        VipsImage* copied = vips_image_new_from_memory_copy(
            processed->data, processed->data_size, processed->width, processed->height, 3,
            VIPS_FORMAT_UCHAR);
        if (copied == nullptr) throw vips::VError();
        const VImage image(copied);  // owns the copy from here on
        return image.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    }

private:
    const libraw_raw_inset_crop_t& inset() const { return raw_->imgdata.sizes.raw_inset_crop; }
    bool framed() const {
        const auto& sizes = raw_->imgdata.sizes;
        return inset().cwidth > 0 && inset().cheight > 0 && inset().cwidth <= sizes.raw_width &&
               inset().cheight <= sizes.raw_height;
    }

    void check(int code, const char* what) const {
        if (code != LIBRAW_SUCCESS)
            throw ImageError(path_, std::string(what) + " (LibRaw: " + libraw_strerror(code) + ")");
    }

    std::string path_;
    std::unique_ptr<LibRaw> raw_;
};

// The preview decoded with the largest JPEG shrink that keeps `width` x `height` (before
// the turn), as a JPEG file is, then turned as the RAW file says: the preview's own
// orientation tag, if any, is not what counts.
VImage decode_preview(const RawFile& raw, std::pair<int, int> stored, int width, int height) {
    VImage image =
        VImage::new_from_source(
            vips::VSource::new_from_memory(raw.preview_data(), raw.preview_size()), "",
            VImage::option()
                ->set("shrink", jpeg_shrink(stored.first, stored.second, width, height))
                ->set("fail_on", VIPS_FAIL_ON_TRUNCATED))
            // Decoded now, while LibRaw still holds the preview's bytes.
            .copy_memory();
    image.set(VIPS_META_ORIENTATION, exif_orientation(raw.flip()));
    return image.autorot();
}

// The preview's width and height as stored (before the turn), from its header.
std::pair<int, int> preview_dimensions(const RawFile& raw) {
    const VImage header = VImage::new_from_source(
        vips::VSource::new_from_memory(raw.preview_data(), raw.preview_size()), "",
        VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
    return {header.width(), header.height()};
}

}  // namespace

bool is_camera_raw(const std::string& path) {
    const std::string extension = lower_extension(path);
    const auto& raw = camera_raw_extensions();
    if (std::find(raw.begin(), raw.end(), extension) != raw.end()) return true;
    static const std::array<const char*, 11> photo{".jpg", ".jpeg", ".png", ".tif", ".tiff",
                                                   ".webp", ".heic", ".heif", ".avif", ".gif",
                                                   ".jxl"};
    const bool named_as_photo = std::find(photo.begin(), photo.end(), extension) != photo.end();
    return !named_as_photo && has_raw_content(path);
}

RawPicture load_camera_raw(const std::string& path, const SizeNeeded& needed,
                           std::uint64_t max_pixels) {
    RawFile raw(path);
    const bool swapped = swaps_axes(raw.flip());
    RawPicture picture;
    picture.sensor_width = swapped ? raw.height() : raw.width();
    picture.sensor_height = swapped ? raw.width() : raw.height();
    if (picture.sensor_width <= 0 || picture.sensor_height <= 0)
        throw ImageError(path, "a camera RAW file without an image size");
    if (std::uint64_t(picture.sensor_width) * std::uint64_t(picture.sensor_height) > max_pixels)
        throw ImageError(path, "camera RAW image of " + std::to_string(picture.sensor_width) +
                                   "x" + std::to_string(picture.sensor_height) +
                                   " pixels, over the limit of " +
                                   std::to_string(max_pixels / 1000000) + " megapixels");
    const auto [want_width, want_height] = needed(picture.sensor_width, picture.sensor_height);
    if (raw.unpack_jpeg_preview()) {
        try {
            const auto [width, height] = preview_dimensions(raw);
            const int oriented_width = swapped ? height : width;
            const int oriented_height = swapped ? width : height;
            if (oriented_width >= want_width && oriented_height >= want_height) {
                picture.image = decode_preview(raw, {width, height},
                                               swapped ? want_height : want_width,
                                               swapped ? want_width : want_height);
                picture.source = PixelSource::preview;
                return picture;
            }
        } catch (const vips::VError&) {
            vips_error_clear();  // a damaged preview: the raw data may still be fine
        }
    }
    picture.image = raw.half_size_image();
    picture.source = PixelSource::raw;
    return picture;
}

}  // namespace autotags
