// CPU kernel of float16_histogram_ (contract in csrc/ops/float16_histogram.cpp). One sequential
// pass: with one bin per float16 value a per-thread copy of the counts (G x 512 KB) would cost
// more to clear and merge than the increments it parallelises.
#include <torch/library.h>

#include <ATen/ATen.h>

#include "ops/float16_histogram.h"

namespace noisyseg::float16_histogram {
namespace {

void float16_histogram_cpu(const at::Tensor& counts, const at::Tensor& values_in,
                           const std::optional<at::Tensor>& groups_in, const std::optional<at::Tensor>& valid_in) {
  check_args(counts, values_in, groups_in, valid_in);
  const at::Tensor values = values_in.contiguous();
  at::Tensor groups, valid;
  if (groups_in.has_value()) groups = groups_in->contiguous();
  if (valid_in.has_value()) valid = valid_in->contiguous();
  const int16_t* v = reinterpret_cast<const int16_t*>(values.const_data_ptr<at::Half>());
  const int64_t* g = groups.defined() ? groups.const_data_ptr<int64_t>() : nullptr;
  const bool* ok = valid.defined() ? valid.const_data_ptr<bool>() : nullptr;
  int64_t* h = counts.mutable_data_ptr<int64_t>();
  const int64_t n = values.numel(), G = counts.size(0);
  if (g != nullptr && n > 0) {  // check first, so that a bad group leaves counts untouched
    int64_t lo = g[0], hi = g[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = g[i] < lo ? g[i] : lo;
      hi = g[i] > hi ? g[i] : hi;
    }
    TORCH_CHECK(lo >= 0 && hi < G, "float16_histogram_: group ids must lie in 0..", G - 1, ", found ",
                lo < 0 ? lo : hi);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (ok != nullptr && !ok[i]) continue;
    const int32_t b = v[i];
    if ((b & 0x7c00) == 0x7c00) continue;  // inf or NaN
    ++h[(g != nullptr ? g[i] : 0) * 65536 + order_key(b)];
  }
}

}  // namespace
}  // namespace noisyseg::float16_histogram

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) {
  m.impl("float16_histogram_", &noisyseg::float16_histogram::float16_histogram_cpu);
}
