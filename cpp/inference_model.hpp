// One model compiled for one device, with its pre-processing folded into the graph.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <openvino/openvino.hpp>
#include <string>
#include <vector>

namespace autotags {

enum class TensorLayout { automatic, nchw, nhwc };

// How the model wants its input. The engine always hands OpenVINO 8-bit RGB NHWC
// pixels; conversion to the model's layout, element type, channel order and
// normalisation (value - mean) / scale runs inside the compiled graph.
struct InputSpec {
    int width = 0;   // 0: take it from the model's static shape
    int height = 0;
    int batch = 1;
    TensorLayout layout = TensorLayout::automatic;
    bool bgr = false;
    std::vector<float> mean;   // per channel, or empty for none
    std::vector<float> scale;  // per channel, or empty for none
    // Left open, so that each inference may bring its own (a line of text of any length
    // in a batch of any size); width and batch are then 0.
    bool any_width = false;
    bool any_batch = false;
};

class InferenceModel {
public:
    // `config` holds OpenVINO properties by name (PERFORMANCE_HINT, CACHE_DIR,
    // INFERENCE_PRECISION_HINT, INFERENCE_NUM_THREADS, ...). `prepared_path`, if not
    // empty, is where the model with its pre-processing folded in is kept as IR: when it
    // exists it is compiled by path, which lets OpenVINO's CACHE_DIR serve the compiled
    // graph without reading or rebuilding the model. The caller names it by everything
    // that shapes the graph (model file, spec, OpenVINO version), so it is never stale.
    InferenceModel(const std::string& model_path, const std::string& device, const InputSpec& spec,
                   const std::map<std::string, std::string>& config,
                   const std::string& prepared_path = "");

    int input_width() const { return input_width_; }
    int input_height() const { return input_height_; }
    int batch() const { return batch_; }
    unsigned optimal_request_count() const;
    const std::string& path() const { return path_; }
    const std::string& device() const { return device_; }
    // Output shapes after compilation, in output order, with the names of each output.
    std::vector<std::vector<std::size_t>> output_shapes() const;
    std::vector<ov::PartialShape> output_partial_shapes() const;
    std::vector<std::vector<std::string>> output_names() const;

    ov::InferRequest create_request() { return compiled_.create_infer_request(); }

    // Images per second with every infer request kept busy on `image` (model-input
    // sized HWC RGB), for `inferences` inferences: the inference-only bound.
    double measure_inference_rate(const std::vector<std::uint8_t>& image, std::size_t inferences);

    // Images sent to inference over this model's lifetime (tests count them).
    std::uint64_t images_inferred() const { return images_inferred_; }
    void count_inferred(std::size_t images) { images_inferred_ += images; }

private:
    std::string path_;
    std::string device_;
    int input_width_ = 0;
    int input_height_ = 0;
    int batch_ = 1;
    ov::CompiledModel compiled_;
    std::atomic<std::uint64_t> images_inferred_{0};
};

}  // namespace autotags
