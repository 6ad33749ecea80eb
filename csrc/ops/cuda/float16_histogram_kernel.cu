// CUDA kernel of float16_histogram_ (contract in csrc/ops/float16_histogram.cpp). One thread per
// value, a global atomic add per counted value; group ids are checked on the device first and a bad
// one fails the call before any count changes (one host sync for that check).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "ops/float16_histogram.h"

namespace noisyseg::float16_histogram {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) count_kernel(const int16_t* __restrict__ v, const int64_t* __restrict__ g,
                                                          const bool* __restrict__ ok, int64_t n,
                                                          unsigned long long* __restrict__ h) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (ok != nullptr && !ok[i]) continue;
    const int32_t b = v[i];
    if ((b & 0x7c00) == 0x7c00) continue;  // inf or NaN
    atomicAdd(h + (g != nullptr ? g[i] : 0) * 65536 + order_key(b), 1ULL);
  }
}

void float16_histogram_cuda(const at::Tensor& counts, const at::Tensor& values_in,
                            const std::optional<at::Tensor>& groups_in, const std::optional<at::Tensor>& valid_in) {
  check_args(counts, values_in, groups_in, valid_in);
  const c10::cuda::CUDAGuard guard(values_in.device());
  const at::Tensor values = values_in.contiguous();
  at::Tensor groups, valid;
  if (groups_in.has_value()) groups = groups_in->contiguous();
  if (valid_in.has_value()) valid = valid_in->contiguous();
  const int64_t n = values.numel(), G = counts.size(0);
  if (n == 0) return;
  if (groups.defined()) {
    const auto [lo, hi] = at::aminmax(groups);
    const int64_t low = lo.item<int64_t>(), high = hi.item<int64_t>();
    TORCH_CHECK(low >= 0 && high < G, "float16_histogram_: group ids must lie in 0..", G - 1, ", found ",
                low < 0 ? low : high);
  }
  const int blocks = static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535L * 8));
  count_kernel<<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const int16_t*>(values.const_data_ptr<at::Half>()),
      groups.defined() ? groups.const_data_ptr<int64_t>() : nullptr,
      valid.defined() ? valid.const_data_ptr<bool>() : nullptr, n,
      reinterpret_cast<unsigned long long*>(counts.mutable_data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace noisyseg::float16_histogram

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) {
  m.impl("float16_histogram_", &noisyseg::float16_histogram::float16_histogram_cuda);
}
