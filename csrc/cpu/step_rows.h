// The attacks' projected step on one row (csrc/cpu/projected_step_kernel.cpp has the formula),
// shared by that kernel and the fused attack loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace r2et_fast {
namespace cpu {

// o = clamp(x0 + proj_ball(x - alpha * normalise(d) - x0), lo, hi) for n values (lo/hi may be
// null). One pass for the step norm, one for the ball norm, one to write; o must not alias x, d
// or x0 (it holds the offset in between).
template <typename T>
void projected_step_row(const T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ x0,
                        const T* __restrict__ lo, const T* __restrict__ hi, int64_t n, double alpha, double eps,
                        bool step_l2, bool ball_l2, T* __restrict__ o) {
  double step_scale = alpha;  // l2: alpha / ||d||
  if (step_l2) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(d[i]) * d[i];
    step_scale = s > 0 ? alpha / std::sqrt(s) : 0.0;
  }
  double ball = 0;  // squared l2 norm of the new offset
  for (int64_t i = 0; i < n; ++i) {
    const double di = d[i];
    const double step = step_l2 ? step_scale * di : alpha * ((di > 0) - (di < 0));
    double delta = static_cast<double>(x[i]) - step - static_cast<double>(x0[i]);
    if (!ball_l2) delta = std::min(std::max(delta, -eps), eps);
    ball += delta * delta;
    o[i] = static_cast<T>(delta);  // offset for now
  }
  const double shrink = ball_l2 && ball > eps * eps ? eps / std::sqrt(ball) : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    double v = static_cast<double>(x0[i]) + shrink * static_cast<double>(o[i]);
    if (lo) v = std::max(v, static_cast<double>(lo[i]));
    if (hi) v = std::min(v, static_cast<double>(hi[i]));
    o[i] = static_cast<T>(v);
  }
}

}  // namespace cpu
}  // namespace r2et_fast
