// CUDA kernels for the ranking ops: top-k indices, ranks, P@k, Kendall tau-b (all features and
// restricted to T_k), Spearman. Same semantics as csrc/cpu/ranking_kernel.cpp: order = descending
// value, ties broken by the lower feature index.
//
// Orders come from torch's stable descending sort (a stable sort keeps the lower index first among
// equal values). Kendall tau-b counts pairs exactly, O(n^2) work per row spread over many threads:
// fine up to ~1e4 features, whereas the CPU kernel is O(n log n) (Knight's algorithm).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "cuda/row_math.cuh"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

constexpr int kElementThreads = 256;  // element-wise kernels (grid-stride loops)
constexpr int kPairThreads = 128;     // Kendall pair kernel: one thread per i of a tile

// Blocks for a grid-stride loop over `total` elements (capped; the loop covers the rest).
unsigned element_blocks(int64_t total) {
  const int64_t blocks = (total + kElementThreads - 1) / kElementThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 1 << 20));
}

// (rows, n) int64 indices ordering each row best first. Adding +0.0 turns -0.0 into +0.0, so the
// two zeros tie (as they do under the CPU kernels' comparisons) whatever the sort does with them.
at::Tensor order_desc(const at::Tensor& x) {
  return std::get<1>(at::sort(x + 0.0, /*stable=*/std::optional<bool>(true), /*dim=*/1,
                              /*descending=*/true))
      .contiguous();
}

// ranks[r, order[r, p]] = p: the inverse permutation of each row's order.
__global__ void scatter_positions_kernel(const int64_t* order, int64_t rows, int64_t n,
                                         int64_t* ranks) {
  const int64_t total = rows * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / n, p = e % n;
    ranks[r * n + order[e]] = p;
  }
}

at::Tensor ranks_from_order(const at::Tensor& order) {
  const int64_t rows = order.size(0), n = order.size(1);
  at::Tensor ranks = at::empty_like(order);
  scatter_positions_kernel<<<element_blocks(rows * n), kElementThreads, 0,
                             c10::cuda::getCurrentCUDAStream()>>>(
      order.const_data_ptr<int64_t>(), rows, n, ranks.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return ranks;
}

// out[r] = |T_k(a) ∩ T_k(b)| / k: counts the first k of a's order whose rank in b is below k.
// One block per row.
template <typename T>
__global__ void precision_rows_kernel(const int64_t* order_a, const int64_t* ranks_b, int64_t n,
                                      int64_t k, T* out) {
  const int64_t r = blockIdx.x;
  long long hits = 0;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x)
    hits += ranks_b[r * n + order_a[r * n + i]] < k;
  hits = block_sum(hits);
  if (threadIdx.x == 0)
    out[r] = static_cast<T>(static_cast<double>(hits) / static_cast<double>(k));
}

// Kendall pair counts of rows of m values. Block (row, tile) gives each thread one i of the tile;
// the thread walks all j > i, and the block adds its sums into counts[row] = {sum of
// sign(x_i - x_j) * sign(y_i - y_j), #pairs with x_i != x_j, #pairs with y_i != y_j}. The first sum
// is signed: unsigned 64-bit atomics wrap modulo 2^64, which is two's complement addition.
template <typename T>
__global__ void kendall_pairs_kernel(const T* x, const T* y, int64_t m,
                                     unsigned long long* counts) {
  const int64_t row = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const T* xr = x + row * m;
  const T* yr = y + row * m;
  long long s = 0, pairs_x = 0, pairs_y = 0;
  if (i < m) {
    const T xi = xr[i], yi = yr[i];
    for (int64_t j = i + 1; j < m; ++j) {
      const int sx = (xi > xr[j]) - (xi < xr[j]);
      const int sy = (yi > yr[j]) - (yi < yr[j]);
      s += sx * sy;
      pairs_x += sx != 0;
      pairs_y += sy != 0;
    }
  }
  s = block_sum(s);  // every thread takes part, also those past the end of the row
  pairs_x = block_sum(pairs_x);
  pairs_y = block_sum(pairs_y);
  if (threadIdx.x == 0) {
    atomicAdd(counts + 3 * row, static_cast<unsigned long long>(s));
    atomicAdd(counts + 3 * row + 1, static_cast<unsigned long long>(pairs_x));
    atomicAdd(counts + 3 * row + 2, static_cast<unsigned long long>(pairs_y));
  }
}

// tau_b = (n_c - n_d) / sqrt((P - T_x) (P - T_y)) from the exact integer counts, in double exactly
// as the CPU kernel; NaN when either side is constant (or has fewer than two values).
template <typename T>
__global__ void kendall_finalize_kernel(const int64_t* counts, int64_t rows, T* out) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double denom = sqrt(static_cast<double>(counts[3 * r + 1])) *
                         sqrt(static_cast<double>(counts[3 * r + 2]));
    const double tau = static_cast<double>(counts[3 * r]) / denom;
    out[r] = static_cast<T>(denom == 0.0 ? gpu::quiet_nan() : tau);
  }
}

// Kendall tau-b of each row of the contiguous (rows, m) tensors x and y, into out (rows,).
void kendall_rows(const at::Tensor& x, const at::Tensor& y, at::Tensor& out) {
  const int64_t rows = x.size(0), m = x.size(1);
  const int64_t tiles = (m + kPairThreads - 1) / kPairThreads;
  TORCH_CHECK(tiles <= 65535, "r2et_fast CUDA kendall_tau: too many features (", m,
              ") for the O(n^2) GPU kernel");
  const dim3 grid(gpu::row_grid(rows).x, static_cast<unsigned>(std::max<int64_t>(tiles, 1)));
  at::Tensor counts = at::zeros({rows, 3}, x.options().dtype(at::kLong));
  static_assert(sizeof(unsigned long long) == sizeof(int64_t), "64-bit counters");
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "r2et_fast_kendall_cuda", [&] {
    kendall_pairs_kernel<scalar_t><<<grid, kPairThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), m,
        reinterpret_cast<unsigned long long*>(counts.mutable_data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kendall_finalize_kernel<scalar_t><<<element_blocks(rows), kElementThreads, 0, stream>>>(
        counts.const_data_ptr<int64_t>(), rows, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

// 1-based average ranks as double (ties share the mean of their positions), from each row's
// ascending sort: the entries below v are lower_bound(v), those up to v are upper_bound(v).
template <typename T>
__global__ void average_ranks_kernel(const T* x, const T* sorted, int64_t rows, int64_t n,
                                     double* out) {
  const int64_t total = rows * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T v = x[e];
    const T* row = sorted + (e / n) * n;
    int64_t lo = 0, hi = n;  // first index with row[idx] >= v
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (row[mid] < v) lo = mid + 1; else hi = mid;
    }
    const int64_t below = lo;
    hi = n;  // first index with row[idx] > v, searched from `below` on
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (row[mid] <= v) lo = mid + 1; else hi = mid;
    }
    out[e] = 0.5 * static_cast<double>(below + 1 + lo);
  }
}

at::Tensor average_ranks(const at::Tensor& x) {
  const int64_t rows = x.size(0), n = x.size(1);
  const at::Tensor sorted =
      std::get<0>(at::sort(x, /*dim=*/int64_t{1}, /*descending=*/false)).contiguous();
  at::Tensor out = at::empty({rows, n}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "r2et_fast_average_ranks_cuda", [&] {
    average_ranks_kernel<scalar_t><<<element_blocks(rows * n), kElementThreads, 0,
                                     c10::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), sorted.const_data_ptr<scalar_t>(), rows, n,
        out.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

// ---- ops: validate exactly like the CPU kernels, then work on the input's device and stream ----

at::Tensor topk_indices_cuda(const at::Tensor& x_in, int64_t k) {
  check_maps(x_in, "x", 2);
  check_k(k, x_in.size(1));
  check_finite(x_in, "x");
  const c10::cuda::CUDAGuard guard(x_in.device());
  return order_desc(x_in.contiguous()).narrow(1, 0, k).contiguous();
}

at::Tensor ranks_cuda(const at::Tensor& x_in) {
  check_maps(x_in, "x");
  check_finite(x_in, "x");
  const c10::cuda::CUDAGuard guard(x_in.device());
  return ranks_from_order(order_desc(x_in.contiguous()));
}

at::Tensor precision_at_k_cuda(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  const at::Tensor order_a = order_desc(a);
  const at::Tensor ranks_b = ranks_from_order(order_desc(b));
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "r2et_fast_precision_at_k_cuda", [&] {
    precision_rows_kernel<scalar_t><<<gpu::row_grid(rows), kRowThreads, 0,
                                      c10::cuda::getCurrentCUDAStream()>>>(
        order_a.const_data_ptr<int64_t>(), ranks_b.const_data_ptr<int64_t>(), n, k,
        out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor kendall_tau_cuda(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair(a_in, b_in, 2);
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  at::Tensor out = at::empty({a.size(0)}, a.options());
  kendall_rows(a, b, out);
  return out;
}

at::Tensor kendall_tau_topk_cuda(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  // T_k(a) as (rows, k) gathers of a and b; tau-b does not depend on the order of the pairs.
  const at::Tensor top = order_desc(a).narrow(1, 0, k);
  const at::Tensor xa = a.gather(1, top).contiguous(), xb = b.gather(1, top).contiguous();
  at::Tensor out = at::empty({a.size(0)}, a.options());
  kendall_rows(xa, xb, out);  // k == 1 has no pairs: NaN, as on the CPU
  return out;
}

at::Tensor spearman_cuda(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair(a_in, b_in, 2);
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  const at::Tensor ra = average_ranks(a), rb = average_ranks(b);
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "r2et_fast_spearman_cuda", [&] {
    gpu::pearson_rows_kernel<double, scalar_t><<<gpu::row_grid(rows), kRowThreads, 0,
                                                 c10::cuda::getCurrentCUDAStream()>>>(
        ra.const_data_ptr<double>(), rb.const_data_ptr<double>(), n,
        out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("topk_indices", &topk_indices_cuda);
  m.impl("ranks", &ranks_cuda);
  m.impl("precision_at_k", &precision_at_k_cuda);
  m.impl("kendall_tau", &kendall_tau_cuda);
  m.impl("kendall_tau_topk", &kendall_tau_topk_cuda);
  m.impl("spearman", &spearman_cuda);
}

}  // namespace r2et_fast
