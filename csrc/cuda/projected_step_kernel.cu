// CUDA kernel of the attacks' projected step, fused per sample (row), with the semantics of
// csrc/cpu/projected_step_kernel.cpp:
//   x' = x - alpha * normalise(d)      normalise: l2 -> d / ||d||_2 (0 if d = 0), linf -> sign(d)
//   x' = x0 + proj_ball(x' - x0)       l2 ball: rescale to radius eps; linf ball: clamp to [-eps, eps]
//   x' = clamp(x', lower, upper)       the valid input box (per feature), if given
// One thread block per row, arithmetic in double. Pass 1 block-reduces ||d||^2 (l2 step only);
// pass 2 writes the (linf-clamped) offsets into the output and block-reduces their squared norm
// (l2 ball only); pass 3 rescales, adds x0 and clamps to the box. Only the order of the additions
// of the two norms differs from the CPU kernel (results agree to rounding).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "cuda/row_math.cuh"
#include "ops/checks.h"
#include "ops/projected_step.h"

namespace r2et_fast {
namespace {

using gpu::block_sum;
using gpu::kRowThreads;

// lo / hi: per-feature bounds of n values, or nullptr for no bound. step_l2 and ball_l2 are the
// same for every thread of the block, so the block_sum calls under them are reached by all.
// Products use __dmul_rn so that nvcc does not fuse them into an FMA with the following addition:
// the element-wise values then round exactly like the CPU kernel's.
template <typename T>
__global__ void projected_step_kernel(const T* __restrict__ x, const T* __restrict__ d,
                                      const T* __restrict__ x0, const T* __restrict__ lo,
                                      const T* __restrict__ hi, int64_t n, double alpha, double eps,
                                      bool step_l2, bool ball_l2, T* __restrict__ out) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * n;
  x += row;
  d += row;
  x0 += row;
  out += row;

  // Pass 1: the step's scale, alpha / ||d|| for the l2 step (0 for a zero gradient).
  double step_scale = alpha;
  if (step_l2) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double di = d[i];
      s += di * di;
    }
    s = block_sum(s);
    step_scale = s > 0 ? alpha / sqrt(s) : 0.0;
  }

  // Pass 2: the new offset from x0, clamped per coordinate for the linf ball, into out.
  double ball = 0;  // squared l2 norm of the offset (this thread's share)
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double di = d[i];
    const double step = step_l2 ? __dmul_rn(step_scale, di)
                                : __dmul_rn(alpha, static_cast<double>((di > 0) - (di < 0)));
    double delta = static_cast<double>(x[i]) - step - static_cast<double>(x0[i]);
    if (!ball_l2) delta = fmin(fmax(delta, -eps), eps);
    ball += delta * delta;
    out[i] = static_cast<T>(delta);  // offset for now
  }
  double shrink = 1.0;
  if (ball_l2) {
    ball = block_sum(ball);
    if (ball > eps * eps) shrink = eps / sqrt(ball);
  }

  // Pass 3: rescale onto the ball, add x0, clamp to the box. Each thread reads back only the
  // entries it wrote in pass 2 (same stride), so no synchronisation is needed in between.
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    double v = static_cast<double>(x0[i]) + __dmul_rn(shrink, static_cast<double>(out[i]));
    if (lo != nullptr) v = fmax(v, static_cast<double>(lo[i]));
    if (hi != nullptr) v = fmin(v, static_cast<double>(hi[i]));
    out[i] = static_cast<T>(v);
  }
}

// Validates like the CPU kernel (same checks, messages and exception types), then launches one
// block per row on the current stream of the inputs' device.
at::Tensor projected_step_cuda(const at::Tensor& x_in, const at::Tensor& d_in, const at::Tensor& x0_in,
                               double alpha, double eps, c10::string_view step_norm_s,
                               c10::string_view ball_norm_s, const std::optional<at::Tensor>& lower_in,
                               const std::optional<at::Tensor>& upper_in) {
  const StepSpec spec = check_projected_step(x_in, d_in, x0_in, alpha, eps, step_norm_s, ball_norm_s,
                                             lower_in, upper_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), d = d_in.contiguous(), x0 = x0_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const at::Tensor lower = lower_in ? lower_in->contiguous() : at::Tensor();
  const at::Tensor upper = upper_in ? upper_in->contiguous() : at::Tensor();
  const dim3 grid = gpu::row_grid(rows);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "r2et_fast_projected_step_cuda", [&] {
    const scalar_t* lo = lower.defined() ? lower.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* hi = upper.defined() ? upper.const_data_ptr<scalar_t>() : nullptr;
    projected_step_kernel<scalar_t><<<grid, kRowThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), d.const_data_ptr<scalar_t>(), x0.const_data_ptr<scalar_t>(),
        lo, hi, n, alpha, eps, spec.step_l2, spec.ball_l2, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) { m.impl("projected_step", &projected_step_cuda); }

}  // namespace r2et_fast
