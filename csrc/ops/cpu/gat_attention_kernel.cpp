// CPU kernels of gat_attention and gat_attention_additive (contract in ops/gat_attention.cpp).
//
// Forward, per node (parallel over nodes): the row's [deg, heads] logits go into a small
// thread-local buffer, then a max-shifted softmax and the weighted sum of values, so nothing of
// size [E, heads, F] exists. Backward: a row-major pass recomputes the probabilities from the saved
// log-sum-exp, forms d logit = p (dp - sum_j p dp) with dp = <grad_out_i, v_j>, and gathers the
// row-side gradient (query or src_score); a column-major pass over the graph's transpose (a
// counting sort of col) gathers the column-side gradients (key or dst_score, and value). Every
// output row is written by one thread: no atomics.
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ops/gat_attention.h"
#include "ops/gat_attention_common.h"

namespace noisyseg::gat_attention {
namespace {

// The dot form: logit = scale * <q_i, k_j> per head; node gradients are [heads, F] wide.
template <typename scalar_t, typename acc_t>
struct DotScores {
  const scalar_t* q;
  const scalar_t* k;
  int64_t heads, F;
  acc_t scale;

  int64_t width() const { return heads * F; }
  void logits(int64_t i, int64_t j, acc_t* out) const {
    const scalar_t* qi = q + i * heads * F;
    const scalar_t* kj = k + j * heads * F;
    for (int64_t h = 0; h < heads; ++h) {
      acc_t s = 0;
      for (int64_t f = 0; f < F; ++f) s += static_cast<acc_t>(qi[h * F + f]) * static_cast<acc_t>(kj[h * F + f]);
      out[h] = scale * s;
    }
  }
  // d loss / d logit -> d loss / d <q_i, k_j>.
  void to_raw(int64_t, int64_t, acc_t* d) const {
    for (int64_t h = 0; h < heads; ++h) d[h] *= scale;
  }
  void add_row_grad(int64_t j, const acc_t* d, acc_t* grad_i) const { axpy(d, k + j * heads * F, grad_i); }
  void add_col_grad(int64_t i, const acc_t* d, acc_t* grad_j) const { axpy(d, q + i * heads * F, grad_j); }
  void axpy(const acc_t* d, const scalar_t* x, acc_t* y) const {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t f = 0; f < F; ++f) y[h * F + f] += d[h] * static_cast<acc_t>(x[h * F + f]);
  }
};

// The additive form: logit = LeakyReLU(s_i + t_j) per head; node gradients are [heads] wide.
template <typename scalar_t, typename acc_t>
struct AdditiveScores {
  const scalar_t* s;
  const scalar_t* t;
  int64_t heads;
  acc_t slope;

  int64_t width() const { return heads; }
  acc_t preact(int64_t i, int64_t j, int64_t h) const {
    return static_cast<acc_t>(s[i * heads + h]) + static_cast<acc_t>(t[j * heads + h]);
  }
  void logits(int64_t i, int64_t j, acc_t* out) const {
    for (int64_t h = 0; h < heads; ++h) out[h] = leaky_relu(preact(i, j, h), slope);
  }
  void to_raw(int64_t i, int64_t j, acc_t* d) const {
    for (int64_t h = 0; h < heads; ++h) d[h] *= leaky_relu_slope(preact(i, j, h), slope);
  }
  void add_row_grad(int64_t, const acc_t* d, acc_t* grad_i) const {
    for (int64_t h = 0; h < heads; ++h) grad_i[h] += d[h];
  }
  void add_col_grad(int64_t, const acc_t* d, acc_t* grad_j) const {
    for (int64_t h = 0; h < heads; ++h) grad_j[h] += d[h];
  }
};

void validate_csr(const char* op, const at::Tensor& rowptr, const at::Tensor& col, int64_t N) {
  const int64_t* rp = rowptr.data_ptr<int64_t>();
  const int64_t* c = col.data_ptr<int64_t>();
  TORCH_CHECK(rp[0] == 0 && rp[N] == col.size(0), op, ": rowptr must start at 0 and end at E = ", col.size(0),
              ", got ", rp[0], " and ", rp[N]);
  for (int64_t i = 0; i < N; ++i) TORCH_CHECK(rp[i] <= rp[i + 1], op, ": rowptr must be non-decreasing at ", i);
  for (int64_t e = 0; e < col.size(0); ++e)
    TORCH_CHECK(c[e] >= 0 && c[e] < N, op, ": col[", e, "] = ", c[e], " is outside [0, ", N, ")");
}

template <typename scalar_t, typename acc_t, typename Scores>
void forward_rows(const Scores& sc, const scalar_t* v, const int64_t* rowptr, const int64_t* col, int64_t N,
                  int64_t heads, int64_t Fv, scalar_t* out, acc_t* lse) {
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    std::vector<acc_t> prob, acc(heads * Fv), mx(heads), sum(heads);
    for (int64_t i = n0; i < n1; ++i) {
      const int64_t lo = rowptr[i], deg = rowptr[i + 1] - lo;
      scalar_t* out_i = out + i * heads * Fv;
      if (deg == 0) {
        std::fill(out_i, out_i + heads * Fv, scalar_t(0));
        std::fill(lse + i * heads, lse + (i + 1) * heads, -std::numeric_limits<acc_t>::infinity());
        continue;
      }
      prob.resize(deg * heads);
      for (int64_t t = 0; t < deg; ++t) sc.logits(i, col[lo + t], &prob[t * heads]);
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<acc_t>::infinity());
      std::fill(sum.begin(), sum.end(), acc_t(0));
      for (int64_t t = 0; t < deg; ++t)
        for (int64_t h = 0; h < heads; ++h) mx[h] = std::max(mx[h], prob[t * heads + h]);
      for (int64_t t = 0; t < deg; ++t)
        for (int64_t h = 0; h < heads; ++h) sum[h] += (prob[t * heads + h] = std::exp(prob[t * heads + h] - mx[h]));
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t t = 0; t < deg; ++t) {
        const scalar_t* vj = v + col[lo + t] * heads * Fv;
        for (int64_t h = 0; h < heads; ++h) {
          const acc_t p = prob[t * heads + h];
          for (int64_t f = 0; f < Fv; ++f) acc[h * Fv + f] += p * static_cast<acc_t>(vj[h * Fv + f]);
        }
      }
      for (int64_t h = 0; h < heads; ++h) {
        const acc_t inv = acc_t(1) / sum[h];
        for (int64_t f = 0; f < Fv; ++f) out_i[h * Fv + f] = static_cast<scalar_t>(acc[h * Fv + f] * inv);
        lse[i * heads + h] = mx[h] + std::log(sum[h]);
      }
    }
  });
}

template <typename scalar_t, typename acc_t, typename Scores>
void backward_rows_cols(const Scores& sc, const scalar_t* v, const scalar_t* g, const acc_t* lse,
                        const int64_t* rowptr, const int64_t* col, int64_t N, int64_t heads, int64_t Fv,
                        acc_t* grad_row, acc_t* grad_col, acc_t* grad_v) {
  const int64_t E = rowptr[N], width = sc.width();
  std::vector<acc_t> prob(E * heads), dlogit(E * heads);
  std::vector<int64_t> edge_row(E);
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    std::vector<acc_t> dot(heads);
    for (int64_t i = n0; i < n1; ++i) {
      const scalar_t* gi = g + i * heads * Fv;
      std::fill(dot.begin(), dot.end(), acc_t(0));
      for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
        edge_row[e] = i;
        sc.logits(i, col[e], &prob[e * heads]);
        const scalar_t* vj = v + col[e] * heads * Fv;
        for (int64_t h = 0; h < heads; ++h) {
          const acc_t p = std::exp(prob[e * heads + h] - lse[i * heads + h]);
          acc_t dp = 0;
          for (int64_t f = 0; f < Fv; ++f) dp += static_cast<acc_t>(gi[h * Fv + f]) * static_cast<acc_t>(vj[h * Fv + f]);
          prob[e * heads + h] = p;
          dlogit[e * heads + h] = dp;
          dot[h] += p * dp;  // = <grad_out_i, out_i>, computed exactly from this row's terms
        }
      }
      for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
        for (int64_t h = 0; h < heads; ++h) dlogit[e * heads + h] = prob[e * heads + h] * (dlogit[e * heads + h] - dot[h]);
        sc.to_raw(i, col[e], &dlogit[e * heads]);
        sc.add_row_grad(col[e], &dlogit[e * heads], grad_row + i * width);
      }
    }
  });
  // The transpose: edge ids grouped by target node (counting sort, stable in edge order).
  std::vector<int64_t> colptr(N + 1, 0), by_col(E);
  for (int64_t e = 0; e < E; ++e) ++colptr[col[e] + 1];
  for (int64_t j = 0; j < N; ++j) colptr[j + 1] += colptr[j];
  {
    std::vector<int64_t> next(colptr.begin(), colptr.end() - 1);
    for (int64_t e = 0; e < E; ++e) by_col[next[col[e]]++] = e;
  }
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t j = n0; j < n1; ++j) {
      acc_t* gvj = grad_v + j * heads * Fv;
      for (int64_t slot = colptr[j]; slot < colptr[j + 1]; ++slot) {
        const int64_t e = by_col[slot], i = edge_row[e];
        sc.add_col_grad(i, &dlogit[e * heads], grad_col + j * width);
        const scalar_t* gi = g + i * heads * Fv;
        for (int64_t h = 0; h < heads; ++h) {
          const acc_t p = prob[e * heads + h];
          for (int64_t f = 0; f < Fv; ++f) gvj[h * Fv + f] += p * static_cast<acc_t>(gi[h * Fv + f]);
        }
      }
    }
  });
}

// Runs `body(scalar_t tag, acc_t tag)` for value's dtype.
template <typename Body>
void dispatch_float(at::ScalarType type, Body body) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, "gat_attention_cpu", [&] {
    body(scalar_t(0), at::opmath_type<scalar_t>(0));
  });
}

std::tuple<at::Tensor, at::Tensor> attend(const at::Tensor& a, const at::Tensor& b, const at::Tensor& value,
                                          const at::Tensor& rowptr, const at::Tensor& col, double param,
                                          bool additive) {
  const int64_t N = value.size(0), heads = value.size(1), Fv = value.size(2);
  const auto qa = a.contiguous(), kb = b.contiguous(), v = value.contiguous();
  const auto rp = rowptr.contiguous(), c = col.contiguous();
  validate_csr(additive ? "gat_attention_additive" : "gat_attention", rp, c, N);
  at::Tensor out = at::empty({N, heads, Fv}, v.options());
  at::Tensor lse = at::empty({N, heads}, v.options().dtype(at::toOpMathType(v.scalar_type())));
  dispatch_float(v.scalar_type(), [&](auto s_tag, auto a_tag) {
    using scalar_t = decltype(s_tag);
    using acc_t = decltype(a_tag);
    auto run = [&](const auto& scores) {
      forward_rows<scalar_t, acc_t>(scores, v.data_ptr<scalar_t>(), rp.data_ptr<int64_t>(), c.data_ptr<int64_t>(),
                                    N, heads, Fv, out.data_ptr<scalar_t>(), lse.data_ptr<acc_t>());
    };
    if (additive) {
      run(AdditiveScores<scalar_t, acc_t>{qa.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>(), heads,
                                           static_cast<acc_t>(param)});
    } else {
      run(DotScores<scalar_t, acc_t>{qa.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>(), heads, qa.size(2),
                                      static_cast<acc_t>(param)});
    }
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attend_backward(const at::Tensor& grad_out, const at::Tensor& a,
                                                               const at::Tensor& b, const at::Tensor& value,
                                                               const at::Tensor& rowptr, const at::Tensor& col,
                                                               const at::Tensor& lse, double param, bool additive) {
  const int64_t N = value.size(0), heads = value.size(1), Fv = value.size(2);
  TORCH_CHECK(grad_out.sizes() == value.sizes() && lse.dim() == 2 && lse.size(0) == N && lse.size(1) == heads,
              additive ? "gat_attention_additive" : "gat_attention", "_backward: grad_out must be ", value.sizes(),
              " and lse [N, heads], got ", grad_out.sizes(), " and ", lse.sizes());
  const auto qa = a.contiguous(), kb = b.contiguous(), v = value.contiguous(), g = grad_out.contiguous();
  const auto rp = rowptr.contiguous(), c = col.contiguous();
  const at::ScalarType acc_type = at::toOpMathType(v.scalar_type());
  const auto l = lse.to(acc_type).contiguous();
  at::Tensor grad_a = at::zeros(qa.sizes(), v.options().dtype(acc_type));
  at::Tensor grad_b = at::zeros(kb.sizes(), grad_a.options());
  at::Tensor grad_v = at::zeros(v.sizes(), grad_a.options());
  dispatch_float(v.scalar_type(), [&](auto s_tag, auto a_tag) {
    using scalar_t = decltype(s_tag);
    using acc_t = decltype(a_tag);
    auto run = [&](const auto& scores) {
      backward_rows_cols<scalar_t, acc_t>(scores, v.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                          l.data_ptr<acc_t>(), rp.data_ptr<int64_t>(), c.data_ptr<int64_t>(), N,
                                          heads, Fv, grad_a.data_ptr<acc_t>(), grad_b.data_ptr<acc_t>(),
                                          grad_v.data_ptr<acc_t>());
    };
    if (additive) {
      run(AdditiveScores<scalar_t, acc_t>{qa.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>(), heads,
                                           static_cast<acc_t>(param)});
    } else {
      run(DotScores<scalar_t, acc_t>{qa.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>(), heads, qa.size(2),
                                      static_cast<acc_t>(param)});
    }
  });
  const auto type = v.scalar_type();
  return {grad_a.to(type), grad_b.to(type), grad_v.to(type)};
}

double default_scale(const at::Tensor& query, std::optional<double> scale) {
  return scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(query.size(2), 1)));
}

std::tuple<at::Tensor, at::Tensor> gat_attention_cpu(const at::Tensor& query, const at::Tensor& key,
                                                     const at::Tensor& value, const at::Tensor& rowptr,
                                                     const at::Tensor& col, std::optional<double> scale) {
  check_dot_args(query, key, value, rowptr, col);
  return attend(query, key, value, rowptr, col, default_scale(query, scale), false);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gat_attention_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& lse, double scale) {
  check_dot_args(query, key, value, rowptr, col);
  return attend_backward(grad_out, query, key, value, rowptr, col, lse, scale, false);
}

std::tuple<at::Tensor, at::Tensor> gat_attention_additive_cpu(const at::Tensor& src_score,
                                                              const at::Tensor& dst_score, const at::Tensor& value,
                                                              const at::Tensor& rowptr, const at::Tensor& col,
                                                              double negative_slope) {
  check_additive_args(src_score, dst_score, value, rowptr, col);
  return attend(src_score, dst_score, value, rowptr, col, negative_slope, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gat_attention_additive_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& src_score, const at::Tensor& dst_score, const at::Tensor& value,
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& lse, double negative_slope) {
  check_additive_args(src_score, dst_score, value, rowptr, col);
  return attend_backward(grad_out, src_score, dst_score, value, rowptr, col, lse, negative_slope, true);
}

}  // namespace
}  // namespace noisyseg::gat_attention

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) {
  m.impl("gat_attention", &noisyseg::gat_attention::gat_attention_cpu);
  m.impl("gat_attention_backward", &noisyseg::gat_attention::gat_attention_backward_cpu);
  m.impl("gat_attention_additive", &noisyseg::gat_attention::gat_attention_additive_cpu);
  m.impl("gat_attention_additive_backward", &noisyseg::gat_attention::gat_attention_additive_backward_cpu);
}
