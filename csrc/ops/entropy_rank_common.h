// Per-pixel math and radix-select steps shared by the CPU and CUDA kernels of entropy_rank, so
// that the CPU tests also validate the logic the CUDA kernel runs.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// Loops below run to a compile-time bound MAXC when MAXC > 0, so nvcc unrolls them and keeps the
// per-pixel values in registers; MAXC == 0 means "up to C" (the CPU path and large C on CUDA).
#if defined(__CUDACC__)
#define NOISYSEG_UNROLL _Pragma("unroll")
#else
#define NOISYSEG_UNROLL
#endif

namespace noisyseg::entropy_rank {

// Radix select over the float32 bit patterns of the entropies, most significant digit first.
// Entropies are clamped to >= +0, so their bit patterns order exactly like the floats (NaN, from
// NaN inputs, sorts above +inf, as torch.sort does). Three digits keep the CUDA histograms in
// shared memory (2 x 2048 bins); the CPU kernel uses the same digits.
constexpr int kPasses = 3;
C10_HOST_DEVICE constexpr int digit_shift(int pass) { return pass == 0 ? 21 : pass == 1 ? 10 : 0; }
C10_HOST_DEVICE constexpr int digit_bits(int pass) { return pass == 2 ? 10 : 11; }
constexpr int kMaxBins = 2048;

// Selection state for the two order statistics numpy's linear interpolation needs (k and k+1).
// Lives in a small int64 tensor so the CUDA path never syncs with the host.
struct SelectState {
  int64_t n;           // number of valid pixels
  int64_t k[2];        // rank still to find inside the current prefix
  int64_t prefix[2];   // bits fixed so far (as an int64 holding a uint32)
  int64_t frac_bits;   // the interpolation weight (a double) stored bit for bit
};
static_assert(sizeof(SelectState) == 6 * sizeof(int64_t), "SelectState is read as 6 int64s");

C10_HOST_DEVICE inline uint32_t float_key(float v) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
#endif
}

C10_HOST_DEVICE inline int64_t double_bits(double v) {
#ifdef __CUDA_ARCH__
  return __double_as_longlong(v);
#else
  int64_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
#endif
}

C10_HOST_DEVICE inline double bits_double(int64_t u) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double(u);
#else
  double v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
#endif
}

C10_HOST_DEVICE inline float key_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
#endif
}

// True when `key` agrees with the prefix fixed by the passes before `pass`.
C10_HOST_DEVICE inline bool in_prefix(uint32_t key, int64_t prefix, int pass) {
  const int high = digit_shift(pass) + digit_bits(pass);
  return high >= 32 || (key >> high) == (static_cast<uint32_t>(prefix) >> high);
}

C10_HOST_DEVICE inline int digit_of(uint32_t key, int pass) {
  return static_cast<int>((key >> digit_shift(pass)) & ((1u << digit_bits(pass)) - 1u));
}

// Picks the digit holding the k-th smallest (0-based) among `hist` and narrows k to that bin.
C10_HOST_DEVICE inline void select_digit(const int64_t* hist, int pass, int64_t& k, int64_t& prefix) {
  const int bins = 1 << digit_bits(pass);
  int64_t below = 0;
  int d = 0;
  for (; d < bins - 1; ++d) {
    if (below + hist[d] > k) break;
    below += hist[d];
  }
  k -= below;
  prefix = static_cast<int64_t>(static_cast<uint32_t>(prefix) | (static_cast<uint32_t>(d) << digit_shift(pass)));
}

// numpy's default ("linear") quantile: position q * (n - 1) between order statistics lo and lo+1.
C10_HOST_DEVICE inline void start_select(SelectState& s, int64_t n, double q) {
  s.n = n;
  const double pos = n > 0 ? q * static_cast<double>(n - 1) : 0.0;
  int64_t lo = static_cast<int64_t>(std::floor(pos));
  if (lo > n - 1) lo = n > 0 ? n - 1 : 0;
  const int64_t hi = lo + 1 < n ? lo + 1 : lo;
  const double frac = pos - static_cast<double>(lo);
  s.k[0] = lo;
  s.k[1] = hi;
  s.prefix[0] = s.prefix[1] = 0;
  s.frac_bits = double_bits(frac);
}

C10_HOST_DEVICE inline float finish_select(const SelectState& s) {
  if (s.n == 0) return std::numeric_limits<float>::quiet_NaN();
  const double frac = bits_double(s.frac_bits);
  const double lo = key_float(static_cast<uint32_t>(s.prefix[0]));
  const double hi = key_float(static_cast<uint32_t>(s.prefix[1]));
  return static_cast<float>(frac == 0.0 ? lo : lo + (hi - lo) * frac);
}

template <typename acc_t>
C10_HOST_DEVICE inline acc_t rank_value(acc_t v) {
  return v != v ? std::numeric_limits<acc_t>::infinity() : v;
}

// Entropy (natural log) of one pixel from its C values `v` (accumulation type). For logits it is
// log(s) - sum_c e_c (x_c - m) / s with e_c = exp(x_c - m), s = sum e_c: stable, one exp per class.
// Classes with e_c == 0 or p_c == 0 contribute 0 (0 log 0 = 0).
template <int MAXC, typename acc_t>
C10_HOST_DEVICE C10_ALWAYS_INLINE float pixel_entropy(const acc_t* v, int C, bool is_logits) {
  constexpr int kBound = MAXC > 0 ? MAXC : 256;
  acc_t ent = 0;
  if (is_logits) {
    acc_t m = v[0];
    NOISYSEG_UNROLL
    for (int c = 1; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      m = v[c] > m ? v[c] : m;
    }
    if (std::isinf(m) && m > 0) return std::numeric_limits<float>::quiet_NaN();  // as torch's softmax
    acc_t s = 0, t = 0;
    NOISYSEG_UNROLL
    for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      const acc_t e = std::exp(v[c] - m);
      s += e;
      if (e > 0) t += e * (v[c] - m);
    }
    ent = std::log(s) - t / s;
  } else {
    NOISYSEG_UNROLL
    for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) {
      if (c >= C) break;
      if (v[c] > 0) ent -= v[c] * std::log(v[c]);
      else if (v[c] != v[c]) ent = v[c];  // NaN stays NaN
    }
  }
  float e = static_cast<float>(ent);
  if (e <= 0.f) e = 0.f;  // rounding can dip below 0; also maps -0 to +0 for the radix order
  return e;
}

// rank[c] = #{k : v_k > v_c or (v_k == v_c and k < c)}: each pair compared once. Callers map NaN
// to +inf first (rank_value), so the relation is a total order.
template <int MAXC, typename acc_t>
C10_HOST_DEVICE C10_ALWAYS_INLINE void pairwise_ranks(const acc_t* v, int C, int* rank) {
  constexpr int kBound = MAXC > 0 ? MAXC : 256;
  NOISYSEG_UNROLL
  for (int c = 0; c < (MAXC > 0 ? kBound : C); ++c) rank[c] = 0;
  NOISYSEG_UNROLL
  for (int c = 1; c < (MAXC > 0 ? kBound : C); ++c) {
    if (c >= C) break;
    NOISYSEG_UNROLL
    for (int k = 0; k < c; ++k) {
      if (v[k] >= v[c]) ++rank[c];
      else ++rank[k];
    }
  }
}

}  // namespace noisyseg::entropy_rank
