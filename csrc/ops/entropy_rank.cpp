// entropy_rank: logits or probabilities [B, C, H, W] -> per-pixel entropy, the exact quantile of
// the entropy over valid pixels, and each class's rank per pixel, in one pass over the data.
//
// Contract:
// - x: float16/bfloat16/float32/float64 [B, C, H, W], 1 <= C <= 255. With is_logits a numerically
//   stable softmax over C is implied; otherwise x holds probabilities, used as given (not
//   renormalised; p <= 0 contributes 0, so 0 log 0 = 0).
// - entropy: float32 [B, H, W], natural log, clamped to >= 0 (rounding can dip below).
// - threshold: 0-dim float32, numpy's default linear-interpolation quantile of the entropy over
//   the pixels where `valid` is true (all pixels when valid is None), exact for any size (radix
//   select on the float bits). NaN when no pixel is valid. An empty [0] tensor when quantile is
//   None (the Python wrapper turns that into None).
// - rank: uint8 [B, C, H, W]; rank 0 = the largest value, ties broken by the lower class id. For
//   logits the ranking uses the logits themselves (softmax is monotone), so classes whose
//   probabilities underflow to the same value still rank by their logits. NaN ranks as +inf.
// - Not differentiable: no autograd kernel is registered; the wrapper detaches its input.
#include <torch/library.h>

#include <ATen/ATen.h>

#include "ops/entropy_rank.h"

namespace noisyseg::entropy_rank {

void check_args(const at::Tensor& x, const std::optional<at::Tensor>& valid, std::optional<double> quantile) {
  TORCH_CHECK(x.dim() == 4, "entropy_rank: x must be [B, C, H, W], got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "entropy_rank: x must be a floating tensor, got ",
              x.scalar_type());
  TORCH_CHECK(x.size(1) >= 1 && x.size(1) <= 255, "entropy_rank: x must have 1 to 255 classes (dim 1), got ",
              x.size(1));
  if (valid.has_value()) {
    const at::Tensor& v = *valid;
    TORCH_CHECK(v.scalar_type() == at::kBool, "entropy_rank: valid must be a bool tensor, got ", v.scalar_type());
    TORCH_CHECK(v.dim() == 3 && v.size(0) == x.size(0) && v.size(1) == x.size(2) && v.size(2) == x.size(3),
                "entropy_rank: valid must be [B, H, W] = [", x.size(0), ", ", x.size(2), ", ", x.size(3),
                "], got ", v.sizes());
    TORCH_CHECK(v.device() == x.device(), "entropy_rank: valid must be on ", x.device(), ", got ", v.device());
  }
  if (quantile.has_value()) {
    TORCH_CHECK(*quantile >= 0.0 && *quantile <= 1.0, "entropy_rank: quantile must be in [0, 1], got ", *quantile);
  }
}

}  // namespace noisyseg::entropy_rank

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("entropy_rank(Tensor x, bool is_logits=True, Tensor? valid=None, float? quantile=None) "
        "-> (Tensor entropy, Tensor threshold, Tensor rank)");
}
