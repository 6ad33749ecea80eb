// Edge-score math shared by the CPU and CUDA kernels of gat_attention and gat_attention_additive.
#pragma once

#include <c10/macros/Macros.h>

namespace noisyseg::gat_attention {

// GAT's additive logit e_ij = LeakyReLU(s_i + t_j).
template <typename T>
C10_HOST_DEVICE inline T leaky_relu(T z, T negative_slope) {
  return z > T(0) ? z : z * negative_slope;
}

// d LeakyReLU / dz, with torch's convention at z == 0 (the negative side).
template <typename T>
C10_HOST_DEVICE inline T leaky_relu_slope(T z, T negative_slope) {
  return z > T(0) ? T(1) : negative_slope;
}

}  // namespace noisyseg::gat_attention
