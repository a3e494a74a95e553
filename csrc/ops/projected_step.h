// Argument checks of the projected attack step, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <string>

#include "ops/checks.h"

namespace r2et_fast {

struct StepSpec {
  bool step_l2;  // normalise the direction by its l2 norm (else take its sign: linf)
  bool ball_l2;  // project onto the l2 ball (else the linf ball)
};

inline bool parse_norm(c10::string_view norm, const char* name) {
  TORCH_CHECK_VALUE(norm == "l2" || norm == "linf", name, " must be 'l2' or 'linf', got '",
                    std::string(norm), "'");
  return norm == "l2";
}

inline void check_bound(const std::optional<at::Tensor>& bound, const at::Tensor& x, const char* name) {
  if (!bound) return;
  TORCH_CHECK_VALUE(bound->dim() == 1 && bound->size(0) == x.size(1), name,
                    " must be a 1-D tensor of n_features = ", x.size(1), " values, got shape ",
                    bound->sizes());
  TORCH_CHECK_TYPE(bound->scalar_type() == x.scalar_type(), name, " must have the dtype of x");
  TORCH_CHECK_VALUE(bound->device() == x.device(), name, " must be on the device of x");
  TORCH_CHECK_VALUE(!at::isnan(*bound).any().item<bool>(), name, " contains NaN");
}

inline StepSpec check_projected_step(const at::Tensor& x, const at::Tensor& d, const at::Tensor& x0,
                                     double alpha, double eps, c10::string_view step_norm,
                                     c10::string_view ball_norm, const std::optional<at::Tensor>& lower,
                                     const std::optional<at::Tensor>& upper) {
  check_maps(x, "x");
  check_maps(d, "grad");
  check_maps(x0, "x0");
  for (const at::Tensor* t : {&d, &x0}) {
    TORCH_CHECK_VALUE(t->sizes() == x.sizes(), "x, grad and x0 must have the same shape, got ",
                      x.sizes(), ", ", d.sizes(), ", ", x0.sizes());
    TORCH_CHECK_TYPE(t->scalar_type() == x.scalar_type(), "x, grad and x0 must have the same dtype");
    TORCH_CHECK_VALUE(t->device() == x.device(), "x, grad and x0 must be on the same device");
  }
  TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "alpha must be a finite number >= 0, got ", alpha);
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps >= 0, "eps must be a finite number >= 0, got ", eps);
  check_bound(lower, x, "lower");
  check_bound(upper, x, "upper");
  check_finite(x, "x");
  check_finite(d, "grad");
  check_finite(x0, "x0");
  return {parse_norm(step_norm, "step_norm"), parse_norm(ball_norm, "norm")};
}

}  // namespace r2et_fast
