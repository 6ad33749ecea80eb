// Declarations shared by the label_confidence schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace noisyseg::label_confidence {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_args(const at::Tensor& probs, const at::Tensor& labels);

}  // namespace noisyseg::label_confidence
