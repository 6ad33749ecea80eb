// float16_histogram_: adds the float16 values of a tensor into per-group histograms with one bin
// per float16 value, in place. Exact at float16 precision and constant in memory however many
// values are streamed through it: the building block of θ calibration, confident learning's
// statistics and AUROC of noise scores.
//
// Contract:
// - counts: int64 [G, 65536], contiguous, on values' device; bin k of group g is incremented for
//   every counted value whose order key (noisyseg.metrics.detection.float16_order_keys) is k.
// - values: float16, any shape. Entries that are inf or NaN are not counted.
// - groups: optional int64 tensor with values' number of elements; entry i goes to group
//   groups[i] (group 0 when absent). A group outside 0..G-1 is an error.
// - valid: optional bool tensor with values' number of elements; only true entries count.
#include <torch/library.h>

#include <ATen/ATen.h>

#include "ops/float16_histogram.h"

namespace noisyseg::float16_histogram {

void check_args(const at::Tensor& counts, const at::Tensor& values, const std::optional<at::Tensor>& groups,
                const std::optional<at::Tensor>& valid) {
  TORCH_CHECK(counts.scalar_type() == at::kLong && counts.dim() == 2 && counts.size(1) == 65536 &&
                  counts.is_contiguous(),
              "float16_histogram_: counts must be contiguous int64 [G, 65536], got ", counts.scalar_type(), " ",
              counts.sizes());
  TORCH_CHECK(values.scalar_type() == at::kHalf, "float16_histogram_: values must be float16, got ",
              values.scalar_type());
  TORCH_CHECK(counts.device() == values.device(), "float16_histogram_: counts must be on ", values.device(),
              ", got ", counts.device());
  if (groups.has_value()) {
    TORCH_CHECK(groups->scalar_type() == at::kLong, "float16_histogram_: groups must be int64, got ",
                groups->scalar_type());
    TORCH_CHECK(groups->numel() == values.numel() && groups->device() == values.device(),
                "float16_histogram_: groups must have values' ", values.numel(), " elements on ", values.device());
  }
  if (valid.has_value()) {
    TORCH_CHECK(valid->scalar_type() == at::kBool, "float16_histogram_: valid must be bool, got ",
                valid->scalar_type());
    TORCH_CHECK(valid->numel() == values.numel() && valid->device() == values.device(),
                "float16_histogram_: valid must have values' ", values.numel(), " elements on ", values.device());
  }
}

}  // namespace noisyseg::float16_histogram

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("float16_histogram_(Tensor(a!) counts, Tensor values, Tensor? groups=None, Tensor? valid=None) -> ()");
}
