// CUDA kernels for the R2ET top-k pair-gap term G_k and its backward. Same semantics as
// csrc/cpu/pair_gap_kernel.cpp (order = descending value, ties broken by the lower feature index;
// the ranking is detached and returned as the chosen indices hi, lo):
//   all, linear: n * sum_T I - k * sum_all I
//   all, exp:    -exp(LSE_T(-I) + LSE_rest(I))      (block max, then the sum of exp: stable)
//   pairs:       sum_p h_p  or  -sum_p e^{-h_p},  h_p = I_hi[p] - I_lo[p]
// Each row's order comes from torch's stable descending sort (the CPU kernel selects with
// nth_element / partial_sort instead). For pairs='all', hi holds T_k best first; the CPU kernel
// holds the same set in an unspecified order. Sums are in double, one thread block per row; only
// the order of the additions differs from the CPU kernel (results agree to rounding). The backward
// for explicit pairs adds into its output with atomics, so where one feature is in several pairs
// (the anchor) the order of those additions, and the last bit of the result, may vary.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "cuda/row_math.cuh"
#include "ops/checks.h"
#include "ops/pair_gap.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

constexpr int kElementThreads = 256;  // grid-stride kernels over (row, pair) elements

unsigned element_blocks(int64_t total) {
  const int64_t blocks = (total + kElementThreads - 1) / kElementThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 1 << 20));
}

// (rows, n) int64 indices ordering each row best first (stable: the lower index first among equal
// values). Adding +0.0 turns -0.0 into +0.0, so the two zeros tie as in the CPU comparisons.
at::Tensor row_order(const at::Tensor& x) {
  return std::get<1>(at::sort(x + 0.0, /*stable=*/std::optional<bool>(true), /*dim=*/1,
                              /*descending=*/true))
      .contiguous();
}

__device__ inline double neg_inf() { return -__longlong_as_double(0x7ff0000000000000LL); }

// Maximum of v over the block, returned to every thread; the same calling rules as block_sum.
__device__ double block_max(double v) {
  __shared__ double warp_max[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmax(v, __shfl_down_sync(0xffffffffu, v, offset));
  __syncthreads();  // the previous call's readers are done with warp_max
  if (lane == 0) warp_max[warp] = v;
  __syncthreads();
  double m = neg_inf();
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) m = fmax(m, warp_max[w]);
  return m;
}

// log(sum of exp(x)) over the values x each thread passes in turn through `value(i)`, i = first,
// first + blockDim.x, ... < end, skipping those where `take(i)` is false. Called by every thread.
template <typename Value, typename Take>
__device__ double block_log_sum_exp(int64_t end, Value value, Take take) {
  double m = neg_inf();
  for (int64_t i = threadIdx.x; i < end; i += blockDim.x)
    if (take(i)) m = fmax(m, value(i));
  m = block_max(m);
  double s = 0;
  for (int64_t i = threadIdx.x; i < end; i += blockDim.x)
    if (take(i)) s += exp(value(i) - m);
  s = block_sum(s);
  return m + log(s);
}

// pairs='all': gap[r] from the row's order; the first k positions are T_k. One block per row.
template <typename T>
__global__ void gap_all_kernel(const T* maps, const int64_t* order, int64_t n, int64_t k,
                               bool exp_transform, T* gap) {
  const int64_t r = blockIdx.x;
  const T* v = maps + r * n;
  const int64_t* ord = order + r * n;
  double total;
  if (!exp_transform) {
    double top = 0, all = 0;
    for (int64_t p = threadIdx.x; p < k; p += blockDim.x) top += static_cast<double>(v[ord[p]]);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) all += static_cast<double>(v[i]);
    top = block_sum(top);
    all = block_sum(all);
    total = static_cast<double>(n) * top - static_cast<double>(k) * all;
  } else {
    // LSE over T of -I (positions < k) and over the rest of I (positions >= k).
    const auto always = [](int64_t) { return true; };
    const double log_a = block_log_sum_exp(
        k, [&](int64_t p) { return -static_cast<double>(v[ord[p]]); }, always);
    const double log_r = block_log_sum_exp(
        n - k, [&](int64_t p) { return static_cast<double>(v[ord[k + p]]); }, always);
    total = -exp(log_a + log_r);
  }
  if (threadIdx.x == 0) gap[r] = static_cast<T>(total);
}

// Explicit pairs: rank positions (hi_rank, lo_rank; m pairs) -> feature indices through the row's
// order, written to hi, lo (rows, m); gap[r] = sum of the transformed gaps. One block per row.
template <typename T>
__global__ void gap_pairs_kernel(const T* maps, const int64_t* order, int64_t n,
                                 const int64_t* hi_rank, const int64_t* lo_rank, int64_t m,
                                 bool exp_transform, int64_t* hi, int64_t* lo, T* gap) {
  const int64_t r = blockIdx.x;
  const T* v = maps + r * n;
  const int64_t* ord = order + r * n;
  double total = 0;
  for (int64_t p = threadIdx.x; p < m; p += blockDim.x) {
    const int64_t i = ord[hi_rank[p]], j = ord[lo_rank[p]];
    hi[r * m + p] = i;
    lo[r * m + p] = j;
    const double h = static_cast<double>(v[i]) - static_cast<double>(v[j]);
    total += exp_transform ? -exp(-h) : h;
  }
  total = block_sum(total);
  if (threadIdx.x == 0) gap[r] = static_cast<T>(total);
}

// pairs='all', linear: -k g everywhere, (n - k) g on T. One block per row.
template <typename T>
__global__ void backward_all_linear_kernel(const T* grad, const int64_t* top, int64_t n,
                                           int64_t k, T* out) {
  const int64_t r = blockIdx.x;
  const double g = static_cast<double>(grad[r]);
  T* o = out + r * n;
  const int64_t* t = top + r * k;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = static_cast<T>(-g * k);
  __syncthreads();  // the row is filled before T overwrites its entries
  for (int64_t p = threadIdx.x; p < k; p += blockDim.x) {
    CUDA_KERNEL_ASSERT(t[p] >= 0 && t[p] < n);
    o[t[p]] = static_cast<T>(g * (n - k));
  }
}

// pairs='all', exp: G = -A R with A = sum_T e^{-I}, R = sum_rest e^{I}:
// dG/dI_i = e^{-I_i} R (i in T), dG/dI_j = -A e^{I_j} (j not in T). `in_top` (rows, n) is zeroed
// scratch that marks T. One block per row.
template <typename T>
__global__ void backward_all_exp_kernel(const T* grad, const T* maps, const int64_t* top,
                                        int64_t n, int64_t k, uint8_t* in_top, T* out) {
  const int64_t r = blockIdx.x;
  const double g = static_cast<double>(grad[r]);
  const T* v = maps + r * n;
  const int64_t* t = top + r * k;
  uint8_t* mark = in_top + r * n;
  T* o = out + r * n;
  for (int64_t p = threadIdx.x; p < k; p += blockDim.x) {
    CUDA_KERNEL_ASSERT(t[p] >= 0 && t[p] < n);
    mark[t[p]] = 1;
  }
  __syncthreads();  // makes the block's global writes to `mark` visible to the whole block
  const auto always = [](int64_t) { return true; };
  const double log_a = block_log_sum_exp(
      k, [&](int64_t p) { return -static_cast<double>(v[t[p]]); }, always);
  const double log_r = block_log_sum_exp(
      n, [&](int64_t i) { return static_cast<double>(v[i]); },
      [&](int64_t i) { return mark[i] == 0; });
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double x = static_cast<double>(v[i]);
    o[i] = static_cast<T>(mark[i] ? g * exp(-x + log_r) : -g * exp(x + log_a));
  }
}

__device__ inline void atomic_add(float* p, float x) { atomicAdd(p, x); }
__device__ inline void atomic_add(double* p, double x) { atomicAdd(p, x); }  // sm_60+

// Explicit pairs: out[hi] += c, out[lo] -= c with c = g (linear) or g e^{-h} (exp), over all
// (row, pair) elements; `out` starts at zero.
template <typename T>
__global__ void backward_pairs_kernel(const T* grad, const T* maps, const int64_t* hi,
                                      const int64_t* lo, int64_t rows, int64_t n, int64_t m,
                                      bool exp_transform, T* out) {
  const int64_t total = rows * m;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / m, i = hi[e], j = lo[e];
    CUDA_KERNEL_ASSERT(i >= 0 && i < n && j >= 0 && j < n);
    const T* v = maps + r * n;
    double c = static_cast<double>(grad[r]);
    if (exp_transform) c *= exp(-(static_cast<double>(v[i]) - static_cast<double>(v[j])));
    atomic_add(out + r * n + i, static_cast<T>(c));
    atomic_add(out + r * n + j, -static_cast<T>(c));
  }
}

// ---- ops: validate exactly like the CPU kernels, then work on the input's device and stream ----

std::tuple<at::Tensor, at::Tensor, at::Tensor> topk_pair_gap_cuda(const at::Tensor& maps_in,
                                                                  int64_t k,
                                                                  c10::string_view pairs_s,
                                                                  c10::string_view transform_s,
                                                                  int64_t n_pairs) {
  check_maps(maps_in, "maps", 2);
  const int64_t n = maps_in.size(1);
  check_k(k, n);
  const PairGapSpec spec = parse_pair_gap(pairs_s, transform_s, k, n, n_pairs);
  check_finite(maps_in, "maps");
  const c10::cuda::CUDAGuard guard(maps_in.device());
  const at::Tensor maps = maps_in.contiguous();
  const int64_t rows = maps.size(0);
  const bool exp_transform = spec.transform == Transform::kExp;
  const at::Tensor order = row_order(maps);
  at::Tensor gap = at::empty({rows}, maps.options());
  const dim3 grid = gpu::row_grid(rows);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (spec.pairs == Pairs::kAll) {
    AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "r2et_fast_topk_pair_gap_cuda", [&] {
      gap_all_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(
          maps.const_data_ptr<scalar_t>(), order.const_data_ptr<int64_t>(), n, k, exp_transform,
          gap.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return {gap, order.narrow(1, 0, k).contiguous(),
            at::empty({rows, 0}, maps.options().dtype(at::kLong))};
  }
  const int64_t m = spec.n_pairs_total;
  // The pair layout in rank positions, computed on the host once and copied to the device.
  at::Tensor ranks_host = at::empty({2, m}, at::TensorOptions().dtype(at::kLong));
  int64_t* rh = ranks_host.mutable_data_ptr<int64_t>();
  fill_pair_ranks(spec, k, rh, rh + m);
  const at::Tensor ranks = ranks_host.to(maps.device());
  at::Tensor hi = at::empty({rows, m}, maps.options().dtype(at::kLong));
  at::Tensor lo = at::empty({rows, m}, maps.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "r2et_fast_topk_pair_gap_cuda", [&] {
    const int64_t* rk = ranks.const_data_ptr<int64_t>();
    gap_pairs_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(
        maps.const_data_ptr<scalar_t>(), order.const_data_ptr<int64_t>(), n, rk, rk + m, m,
        exp_transform, hi.mutable_data_ptr<int64_t>(), lo.mutable_data_ptr<int64_t>(),
        gap.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gap, hi, lo};
}

at::Tensor topk_pair_gap_backward_cuda(const at::Tensor& grad_in, const at::Tensor& maps_in,
                                       const at::Tensor& hi_in, const at::Tensor& lo_in,
                                       c10::string_view pairs_s, c10::string_view transform_s) {
  const at::Tensor grad = grad_in.contiguous(), maps = maps_in.contiguous();
  const at::Tensor hi = hi_in.contiguous(), lo = lo_in.contiguous();
  check_pair_gap_backward_args(grad, maps, hi, lo);
  const Pairs pairs = parse_pairs(pairs_s);
  const Transform transform = parse_transform(transform_s);
  // The dispatcher picks this kernel when any argument is on a GPU: the rest must be there too.
  for (const at::Tensor* t : {&grad, &hi, &lo})
    TORCH_CHECK_VALUE(t->device() == maps.device(),
                      "grad, maps, hi and lo must be on the same device, got ", t->device(),
                      " and ", maps.device());
  const c10::cuda::CUDAGuard guard(maps.device());
  const int64_t rows = maps.size(0), n = maps.size(1), k = hi.size(1), m = lo.size(1);
  TORCH_CHECK_VALUE(pairs == Pairs::kAll || m == k,
                    "hi and lo must hold the same number of pairs, got ", k, " and ", m);
  at::Tensor out = pairs == Pairs::kAll && transform == Transform::kLinear ? at::empty_like(maps)
                                                                           : at::zeros_like(maps);
  const dim3 grid = gpu::row_grid(rows);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "r2et_fast_topk_pair_gap_backward_cuda", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* mp = maps.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    if (pairs == Pairs::kAll && transform == Transform::kLinear) {
      backward_all_linear_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(
          gp, hi.const_data_ptr<int64_t>(), n, k, op);
    } else if (pairs == Pairs::kAll) {
      at::Tensor in_top = at::zeros({rows, n}, maps.options().dtype(at::kByte));
      backward_all_exp_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(
          gp, mp, hi.const_data_ptr<int64_t>(), n, k, in_top.mutable_data_ptr<uint8_t>(), op);
    } else {
      backward_pairs_kernel<scalar_t><<<element_blocks(rows * m), kElementThreads, 0, stream>>>(
          gp, mp, hi.const_data_ptr<int64_t>(), lo.const_data_ptr<int64_t>(), rows, n, m,
          transform == Transform::kExp, op);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("topk_pair_gap", &topk_pair_gap_cuda);
  m.impl("topk_pair_gap_backward", &topk_pair_gap_backward_cuda);
}

}  // namespace r2et_fast
