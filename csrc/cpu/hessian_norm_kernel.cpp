// CPU kernels for R2ET's finite-difference Hessian norm, fused per sample:
//   H(x) = ||g(x + kappa v) - g(x)||_2 / kappa,
// given both gradients (computed in one batched pass of 2B rows by r2et_fast.regularizers), and its
// backward: dH/dg(x + kappa v) = d / (kappa ||d||) = -dH/dg(x), d = g(x + kappa v) - g(x); 0 at d = 0.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "ops/checks.h"

namespace r2et_fast {
namespace {

template <typename T>
double row_diff_norm(const T* a, const T* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(b[i]) - static_cast<double>(a[i]);
    s += d * d;
  }
  return std::sqrt(s);
}

void check_kappa(double kappa) {
  TORCH_CHECK_VALUE(std::isfinite(kappa) && kappa > 0, "kappa must be a positive finite number, got ",
                    kappa);
}

at::Tensor hessian_fd_norm_cpu(const at::Tensor& gx_in, const at::Tensor& gxv_in, double kappa) {
  check_pair(gx_in, gxv_in);
  check_kappa(kappa);
  const at::Tensor gx = gx_in.contiguous(), gxv = gxv_in.contiguous();
  const int64_t rows = gx.size(0), n = gx.size(1);
  at::Tensor out = at::empty({rows}, gx.options());
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "hessian_fd_norm_cpu", [&] {
    const scalar_t* a = gx.const_data_ptr<scalar_t>();
    const scalar_t* b = gxv.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        o[r] = static_cast<scalar_t>(row_diff_norm(a + r * n, b + r * n, n) / kappa);
    });
  });
  return out;
}

// Returns (grad wrt g(x), grad wrt g(x + kappa v)).
std::tuple<at::Tensor, at::Tensor> hessian_fd_norm_backward_cpu(const at::Tensor& grad_in,
                                                                const at::Tensor& gx_in,
                                                                const at::Tensor& gxv_in, double kappa) {
  check_pair(gx_in, gxv_in);
  check_kappa(kappa);
  TORCH_CHECK_VALUE(grad_in.dim() == 1 && grad_in.size(0) == gx_in.size(0),
                    "grad must have shape (batch,), got ", grad_in.sizes());
  const at::Tensor gx = gx_in.contiguous(), gxv = gxv_in.contiguous();
  const at::Tensor grad = grad_in.to(gx.scalar_type()).contiguous();
  const int64_t rows = gx.size(0), n = gx.size(1);
  at::Tensor d_gx = at::empty_like(gx), d_gxv = at::empty_like(gx);
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "hessian_fd_norm_backward_cpu", [&] {
    const scalar_t* a = gx.const_data_ptr<scalar_t>();
    const scalar_t* b = gxv.const_data_ptr<scalar_t>();
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    scalar_t* da = d_gx.mutable_data_ptr<scalar_t>();
    scalar_t* db = d_gxv.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double norm = row_diff_norm(a + r * n, b + r * n, n);
        const double c = norm > 0 ? static_cast<double>(g[r]) / (kappa * norm) : 0.0;
        for (int64_t i = r * n; i < (r + 1) * n; ++i) {
          const double v = c * (static_cast<double>(b[i]) - static_cast<double>(a[i]));
          db[i] = static_cast<scalar_t>(v);
          da[i] = static_cast<scalar_t>(-v);
        }
      }
    });
  });
  return {d_gx, d_gxv};
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) {
  m.impl("hessian_fd_norm", &hessian_fd_norm_cpu);
  m.impl("hessian_fd_norm_backward", &hessian_fd_norm_backward_cpu);
}

}  // namespace r2et_fast
