// Declarations shared by the gat_attention schema file and its CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace noisyseg::gat_attention {

// Argument checks, run by every backend kernel (the dispatcher calls kernels directly).
// `op` names the op in messages.
void check_graph(const char* op, const at::Tensor& value, const at::Tensor& rowptr, const at::Tensor& col);
void check_dot_args(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, const at::Tensor& rowptr,
                    const at::Tensor& col);
void check_additive_args(const at::Tensor& src_score, const at::Tensor& dst_score, const at::Tensor& value,
                         const at::Tensor& rowptr, const at::Tensor& col);

}  // namespace noisyseg::gat_attention
