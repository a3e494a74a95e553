// CPU kernel of the fused MLP objective: the driver of csrc/ops/fused_mlp.h (ATen matmuls) with
// hand-written elementwise loops. An activation's value and both derivatives come from one pass
// over its input (one exp per element for softplus), and the score's derivatives from one pass per
// row (softmax accumulated in double). Conventions at the kinks are PyTorch's own (see
// r2et_fast/reference/_fused_math.py), so the twin and autograd's double backprop agree exactly.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cpu/row_math.h"
#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace {

using fused::Score;

constexpr int64_t kGrain = 16384;  // elements per parallel task

// Softmax of one row of C values into p (double), returning log-sum-exp.
template <typename T>
double softmax_row(const T* z, int64_t c, double* p) {
  double hi = z[0];
  for (int64_t j = 1; j < c; ++j) hi = std::max(hi, static_cast<double>(z[j]));
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += (p[j] = std::exp(static_cast<double>(z[j]) - hi));
  for (int64_t j = 0; j < c; ++j) p[j] /= s;
  return hi + std::log(s);
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

struct CpuElementwise {
  static void activation(const at::Tensor& u, int64_t kind, double p0, double p1, const at::Tensor& out,
                         const at::Tensor& d1, const at::Tensor& d2) {
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "fused_mlp_activation_cpu", [&] {
      const scalar_t* in = u.const_data_ptr<scalar_t>();
      scalar_t* o = out.mutable_data_ptr<scalar_t>();
      scalar_t* a = d1.mutable_data_ptr<scalar_t>();
      scalar_t* b = d2.defined() ? d2.mutable_data_ptr<scalar_t>() : nullptr;
      const scalar_t slope = static_cast<scalar_t>(p0);
      at::parallel_for(0, u.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e) {
          const scalar_t v = in[e];
          switch (kind) {
            case fused::kRelu:  // sigma'(0) = 0, as threshold_backward
              o[e] = v > 0 ? v : scalar_t(0);
              a[e] = v > 0 ? scalar_t(1) : scalar_t(0);
              break;
            case fused::kLeakyRelu:  // sigma'(0) = slope, as leaky_relu_backward
              o[e] = v > 0 ? v : v * slope;
              a[e] = v > 0 ? scalar_t(1) : slope;
              break;
            case fused::kSoftplus: {  // linear where beta u > threshold; sigma'' masked by beta u < t
              const double bu = static_cast<double>(v) * p0;
              const double s = sigmoid(bu);
              o[e] = bu > p1 ? v : static_cast<scalar_t>(std::log1p(std::exp(bu)) / p0);
              a[e] = bu > p1 ? scalar_t(1) : static_cast<scalar_t>(s);
              b[e] = bu < p1 ? static_cast<scalar_t>(p0 * s * (1 - s)) : scalar_t(0);
              break;
            }
            default: {  // tanh
              const scalar_t t = std::tanh(v);
              const scalar_t d = 1 - t * t;
              o[e] = t;
              a[e] = d;
              b[e] = -2 * t * d;
            }
          }
        }
      });
    });
  }

  // Per row: s'(z). C >= 2: logit e_y, prob p_y (e_y - p), loss p - e_y; C = 1 (s = sigmoid z):
  // logit 1, prob s (1 - s), loss s - y.
  static void score_gradient(const at::Tensor& z, const at::Tensor& y, Score score,
                             const at::Tensor& ds) {
    rowwise(z, y, [&](auto* zr, int64_t c, int64_t label, double* p,
                                                       int64_t r) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(zr)>>;
      T* out = ds.mutable_data_ptr<T>() + r * c;
      if (c == 1) {
        const double s = sigmoid(zr[0]);
        out[0] = static_cast<T>(score == Score::kLogit ? 1.0 : score == Score::kProb ? s * (1 - s)
                                                                                      : s - label);
        return;
      }
      if (score == Score::kLogit) {
        for (int64_t j = 0; j < c; ++j) out[j] = static_cast<T>(j == label);
        return;
      }
      softmax_row(zr, c, p);
      const double py = p[label];
      for (int64_t j = 0; j < c; ++j) {
        const double e = j == label ? 1.0 : 0.0;
        out[j] = static_cast<T>(score == Score::kProb ? py * (e - p[j]) : p[j] - e);
      }
    });
  }

  // Per row: s''(z) w. C >= 2 (pw = p . w): loss p (w - pw); prob p_y (w_y - pw)(e_y - p) -
  // p_y p (w - pw). C = 1: prob s (1 - s)(1 - 2 s) w, loss s (1 - s) w.
  static void score_hvp(const at::Tensor& z, const at::Tensor& y, Score score, const at::Tensor& w,
                        const at::Tensor& out) {
    const at::Tensor wc = w.contiguous();
    rowwise(z, y, [&](auto* zr, int64_t c, int64_t label, double* p, int64_t r) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(zr)>>;
      const T* wr = wc.const_data_ptr<T>() + r * c;
      T* o = out.mutable_data_ptr<T>() + r * c;
      if (c == 1) {
        const double s = sigmoid(zr[0]), d = s * (1 - s);
        o[0] = static_cast<T>((score == Score::kProb ? d * (1 - 2 * s) : d) * wr[0]);
        return;
      }
      softmax_row(zr, c, p);
      double pw = 0;
      for (int64_t j = 0; j < c; ++j) pw += p[j] * wr[j];
      const double py = p[label], wy = wr[label];
      for (int64_t j = 0; j < c; ++j) {
        const double centred = p[j] * (wr[j] - pw);
        o[j] = static_cast<T>(score == Score::kLoss
                                  ? centred
                                  : py * (wy - pw) * ((j == label ? 1.0 : 0.0) - p[j]) - py * centred);
      }
    });
  }

  // Per row: cross-entropy lse(z) - z_y and its gradient p - e_y; C = 1: BCE-with-logits
  // max(z, 0) - z y + log1p(exp(-|z|)) and sigmoid(z) - y.
  static void task_loss(const at::Tensor& z, const at::Tensor& y, const at::Tensor& rows,
                        const at::Tensor& dz) {
    rowwise(z, y, [&](auto* zr, int64_t c, int64_t label, double* p, int64_t r) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(zr)>>;
      T* d = dz.mutable_data_ptr<T>() + r * c;
      T* l = rows.mutable_data_ptr<T>() + r;
      if (c == 1) {
        const double v = zr[0];
        *l = static_cast<T>(std::max(v, 0.0) - v * label + std::log1p(std::exp(-std::abs(v))));
        d[0] = static_cast<T>(sigmoid(v) - label);
        return;
      }
      const double lse = softmax_row(zr, c, p);
      *l = static_cast<T>(lse - static_cast<double>(zr[label]));
      for (int64_t j = 0; j < c; ++j) d[j] = static_cast<T>(p[j] - (j == label ? 1.0 : 0.0));
    });
  }

  // fn(z_row, C, label, scratch (C doubles), row) for every row, in parallel.
  template <typename F>
  static void rowwise(const at::Tensor& z_in, const at::Tensor& y_in, F fn) {
    const at::Tensor z = z_in.contiguous(), y = y_in.contiguous();
    const int64_t batch = z.size(0), c = z.size(1);
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "fused_mlp_rows_cpu", [&] {
      const scalar_t* zp = z.const_data_ptr<scalar_t>();
      const int64_t* yp = y.const_data_ptr<int64_t>();
      at::parallel_for(0, batch, grain_rows(c), [&](int64_t begin, int64_t end) {
        std::vector<double> scratch(c);
        for (int64_t r = begin; r < end; ++r) fn(zp + r * c, c, yp[r], scratch.data(), r);
      });
    });
  }
};

fused::Result fused_mlp_objective_cpu(const at::Tensor& x, const at::Tensor& y, at::TensorList weights,
                                      at::TensorList biases, at::IntArrayRef layers,
                                      at::ArrayRef<double> layer_params, c10::string_view score, int64_t k,
                                      c10::string_view pairs, c10::string_view transform, int64_t n_pairs,
                                      double pair_count, double kappa, double lambda_gap,
                                      double lambda_hess, bool with_gap, bool with_hessian, bool adaptive,
                                      bool input_grad) {
  return fused::objective<CpuElementwise>(x, y, weights, biases, layers, layer_params, score, k, pairs,
                                          transform, n_pairs, pair_count, kappa, lambda_gap, lambda_hess,
                                          with_gap, with_hessian, adaptive, input_grad);
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) { m.impl("fused_mlp_objective", &fused_mlp_objective_cpu); }

}  // namespace r2et_fast
