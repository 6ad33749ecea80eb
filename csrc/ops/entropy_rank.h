// Declarations shared by the entropy_rank schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace noisyseg::entropy_rank {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_args(const at::Tensor& x, const std::optional<at::Tensor>& valid, std::optional<double> quantile);

}  // namespace noisyseg::entropy_rank
