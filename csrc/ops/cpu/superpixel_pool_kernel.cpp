// CPU kernels of superpixel_pool (contract in ops/superpixel_pool.cpp).
//
// Forward: pixels are grouped by segment with a counting sort per image; each (image, segment)
// then sums its pixels' four bilinear tap weights per low-res cell in a thread-local dense
// scratch of h*w weights (only the touched cells are read back and reset), and multiplies that
// sparse row with the channels-last features. Backward is cell-major: each low-res cell visits
// the high-res pixels that tap it (the inverse of the tap tables), sums the weights per segment
// in a scratch of N weights, and gathers grad_means. Both parallelise without atomics.
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <vector>

#include "ops/superpixel_pool.h"
#include "ops/superpixel_pool_common.h"

namespace noisyseg::superpixel_pool {
namespace {

// Per high-res index along one axis: its two low-res taps and their weights, in the accumulation type.
template <typename acc_t>
struct AxisTaps {
  std::vector<int32_t> i0, i1;
  std::vector<acc_t> w0, w1;

  AxisTaps(int64_t in_size, int64_t out_size, bool align_corners)
      : i0(out_size), i1(out_size), w0(out_size), w1(out_size) {
    for (int64_t o = 0; o < out_size; ++o) {
      const Taps t = source_taps(o, in_size, out_size, align_corners);
      i0[o] = static_cast<int32_t>(t.i0);
      i1[o] = static_cast<int32_t>(t.i1);
      w0[o] = static_cast<acc_t>(t.w0);
      w1[o] = static_cast<acc_t>(t.w1);
    }
  }
};

// For each low-res index, the high-res indices that tap it and their weights (zero weights
// dropped, so a scratch weight that is still 0 means "not touched yet").
template <typename acc_t>
struct InverseTaps {
  std::vector<int64_t> ptr;
  std::vector<int32_t> dst;
  std::vector<acc_t> weight;

  InverseTaps(int64_t in_size, int64_t out_size, bool align_corners) : ptr(in_size + 1, 0) {
    std::vector<std::vector<std::pair<int32_t, acc_t>>> lists(in_size);
    for (int64_t o = 0; o < out_size; ++o) {
      const Taps t = source_taps(o, in_size, out_size, align_corners);
      if (t.w0 != 0.0) lists[t.i0].emplace_back(static_cast<int32_t>(o), static_cast<acc_t>(t.w0));
      if (t.w1 != 0.0) lists[t.i1].emplace_back(static_cast<int32_t>(o), static_cast<acc_t>(t.w1));
    }
    for (int64_t i = 0; i < in_size; ++i) {
      ptr[i + 1] = ptr[i] + static_cast<int64_t>(lists[i].size());
      for (const auto& [o, w] : lists[i]) {
        dst.push_back(o);
        weight.push_back(w);
      }
    }
  }
};

// Counting sort of one image's pixels by segment id: pixels of segment n are
// order[offsets[n] .. offsets[n + 1]) in increasing pixel order.
template <typename seg_t>
void group_pixels(const seg_t* seg, int64_t num_pixels, int64_t N, int64_t* counts, int64_t* offsets,
                  int32_t* order) {
  std::fill(counts, counts + N, 0);
  int64_t too_big = -1;
  for (int64_t p = 0; p < num_pixels; ++p) {
    const int64_t s = static_cast<int64_t>(seg[p]);
    if (s < 0) continue;
    if (s >= N) {
      too_big = s;
      continue;
    }
    ++counts[s];
  }
  TORCH_CHECK(too_big < 0, "superpixel_pool: segment id ", too_big, " is >= num_segments (", N, ")");
  offsets[0] = 0;
  for (int64_t n = 0; n < N; ++n) offsets[n + 1] = offsets[n] + counts[n];
  std::vector<int64_t> next(offsets, offsets + N);
  for (int64_t p = 0; p < num_pixels; ++p) {
    const int64_t s = static_cast<int64_t>(seg[p]);
    if (s >= 0) order[next[s]++] = static_cast<int32_t>(p);
  }
}

std::tuple<at::Tensor, at::Tensor> superpixel_pool_cpu(const at::Tensor& features, const at::Tensor& segments,
                                                       int64_t num_segments, bool align_corners) {
  check_args(features, segments, num_segments);
  const int64_t B = features.size(0), D = features.size(1), h = features.size(2), w = features.size(3);
  const int64_t H = segments.size(1), W = segments.size(2), N = num_segments, P = H * W;
  const at::ScalarType acc_type = at::toOpMathType(features.scalar_type());

  at::Tensor seg = segments.contiguous();
  at::Tensor counts = at::empty({B, N}, segments.options().dtype(at::kLong));
  at::Tensor offsets = at::empty({B, N + 1}, counts.options());
  at::Tensor order = at::empty({B, P}, segments.options().dtype(at::kInt));
  AT_DISPATCH_INTEGRAL_TYPES(seg.scalar_type(), "superpixel_pool_group", [&] {
    const scalar_t* seg_ptr = seg.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        group_pixels(seg_ptr + b * P, P, N, counts.data_ptr<int64_t>() + b * N,
                     offsets.data_ptr<int64_t>() + b * (N + 1), order.data_ptr<int32_t>() + b * P);
      }
    });
  });

  at::Tensor means = at::empty({B, N, D}, features.options().memory_format(at::MemoryFormat::Contiguous));
  if (means.numel() == 0) return {means, counts};
  // Channels-last copy in the accumulation type: a segment's sparse row then reads whole
  // contiguous D-vectors. This is the low-res tensor, small next to the upsampled one.
  at::Tensor feat = at::empty({B, h, w, D}, features.options().dtype(acc_type));
  feat.copy_(features.permute({0, 2, 3, 1}));

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(), "superpixel_pool_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const AxisTaps<acc_t> ys(h, H, align_corners), xs(w, W, align_corners);
    const acc_t* feat_ptr = feat.data_ptr<acc_t>();
    const int64_t* cnt = counts.data_ptr<int64_t>();
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int32_t* ord = order.data_ptr<int32_t>();
    scalar_t* out = means.data_ptr<scalar_t>();

    at::parallel_for(0, B * N, 8, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> cell_weight(h * w, acc_t(0));
      std::vector<int32_t> touched;
      std::vector<acc_t> acc(D);
      auto tap = [&](int32_t cell, acc_t weight) {
        if (weight == acc_t(0)) return;
        if (cell_weight[cell] == acc_t(0)) touched.push_back(cell);
        cell_weight[cell] += weight;
      };
      for (int64_t bn = begin; bn < end; ++bn) {
        const int64_t b = bn / N, n = bn % N;
        const int64_t lo = off[b * (N + 1) + n], hi = off[b * (N + 1) + n + 1];
        scalar_t* row = out + bn * D;
        if (lo == hi) {
          std::fill(row, row + D, scalar_t(0));
          continue;
        }
        for (int64_t k = lo; k < hi; ++k) {
          const int32_t p = ord[b * P + k];
          const int32_t y = p / static_cast<int32_t>(W), x = p - y * static_cast<int32_t>(W);
          const int32_t r0 = ys.i0[y] * static_cast<int32_t>(w), r1 = ys.i1[y] * static_cast<int32_t>(w);
          tap(r0 + xs.i0[x], ys.w0[y] * xs.w0[x]);
          tap(r0 + xs.i1[x], ys.w0[y] * xs.w1[x]);
          tap(r1 + xs.i0[x], ys.w1[y] * xs.w0[x]);
          tap(r1 + xs.i1[x], ys.w1[y] * xs.w1[x]);
        }
        std::fill(acc.begin(), acc.end(), acc_t(0));
        for (const int32_t cell : touched) {
          const acc_t a = cell_weight[cell];
          cell_weight[cell] = acc_t(0);
          const acc_t* f = feat_ptr + (b * h * w + cell) * D;
          for (int64_t d = 0; d < D; ++d) acc[d] += a * f[d];
        }
        touched.clear();
        const acc_t inv = acc_t(1) / static_cast<acc_t>(cnt[bn]);
        for (int64_t d = 0; d < D; ++d) row[d] = static_cast<scalar_t>(acc[d] * inv);
      }
    });
  });
  return {means, counts};
}

at::Tensor superpixel_pool_backward_cpu(const at::Tensor& grad_means, const at::Tensor& segments,
                                        const at::Tensor& counts, int64_t height, int64_t width,
                                        bool align_corners) {
  check_backward_args(grad_means, segments, counts, height, width);
  const int64_t B = grad_means.size(0), N = grad_means.size(1), D = grad_means.size(2);
  const int64_t H = segments.size(1), W = segments.size(2), h = height, w = width;
  const at::ScalarType acc_type = at::toOpMathType(grad_means.scalar_type());
  // grad of a mean is grad / count; empty segments have no pixels, so their clamp never matters.
  at::Tensor g = (grad_means.to(acc_type) / counts.clamp_min(1).to(acc_type).unsqueeze(-1)).contiguous();
  at::Tensor grad = at::zeros({B, h, w, D}, grad_means.options().dtype(acc_type));
  at::Tensor seg = segments.contiguous();
  if (grad.numel() > 0 && N > 0) {
    AT_DISPATCH_INTEGRAL_TYPES(seg.scalar_type(), "superpixel_pool_backward_seg", [&] {
      using seg_t = scalar_t;
      AT_DISPATCH_FLOATING_TYPES(acc_type, "superpixel_pool_backward_cpu", [&] {
        using acc_t = scalar_t;
        const InverseTaps<acc_t> rows(h, H, align_corners), cols(w, W, align_corners);
        const seg_t* seg_ptr = seg.data_ptr<seg_t>();
        const acc_t* g_ptr = g.data_ptr<acc_t>();
        acc_t* grad_ptr = grad.data_ptr<acc_t>();
        at::parallel_for(0, B * h * w, 16, [&](int64_t begin, int64_t end) {
          std::vector<acc_t> seg_weight(N, acc_t(0));
          std::vector<int64_t> touched;
          for (int64_t bc = begin; bc < end; ++bc) {
            const int64_t b = bc / (h * w), r = (bc / w) % h, c = bc % w;
            for (int64_t a = rows.ptr[r]; a < rows.ptr[r + 1]; ++a) {
              const seg_t* seg_row = seg_ptr + (b * H + rows.dst[a]) * W;
              const acc_t wy = rows.weight[a];
              for (int64_t e = cols.ptr[c]; e < cols.ptr[c + 1]; ++e) {
                const int64_t s = static_cast<int64_t>(seg_row[cols.dst[e]]);
                if (s < 0 || s >= N) continue;
                if (seg_weight[s] == acc_t(0)) touched.push_back(s);
                seg_weight[s] += wy * cols.weight[e];
              }
            }
            acc_t* out = grad_ptr + bc * D;
            for (const int64_t s : touched) {
              const acc_t a = seg_weight[s];
              seg_weight[s] = acc_t(0);
              const acc_t* gs = g_ptr + (b * N + s) * D;
              for (int64_t d = 0; d < D; ++d) out[d] += a * gs[d];
            }
            touched.clear();
          }
        });
      });
    });
  }
  // [B, D, h, w] view of channels-last memory: autograd accepts any strides for a gradient.
  return grad.to(grad_means.scalar_type()).permute({0, 3, 1, 2});
}

}  // namespace
}  // namespace noisyseg::superpixel_pool

TORCH_LIBRARY_IMPL(noisyseg, CPU, m) {
  m.impl("superpixel_pool", &noisyseg::superpixel_pool::superpixel_pool_cpu);
  m.impl("superpixel_pool_backward", &noisyseg::superpixel_pool::superpixel_pool_backward_cpu);
}
