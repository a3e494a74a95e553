// The one op schema of the r2et_fast extension. Implementations register themselves per backend
// (csrc/cpu/*_kernel.cpp, csrc/cuda/*_kernel.cu); autograd (backward formulas, or a fallthrough for
// the non-differentiable ops) and fake kernels are registered from Python, one row per op of
// r2et_fast/ops/_table.py, so this file knows nothing about devices or gradients.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(r2et_fast, m) {
  // Ranking. Order: descending value, ties broken by the lower feature index.
  m.def("topk_indices(Tensor x, int k) -> Tensor");  // (B, k) int64, best first
  m.def("ranks(Tensor x) -> Tensor");                 // (B, n) int64, 0 = largest
  // Explanation similarity between two (B, n) batches; each returns (B,) in the input dtype.
  m.def("precision_at_k(Tensor a, Tensor b, int k) -> Tensor");
  m.def("kendall_tau(Tensor a, Tensor b) -> Tensor");               // tau-b, ties handled
  m.def("kendall_tau_topk(Tensor a, Tensor b, int k) -> Tensor");   // tau-b on T_k(a)
  m.def("spearman(Tensor a, Tensor b) -> Tensor");                  // average ranks for ties
  m.def("pearson(Tensor a, Tensor b) -> Tensor");
  m.def("mse(Tensor a, Tensor b) -> Tensor");
  m.def("cosine(Tensor a, Tensor b) -> Tensor");
  // R2ET's top-k pair-gap term G_k per row (ranking detached). pairs: all | anchor | mm;
  // transform: linear | exp. Returns (gap (B,), hi, lo): the chosen indices, for the backward
  // (pairs='all': hi = T_k (B, k), lo empty; otherwise pair p is hi[:, p] ranked above lo[:, p]).
  m.def("topk_pair_gap(Tensor maps, int k, str pairs, str transform, int n_pairs)"
        " -> (Tensor, Tensor, Tensor)");
  m.def("topk_pair_gap_backward(Tensor grad, Tensor maps, Tensor hi, Tensor lo, str pairs,"
        " str transform) -> Tensor");
  // R2ET's finite-difference Hessian norm per row: ||grad_xv - grad_x||_2 / kappa, where grad_x and
  // grad_xv are the input gradients at x and x + kappa * v. The backward returns (d grad_x, d grad_xv).
  m.def("hessian_fd_norm(Tensor grad_x, Tensor grad_xv, float kappa) -> Tensor");
  m.def("hessian_fd_norm_backward(Tensor grad, Tensor grad_x, Tensor grad_xv, float kappa)"
        " -> (Tensor, Tensor)");
  // The attacks' projected step on (B, n) rows: x - alpha * normalise(grad) (step_norm l2 | linf),
  // projected onto the eps-ball around x0 (norm l2 | linf) and the box [lower, upper] (per feature).
  m.def("projected_step(Tensor x, Tensor grad, Tensor x0, float alpha, float eps, str step_norm,"
        " str norm, Tensor? lower, Tensor? upper) -> Tensor");
  // Top-k thickness (docs/spec.md §2): per row, the fraction of the k(n - k) ordered pairs (i in top,
  // j not in top) with maps[i] >= maps[j]. top (B, k) int64 holds distinct feature indices
  // (T_k of the clean explanation). Returns (B,) in the dtype of maps.
  m.def("topk_pair_agreement(Tensor maps, Tensor top) -> Tensor");
  // R2ET / Est-H objective of an MLP (docs/spec.md §3) and its gradient w.r.t. every weight and bias,
  // without an autograd graph. layers: one code per layer (0 Linear, 1 ReLU, 2 LeakyReLU, 3 Softplus,
  // 4 Tanh), layer_params two numbers per layer (slope; beta, threshold); weights/biases one per
  // Linear (a bias may be empty). Returns (loss, [ce, hess, gap], d weights, d biases, d x or empty).
  m.def("fused_mlp_objective(Tensor x, Tensor y, Tensor[] weights, Tensor[] biases, int[] layers,"
        " float[] layer_params, str score, int k, str pairs, str transform, int n_pairs,"
        " float pair_count, float kappa, float lambda_gap, float lambda_hess, bool with_gap,"
        " bool with_hessian, bool adaptive, bool input_grad)"
        " -> (Tensor, Tensor, Tensor[], Tensor[], Tensor)");
  // The same MLP's logits and input gradient g = ds/dx at x (no graph), for the class `target` or,
  // with predict, the predicted one. Returns (logits, g, the explained class).
  m.def("fused_mlp_saliency(Tensor x, Tensor target, bool predict, Tensor[] weights, Tensor[] biases,"
        " int[] layers, float[] layer_params, str score) -> (Tensor, Tensor, Tensor)");
  // d <grad, g(x)> / dx of the same MLP for the class target (the explanation's vector-Jacobian
  // product, as an attack step needs it).
  m.def("fused_mlp_saliency_vjp(Tensor x, Tensor target, Tensor grad, Tensor[] weights, Tensor[] biases,"
        " int[] layers, float[] layer_params, str score) -> Tensor");
  // Every step of an explanation attack on the same MLP (csrc/ops/fused_attack.h has the
  // objectives): from x_start, maps |g| (abs) or g of the class target, P@k against T_k(clean),
  // projected steps in the eps-ball around x0 and the box, early stop at a change of pred0.
  // Returns (x_adv, P@k per step (steps + 1, B), steps kept, the maps at x_adv, the prediction
  // kept, the samples whose maps' input gradient vanished at the start point).
  m.def("fused_mlp_attack(Tensor x0, Tensor x_start, Tensor target, Tensor pred0, Tensor clean, Tensor hi,"
        " Tensor lo, Tensor? lower, Tensor? upper, Tensor probe, Tensor[] weights, Tensor[] biases,"
        " int[] layers, float[] layer_params, str score, bool abs, str objective, str pairs, str transform,"
        " int k, float eps, float alpha, int steps, str norm, str step_norm, bool early_stop)"
        " -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

// `import r2et_fast._C` loads this library, which runs the static registrations above.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
