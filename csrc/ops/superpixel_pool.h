// Declarations shared by the superpixel_pool schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace noisyseg::superpixel_pool {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
void check_args(const at::Tensor& features, const at::Tensor& segments, int64_t num_segments);
void check_backward_args(const at::Tensor& grad_means, const at::Tensor& segments, const at::Tensor& counts,
                         int64_t height, int64_t width);

}  // namespace noisyseg::superpixel_pool
