// CPU kernel of memory_bank_push (contract in csrc/ops/memory_bank.cpp).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/memory_bank.h"
#include "ops/memory_bank_common.h"

namespace noisyseg::memory_bank {
namespace {

// A stable counting sort split into chunks of keys: per-chunk class counts, then each chunk knows
// how many keys of each class precede it, so every key gets its rank within its class without a
// sequential pass, and writes straight to its ring slot.
void memory_bank_push_cpu(const at::Tensor& bank, const at::Tensor& head, const at::Tensor& size,
                          const at::Tensor& keys_in, const at::Tensor& labels_in) {
  check_push_args(bank, head, size, keys_in, labels_in);
  const int64_t M = keys_in.size(0);
  if (M == 0) return;
  const at::Tensor keys = keys_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const int64_t C = bank.size(0), capacity = bank.size(1);
  const int64_t row_bytes = bank.size(2) * bank.element_size();
  const int64_t* lab = labels.const_data_ptr<int64_t>();
  const char* src = static_cast<const char*>(keys.const_data_ptr());
  char* dst = static_cast<char*>(bank.mutable_data_ptr());
  int64_t* heads = head.mutable_data_ptr<int64_t>();
  int64_t* sizes = size.mutable_data_ptr<int64_t>();

  const int64_t chunk = std::max<int64_t>(1024, (M + at::get_num_threads() - 1) / at::get_num_threads());
  const int64_t chunks = (M + chunk - 1) / chunk;
  // before[k * C + c]: keys of class c in chunks < k (after the scan below).
  std::vector<int64_t> before(static_cast<size_t>((chunks + 1) * C), 0);
  at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      int64_t* cnt = before.data() + (k + 1) * C;
      for (int64_t i = k * chunk; i < std::min(M, (k + 1) * chunk); ++i) {
        if (lab[i] >= 0 && lab[i] < C) ++cnt[lab[i]];
      }
    }
  });
  for (int64_t k = 1; k <= chunks; ++k) {
    for (int64_t c = 0; c < C; ++c) before[k * C + c] += before[(k - 1) * C + c];
  }
  const int64_t* count = before.data() + chunks * C;

  at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    std::vector<int64_t> seen(before.begin() + k0 * C, before.begin() + (k0 + 1) * C);
    for (int64_t k = k0; k < k1; ++k) {
      std::copy(before.begin() + k * C, before.begin() + (k + 1) * C, seen.begin());
      for (int64_t i = k * chunk; i < std::min(M, (k + 1) * chunk); ++i) {
        const int64_t c = lab[i];
        if (c < 0 || c >= C) continue;
        const int64_t slot = ring_slot(heads[c], seen[c]++, count[c], capacity);
        if (slot >= 0) std::memcpy(dst + (c * capacity + slot) * row_bytes, src + i * row_bytes, row_bytes);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) advance(heads[c], sizes[c], count[c], capacity);
}

}  // namespace
}  // namespace noisyseg::memory_bank

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) { m.impl("memory_bank_push", &noisyseg::memory_bank::memory_bank_push_cpu); }
