// CUDA kernels of superpixel_pool (contract in ops/superpixel_pool.cpp).
//
// The sparse (segment x low-res cell) weights come from each pixel's four bilinear taps as keys
// (b * N + segment) * h * w + cell: a radix sort plus a reduce-by-key merges equal keys, so the
// weights of one segment end up contiguous and in cell order. The forward runs one block per
// (image, segment): it finds its key range by binary search and multiplies it with the
// channels-last features, threads over D. The backward rebuilds the same weights and scatters
// grad_means / count into the low-res cells with atomics (nondeterministic summation order).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/cub.cuh>

#include <climits>

#include "ops/superpixel_pool.h"
#include "ops/superpixel_pool_common.h"

namespace noisyseg::superpixel_pool {
namespace {

constexpr int kThreads = 256;

struct AddOp {
  template <typename T>
  __device__ T operator()(const T& a, const T& b) const { return a + b; }
};

// Four (key, weight) taps per pixel. Ignored pixels (negative ids) and ids >= N get the key
// `sentinel` = B * N * h * w, past every real row, and weight 0; ids >= N also raise `bad`.
template <typename seg_t, typename acc_t>
__global__ void emit_taps(const seg_t* __restrict__ seg, int64_t B, int64_t H, int64_t W, int64_t h, int64_t w,
                          int64_t N, bool align_corners, int64_t sentinel, int64_t* __restrict__ keys,
                          acc_t* __restrict__ weights, int* __restrict__ counts, int* __restrict__ bad) {
  const int64_t total = B * H * W;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < total;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = p % W, y = (p / W) % H, b = p / (H * W);
    const int64_t s = static_cast<int64_t>(seg[p]);
    int64_t* k = keys + 4 * p;
    acc_t* wt = weights + 4 * p;
    if (s < 0 || s >= N) {
      if (s >= N) *bad = 1;
      for (int t = 0; t < 4; ++t) {
        k[t] = sentinel;
        wt[t] = acc_t(0);
      }
      continue;
    }
    atomicAdd(counts + b * N + s, 1);
    const Taps ty = source_taps(y, h, H, align_corners), tx = source_taps(x, w, W, align_corners);
    const int64_t row = (b * N + s) * h * w;
    k[0] = row + ty.i0 * w + tx.i0;
    k[1] = row + ty.i0 * w + tx.i1;
    k[2] = row + ty.i1 * w + tx.i0;
    k[3] = row + ty.i1 * w + tx.i1;
    wt[0] = static_cast<acc_t>(ty.w0 * tx.w0);
    wt[1] = static_cast<acc_t>(ty.w0 * tx.w1);
    wt[2] = static_cast<acc_t>(ty.w1 * tx.w0);
    wt[3] = static_cast<acc_t>(ty.w1 * tx.w1);
  }
}

__device__ int64_t lower_bound(const int64_t* keys, int64_t n, int64_t value) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Sorted unique keys, their summed weights, how many there are (on the device) and int32 counts.
struct SparseRows {
  at::Tensor keys, weights, num_runs, counts;
};

SparseRows build_rows(const at::Tensor& segments, int64_t N, int64_t h, int64_t w, bool align_corners,
                      at::ScalarType acc_type) {
  const int64_t B = segments.size(0), H = segments.size(1), W = segments.size(2);
  const int64_t items = 4 * B * H * W;
  TORCH_CHECK(items < INT_MAX, "superpixel_pool: CUDA kernel needs 4 * B * H * W < 2^31, got ", items);
  TORCH_CHECK(B * N * h * w < (int64_t{1} << 62), "superpixel_pool: B * N * h * w is too large");
  auto stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor seg = segments.contiguous();
  const auto opts = segments.options();
  at::Tensor keys = at::empty({items}, opts.dtype(at::kLong)), sorted_keys = at::empty_like(keys);
  at::Tensor weights = at::empty({items}, opts.dtype(acc_type)), sorted_weights = at::empty_like(weights);
  at::Tensor counts = at::zeros({B, N}, opts.dtype(at::kInt));
  at::Tensor bad = at::zeros({1}, opts.dtype(at::kInt));
  const int64_t sentinel = B * N * h * w;
  int end_bit = 1;
  while (end_bit < 63 && (sentinel >> end_bit) != 0) ++end_bit;

  AT_DISPATCH_INTEGRAL_TYPES(seg.scalar_type(), "superpixel_pool_taps", [&] {
    using seg_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(acc_type, "superpixel_pool_taps", [&] {
      const int64_t blocks = std::min<int64_t>((B * H * W + kThreads - 1) / kThreads, 65535);
      if (B * H * W > 0) {
        emit_taps<seg_t, scalar_t><<<blocks, kThreads, 0, stream>>>(
            seg.data_ptr<seg_t>(), B, H, W, h, w, N, align_corners, sentinel, keys.data_ptr<int64_t>(),
            weights.data_ptr<scalar_t>(), counts.data_ptr<int>(), bad.data_ptr<int>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    });
  });
  TORCH_CHECK(bad.item<int>() == 0, "superpixel_pool: a segment id is >= num_segments (", N, ")");

  at::Tensor unique_keys = at::empty({items}, keys.options());
  at::Tensor unique_weights = at::empty({items}, weights.options());
  at::Tensor num_runs = at::zeros({1}, opts.dtype(at::kLong));
  if (items > 0) {
    AT_DISPATCH_FLOATING_TYPES(acc_type, "superpixel_pool_sort", [&] {
      const int n = static_cast<int>(items);
      size_t sort_bytes = 0, reduce_bytes = 0;
      cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys.data_ptr<int64_t>(), sorted_keys.data_ptr<int64_t>(),
                                      weights.data_ptr<scalar_t>(), sorted_weights.data_ptr<scalar_t>(), n, 0,
                                      end_bit, stream);
      cub::DeviceReduce::ReduceByKey(nullptr, reduce_bytes, sorted_keys.data_ptr<int64_t>(),
                                     unique_keys.data_ptr<int64_t>(), sorted_weights.data_ptr<scalar_t>(),
                                     unique_weights.data_ptr<scalar_t>(), num_runs.data_ptr<int64_t>(), AddOp(), n,
                                     stream);
      at::Tensor temp = at::empty({static_cast<int64_t>(std::max(sort_bytes, reduce_bytes))}, opts.dtype(at::kByte));
      cub::DeviceRadixSort::SortPairs(temp.data_ptr(), sort_bytes, keys.data_ptr<int64_t>(),
                                      sorted_keys.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                                      sorted_weights.data_ptr<scalar_t>(), n, 0, end_bit, stream);
      cub::DeviceReduce::ReduceByKey(temp.data_ptr(), reduce_bytes, sorted_keys.data_ptr<int64_t>(),
                                     unique_keys.data_ptr<int64_t>(), sorted_weights.data_ptr<scalar_t>(),
                                     unique_weights.data_ptr<scalar_t>(), num_runs.data_ptr<int64_t>(), AddOp(), n,
                                     stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return {unique_keys, unique_weights, num_runs, counts};
}

template <typename scalar_t, typename acc_t>
__global__ void pool_rows(const int64_t* __restrict__ keys, const acc_t* __restrict__ weights,
                          const int64_t* __restrict__ num_runs, const int* __restrict__ counts,
                          const acc_t* __restrict__ feat, int64_t N, int64_t D, int64_t hw,
                          scalar_t* __restrict__ means) {
  const int64_t row = blockIdx.x, b = row / N;
  const int64_t n = *num_runs;
  const int64_t lo = lower_bound(keys, n, row * hw), hi = lower_bound(keys, n, (row + 1) * hw);
  const acc_t inv = counts[row] > 0 ? acc_t(1) / static_cast<acc_t>(counts[row]) : acc_t(0);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    acc_t acc = 0;
    for (int64_t e = lo; e < hi; ++e) acc += weights[e] * feat[(b * hw + keys[e] - row * hw) * D + d];
    means[row * D + d] = static_cast<scalar_t>(acc * inv);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void unpool_rows(const int64_t* __restrict__ keys, const acc_t* __restrict__ weights,
                            const int64_t* __restrict__ num_runs, const int* __restrict__ counts,
                            const scalar_t* __restrict__ grad_means, int64_t N, int64_t D, int64_t hw,
                            acc_t* __restrict__ grad) {
  const int64_t row = blockIdx.x, b = row / N;
  if (counts[row] == 0) return;
  const int64_t n = *num_runs;
  const int64_t lo = lower_bound(keys, n, row * hw), hi = lower_bound(keys, n, (row + 1) * hw);
  const acc_t inv = acc_t(1) / static_cast<acc_t>(counts[row]);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const acc_t g = static_cast<acc_t>(grad_means[row * D + d]) * inv;
    for (int64_t e = lo; e < hi; ++e) gpuAtomicAdd(&grad[(b * hw + keys[e] - row * hw) * D + d], weights[e] * g);
  }
}

int threads_for(int64_t D) { return static_cast<int>(std::min<int64_t>(kThreads, std::max<int64_t>(32, (D + 31) / 32 * 32))); }

std::tuple<at::Tensor, at::Tensor> superpixel_pool_cuda(const at::Tensor& features, const at::Tensor& segments,
                                                        int64_t num_segments, bool align_corners) {
  check_args(features, segments, num_segments);
  c10::cuda::CUDAGuard guard(features.device());
  const int64_t B = features.size(0), D = features.size(1), h = features.size(2), w = features.size(3);
  const int64_t N = num_segments;
  const at::ScalarType acc_type = at::toOpMathType(features.scalar_type());
  SparseRows rows = build_rows(segments, N, h, w, align_corners, acc_type);
  at::Tensor means = at::empty({B, N, D}, features.options().memory_format(at::MemoryFormat::Contiguous));
  if (means.numel() > 0) {
    at::Tensor feat = at::empty({B, h, w, D}, features.options().dtype(acc_type));
    feat.copy_(features.permute({0, 2, 3, 1}));
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(), "superpixel_pool_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      pool_rows<scalar_t, acc_t><<<B * N, threads_for(D), 0, c10::cuda::getCurrentCUDAStream()>>>(
          rows.keys.data_ptr<int64_t>(), rows.weights.data_ptr<acc_t>(), rows.num_runs.data_ptr<int64_t>(),
          rows.counts.data_ptr<int>(), feat.data_ptr<acc_t>(), N, D, h * w, means.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return {means, rows.counts.to(at::kLong)};
}

at::Tensor superpixel_pool_backward_cuda(const at::Tensor& grad_means, const at::Tensor& segments,
                                         const at::Tensor& counts, int64_t height, int64_t width, bool align_corners) {
  check_backward_args(grad_means, segments, counts, height, width);
  c10::cuda::CUDAGuard guard(grad_means.device());
  const int64_t B = grad_means.size(0), N = grad_means.size(1), D = grad_means.size(2);
  const at::ScalarType acc_type = at::toOpMathType(grad_means.scalar_type());
  at::Tensor grad = at::zeros({B, height, width, D}, grad_means.options().dtype(acc_type));
  if (grad.numel() > 0 && N > 0) {
    SparseRows rows = build_rows(segments, N, height, width, align_corners, acc_type);
    const at::Tensor g = grad_means.contiguous();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "superpixel_pool_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      unpool_rows<scalar_t, acc_t><<<B * N, threads_for(D), 0, c10::cuda::getCurrentCUDAStream()>>>(
          rows.keys.data_ptr<int64_t>(), rows.weights.data_ptr<acc_t>(), rows.num_runs.data_ptr<int64_t>(),
          rows.counts.data_ptr<int>(), g.data_ptr<scalar_t>(), N, D, height * width, grad.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return grad.to(grad_means.scalar_type()).permute({0, 3, 1, 2});
}

}  // namespace
}  // namespace noisyseg::superpixel_pool

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) {
  m.impl("superpixel_pool", &noisyseg::superpixel_pool::superpixel_pool_cuda);
  m.impl("superpixel_pool_backward", &noisyseg::superpixel_pool::superpixel_pool_backward_cuda);
}
