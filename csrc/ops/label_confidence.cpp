// label_confidence: probabilities [B, C, H, W] and labels [B, H, W] -> each pixel's probability of
// its own label, its most probable class and that class's probability, in one pass over the data.
// What confident learning (and small-loss) read from a dense prediction, without the C-strided
// argmax and gather that cost the pure-torch version several passes.
//
// Contract:
// - probs: float16/bfloat16/float32/float64 [B, C, H, W], 1 <= C <= 255, finite (NaN: unspecified).
// - labels: int64 [B, H, W] on probs' device; values outside 0..C-1 (the ignore index 255) are
//   allowed and give p_label = 0.
// - p_label: [B, H, W] in probs' dtype, probs[b, labels[b, y, x], y, x].
// - best: int64 [B, H, W], the argmax over C; ties keep the lower class id (as torch.argmax).
// - p_best: [B, H, W] in probs' dtype, the maximum over C.
// - Not differentiable: no autograd kernel is registered; the wrapper detaches its input.
#include <torch/library.h>

#include <ATen/ATen.h>

#include <vector>

#include "ops/label_confidence.h"

namespace noisyseg::label_confidence {

void check_args(const at::Tensor& probs, const at::Tensor& labels) {
  TORCH_CHECK(probs.dim() == 4, "label_confidence: probs must be [B, C, H, W], got ", probs.sizes());
  TORCH_CHECK(at::isFloatingType(probs.scalar_type()), "label_confidence: probs must be a floating tensor, got ",
              probs.scalar_type());
  TORCH_CHECK(probs.size(1) >= 1 && probs.size(1) <= 255,
              "label_confidence: probs must have 1 to 255 classes (dim 1), got ", probs.size(1));
  TORCH_CHECK(labels.scalar_type() == at::kLong, "label_confidence: labels must be int64, got ",
              labels.scalar_type());
  TORCH_CHECK(labels.dim() == 3 && labels.size(0) == probs.size(0) && labels.size(1) == probs.size(2) &&
                  labels.size(2) == probs.size(3),
              "label_confidence: labels must be [B, H, W] = [", probs.size(0), ", ", probs.size(2), ", ",
              probs.size(3), "], got ", labels.sizes());
  TORCH_CHECK(labels.device() == probs.device(), "label_confidence: labels must be on ", probs.device(), ", got ",
              labels.device());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> empty_outputs(const at::Tensor& probs) {
  const std::vector<int64_t> shape{probs.size(0), probs.size(2), probs.size(3)};
  return {at::empty(shape, probs.options()), at::empty(shape, probs.options().dtype(at::kLong)),
          at::empty(shape, probs.options())};
}

}  // namespace noisyseg::label_confidence

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("label_confidence(Tensor probs, Tensor labels) -> (Tensor p_label, Tensor best, Tensor p_best)");
}
