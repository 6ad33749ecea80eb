// Bilinear source taps shared by the CPU and CUDA kernels of superpixel_pool, so that the CPU
// tests also validate the arithmetic the CUDA kernel runs.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

namespace noisyseg::superpixel_pool {

// The two taps one output coordinate reads along one axis, with their weights.
struct Taps {
  int64_t i0, i1;
  double w0, w1;
};

// Mirrors F.interpolate(mode="bilinear") for an explicit output size: align_corners maps the end
// pixels' centres onto each other; otherwise half-pixel centres, source clamped at 0 below and
// the upper tap clamped to the last input index (both taps then read the same cell).
C10_HOST_DEVICE inline Taps source_taps(int64_t dst, int64_t in_size, int64_t out_size, bool align_corners) {
  double src;
  if (align_corners) {
    src = out_size > 1 ? static_cast<double>(dst) * static_cast<double>(in_size - 1) / static_cast<double>(out_size - 1)
                       : 0.0;
  } else {
    src = (static_cast<double>(dst) + 0.5) * static_cast<double>(in_size) / static_cast<double>(out_size) - 0.5;
    if (src < 0.0) src = 0.0;
  }
  int64_t i0 = static_cast<int64_t>(src);  // src >= 0, so truncation is floor
  if (i0 > in_size - 1) i0 = in_size - 1;
  const int64_t i1 = i0 < in_size - 1 ? i0 + 1 : i0;
  const double l1 = src - static_cast<double>(i0);
  return {i0, i1, 1.0 - l1, l1};
}

}  // namespace noisyseg::superpixel_pool
