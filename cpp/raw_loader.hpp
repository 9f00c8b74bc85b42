// Camera RAW files (CR2, NEF, ARW, DNG, ...) read with LibRaw: through the largest
// embedded JPEG preview when it is big enough, else by LibRaw's half-size processing.
#pragma once

#include <functional>
#include <string>
#include <vips/vips8>

namespace autotags {

enum class PixelSource {
    image,    // the file's own pixels (JPEG, PNG, ...)
    preview,  // a camera RAW file's embedded JPEG preview
    raw,      // a camera RAW file's sensor data, processed at half size
};

const char* to_string(PixelSource source);

struct RawPicture {
    vips::VImage image;  // oriented as the RAW file says, at least the size asked for
    int sensor_width = 0;  // the sensor image's size, oriented
    int sensor_height = 0;
    PixelSource source = PixelSource::preview;
};

// The pixel size a caller needs for a picture of the given (oriented) size.
using SizeNeeded = std::function<std::pair<int, int>(int width, int height)>;

// True for files LibRaw should read: camera RAW file names, or, in files not named as
// another photo format, RAW content (Fuji RAF, Olympus ORF, Panasonic RW2, Canon CR3 and
// CRW by signature; TIFF-based RAW files when LibRaw identifies them).
bool is_camera_raw(const std::string& path);

// The extensions of camera RAW files, lower case with the dot (".cr2").
const std::vector<std::string>& camera_raw_extensions();

// Throws ImageError naming the file when LibRaw cannot read it, when its sensor image
// is over `max_pixels`, or when neither the preview nor the raw data can be decoded.
RawPicture load_camera_raw(const std::string& path, const SizeNeeded& needed,
                           std::uint64_t max_pixels);

}  // namespace autotags
