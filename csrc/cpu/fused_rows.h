// Elementwise pieces of the CPU fused MLP kernel, on raw rows (see fused_mlp_kernel.cpp).
// Conventions at the kinks are PyTorch's own (r2et_fast/reference/_fused_math.py), so the twin and
// autograd's double backprop agree exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace cpu {

inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// out = sigma(u), d1 = sigma'(u), d2 = sigma''(u) (d2 unused for ReLU / LeakyReLU) over count values.
template <typename T>
void activation(int64_t kind, double p0, double p1, const T* in, T* out, T* d1, T* d2, int64_t count) {
  switch (kind) {
    case fused::kRelu:  // sigma'(0) = 0, as threshold_backward
      for (int64_t e = 0; e < count; ++e) {
        const T v = in[e];
        out[e] = v > 0 ? v : T(0);
        d1[e] = v > 0 ? T(1) : T(0);
      }
      break;
    case fused::kLeakyRelu: {  // sigma'(0) = slope, as leaky_relu_backward
      const T slope = static_cast<T>(p0);
      for (int64_t e = 0; e < count; ++e) {
        const T v = in[e];
        out[e] = v > 0 ? v : v * slope;
        d1[e] = v > 0 ? T(1) : slope;
      }
      break;
    }
    case fused::kSoftplus:  // linear where beta u > threshold; sigma'' masked by beta u < threshold
      for (int64_t e = 0; e < count; ++e) {
        const T v = in[e];
        const double bu = static_cast<double>(v) * p0, s = sigmoid(bu);
        out[e] = bu > p1 ? v : static_cast<T>(std::log1p(std::exp(bu)) / p0);
        d1[e] = bu > p1 ? T(1) : static_cast<T>(s);
        d2[e] = bu < p1 ? static_cast<T>(p0 * s * (1 - s)) : T(0);
      }
      break;
    default:  // tanh
      for (int64_t e = 0; e < count; ++e) {
        const T t = std::tanh(in[e]), d = 1 - t * t;
        out[e] = t;
        d1[e] = d;
        d2[e] = -2 * t * d;
      }
  }
}

// Softmax of one row of c values into p (double), returning log-sum-exp.
template <typename T>
double softmax_row(const T* z, int64_t c, double* p) {
  double hi = z[0];
  for (int64_t j = 1; j < c; ++j) hi = std::max(hi, static_cast<double>(z[j]));
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += (p[j] = std::exp(static_cast<double>(z[j]) - hi));
  for (int64_t j = 0; j < c; ++j) p[j] /= s;
  return hi + std::log(s);
}

// s'(z) of one row. C >= 2: logit e_y, prob p_y (e_y - p), loss p - e_y; C = 1 (s = sigmoid z):
// logit 1, prob s (1 - s), loss s - y.
template <typename T>
void score_gradient(fused::Score score, const T* z, int64_t c, int64_t y, double* p, T* out) {
  if (c == 1) {
    const double s = sigmoid(z[0]);
    out[0] = static_cast<T>(score == fused::Score::kLogit ? 1.0
                            : score == fused::Score::kProb ? s * (1 - s)
                                                           : s - static_cast<double>(y));
    return;
  }
  if (score == fused::Score::kLogit) {
    for (int64_t j = 0; j < c; ++j) out[j] = static_cast<T>(j == y);
    return;
  }
  softmax_row(z, c, p);
  const double py = p[y];
  for (int64_t j = 0; j < c; ++j) {
    const double e = j == y ? 1.0 : 0.0;
    out[j] = static_cast<T>(score == fused::Score::kProb ? py * (e - p[j]) : p[j] - e);
  }
}

// out += s''(z) w for one row (never called for the logit score). C >= 2 (pw = p . w): loss
// p (w - pw); prob p_y (w_y - pw)(e_y - p) - p_y p (w - pw). C = 1: prob s (1 - s)(1 - 2 s) w,
// loss s (1 - s) w.
template <typename T>
void add_score_hvp(fused::Score score, const T* z, int64_t c, int64_t y, const T* w, double* p, T* out) {
  if (c == 1) {
    const double s = sigmoid(z[0]), d = s * (1 - s);
    out[0] += static_cast<T>((score == fused::Score::kProb ? d * (1 - 2 * s) : d) * w[0]);
    return;
  }
  softmax_row(z, c, p);
  double pw = 0;
  for (int64_t j = 0; j < c; ++j) pw += p[j] * w[j];
  const double py = p[y], wy = w[y];
  for (int64_t j = 0; j < c; ++j) {
    const double centred = p[j] * (w[j] - pw);
    out[j] += static_cast<T>(score == fused::Score::kLoss
                                 ? centred
                                 : py * (wy - pw) * ((j == y ? 1.0 : 0.0) - p[j]) - py * centred);
  }
}

// Cross-entropy lse(z) - z_y of one row and scale * its gradient p - e_y into dz; C = 1:
// BCE-with-logits max(z, 0) - z y + log1p(exp(-|z|)) and scale * (sigmoid(z) - y).
template <typename T>
double task_loss(const T* z, int64_t c, int64_t y, double scale, double* p, T* dz) {
  if (c == 1) {
    const double v = z[0], label = static_cast<double>(y);
    dz[0] = static_cast<T>(scale * (sigmoid(v) - label));
    return std::max(v, 0.0) - v * label + std::log1p(std::exp(-std::abs(v)));
  }
  const double lse = softmax_row(z, c, p);
  for (int64_t j = 0; j < c; ++j) dz[j] = static_cast<T>(scale * (p[j] - (j == y ? 1.0 : 0.0)));
  return lse - static_cast<double>(z[y]);
}

}  // namespace cpu
}  // namespace r2et_fast
