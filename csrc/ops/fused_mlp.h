// The fused MLP objective (docs/spec.md §3): R2ET's CE - w_g G_k + w_h H of an MLP and its gradient
// w.r.t. every weight and bias in one call, with the passes written out (no autograd graph). The
// formulas are derived in r2et_fast/reference/fused.py, whose twin this is.
//
// This header holds the device-independent driver: the passes as ATen matmuls on (rows, width)
// buffers, and calls of the pair-gap and Hessian-norm ops through the dispatcher (so each device
// runs its own kernels). What is elementwise (activations with their two derivatives, the score's
// derivatives, the task loss) comes from a policy E, one per device:
//   E::activation(u, kind, p0, p1, out, d1, d2)      out = sigma(u), d1 = sigma'(u), d2 = sigma''(u)
//                                                    (d2 undefined for ReLU / LeakyReLU)
//   E::score_gradient(z, y, score, ds)               ds = s'(z)
//   E::score_hvp(z, y, score, w, out)                out = s''(z) w (never called for the logit)
//   E::task_loss(z, y, rows, dz)                     per-row CE (BCE if C = 1) and its d/dz
// Outputs are preallocated contiguous tensors.
//
// The points x and x + kappa v run one after the other (v needs g(x)), each with its own buffers
// (see Driver::passes), and add their shares to the same weight gradients.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "ops/checks.h"

namespace r2et_fast {
namespace fused {

// Layer codes (r2et_fast/engine/_mlp_spec.py uses the same numbers).
enum Kind : int64_t { kLinear = 0, kRelu = 1, kLeakyRelu = 2, kSoftplus = 3, kTanh = 4 };
enum class Score { kLogit, kProb, kLoss };

inline Score parse_score(c10::string_view s) {
  if (s == "logit") return Score::kLogit;
  if (s == "prob") return Score::kProb;
  TORCH_CHECK_VALUE(s == "loss", "score must be one of 'logit', 'prob', 'loss', got '", std::string(s),
                    "'");
  return Score::kLoss;
}

inline bool smooth(int64_t kind) { return kind == kSoftplus || kind == kTanh; }

using Result = std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>,
                          at::Tensor>;

struct Options {
  Score score;
  int64_t k, n_pairs;
  c10::string_view pairs, transform;
  double pair_count, kappa, lambda_gap, lambda_hess;
  bool with_gap, with_hessian, adaptive, input_grad;
};

// The network against x: codes, parameters, one weight (out, in) per Linear chaining from n
// features, biases empty or (out,), all of x's dtype and device. Returns C. (x's values are each
// device's check: the CPU kernel tests its rows while they are in cache.)
inline int64_t check_network(const at::Tensor& x, const at::Tensor& y, at::TensorList weights,
                             at::TensorList biases, at::IntArrayRef layers,
                             at::ArrayRef<double> params) {
  check_maps(x, "x");
  TORCH_CHECK_TYPE(y.scalar_type() == at::kLong, "y must be int64, got ", y.scalar_type());
  TORCH_CHECK_VALUE(y.dim() == 1 && y.size(0) == x.size(0) && y.device() == x.device(),
                    "y must have shape (", x.size(0), ",) on the device of x, got ", y.sizes());
  TORCH_CHECK_VALUE(params.size() == 2 * layers.size(), "layer_params must hold 2 numbers per layer (",
                    2 * layers.size(), "), got ", params.size());
  int64_t width = x.size(1);
  size_t j = 0;
  for (int64_t code : layers) {
    TORCH_CHECK_VALUE(code >= kLinear && code <= kTanh, "layers holds an unknown layer code ", code);
    if (code != kLinear) continue;
    TORCH_CHECK_VALUE(j < weights.size() && j < biases.size(),
                      "weights and biases must hold one tensor per Linear layer");
    const at::Tensor& w = weights[j];
    const at::Tensor& b = biases[j];
    TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == width && w.size(0) >= 1, "weights[", j,
                      "] must have shape (out, ", width, "), got ", w.sizes());
    TORCH_CHECK_VALUE(b.numel() == 0 || (b.dim() == 1 && b.size(0) == w.size(0)), "biases[", j,
                      "] must be empty or have shape (", w.size(0), ",), got ", b.sizes());
    for (const at::Tensor* t : {&w, &b})
      TORCH_CHECK_TYPE(t->scalar_type() == x.scalar_type() && t->device() == x.device(),
                       "weights and biases must have the dtype and device of x");
    width = w.size(0);
    ++j;
  }
  TORCH_CHECK_VALUE(j >= 1 && j == weights.size() && j == biases.size(),
                    "weights and biases must hold one tensor per Linear layer (", j, "), got ",
                    weights.size(), " and ", biases.size());
  return width;
}

// Each tensor made contiguous (the kernels read raw rows).
inline std::vector<at::Tensor> contiguous_all(at::TensorList ts) {
  std::vector<at::Tensor> out;
  for (const auto& t : ts) out.push_back(t.contiguous());
  return out;
}

// Labels in [0, C) (C = 1: {0, 1}); ``name`` is the argument's name. One pass on the device (a
// host sync: the CPU kernels test the labels in their own loop instead).
inline void check_label_range(const at::Tensor& y, int64_t classes, const char* name) {
  const int64_t n_valid = classes == 1 ? 2 : classes;
  TORCH_CHECK_VALUE(((y >= 0) & (y < n_valid)).all().item<bool>(), name, " must lie in [0, ", n_valid,
                    ") for a model with ", classes, " output(s)");
}

// The objective's options, checked against n features.
inline Options make_options(int64_t n, c10::string_view score, int64_t k, c10::string_view pairs,
                            c10::string_view transform, int64_t n_pairs, double pair_count, double kappa,
                            double lambda_gap, double lambda_hess, bool with_gap, bool with_hessian,
                            bool adaptive, bool input_grad) {
  if (with_gap) {
    check_k(k, n);
    TORCH_CHECK_VALUE(std::isfinite(pair_count) && pair_count > 0,
                      "pair_count must be a positive finite number, got ", pair_count);
  }
  if (with_hessian)
    TORCH_CHECK_VALUE(std::isfinite(kappa) && kappa > 0, "kappa must be a positive finite number, got ",
                      kappa);
  return Options{parse_score(score), k, n_pairs, pairs, transform, pair_count, kappa, lambda_gap, lambda_hess,
                 with_gap, with_hessian, adaptive, input_grad};
}

// The existing ops, each device's own kernels; called below Autograd (their Python backward
// registrations are not wanted here: the adjoint is written out).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> pair_gap(const at::Tensor& maps, const Options& o) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::topk_pair_gap", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, int64_t, c10::string_view, c10::string_view, int64_t)>();
  return op.call(maps, o.k, o.pairs, o.transform, o.n_pairs);
}

inline at::Tensor pair_gap_backward(const at::Tensor& grad, const at::Tensor& maps, const at::Tensor& hi,
                                    const at::Tensor& lo, const Options& o) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::topk_pair_gap_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, c10::string_view, c10::string_view)>();
  return op.call(grad, maps, hi, lo, o.pairs, o.transform);
}

inline at::Tensor hessian_norm(const at::Tensor& g, const at::Tensor& gs, double kappa) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::hessian_fd_norm", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
  return op.call(g, gs, kappa);
}

inline std::tuple<at::Tensor, at::Tensor> hessian_norm_backward(const at::Tensor& grad, const at::Tensor& g,
                                                                const at::Tensor& gs, double kappa) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("r2et_fast::hessian_fd_norm_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, double)>();
  return op.call(grad, g, gs, kappa);
}

// lambda, or the adaptive |lambda (CE + 1) / max(|term|, 1e-12)| (Method.weight, term by term).
inline at::Tensor weight(double lambda, const at::Tensor& ce, const at::Tensor& term, bool adaptive) {
  if (!adaptive) return at::scalar_tensor(lambda, ce.options());
  return (lambda * (ce + 1) / term.abs().clamp_min(1e-12)).abs();
}

inline double weight_value(double lambda, double ce, double term, bool adaptive) {
  return adaptive ? std::abs(lambda * (ce + 1) / std::max(std::abs(term), 1e-12)) : lambda;
}

// One point's passes: u_0..u_M, delta_0..delta_M, and d1/d2 per elementwise layer.
struct Point {
  std::vector<at::Tensor> u, delta, d1, d2;
};

// g = a^T b, added to g when it holds a value already (a weight used twice, or two points).
inline void add_mm(at::Tensor& g, const at::Tensor& a, const at::Tensor& b) {
  if (g.defined()) g.addmm_(a, b);
  else g = at::mm(a, b);
}

template <class E>
struct Driver {
  at::TensorList weights, biases;
  at::IntArrayRef kinds;
  at::ArrayRef<double> params;
  Options o;
  std::vector<int64_t> lin;  // layer -> its index in weights, or -1
  int64_t first_linear = -1;

  bool has_bias(int64_t i) const { return biases[lin[i]].numel() > 0; }

  // Forward and backward pass at x0. Each point gets buffers of its own (not row blocks of one
  // buffer): equal inputs then give bitwise-equal results, as in autograd's separate passes, so
  // g(x + kappa v) - g(x) is exactly 0 where a piecewise-linear net keeps its pattern (the
  // adaptive weight would multiply rounding noise by 1e12 otherwise).
  Point passes(const at::Tensor& x0, const at::Tensor& y) const {
    Point p = forward(x0);
    backward(p, y);
    return p;
  }

  // u_0..u_M (and d1, d2) at x0.
  Point forward(const at::Tensor& x0) const {
    const int64_t m = static_cast<int64_t>(kinds.size());
    Point p;
    p.u.push_back(x0);
    for (int64_t i = 0; i < m; ++i) {
      const at::Tensor& in = p.u.back();
      if (kinds[i] == kLinear) {
        const at::Tensor& w = weights[lin[i]];
        p.u.push_back(has_bias(i) ? at::addmm(biases[lin[i]], in, w.t()) : at::mm(in, w.t()));
        p.d1.emplace_back();
        p.d2.emplace_back();
      } else {
        at::Tensor out = at::empty_like(in), d1 = at::empty_like(in);
        at::Tensor d2 = smooth(kinds[i]) ? at::empty_like(in) : at::Tensor();
        E::activation(in, kinds[i], params[2 * i], params[2 * i + 1], out, d1, d2);
        p.u.push_back(out);
        p.d1.push_back(d1);
        p.d2.push_back(d2);
      }
    }
    return p;
  }

  // delta_M = s'(z) with the labels y, then delta_{M-1}..delta_0 = g.
  void backward(Point& p, const at::Tensor& y) const {
    const int64_t m = static_cast<int64_t>(kinds.size());
    std::vector<at::Tensor> deltas(m + 1);
    deltas[m] = at::empty_like(p.u[m]);
    E::score_gradient(p.u[m], y, o.score, deltas[m]);
    for (int64_t i = m - 1; i >= 0; --i)
      deltas[i] = kinds[i] == kLinear ? at::mm(deltas[i + 1], weights[lin[i]]) : p.d1[i] * deltas[i + 1];
    p.delta = std::move(deltas);
  }

  void index_layers() {
    for (int64_t i = 0, j = 0; i < static_cast<int64_t>(kinds.size()); ++i) {
      lin.push_back(kinds[i] == kLinear ? j++ : -1);
      if (kinds[i] == kLinear && first_linear < 0) first_linear = i;
    }
  }

  // Add one point's share to the weight and bias gradients (adjoint of the backward pass, then of
  // the forward pass from zbar, which may be undefined); returns ubar_0 when want_input.
  at::Tensor adjoint(const Point& p, const at::Tensor& y, const at::Tensor& gbar, at::Tensor zbar,
                     std::vector<at::Tensor>& gw, std::vector<at::Tensor>& gb, bool want_input) const {
    const int64_t m = static_cast<int64_t>(kinds.size());
    std::vector<at::Tensor> extra(m);
    at::Tensor bar = gbar;
    for (int64_t i = 0; i < m; ++i) {
      if (kinds[i] == kLinear) {
        add_mm(gw[lin[i]], p.delta[i + 1].t(), bar);
        bar = at::mm(bar, weights[lin[i]].t());
      } else {
        if (p.d2[i].defined()) extra[i] = p.d2[i] * p.delta[i + 1] * bar;
        bar = p.d1[i] * bar;
      }
    }
    if (o.score != Score::kLogit) {
      at::Tensor h = at::empty_like(bar);
      E::score_hvp(p.u[m], y, o.score, bar, h);
      zbar = zbar.defined() ? zbar + h : h;
    }
    at::Tensor ubar = zbar;
    for (int64_t i = m - 1; i >= 0; --i) {
      if (i < first_linear && !want_input) break;  // nothing below has parameters
      if (ubar.defined()) {
        if (kinds[i] == kLinear) {
          add_mm(gw[lin[i]], ubar.t(), p.u[i]);
          if (has_bias(i)) gb[lin[i]] = gb[lin[i]].defined() ? gb[lin[i]] + ubar.sum(0) : ubar.sum(0);
          ubar = (i > first_linear || want_input) ? at::mm(ubar, weights[lin[i]]) : at::Tensor();
        } else {
          ubar = p.d1[i] * ubar;
        }
      }
      if (extra[i].defined()) ubar = ubar.defined() ? ubar + extra[i] : extra[i];
    }
    return want_input ? ubar : at::Tensor();
  }

  Result run(const at::Tensor& x, const at::Tensor& y) {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    const int64_t batch = x.size(0), n = x.size(1);
    index_layers();
    const auto opt = x.options();
    const Point at_x = passes(x, y);
    const at::Tensor& g = at_x.delta[0];
    at::Tensor loss_rows = at::empty({batch}, opt), dz = at::empty_like(at_x.u.back());
    E::task_loss(at_x.u.back(), y, loss_rows, dz);
    dz.div_(batch);
    const at::Tensor ce = loss_rows.mean();
    at::Tensor loss = ce.clone(), hess = at::scalar_tensor(0, opt), gap = at::scalar_tensor(0, opt);
    at::Tensor gbar = at::zeros_like(g), gbar_shift;
    Point at_shift;
    if (o.with_hessian) {
      // x + kappa v, v = sign(g) / sqrt(n) (engine.hessian_direction)
      at_shift = passes(at::add(x, at::sign(g), o.kappa / std::sqrt(static_cast<double>(n))), y);
      const at::Tensor& gs = at_shift.delta[0];
      hess = hessian_norm(g, gs, o.kappa).mean();
      const at::Tensor w_h = weight(o.lambda_hess, ce, hess, o.adaptive);
      loss = loss + w_h * hess;
      auto [d_g, d_gs] = hessian_norm_backward(at::full({batch}, 1.0 / batch, opt) * w_h, g, gs, o.kappa);
      gbar.add_(d_g);
      gbar_shift = d_gs;
    }
    if (o.with_gap) {
      const at::Tensor maps = g.abs();
      auto [per_row, hi, lo] = pair_gap(maps, o);
      gap = per_row.mean() / o.pair_count;
      const at::Tensor w_g = weight(o.lambda_gap, ce, gap, o.adaptive);
      loss = loss - w_g * gap;
      const at::Tensor coef = at::full({batch}, -1.0 / (batch * o.pair_count), opt) * w_g;
      gbar.addcmul_(at::sign(g), pair_gap_backward(coef, maps, hi, lo, o));
    }
    std::vector<at::Tensor> gw(weights.size()), gb(biases.size());
    at::Tensor gx = adjoint(at_x, y, gbar, dz, gw, gb, o.input_grad);
    if (o.with_hessian) adjoint(at_shift, y, gbar_shift, at::Tensor(), gw, gb, false);
    for (size_t j = 0; j < gb.size(); ++j)
      if (!gb[j].defined()) gb[j] = biases[j].numel() ? at::zeros_like(biases[j]) : at::empty({0}, opt);
    if (!o.input_grad) gx = at::empty({0}, opt);
    else if (!gx.defined()) gx = at::zeros_like(x);
    return {loss, at::stack({ce, hess, gap}), gw, gb, gx};
  }
};

// The op's entry point for device policy E.
template <class E>
Result objective(const at::Tensor& x_in, const at::Tensor& y, at::TensorList weights_in,
                 at::TensorList biases_in, at::IntArrayRef layers, at::ArrayRef<double> layer_params,
                 c10::string_view score, int64_t k, c10::string_view pairs, c10::string_view transform,
                 int64_t n_pairs, double pair_count, double kappa, double lambda_gap, double lambda_hess,
                 bool with_gap, bool with_hessian, bool adaptive, bool input_grad) {
  const int64_t classes = check_network(x_in, y, weights_in, biases_in, layers, layer_params);
  check_finite(x_in, "x");
  const at::Tensor x = x_in.contiguous();
  const Options o = make_options(x.size(1), score, k, pairs, transform, n_pairs, pair_count, kappa, lambda_gap,
                                 lambda_hess, with_gap, with_hessian, adaptive, input_grad);
  check_label_range(y, classes, "y");
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  Driver<E> driver{weights, biases, layers, layer_params, o};
  return driver.run(x, y.contiguous());
}

// The saliency op's network and target: (B,) int64 like y (its values unread with predict, when
// the class is the argmax of the logits, or 1[z > 0] for C = 1). Returns C.
inline int64_t check_saliency(const at::Tensor& x, const at::Tensor& target, at::TensorList weights,
                              at::TensorList biases, at::IntArrayRef layers, at::ArrayRef<double> params) {
  TORCH_CHECK_TYPE(target.scalar_type() == at::kLong, "target must be int64, got ", target.scalar_type());
  return check_network(x, target, weights, biases, layers, params);
}

using SaliencyResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

template <class E>
SaliencyResult saliency(const at::Tensor& x_in, const at::Tensor& target, bool predict, at::TensorList weights_in,
                        at::TensorList biases_in, at::IntArrayRef layers, at::ArrayRef<double> layer_params,
                        c10::string_view score) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t classes = check_saliency(x_in, target, weights_in, biases_in, layers, layer_params);
  check_finite(x_in, "x");
  if (!predict) check_label_range(target, classes, "target");
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  Options o = make_options(x_in.size(1), score, 1, "all", "linear", 0, 1.0, 1.0, 0.0, 0.0, false, false, false,
                           false);
  Driver<E> driver{weights, biases, layers, layer_params, o};
  driver.index_layers();
  Point p = driver.forward(x_in.contiguous());
  const at::Tensor& z = p.u.back();
  at::Tensor y = !predict ? target.contiguous()
                 : classes == 1 ? z.select(1, 0).gt(0).to(at::kLong) : z.argmax(1);
  driver.backward(p, y);
  return {z, p.delta[0], y};
}

inline void check_vjp_grad(const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type() &&
                        grad.device() == x.device(),
                    "grad must have the shape, dtype and device of x, got ", grad.sizes());
}

template <class E>
at::Tensor saliency_vjp(const at::Tensor& x_in, const at::Tensor& target, const at::Tensor& grad,
                        at::TensorList weights_in, at::TensorList biases_in, at::IntArrayRef layers,
                        at::ArrayRef<double> layer_params, c10::string_view score) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t classes = check_saliency(x_in, target, weights_in, biases_in, layers, layer_params);
  check_vjp_grad(grad, x_in);
  check_finite(x_in, "x");
  check_finite(grad, "grad");
  check_label_range(target, classes, "target");
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  Options o = make_options(x_in.size(1), score, 1, "all", "linear", 0, 1.0, 1.0, 0.0, 0.0, false, false, false,
                           true);
  Driver<E> driver{weights, biases, layers, layer_params, o};
  driver.index_layers();
  const at::Tensor y = target.contiguous();
  const Point p = driver.passes(x_in.contiguous(), y);
  std::vector<at::Tensor> gw(weights.size()), gb(biases.size());
  at::Tensor gx = driver.adjoint(p, y, grad.contiguous(), at::Tensor(), gw, gb, true);
  return gx.defined() ? gx : at::zeros_like(x_in);
}

}  // namespace fused
}  // namespace r2et_fast
