// CUDA kernels for the value-based similarity ops (Pearson, MSE, cosine): one thread block per row,
// reductions in double with the formulas of csrc/cpu/row_math.h. Only the order of the additions
// differs from the CPU kernels (results agree to rounding).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/row_math.cuh"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

// Cosine similarity a.b / (|a| |b|); NaN when either row is all zeros.
template <typename T>
__global__ void cosine_rows_kernel(const T* x, const T* y, int64_t n, T* out) {
  const int64_t r = blockIdx.x;
  x += r * n;
  y += r * n;
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double a = x[i], b = y[i];
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  sxy = block_sum(sxy);
  sxx = block_sum(sxx);
  syy = block_sum(syy);
  const double denom = sqrt(sxx) * sqrt(syy);
  if (threadIdx.x == 0) out[r] = static_cast<T>(denom == 0.0 ? gpu::quiet_nan() : sxy / denom);
}

// Mean squared difference |a - b|^2 / n.
template <typename T>
__global__ void mse_rows_kernel(const T* x, const T* y, int64_t n, T* out) {
  const int64_t r = blockIdx.x;
  x += r * n;
  y += r * n;
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    s += d * d;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) out[r] = static_cast<T>(s / static_cast<double>(n));
}

enum class Stat { kPearson, kMse, kCosine };

// Validates like the CPU kernels (same messages and exception types), then launches one block per
// row on the current stream of the inputs' device.
at::Tensor rowwise_cuda(const at::Tensor& a_in, const at::Tensor& b_in, Stat stat,
                        int64_t min_features) {
  check_pair(a_in, b_in, min_features);
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  const dim3 grid = gpu::row_grid(rows);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "r2et_fast_rowwise_cuda", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    switch (stat) {
      case Stat::kPearson:
        gpu::pearson_rows_kernel<scalar_t, scalar_t>
            <<<grid, kRowThreads, 0, stream>>>(ap, bp, n, op);
        break;
      case Stat::kMse:
        mse_rows_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(ap, bp, n, op);
        break;
      case Stat::kCosine:
        cosine_rows_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(ap, bp, n, op);
        break;
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor pearson_cuda(const at::Tensor& a, const at::Tensor& b) {
  return rowwise_cuda(a, b, Stat::kPearson, 2);
}
at::Tensor mse_cuda(const at::Tensor& a, const at::Tensor& b) {
  return rowwise_cuda(a, b, Stat::kMse, 1);
}
at::Tensor cosine_cuda(const at::Tensor& a, const at::Tensor& b) {
  return rowwise_cuda(a, b, Stat::kCosine, 1);
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("pearson", &pearson_cuda);
  m.impl("mse", &mse_cuda);
  m.impl("cosine", &cosine_cuda);
}

}  // namespace r2et_fast
