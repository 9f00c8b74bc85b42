// Exception types that the Python module exposes as autotags.ImageError / ModelError.
#pragma once

#include <stdexcept>
#include <string>

namespace autotags {

// A problem with one image file; the message names the file.
class ImageError : public std::runtime_error {
public:
    ImageError(const std::string& path, const std::string& reason)
        : std::runtime_error(path + ": " + reason) {}
};

// A problem with a model file or its configuration; the message names the file.
class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace autotags
