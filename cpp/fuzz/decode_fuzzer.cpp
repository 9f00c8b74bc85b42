// libFuzzer target for decoding and pre-processing: arbitrary bytes go through the
// image loader with each kind of model input, and the result is copied into a model
// input buffer exactly as the pipeline does. Built with AddressSanitizer and
// UndefinedBehaviorSanitizer (cmake -DAUTOTAGS_FUZZ=ON, clang); see scripts/fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "../errors.hpp"
#include "../image_loader.hpp"

namespace {

// Small limits keep each input fast; the code paths are the same as at full size.
constexpr std::uint64_t max_source_pixels = 20'000'000;

// The same bytes under a name without an extension (libvips decides, or LibRaw for RAW
// signatures) and under a camera RAW name (LibRaw decides, TIFF-based DNG included).
// They live in the folder scripts/fuzz.sh makes and removes, as libFuzzer may end the
// process without running destructors.
const std::vector<std::string>& scratch_files() {
    const char* folder = std::getenv("AUTOTAGS_FUZZ_SCRATCH");
    static const std::string base = std::string(folder ? folder : "/tmp") + "/autotags-fuzz-" +
                                    std::to_string(::getpid());
    static const std::vector<std::string> paths{base, base + ".dng"};
    return paths;
}

std::vector<autotags::InputFit> model_inputs() {
    autotags::InputFit letterbox;  // YOLO-style
    letterbox.width = letterbox.height = 416;
    autotags::InputFit crop;  // classifier-style
    crop.width = crop.height = 280;
    crop.mode = autotags::ResizeMode::centre_crop;
    autotags::InputFit stretch;  // SSD-style, padded top-left
    stretch.width = stretch.height = 300;
    stretch.mode = autotags::ResizeMode::stretch;
    stretch.placement = autotags::PadPlacement::top_left;
    return {letterbox, crop, stretch};
}

void load_into_tensor(const autotags::InputFit& fit, const std::string& path) {
    try {
        const autotags::ImageLoader loader(fit, max_source_pixels);
        const autotags::LoadedImage image = loader.load(path);
        std::vector<std::uint8_t> tensor(autotags::input_bytes(fit));
        std::memcpy(tensor.data(), image.rgb.data(), tensor.size());
    } catch (const autotags::ImageError&) {
        // A per-file error is the right answer to a bad file.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The loader reads files, as it does for photos: write the input to them.
    for (const std::string& path : scratch_files()) {
        const std::unique_ptr<std::FILE, decltype(&std::fclose)> file(
            std::fopen(path.c_str(), "wb"), &std::fclose);
        if (!file || std::fwrite(data, 1, size, file.get()) != size) return 0;
    }
    static const std::vector<autotags::InputFit> fits = model_inputs();
    for (const autotags::InputFit& fit : fits) {
        load_into_tensor(fit, scratch_files()[0]);
    }
    load_into_tensor(fits.front(), scratch_files()[1]);
    return 0;
}
