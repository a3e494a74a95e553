// Arguments of the fused MLP attack loop (csrc/cpu/fused_attack_kernel.cpp), parsed and checked
// once per call for every kernel.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "ops/checks.h"
#include "ops/fused_mlp.h"
#include "ops/pair_gap.h"
#include "ops/projected_step.h"

namespace r2et_fast {
namespace fused {

// The per-sample objective of the maps m that the attack minimises:
//   pair_gap  G_k over the fixed pairs (hi, lo) (ERAttack)
//   distance  -||m - clean||^2 (the MSE attack, PGD on attributions)
//   sum       sum of m over the fixed features hi (the top-k attack)
enum class Objective { kPairGap, kDistance, kSum };

struct AttackSpec {
  Score score;
  bool abs;
  Objective objective;
  Pairs pairs;
  Transform transform;
  int64_t k, steps;
  double eps, alpha;
  bool ball_l2, step_l2, early_stop;
  int64_t classes;
};

inline Objective parse_objective(c10::string_view s) {
  if (s == "pair_gap") return Objective::kPairGap;
  if (s == "distance") return Objective::kDistance;
  TORCH_CHECK_VALUE(s == "sum", "objective must be one of 'pair_gap', 'distance', 'sum', got '", std::string(s),
                    "'");
  return Objective::kSum;
}

inline void check_like(const at::Tensor& t, const at::Tensor& x0, const char* name) {
  TORCH_CHECK_VALUE(t.sizes() == x0.sizes() && t.scalar_type() == x0.scalar_type() && t.device() == x0.device(),
                    name, " must have the shape, dtype and device of x0 ", x0.sizes(), ", got ", t.sizes(), " ",
                    t.scalar_type(), " on ", t.device());
}

inline void check_indices(const at::Tensor& idx, int64_t rows, int64_t n, const char* name) {
  TORCH_CHECK_VALUE(idx.dim() == 2 && idx.size(0) == rows && idx.scalar_type() == at::kLong &&
                        idx.device().type() != at::kMeta,
                    name, " must be a 2-D int64 tensor with ", rows, " rows, got ", idx.sizes(), " ",
                    idx.scalar_type());
  if (idx.numel() == 0) return;
  TORCH_CHECK_VALUE(((idx >= 0) & (idx < n)).all().item<bool>(), name, " must hold feature indices in [0, ", n,
                    ")");
}

inline AttackSpec check_attack(const at::Tensor& x0, const at::Tensor& x_start, const at::Tensor& target,
                               const at::Tensor& pred0, const at::Tensor& clean, const at::Tensor& hi,
                               const at::Tensor& lo, const std::optional<at::Tensor>& lower,
                               const std::optional<at::Tensor>& upper, const at::Tensor& probe,
                               at::TensorList weights, at::TensorList biases, at::IntArrayRef layers,
                               at::ArrayRef<double> layer_params, c10::string_view score, bool abs,
                               c10::string_view objective, c10::string_view pairs, c10::string_view transform,
                               int64_t k, double eps, double alpha, int64_t steps, c10::string_view norm,
                               c10::string_view step_norm, bool early_stop) {
  const int64_t classes = check_saliency(x0, target, weights, biases, layers, layer_params);
  const int64_t rows = x0.size(0), n = x0.size(1);
  check_like(x_start, x0, "x_start");
  check_like(clean, x0, "clean");
  check_like(probe, x0, "probe");
  TORCH_CHECK_VALUE(pred0.scalar_type() == at::kLong && pred0.dim() == 1 && pred0.size(0) == rows &&
                        pred0.device() == x0.device(),
                    "pred0 must be an int64 tensor of shape (", rows, ",) on the device of x0, got ",
                    pred0.sizes(), " ", pred0.scalar_type());
  TORCH_CHECK_VALUE(n >= 2, "x0 must have at least 2 features, got ", n);
  check_k(k, n);
  TORCH_CHECK_VALUE(steps >= 0, "steps must be >= 0, got ", steps);
  TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "alpha must be a finite number >= 0, got ", alpha);
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps >= 0, "eps must be a finite number >= 0, got ", eps);
  check_bound(lower, x0, "lower");
  check_bound(upper, x0, "upper");
  const Objective obj = parse_objective(objective);
  const Pairs p = parse_pairs(pairs);
  check_indices(hi, rows, n, "hi");
  check_indices(lo, rows, n, "lo");
  if (obj == Objective::kPairGap && p == Pairs::kAll) {
    TORCH_CHECK_VALUE(hi.size(1) == k && lo.size(1) == 0, "pairs 'all' takes T_k in hi (B, k = ", k,
                      ") and an empty lo (B, 0), got hi ", hi.sizes(), " and lo ", lo.sizes());
  } else if (obj == Objective::kPairGap) {
    TORCH_CHECK_VALUE(hi.size(1) >= 1 && lo.size(1) == hi.size(1),
                      "hi and lo must hold the same number (>= 1) of pairs, got ", hi.sizes(), " and ", lo.sizes());
  } else if (obj == Objective::kSum) {
    TORCH_CHECK_VALUE(hi.size(1) >= 1, "objective 'sum' takes the features in hi (B, >= 1), got ", hi.sizes());
  }
  return {parse_score(score), abs, obj, p, parse_transform(transform), k, steps, eps, alpha,
          parse_norm(norm, "norm"), parse_norm(step_norm, "step_norm"), early_stop, classes};
}

using AttackResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

inline at::Tensor precision_at_k(const at::Tensor& a, const at::Tensor& b, int64_t k) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::precision_at_k", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>();
  return op.call(a, b, k);
}

inline at::Tensor projected_step(const at::Tensor& x, const at::Tensor& d, const at::Tensor& x0, double alpha,
                                 double eps, c10::string_view step_norm, c10::string_view norm,
                                 const std::optional<at::Tensor>& lower, const std::optional<at::Tensor>& upper) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::projected_step", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, double,
                                         c10::string_view, c10::string_view, const std::optional<at::Tensor>&,
                                         const std::optional<at::Tensor>&)>();
  return op.call(x, d, x0, alpha, eps, step_norm, norm, lower, upper);
}

// The attack loop in tensor ops on a device's kernels (the CUDA route; the CPU kernel runs each
// block of rows through all steps instead), step for step the generic loop of
// r2et_fast/attacks/_iterative.py. The vanishing probe runs unconditionally, so the loop itself
// reads nothing back; the ops it calls still check their arguments (a host sync each).
template <class E>
AttackResult attack_loop(const at::Tensor& x0_in, const at::Tensor& x_start, const at::Tensor& target_in,
                         const at::Tensor& pred0_in, const at::Tensor& clean_in, const at::Tensor& hi,
                         const at::Tensor& lo, const std::optional<at::Tensor>& lower,
                         const std::optional<at::Tensor>& upper, const at::Tensor& probe, at::TensorList weights_in,
                         at::TensorList biases_in, at::IntArrayRef layers, at::ArrayRef<double> layer_params,
                         c10::string_view score, bool abs, c10::string_view objective, c10::string_view pairs,
                         c10::string_view transform, int64_t k, double eps, double alpha, int64_t steps,
                         c10::string_view norm, c10::string_view step_norm, bool early_stop) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const AttackSpec s = check_attack(x0_in, x_start, target_in, pred0_in, clean_in, hi, lo, lower, upper, probe,
                                    weights_in, biases_in, layers, layer_params, score, abs, objective, pairs,
                                    transform, k, eps, alpha, steps, norm, step_norm, early_stop);
  check_finite(x0_in, "x0");
  check_finite(x_start, "x_start");
  check_finite(clean_in, "clean");
  check_finite(probe, "probe");
  check_label_range(target_in, s.classes, "target");
  check_label_range(pred0_in, s.classes, "pred0");
  const at::Tensor x0 = x0_in.contiguous(), y = target_in.contiguous(), pred0 = pred0_in.contiguous();
  const at::Tensor clean = clean_in.contiguous();
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  const Options o = make_options(x0.size(1), score, k, pairs, transform, 0, 1.0, 1.0, 0.0, 0.0, false, false,
                                 false, true);
  Driver<E> driver{weights, biases, layers, layer_params, o};
  driver.index_layers();
  auto predicted = [&](const at::Tensor& z) {
    return s.classes == 1 ? z.select(1, 0).gt(0).to(at::kLong) : z.argmax(1);
  };
  auto objective_grad = [&](const at::Tensor& m) {
    if (s.objective == Objective::kPairGap) return pair_gap_backward(at::ones({m.size(0)}, m.options()), m, hi, lo, o);
    if (s.objective == Objective::kDistance) return (m - clean).mul(-2);
    return at::zeros_like(m).scatter_add_(1, hi, at::ones(hi.sizes(), m.options()));
  };
  auto direction = [&](const Point& p, const at::Tensor& g, const at::Tensor& w) {
    std::vector<at::Tensor> gw(weights.size()), gb(biases.size());  // unread: fresh each call
    const at::Tensor gx = driver.adjoint(p, y, s.abs ? g.sign() * w : w, at::Tensor(), gw, gb, true);
    return gx.defined() ? gx : at::zeros_like(x0);
  };
  auto maps_of = [&](const at::Tensor& g) { return s.abs ? g.abs() : g; };
  at::Tensor x = x_start.contiguous().clone();
  at::Tensor precision = at::empty({steps + 1, x0.size(0)}, x0.options());
  at::Tensor active = at::ones({x0.size(0)}, y.options().dtype(at::kBool));
  at::Tensor steps_run = at::zeros({x0.size(0)}, y.options());
  at::Tensor vanished = at::zeros({x0.size(0)}, y.options().dtype(at::kBool));
  for (int64_t t = 0; t < steps; ++t) {
    const Point p = driver.passes(x, y);
    const at::Tensor& g = p.delta[0];
    const at::Tensor m = maps_of(g);
    precision.select(0, t).copy_(precision_at_k(clean, m, k));
    const at::Tensor d = direction(p, g, objective_grad(m));
    if (t == 0)
      vanished = d.abs().amax(1).eq(0) & direction(p, g, probe.contiguous()).abs().amax(1).eq(0);
    at::Tensor x_next = projected_step(x, d, x0, alpha, eps, step_norm, norm, lower, upper);
    if (early_stop) {
      active = active & predicted(driver.forward(x_next).u.back()).eq(pred0);
      x_next = at::where(active.unsqueeze(1), x_next, x);
    }
    steps_run += active;
    x = x_next;
  }
  const Point p = driver.passes(x, y);
  const at::Tensor m = maps_of(p.delta[0]);
  precision.select(0, steps).copy_(precision_at_k(clean, m, k));
  return {x, precision, steps_run, m.contiguous(), predicted(p.u.back()).eq(pred0), vanished};
}

}  // namespace fused
}  // namespace r2et_fast
