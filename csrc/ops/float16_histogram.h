// Declarations shared by the float16_histogram schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace noisyseg::float16_histogram {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_args(const at::Tensor& counts, const at::Tensor& values, const std::optional<at::Tensor>& groups,
                const std::optional<at::Tensor>& valid);

// Sort key of float16 bits b (as int16, sign-extended): keys 0..65535 order like the values.
// Matches noisyseg.metrics.detection.float16_order_keys.
#if defined(__CUDACC__)
__host__ __device__
#endif
inline int32_t order_key(int32_t b) {
  return (b ^ ((b >> 15) | 0x8000)) & 0xffff;
}

}  // namespace noisyseg::float16_histogram
