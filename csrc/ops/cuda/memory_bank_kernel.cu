// CUDA kernel of memory_bank_push (contract in csrc/ops/memory_bank.cpp). Per-class counts with
// atomics would lose the arrival order, so the order comes from cub's stable radix sort of the
// labels with the key index as payload: a key's rank within its class is then its sorted position
// minus the class's first position. Everything stays on the device (no host sync).
#include <torch/library.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/cub.cuh>

#include <limits>

#include "ops/memory_bank.h"
#include "ops/memory_bank_common.h"

namespace noisyseg::memory_bank {
namespace {

constexpr int kThreads = 256;

// Out-of-range labels sort last, as class C, and are skipped afterwards.
__global__ void prepare_kernel(const int64_t* __restrict__ labels, int M, int C, int* __restrict__ cls,
                               int* __restrict__ index) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < M; i += gridDim.x * blockDim.x) {
    const int64_t l = labels[i];
    cls[i] = (l >= 0 && l < C) ? static_cast<int>(l) : C;
    index[i] = i;
  }
}

// bounds[c] = first sorted position of class c, bounds[C + c] = one past its last (0, 0 if absent).
__global__ void bounds_kernel(const int* __restrict__ sorted, int M, int C, int64_t* __restrict__ bounds) {
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < M; j += gridDim.x * blockDim.x) {
    const int c = sorted[j];
    if (c >= C) continue;
    if (j == 0 || sorted[j - 1] != c) bounds[c] = j;
    if (j == M - 1 || sorted[j + 1] != c) bounds[C + c] = j + 1;
  }
}

// One thread per (sorted key, feature): consecutive threads copy consecutive features of a row.
template <typename scalar_t>
__global__ void scatter_kernel(const scalar_t* __restrict__ keys, const int* __restrict__ sorted,
                               const int* __restrict__ index, const int64_t* __restrict__ bounds,
                               const int64_t* __restrict__ head, int64_t M, int C, int64_t capacity, int64_t D,
                               scalar_t* __restrict__ bank) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < M * D;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = e / D, d = e - j * D;
    const int c = sorted[j];
    if (c >= C) continue;
    const int64_t start = bounds[c];
    const int64_t slot = ring_slot(head[c], j - start, bounds[C + c] - start, capacity);
    if (slot >= 0) bank[(c * capacity + slot) * D + d] = keys[index[j] * D + d];
  }
}

__global__ void advance_kernel(const int64_t* __restrict__ bounds, int C, int64_t capacity, int64_t* head,
                               int64_t* size) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) advance(head[c], size[c], bounds[C + c] - bounds[c], capacity);
}

int blocks_for(int64_t work) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, 65535)));
}

void memory_bank_push_cuda(const at::Tensor& bank, const at::Tensor& head, const at::Tensor& size,
                           const at::Tensor& keys_in, const at::Tensor& labels_in) {
  check_push_args(bank, head, size, keys_in, labels_in);
  const int64_t M = keys_in.size(0);
  if (M == 0) return;
  TORCH_CHECK(M < std::numeric_limits<int>::max(), "memory_bank_push: at most 2^31 - 2 keys per push, got ", M);
  TORCH_CHECK(bank.size(0) < std::numeric_limits<int>::max(), "memory_bank_push: too many classes, got ",
              bank.size(0));
  const c10::cuda::CUDAGuard guard(bank.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor keys = keys_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const int C = static_cast<int>(bank.size(0));
  const int64_t capacity = bank.size(1), D = bank.size(2);
  const int m = static_cast<int>(M);

  at::Tensor work = at::empty({4, M}, labels.options().dtype(at::kInt));  // cls, index, sorted cls, sorted index
  int* cls = work[0].mutable_data_ptr<int>();
  int* index = work[1].mutable_data_ptr<int>();
  int* sorted = work[2].mutable_data_ptr<int>();
  int* sorted_index = work[3].mutable_data_ptr<int>();
  prepare_kernel<<<blocks_for(M), kThreads, 0, stream>>>(labels.const_data_ptr<int64_t>(), m, C, cls, index);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  int end_bit = 1;
  while ((int64_t{1} << end_bit) <= C) ++end_bit;  // enough bits for 0..C
  size_t temp_bytes = 0;
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, cls, sorted, index, sorted_index, m, 0,
                                                 end_bit, stream));
  at::Tensor temp = at::empty({static_cast<int64_t>(temp_bytes)}, labels.options().dtype(at::kByte));
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.mutable_data_ptr(), temp_bytes, cls, sorted, index,
                                                 sorted_index, m, 0, end_bit, stream));

  at::Tensor bounds = at::zeros({2 * C}, labels.options());
  bounds_kernel<<<blocks_for(M), kThreads, 0, stream>>>(sorted, m, C, bounds.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, bank.scalar_type(), "memory_bank_push_cuda", [&] {
    scatter_kernel<scalar_t><<<blocks_for(M * D), kThreads, 0, stream>>>(
        keys.const_data_ptr<scalar_t>(), sorted, sorted_index, bounds.const_data_ptr<int64_t>(),
        head.const_data_ptr<int64_t>(), M, C, capacity, D, bank.mutable_data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  advance_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      bounds.const_data_ptr<int64_t>(), C, capacity, head.mutable_data_ptr<int64_t>(), size.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace noisyseg::memory_bank

TORCH_LIBRARY_IMPL(noisyseg, CUDA, m) { m.impl("memory_bank_push", &noisyseg::memory_bank::memory_bank_push_cuda); }
