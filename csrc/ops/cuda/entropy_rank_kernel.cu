// CUDA kernel of entropy_rank (contract in csrc/ops/entropy_rank.cpp). One thread per pixel reads
// the pixel's C values once (coalesced across the warp per class), computes entropy and ranks in
// registers; the quantile is a radix select over the entropies' float bits (three histogram
// passes plus a one-block digit pick each), entirely on the device: no host sync.
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/cub.cuh>

#include <type_traits>

#include "ops/entropy_rank.h"
#include "ops/entropy_rank_common.h"

namespace noisyseg::entropy_rank {
namespace {

constexpr int kThreads = 256;
constexpr int kScanThreads = 1024;  // the digit pick: 2048 bins, two per thread
static_assert(kMaxBins == 2 * kScanThreads, "select_kernel assumes two bins per thread");

template <int MAXC, typename scalar_t>
__global__ void __launch_bounds__(kThreads) pixels_kernel(const scalar_t* __restrict__ x, bool is_logits, int64_t N,
                                                           int C, int64_t HW, float* __restrict__ entropy,
                                                           uint8_t* __restrict__ rank) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int kBound = MAXC > 0 ? MAXC : 256;
  acc_t v[kBound];
  int r[kBound];
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < N;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = p / HW, s = p - b * HW;
    const scalar_t* px = x + b * C * HW + s;
    NOISYSEG_UNROLL
    for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      v[c] = static_cast<acc_t>(px[c * HW]);
    }
    entropy[p] = pixel_entropy<MAXC>(v, C, is_logits);
    NOISYSEG_UNROLL
    for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      v[c] = rank_value(v[c]);
    }
    pairwise_ranks<MAXC>(v, C, r);
    uint8_t* pr = rank + b * C * HW + s;
    NOISYSEG_UNROLL
    for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      pr[c * HW] = static_cast<uint8_t>(r[c]);
    }
  }
}

// Adds 1 to h[d] for every lane with d >= 0, one shared atomic per distinct digit in the warp
// (entropies crowd into a few bins, so plain atomics would serialise).
__device__ __forceinline__ void add_to_bin(unsigned int* h, int d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  const unsigned int peers = __match_any_sync(0xffffffffu, d);
  if (d >= 0 && (threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&h[d], static_cast<unsigned int>(__popc(peers)));
#else
  if (d >= 0) atomicAdd(&h[d], 1u);
#endif
}

// Histogram of digit `pass` over valid entropies matching each target's prefix (pass 0: one
// histogram serves both targets).
__global__ void __launch_bounds__(kThreads) histogram_kernel(const float* __restrict__ entropy,
                                                              const bool* __restrict__ valid, int64_t N,
                                                              const int64_t* state_raw, int pass,
                                                              unsigned long long* hist) {
  __shared__ unsigned int shared[2 * kMaxBins];
  for (int i = threadIdx.x; i < 2 * kMaxBins; i += blockDim.x) shared[i] = 0;
  __syncthreads();
  const auto* state = reinterpret_cast<const SelectState*>(state_raw);
  const int64_t p0 = pass > 0 ? state->prefix[0] : 0, p1 = pass > 0 ? state->prefix[1] : 0;
  // The loop bound is uniform per block, so every lane reaches the warp-wide match in add_to_bin.
  for (int64_t base = blockIdx.x * static_cast<int64_t>(blockDim.x); base < N;
       base += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = base + threadIdx.x;
    int d0 = -1, d1 = -1;
    if (i < N && (valid == nullptr || valid[i])) {
      const uint32_t key = float_key(entropy[i]);
      const int d = digit_of(key, pass);
      if (in_prefix(key, p0, pass)) d0 = d;
      if (pass > 0 && in_prefix(key, p1, pass)) d1 = d;
    }
    add_to_bin(shared, d0);
    add_to_bin(shared + kMaxBins, d1);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 2 * kMaxBins; i += blockDim.x) {
    if (shared[i] != 0) atomicAdd(&hist[i], static_cast<unsigned long long>(shared[i]));
  }
}

// One block: picks each target's digit (the CPU's select_digit, as a block-wide prefix sum); on
// pass 0 it first counts the valid pixels and places the two order statistics; on the last pass it
// writes the interpolated threshold.
__global__ void __launch_bounds__(kScanThreads) select_kernel(const unsigned long long* hist, int64_t* state_raw,
                                                               int pass, double q, float* threshold) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ SelectState s;
  if (threadIdx.x == 0) s = *reinterpret_cast<const SelectState*>(state_raw);
  __syncthreads();
  const int bins = 1 << digit_bits(pass);
  for (int t = 0; t < 2; ++t) {
    const unsigned long long* h = hist + (pass == 0 ? 0 : t * kMaxBins);
    int64_t mine[2], sum = 0;
    for (int j = 0; j < 2; ++j) {
      const int d = 2 * threadIdx.x + j;
      mine[j] = d < bins ? static_cast<int64_t>(h[d]) : 0;
      sum += mine[j];
    }
    int64_t below, total;
    Scan(scan_storage).ExclusiveSum(sum, below, total);
    if (pass == 0 && t == 0 && threadIdx.x == 0) start_select(s, total, q);
    __syncthreads();
    const int64_t k = s.k[t];
    int found = -1;
    int64_t rest = 0;
    for (int j = 0; j < 2; ++j) {
      if (s.n > 0 && below <= k && k < below + mine[j]) {
        found = 2 * threadIdx.x + j;
        rest = k - below;
      }
      below += mine[j];
    }
    __syncthreads();  // everyone has read s.k[t] before the finder overwrites it
    if (found >= 0) {
      s.k[t] = rest;
      s.prefix[t] = static_cast<int64_t>(static_cast<uint32_t>(s.prefix[t]) |
                                         (static_cast<uint32_t>(found) << digit_shift(pass)));
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *reinterpret_cast<SelectState*>(state_raw) = s;
    if (pass == kPasses - 1) *threshold = finish_select(s);
  }
}

int grid_for(int64_t work, int threads) {
  int device = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, static_cast<int64_t>(sms) * 16)));
}

template <typename scalar_t>
void launch_pixels(const at::Tensor& x, bool is_logits, at::Tensor& entropy, at::Tensor& rank, cudaStream_t stream) {
  const int64_t N = entropy.numel(), HW = x.size(2) * x.size(3);
  const int C = static_cast<int>(x.size(1));
  const int grid = grid_for(N, kThreads);
  const scalar_t* px = x.const_data_ptr<scalar_t>();
  float* pe = entropy.mutable_data_ptr<float>();
  uint8_t* pr = rank.mutable_data_ptr<uint8_t>();
#define NOISYSEG_PIXELS(MAXC) pixels_kernel<MAXC, scalar_t><<<grid, kThreads, 0, stream>>>(px, is_logits, N, C, HW, pe, pr)
  // Register-resident buckets for the common class counts (VOC 21, Cityscapes 19, binary); each
  // one is a fully unrolled kernel, so keep the list short (compile time). float64 and other C use
  // the generic loop over local memory.
  if (std::is_same_v<scalar_t, double> || C > 24) NOISYSEG_PIXELS(0);
  else if (C <= 8) NOISYSEG_PIXELS(8);
  else NOISYSEG_PIXELS(24);
#undef NOISYSEG_PIXELS
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> entropy_rank_cuda(const at::Tensor& x_in, bool is_logits,
                                                                  const std::optional<at::Tensor>& valid_in,
                                                                  std::optional<double> quantile) {
  check_args(x_in, valid_in, quantile);
  const c10::cuda::CUDAGuard guard(x_in.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor entropy = at::empty({B, H, W}, x.options().dtype(at::kFloat));
  at::Tensor rank = at::empty({B, C, H, W}, x.options().dtype(at::kByte));
  if (entropy.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "entropy_rank_cuda",
                                    [&] { launch_pixels<scalar_t>(x, is_logits, entropy, rank, stream); });
  }
  if (!quantile.has_value()) return {entropy, at::empty({0}, x.options().dtype(at::kFloat)), rank};

  at::Tensor valid;
  if (valid_in.has_value()) valid = valid_in->contiguous();
  at::Tensor threshold = at::empty({}, x.options().dtype(at::kFloat));
  at::Tensor state = at::empty({static_cast<int64_t>(sizeof(SelectState) / sizeof(int64_t))}, x.options().dtype(at::kLong));
  at::Tensor hist = at::zeros({kPasses, 2 * kMaxBins}, x.options().dtype(at::kLong));
  const int64_t N = entropy.numel();
  const int grid = grid_for(N, kThreads);
  for (int pass = 0; pass < kPasses; ++pass) {
    auto* h = reinterpret_cast<unsigned long long*>(hist[pass].data_ptr<int64_t>());
    if (N > 0) {
      histogram_kernel<<<grid, kThreads, 0, stream>>>(entropy.const_data_ptr<float>(),
                                                      valid.defined() ? valid.const_data_ptr<bool>() : nullptr, N,
                                                      state.const_data_ptr<int64_t>(), pass, h);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    select_kernel<<<1, kScanThreads, 0, stream>>>(h, state.mutable_data_ptr<int64_t>(), pass, *quantile,
                                                  threshold.mutable_data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {entropy, threshold, rank};
}

}  // namespace
}  // namespace noisyseg::entropy_rank

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) { m.impl("entropy_rank", &noisyseg::entropy_rank::entropy_rank_cuda); }
