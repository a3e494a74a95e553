// CPU kernel of the fused MLP objective (docs/spec.md §3; the formulas are derived in
// r2et_fast/reference/fused.py, whose twin this is). Unlike the device-independent driver of
// csrc/ops/fused_mlp.h (ATen calls per layer, used on CUDA), every per-row pass here runs on blocks
// of rows held in cache, with no tensor op per layer:
//   phase 1 (blocks in parallel): forward and backward passes at x, the task loss, the point
//           x + kappa v and its passes, the per-row Hessian norm and |g| for G_k;
//   between: the batch means, the (adaptive) weights, G_k and its backward (the pair-gap op);
//   phase 2 (blocks in parallel): the adjoint of each point's passes, per row;
//   phase 3: each Linear layer's weight gradient as ONE matrix product over all rows of both
//           points (the only cross-row sums), its bias gradient as column sums.
// Per layer index i (width w_i) the rows of both points live in two stacked buffers,
//   L[i] = [delta^x; ubar^x; delta^s; ubar^s]   and   R[i] = [bar^x; u^x; bar^s; u^s]
// (u: values, delta: the backward pass (delta_0 = g), bar: the adjoint of delta, ubar: the adjoint
// of u), so the weight gradient of the Linear layer i -> i + 1 is L[i + 1]^T R[i].
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/fused_net.h"
#include "cpu/row_math.h"
#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace {

using fused::Score;

constexpr int64_t kBlock = 32;  // rows per task: a block's buffers stay in L1/L2

template <typename T>
fused::Result run(const at::Tensor& x_t, const at::Tensor& y_t, const std::vector<at::Tensor>& weights,
                  const std::vector<at::Tensor>& biases, at::IntArrayRef kinds, at::ArrayRef<double> params,
                  const fused::Options& o) {
  const int64_t batch = x_t.size(0), n = x_t.size(1), m = static_cast<int64_t>(kinds.size());
  const auto opt = x_t.options();
  const int64_t segs = o.with_hessian ? 4 : 2, points = segs / 2;
  cpu::Net<T> net{o.score, batch};
  net.build(x_t, y_t, weights, biases, kinds, params, segs, points);
  std::vector<double> loss_rows(batch), hess_rows(batch, 0.0);
  at::Tensor maps = o.with_gap ? at::empty({batch, n}, opt) : at::Tensor();
  const int64_t blocks = (batch + kBlock - 1) / kBlock;
  const T step = static_cast<T>(o.kappa / std::sqrt(static_cast<double>(n)));  // v = sign(g) / sqrt(n)
  std::atomic<bool> finite{true};

  const int64_t ld0 = net.ld[0], ldm = net.ld[m];
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> p(net.classes);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlock, rows = std::min(kBlock, batch - r0);
      if (!row_finite(net.x + r0 * n, rows * n)) finite = false;
      T* x0 = net.row(net.R, 0, 1, r0);
      cpu::copy_padded(net.x + r0 * n, rows, n, x0, ld0);
      net.passes(0, r0, rows, p.data());
      const T* z = net.row(net.R, m, 1, r0);
      T* dz = net.row(net.L, m, 1, r0);
      for (int64_t r = 0; r < rows; ++r) {
        loss_rows[r0 + r] = cpu::task_loss(z + r * ldm, net.classes, net.y[r0 + r], 1.0 / batch, p.data(),
                                           dz + r * ldm);
        std::fill(dz + r * ldm + net.classes, dz + (r + 1) * ldm, T(0));
      }
      const T* g = net.row(net.L, 0, 0, r0);
      if (o.with_hessian) {
        T* xs = net.row(net.R, 0, 3, r0);
        for (int64_t e = 0; e < rows * ld0; ++e) {  // padding: x0's zeros, g's zeros
          const T s = g[e] > 0 ? T(1) : g[e] < 0 ? T(-1) : T(0);
          xs[e] = x0[e] + step * s;
        }
        net.passes(1, r0, rows, p.data());
        const T* gs = net.row(net.L, 0, 2, r0);
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0;
          for (int64_t c = 0; c < n; ++c) {
            const double d = static_cast<double>(gs[r * ld0 + c]) - static_cast<double>(g[r * ld0 + c]);
            s += d * d;
          }
          hess_rows[r0 + r] = std::sqrt(s) / o.kappa;
        }
      }
      if (o.with_gap) {
        T* mp = maps.mutable_data_ptr<T>() + r0 * n;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < n; ++c) mp[r * n + c] = std::abs(g[r * ld0 + c]);
      }
    }
  });
  if (!finite) raise_non_finite("x");

  double ce = 0, hess = 0, gap = 0;
  for (int64_t r = 0; r < batch; ++r) ce += loss_rows[r], hess += hess_rows[r];
  ce /= batch;
  hess /= batch;
  const double w_h = o.with_hessian ? fused::weight_value(o.lambda_hess, ce, hess, o.adaptive) : 0.0;
  double w_g = 0;
  at::Tensor gap_grad;
  if (o.with_gap) {
    auto [per_row, hi, lo] = fused::pair_gap(maps, o);
    const T* pr = per_row.const_data_ptr<T>();
    for (int64_t r = 0; r < batch; ++r) gap += pr[r];
    gap /= batch * o.pair_count;
    w_g = fused::weight_value(o.lambda_gap, ce, gap, o.adaptive);
    gap_grad = fused::pair_gap_backward(at::full({batch}, -w_g / (batch * o.pair_count), opt), maps, hi, lo, o)
                   .contiguous();
  }
  const double loss = ce + w_h * hess - w_g * gap;

  const bool want_input = o.input_grad;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> p(net.classes);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlock, rows = std::min(kBlock, batch - r0);
      const T* g = net.row(net.L, 0, 0, r0);
      T* bar = net.row(net.R, 0, 0, r0);
      std::fill(bar, bar + rows * ld0, T(0));
      if (o.with_hessian) {
        const T* gs = net.row(net.L, 0, 2, r0);
        T* bar_s = net.row(net.R, 0, 2, r0);
        std::fill(bar_s, bar_s + rows * ld0, T(0));
        for (int64_t r = 0; r < rows; ++r) {
          // d H_r / d g_s = d / (kappa |d|) = - d H_r / d g, d = g_s - g; 0 at d = 0
          const double nrm = hess_rows[r0 + r] * o.kappa;
          const double f = nrm > 0 ? w_h / (batch * o.kappa * nrm) : 0.0;
          for (int64_t c = 0; c < n; ++c) {
            const int64_t e = r * ld0 + c;
            const double d = static_cast<double>(gs[e]) - static_cast<double>(g[e]);
            bar_s[e] = static_cast<T>(f * d);
            bar[e] = static_cast<T>(-f * d);
          }
        }
      }
      if (o.with_gap) {
        const T* gg = gap_grad.const_data_ptr<T>() + r0 * n;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < n; ++c) {
            const T gv = g[r * ld0 + c], d = gg[r * n + c];
            bar[r * ld0 + c] += gv > 0 ? d : gv < 0 ? -d : T(0);
          }
      }
      net.adjoint(0, r0, rows, want_input, p.data());
      if (o.with_hessian) net.adjoint(1, r0, rows, false, p.data());
    }
  });

  std::vector<at::Tensor> gw, gb;
  for (int64_t i = 0; i < m; ++i) {
    if (kinds[i] != fused::kLinear) continue;
    const int64_t l = net.lin[i], out = net.width[i + 1], rows = segs * batch;
    // the real columns of the stacked buffers (their padding is not part of the product)
    const at::Tensor left = net.L[i + 1].as_strided({rows, out}, {net.ld[i + 1], 1});
    const at::Tensor right = net.R[i].as_strided({rows, net.width[i]}, {net.ld[i], 1});
    gw.push_back(at::mm(left.t(), right));
    if (net.b[l].empty()) {
      gb.push_back(at::empty({0}, opt));
      continue;
    }
    std::vector<double> acc(out, 0.0);
    for (int64_t s = 1; s < segs; s += 2)
      for (int64_t r = 0; r < batch; ++r) {
        const T* u = net.row(net.L, i + 1, s, r);
        for (int64_t c = 0; c < out; ++c) acc[c] += u[c];
      }
    at::Tensor bias_grad = at::empty({out}, opt);
    T* bg = bias_grad.mutable_data_ptr<T>();
    for (int64_t c = 0; c < out; ++c) bg[c] = static_cast<T>(acc[c]);
    gb.push_back(bias_grad);
  }
  at::Tensor gx = want_input ? net.L[0].narrow(0, batch, batch).narrow(1, 0, n).clone(at::MemoryFormat::Contiguous) : at::empty({0}, opt);
  at::Tensor parts = at::empty({3}, opt);
  T* pp = parts.mutable_data_ptr<T>();
  pp[0] = static_cast<T>(ce);
  pp[1] = static_cast<T>(o.with_hessian ? hess : 0.0);
  pp[2] = static_cast<T>(o.with_gap ? gap : 0.0);
  return {at::scalar_tensor(loss, opt), parts, gw, gb, gx};
}

fused::Result fused_mlp_objective_cpu(const at::Tensor& x_in, const at::Tensor& y_in, at::TensorList weights_in,
                                      at::TensorList biases_in, at::IntArrayRef layers,
                                      at::ArrayRef<double> layer_params, c10::string_view score, int64_t k,
                                      c10::string_view pairs, c10::string_view transform, int64_t n_pairs,
                                      double pair_count, double kappa, double lambda_gap,
                                      double lambda_hess, bool with_gap, bool with_hessian, bool adaptive,
                                      bool input_grad) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t classes = fused::check_network(x_in, y_in, weights_in, biases_in, layers, layer_params);
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const fused::Options o = fused::make_options(x.size(1), score, k, pairs, transform, n_pairs, pair_count, kappa,
                                               lambda_gap, lambda_hess, with_gap, with_hessian, adaptive,
                                               input_grad);
  cpu::check_labels(y, classes, "y");
  const auto weights = fused::contiguous_all(weights_in), biases = fused::contiguous_all(biases_in);
  fused::Result out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_mlp_objective_cpu", [&] {
    out = run<scalar_t>(x, y, weights, biases, layers, layer_params, o);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) { m.impl("fused_mlp_objective", &fused_mlp_objective_cpu); }

}  // namespace r2et_fast
