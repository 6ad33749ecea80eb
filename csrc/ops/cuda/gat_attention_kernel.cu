// CUDA kernels of gat_attention and gat_attention_additive (contract in ops/gat_attention.cpp).
//
// One warp per (node, head), lanes over the feature axis. The forward is an online softmax over
// the row's edges (running max and sum, accumulator rescaled when the max grows), accumulating
// in the output buffer (float32/float64) that only this warp touches. The backward recomputes
// the logits: a first sweep gives sum_j p_ij <g_i, v_j>, a second forms d logit and writes the
// row-side gradient directly and the column-side ones (key or dst_score, value) with atomics, so
// no transpose is built on the GPU (summation order is nondeterministic). The CSR is trusted
// here: validating col would need a host sync (the CPU kernel checks it).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cmath>
#include <limits>

#include "ops/gat_attention.h"
#include "ops/gat_attention_common.h"

namespace noisyseg::gat_attention {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ inline float exp_(float x) { return expf(x); }
__device__ inline double exp_(double x) { return exp(x); }
__device__ inline float log_(float x) { return logf(x); }
__device__ inline double log_(double x) { return log(x); }

template <typename T>
__device__ inline T warp_sum(T x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Logit of edge (i, j) for head h; every lane returns the same value.
template <typename scalar_t, typename acc_t, bool kAdditive>
__device__ inline acc_t edge_logit(const scalar_t* a, const scalar_t* b, int64_t i, int64_t j, int64_t h,
                                   int64_t heads, int64_t F, acc_t param, int lane) {
  if constexpr (kAdditive) {
    return leaky_relu(static_cast<acc_t>(a[i * heads + h]) + static_cast<acc_t>(b[j * heads + h]), param);
  } else {
    const scalar_t* qi = a + (i * heads + h) * F;
    const scalar_t* kj = b + (j * heads + h) * F;
    acc_t s = 0;
    for (int64_t f = lane; f < F; f += 32) s += static_cast<acc_t>(qi[f]) * static_cast<acc_t>(kj[f]);
    return param * warp_sum(s);
  }
}

template <typename scalar_t, typename acc_t, bool kAdditive>
__global__ void attend_forward(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                               const scalar_t* __restrict__ v, const int64_t* __restrict__ rowptr,
                               const int64_t* __restrict__ col, int64_t N, int64_t heads, int64_t F, int64_t Fv,
                               acc_t param, acc_t* __restrict__ out, acc_t* __restrict__ lse) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= N * heads) return;  // uniform across the warp
  const int64_t i = warp / heads, h = warp % heads;
  acc_t* o = out + warp * Fv;
  for (int64_t f = lane; f < Fv; f += 32) o[f] = acc_t(0);
  acc_t m = -std::numeric_limits<acc_t>::infinity(), l = 0;
  for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
    const int64_t j = col[e];
    const acc_t s = edge_logit<scalar_t, acc_t, kAdditive>(a, b, i, j, h, heads, F, param, lane);
    const acc_t m_new = s > m ? s : m;
    const acc_t rescale = exp_(m - m_new), p = exp_(s - m_new);
    l = l * rescale + p;
    const scalar_t* vj = v + (j * heads + h) * Fv;
    for (int64_t f = lane; f < Fv; f += 32) o[f] = o[f] * rescale + p * static_cast<acc_t>(vj[f]);
    m = m_new;
  }
  if (l > acc_t(0)) {
    const acc_t inv = acc_t(1) / l;
    for (int64_t f = lane; f < Fv; f += 32) o[f] *= inv;
  }
  if (lane == 0) lse[warp] = l > acc_t(0) ? m + log_(l) : -std::numeric_limits<acc_t>::infinity();
}

template <typename scalar_t, typename acc_t, bool kAdditive>
__global__ void attend_backward(const scalar_t* __restrict__ g, const scalar_t* __restrict__ a,
                                const scalar_t* __restrict__ b, const scalar_t* __restrict__ v,
                                const int64_t* __restrict__ rowptr, const int64_t* __restrict__ col,
                                const acc_t* __restrict__ lse, int64_t N, int64_t heads, int64_t F, int64_t Fv,
                                acc_t param, acc_t* __restrict__ grad_a, acc_t* __restrict__ grad_b,
                                acc_t* __restrict__ grad_v) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= N * heads) return;
  const int64_t i = warp / heads, h = warp % heads;
  const scalar_t* gi = g + warp * Fv;
  const acc_t lse_i = lse[warp];
  auto grad_dot_value = [&](int64_t j) {  // <g_i, v_j> for this head
    const scalar_t* vj = v + (j * heads + h) * Fv;
    acc_t s = 0;
    for (int64_t f = lane; f < Fv; f += 32) s += static_cast<acc_t>(gi[f]) * static_cast<acc_t>(vj[f]);
    return warp_sum(s);
  };
  acc_t row_dot = 0;  // sum_j p_ij <g_i, v_j> = <g_i, out_i>
  for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
    const int64_t j = col[e];
    const acc_t p = exp_(edge_logit<scalar_t, acc_t, kAdditive>(a, b, i, j, h, heads, F, param, lane) - lse_i);
    row_dot += p * grad_dot_value(j);
  }
  acc_t grad_src = 0;  // additive form: d loss / d s_i
  for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
    const int64_t j = col[e];
    const acc_t p = exp_(edge_logit<scalar_t, acc_t, kAdditive>(a, b, i, j, h, heads, F, param, lane) - lse_i);
    const acc_t dlogit = p * (grad_dot_value(j) - row_dot);
    acc_t* gvj = grad_v + (j * heads + h) * Fv;
    for (int64_t f = lane; f < Fv; f += 32) gpuAtomicAdd(gvj + f, p * static_cast<acc_t>(gi[f]));
    if constexpr (kAdditive) {
      const acc_t z = static_cast<acc_t>(a[i * heads + h]) + static_cast<acc_t>(b[j * heads + h]);
      const acc_t dz = dlogit * leaky_relu_slope(z, param);
      grad_src += dz;
      if (lane == 0) gpuAtomicAdd(grad_b + j * heads + h, dz);
    } else {
      const acc_t draw = dlogit * param;  // d loss / d <q_i, k_j>
      const scalar_t* qi = a + warp * F;
      const scalar_t* kj = b + (j * heads + h) * F;
      acc_t* gqi = grad_a + warp * F;
      acc_t* gkj = grad_b + (j * heads + h) * F;
      for (int64_t f = lane; f < F; f += 32) {
        gqi[f] += draw * static_cast<acc_t>(kj[f]);  // row i, head h belongs to this warp alone
        gpuAtomicAdd(gkj + f, draw * static_cast<acc_t>(qi[f]));
      }
    }
  }
  if constexpr (kAdditive) {
    if (lane == 0) grad_a[warp] = grad_src;
  }
}

int64_t blocks_for(int64_t warps) { return (warps + kWarpsPerBlock - 1) / kWarpsPerBlock; }

std::tuple<at::Tensor, at::Tensor> attend(const at::Tensor& a_in, const at::Tensor& b_in, const at::Tensor& value,
                                          const at::Tensor& rowptr_in, const at::Tensor& col_in, double param,
                                          bool additive) {
  c10::cuda::CUDAGuard guard(value.device());
  const int64_t N = value.size(0), heads = value.size(1), Fv = value.size(2);
  const int64_t F = additive ? 1 : a_in.size(2);
  const auto a = a_in.contiguous(), b = b_in.contiguous(), v = value.contiguous();
  const auto rowptr = rowptr_in.contiguous(), col = col_in.contiguous();
  const at::ScalarType acc_type = at::toOpMathType(v.scalar_type());
  at::Tensor out = at::empty({N, heads, Fv}, v.options().dtype(acc_type));
  at::Tensor lse = at::empty({N, heads}, out.options());
  if (N * heads > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "gat_attention_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      auto launch = [&](auto kernel) {
        kernel<<<blocks_for(N * heads), kWarpsPerBlock * 32, 0, c10::cuda::getCurrentCUDAStream()>>>(
            a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), rowptr.data_ptr<int64_t>(),
            col.data_ptr<int64_t>(), N, heads, F, Fv, static_cast<acc_t>(param), out.data_ptr<acc_t>(),
            lse.data_ptr<acc_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      };
      if (additive) launch(attend_forward<scalar_t, acc_t, true>);
      else launch(attend_forward<scalar_t, acc_t, false>);
    });
  }
  return {out.to(v.scalar_type()), lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attend_bwd(const at::Tensor& grad_out, const at::Tensor& a_in,
                                                          const at::Tensor& b_in, const at::Tensor& value,
                                                          const at::Tensor& rowptr_in, const at::Tensor& col_in,
                                                          const at::Tensor& lse_in, double param, bool additive) {
  c10::cuda::CUDAGuard guard(value.device());
  const int64_t N = value.size(0), heads = value.size(1), Fv = value.size(2);
  TORCH_CHECK(grad_out.sizes() == value.sizes() && lse_in.dim() == 2 && lse_in.size(0) == N &&
                  lse_in.size(1) == heads,
              "gat_attention_backward: grad_out must be ", value.sizes(), " and lse [N, heads], got ",
              grad_out.sizes(), " and ", lse_in.sizes());
  const int64_t F = additive ? 1 : a_in.size(2);
  const auto a = a_in.contiguous(), b = b_in.contiguous(), v = value.contiguous(), g = grad_out.contiguous();
  const auto rowptr = rowptr_in.contiguous(), col = col_in.contiguous();
  const at::ScalarType acc_type = at::toOpMathType(v.scalar_type());
  const auto lse = lse_in.to(acc_type).contiguous();
  at::Tensor grad_a = at::zeros(a.sizes(), v.options().dtype(acc_type));
  at::Tensor grad_b = at::zeros(b.sizes(), grad_a.options());
  at::Tensor grad_v = at::zeros(v.sizes(), grad_a.options());
  if (N * heads > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "gat_attention_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      auto launch = [&](auto kernel) {
        kernel<<<blocks_for(N * heads), kWarpsPerBlock * 32, 0, c10::cuda::getCurrentCUDAStream()>>>(
            g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
            rowptr.data_ptr<int64_t>(), col.data_ptr<int64_t>(), lse.data_ptr<acc_t>(), N, heads, F, Fv,
            static_cast<acc_t>(param), grad_a.data_ptr<acc_t>(), grad_b.data_ptr<acc_t>(), grad_v.data_ptr<acc_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      };
      if (additive) launch(attend_backward<scalar_t, acc_t, true>);
      else launch(attend_backward<scalar_t, acc_t, false>);
    });
  }
  const auto type = v.scalar_type();
  return {grad_a.to(type), grad_b.to(type), grad_v.to(type)};
}

double default_scale(const at::Tensor& query, std::optional<double> scale) {
  return scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(query.size(2), 1)));
}

std::tuple<at::Tensor, at::Tensor> gat_attention_cuda(const at::Tensor& query, const at::Tensor& key,
                                                      const at::Tensor& value, const at::Tensor& rowptr,
                                                      const at::Tensor& col, std::optional<double> scale) {
  check_dot_args(query, key, value, rowptr, col);
  return attend(query, key, value, rowptr, col, default_scale(query, scale), false);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gat_attention_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& lse, double scale) {
  check_dot_args(query, key, value, rowptr, col);
  return attend_bwd(grad_out, query, key, value, rowptr, col, lse, scale, false);
}

std::tuple<at::Tensor, at::Tensor> gat_attention_additive_cuda(const at::Tensor& src_score,
                                                               const at::Tensor& dst_score, const at::Tensor& value,
                                                               const at::Tensor& rowptr, const at::Tensor& col,
                                                               double negative_slope) {
  check_additive_args(src_score, dst_score, value, rowptr, col);
  return attend(src_score, dst_score, value, rowptr, col, negative_slope, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gat_attention_additive_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& src_score, const at::Tensor& dst_score, const at::Tensor& value,
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& lse, double negative_slope) {
  check_additive_args(src_score, dst_score, value, rowptr, col);
  return attend_bwd(grad_out, src_score, dst_score, value, rowptr, col, lse, negative_slope, true);
}

}  // namespace
}  // namespace noisyseg::gat_attention

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) {
  m.impl("gat_attention", &noisyseg::gat_attention::gat_attention_cuda);
  m.impl("gat_attention_backward", &noisyseg::gat_attention::gat_attention_backward_cuda);
  m.impl("gat_attention_additive", &noisyseg::gat_attention::gat_attention_additive_cuda);
  m.impl("gat_attention_additive_backward", &noisyseg::gat_attention::gat_attention_additive_backward_cuda);
}
