// CPU kernel of the attacks' projected step, fused per sample (row):
//   x' = x - alpha * normalise(d)      normalise: l2 -> d / ||d||_2 (0 if d = 0), linf -> sign(d)
//   x' = x0 + proj_ball(x' - x0)       l2 ball: rescale to radius eps; linf ball: clamp to [-eps, eps]
//   x' = clamp(x', lower, upper)       the valid input box (per feature), if given
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "cpu/step_rows.h"
#include "ops/checks.h"
#include "ops/projected_step.h"

namespace r2et_fast {
namespace {

at::Tensor projected_step_cpu(const at::Tensor& x_in, const at::Tensor& d_in, const at::Tensor& x0_in,
                              double alpha, double eps, c10::string_view step_norm_s,
                              c10::string_view ball_norm_s, const std::optional<at::Tensor>& lower_in,
                              const std::optional<at::Tensor>& upper_in) {
  const StepSpec spec = check_projected_step(x_in, d_in, x0_in, alpha, eps, step_norm_s, ball_norm_s,
                                             lower_in, upper_in);
  const at::Tensor x = x_in.contiguous(), d = d_in.contiguous(), x0 = x0_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty_like(x);
  const at::Tensor lower = lower_in ? lower_in->contiguous() : at::Tensor();
  const at::Tensor upper = upper_in ? upper_in->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "projected_step_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* dp = d.const_data_ptr<scalar_t>();
    const scalar_t* x0p = x0.const_data_ptr<scalar_t>();
    const scalar_t* lo = lower.defined() ? lower.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* hi = upper.defined() ? upper.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        cpu::projected_step_row(xp + r * n, dp + r * n, x0p + r * n, lo, hi, n, alpha, eps, spec.step_l2,
                                spec.ball_l2, op + r * n);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) { m.impl("projected_step", &projected_step_cpu); }

}  // namespace r2et_fast
