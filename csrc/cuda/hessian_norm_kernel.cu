// CUDA kernels for R2ET's finite-difference Hessian norm, fused per sample, with the semantics of
// csrc/cpu/hessian_norm_kernel.cpp:
//   H = ||g(x + kappa v) - g(x)||_2 / kappa,
//   dH/dg(x + kappa v) = d / (kappa ||d||) = -dH/dg(x), d = g(x + kappa v) - g(x); 0 where d = 0.
// One thread block per row; the squared norm is summed in double (deterministic block reduction,
// the same in the forward and the backward). Only the order of the additions differs from the CPU
// kernel (results agree to rounding).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>

#include "cuda/row_math.cuh"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

// ||b - a||_2 of one row of n values; called by every thread of the block, returned to all.
template <typename T>
__device__ double block_diff_norm(const T* a, const T* b, int64_t n) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double d = static_cast<double>(b[i]) - static_cast<double>(a[i]);
    s += d * d;
  }
  return sqrt(block_sum(s));
}

template <typename T>
__global__ void hessian_norm_kernel(const T* gx, const T* gxv, int64_t n, double kappa, T* out) {
  const int64_t r = blockIdx.x;
  const double norm = block_diff_norm(gx + r * n, gxv + r * n, n);
  if (threadIdx.x == 0) out[r] = static_cast<T>(norm / kappa);
}

template <typename T>
__global__ void hessian_norm_backward_kernel(const T* grad, const T* gx, const T* gxv, int64_t n,
                                             double kappa, T* d_gx, T* d_gxv) {
  const int64_t r = blockIdx.x;
  const T* a = gx + r * n;
  const T* b = gxv + r * n;
  const double norm = block_diff_norm(a, b, n);
  const double c = norm > 0 ? static_cast<double>(grad[r]) / (kappa * norm) : 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = c * (static_cast<double>(b[i]) - static_cast<double>(a[i]));
    d_gxv[r * n + i] = static_cast<T>(v);
    d_gx[r * n + i] = static_cast<T>(-v);
  }
}

void check_kappa(double kappa) {
  TORCH_CHECK_VALUE(std::isfinite(kappa) && kappa > 0,
                    "kappa must be a positive finite number, got ", kappa);
}

at::Tensor hessian_fd_norm_cuda(const at::Tensor& gx_in, const at::Tensor& gxv_in, double kappa) {
  check_pair(gx_in, gxv_in);
  check_kappa(kappa);
  const c10::cuda::CUDAGuard guard(gx_in.device());
  const at::Tensor gx = gx_in.contiguous(), gxv = gxv_in.contiguous();
  const int64_t rows = gx.size(0), n = gx.size(1);
  at::Tensor out = at::empty({rows}, gx.options());
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "r2et_fast_hessian_fd_norm_cuda", [&] {
    hessian_norm_kernel<scalar_t><<<gpu::row_grid(rows), kRowThreads, 0,
                                    c10::cuda::getCurrentCUDAStream()>>>(
        gx.const_data_ptr<scalar_t>(), gxv.const_data_ptr<scalar_t>(), n, kappa,
        out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

// Returns (grad wrt g(x), grad wrt g(x + kappa v)).
std::tuple<at::Tensor, at::Tensor> hessian_fd_norm_backward_cuda(const at::Tensor& grad_in,
                                                                 const at::Tensor& gx_in,
                                                                 const at::Tensor& gxv_in,
                                                                 double kappa) {
  check_pair(gx_in, gxv_in);
  check_kappa(kappa);
  TORCH_CHECK_VALUE(grad_in.dim() == 1 && grad_in.size(0) == gx_in.size(0),
                    "grad must have shape (batch,), got ", grad_in.sizes());
  // The dispatcher picks this kernel when any argument is on a GPU: grad must be there too.
  TORCH_CHECK_VALUE(grad_in.device() == gx_in.device(),
                    "grad must be on the device of grad_x, got ", grad_in.device(), " and ",
                    gx_in.device());
  const c10::cuda::CUDAGuard guard(gx_in.device());
  const at::Tensor gx = gx_in.contiguous(), gxv = gxv_in.contiguous();
  const at::Tensor grad = grad_in.to(gx.scalar_type()).contiguous();
  const int64_t rows = gx.size(0), n = gx.size(1);
  at::Tensor d_gx = at::empty_like(gx), d_gxv = at::empty_like(gx);
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "r2et_fast_hessian_fd_norm_backward_cuda", [&] {
    hessian_norm_backward_kernel<scalar_t><<<gpu::row_grid(rows), kRowThreads, 0,
                                             c10::cuda::getCurrentCUDAStream()>>>(
        grad.const_data_ptr<scalar_t>(), gx.const_data_ptr<scalar_t>(),
        gxv.const_data_ptr<scalar_t>(), n, kappa, d_gx.mutable_data_ptr<scalar_t>(),
        d_gxv.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {d_gx, d_gxv};
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("hessian_fd_norm", &hessian_fd_norm_cuda);
  m.impl("hessian_fd_norm_backward", &hessian_fd_norm_backward_cuda);
}

}  // namespace r2et_fast
