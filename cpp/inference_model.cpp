#include "inference_model.hpp"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <openvino/frontend/manager.hpp>
#include <sstream>
#include <unistd.h>

#include "errors.hpp"

namespace autotags {

namespace {

ov::Core& shared_core() {
    static ov::Core core;
    return core;
}

TensorLayout detect_layout(const ov::PartialShape& shape, TensorLayout requested,
                           const std::string& path) {
    if (requested != TensorLayout::automatic) return requested;
    if (shape.rank().is_static() && shape.rank().get_length() == 4) {
        if (shape[1].is_static() && shape[1].get_length() == 3) return TensorLayout::nchw;
        if (shape[3].is_static() && shape[3].get_length() == 3) return TensorLayout::nhwc;
    }
    throw ModelError(path + ": cannot tell the image layout of input shape " + shape.to_string() +
                     "; expected [N,3,H,W] or [N,H,W,3]");
}

int static_dimension(const ov::PartialShape& shape, std::size_t axis, int requested,
                     const std::string& what, const std::string& path) {
    if (requested > 0) return requested;
    if (shape[axis].is_static()) return static_cast<int>(shape[axis].get_length());
    throw ModelError(path + ": the model's input " + what +
                     " is dynamic; give the input size in the model's catalogue entry");
}

// OpenVINO's messages start with lines naming its own source files; keep the rest.
std::string concise(const std::string& message) {
    std::istringstream lines(message);
    std::string line, kept;
    while (std::getline(lines, line)) {
        if (line.empty() || line.rfind("Exception from ", 0) == 0 || line.rfind("Check '", 0) == 0)
            continue;
        kept += (kept.empty() ? "" : " ") + line;
    }
    return kept.empty() ? message : kept;
}

// The frontend that reads a file, by its extension; empty for OpenVINO IR. Naming it
// spares the other frontends trying (and complaining about) a file that is not theirs.
std::string framework_of(const std::string& path) {
    const std::string extension = std::filesystem::path(path).extension().string();
    if (extension == ".xml") return "";
    if (extension == ".onnx") return "onnx";
    if (extension == ".pb") return "tf";
    if (extension == ".tflite") return "tflite";
    throw ModelError(path + ": not a model file type autotags reads (.onnx, OpenVINO IR .xml, "
                            "TensorFlow .pb or .tflite)");
}

std::shared_ptr<ov::Model> read_model(const std::string& path) {
    const std::string framework = framework_of(path);
    try {
        if (framework.empty()) return shared_core().read_model(path);
        ov::frontend::FrontEndManager manager;
        const auto frontend = manager.load_by_framework(framework);
        return frontend->convert(frontend->load(path));
    } catch (const std::exception& error) {
        throw ModelError(path + ": cannot read model file: " + concise(error.what()));
    }
}

}  // namespace

namespace {

struct InputGeometry {
    int width = 0;
    int height = 0;
    int batch = 1;
};

// The model at `model_path` reshaped to a fixed batch and size, taking 8-bit RGB NHWC
// pixels, with layout, channel order, element type and normalisation inside the graph.
std::shared_ptr<ov::Model> prepare_model(const std::string& model_path, const InputSpec& spec,
                                         InputGeometry& geometry) {
    std::shared_ptr<ov::Model> model = read_model(model_path);
    if (model->inputs().size() != 1)
        throw ModelError(model_path + ": the model has " + std::to_string(model->inputs().size()) +
                         " inputs; an image model has exactly one");

    const ov::PartialShape input_shape = model->input().get_partial_shape();
    if (input_shape.rank().is_dynamic() || input_shape.rank().get_length() != 4)
        throw ModelError(model_path + ": input shape " + input_shape.to_string() +
                         " is not a 4-D image batch");
    const TensorLayout layout = detect_layout(input_shape, spec.layout, model_path);
    const bool planar = layout == TensorLayout::nchw;
    geometry.height = static_dimension(input_shape, planar ? 2 : 1, spec.height, "height", model_path);
    geometry.width = spec.any_width ? 0
                                    : static_dimension(input_shape, planar ? 3 : 2, spec.width,
                                                       "width", model_path);
    geometry.batch = spec.any_batch ? 0 : std::max(1, spec.batch);

    const auto open_or = [](int size) { return size ? ov::Dimension(size) : ov::Dimension(); };
    const ov::Dimension batch = open_or(geometry.batch), height = open_or(geometry.height),
                        width = open_or(geometry.width);
    model->reshape(planar ? ov::PartialShape{batch, 3, height, width}
                          : ov::PartialShape{batch, height, width, 3});

    ov::preprocess::PrePostProcessor ppp(model);
    auto& input = ppp.input();
    input.tensor()
        .set_element_type(ov::element::u8)
        .set_layout("NHWC")
        .set_color_format(ov::preprocess::ColorFormat::RGB);
    input.model().set_layout(planar ? "NCHW" : "NHWC");
    if (spec.bgr) input.preprocess().convert_color(ov::preprocess::ColorFormat::BGR);
    const ov::element::Type model_type = model->input().get_element_type();
    if (model_type != ov::element::u8) input.preprocess().convert_element_type(ov::element::f32);
    if (!spec.mean.empty()) input.preprocess().mean(spec.mean);
    if (!spec.scale.empty()) input.preprocess().scale(spec.scale);
    if (model_type != ov::element::u8 && model_type != ov::element::f32 && model_type.is_static())
        input.preprocess().convert_element_type(model_type);
    for (std::size_t i = 0; i < model->outputs().size(); ++i)
        ppp.output(i).tensor().set_element_type(ov::element::f32);
    return ppp.build();
}

// Saves `model` as IR at `path` through temporary files, the .bin before the .xml, so
// that an .xml present means a complete pair even if the process died half-way.
// Returns false when the folder cannot be written: the caller compiles from memory.
bool save_prepared(const std::shared_ptr<ov::Model>& model, const std::filesystem::path& path) {
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    if (error) return false;
    const std::filesystem::path staged =
        path.parent_path() / (path.stem().string() + ".staged-" + std::to_string(::getpid()) + ".xml");
    try {
        ov::save_model(model, staged.string(), /*compress_to_fp16=*/false);
    } catch (const std::exception&) {
        return false;
    }
    std::filesystem::path staged_bin = staged, bin = path;
    staged_bin.replace_extension(".bin");
    bin.replace_extension(".bin");
    std::filesystem::rename(staged_bin, bin, error);
    if (!error) std::filesystem::rename(staged, path, error);
    if (error) {
        std::filesystem::remove(staged);
        std::filesystem::remove(staged_bin);
    }
    return !error;
}

}  // namespace

InferenceModel::InferenceModel(const std::string& model_path, const std::string& device,
                               const InputSpec& spec,
                               const std::map<std::string, std::string>& config,
                               const std::string& prepared_path)
    : path_(model_path), device_(device) {
    ov::AnyMap properties;
    for (const auto& [key, value] : config) properties[key] = value;
    if (!prepared_path.empty() && std::filesystem::is_regular_file(prepared_path)) {
        try {
            compiled_ = shared_core().compile_model(prepared_path, device, properties);
        } catch (const std::exception&) {
            // A damaged copy (a disk error, someone editing it) is made again below.
            std::filesystem::path bin = prepared_path;
            std::error_code ignored;
            std::filesystem::remove(prepared_path, ignored);
            std::filesystem::remove(bin.replace_extension(".bin"), ignored);
        }
    }
    try {
        if (!compiled_) {
            InputGeometry geometry;
            std::shared_ptr<ov::Model> model = prepare_model(model_path, spec, geometry);
            const bool saved = !prepared_path.empty() && save_prepared(model, prepared_path);
            compiled_ = saved ? shared_core().compile_model(prepared_path, device, properties)
                              : shared_core().compile_model(model, device, properties);
        }
    } catch (const ModelError&) {
        throw;
    } catch (const std::exception& error) {
        throw ModelError(model_path + ": cannot prepare the model for " + device + ": " +
                         concise(error.what()));
    }
    // The compiled input is u8 NHWC: [batch, height, width, 3], open sizes as 0.
    const ov::PartialShape input = compiled_.input().get_partial_shape();
    const auto size_of = [&](std::size_t axis) {
        return input[axis].is_static() ? int(input[axis].get_length()) : 0;
    };
    batch_ = size_of(0);
    input_height_ = size_of(1);
    input_width_ = size_of(2);
}

double InferenceModel::measure_inference_rate(const std::vector<std::uint8_t>& image,
                                              std::size_t inferences) {
    const std::size_t image_bytes = std::size_t(input_width_) * input_height_ * 3;
    if (image.size() != image_bytes)
        throw std::invalid_argument("the image must be the model's input size");
    const std::size_t batches = std::max<std::size_t>(1, inferences / std::size_t(batch_));
    std::vector<ov::InferRequest> requests(optimal_request_count());
    std::mutex mutex;
    std::condition_variable finished;
    std::size_t started = 0, done = 0;
    for (ov::InferRequest& request : requests) {
        request = compiled_.create_infer_request();
        auto* pixels = request.get_input_tensor().data<std::uint8_t>();
        for (int slot = 0; slot < batch_; ++slot)
            std::copy(image.begin(), image.end(), pixels + slot * image_bytes);
    }
    // Each finished request starts the next inference until all are under way.
    for (ov::InferRequest& request : requests)
        request.set_callback([&, target = &request](std::exception_ptr) {
            std::lock_guard lock(mutex);
            if (started < batches) {
                ++started;
                target->start_async();
            }
            if (++done == batches) finished.notify_all();
        });
    const auto begin = std::chrono::steady_clock::now();
    {
        std::unique_lock lock(mutex);
        for (ov::InferRequest& request : requests)
            if (started < batches) {
                ++started;
                request.start_async();
            }
        finished.wait(lock, [&] { return done >= batches; });
    }
    for (ov::InferRequest& request : requests) request.wait();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    return double(batches * std::size_t(batch_)) / seconds;
}

unsigned InferenceModel::optimal_request_count() const {
    try {
        return std::max(1u, compiled_.get_property(ov::optimal_number_of_infer_requests));
    } catch (const ov::Exception&) {
        return 1;
    }
}

std::vector<std::vector<std::size_t>> InferenceModel::output_shapes() const {
    std::vector<std::vector<std::size_t>> shapes;
    for (const auto& output : compiled_.outputs()) {
        const ov::Shape shape = output.get_shape();
        shapes.emplace_back(shape.begin(), shape.end());
    }
    return shapes;
}

std::vector<ov::PartialShape> InferenceModel::output_partial_shapes() const {
    std::vector<ov::PartialShape> shapes;
    for (const auto& output : compiled_.outputs()) shapes.push_back(output.get_partial_shape());
    return shapes;
}

std::vector<std::vector<std::string>> InferenceModel::output_names() const {
    std::vector<std::vector<std::string>> names;
    for (const auto& output : compiled_.outputs()) {
        const auto& set = output.get_names();
        names.emplace_back(set.begin(), set.end());
    }
    return names;
}

}  // namespace autotags
