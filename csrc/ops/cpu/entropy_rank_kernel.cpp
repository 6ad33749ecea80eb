// CPU kernel of entropy_rank (contract in csrc/ops/entropy_rank.cpp).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <vector>

#include "ops/entropy_rank.h"
#include "ops/entropy_rank_common.h"

namespace noisyseg::entropy_rank {
namespace {

// Above this many classes the O(C^2) pairwise count loses to a sort of the class ids.
constexpr int kPairwiseMaxClasses = 48;

template <typename scalar_t>
void entropy_rank_pixels(const scalar_t* x, const bool is_logits, const int64_t B, const int C, const int64_t HW,
                         float* entropy, uint8_t* rank) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, B * HW, 2048, [&](int64_t begin, int64_t end) {
    std::array<acc_t, 256> v{};
    std::array<int, 256> r{};
    std::array<uint8_t, 256> order{};
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / HW, s = p % HW;
      const scalar_t* px = x + b * C * HW + s;
      for (int c = 0; c < C; ++c) v[c] = static_cast<acc_t>(px[c * HW]);
      entropy[p] = pixel_entropy<0>(v.data(), C, is_logits);
      for (int c = 0; c < C; ++c) v[c] = rank_value(v[c]);
      uint8_t* pr = rank + b * C * HW + s;
      if (C <= kPairwiseMaxClasses) {
        pairwise_ranks<0>(v.data(), C, r.data());
        for (int c = 0; c < C; ++c) pr[c * HW] = static_cast<uint8_t>(r[c]);
      } else {
        for (int c = 0; c < C; ++c) order[c] = static_cast<uint8_t>(c);
        std::stable_sort(order.begin(), order.begin() + C, [&](uint8_t a, uint8_t b2) { return v[a] > v[b2]; });
        for (int i = 0; i < C; ++i) pr[order[i] * HW] = static_cast<uint8_t>(i);
      }
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
