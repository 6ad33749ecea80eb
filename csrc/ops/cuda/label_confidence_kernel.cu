// CUDA kernel of label_confidence (contract in csrc/ops/label_confidence.cpp). One thread per
// pixel walks its C values (coalesced across the warp for each class) with the running maximum and
// the label's value in registers.
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "ops/label_confidence.h"

namespace noisyseg::label_confidence {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) pixels_kernel(const scalar_t* __restrict__ x,
                                                           const int64_t* __restrict__ labels, int64_t N, int C,
                                                           int64_t HW, scalar_t* __restrict__ p_label,
                                                           int64_t* __restrict__ best, scalar_t* __restrict__ p_best) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < N;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = p / HW, s = p - b * HW;
    const scalar_t* px = x + b * C * HW + s;
    const int64_t l = labels[p];
    acc_t top = static_cast<acc_t>(px[0]);
    acc_t own = l == 0 ? top : acc_t{0};
    int arg = 0;
    for (int c = 1; c < C; ++c) {
      const acc_t v = static_cast<acc_t>(px[c * HW]);
      if (v > top) {  // strict: ties keep the lower class id
        top = v;
        arg = c;
      }
      if (l == c) own = v;
    }
    p_label[p] = static_cast<scalar_t>(own);  // exact: every value came from scalar_t
    best[p] = arg;
    p_best[p] = static_cast<scalar_t>(top);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> label_confidence_cuda(const at::Tensor& probs_in,
                                                                      const at::Tensor& labels_in) {
  check_args(probs_in, labels_in);
  const c10::cuda::CUDAGuard guard(probs_in.device());
  const at::Tensor probs = probs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const int64_t B = probs.size(0), H = probs.size(2), W = probs.size(3);
  const int C = static_cast<int>(probs.size(1));
  at::Tensor p_label, best, p_best;
  std::tie(p_label, best, p_best) = empty_outputs(probs);
  const int64_t N = B * H * W;
  if (N == 0) return {p_label, best, p_best};
  const int blocks = static_cast<int>(std::min<int64_t>((N + kThreads - 1) / kThreads, 65535L * 8));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, probs.scalar_type(), "label_confidence_cuda", [&] {
    pixels_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        probs.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(), N, C, H * W,
        p_label.mutable_data_ptr<scalar_t>(), best.mutable_data_ptr<int64_t>(), p_best.mutable_data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {p_label, best, p_best};
}

}  // namespace
}  // namespace noisyseg::label_confidence

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) {
  m.impl("label_confidence", &noisyseg::label_confidence::label_confidence_cuda);
}
