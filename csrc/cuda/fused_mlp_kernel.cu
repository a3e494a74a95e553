// CUDA kernel of the fused MLP objective: the driver of csrc/ops/fused_mlp.h (cuBLAS matmuls via
// ATen, the pair-gap and Hessian-norm ops' own CUDA kernels through the dispatcher) with the
// elementwise parts as small kernels, the semantics of csrc/cpu/fused_rows.h:
//   activations: one thread per element, value and both derivatives in one pass;
//   score derivatives and task loss: one thread per row, softmax accumulated in double (C is the
//   number of classes: small, so a row loop per thread is enough).
// Unverified on a GPU so far: scripts/cuda_check.py compares it with the CPU kernel where one exists.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "ops/fused_attack.h"
#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace {

using fused::Score;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 1 << 20));
}

__device__ inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

template <typename T>
__global__ void activation_kernel(const T* u, int64_t total, int64_t kind, double p0, double p1, T* out,
                                  T* d1, T* d2) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T v = u[e];
    if (kind == fused::kRelu) {  // sigma'(0) = 0, as threshold_backward
      out[e] = v > T(0) ? v : T(0);
      d1[e] = v > T(0) ? T(1) : T(0);
    } else if (kind == fused::kLeakyRelu) {  // sigma'(0) = slope, as leaky_relu_backward
      out[e] = v > T(0) ? v : static_cast<T>(v * p0);
      d1[e] = v > T(0) ? T(1) : static_cast<T>(p0);
    } else if (kind == fused::kSoftplus) {  // linear where beta u > threshold; sigma'' where < t
      const double bu = static_cast<double>(v) * p0;
      const double s = sigmoid(bu);
      out[e] = bu > p1 ? v : static_cast<T>(log1p(exp(bu)) / p0);
      d1[e] = bu > p1 ? T(1) : static_cast<T>(s);
      d2[e] = bu < p1 ? static_cast<T>(p0 * s * (1 - s)) : T(0);
    } else {  // tanh
      const T t = tanh(v);
      const T d = T(1) - t * t;
      out[e] = t;
      d1[e] = d;
      d2[e] = T(-2) * t * d;
    }
  }
}

// Max and sum of exp(z - max) of one row: p_j = exp(z_j - hi) / s.
template <typename T>
__device__ void softmax_stats(const T* z, int64_t c, double& hi, double& s) {
  hi = z[0];
  for (int64_t j = 1; j < c; ++j) hi = fmax(hi, static_cast<double>(z[j]));
  s = 0;
  for (int64_t j = 0; j < c; ++j) s += exp(static_cast<double>(z[j]) - hi);
}

enum class RowJob { kGradient, kHvp, kTaskLoss };

// One thread per row; the formulas of csrc/cpu/fused_rows.h.
template <typename T>
__global__ void row_kernel(RowJob job, const T* z, const int64_t* y, int64_t rows, int64_t c, Score score,
                           const T* w, T* out, T* loss) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  const T* zr = z + r * c;
  T* o = out + r * c;
  const int64_t label = y[r];
  if (c == 1) {
    const double v = zr[0], s = sigmoid(v), d = s * (1 - s);
    if (job == RowJob::kGradient)
      o[0] = static_cast<T>(score == Score::kLogit ? 1.0 : score == Score::kProb ? d : s - label);
    else if (job == RowJob::kHvp)
      o[0] = static_cast<T>((score == Score::kProb ? d * (1 - 2 * s) : d) * static_cast<double>(w[r]));
    else {
      loss[r] = static_cast<T>(fmax(v, 0.0) - v * label + log1p(exp(-fabs(v))));
      o[0] = static_cast<T>(s - label);
    }
    return;
  }
  if (job == RowJob::kGradient && score == Score::kLogit) {
    for (int64_t j = 0; j < c; ++j) o[j] = static_cast<T>(j == label);
    return;
  }
  double hi, s;
  softmax_stats(zr, c, hi, s);
  const double py = exp(static_cast<double>(zr[label]) - hi) / s;
  if (job == RowJob::kTaskLoss) loss[r] = static_cast<T>(hi + log(s) - static_cast<double>(zr[label]));
  if (job != RowJob::kHvp) {
    for (int64_t j = 0; j < c; ++j) {
      const double p = exp(static_cast<double>(zr[j]) - hi) / s, e = j == label ? 1.0 : 0.0;
      o[j] = static_cast<T>(job == RowJob::kGradient && score == Score::kProb ? py * (e - p) : p - e);
    }
    return;
  }
  const T* wr = w + r * c;
  double pw = 0;
  for (int64_t j = 0; j < c; ++j) pw += exp(static_cast<double>(zr[j]) - hi) / s * static_cast<double>(wr[j]);
  const double wy = wr[label];
  for (int64_t j = 0; j < c; ++j) {
    const double p = exp(static_cast<double>(zr[j]) - hi) / s;
    const double centred = p * (static_cast<double>(wr[j]) - pw);
    o[j] = static_cast<T>(score == Score::kLoss ? centred
                                                : py * (wy - pw) * ((j == label ? 1.0 : 0.0) - p) - py * centred);
  }
}

void launch_rows(RowJob job, const at::Tensor& z_in, const at::Tensor& y_in, Score score,
                 const at::Tensor& w_in, const at::Tensor& out, const at::Tensor& loss) {
  const at::Tensor z = z_in.contiguous(), y = y_in.contiguous();
  const at::Tensor w = w_in.defined() ? w_in.contiguous() : w_in;
  const int64_t rows = z.size(0), c = z.size(1);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "r2et_fast_fused_mlp_rows_cuda", [&] {
    row_kernel<scalar_t><<<blocks_for(rows), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        job, z.const_data_ptr<scalar_t>(), y.const_data_ptr<int64_t>(), rows, c, score,
        w.defined() ? w.const_data_ptr<scalar_t>() : nullptr, out.mutable_data_ptr<scalar_t>(),
        loss.defined() ? loss.mutable_data_ptr<scalar_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

struct CudaElementwise {
  static void activation(const at::Tensor& u_in, int64_t kind, double p0, double p1, const at::Tensor& out,
                         const at::Tensor& d1, const at::Tensor& d2) {
    const at::Tensor u = u_in.contiguous();
    const int64_t total = u.numel();
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "r2et_fast_fused_mlp_activation_cuda", [&] {
      activation_kernel<scalar_t><<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          u.const_data_ptr<scalar_t>(), total, kind, p0, p1, out.mutable_data_ptr<scalar_t>(),
          d1.mutable_data_ptr<scalar_t>(), d2.defined() ? d2.mutable_data_ptr<scalar_t>() : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }

  static void score_gradient(const at::Tensor& z, const at::Tensor& y, Score score, const at::Tensor& ds) {
    launch_rows(RowJob::kGradient, z, y, score, at::Tensor(), ds, at::Tensor());
  }

  static void score_hvp(const at::Tensor& z, const at::Tensor& y, Score score, const at::Tensor& w,
                        const at::Tensor& out) {
    launch_rows(RowJob::kHvp, z, y, score, w, out, at::Tensor());
  }

  static void task_loss(const at::Tensor& z, const at::Tensor& y, const at::Tensor& rows, const at::Tensor& dz) {
    launch_rows(RowJob::kTaskLoss, z, y, Score::kLoss, at::Tensor(), dz, rows);
  }
};

fused::Result fused_mlp_objective_cuda(const at::Tensor& x, const at::Tensor& y, at::TensorList weights,
                                       at::TensorList biases, at::IntArrayRef layers,
                                       at::ArrayRef<double> layer_params, c10::string_view score, int64_t k,
                                       c10::string_view pairs, c10::string_view transform, int64_t n_pairs,
                                       double pair_count, double kappa, double lambda_gap,
                                       double lambda_hess, bool with_gap, bool with_hessian, bool adaptive,
                                       bool input_grad) {
  const c10::cuda::CUDAGuard guard(x.device());
  return fused::objective<CudaElementwise>(x, y, weights, biases, layers, layer_params, score, k, pairs,
                                           transform, n_pairs, pair_count, kappa, lambda_gap, lambda_hess,
                                           with_gap, with_hessian, adaptive, input_grad);
}

}  // namespace

fused::SaliencyResult fused_mlp_saliency_cuda(const at::Tensor& x, const at::Tensor& target, bool predict,
                                              at::TensorList weights, at::TensorList biases, at::IntArrayRef layers,
                                              at::ArrayRef<double> layer_params, c10::string_view score) {
  return fused::saliency<CudaElementwise>(x, target, predict, weights, biases, layers, layer_params, score);
}

at::Tensor fused_mlp_saliency_vjp_cuda(const at::Tensor& x, const at::Tensor& target, const at::Tensor& grad,
                                       at::TensorList weights, at::TensorList biases, at::IntArrayRef layers,
                                       at::ArrayRef<double> layer_params, c10::string_view score) {
  return fused::saliency_vjp<CudaElementwise>(x, target, grad, weights, biases, layers, layer_params, score);
}

fused::AttackResult fused_mlp_attack_cuda(const at::Tensor& x0, const at::Tensor& x_start, const at::Tensor& target,
                                          const at::Tensor& pred0, const at::Tensor& clean, const at::Tensor& hi,
                                          const at::Tensor& lo, const std::optional<at::Tensor>& lower,
                                          const std::optional<at::Tensor>& upper, const at::Tensor& probe,
                                          at::TensorList weights, at::TensorList biases, at::IntArrayRef layers,
                                          at::ArrayRef<double> layer_params, c10::string_view score, bool abs,
                                          c10::string_view objective, c10::string_view pairs,
                                          c10::string_view transform, int64_t k, double eps, double alpha,
                                          int64_t steps, c10::string_view norm, c10::string_view step_norm,
                                          bool early_stop) {
  const c10::cuda::CUDAGuard guard(x0.device());
  return fused::attack_loop<CudaElementwise>(x0, x_start, target, pred0, clean, hi, lo, lower, upper, probe,
                                             weights, biases, layers, layer_params, score, abs, objective, pairs,
                                             transform, k, eps, alpha, steps, norm, step_norm, early_stop);
}

TORCH_LIBRARY_IMPL(r2et_fast, CUDA, m) {
  m.impl("fused_mlp_attack", &fused_mlp_attack_cuda);
  m.impl("fused_mlp_objective", &fused_mlp_objective_cuda);
  m.impl("fused_mlp_saliency", &fused_mlp_saliency_cuda);
  m.impl("fused_mlp_saliency_vjp", &fused_mlp_saliency_vjp_cuda);
}

}  // namespace r2et_fast
