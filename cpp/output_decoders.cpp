#include "output_decoders.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "errors.hpp"

namespace autotags {

namespace {

std::string shape_text(const std::vector<std::size_t>& shape) {
    std::ostringstream text;
    text << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) text << (i ? "," : "") << shape[i];
    text << ']';
    return text.str();
}

std::size_t find_output(const InferenceModel& model, const std::string& name_part) {
    const auto names = model.output_names();
    for (std::size_t i = 0; i < names.size(); ++i)
        for (const auto& name : names[i])
            if (name.find(name_part) != std::string::npos) return i;
    throw ModelError(model.path() + ": an SSD model needs an output named like '" + name_part +
                     "'; this model has none");
}

const float* image_data(const ov::Tensor& tensor, std::size_t slot) {
    const std::size_t per_image = tensor.get_size() / tensor.get_shape()[0];
    return tensor.data<const float>() + slot * per_image;
}

void softmax_in_place(std::vector<float>& values) {
    const float peak = *std::max_element(values.begin(), values.end());
    float total = 0;
    for (float& value : values) total += (value = std::exp(value - peak));
    for (float& value : values) value /= total;
}

bool looks_like_probabilities(const std::vector<float>& values) {
    const auto [low, high] = std::minmax_element(values.begin(), values.end());
    const float total = std::accumulate(values.begin(), values.end(), 0.0f);
    return *low >= 0 && *high <= 1 && std::abs(total - 1) < 0.05f;
}

}  // namespace

OutputDecoder::OutputDecoder(DecoderSettings settings, const InferenceModel& model)
    : settings_(std::move(settings)),
      input_width_(model.input_width()),
      input_height_(model.input_height()) {
    const auto shapes = model.output_shapes();
    const std::string& path = model.path();
    const std::size_t classes = std::size_t(settings_.num_classes);
    switch (settings_.format) {
        case OutputFormat::yolo: {
            const auto& shape = shapes.at(0);
            if (shape.size() == 3 && shape[1] == 4 + classes) {
                yolo_channels_first_ = true;
                yolo_candidates_ = shape[2];
            } else if (shape.size() == 3 && shape[2] == 4 + classes) {
                yolo_channels_first_ = false;
                yolo_candidates_ = shape[1];
            } else {
                throw ModelError(path + ": YOLO output " + shape_text(shape) +
                                 " does not match [batch, 4+" + std::to_string(classes) +
                                 ", candidates] or its transpose");
            }
            break;
        }
        case OutputFormat::ssd:
            ssd_boxes_ = find_output(model, "detection_boxes");
            ssd_classes_ = find_output(model, "detection_classes");
            ssd_scores_ = find_output(model, "detection_scores");
            ssd_count_ = find_output(model, "num_detections");
            break;
        case OutputFormat::ssd_raw: {
            // Told apart by shape: boxes end in 4, scores in the class count.
            const auto fits = [&](const std::vector<std::size_t>& shape, std::size_t last) {
                return shape.size() == 3 && shape[2] == last;
            };
            if (shapes.size() != 2 || !(fits(shapes[0], 4) || fits(shapes[1], 4)))
                throw ModelError(path + ": a raw SSD model has two outputs, boxes [batch, " +
                                 "anchors, 4] and scores [batch, anchors, classes]");
            ssd_boxes_ = fits(shapes[0], 4) && !fits(shapes[0], classes) ? 0 : 1;
            ssd_scores_ = 1 - ssd_boxes_;
            const auto& boxes = shapes[ssd_boxes_];
            const auto& scores = shapes[ssd_scores_];
            if (!fits(boxes, 4) || !fits(scores, classes) || boxes[1] != scores[1])
                throw ModelError(path + ": raw SSD outputs " + shape_text(boxes) + " and " +
                                 shape_text(scores) + " are not [batch, anchors, 4] and [batch, " +
                                 "anchors, " + std::to_string(classes) + "]");
            ssd_anchors_ = boxes[1];
            break;
        }
        case OutputFormat::classifier: {
            const auto& shape = shapes.at(0);
            const std::size_t per_image =
                std::accumulate(shape.begin() + 1, shape.end(), std::size_t(1), std::multiplies<>());
            if (shape.empty() || per_image != classes)
                throw ModelError(path + ": classifier output " + shape_text(shape) + " does not hold " +
                                 std::to_string(classes) + " class scores per image");
            break;
        }
    }
}

int OutputDecoder::map_class(int raw_class) const {
    if (settings_.class_map.empty())
        return raw_class >= 0 && raw_class < settings_.num_classes ? raw_class : -1;
    if (raw_class < 0 || raw_class >= int(settings_.class_map.size())) return -1;
    return settings_.class_map[std::size_t(raw_class)];
}

std::vector<Detection> OutputDecoder::decode(ov::InferRequest& request,
                                             std::size_t slot) const {
    switch (settings_.format) {
        case OutputFormat::yolo: return decode_yolo(request, slot);
        case OutputFormat::ssd: return decode_ssd(request, slot);
        case OutputFormat::ssd_raw: return decode_ssd_raw(request, slot);
        case OutputFormat::classifier: return decode_classifier(request, slot);
    }
    return {};
}

std::vector<Detection> OutputDecoder::decode_yolo(ov::InferRequest& request,
                                                  std::size_t slot) const {
    const float* data = image_data(request.get_output_tensor(0), slot);
    const std::size_t candidates = yolo_candidates_;
    const std::size_t values = 4 + std::size_t(settings_.num_classes);
    // Element `row` of candidate `i`, for either memory order.
    const auto at = [&](std::size_t row, std::size_t i) {
        return yolo_channels_first_ ? data[row * candidates + i] : data[i * values + row];
    };
    std::vector<Detection> found;
    for (std::size_t i = 0; i < candidates; ++i) {
        std::size_t best = 4;
        for (std::size_t row = 5; row < values; ++row)
            if (at(row, i) > at(best, i)) best = row;
        const float score = at(best, i);
        if (!(score >= settings_.score_threshold)) continue;
        const int label = map_class(int(best - 4));
        if (label < 0) continue;
        const float cx = at(0, i), cy = at(1, i), w = at(2, i), h = at(3, i);
        found.push_back({label, score, {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}});
    }
    return non_max_suppression(std::move(found), settings_.nms);
}

std::vector<Detection> OutputDecoder::decode_ssd(ov::InferRequest& request,
                                                 std::size_t slot) const {
    const ov::Tensor boxes_tensor = request.get_output_tensor(ssd_boxes_);
    const float* boxes = image_data(boxes_tensor, slot);
    const float* classes = image_data(request.get_output_tensor(ssd_classes_), slot);
    const float* scores = image_data(request.get_output_tensor(ssd_scores_), slot);
    const std::size_t capacity = boxes_tensor.get_shape()[1];
    const std::size_t count =
        std::min(capacity, std::size_t(image_data(request.get_output_tensor(ssd_count_), slot)[0]));
    std::vector<Detection> found;
    for (std::size_t i = 0; i < count; ++i) {
        if (!(scores[i] >= settings_.score_threshold)) continue;
        const int label = map_class(int(std::lround(classes[i])));
        if (label < 0) continue;
        const float* b = boxes + 4 * i;  // ymin, xmin, ymax, xmax in [0, 1]
        found.push_back({label, scores[i],
                         {b[1] * input_width_, b[0] * input_height_, b[3] * input_width_,
                          b[2] * input_height_}});
    }
    return non_max_suppression(std::move(found), settings_.nms);
}

std::vector<Detection> OutputDecoder::decode_ssd_raw(ov::InferRequest& request,
                                                     std::size_t slot) const {
    const float* boxes = image_data(request.get_output_tensor(ssd_boxes_), slot);
    const float* scores = image_data(request.get_output_tensor(ssd_scores_), slot);
    const std::size_t classes = std::size_t(settings_.num_classes);
    // Every class above the threshold at every anchor is a candidate, and class-aware NMS
    // picks among them, as the graph's own postprocessing did. Class 0 is the background.
    std::vector<Detection> found;
    for (std::size_t anchor = 0; anchor < ssd_anchors_; ++anchor) {
        const float* anchor_scores = scores + anchor * classes;
        const float* b = boxes + 4 * anchor;  // ymin, xmin, ymax, xmax in [0, 1]
        for (std::size_t raw_class = 1; raw_class < classes; ++raw_class) {
            const float score = anchor_scores[raw_class];
            if (!(score >= settings_.score_threshold)) continue;
            const int label = map_class(int(raw_class));
            if (label < 0) continue;
            found.push_back({label, score,
                             {b[1] * input_width_, b[0] * input_height_, b[3] * input_width_,
                              b[2] * input_height_}});
        }
    }
    return non_max_suppression(std::move(found), settings_.nms);
}

std::vector<Detection> OutputDecoder::decode_classifier(ov::InferRequest& request,
                                                        std::size_t slot) const {
    const float* data = image_data(request.get_output_tensor(0), slot);
    std::vector<float> scores(data, data + settings_.num_classes);
    for (float& score : scores) score *= settings_.output_scale;
    const bool apply_softmax =
        settings_.softmax == Softmax::always ||
        (settings_.softmax == Softmax::automatic && !looks_like_probabilities(scores));
    if (apply_softmax) softmax_in_place(scores);

    std::vector<int> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    const std::size_t keep = std::min(order.size(), std::size_t(std::max(0, settings_.top_k)));
    std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                      [&](int a, int b) { return scores[a] > scores[b]; });
    std::vector<Detection> labels;
    for (std::size_t rank = 0; rank < keep; ++rank) {
        const float score = scores[order[rank]];
        const int label = map_class(order[rank]);
        if (score < settings_.score_threshold) break;
        if (label >= 0) labels.push_back({label, score, {}, false});
    }
    return labels;
}

}  // namespace autotags
