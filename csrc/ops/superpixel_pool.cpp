// superpixel_pool: per-superpixel means of features [B, D, h, w] as if they were first bilinearly
// upsampled to the segment map's size [H, W] (F.interpolate(mode="bilinear") semantics, with or
// without align_corners), without ever forming the upsampled [B, D, H, W] tensor.
//
// Contract:
// - features: float16/bfloat16/float32/float64 [B, D, h, w], any strides, h, w >= 1.
// - segments: any integer dtype [B, H, W]. Ids in [0, num_segments) are pooled; negative ids are
//   ignored (neither counted nor pooled); an id >= num_segments is an error.
// - means: [B, N, D] in the features' dtype, accumulated in float32 (float64 for float64 input);
//   counts: int64 [B, N], the number of pixels of each segment. An empty segment gives a zero row
//   and count 0.
// - Since upsampling is linear, mean_n = sum_cells a[n, cell] f[:, cell] / count_n, where
//   a[n, cell] sums the bilinear tap weights of segment n's pixels on that low-res cell. Kernels
//   build a (sparse) per image and never touch more than O(B*H*W + nnz(a)*D) values.
// - Differentiable w.r.t. features (segments are not); the backward recomputes a rather than
//   saving it. The backward op is not itself differentiable (no double backward).
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/ATen.h>

#include "ops/superpixel_pool.h"

namespace noisyseg::superpixel_pool {

void check_args(const at::Tensor& features, const at::Tensor& segments, int64_t num_segments) {
  TORCH_CHECK(features.dim() == 4, "superpixel_pool: features must be [B, D, h, w], got ", features.sizes());
  TORCH_CHECK(at::isFloatingType(features.scalar_type()),
              "superpixel_pool: features must be a floating tensor, got ", features.scalar_type());
  TORCH_CHECK(features.size(2) >= 1 && features.size(3) >= 1,
              "superpixel_pool: features must have h, w >= 1, got ", features.sizes());
  TORCH_CHECK(segments.dim() == 3, "superpixel_pool: segments must be [B, H, W], got ", segments.sizes());
  TORCH_CHECK(at::isIntegralType(segments.scalar_type(), /*includeBool=*/false),
              "superpixel_pool: segments must be an integer tensor, got ", segments.scalar_type());
  TORCH_CHECK(segments.size(0) == features.size(0), "superpixel_pool: segments batch (", segments.size(0),
              ") must match features batch (", features.size(0), ")");
  TORCH_CHECK(segments.device() == features.device(), "superpixel_pool: segments must be on ", features.device(),
              ", got ", segments.device());
  TORCH_CHECK(segments.size(1) * segments.size(2) < (int64_t{1} << 31),
              "superpixel_pool: segments must have fewer than 2^31 pixels per image, got ", segments.sizes());
  TORCH_CHECK(num_segments >= 0, "superpixel_pool: num_segments must be >= 0, got ", num_segments);
}

void check_backward_args(const at::Tensor& grad_means, const at::Tensor& segments, const at::Tensor& counts,
                         int64_t height, int64_t width) {
  TORCH_CHECK(grad_means.dim() == 3 && grad_means.size(0) == segments.size(0),
              "superpixel_pool_backward: grad_means must be [B, N, D] with B = ", segments.size(0), ", got ",
              grad_means.sizes());
  TORCH_CHECK(counts.dim() == 2 && counts.size(0) == grad_means.size(0) && counts.size(1) == grad_means.size(1),
              "superpixel_pool_backward: counts must be [B, N] = [", grad_means.size(0), ", ", grad_means.size(1),
              "], got ", counts.sizes());
  TORCH_CHECK(segments.dim() == 3, "superpixel_pool_backward: segments must be [B, H, W], got ", segments.sizes());
  TORCH_CHECK(height >= 1 && width >= 1, "superpixel_pool_backward: height and width must be >= 1, got ", height,
              " x ", width);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SuperpixelPoolFunction : public torch::autograd::Function<SuperpixelPoolFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& features, const at::Tensor& segments,
                               int64_t num_segments, bool align_corners) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("noisyseg::superpixel_pool", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t,
                                                                   bool)>();
    auto [means, counts] = op.call(features, segments, num_segments, align_corners);
    ctx->save_for_backward({segments, counts});
    ctx->saved_data["height"] = features.size(2);
    ctx->saved_data["width"] = features.size(3);
    ctx->saved_data["align_corners"] = align_corners;
    ctx->mark_non_differentiable({counts});
    return {means, counts};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("noisyseg::superpixel_pool_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                           bool)>();
    auto saved = ctx->get_saved_variables();
    at::Tensor grad_features =
        op.call(grads[0], saved[0], saved[1], ctx->saved_data["height"].toInt(), ctx->saved_data["width"].toInt(),
                ctx->saved_data["align_corners"].toBool());
    return {grad_features, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> superpixel_pool_autograd(const at::Tensor& features, const at::Tensor& segments,
                                                            int64_t num_segments, bool align_corners) {
  auto out = SuperpixelPoolFunction::apply(features, segments, num_segments, align_corners);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace noisyseg::superpixel_pool

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("superpixel_pool(Tensor features, Tensor segments, int num_segments, bool align_corners=False) "
        "-> (Tensor means, Tensor counts)");
  m.def("superpixel_pool_backward(Tensor grad_means, Tensor segments, Tensor counts, int height, int width, "
        "bool align_corners) -> Tensor grad_features");
}

TORCH_LIBRARY_IMPL(noisyseg, Autograd, m) {
  m.impl("superpixel_pool", &noisyseg::superpixel_pool::superpixel_pool_autograd);
}
