// Declarations shared by the memory_bank schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace noisyseg::memory_bank {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_push_args(const at::Tensor& bank, const at::Tensor& head, const at::Tensor& size, const at::Tensor& keys,
                     const at::Tensor& labels);

}  // namespace noisyseg::memory_bank
