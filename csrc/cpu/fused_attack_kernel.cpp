// CPU kernel of the fused MLP attack loop: every step of an explanation attack (ERAttack, the MSE
// attack, the top-k attack, PGD on attributions) for a whole batch in one call, the maps' input
// gradient by the adjoint of the passes of csrc/cpu/fused_net.h (no autograd graph).
//
// Rows are independent for the whole attack, so each block of rows runs all its steps while its
// buffers stay in cache, in parallel with the other blocks. Per step and row, as the generic loop of
// r2et_fast/attacks/_iterative.py: the passes at x_t give the logits and g; the maps m = |g| (or g)
// give P@k against T_k(clean); the objective's gradient w.r.t. m, times dm/dg, seeds the adjoint,
// whose input gradient d is the step's direction; x_{t+1} is the projected step. With early stop the
// logits of step t + 1's passes decide whether x_{t+1} kept the prediction: a row that changed it
// goes back to x_t and stops (its P@k and point no longer change).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <vector>

#include "cpu/fused_net.h"
#include "cpu/pair_gap_rows.h"
#include "cpu/row_math.h"
#include "cpu/row_topk.h"
#include "cpu/step_rows.h"
#include "ops/fused_attack.h"

namespace r2et_fast {
namespace {

constexpr int64_t kBlock = 32;

using AttackResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

template <typename T>
struct Loop {
  const fused::AttackSpec& s;
  const cpu::Net<T>& net;
  int64_t batch, n;
  const T *x0, *clean, *probe, *lower, *upper;
  const int64_t *hi, *lo, *pred0;
  int64_t hi_width, lo_width;
  T *x, *x_prev, *precision, *maps;
  int64_t* steps_run;
  bool *kept, *vanished;
  std::atomic<bool>& bad_clean;
  std::atomic<bool>& bad_maps;

  int64_t predicted(const T* z) const {
    if (s.classes == 1) return z[0] > 0 ? 1 : 0;
    int64_t best = 0;  // the first maximum, as torch.argmax
    for (int64_t j = 1; j < s.classes; ++j) best = z[j] > z[best] ? j : best;
    return best;
  }

  // dG/dm of row r's objective at maps m into o (n values).
  void objective_grad(int64_t r, const T* m, T* o, std::vector<int64_t>& rest, std::vector<char>& in_top) const {
    switch (s.objective) {
      case fused::Objective::kPairGap:
        cpu::pair_gap_row_backward(m, n, hi + r * hi_width, hi_width, lo + r * lo_width, lo_width, s.pairs,
                                   s.transform, 1.0, o, rest, in_top);
        return;
      case fused::Objective::kDistance:
        for (int64_t i = 0; i < n; ++i) o[i] = T(-2) * (m[i] - clean[r * n + i]);
        return;
      case fused::Objective::kSum:
        std::fill(o, o + n, T(0));
        for (int64_t t = 0; t < hi_width; ++t) o[hi[r * hi_width + t]] += T(1);
        return;
    }
  }

  // The seed of the adjoint at g: dm/dg times w (sgn(g) w for |g|, as autograd's abs; padding zero).
  void seed(const T* g, const T* w, T* bar, int64_t ld) const {
    for (int64_t i = 0; i < n; ++i) bar[i] = s.abs ? T((g[i] > 0) - (g[i] < 0)) * w[i] : w[i];
    std::fill(bar + n, bar + ld, T(0));
  }

  void block(int64_t r0, int64_t rows) const {
    const int64_t m_layers = net.layers, ld0 = net.ld[0], ldm = net.ld[m_layers], k = s.k;
    std::vector<double> p(s.classes);
    cpu::RowTopK<T> select(n, k);
    std::vector<uint8_t> mark(n, 0);
    std::vector<int64_t> clean_top(rows * k), rest;
    std::vector<char> active(rows, 1), in_top;
    std::vector<T> m(n), w(n), step(n), dx((s.steps > 0 ? rows : 0) * n);
    for (int64_t r = 0; r < rows; ++r) {
      if (!select.select(clean + (r0 + r) * n, n)) bad_clean = true;
      else std::copy(select.idx(), select.idx() + k, clean_top.begin() + r * k);
    }
    if (bad_clean) return;
    T* zbar = net.row(net.L, m_layers, 1, r0);
    T* bar0 = net.row(net.R, 0, 0, r0);
    const T* g = net.row(net.L, 0, 0, r0);
    const T* z = net.row(net.R, m_layers, 1, r0);
    const T* d = net.row(net.L, 0, 1, r0);
    auto passes = [&] {
      cpu::copy_padded(x + r0 * n, rows, n, net.row(net.R, 0, 1, r0), ld0);
      net.passes(0, r0, rows, p.data());
    };
    auto adjoint = [&] {
      std::fill(zbar, zbar + rows * ldm, T(0));
      net.adjoint(0, r0, rows, true, p.data());
    };
    for (int64_t t = 0;; ++t) {
      passes();
      bool reverted = false;
      for (int64_t r = 0; t > 0 && r < rows; ++r) {  // did step t - 1 keep the prediction?
        if (!active[r]) continue;
        if (s.early_stop && predicted(z + r * ldm) != pred0[r0 + r]) {
          active[r] = 0;
          std::copy(x_prev + (r0 + r) * n, x_prev + (r0 + r + 1) * n, x + (r0 + r) * n);
          reverted = true;
        } else {
          ++steps_run[r0 + r];
        }
      }
      if (t == s.steps) {  // the returned point: its maps, P@k and prediction
        if (reverted) passes();
        for (int64_t r = 0; r < rows; ++r) {
          T* mr = maps + (r0 + r) * n;
          for (int64_t i = 0; i < n; ++i) mr[i] = s.abs ? std::abs(g[r * ld0 + i]) : g[r * ld0 + i];
          if (!select.select(mr, n)) bad_maps = true;
          else precision[t * batch + r0 + r] = T(cpu::overlap(clean_top.data() + r * k, select.idx(), k, mark));
          kept[r0 + r] = predicted(z + r * ldm) == pred0[r0 + r];
        }
        return;
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t at = t * batch + r0 + r;
        if (!active[r]) {  // it stays at x_t: its P@k is that of the step before
          precision[at] = precision[at - batch];
          std::fill(bar0 + r * ld0, bar0 + (r + 1) * ld0, T(0));
          continue;
        }
        const T* gr = g + r * ld0;
        for (int64_t i = 0; i < n; ++i) m[i] = s.abs ? std::abs(gr[i]) : gr[i];
        if (!select.select(m.data(), n)) {
          bad_maps = true;
          return;
        }
        precision[at] = T(cpu::overlap(clean_top.data() + r * k, select.idx(), k, mark));
        objective_grad(r0 + r, m.data(), w.data(), rest, in_top);
        seed(gr, w.data(), bar0 + r * ld0, ld0);
      }
      adjoint();
      for (int64_t r = 0; r < rows; ++r) {
        std::copy(d + r * ld0, d + r * ld0 + n, dx.begin() + r * n);
        if (active[r] && !row_finite(dx.data() + r * n, n)) {  // as the generic loop, never a NaN step
          bad_maps = true;
          return;
        }
      }
      if (t == 0) probe_vanishing(r0, rows, dx.data(), adjoint);
      for (int64_t r = 0; r < rows; ++r) {
        if (!active[r]) continue;
        T* xr = x + (r0 + r) * n;
        cpu::projected_step_row(xr, dx.data() + r * n, x0 + (r0 + r) * n, lower, upper, n, s.alpha, s.eps,
                                s.step_l2, s.ball_l2, step.data());
        if (s.early_stop) std::copy(xr, xr + n, x_prev + (r0 + r) * n);
        std::copy(step.begin(), step.end(), xr);
      }
    }
  }

  // Rows whose first direction is exactly zero: is the maps' whole input Jacobian zero? One more
  // adjoint, seeded with the fixed random combination probe of the maps (zero almost surely only
  // then), as attacks/_vanishing.py does.
  template <class Adjoint>
  void probe_vanishing(int64_t r0, int64_t rows, const T* dx, Adjoint& adjoint) const {
    const int64_t ld0 = net.ld[0];
    std::vector<char> zero(rows);
    bool any = false;
    for (int64_t r = 0; r < rows; ++r) {
      zero[r] = std::all_of(dx + r * n, dx + (r + 1) * n, [](T v) { return v == T(0); });
      any |= zero[r];
    }
    if (!any) return;
    T* bar0 = net.row(net.R, 0, 0, r0);
    const T* g = net.row(net.L, 0, 0, r0);
    std::vector<T> none(n, T(0));
    for (int64_t r = 0; r < rows; ++r)
      seed(g + r * ld0, zero[r] ? probe + (r0 + r) * n : none.data(), bar0 + r * ld0, ld0);
    adjoint();
    const T* jac = net.row(net.L, 0, 1, r0);
    for (int64_t r = 0; r < rows; ++r)
      vanished[r0 + r] = zero[r] && std::all_of(jac + r * ld0, jac + r * ld0 + n, [](T v) { return v == T(0); });
  }
};

AttackResult fused_mlp_attack_cpu(const at::Tensor& x0_in, const at::Tensor& x_start_in, const at::Tensor& target,
                                  const at::Tensor& pred0_in, const at::Tensor& clean_in, const at::Tensor& hi_in,
                                  const at::Tensor& lo_in, const std::optional<at::Tensor>& lower_in,
                                  const std::optional<at::Tensor>& upper_in, const at::Tensor& probe_in,
                                  at::TensorList weights_in, at::TensorList biases_in, at::IntArrayRef layers,
                                  at::ArrayRef<double> layer_params, c10::string_view score, bool abs,
                                  c10::string_view objective, c10::string_view pairs, c10::string_view transform,
                                  int64_t k, double eps, double alpha, int64_t steps, c10::string_view norm,
                                  c10::string_view step_norm, bool early_stop) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const fused::AttackSpec spec = fused::check_attack(
      x0_in, x_start_in, target, pred0_in, clean_in, hi_in, lo_in, lower_in, upper_in, probe_in, weights_in,
      biases_in, layers, layer_params, score, abs, objective, pairs, transform, k, eps, alpha, steps, norm,
      step_norm, early_stop);
  check_finite(x0_in, "x0");
  check_finite(x_start_in, "x_start");
  check_finite(clean_in, "clean");
  check_finite(probe_in, "probe");
  const at::Tensor x0 = x0_in.contiguous(), y = target.contiguous(), pred0 = pred0_in.contiguous();
  const at::Tensor clean = clean_in.contiguous(), probe = probe_in.contiguous();
  const at::Tensor hi = hi_in.contiguous(), lo = lo_in.contiguous();
  const at::Tensor lower = lower_in ? lower_in->contiguous() : at::Tensor();
  const at::Tensor upper = upper_in ? upper_in->contiguous() : at::Tensor();
  cpu::check_labels(y, spec.classes, "target");
  cpu::check_labels(pred0, spec.classes, "pred0");
  const auto weights = fused::contiguous_all(weights_in), biases = fused::contiguous_all(biases_in);
  const int64_t batch = x0.size(0), n = x0.size(1);
  at::Tensor x = x_start_in.contiguous().clone();
  at::Tensor x_prev = early_stop ? at::empty_like(x) : at::Tensor();
  at::Tensor precision = at::empty({steps + 1, batch}, x.options());
  at::Tensor steps_run = at::zeros({batch}, y.options());
  at::Tensor maps = at::empty_like(x);
  at::Tensor kept = at::empty({batch}, y.options().dtype(at::kBool));
  at::Tensor vanished = at::zeros({batch}, y.options().dtype(at::kBool));
  std::atomic<bool> bad_clean{false}, bad_maps{false};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_mlp_attack_cpu", [&] {
    cpu::Net<scalar_t> net{spec.score, batch};
    net.build(x0, y, weights, biases, layers, layer_params, 2, 1);
    auto ptr = [](const at::Tensor& t) { return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr; };
    const Loop<scalar_t> loop{spec, net, batch, n, ptr(x0), ptr(clean), ptr(probe), ptr(lower), ptr(upper),
                              hi.const_data_ptr<int64_t>(), lo.const_data_ptr<int64_t>(),
                              pred0.const_data_ptr<int64_t>(), hi.size(1), lo.size(1),
                              x.mutable_data_ptr<scalar_t>(),
                              early_stop ? x_prev.mutable_data_ptr<scalar_t>() : nullptr,
                              precision.mutable_data_ptr<scalar_t>(), maps.mutable_data_ptr<scalar_t>(),
                              steps_run.mutable_data_ptr<int64_t>(), kept.mutable_data_ptr<bool>(),
                              vanished.mutable_data_ptr<bool>(), bad_clean, bad_maps};
    at::parallel_for(0, (batch + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) loop.block(blk * kBlock, std::min(kBlock, batch - blk * kBlock));
    });
  });
  TORCH_CHECK_VALUE(!bad_clean, "clean contains NaN or Inf");
  TORCH_CHECK_VALUE(!bad_maps, "the explanation or its input gradient became NaN or Inf during the attack "
                    "(the model is not finite near x)");
  return {x, precision, steps_run, maps, kept, vanished};
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) { m.impl("fused_mlp_attack", &fused_mlp_attack_cpu); }

}  // namespace r2et_fast
