// memory_bank_push: enqueue keys into C per-class FIFO ring buffers held on the device, in place.
//
// Contract:
// - bank: [C, capacity, D] contiguous, float16/bfloat16/float32/float64; head, size: [C] int64
//   contiguous (head = next slot to write; the class's keys, oldest first, sit at slots
//   (head - size + i) mod capacity for i < size).
// - keys: [M, D] of bank's dtype; labels: [M] int64. Labels outside [0, C) (255, -1 padding from a
//   DDP gather) are ignored. Order within a class = order in `keys` (a stable counting sort); when
//   more than `capacity` keys of one class arrive in one push, only the newest `capacity` are kept.
// - bank/head/size are mutated in place (Tensor(a!) annotations); nothing is returned.
// - Not differentiable (keys are stored as data).
#include <torch/library.h>

#include <ATen/ATen.h>

#include "ops/memory_bank.h"

namespace noisyseg::memory_bank {

void check_push_args(const at::Tensor& bank, const at::Tensor& head, const at::Tensor& size, const at::Tensor& keys,
                     const at::Tensor& labels) {
  TORCH_CHECK(bank.dim() == 3, "memory_bank_push: bank must be [C, capacity, D], got ", bank.sizes());
  TORCH_CHECK(bank.is_contiguous(), "memory_bank_push: bank must be contiguous");
  TORCH_CHECK(bank.size(1) >= 1, "memory_bank_push: capacity must be >= 1, got ", bank.size(1));
  const int64_t C = bank.size(0);
  TORCH_CHECK(head.dim() == 1 && head.size(0) == C && head.scalar_type() == at::kLong && head.is_contiguous(),
              "memory_bank_push: head must be contiguous int64 [C] = [", C, "], got ", head.scalar_type(), " ",
              head.sizes());
  TORCH_CHECK(size.dim() == 1 && size.size(0) == C && size.scalar_type() == at::kLong && size.is_contiguous(),
              "memory_bank_push: size must be contiguous int64 [C] = [", C, "], got ", size.scalar_type(), " ",
              size.sizes());
  TORCH_CHECK(keys.dim() == 2 && keys.size(1) == bank.size(2), "memory_bank_push: keys must be [M, D] with D = ",
              bank.size(2), ", got ", keys.sizes());
  TORCH_CHECK(keys.scalar_type() == bank.scalar_type(), "memory_bank_push: keys must have the bank's dtype ",
              bank.scalar_type(), ", got ", keys.scalar_type());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == keys.size(0) && labels.scalar_type() == at::kLong,
              "memory_bank_push: labels must be int64 [M] = [", keys.size(0), "], got ", labels.scalar_type(), " ",
              labels.sizes());
  for (const at::Tensor* t : {&head, &size, &keys, &labels}) {
    TORCH_CHECK(t->device() == bank.device(), "memory_bank_push: all tensors must be on the bank's device ",
                bank.device(), ", got ", t->device());
  }
}

}  // namespace noisyseg::memory_bank

TORCH_LIBRARY_FRAGMENT(noisyseg, m) {
  m.def("memory_bank_push(Tensor(a!) bank, Tensor(b!) head, Tensor(c!) size, Tensor keys, Tensor labels) -> ()");
}
