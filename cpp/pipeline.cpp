#include "pipeline.hpp"

#include <algorithm>
#include <cstring>

#include "errors.hpp"

namespace autotags {

namespace {

std::vector<InputFit> fits_of(const std::vector<PipelineStage>& stages) {
    std::vector<InputFit> fits;
    for (const PipelineStage& stage : stages) {
        InputFit fit = stage.fit;
        fit.width = stage.model->input_width();  // the network's real input decides
        fit.height = stage.model->input_height();
        fits.push_back(fit);
    }
    return fits;
}

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

Pipeline::Pipeline(std::vector<PipelineStage> stages, PipelineSettings settings)
    : settings_(settings) {
    if (stages.empty()) throw std::invalid_argument("a pipeline needs at least one model");
    for (PipelineStage& stage : stages) {
        if (!stage.model) throw std::invalid_argument("a pipeline stage has no model");
        if (stage.text) stage.text->check_detector(*stage.model);
        decoders_.push_back(stage.text ? nullptr
                                       : std::make_shared<const OutputDecoder>(
                                             std::move(stage.decoder), *stage.model));
        readers_.push_back(stage.text);
        request_counts_.push_back(settings_.infer_requests ? settings_.infer_requests
                                                           : stage.model->optimal_request_count());
    }
    loader_ = std::make_shared<const ImageLoader>(fits_of(stages), settings_.max_source_pixels);
    for (PipelineStage& stage : stages) models_.push_back(std::move(stage.model));
}

std::unique_ptr<ResultStream> Pipeline::run(std::vector<std::string> paths,
                                            std::vector<std::vector<bool>> wanted) const {
    if (!wanted.empty() && wanted.size() != paths.size())
        throw std::invalid_argument("wanted has " + std::to_string(wanted.size()) +
                                    " rows for " + std::to_string(paths.size()) + " paths");
    for (const std::vector<bool>& row : wanted)
        if (row.size() != models_.size())
            throw std::invalid_argument("a row of wanted names " + std::to_string(row.size()) +
                                        " models, the pipeline has " +
                                        std::to_string(models_.size()));
    std::vector<std::unique_ptr<ResultStream::Stage>> stages;
    for (std::size_t s = 0; s < models_.size(); ++s) {
        const std::size_t capacity = std::size_t(2) * request_counts_[s] * std::size_t(models_[s]->batch());
        stages.push_back(std::make_unique<ResultStream::Stage>(models_[s], decoders_[s],
                                                               readers_[s], capacity));
        ResultStream::Stage& stage = *stages.back();
        stage.input_bytes = std::size_t(models_[s]->input_width()) *
                            std::size_t(models_[s]->input_height()) * 3;
        for (std::size_t slot = 0; slot < request_counts_[s]; ++slot) {
            stage.requests.push_back(models_[s]->create_request());
            stage.idle_requests.push_back(slot);
        }
        stage.in_flight.resize(request_counts_[s]);
    }
    return std::make_unique<ResultStream>(std::move(stages), loader_, settings_, std::move(paths),
                                          std::move(wanted));
}

ResultStream::ResultStream(std::vector<std::unique_ptr<Stage>> stages,
                           std::shared_ptr<const ImageLoader> loader, PipelineSettings settings,
                           std::vector<std::string> paths, std::vector<std::vector<bool>> wanted)
    : stages_(std::move(stages)),
      loader_(std::move(loader)),
      paths_(std::move(paths)),
      wanted_(std::move(wanted)) {
    for (std::size_t s = 0; s < stages_.size(); ++s)
        for (std::size_t slot = 0; slot < stages_[s]->requests.size(); ++slot)
            stages_[s]->requests[slot].set_callback([this, s, slot](std::exception_ptr failure) {
                complete_request(s, slot, failure);
            });
    dispatchers_running_ = stages_.size();
    {
        std::lock_guard lock(results_mutex_);
        skip_unexpected();
    }
    const unsigned threads = decode_thread_count(settings.decode_threads, paths_.size());
    auto active_loaders = std::make_shared<std::atomic<unsigned>>(threads);
    for (unsigned i = 0; i < threads; ++i)
        loaders_.emplace_back([this, active_loaders] {
            load_images();
            if (--*active_loaders == 0)
                for (auto& stage : stages_) stage->decoded.close();
        });
    for (std::size_t s = 0; s < stages_.size(); ++s) {
        stages_[s]->dispatcher = std::thread([this, s] { dispatch_batches(s); });
        if (!stages_[s]->text) continue;
        // As many lines are read at once as the detector has images in flight.
        const std::size_t readers = std::min<std::size_t>(
            stages_[s]->requests.size(), std::max(1u, std::thread::hardware_concurrency()));
        for (std::size_t r = 0; r < readers; ++r)
            stages_[s]->text_readers.emplace_back([this, s] { read_text(s); });
    }
}

ResultStream::~ResultStream() {
    cancel();
    for (auto& loader : loaders_) loader.join();
    for (auto& stage : stages_) {
        stage->dispatcher.join();
        for (auto& reader : stage->text_readers) reader.join();
    }
    // A completion callback may still be returning into OpenVINO after it handed its
    // request back; let every request settle before they are destroyed.
    for (auto& stage : stages_)
        for (ov::InferRequest& request : stage->requests) {
            try {
                request.wait();
            } catch (const std::exception&) {
                // its failure was already reported as the images' error
            }
        }
}

void ResultStream::cancel() {
    cancelled_ = true;
    for (auto& stage : stages_) {
        stage->decoded.discard_all();
        const std::size_t dropped = stage->text_jobs.discard_all();
        {
            std::lock_guard lock(stage->requests_mutex);
            stage->text_jobs_open -= dropped;
        }
        stage->request_idle.notify_all();
    }
}

bool ResultStream::wants(std::size_t index, std::size_t stage) const {
    return wanted_.empty() || wanted_[index][stage];
}

void ResultStream::load_images() {
    while (!cancelled_) {
        const std::size_t index = next_path_++;
        if (index >= paths_.size()) return;
        load_one(index);
    }
}

void ResultStream::load_one(std::size_t index) {
    const std::string& path = paths_[index];
    std::vector<bool> wanted(stages_.size());
    for (std::size_t s = 0; s < stages_.size(); ++s) wanted[s] = wants(index, s);
    LoadedImages images;
    try {
        images = loader_->load_each(path, wanted);
    } catch (const ImageError& error) {
        fail_everywhere(index, error.what());
        return;
    } catch (const std::exception& error) {
        fail_everywhere(index, path + ": " + error.what());
        return;
    }
    for (std::size_t s = 0; s < stages_.size(); ++s) {
        if (!images[s]) continue;
        // The batch tensor is filled with memcpy: a wrong size must never get there.
        if (images[s]->rgb.size() != stages_[s]->input_bytes) {
            deliver({index, s, path, 0, 0, {}, {}, path + ": decoded image does not match the model "
                                                      "input size"});
            continue;
        }
        if (!stages_[s]->decoded.push({index, std::move(*images[s])})) return;
    }
}

void ResultStream::fail_everywhere(std::size_t index, const std::string& error) {
    for (std::size_t s = 0; s < stages_.size(); ++s)
        if (wants(index, s)) deliver({index, s, paths_[index], 0, 0, {}, {}, error});
}

std::size_t ResultStream::acquire_request(Stage& stage) {
    std::unique_lock lock(stage.requests_mutex);
    stage.request_idle.wait(lock, [&] { return !stage.idle_requests.empty(); });
    const std::size_t slot = stage.idle_requests.back();
    stage.idle_requests.pop_back();
    return slot;
}

void ResultStream::dispatch_batches(std::size_t s) {
    Stage& stage = *stages_[s];
    const std::size_t batch_size = std::size_t(stage.model->batch());
    bool drained = false;
    while (!drained) {
        std::vector<Decoded> batch;
        while (batch.size() < batch_size) {
            std::optional<Decoded> item = stage.decoded.pop();
            if (!item) {
                drained = true;
                break;
            }
            if (!cancelled_) batch.push_back(std::move(*item));
        }
        if (batch.empty()) continue;

        const std::size_t slot = acquire_request(stage);
        ov::InferRequest& request = stage.requests[slot];
        InFlight& flight = stage.in_flight[slot];
        flight.indices.clear();
        flight.geometries.clear();
        auto* pixels = request.get_input_tensor().data<std::uint8_t>();
        for (std::size_t b = 0; b < batch.size(); ++b) {
            std::memcpy(pixels + b * stage.input_bytes, batch[b].image.rgb.data(),
                        stage.input_bytes);
            flight.indices.push_back(batch[b].index);
            flight.geometries.push_back(batch[b].image.geometry);
        }
        try {
            stage.model->count_inferred(batch.size());
            request.start_async();
        } catch (...) {
            complete_request(s, slot, std::current_exception());
        }
    }
    std::unique_lock lock(stage.requests_mutex);
    stage.request_idle.wait(lock, [&] {
        return stage.idle_requests.size() == stage.requests.size() && stage.text_jobs_open == 0;
    });
    lock.unlock();
    stage.text_jobs.close();
    {
        std::lock_guard results_lock(results_mutex_);
        --dispatchers_running_;
    }
    result_ready_.notify_all();
}

void ResultStream::complete_request(std::size_t s, std::size_t slot, std::exception_ptr failure) {
    Stage& stage = *stages_[s];
    const InFlight& flight = stage.in_flight[slot];
    for (std::size_t b = 0; b < flight.indices.size(); ++b) {
        const Geometry& geometry = flight.geometries[b];
        ImageResult result{flight.indices[b], s, paths_[flight.indices[b]], geometry.source_width,
                           geometry.source_height, {}, {}, {}, geometry.pixels};
        std::vector<TextRegion> regions;
        try {
            if (failure) std::rethrow_exception(failure);
            if (stage.text) {
                regions = stage.text->regions(stage.requests[slot], b, geometry.covered_width(),
                                              geometry.covered_height());
                for (TextRegion& region : regions)
                    for (Point& corner : region.corners) corner = geometry.to_source(corner);
            } else {
                result.detections = stage.decoder->decode(stage.requests[slot], b);
                for (Detection& detection : result.detections)
                    if (detection.has_box) detection.box = geometry.to_source(detection.box);
            }
        } catch (...) {
            result.error = result.path + ": inference failed: " + describe(std::current_exception());
        }
        // A photo without text costs only the detection.
        if (regions.empty()) {
            deliver(std::move(result));
            continue;
        }
        {
            std::lock_guard lock(stage.requests_mutex);
            ++stage.text_jobs_open;
        }
        if (!stage.text_jobs.push({std::move(result), std::move(regions)})) {
            std::lock_guard lock(stage.requests_mutex);
            --stage.text_jobs_open;
        }
    }
    // Handed back and announced under the lock, as the callback's last touch of the
    // stream: once the dispatcher sees every request idle the stream may end, and its
    // end must not depend on how long OpenVINO's wait() waits for a callback to return.
    std::lock_guard lock(stage.requests_mutex);
    stage.idle_requests.push_back(slot);
    stage.request_idle.notify_all();
}

void ResultStream::read_text(std::size_t s) {
    Stage& stage = *stages_[s];
    std::optional<TextReader::Requests> requests;
    while (std::optional<TextJob> job = stage.text_jobs.pop()) {
        if (!cancelled_) {
            ImageResult& result = job->result;
            try {
                if (!requests) requests = stage.text->make_requests();
                result.lines = read_lines(stage, *job, *requests);
            } catch (...) {
                result.lines.clear();
                result.error = result.path + ": reading its text failed: " +
                               describe(std::current_exception());
            }
            deliver(std::move(result));
        }
        {
            std::lock_guard lock(stage.requests_mutex);
            --stage.text_jobs_open;
        }
        stage.request_idle.notify_all();
    }
}

// Lines are cut out of the file decoded again, at up to the reader's own resolution:
// the detector's input is too coarse for small print, and only photos with text pay.
std::vector<TextLine> ResultStream::read_lines(const Stage& stage, const TextJob& job,
                                               TextReader::Requests& requests) const {
    const int source_width = job.result.width, source_height = job.result.height;
    const double shrink = std::max(1.0, double(std::max(source_width, source_height)) /
                                            stage.text->settings().reading_side);
    InputFit fit;
    fit.mode = ResizeMode::stretch;
    fit.width = std::max(1, int(std::lround(source_width / shrink)));
    fit.height = std::max(1, int(std::lround(source_height / shrink)));
    const LoadedImage image = ImageLoader(fit, loader_->max_source_pixels()).load(job.result.path);
    const Geometry& geometry = image.geometry;
    std::vector<TextRegion> regions = job.regions;
    for (TextRegion& region : regions)
        for (Point& corner : region.corners)
            corner = {float(corner.x / geometry.scale_x), float(corner.y / geometry.scale_y)};
    std::vector<TextLine> lines =
        stage.text->read(image.rgb, fit.width, fit.height, regions, requests);
    for (TextLine& line : lines)
        for (Point& corner : line.corners) corner = geometry.to_source(corner);
    return lines;
}

void ResultStream::deliver(ImageResult result) {
    {
        std::lock_guard lock(results_mutex_);
        const std::size_t sequence = result.index * stages_.size() + result.stage;
        ready_.emplace(sequence, std::move(result));
    }
    result_ready_.notify_all();
}

void ResultStream::skip_unexpected() {
    const std::size_t total = paths_.size() * stages_.size();
    while (next_to_emit_ < total &&
           !wants(next_to_emit_ / stages_.size(), next_to_emit_ % stages_.size()))
        ++next_to_emit_;
}

std::optional<ImageResult> ResultStream::next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(results_mutex_);
    result_ready_.wait_for(lock, timeout, [&] {
        return ready_.count(next_to_emit_) || dispatchers_running_ == 0;
    });
    auto found = ready_.find(next_to_emit_);
    // After a cancellation some images never produce a result: skip over the gap.
    if (found == ready_.end() && dispatchers_running_ == 0 && !ready_.empty())
        found = ready_.begin();
    if (found == ready_.end()) return std::nullopt;
    ImageResult result = std::move(found->second);
    next_to_emit_ = found->first + 1;
    ready_.erase(found);
    skip_unexpected();
    return result;
}

bool ResultStream::finished() {
    std::lock_guard lock(results_mutex_);
    return dispatchers_running_ == 0 && ready_.empty();
}

}  // namespace autotags
