#include "pipeline.hpp"

#include <cstring>

#include "errors.hpp"

namespace autotags {

Pipeline::Pipeline(std::shared_ptr<InferenceModel> model, DecoderSettings decoder, InputFit fit,
                   PipelineSettings settings)
    : model_(std::move(model)), settings_(settings) {
    if (settings_.infer_requests == 0) settings_.infer_requests = model_->optimal_request_count();
    fit.width = model_->input_width();
    fit.height = model_->input_height();
    decoder_ = std::make_shared<const OutputDecoder>(std::move(decoder), *model_);
    loader_ = std::make_shared<const ImageLoader>(fit, settings_.max_source_pixels);
}

std::unique_ptr<ResultStream> Pipeline::run(std::vector<std::string> paths) const {
    return std::make_unique<ResultStream>(model_, decoder_, loader_, settings_, std::move(paths));
}

namespace {

unsigned decode_thread_count(unsigned requested, std::size_t images) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const unsigned wanted = requested ? requested : cores;
    return unsigned(std::max<std::size_t>(1, std::min<std::size_t>(wanted, images)));
}

std::string describe(std::exception_ptr failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& error) {
        return error.what();
    } catch (...) {
        return "unknown error";
    }
}

}  // namespace

ResultStream::ResultStream(std::shared_ptr<InferenceModel> model,
                           std::shared_ptr<const OutputDecoder> decoder,
                           std::shared_ptr<const ImageLoader> loader, PipelineSettings settings,
                           std::vector<std::string> paths)
    : model_(std::move(model)),
      input_bytes_(std::size_t(model_->input_width()) * std::size_t(model_->input_height()) * 3),
      decoder_(std::move(decoder)),
      loader_(std::move(loader)),
      paths_(std::move(paths)),
      decoded_(std::size_t(2) * settings.infer_requests * std::size_t(model_->batch())) {
    const std::size_t request_count = settings.infer_requests;
    for (std::size_t slot = 0; slot < request_count; ++slot) {
        requests_.push_back(model_->create_request());
        requests_.back().set_callback(
            [this, slot](std::exception_ptr failure) { complete_request(slot, failure); });
        idle_requests_.push_back(slot);
    }
    in_flight_.resize(request_count);

    const unsigned threads = decode_thread_count(settings.decode_threads, paths_.size());
    auto active_loaders = std::make_shared<std::atomic<unsigned>>(threads);
    for (unsigned i = 0; i < threads; ++i)
        loaders_.emplace_back([this, active_loaders] {
            load_images();
            if (--*active_loaders == 0) decoded_.close();
        });
    dispatcher_ = std::thread([this] { dispatch_batches(); });
}

ResultStream::~ResultStream() {
    cancel();
    for (auto& loader : loaders_) loader.join();
    dispatcher_.join();
    // A completion callback may still be returning into OpenVINO after it handed its
    // request back; let every request settle before they are destroyed.
    for (ov::InferRequest& request : requests_) {
        try {
            request.wait();
        } catch (const std::exception&) {
            // its failure was already reported as the images' error
        }
    }
}

void ResultStream::cancel() {
    cancelled_ = true;
    decoded_.discard_all();
}

void ResultStream::load_images() {
    while (!cancelled_) {
        const std::size_t index = next_path_++;
        if (index >= paths_.size()) return;
        const std::string& path = paths_[index];
        try {
            LoadedImage image = loader_->load(path);
            // The batch tensor is filled with memcpy: a wrong size must never get there.
            if (image.rgb.size() != input_bytes_)
                throw ImageError(path, "decoded image does not match the model input size");
            if (!decoded_.push({index, std::move(image)})) return;
        } catch (const ImageError& error) {
            deliver({index, path, 0, 0, {}, error.what()});
        } catch (const std::exception& error) {
            deliver({index, path, 0, 0, {}, path + ": " + error.what()});
        }
    }
}

std::size_t ResultStream::acquire_request() {
    std::unique_lock lock(requests_mutex_);
    request_idle_.wait(lock, [&] { return !idle_requests_.empty(); });
    const std::size_t slot = idle_requests_.back();
    idle_requests_.pop_back();
    return slot;
}

void ResultStream::dispatch_batches() {
    const std::size_t batch_size = std::size_t(model_->batch());
    const std::size_t image_bytes = input_bytes_;
    bool drained = false;
    while (!drained) {
        std::vector<Decoded> batch;
        while (batch.size() < batch_size) {
            std::optional<Decoded> item = decoded_.pop();
            if (!item) {
                drained = true;
                break;
            }
            if (!cancelled_) batch.push_back(std::move(*item));
        }
        if (batch.empty()) continue;

        const std::size_t slot = acquire_request();
        ov::InferRequest& request = requests_[slot];
        InFlight& flight = in_flight_[slot];
        flight.indices.clear();
        flight.geometries.clear();
        auto* pixels = request.get_input_tensor().data<std::uint8_t>();
        for (std::size_t b = 0; b < batch.size(); ++b) {
            std::memcpy(pixels + b * image_bytes, batch[b].image.rgb.data(), image_bytes);
            flight.indices.push_back(batch[b].index);
            flight.geometries.push_back(batch[b].image.geometry);
        }
        try {
            model_->count_inferred(batch.size());
            request.start_async();
        } catch (...) {
            complete_request(slot, std::current_exception());
        }
    }
    std::unique_lock lock(requests_mutex_);
    request_idle_.wait(lock, [&] { return idle_requests_.size() == requests_.size(); });
    lock.unlock();
    {
        std::lock_guard results_lock(results_mutex_);
        producers_done_ = true;
    }
    result_ready_.notify_all();
}

void ResultStream::complete_request(std::size_t slot, std::exception_ptr failure) {
    const InFlight& flight = in_flight_[slot];
    for (std::size_t b = 0; b < flight.indices.size(); ++b) {
        const Geometry& geometry = flight.geometries[b];
        ImageResult result{flight.indices[b], paths_[flight.indices[b]], geometry.source_width,
                           geometry.source_height, {}, {}, geometry.pixels};
        try {
            if (failure) std::rethrow_exception(failure);
            result.detections = decoder_->decode(requests_[slot], b);
            for (Detection& detection : result.detections)
                if (detection.has_box) detection.box = geometry.to_source(detection.box);
        } catch (...) {
            result.error = result.path + ": inference failed: " + describe(std::current_exception());
        }
        deliver(std::move(result));
    }
    {
        std::lock_guard lock(requests_mutex_);
        idle_requests_.push_back(slot);
    }
    request_idle_.notify_all();
}

void ResultStream::deliver(ImageResult result) {
    {
        std::lock_guard lock(results_mutex_);
        const std::size_t index = result.index;
        ready_.emplace(index, std::move(result));
    }
    result_ready_.notify_all();
}

std::optional<ImageResult> ResultStream::next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(results_mutex_);
    result_ready_.wait_for(lock, timeout,
                           [&] { return ready_.count(next_to_emit_) || producers_done_; });
    auto found = ready_.find(next_to_emit_);
    // After a cancellation some images never produce a result: skip over the gap.
    if (found == ready_.end() && producers_done_ && !ready_.empty()) found = ready_.begin();
    if (found == ready_.end()) return std::nullopt;
    ImageResult result = std::move(found->second);
    next_to_emit_ = found->first + 1;
    ready_.erase(found);
    return result;
}

bool ResultStream::finished() {
    std::lock_guard lock(results_mutex_);
    return producers_done_ && ready_.empty();
}

}  // namespace autotags
