// CPU kernel of label_confidence (contract in csrc/ops/label_confidence.cpp).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <bit>
#include <type_traits>

#include "ops/label_confidence.h"

namespace noisyseg::label_confidence {
namespace {

// Pixels per tile: the loops over a tile's pixels are contiguous in memory for every class, so
// they auto-vectorise (one SIMD lane per pixel) while the running maxima stay in L1.
constexpr int64_t kTile = 256;

// x86-64: also an AVX2 build of the hot loop, picked at load time on CPUs that have it (twice the
// SIMD width of the SSE2 baseline).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NOISYSEG_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NOISYSEG_SIMD_CLONES
#endif

// One tile of n <= kTile pixels: class 0 seeds the running maximum, then every other class plane
// is one contiguous, branch-free pass over the tile (in float32, or float64 for double input).
template <typename scalar_t>
NOISYSEG_SIMD_CLONES void tile(const scalar_t* __restrict__ x, const int64_t HW, const int64_t* __restrict__ labels,
                               const int C, const int n, scalar_t* __restrict__ own_out,
                               scalar_t* __restrict__ top_out, int32_t* __restrict__ arg_out) {
  using acc_t = at::opmath_type<scalar_t>;
  using bits_t = std::conditional_t<sizeof(acc_t) == 8, int64_t, int32_t>;
  acc_t own[kTile], top[kTile];
  bits_t lab[kTile], arg[kTile];
  for (int t = 0; t < n; ++t) {
    const int64_t l = labels[t];
    lab[t] = (l >= 0 && l < C) ? static_cast<bits_t>(l) : bits_t{-1};
  }
  for (int t = 0; t < n; ++t) {
    const acc_t v = static_cast<acc_t>(x[t]);
    top[t] = v;
    arg[t] = 0;
    own[t] = lab[t] == 0 ? v : acc_t{0};
  }
  for (int c = 1; c < C; ++c) {
    const scalar_t* __restrict__ xc = x + c * HW;
    for (int t = 0; t < n; ++t) {
      // Selects as bit masks: written as ternaries, GCC turns them into conditional stores and
      // gives up vectorising the loop.
      const acc_t v = static_cast<acc_t>(xc[t]);
      const bits_t vb = std::bit_cast<bits_t>(v);
      const bits_t better = -static_cast<bits_t>(v > top[t]);  // strict: ties keep the lower class id
      const bits_t mine = -static_cast<bits_t>(lab[t] == c);
      top[t] = std::bit_cast<acc_t>((vb & better) | (std::bit_cast<bits_t>(top[t]) & ~better));
      arg[t] = (c & better) | (arg[t] & ~better);
      own[t] = std::bit_cast<acc_t>((vb & mine) | (std::bit_cast<bits_t>(own[t]) & ~mine));
    }
  }
  for (int t = 0; t < n; ++t) {  // exact: every value came from scalar_t
    top_out[t] = static_cast<scalar_t>(top[t]);
    own_out[t] = static_cast<scalar_t>(own[t]);
    arg_out[t] = static_cast<int32_t>(arg[t]);
  }
}

// Order key of float16 bits: signed-int16 comparison of keys orders like the values (NaN above
// +inf), -0 maps to +0's key. It is an involution on every other value: key(key(b)) == b.
inline int16_t half_key(int16_t b) {
  const int16_t k = static_cast<int16_t>(b ^ ((b >> 15) & 0x7fff));
  return b == static_cast<int16_t>(0x8000) ? int16_t{0} : k;
}

// The float16 tile: the maximum runs on 16-bit order keys (twice the lanes of float32, no
// conversion to float at all).
NOISYSEG_SIMD_CLONES void tile_half(const int16_t* __restrict__ x, const int64_t HW,
                                    const int64_t* __restrict__ labels, const int C, const int n,
                                    int16_t* __restrict__ own_out, int16_t* __restrict__ top_out,
                                    int32_t* __restrict__ arg_out) {
  int16_t lab[kTile], top[kTile], arg[kTile], own[kTile];
  for (int t = 0; t < n; ++t) {
    const int64_t l = labels[t];
    lab[t] = (l >= 0 && l < C) ? static_cast<int16_t>(l) : int16_t{-1};
  }
  for (int t = 0; t < n; ++t) {
    top[t] = half_key(x[t]);
    arg[t] = 0;
    own[t] = lab[t] == 0 ? x[t] : int16_t{0};
  }
  for (int c = 1; c < C; ++c) {
    const int16_t* __restrict__ xc = x + c * HW;
    for (int t = 0; t < n; ++t) {
      const int16_t b = xc[t];
      const int16_t k = half_key(b);
      const int16_t better = static_cast<int16_t>(-static_cast<int16_t>(k > top[t]));  // strict: ties keep the lower id
      const int16_t mine = static_cast<int16_t>(-static_cast<int16_t>(lab[t] == c));
      top[t] = static_cast<int16_t>((k & better) | (top[t] & ~better));
      arg[t] = static_cast<int16_t>((c & better) | (arg[t] & ~better));
      own[t] = static_cast<int16_t>((b & mine) | (own[t] & ~mine));
    }
  }
  for (int t = 0; t < n; ++t) {
    top_out[t] = half_key(top[t]);
    own_out[t] = own[t];
    arg_out[t] = arg[t];
  }
}

template <typename scalar_t>
void pixels(const scalar_t* x, const int64_t* labels, int64_t B, int C, int64_t HW, scalar_t* p_label,
            int64_t* best, scalar_t* p_best) {
  const int64_t tiles = (HW + kTile - 1) / kTile;
  at::parallel_for(0, B * tiles, 16, [&](int64_t begin, int64_t end) {
    int32_t arg[kTile];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t b = job / tiles, s0 = (job - b * tiles) * kTile;
      const int n = static_cast<int>(std::min(kTile, HW - s0));
      const int64_t o = b * HW + s0;
      if constexpr (std::is_same_v<scalar_t, c10::Half>) {
        tile_half(reinterpret_cast<const int16_t*>(x) + b * C * HW + s0, HW, labels + o, C, n,
                  reinterpret_cast<int16_t*>(p_label) + o, reinterpret_cast<int16_t*>(p_best) + o, arg);
      } else {
        tile(x + b * C * HW + s0, HW, labels + o, C, n, p_label + o, p_best + o, arg);
      }
      std::copy(arg, arg + n, best + o);
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> label_confidence_cpu(const at::Tensor& probs_in,
                                                                     const at::Tensor& labels_in) {
  check_args(probs_in, labels_in);
  const at::Tensor probs = probs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const int64_t B = probs.size(0), H = probs.size(2), W = probs.size(3);
  const int C = static_cast<int>(probs.size(1));
  at::Tensor p_label, best, p_best;
  std::tie(p_label, best, p_best) = empty_outputs(probs);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, probs.scalar_type(), "label_confidence_cpu", [&] {
    pixels(probs.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(), B, C, H * W,
           p_label.mutable_data_ptr<scalar_t>(), best.mutable_data_ptr<int64_t>(), p_best.mutable_data_ptr<scalar_t>());
  });
  return {p_label, best, p_best};
}

}  // namespace
}  // namespace noisyseg::label_confidence

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) { m.impl("label_confidence", &noisyseg::label_confidence::label_confidence_cpu); }
