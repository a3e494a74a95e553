// CPU kernels of the fused MLP saliency: the forward and backward passes of csrc/cpu/fused_net.h at
// x alone, blocks of rows in parallel. fused_mlp_saliency gives the logits and g = ds/dx without an
// autograd graph (evaluation, thickness, metrics); fused_mlp_saliency_vjp the input gradient of
// <grad, g(x)> by the adjoint of those passes (the attacks' step, no double backprop).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "cpu/fused_net.h"
#include "cpu/row_math.h"
#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace {

constexpr int64_t kBlock = 32;

template <typename T>
void run(const at::Tensor& x, bool predict, const std::vector<at::Tensor>& weights,
         const std::vector<at::Tensor>& biases, at::IntArrayRef layers, at::ArrayRef<double> params,
         fused::Score score, const at::Tensor& y, const at::Tensor& logits, const at::Tensor& grad) {
  const int64_t batch = x.size(0), n = x.size(1), m = static_cast<int64_t>(layers.size());
  cpu::Net<T> net{score, batch};
  net.build(x, y, weights, biases, layers, params, 2, 1);
  int64_t* labels = y.mutable_data_ptr<int64_t>();
  const int64_t c = net.classes, ld0 = net.ld[0], ldm = net.ld[m];
  T* zo = logits.mutable_data_ptr<T>();
  T* go = grad.mutable_data_ptr<T>();
  std::atomic<bool> finite{true};
  at::parallel_for(0, (batch + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> p(c);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlock, rows = std::min(kBlock, batch - r0);
      if (!row_finite(net.x + r0 * n, rows * n)) finite = false;
      cpu::copy_padded(net.x + r0 * n, rows, n, net.row(net.R, 0, 1, r0), ld0);
      net.forward(0, r0, rows);
      const T* z = net.row(net.R, m, 1, r0);
      for (int64_t r = 0; r < rows; ++r) {
        const T* zr = z + r * ldm;
        std::copy(zr, zr + c, zo + (r0 + r) * c);
        if (!predict) continue;
        int64_t best = 0;  // the first maximum, as torch.argmax
        for (int64_t j = 1; j < c; ++j) best = zr[j] > zr[best] ? j : best;
        labels[r0 + r] = c == 1 ? (zr[0] > 0 ? 1 : 0) : best;
      }
      net.backward(0, r0, rows, p.data());
      const T* g = net.row(net.L, 0, 0, r0);
      for (int64_t r = 0; r < rows; ++r) std::copy(g + r * ld0, g + r * ld0 + n, go + (r0 + r) * n);
    }
  });
  if (!finite) raise_non_finite("x");
}

fused::SaliencyResult fused_mlp_saliency_cpu(const at::Tensor& x_in, const at::Tensor& target, bool predict,
                                             at::TensorList weights_in, at::TensorList biases_in,
                                             at::IntArrayRef layers, at::ArrayRef<double> layer_params,
                                             c10::string_view score) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t classes = fused::check_saliency(x_in, target, weights_in, biases_in, layers, layer_params);
  const fused::Score s = fused::parse_score(score);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = target.contiguous().clone();
  if (!predict) cpu::check_labels(y, classes, "target");
  const auto weights = fused::contiguous_all(weights_in), biases = fused::contiguous_all(biases_in);
  at::Tensor logits = at::empty({x.size(0), classes}, x.options()), grad = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_mlp_saliency_cpu", [&] {
    run<scalar_t>(x, predict, weights, biases, layers, layer_params, s, y, logits, grad);
  });
  return {logits, grad, y};
}

// d <grad, g(x)> / dx for the explained class target: the adjoint of the passes seeded with grad
// at g (and nothing at the logits), rows independent.
template <typename T>
void run_vjp(const at::Tensor& x, const at::Tensor& y, const at::Tensor& grad, const std::vector<at::Tensor>& weights,
             const std::vector<at::Tensor>& biases, at::IntArrayRef layers, at::ArrayRef<double> params,
             fused::Score score, const at::Tensor& out) {
  const int64_t batch = x.size(0), n = x.size(1), m = static_cast<int64_t>(layers.size());
  cpu::Net<T> net{score, batch};
  net.build(x, y, weights, biases, layers, params, 2, 1);
  const int64_t ld0 = net.ld[0], ldm = net.ld[m];
  const T* gp = grad.const_data_ptr<T>();
  T* op = out.mutable_data_ptr<T>();
  std::atomic<bool> finite_x{true}, finite_grad{true};
  at::parallel_for(0, (batch + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> p(net.classes);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlock, rows = std::min(kBlock, batch - r0);
      if (!row_finite(net.x + r0 * n, rows * n)) finite_x = false;
      if (!row_finite(gp + r0 * n, rows * n)) finite_grad = false;
      cpu::copy_padded(net.x + r0 * n, rows, n, net.row(net.R, 0, 1, r0), ld0);
      cpu::copy_padded(gp + r0 * n, rows, n, net.row(net.R, 0, 0, r0), ld0);
      net.passes(0, r0, rows, p.data());
      T* zbar = net.row(net.L, m, 1, r0);
      std::fill(zbar, zbar + rows * ldm, T(0));
      net.adjoint(0, r0, rows, true, p.data());
      const T* xbar = net.row(net.L, 0, 1, r0);
      for (int64_t r = 0; r < rows; ++r) std::copy(xbar + r * ld0, xbar + r * ld0 + n, op + (r0 + r) * n);
    }
  });
  if (!finite_x) raise_non_finite("x");
  if (!finite_grad) raise_non_finite("grad");
}

at::Tensor fused_mlp_saliency_vjp_cpu(const at::Tensor& x_in, const at::Tensor& target, const at::Tensor& grad_in,
                                      at::TensorList weights_in, at::TensorList biases_in, at::IntArrayRef layers,
                                      at::ArrayRef<double> layer_params, c10::string_view score) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t classes = fused::check_saliency(x_in, target, weights_in, biases_in, layers, layer_params);
  fused::check_vjp_grad(grad_in, x_in);
  const fused::Score s = fused::parse_score(score);
  const at::Tensor x = x_in.contiguous(), y = target.contiguous(), grad = grad_in.contiguous();
  cpu::check_labels(y, classes, "target");
  const auto weights = fused::contiguous_all(weights_in), biases = fused::contiguous_all(biases_in);
  at::Tensor out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_mlp_saliency_vjp_cpu", [&] {
    run_vjp<scalar_t>(x, y, grad, weights, biases, layers, layer_params, s, out);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) {
  m.impl("fused_mlp_saliency", &fused_mlp_saliency_cpu);
  m.impl("fused_mlp_saliency_vjp", &fused_mlp_saliency_vjp_cpu);
}

}  // namespace r2et_fast
