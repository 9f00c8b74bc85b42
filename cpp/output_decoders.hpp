// Turns raw model outputs into detections in model-input pixel coordinates.
#pragma once

#include <openvino/openvino.hpp>
#include <vector>

#include "detection.hpp"
#include "inference_model.hpp"
#include "nms.hpp"

namespace autotags {

enum class OutputFormat {
    yolo,        // anchor-free [N, 4+C, candidates] (YOLOv8/YOLO11), or its transpose
    ssd,         // TensorFlow object-detection API: detection_boxes/classes/scores/num
    ssd_raw,     // the same cut before its postprocessing: boxes [N, anchors, 4] and
                 // per-class scores [N, anchors, classes], class 0 the background
    classifier,  // [N, C] scores or logits
};

enum class Softmax { automatic, always, never };

struct DecoderSettings {
    OutputFormat format = OutputFormat::yolo;
    int num_classes = 80;            // raw classes the model outputs
    float score_threshold = 0.25f;   // detections below are dropped
    NmsSettings nms;
    int top_k = 5;                   // classifier: best labels kept
    Softmax softmax = Softmax::automatic;
    float output_scale = 1.0f;       // raw output multiplier (quantised classifiers)
    std::vector<int> class_map;      // raw class id -> label id, -1 drops; empty: identity
};

class OutputDecoder {
public:
    // Checks that the model's outputs fit the format; throws ModelError if not.
    OutputDecoder(DecoderSettings settings, const InferenceModel& model);

    // Detections of image `slot` of the finished batch, in model-input pixels.
    std::vector<Detection> decode(ov::InferRequest& request, std::size_t slot) const;

    const DecoderSettings& settings() const { return settings_; }

private:
    int map_class(int raw_class) const;
    std::vector<Detection> decode_yolo(ov::InferRequest& request, std::size_t slot) const;
    std::vector<Detection> decode_ssd(ov::InferRequest& request, std::size_t slot) const;
    std::vector<Detection> decode_ssd_raw(ov::InferRequest& request, std::size_t slot) const;
    std::vector<Detection> decode_classifier(ov::InferRequest& request, std::size_t slot) const;

    DecoderSettings settings_;
    int input_width_ = 0;
    int input_height_ = 0;
    bool yolo_channels_first_ = true;
    std::size_t yolo_candidates_ = 0;
    std::size_t ssd_boxes_ = 0, ssd_classes_ = 0, ssd_scores_ = 0, ssd_count_ = 0;
    std::size_t ssd_anchors_ = 0;
};

}  // namespace autotags
