// Reads the lines of text a text detector found: each region is cut out upright,
// turned over when the orientation classifier says it is upside down, and recognised
// in batches of similar width, decoded with CTC over the recogniser's own characters.
#pragma once

#include <cstdint>
#include <memory>
#include <openvino/openvino.hpp>
#include <string>
#include <vector>

#include "inference_model.hpp"
#include "text_regions.hpp"

namespace autotags {

struct TextLine {
    std::string text;  // UTF-8
    float confidence = 0;
    std::array<Point, 4> corners;  // as TextRegion: clockwise from the line's start
};

struct TextSettings {
    RegionSettings regions;
    float min_confidence = 0.5f;   // lines recognised less surely than this are dropped
    // The classifier's mean certainty at which a line is turned over; a turned line is
    // read both ways, so a wrong turn costs time, not text.
    float flip_confidence = 0.5f;
    int max_line_width = 1600;     // recogniser input pixels; longer lines are squeezed
    // PP-OCR's recogniser often ranks the space second, behind CTC's blank, between two
    // Latin words ("partytonight"). A gap between two letters of a space-separated script
    // becomes a space when the space had at least this probability at one step of it.
    float space_in_gap = 0.1f;
    int batch = 6;                 // lines per recognition
    int reading_side = 2000;       // longest side of the image lines are cut from
};

class TextReader {
public:
    // `characters` are the recogniser's classes between CTC's blank (class 0) and the
    // space (the last class). `orientation` may be null: lines are then read as cut.
    TextReader(std::shared_ptr<InferenceModel> recogniser, std::shared_ptr<InferenceModel> orientation,
               std::vector<std::string> characters, TextSettings settings);

    // Throws ModelError unless `detector` outputs one probability map per image at its
    // input size.
    void check_detector(const InferenceModel& detector) const;

    // Regions of image `slot` of a finished detection, in detector-input pixels; only the
    // top-left `valid_width` x `valid_height` of the map shows the image.
    std::vector<TextRegion> regions(ov::InferRequest& detection, std::size_t slot, int valid_width,
                                    int valid_height) const;

    struct Requests {  // one reading thread's own inference requests
        ov::InferRequest recognise;
        ov::InferRequest orient;
    };
    Requests make_requests() const;

    // The lines in `regions` of `rgb` (height x width x 3), corners in the same pixels.
    std::vector<TextLine> read(const std::vector<std::uint8_t>& rgb, int width, int height,
                               const std::vector<TextRegion>& regions, Requests& requests) const;

    const TextSettings& settings() const { return settings_; }

private:
    struct Crop;
    std::vector<Crop> cut_out(const std::vector<std::uint8_t>& rgb, int width, int height,
                              const std::vector<TextRegion>& regions) const;
    void turn_upright(std::vector<Crop>& crops, ov::InferRequest& orient) const;
    std::vector<Crop> orientation_windows(const Crop& crop, std::size_t index) const;
    static void turn_over(Crop& crop);
    std::vector<TextLine> recognise(std::vector<Crop>& crops, ov::InferRequest& recognise) const;
    TextLine decode_ctc(const float* steps, std::size_t step_count, std::size_t classes) const;

    std::shared_ptr<InferenceModel> recogniser_;
    std::shared_ptr<InferenceModel> orientation_;
    std::vector<std::string> classes_;  // blank, the characters, space
    TextSettings settings_;
    int line_height_ = 48;
    int orientation_width_ = 192;
};

}  // namespace autotags
