// gat_attention: multi-head attention over the edges of a graph in CSR (many small graphs batched
// block-diagonally), edge softmax and aggregation fused, forward and backward.
//
// Contract:
// - Graph: rowptr int64 [N + 1] (rowptr[0] = 0, non-decreasing, rowptr[N] = E), col int64 [E]
//   with ids in [0, N): the neighbours j of node i are col[rowptr[i] : rowptr[i + 1]]. Duplicate
//   edges count twice. Self-loops are not added.
// - gat_attention: query, key [N, heads, F], value [N, heads, Fv], same floating dtype;
//   logit_ij = scale * <q_i, k_j> per head, scale defaulting to 1 / sqrt(F).
// - gat_attention_additive: src_score, dst_score [N, heads], value [N, heads, Fv];
//   logit_ij = LeakyReLU(s_i + t_j, negative_slope) per head (GAT).
// - Both: out_i = sum_j softmax_j(logit_ij) v_j, [N, heads, Fv] in the inputs' dtype, accumulated
//   in float32 (float64 for float64). A node without neighbours gets zeros. The second output is
//   the per-(node, head) log-sum-exp of the logits (float32, float64 for float64; -inf for a
//   node without neighbours), kept for the backward; the Python wrappers drop it.
// - Never forms [E, heads, F] tensors; the backward uses two [E, heads] buffers (CPU) and the
//   graph's transpose, built inside the op by a counting sort (CPU, no atomics) or atomics (CUDA).
// - Differentiable w.r.t. query/key/value (or both scores and value); the graph is not. The
//   backward ops are not themselves differentiable (no double backward).
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <type_traits>

#include "ops/gat_attention.h"

namespace noisyseg::gat_attention {

void check_graph(const char* op, const at::Tensor& value, const at::Tensor& rowptr, const at::Tensor& col) {
  TORCH_CHECK(value.dim() == 3, op, ": value must be [N, heads, Fv], got ", value.sizes());
  TORCH_CHECK(at::isFloatingType(value.scalar_type()), op, ": value must be a floating tensor, got ",
              value.scalar_type());
  TORCH_CHECK(rowptr.dim() == 1 && rowptr.size(0) == value.size(0) + 1, op, ": rowptr must be [N + 1] = [",
              value.size(0) + 1, "], got ", rowptr.sizes());
  TORCH_CHECK(col.dim() == 1, op, ": col must be [E], got ", col.sizes());
  TORCH_CHECK(rowptr.scalar_type() == at::kLong && col.scalar_type() == at::kLong, op,
              ": rowptr and col must be int64, got ", rowptr.scalar_type(), " and ", col.scalar_type());
  TORCH_CHECK(rowptr.device() == value.device() && col.device() == value.device(), op,
              ": rowptr and col must be on ", value.device(), ", got ", rowptr.device(), " and ", col.device());
}

void check_dot_args(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, const at::Tensor& rowptr,
                    const at::Tensor& col) {
  check_graph("gat_attention", value, rowptr, col);
  TORCH_CHECK(query.dim() == 3, "gat_attention: query must be [N, heads, F], got ", query.sizes());
  TORCH_CHECK(key.sizes() == query.sizes(), "gat_attention: key must have the query's shape ", query.sizes(),
              ", got ", key.sizes());
  TORCH_CHECK(value.size(0) == query.size(0) && value.size(1) == query.size(1),
              "gat_attention: value must be [N, heads, Fv] = [", query.size(0), ", ", query.size(1), ", Fv], got ",
              value.sizes());
  TORCH_CHECK(query.scalar_type() == value.scalar_type() && key.scalar_type() == value.scalar_type(),
              "gat_attention: query, key and value must share a dtype, got ", query.scalar_type(), ", ",
              key.scalar_type(), ", ", value.scalar_type());
  TORCH_CHECK(query.device() == value.device() && key.device() == value.device(),
              "gat_attention: query, key and value must be on one device");
}

void check_additive_args(const at::Tensor& src_score, const at::Tensor& dst_score, const at::Tensor& value,
                         const at::Tensor& rowptr, const at::Tensor& col) {
  check_graph("gat_attention_additive", value, rowptr, col);
  TORCH_CHECK(src_score.dim() == 2 && src_score.size(0) == value.size(0) && src_score.size(1) == value.size(1),
              "gat_attention_additive: src_score must be [N, heads] = [", value.size(0), ", ", value.size(1),
              "], got ", src_score.sizes());
  TORCH_CHECK(dst_score.sizes() == src_score.sizes(), "gat_attention_additive: dst_score must be [N, heads] = ",
              src_score.sizes(), ", got ", dst_score.sizes());
  TORCH_CHECK(src_score.scalar_type() == value.scalar_type() && dst_score.scalar_type() == value.scalar_type(),
              "gat_attention_additive: src_score, dst_score and value must share a dtype, got ",
              src_score.scalar_type(), ", ", dst_score.scalar_type(), ", ", value.scalar_type());
  TORCH_CHECK(src_score.device() == value.device() && dst_score.device() == value.device(),
              "gat_attention_additive: src_score, dst_score and value must be on one device");
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Pair = std::tuple<at::Tensor, at::Tensor>;
using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// Shared by both forms: score_a/score_b are query/key or src_score/dst_score, `param` is the
// scale or the negative slope.
template <bool kAdditive>
class GatAttentionFunction : public torch::autograd::Function<GatAttentionFunction<kAdditive>> {
 public:
  static constexpr const char* kName = kAdditive ? "noisyseg::gat_attention_additive" : "noisyseg::gat_attention";
  static constexpr const char* kBackward =
      kAdditive ? "noisyseg::gat_attention_additive_backward" : "noisyseg::gat_attention_backward";

  static variable_list forward(AutogradContext* ctx, const at::Tensor& score_a, const at::Tensor& score_b,
                               const at::Tensor& value, const at::Tensor& rowptr, const at::Tensor& col,
                               double param) {
    at::AutoDispatchBelowADInplaceOrView guard;
    // The dot form's schema takes `float? scale`, the additive one `float negative_slope`.
    using Param = std::conditional_t<kAdditive, double, std::optional<double>>;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow(kName, "")
                         .typed<Pair(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, Param)>();
    auto [out, lse] = op.call(score_a, score_b, value, rowptr, col, Param(param));
    ctx->save_for_backward({score_a, score_b, value, rowptr, col, lse});
    ctx->saved_data["param"] = param;
    ctx->mark_non_differentiable({lse});
    return {out, lse};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return variable_list(6);
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow(kBackward, "")
                         .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>();
    auto s = ctx->get_saved_variables();
    auto [ga, gb, gv] = op.call(grads[0], s[0], s[1], s[2], s[3], s[4], s[5], ctx->saved_data["param"].toDouble());
    return {ga, gb, gv, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

Pair gat_attention_autograd(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                            const at::Tensor& rowptr, const at::Tensor& col, std::optional<double> scale) {
  const double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(query.size(-1), 1)));
  auto out = GatAttentionFunction<false>::apply(query, key, value, rowptr, col, s);
  return {out[0], out[1]};
}

Pair gat_attention_additive_autograd(const at::Tensor& src_score, const at::Tensor& dst_score, const at::Tensor& value,
                                     const at::Tensor& rowptr, const at::Tensor& col, double negative_slope) {
  auto out = GatAttentionFunction<true>::apply(src_score, dst_score, value, rowptr, col, negative_slope);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace noisyseg::gat_attention

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("gat_attention(Tensor query, Tensor key, Tensor value, Tensor rowptr, Tensor col, float? scale=None) "
        "-> (Tensor out, Tensor lse)");
  m.def("gat_attention_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor rowptr, "
        "Tensor col, Tensor lse, float scale) -> (Tensor grad_query, Tensor grad_key, Tensor grad_value)");
  m.def("gat_attention_additive(Tensor src_score, Tensor dst_score, Tensor value, Tensor rowptr, Tensor col, "
        "float negative_slope=0.2) -> (Tensor out, Tensor lse)");
  m.def("gat_attention_additive_backward(Tensor grad_out, Tensor src_score, Tensor dst_score, Tensor value, "
        "Tensor rowptr, Tensor col, Tensor lse, float negative_slope) "
        "-> (Tensor grad_src_score, Tensor grad_dst_score, Tensor grad_value)");
}

TORCH_LIBRARY_IMPL(noisyseg, Autograd, m) {
  m.impl("gat_attention", &noisyseg::gat_attention::gat_attention_autograd);
  m.impl("gat_attention_additive", &noisyseg::gat_attention::gat_attention_additive_autograd);
}
