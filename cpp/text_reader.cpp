#include "text_reader.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vips/vips8>

#include "errors.hpp"

namespace autotags {

namespace {

// Recogniser input is padded with mid grey, which the model's normalisation makes 0, as
// PP-OCR pads its own.
constexpr std::uint8_t PAD_GREY = 128;
// Batches are at least six line heights wide (PP-OCR's 320 at height 48, rounded down).
constexpr int MIN_BATCH_WIDTH_IN_HEIGHTS = 320 / 48;
constexpr float DOUBTFUL_CONFIDENCE = 0.8f;

void check_output_rank(const InferenceModel& model, std::size_t rank, const std::string& expected) {
    const auto shapes = model.output_partial_shapes();
    if (shapes.size() != 1 || shapes[0].rank().is_dynamic() ||
        std::size_t(shapes[0].rank().get_length()) != rank)
        throw ModelError(model.path() + ": outputs " +
                         (shapes.empty() ? std::string("nothing") : shapes[0].to_string()) +
                         "; a text model's output is " + expected);
}

}  // namespace

struct TextReader::Crop {
    std::vector<std::uint8_t> rgb;  // line_height rows of `width` pixels
    int width = 0;
    std::size_t region = 0;  // which region it shows
    bool turned = false;     // turned over by the orientation classifier
};

TextReader::TextReader(std::shared_ptr<InferenceModel> recogniser,
                       std::shared_ptr<InferenceModel> orientation,
                       std::vector<std::string> characters, TextSettings settings)
    : recogniser_(std::move(recogniser)), orientation_(std::move(orientation)),
      settings_(settings) {
    if (!recogniser_) throw std::invalid_argument("a text reader needs a recogniser");
    if (characters.empty()) throw ModelError("the text recogniser has no character list");
    settings_.batch = std::max(1, settings_.batch);
    settings_.max_line_width = std::clamp(settings_.max_line_width, 16, 8192);
    if (!(settings_.space_in_gap >= 0.f)) settings_.space_in_gap = 1.f;  // NaN or negative: never
    classes_.reserve(characters.size() + 2);
    classes_.emplace_back();
    for (std::string& character : characters) classes_.push_back(std::move(character));
    classes_.emplace_back(" ");
    line_height_ = recogniser_->input_height();
    if (line_height_ < 8 || line_height_ > 256)
        throw ModelError(recogniser_->path() + ": a recogniser input of height " +
                         std::to_string(line_height_) + " is not a line of text");
    check_output_rank(*recogniser_, 3, "[lines, steps, classes]");
    const ov::PartialShape steps = recogniser_->output_partial_shapes()[0];
    if (steps[2].is_static() && std::size_t(steps[2].get_length()) != classes_.size())
        throw ModelError(recogniser_->path() + ": outputs " + std::to_string(steps[2].get_length()) +
                         " classes, but its character list makes " +
                         std::to_string(classes_.size()) + " with blank and space");
    if (orientation_) {
        check_output_rank(*orientation_, 2, "[lines, 2] (upright, turned over)");
        orientation_width_ = orientation_->input_width();
        if (orientation_->input_height() != line_height_ || orientation_width_ <= 0)
            throw ModelError(orientation_->path() + ": its input must be as high as the "
                                                    "recogniser's and of fixed width");
    }
}

void TextReader::check_detector(const InferenceModel& detector) const {
    const auto shapes = detector.output_shapes();
    const std::vector<std::size_t> expected{std::size_t(detector.batch()), 1,
                                            std::size_t(detector.input_height()),
                                            std::size_t(detector.input_width())};
    if (shapes.size() != 1 || shapes[0] != expected)
        throw ModelError(detector.path() + ": a text detector outputs one probability map per "
                                           "image, at its input size");
}

std::vector<TextRegion> TextReader::regions(ov::InferRequest& detection, std::size_t slot,
                                            int valid_width, int valid_height) const {
    const ov::Tensor map = detection.get_output_tensor();
    const ov::Shape shape = map.get_shape();
    if (shape.size() != 4 || slot >= shape[0] || shape[1] != 1)
        throw std::length_error("text detector output does not hold this image");
    const std::size_t height = shape[2], width = shape[3];
    const float* values = map.data<const float>() + slot * height * width;
    return find_text_regions(values, int(width), int(height), valid_width, valid_height,
                             settings_.regions);
}

TextReader::Requests TextReader::make_requests() const {
    Requests requests;
    requests.recognise = recogniser_->create_request();
    if (orientation_) requests.orient = orientation_->create_request();
    return requests;
}

std::vector<TextLine> TextReader::read(const std::vector<std::uint8_t>& rgb, int width, int height,
                                       const std::vector<TextRegion>& regions,
                                       Requests& requests) const {
    if (rgb.size() != std::size_t(width) * std::size_t(height) * 3)
        throw std::length_error("the image to read text from does not match its size");
    std::vector<Crop> crops = cut_out(rgb, width, height, regions);
    if (orientation_) turn_upright(crops, requests.orient);
    std::vector<TextLine> lines = recognise(crops, requests.recognise);
    // The classifier errs on some long lines squeezed into its input: a line it turned
    // over, or one read without confidence, is read the other way too; the surer wins.
    std::vector<Crop> other_way;
    std::vector<std::size_t> doubted;
    for (std::size_t i = 0; i < crops.size(); ++i)
        if (crops[i].turned || lines[i].confidence < DOUBTFUL_CONFIDENCE) {
            other_way.push_back(crops[i]);
            turn_over(other_way.back());
            doubted.push_back(i);
        }
    std::vector<TextLine> second = recognise(other_way, requests.recognise);
    for (std::size_t d = 0; d < doubted.size(); ++d)
        if (second[d].confidence > lines[doubted[d]].confidence) {
            lines[doubted[d]] = std::move(second[d]);
            crops[doubted[d]] = std::move(other_way[d]);
        }
    std::vector<TextLine> kept;
    for (std::size_t i = 0; i < crops.size(); ++i) {
        if (lines[i].text.empty() || lines[i].confidence < settings_.min_confidence) continue;
        const TextRegion& region = regions[crops[i].region];
        lines[i].corners = region.corners;
        if (crops[i].turned)
            lines[i].corners = {region.corners[2], region.corners[3], region.corners[0],
                                region.corners[1]};
        kept.push_back(std::move(lines[i]));
    }
    return kept;
}

void TextReader::turn_over(Crop& crop) {
    // Turning an image over reverses its pixel order; each pixel keeps its RGB.
    const std::size_t count = crop.rgb.size() / 3;
    for (std::size_t i = 0; i < count / 2; ++i)
        std::swap_ranges(crop.rgb.begin() + std::ptrdiff_t(i * 3),
                         crop.rgb.begin() + std::ptrdiff_t(i * 3 + 3),
                         crop.rgb.begin() + std::ptrdiff_t((count - 1 - i) * 3));
    crop.turned = !crop.turned;
}

// Each region resampled upright to the recogniser's line height: one affine transform
// from the region's first corner, along and across the line.
std::vector<TextReader::Crop> TextReader::cut_out(const std::vector<std::uint8_t>& rgb, int width,
                                                  int height,
                                                  const std::vector<TextRegion>& regions) const {
    const vips::VImage image = vips::VImage::new_from_memory(
        const_cast<std::uint8_t*>(rgb.data()), rgb.size(), width, height, 3, VIPS_FORMAT_UCHAR);
    std::vector<Crop> crops;
    for (std::size_t r = 0; r < regions.size(); ++r) {
        const TextRegion& region = regions[r];
        const float length = region.length(), across = region.height();
        if (!(length >= 1 && across >= 1)) continue;
        const int crop_width = std::clamp(int(std::lround(length * line_height_ / across)), 1,
                                          settings_.max_line_width);
        const double along_scale = crop_width / double(length);
        const double across_scale = line_height_ / double(across);
        const Point origin = region.corners[0];
        const double ux = (region.corners[1].x - origin.x) / length;
        const double uy = (region.corners[1].y - origin.y) / length;
        const double vx = (region.corners[3].x - origin.x) / across;
        const double vy = (region.corners[3].y - origin.y) / across;
        const std::vector<double> matrix{along_scale * ux, along_scale * uy, across_scale * vx,
                                         across_scale * vy};
        const vips::VImage upright = image.affine(
            matrix, vips::VImage::option()
                        ->set("interpolate", vips::VInterpolate::new_from_name("bicubic"))
                        ->set("oarea", std::vector<int>{0, 0, crop_width, line_height_})
                        ->set("odx", -(matrix[0] * origin.x + matrix[1] * origin.y))
                        ->set("ody", -(matrix[2] * origin.x + matrix[3] * origin.y))
                        ->set("extend", VIPS_EXTEND_COPY));
        std::size_t bytes = 0;
        void* memory = upright.write_to_memory(&bytes);
        const std::unique_ptr<void, decltype(&g_free)> owned(memory, &g_free);
        if (bytes != std::size_t(crop_width) * std::size_t(line_height_) * 3)
            throw std::length_error("a cut-out line of text has the wrong size");
        const auto* begin = static_cast<const std::uint8_t*>(memory);
        crops.push_back({std::vector<std::uint8_t>(begin, begin + bytes), crop_width, r});
    }
    return crops;
}

namespace {

// `crops` side by side into one batch tensor of `width`, left-aligned, padded with grey;
// a crop wider than the batch is squeezed to fit.
template <typename CropT>
ov::Tensor batch_of(const std::vector<const CropT*>& crops, int height, int width) {
    ov::Tensor tensor(ov::element::u8, {crops.size(), std::size_t(height), std::size_t(width), 3});
    auto* pixels = tensor.data<std::uint8_t>();
    std::fill(pixels, pixels + tensor.get_byte_size(), PAD_GREY);
    const std::size_t row_bytes = std::size_t(width) * 3;
    for (std::size_t c = 0; c < crops.size(); ++c) {
        const CropT& crop = *crops[c];
        std::uint8_t* target = pixels + c * row_bytes * std::size_t(height);
        if (crop.width <= width) {
            for (int y = 0; y < height; ++y)
                std::copy_n(crop.rgb.data() + std::size_t(y) * crop.width * 3,
                            std::size_t(crop.width) * 3, target + std::size_t(y) * row_bytes);
            continue;
        }
        for (int y = 0; y < height; ++y)  // nearest-neighbour squeeze across the line
            for (int x = 0; x < width; ++x) {
                const std::size_t from = std::size_t(y) * crop.width + std::size_t(x) * crop.width / width;
                std::copy_n(crop.rgb.data() + from * 3, 3, target + std::size_t(y) * row_bytes + x * 3);
            }
    }
    return tensor;
}

}  // namespace

// The classifier sees a line at its own aspect: a short line whole, a long one as three
// windows (start, middle, end) whose verdicts are averaged, rather than squeezed into
// its input, which hides the letters' shapes it judges by. A window's `region` field
// names the crop it comes from.
std::vector<TextReader::Crop> TextReader::orientation_windows(const Crop& crop,
                                                              std::size_t index) const {
    const int window = orientation_width_;
    if (crop.width <= 2 * window) return {Crop{crop.rgb, crop.width, index}};
    std::vector<Crop> windows;
    for (const int left : {0, (crop.width - window) / 2, crop.width - window}) {
        Crop part{{}, window, index};
        part.rgb.reserve(std::size_t(window) * std::size_t(line_height_) * 3);
        for (int y = 0; y < line_height_; ++y) {
            const auto row = crop.rgb.begin() + std::ptrdiff_t((std::size_t(y) * crop.width + left) * 3);
            part.rgb.insert(part.rgb.end(), row, row + std::ptrdiff_t(window) * 3);
        }
        windows.push_back(std::move(part));
    }
    return windows;
}

void TextReader::turn_upright(std::vector<Crop>& crops, ov::InferRequest& orient) const {
    std::vector<Crop> windows;
    for (std::size_t c = 0; c < crops.size(); ++c)
        for (Crop& window : orientation_windows(crops[c], c)) windows.push_back(std::move(window));
    std::vector<double> turned(crops.size()), seen(crops.size());
    const std::size_t per_batch = std::size_t(std::max(settings_.batch, 16));
    for (std::size_t begin = 0; begin < windows.size(); begin += per_batch) {
        const std::size_t end = std::min(windows.size(), begin + per_batch);
        std::vector<const Crop*> batch;
        for (std::size_t w = begin; w < end; ++w) batch.push_back(&windows[w]);
        orient.set_input_tensor(batch_of(batch, line_height_, orientation_width_));
        orient.infer();
        const ov::Tensor scores = orient.get_output_tensor();
        if (scores.get_shape() != ov::Shape{batch.size(), 2})
            throw std::length_error("the orientation classifier's output does not match its batch");
        const float* values = scores.data<const float>();
        for (std::size_t w = begin; w < end; ++w) {
            turned[windows[w].region] += values[(w - begin) * 2 + 1];
            seen[windows[w].region] += 1;
        }
    }
    for (std::size_t c = 0; c < crops.size(); ++c)
        if (seen[c] > 0 && turned[c] / seen[c] >= settings_.flip_confidence) turn_over(crops[c]);
}

std::vector<TextLine> TextReader::recognise(std::vector<Crop>& crops,
                                            ov::InferRequest& recognise) const {
    // Lines of similar width together, so that little of each batch is padding.
    std::vector<std::size_t> order(crops.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return crops[a].width < crops[b].width; });
    std::vector<TextLine> lines(crops.size());
    const std::size_t per_batch = std::size_t(settings_.batch);
    for (std::size_t begin = 0; begin < order.size(); begin += per_batch) {
        const std::size_t end = std::min(order.size(), begin + per_batch);
        std::vector<const Crop*> batch;
        int width = MIN_BATCH_WIDTH_IN_HEIGHTS * line_height_;
        for (std::size_t i = begin; i < end; ++i) {
            batch.push_back(&crops[order[i]]);
            width = std::max(width, crops[order[i]].width);
        }
        width = std::min(width, settings_.max_line_width);
        recognise.set_input_tensor(batch_of(batch, line_height_, width));
        recognise.infer();
        const ov::Tensor output = recognise.get_output_tensor();
        const ov::Shape shape = output.get_shape();
        if (shape.size() != 3 || shape[0] != batch.size() || shape[2] != classes_.size())
            throw std::length_error("the recogniser's output does not match its batch");
        const float* values = output.data<const float>();
        for (std::size_t i = begin; i < end; ++i)
            lines[order[i]] = decode_ctc(values + (i - begin) * shape[1] * shape[2], shape[1],
                                         shape[2]);
    }
    return lines;
}

namespace {

// Scripts that separate words with spaces (Latin, Greek, Cyrillic, ...) are below U+0800,
// so their UTF-8 starts with a byte below 0xE0; CJK, which does not, is above.
bool separates_words(const std::string& character) {
    return !character.empty() && static_cast<unsigned char>(character[0]) < 0xE0 &&
           character != " ";
}

}  // namespace

// Greedy CTC: the best class at each step, repeats merged, blanks dropped, and a space
// where the blanks between two letters came with a likely one (settings_.space_in_gap).
// The line's confidence is the mean probability of the characters kept.
TextLine TextReader::decode_ctc(const float* steps, std::size_t step_count,
                                std::size_t classes) const {
    TextLine line;
    double confidence = 0;
    std::size_t kept = 0, previous = 0, last_kept = 0;
    const std::size_t space = classes - 1;
    float space_in_gap = 0;
    for (std::size_t t = 0; t < step_count; ++t) {
        const float* scores = steps + t * classes;
        const std::size_t best = std::size_t(std::max_element(scores, scores + classes) - scores);
        if (best == 0) space_in_gap = std::max(space_in_gap, scores[space]);
        if (best != 0 && best != previous) {
            if (space_in_gap >= settings_.space_in_gap && last_kept != 0 &&
                separates_words(classes_[last_kept]) && separates_words(classes_[best]))
                line.text += ' ';
            space_in_gap = 0;
            last_kept = best;
            line.text += classes_[best];
            confidence += scores[best];
            ++kept;
        }
        previous = best;
    }
    const auto first = line.text.find_first_not_of(' ');
    line.text = first == std::string::npos
                    ? std::string()
                    : line.text.substr(first, line.text.find_last_not_of(' ') - first + 1);
    line.confidence = kept ? float(confidence / double(kept)) : 0.f;
    return line;
}

}  // namespace autotags
