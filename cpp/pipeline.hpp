// Overlaps image decoding (worker threads) with asynchronous OpenVINO inference and
// hands results back in input order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bounded_queue.hpp"
#include "image_loader.hpp"
#include "inference_model.hpp"
#include "output_decoders.hpp"

namespace autotags {

struct ImageResult {
    std::size_t index = 0;  // position in the list of paths given to run()
    std::string path;
    int width = 0;          // oriented size of the original image
    int height = 0;
    std::vector<Detection> detections;  // in original-image pixels
    std::string error;                  // empty on success
    PixelSource pixels = PixelSource::image;
};

struct PipelineSettings {
    unsigned decode_threads = 0;  // 0: one per core
    unsigned infer_requests = 0;  // 0: OpenVINO's optimal number (resolved by Pipeline)
    std::uint64_t max_source_pixels = 300'000'000;
};

class ResultStream;

class Pipeline {
public:
    Pipeline(std::shared_ptr<InferenceModel> model, DecoderSettings decoder, InputFit fit,
             PipelineSettings settings);

    // Starts work on `paths` and returns at once; results arrive through the stream.
    std::unique_ptr<ResultStream> run(std::vector<std::string> paths) const;

private:
    std::shared_ptr<InferenceModel> model_;
    std::shared_ptr<const OutputDecoder> decoder_;
    std::shared_ptr<const ImageLoader> loader_;
    PipelineSettings settings_;
};

class ResultStream {
public:
    ResultStream(std::shared_ptr<InferenceModel> model, std::shared_ptr<const OutputDecoder> decoder,
                 std::shared_ptr<const ImageLoader> loader, PipelineSettings settings,
                 std::vector<std::string> paths);
    ~ResultStream();
    ResultStream(const ResultStream&) = delete;
    ResultStream& operator=(const ResultStream&) = delete;

    // Waits up to `timeout` for the next result in input order. Returns nothing on
    // timeout; `finished()` tells whether more can come.
    std::optional<ImageResult> next(std::chrono::milliseconds timeout);
    bool finished();

    // Stops decoding new images; images already in inference still deliver results.
    void cancel();

private:
    struct Decoded {
        std::size_t index;
        LoadedImage image;
    };
    struct InFlight {  // the images held by one infer request
        std::vector<std::size_t> indices;
        std::vector<Geometry> geometries;
    };

    void load_images();
    void dispatch_batches();
    std::size_t acquire_request();
    void complete_request(std::size_t slot, std::exception_ptr failure);
    void deliver(ImageResult result);

    std::shared_ptr<InferenceModel> model_;
    std::size_t input_bytes_;  // one image at the model input size
    std::shared_ptr<const OutputDecoder> decoder_;
    std::shared_ptr<const ImageLoader> loader_;
    std::vector<std::string> paths_;

    std::atomic<std::size_t> next_path_{0};
    std::atomic<bool> cancelled_{false};
    BoundedQueue<Decoded> decoded_;

    std::vector<ov::InferRequest> requests_;
    std::vector<InFlight> in_flight_;
    std::vector<std::size_t> idle_requests_;
    std::mutex requests_mutex_;
    std::condition_variable request_idle_;

    std::map<std::size_t, ImageResult> ready_;
    std::size_t next_to_emit_ = 0;
    bool producers_done_ = false;
    std::mutex results_mutex_;
    std::condition_variable result_ready_;

    std::vector<std::thread> loaders_;
    std::thread dispatcher_;
};

}  // namespace autotags
