// Python bindings: the only file that knows about pybind11.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vips/vips.h>

#include "errors.hpp"
#include "image_loader.hpp"
#include "inference_model.hpp"
#include "nms.hpp"
#include "output_decoders.hpp"
#include "pipeline.hpp"
#include "text_reader.hpp"
#include "text_regions.hpp"

namespace py = pybind11;
using namespace autotags;

namespace {

using DetectionTuple = std::tuple<int, float, std::optional<std::array<float, 4>>>;

DetectionTuple to_tuple(const Detection& detection) {
    std::optional<std::array<float, 4>> box;
    if (detection.has_box)
        box = std::array<float, 4>{detection.box.x1, detection.box.y1, detection.box.x2,
                                   detection.box.y2};
    return {detection.class_id, detection.score, box};
}

using Corners = std::array<float, 8>;  // x, y of each corner in turn

Corners flat_corners(const std::array<Point, 4>& corners) {
    Corners flat{};
    for (std::size_t i = 0; i < 4; ++i) flat[2 * i] = corners[i].x, flat[2 * i + 1] = corners[i].y;
    return flat;
}

// A model's character list is its own: text it yields that is not UTF-8 is shown with
// the replacement character rather than failing the image.
py::str utf8_text(const std::string& text) {
    PyObject* decoded = PyUnicode_DecodeUTF8(text.data(), Py_ssize_t(text.size()), "replace");
    if (!decoded) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(decoded);
}

py::list lines_to_python(const std::vector<TextLine>& lines) {
    py::list converted;
    for (const TextLine& line : lines)
        converted.append(py::make_tuple(utf8_text(line.text), line.confidence,
                                        flat_corners(line.corners)));
    return converted;
}

py::object result_to_python(ImageResult result) {
    std::vector<DetectionTuple> detections;
    for (const Detection& detection : result.detections) detections.push_back(to_tuple(detection));
    // Bytes, not str: the message holds the file name, which need not be UTF-8.
    py::object error = result.error.empty() ? py::object(py::none()) : py::bytes(result.error);
    return py::make_tuple(result.index, result.stage, result.width, result.height, detections,
                          error, to_string(result.pixels), lines_to_python(result.lines));
}

// Waits for the next result without holding the GIL, but wakes up regularly so that
// Ctrl-C reaches Python promptly.
py::object next_result(ResultStream& stream) {
    while (true) {
        std::optional<ImageResult> result;
        bool finished = false;
        {
            py::gil_scoped_release released;
            result = stream.next(std::chrono::milliseconds(100));
            if (!result) finished = stream.finished();
        }
        if (result) return result_to_python(std::move(*result));
        if (finished) throw py::stop_iteration();
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
}

py::array_t<std::uint8_t> pixels_to_array(const LoadedImage& image, const InputFit& fit) {
    if (image.rgb.size() != input_bytes(fit))
        throw std::length_error("decoded image does not match the model input size");
    py::array_t<std::uint8_t> array({fit.height, fit.width, 3});
    std::copy(image.rgb.begin(), image.rgb.end(), array.mutable_data());
    return array;
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
    m.doc() = "autotags C++ engine: libvips decoding, OpenVINO inference, output decoding and NMS";

    // Both also derive from autotags' own error base, so callers catch one family.
    py::object expected = py::module_::import("autotags.errors").attr("AutotagsError");
    py::register_exception<ImageError>(m, "ImageError",
                                       py::make_tuple(expected, py::handle(PyExc_ValueError)));
    py::register_exception<ModelError>(m, "ModelError",
                                       py::make_tuple(expected, py::handle(PyExc_RuntimeError)));

    py::enum_<ResizeMode>(m, "ResizeMode")
        .value("letterbox", ResizeMode::letterbox)
        .value("stretch", ResizeMode::stretch)
        .value("centre_crop", ResizeMode::centre_crop);
    py::enum_<PadPlacement>(m, "PadPlacement")
        .value("centre", PadPlacement::centre)
        .value("top_left", PadPlacement::top_left);
    py::enum_<TensorLayout>(m, "TensorLayout")
        .value("automatic", TensorLayout::automatic)
        .value("nchw", TensorLayout::nchw)
        .value("nhwc", TensorLayout::nhwc);
    py::enum_<OutputFormat>(m, "OutputFormat")
        .value("yolo", OutputFormat::yolo)
        .value("ssd", OutputFormat::ssd)
        .value("ssd_raw", OutputFormat::ssd_raw)
        .value("classifier", OutputFormat::classifier);
    py::enum_<Softmax>(m, "Softmax")
        .value("automatic", Softmax::automatic)
        .value("always", Softmax::always)
        .value("never", Softmax::never);

    py::class_<InputFit>(m, "InputFit")
        .def(py::init<>())
        .def_readwrite("width", &InputFit::width)
        .def_readwrite("height", &InputFit::height)
        .def_readwrite("mode", &InputFit::mode)
        .def_readwrite("placement", &InputFit::placement)
        .def_readwrite("pad_colour", &InputFit::pad_colour);

    py::class_<InputSpec>(m, "InputSpec")
        .def(py::init<>())
        .def_readwrite("width", &InputSpec::width)
        .def_readwrite("height", &InputSpec::height)
        .def_readwrite("batch", &InputSpec::batch)
        .def_readwrite("layout", &InputSpec::layout)
        .def_readwrite("bgr", &InputSpec::bgr)
        .def_readwrite("mean", &InputSpec::mean)
        .def_readwrite("scale", &InputSpec::scale)
        .def_readwrite("any_width", &InputSpec::any_width)
        .def_readwrite("any_batch", &InputSpec::any_batch);

    py::class_<NmsSettings>(m, "NmsSettings")
        .def(py::init<>())
        .def_readwrite("iou_threshold", &NmsSettings::iou_threshold)
        .def_readwrite("class_agnostic", &NmsSettings::class_agnostic)
        .def_readwrite("max_detections", &NmsSettings::max_detections);

    py::class_<DecoderSettings>(m, "DecoderSettings")
        .def(py::init<>())
        .def_readwrite("format", &DecoderSettings::format)
        .def_readwrite("num_classes", &DecoderSettings::num_classes)
        .def_readwrite("score_threshold", &DecoderSettings::score_threshold)
        .def_readwrite("nms", &DecoderSettings::nms)
        .def_readwrite("top_k", &DecoderSettings::top_k)
        .def_readwrite("softmax", &DecoderSettings::softmax)
        .def_readwrite("output_scale", &DecoderSettings::output_scale)
        .def_readwrite("class_map", &DecoderSettings::class_map);

    py::class_<RegionSettings>(m, "RegionSettings")
        .def(py::init<>())
        .def_readwrite("pixel_threshold", &RegionSettings::pixel_threshold)
        .def_readwrite("region_threshold", &RegionSettings::region_threshold)
        .def_readwrite("unclip_ratio", &RegionSettings::unclip_ratio)
        .def_readwrite("min_side", &RegionSettings::min_side)
        .def_readwrite("max_regions", &RegionSettings::max_regions);

    py::class_<TextSettings>(m, "TextSettings")
        .def(py::init<>())
        .def_readwrite("regions", &TextSettings::regions)
        .def_readwrite("min_confidence", &TextSettings::min_confidence)
        .def_readwrite("flip_confidence", &TextSettings::flip_confidence)
        .def_readwrite("max_line_width", &TextSettings::max_line_width)
        .def_readwrite("space_in_gap", &TextSettings::space_in_gap)
        .def_readwrite("reading_side", &TextSettings::reading_side)
        .def_readwrite("batch", &TextSettings::batch);

    py::class_<PipelineSettings>(m, "PipelineSettings")
        .def(py::init<>())
        .def_readwrite("decode_threads", &PipelineSettings::decode_threads)
        .def_readwrite("infer_requests", &PipelineSettings::infer_requests)
        .def_readwrite("max_source_pixels", &PipelineSettings::max_source_pixels);

    py::class_<InferenceModel, std::shared_ptr<InferenceModel>>(m, "InferenceModel")
        .def(py::init<const std::string&, const std::string&, const InputSpec&,
                      const std::map<std::string, std::string>&, const std::string&>(),
             py::arg("path"), py::arg("device"), py::arg("input"), py::arg("config"),
             py::arg("prepared_path") = "",
             py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("input_width", &InferenceModel::input_width)
        .def_property_readonly("input_height", &InferenceModel::input_height)
        .def_property_readonly("batch", &InferenceModel::batch)
        .def_property_readonly("request_count", &InferenceModel::optimal_request_count)
        .def_property_readonly("images_inferred", &InferenceModel::images_inferred)
        .def(
            "measure_inference_rate",
            [](InferenceModel& model, const py::array_t<std::uint8_t, py::array::c_style>& image,
               std::size_t inferences) {
                std::vector<std::uint8_t> pixels(image.data(), image.data() + image.size());
                py::gil_scoped_release released;
                return model.measure_inference_rate(pixels, inferences);
            },
            py::arg("image"), py::arg("inferences"),
            "Images per second with every infer request busy on `image` (HxWx3 uint8 at "
            "the input size).")
        .def_property_readonly("output_shapes", &InferenceModel::output_shapes)
        .def_property_readonly("output_names", &InferenceModel::output_names);

    py::class_<TextReader, std::shared_ptr<TextReader>>(m, "TextReader")
        .def(py::init<std::shared_ptr<InferenceModel>, std::shared_ptr<InferenceModel>,
                      std::vector<std::string>, TextSettings>(),
             py::arg("recogniser"), py::arg("orientation"), py::arg("characters"),
             py::arg("settings"));

    py::class_<ResultStream>(m, "ResultStream")
        .def("__iter__", [](ResultStream& stream) -> ResultStream& { return stream; })
        .def("__next__", &next_result)
        .def("cancel", &ResultStream::cancel);

    py::class_<PipelineStage>(m, "PipelineStage")
        .def(py::init([](std::shared_ptr<InferenceModel> model, DecoderSettings decoder,
                         InputFit fit, std::shared_ptr<TextReader> text) {
                 return PipelineStage{std::move(model), std::move(decoder), fit, std::move(text)};
             }),
             py::arg("model"), py::arg("decoder"), py::arg("fit"), py::arg("text") = nullptr);

    py::class_<Pipeline>(m, "Pipeline")
        .def(py::init<std::vector<PipelineStage>, PipelineSettings>(), py::arg("stages"),
             py::arg("settings"))
        .def_property_readonly("stage_count", &Pipeline::stage_count)
        .def("run", &Pipeline::run, py::arg("paths"),
             py::arg("wanted") = std::vector<std::vector<bool>>{},
             "Start tagging `paths` (bytes), each file decoded once for every stage that "
             "`wanted[path][stage]` names (empty: all). Yields (index, stage, width, height, "
             "detections, error, source, lines) tuples in input order, stage by stage; lines are "
             "a text model's (text, confidence, corners x1 y1 .. x4 y4).");

    m.def(
        "load_image",
        [](const std::string& path, const InputFit& fit, std::uint64_t max_source_pixels) {
            LoadedImage image;
            {
                py::gil_scoped_release released;
                image = ImageLoader(fit, max_source_pixels).load(path);
            }
            const Geometry& g = image.geometry;
            return py::make_tuple(pixels_to_array(image, fit), g.source_width, g.source_height);
        },
        py::arg("path"), py::arg("fit"), py::arg("max_source_pixels") = 300'000'000ULL,
        "Decode one image to the model input size: (HxWx3 uint8 array, width, height).");

    m.def(
        "load_image_each",
        [](const std::string& path, const std::vector<InputFit>& fits,
           std::uint64_t max_source_pixels) {
            LoadedImages images;
            {
                py::gil_scoped_release released;
                images = ImageLoader(fits, max_source_pixels)
                             .load_each(path, std::vector<bool>(fits.size(), true));
            }
            py::list arrays;
            for (std::size_t i = 0; i < fits.size(); ++i)
                arrays.append(pixels_to_array(*images[i], fits[i]));
            return arrays;
        },
        py::arg("path"), py::arg("fits"), py::arg("max_source_pixels") = 300'000'000ULL,
        "Decode one image once and fit it into each input: a list of HxWx3 uint8 arrays.");

    m.def(
        "non_max_suppression",
        [](const std::vector<std::tuple<int, float, std::array<float, 4>>>& candidates,
           const NmsSettings& settings) {
            std::vector<Detection> detections;
            for (const auto& [class_id, score, box] : candidates)
                detections.push_back({class_id, score, {box[0], box[1], box[2], box[3]}});
            std::vector<DetectionTuple> kept;
            for (const Detection& detection : non_max_suppression(detections, settings))
                kept.push_back(to_tuple(detection));
            return kept;
        },
        py::arg("candidates"), py::arg("settings"));

    m.def(
        "find_text_regions",
        [](const py::array_t<float, py::array::c_style | py::array::forcecast>& map,
           int valid_width, int valid_height, const RegionSettings& settings) {
            if (map.ndim() != 2) throw std::invalid_argument("the map must be 2-D: rows, columns");
            const int rows = int(map.shape(0)), columns = int(map.shape(1));
            std::vector<TextRegion> regions;
            {
                py::gil_scoped_release released;
                regions = find_text_regions(map.data(), columns, rows, valid_width, valid_height,
                                            settings);
            }
            std::vector<std::pair<Corners, float>> found;
            for (const TextRegion& region : regions)
                found.emplace_back(flat_corners(region.corners), region.score);
            return found;
        },
        py::arg("map"), py::arg("valid_width"), py::arg("valid_height"), py::arg("settings"),
        "Text regions of a detector's probability map: [(corners x1 y1 .. x4 y4, score)].");

    m.def("libvips_version", [] { return std::string(vips_version_string()); });
    m.attr("camera_raw_extensions") = camera_raw_extensions();
    m.def("is_camera_raw", &is_camera_raw, py::arg("path"),
          py::call_guard<py::gil_scoped_release>(),
          "Whether the engine reads this file (path as bytes) with LibRaw: a RAW file name, "
          "or RAW content in a file named as no other photo format.");
}
