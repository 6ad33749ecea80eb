// Declarations shared by the label_confidence schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace noisyseg::label_confidence {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_args(const at::Tensor& probs, const at::Tensor& labels);

// The outputs (p_label, best, p_best) for contiguous probs [B, C, H, W], uninitialised.
std::tuple<at::Tensor, at::Tensor, at::Tensor> empty_outputs(const at::Tensor& probs);

}  // namespace noisyseg::label_confidence
