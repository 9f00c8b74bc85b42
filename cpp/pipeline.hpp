// Overlaps image decoding (worker threads) with asynchronous OpenVINO inference and
// hands results back in input order. Several models may share one pipeline: each file
// is then decoded once and fitted into every model's input that wants it.
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
#include "text_reader.hpp"

namespace autotags {

struct ImageResult {
    std::size_t index = 0;  // position in the list of paths given to run()
    std::size_t stage = 0;  // which model of the pipeline
    std::string path;
    int width = 0;          // oriented size of the original image
    int height = 0;
    std::vector<Detection> detections;  // in original-image pixels
    std::vector<TextLine> lines;        // a text model's lines, in original-image pixels
    std::string error;                  // empty on success
    PixelSource pixels = PixelSource::image;
};

struct PipelineSettings {
    unsigned decode_threads = 0;  // 0: one per core
    unsigned infer_requests = 0;  // 0: each model's optimal number (resolved by Pipeline)
    std::uint64_t max_source_pixels = 300'000'000;
};

// One model of a pipeline: the network, how its output is read, how images fit its input.
// A text model's network is its detector, and its output is read by `text`.
struct PipelineStage {
    std::shared_ptr<InferenceModel> model;
    DecoderSettings decoder;
    InputFit fit;
    std::shared_ptr<const TextReader> text;
};

class ResultStream;

class Pipeline {
public:
    Pipeline(std::vector<PipelineStage> stages, PipelineSettings settings);

    // Starts work on `paths` and returns at once; results arrive through the stream, for
    // each path one per stage that `wanted[path][stage]` names (empty: every stage).
    std::unique_ptr<ResultStream> run(std::vector<std::string> paths,
                                      std::vector<std::vector<bool>> wanted = {}) const;

    std::size_t stage_count() const { return models_.size(); }

private:
    std::vector<std::shared_ptr<InferenceModel>> models_;
    std::vector<std::shared_ptr<const OutputDecoder>> decoders_;  // null for text stages
    std::vector<std::shared_ptr<const TextReader>> readers_;     // null for the others
    std::vector<unsigned> request_counts_;
    std::shared_ptr<const ImageLoader> loader_;
    PipelineSettings settings_;
};

class ResultStream {
public:
    struct Stage;

    ResultStream(std::vector<std::unique_ptr<Stage>> stages,
                 std::shared_ptr<const ImageLoader> loader, PipelineSettings settings,
                 std::vector<std::string> paths, std::vector<std::vector<bool>> wanted);
    ~ResultStream();
    ResultStream(const ResultStream&) = delete;
    ResultStream& operator=(const ResultStream&) = delete;

    // Waits up to `timeout` for the next result in input order (stage by stage within a
    // path). Returns nothing on timeout; `finished()` tells whether more can come.
    std::optional<ImageResult> next(std::chrono::milliseconds timeout);
    bool finished();

    // Stops decoding new images; images already in inference still deliver results.
    void cancel();

    struct Decoded {
        std::size_t index;
        LoadedImage image;
    };
    struct InFlight {  // the images held by one infer request
        std::vector<std::size_t> indices;
        std::vector<Geometry> geometries;
    };
    struct TextJob {  // an image whose text regions wait to be read
        ImageResult result;
        std::vector<TextRegion> regions;  // in source pixels
    };
    struct Stage {
        Stage(std::shared_ptr<InferenceModel> model, std::shared_ptr<const OutputDecoder> decoder,
              std::shared_ptr<const TextReader> text, std::size_t queue_capacity)
            : model(std::move(model)), decoder(std::move(decoder)), text(std::move(text)),
              decoded(queue_capacity), text_jobs(queue_capacity) {}
        std::shared_ptr<InferenceModel> model;
        std::shared_ptr<const OutputDecoder> decoder;
        std::shared_ptr<const TextReader> text;
        std::size_t input_bytes = 0;  // one image at the model input size
        BoundedQueue<Decoded> decoded;
        std::vector<ov::InferRequest> requests;
        std::vector<InFlight> in_flight;
        std::vector<std::size_t> idle_requests;
        std::mutex requests_mutex;
        std::condition_variable request_idle;
        std::thread dispatcher;
        BoundedQueue<TextJob> text_jobs;
        std::size_t text_jobs_open = 0;  // queued or being read; guarded by requests_mutex
        std::vector<std::thread> text_readers;
    };

private:
    void load_images();
    void load_one(std::size_t index);
    void dispatch_batches(std::size_t stage);
    std::size_t acquire_request(Stage& stage);
    void complete_request(std::size_t stage, std::size_t slot, std::exception_ptr failure);
    void read_text(std::size_t stage);
    std::vector<TextLine> read_lines(const Stage& stage, const TextJob& job,
                                     TextReader::Requests& requests) const;
    void deliver(ImageResult result);
    void fail_everywhere(std::size_t index, const std::string& error);
    bool wants(std::size_t index, std::size_t stage) const;
    void skip_unexpected();  // holds results_mutex_

    std::vector<std::unique_ptr<Stage>> stages_;
    std::shared_ptr<const ImageLoader> loader_;
    std::vector<std::string> paths_;
    std::vector<std::vector<bool>> wanted_;

    std::atomic<std::size_t> next_path_{0};
    std::atomic<bool> cancelled_{false};

    // Results by sequence number: index * stages + stage.
    std::map<std::size_t, ImageResult> ready_;
    std::size_t next_to_emit_ = 0;
    std::size_t dispatchers_running_ = 0;
    std::mutex results_mutex_;
    std::condition_variable result_ready_;

    std::vector<std::thread> loaders_;
};

}  // namespace autotags
