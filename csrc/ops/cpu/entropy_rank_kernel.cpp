// CPU kernel of entropy_rank (contract in csrc/ops/entropy_rank.cpp).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "ops/cpu/fast_math.h"

#include "ops/entropy_rank.h"
#include "ops/entropy_rank_common.h"

namespace noisyseg::entropy_rank {
namespace {

// Pixels per tile: each tile's C x kTile values are loaded once, class-major, so the loops over
// the tile's pixels below are contiguous and auto-vectorise (one SIMD lane per pixel).
constexpr int kTile = 64;

// Ranks of one tile by pairwise comparison: for every pair k < c, in all pixels at once,
// rank[c] += (v_k >= v_c) and rank[k] += (v_k < v_c). Branch-free and O(C^2) per pixel, which
// beats sorting for the C <= 255 the op allows.
template <typename acc_t>
void tile_ranks(const acc_t* v, const int C, const int n, int32_t* rank) {
  std::fill(rank, rank + static_cast<int64_t>(C) * kTile, 0);
  for (int c = 1; c < C; ++c) {
    const acc_t* vc = v + c * kTile;
    int32_t* rc = rank + c * kTile;
    for (int k = 0; k < c; ++k) {
      const acc_t* vk = v + k * kTile;
      int32_t* rk = rank + k * kTile;
      for (int t = 0; t < n; ++t) {
        const int32_t ge = vk[t] >= vc[t];
        rc[t] += ge;
        rk[t] += 1 - ge;
      }
    }
  }
}

// Entropies of a tile of float32 values whose entries are all finite, with the vectorisable
// log/exp; same formulas as pixel_entropy (probabilities <= 1e-30 contribute 0 instead of ~1e-28).
void tile_entropy(const float* v, const int C, const int n, const bool is_logits, float* out) {
  using fast_math::fast_exp;
  using fast_math::fast_log;
  std::array<float, kTile> a{}, s{}, u{};
  if (is_logits) {
    std::copy(v, v + n, a.begin());  // a = max over classes
    for (int c = 1; c < C; ++c)
      for (int t = 0; t < n; ++t) a[t] = v[c * kTile + t] > a[t] ? v[c * kTile + t] : a[t];
    for (int c = 0; c < C; ++c)
      for (int t = 0; t < n; ++t) {
        const float d = v[c * kTile + t] - a[t];
        const float e = fast_exp(d);
        s[t] += e;
        u[t] += e * d;
      }
    for (int t = 0; t < n; ++t) out[t] = fast_log(s[t]) - u[t] / s[t];
  } else {
    for (int c = 0; c < C; ++c)
      for (int t = 0; t < n; ++t) {
        const float p = v[c * kTile + t];
        const float term = p * fast_log(p > 1e-30f ? p : 1.0f);
        s[t] -= p > 1e-30f ? term : 0.0f;
      }
    std::copy(s.begin(), s.begin() + n, out);
  }
  for (int t = 0; t < n; ++t) out[t] = out[t] > 0.f ? out[t] : 0.f;  // also maps -0 to +0
}

template <typename scalar_t>
void entropy_rank_pixels(const scalar_t* x, const bool is_logits, const int64_t B, const int C, const int64_t HW,
                         float* entropy, uint8_t* rank) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t tiles_per_image = (HW + kTile - 1) / kTile;
  at::parallel_for(0, B * tiles_per_image, 16, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> v(static_cast<size_t>(C) * kTile);
    std::vector<int32_t> r(static_cast<size_t>(C) * kTile);
    std::array<acc_t, 256> pixel{};
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t b = tile / tiles_per_image, s0 = (tile % tiles_per_image) * kTile;
      const int n = static_cast<int>(std::min<int64_t>(kTile, HW - s0));
      const scalar_t* px = x + b * C * HW + s0;
      for (int c = 0; c < C; ++c)
        for (int t = 0; t < n; ++t) v[c * kTile + t] = static_cast<acc_t>(px[c * HW + t]);
      bool vector_path = false;
      if constexpr (std::is_same_v<acc_t, float>) {
        // Finite iff x - x == 0 (NaN and inf give NaN); a vectorisable test.
        float probe = 0.f;
        for (int c = 0; c < C; ++c)
          for (int t = 0; t < n; ++t) probe += (v[c * kTile + t] - v[c * kTile + t]);
        const bool finite = probe == 0.f;
        vector_path = finite;
        if (finite) tile_entropy(v.data(), C, n, is_logits, entropy + b * HW + s0);
      }
      if (!vector_path) {  // NaN/inf inputs (or float64): the exact per-pixel path
        for (int t = 0; t < n; ++t) {
          for (int c = 0; c < C; ++c) pixel[c] = v[c * kTile + t];
          entropy[b * HW + s0 + t] = pixel_entropy<0>(pixel.data(), C, is_logits);
        }
      }
      for (auto& value : v) value = rank_value(value);
      tile_ranks(v.data(), C, n, r.data());
      uint8_t* pr = rank + b * C * HW + s0;
      for (int c = 0; c < C; ++c)
        for (int t = 0; t < n; ++t) pr[c * HW + t] = static_cast<uint8_t>(r[c * kTile + t]);
    }
  });
}

// Exact quantile by radix select: per pass, a histogram of one digit over the valid entropies
// whose higher digits match each target's prefix (thread-local histograms, then merged).
float select_quantile(const float* entropy, const bool* valid, const int64_t N, const double q) {
  SelectState state{};
  const int threads = at::get_num_threads();
  std::vector<int64_t> local(static_cast<size_t>(threads) * 2 * kMaxBins);
  std::vector<int64_t> hist(2 * kMaxBins);
  for (int pass = 0; pass < kPasses; ++pass) {
    std::fill(local.begin(), local.end(), 0);
    const int64_t p0 = state.prefix[0], p1 = state.prefix[1];
    at::parallel_for(0, N, 1 << 16, [&](int64_t begin, int64_t end) {
      int64_t* h = local.data() + static_cast<size_t>(at::get_thread_num()) * 2 * kMaxBins;
      for (int64_t i = begin; i < end; ++i) {
        if (valid != nullptr && !valid[i]) continue;
        const uint32_t key = float_key(entropy[i]);
        const int d = digit_of(key, pass);
        if (in_prefix(key, p0, pass)) ++h[d];
        if (in_prefix(key, p1, pass)) ++h[kMaxBins + d];
      }
    });
    std::fill(hist.begin(), hist.end(), 0);
    for (int t = 0; t < threads; ++t) {
      const int64_t* h = local.data() + static_cast<size_t>(t) * 2 * kMaxBins;
      for (int i = 0; i < 2 * kMaxBins; ++i) hist[i] += h[i];
    }
    if (pass == 0) {
      int64_t n = 0;
      for (int i = 0; i < kMaxBins; ++i) n += hist[i];
      start_select(state, n, q);
      if (n == 0) break;
    }
    select_digit(hist.data(), pass, state.k[0], state.prefix[0]);
    select_digit(hist.data() + kMaxBins, pass, state.k[1], state.prefix[1]);
  }
  return finish_select(state);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> entropy_rank_cpu(const at::Tensor& x_in, bool is_logits,
                                                                 const std::optional<at::Tensor>& valid_in,
                                                                 std::optional<double> quantile) {
  check_args(x_in, valid_in, quantile);
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const int C = static_cast<int>(x.size(1));
  at::Tensor entropy = at::empty({B, H, W}, x.options().dtype(at::kFloat));
  at::Tensor rank = at::empty({B, C, H, W}, x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "entropy_rank_cpu", [&] {
    entropy_rank_pixels(x.const_data_ptr<scalar_t>(), is_logits, B, C, H * W, entropy.mutable_data_ptr<float>(),
                        rank.mutable_data_ptr<uint8_t>());
  });
  at::Tensor threshold = at::empty({0}, x.options().dtype(at::kFloat));
  if (quantile.has_value()) {
    at::Tensor valid;
    if (valid_in.has_value()) valid = valid_in->contiguous();
    const float value = select_quantile(entropy.const_data_ptr<float>(),
                                        valid.defined() ? valid.const_data_ptr<bool>() : nullptr, entropy.numel(),
                                        *quantile);
    threshold = at::full({}, value, x.options().dtype(at::kFloat));
  }
  return {entropy, threshold, rank};
}

}  // namespace
}  // namespace noisyseg::entropy_rank

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) { m.impl("entropy_rank", &noisyseg::entropy_rank::entropy_rank_cpu); }
