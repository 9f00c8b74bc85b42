// How much libjpeg may shrink while decoding, shared by JPEG files and RAW previews.
#pragma once

#include <algorithm>

namespace autotags {

// The largest DCT scaling (1/8, 1/4, 1/2) that still leaves at least the target size:
// libjpeg then never decodes the detail the model would throw away. Never more than
// the shorter side: libvips aborts the process on a shrink larger than a side.
inline int jpeg_shrink(int width, int height, int target_width, int target_height) {
    for (int shrink : {8, 4, 2})
        if (shrink <= std::min(width, height) && (width + shrink - 1) / shrink >= target_width &&
            (height + shrink - 1) / shrink >= target_height)
            return shrink;
    return 1;
}

}  // namespace autotags
