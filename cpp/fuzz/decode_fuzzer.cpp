// libFuzzer target for decoding and pre-processing: arbitrary bytes go through the
// image loader with each kind of model input, and the result is copied into a model
// input buffer exactly as the pipeline does. Built with AddressSanitizer and
// UndefinedBehaviorSanitizer (cmake -DAUTOTAGS_FUZZ=ON, clang); see scripts/fuzz.sh.
#include <cstdint>
#include <cstdio>
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

const std::string& scratch_file() {
    static const std::string path = "/tmp/autotags-fuzz-" + std::to_string(::getpid());
    return path;
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The loader reads files, as it does for photos: write the input to one.
    {
        const std::unique_ptr<std::FILE, decltype(&std::fclose)> file(
            std::fopen(scratch_file().c_str(), "wb"), &std::fclose);
        if (!file || std::fwrite(data, 1, size, file.get()) != size) return 0;
    }
    static const std::vector<autotags::InputFit> fits = model_inputs();
    for (const autotags::InputFit& fit : fits) {
        try {
            const autotags::ImageLoader loader(fit, max_source_pixels);
            const autotags::LoadedImage image = loader.load(scratch_file());
            std::vector<std::uint8_t> tensor(autotags::input_bytes(fit));
            std::memcpy(tensor.data(), image.rgb.data(), tensor.size());
        } catch (const autotags::ImageError&) {
            // A per-file error is the right answer to a bad file.
        }
    }
    return 0;
}
