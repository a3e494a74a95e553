// CUDA kernel of topk_pair_agreement. Same semantics, checks and error messages as
// csrc/cpu/thickness_kernel.cpp: per row, the fraction of the k(n - k) ordered pairs
// (i in top, j not in top) with maps[i] >= maps[j], ties counting as satisfied.
//
// The "rest" values of each row are sorted with torch's sort after the top entries are replaced
// by +Inf (maps is finite, so the first n - k sorted entries are exactly the rest, ascending). One
// block per row then binary-searches each top value for the number of rest values <= it and sums
// the exact integer counts; the fraction is formed in double, as on the CPU.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "cuda/row_math.cuh"
#include "ops/checks.h"
#include "ops/thickness.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

// out[r] = #{(p, j): rest_sorted[r, j] <= top_vals[r, p]} / (k (n - k)); one block per row.
// rest_sorted is (rows, m) ascending with m = n - k, top_vals (rows, k).
template <typename T>
__global__ void pair_agreement_rows_kernel(const T* top_vals, const T* rest_sorted, int64_t k,
                                           int64_t m, double pairs, T* out) {
  const int64_t r = blockIdx.x;
  const T* rest = rest_sorted + r * m;
  long long satisfied = 0;
  for (int64_t p = threadIdx.x; p < k; p += blockDim.x) {
    const T v = top_vals[r * k + p];
    int64_t lo = 0, hi = m;  // first position with rest[pos] > v
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (rest[mid] <= v) lo = mid + 1; else hi = mid;
    }
    satisfied += lo;
  }
  satisfied = block_sum(satisfied);  // every thread of the block takes part
  if (threadIdx.x == 0) out[r] = static_cast<T>(static_cast<double>(satisfied) / pairs);
}

at::Tensor topk_pair_agreement_cuda(const at::Tensor& maps_in, const at::Tensor& top_in) {
  check_agreement_args(maps_in, top_in);
  const c10::cuda::CUDAGuard guard(maps_in.device());
  const at::Tensor maps = maps_in.contiguous(), top = top_in.contiguous();
  const int64_t rows = maps.size(0), n = maps.size(1), k = top.size(1);
  // The same checks, in the same order, as the CPU kernel: range, duplicates, finiteness.
  TORCH_CHECK_VALUE(!at::logical_or(top.lt(0), top.ge(n)).any().item<bool>(),
                    "top contains an index out of range [0, ", n, ")");
  if (k > 1) {
    const at::Tensor sorted_top = std::get<0>(at::sort(top, /*dim=*/int64_t{1}, /*descending=*/false));
    TORCH_CHECK_VALUE(
        !sorted_top.narrow(1, 1, k - 1).eq(sorted_top.narrow(1, 0, k - 1)).any().item<bool>(),
        "top contains duplicate indices");
  }
  check_finite(maps, "maps");

  const at::Tensor in_top = at::zeros({rows, n}, maps.options().dtype(at::kBool)).scatter_(1, top, true);
  const at::Tensor rest_sorted =
      std::get<0>(at::sort(maps.masked_fill(in_top, std::numeric_limits<double>::infinity()),
                           /*dim=*/int64_t{1}, /*descending=*/false))
          .narrow(1, 0, n - k)
          .contiguous();
  const at::Tensor top_vals = maps.gather(1, top).contiguous();
  const double pairs = static_cast<double>(k) * static_cast<double>(n - k);
  at::Tensor out = at::empty({rows}, maps.options());
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "r2et_fast_topk_pair_agreement_cuda", [&] {
    pair_agreement_rows_kernel<scalar_t><<<gpu::row_grid(rows), kRowThreads, 0,
                                           c10::cuda::getCurrentCUDAStream()>>>(
        top_vals.const_data_ptr<scalar_t>(), rest_sorted.const_data_ptr<scalar_t>(), k, n - k,
        pairs, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("topk_pair_agreement", &topk_pair_agreement_cuda);
}

}  // namespace r2et_fast
