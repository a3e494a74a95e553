// The CPU fused MLP kernels' network and per-row passes (csrc/cpu/fused_mlp_kernel.cpp has the
// layout of the buffers and the phases; csrc/cpu/fused_saliency_kernel.cpp uses the passes alone).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/fused_rows.h"
#include "cpu/small_gemm.h"
#include "ops/fused_mlp.h"

namespace r2et_fast {
namespace cpu {

// rows x n values of src (row stride n) into dst (row stride ld >= n), the padding zeroed.
template <typename T>
void copy_padded(const T* src, int64_t rows, int64_t n, T* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(src + r * n, src + (r + 1) * n, dst + r * ld);
    std::fill(dst + r * ld + n, dst + (r + 1) * ld, T(0));
  }
}

// fused::check_label_range in one host loop over a contiguous CPU tensor (no tensor ops).
inline void check_labels(const at::Tensor& y, int64_t classes, const char* name) {
  const int64_t n_valid = classes == 1 ? 2 : classes;
  const int64_t* yp = y.const_data_ptr<int64_t>();
  bool ok = true;
  for (int64_t r = 0; r < y.size(0); ++r) ok &= yp[r] >= 0 && yp[r] < n_valid;
  TORCH_CHECK_VALUE(ok, name, " must lie in [0, ", n_valid, ") for a model with ", classes, " output(s)");
}

template <typename T>
struct Net {
  fused::Score score;
  int64_t batch, layers, classes, first_linear = -1;
  std::vector<int64_t> kinds, width, ld, lin;  // ld: width padded to whole vectors (small_gemm.h)
  std::vector<double> params;
  // Per Linear, with zero padding columns: the weights (out, ld_in), transposed (in, ld_out), and
  // the bias (ld_out; empty when absent).
  std::vector<std::vector<T>> w, wt, b;
  std::vector<at::Tensor> L, R, D1, D2;
  std::vector<T*> base[4];  // the data of L, R, D1, D2 (looked up once)
  const T* x = nullptr;
  const int64_t* y = nullptr;

  // The layers, padded weight copies and buffers (segs row segments per buffer, points for D1/D2)
  // for inputs x (batch, n) and labels y (int64; may be set later, before backward).
  void build(const at::Tensor& x_t, const at::Tensor& y_t, const std::vector<at::Tensor>& weights,
             const std::vector<at::Tensor>& biases, at::IntArrayRef kinds_in, at::ArrayRef<double> params_in,
             int64_t segs, int64_t points) {
    const int64_t n = x_t.size(1), m = static_cast<int64_t>(kinds_in.size());
    const auto opt = x_t.options();
    layers = m;
    kinds.assign(kinds_in.begin(), kinds_in.end());
    params.assign(params_in.begin(), params_in.end());
    x = x_t.const_data_ptr<T>();
    y = y_t.defined() ? y_t.const_data_ptr<int64_t>() : nullptr;
    constexpr int64_t lane = cpu::lanes<T>();
    width.push_back(n);
    ld.push_back(cpu::padded(n, lane));
    for (int64_t i = 0, j = 0; i < m; ++i) {
      const int64_t in = width.back(), in_ld = ld.back();
      if (kinds_in[i] == fused::kLinear) {
        const at::Tensor& wl = weights[j];
        const int64_t out = wl.size(0), out_ld = cpu::padded(out, lane);
        const T* src = wl.const_data_ptr<T>();
        std::vector<T> wp(out * in_ld, T(0)), t(in * out_ld, T(0)), bp;
        for (int64_t a = 0; a < out; ++a)
          for (int64_t c = 0; c < in; ++c) wp[a * in_ld + c] = t[c * out_ld + a] = src[a * in + c];
        if (biases[j].numel()) {
          bp.assign(out_ld, T(0));
          std::copy(biases[j].const_data_ptr<T>(), biases[j].const_data_ptr<T>() + out, bp.begin());
        }
        w.push_back(std::move(wp));
        wt.push_back(std::move(t));
        b.push_back(std::move(bp));
        lin.push_back(j++);
        if (first_linear < 0) first_linear = i;
        width.push_back(out);
        ld.push_back(out_ld);
      } else {
        lin.push_back(-1);
        width.push_back(in);
        ld.push_back(in_ld);
      }
    }
    classes = width.back();
    for (int64_t i = 0; i <= m; ++i) {
      L.push_back(at::empty({segs * batch, ld[i]}, opt));
      R.push_back(at::empty({segs * batch, ld[i]}, opt));
      const bool act = i < m && kinds_in[i] != fused::kLinear;
      D1.push_back(act ? at::empty({points * batch, ld[i]}, opt) : at::Tensor());
      D2.push_back(act && fused::smooth(kinds_in[i]) ? at::empty({points * batch, ld[i]}, opt)
                                                      : at::Tensor());
    }
    int which = 0;
    for (const auto* buf : {&L, &R, &D1, &D2}) {
      for (const at::Tensor& t : *buf) base[which].push_back(t.defined() ? t.mutable_data_ptr<T>() : nullptr);
      ++which;
    }
  }

  // Row r of segment s (0..3) of a stacked buffer, or of point q (0, 1) of D1/D2.
  T* row(const std::vector<at::Tensor>& buf, int64_t i, int64_t s, int64_t r) const {
    const int which = &buf == &L ? 0 : &buf == &R ? 1 : &buf == &D1 ? 2 : 3;
    return base[which][i] + (s * batch + r) * ld[i];
  }

  // Values, then the backward pass, of point q for rows [r0, r0 + n).
  void passes(int64_t q, int64_t r0, int64_t n, double* p) const {
    forward(q, r0, n);
    backward(q, r0, n, p);
  }

  // u_1..u_M (and d1, d2) of point q for rows [r0, r0 + n), from u_0 in R[0].
  void forward(int64_t q, int64_t r0, int64_t n) const {
    for (int64_t i = 0; i < layers; ++i) {
      const T* in = row(R, i, 2 * q + 1, r0);
      T* out = row(R, i + 1, 2 * q + 1, r0);
      if (kinds[i] == fused::kLinear) {
        const int64_t l = lin[i];
        cpu::gemm_nn(n, ld[i + 1], width[i], in, ld[i], wt[l].data(), ld[i + 1], out, ld[i + 1],
                     b[l].empty() ? nullptr : b[l].data(), false);
      } else {
        cpu::activation(kinds[i], params[2 * i], params[2 * i + 1], in, out, row(D1, i, q, r0),
                        fused::smooth(kinds[i]) ? row(D2, i, q, r0) : nullptr, n * ld[i]);
      }
    }
  }

  // delta_M = s'(z) with the labels y, then delta_{M-1}..delta_0 = g, of point q.
  void backward(int64_t q, int64_t r0, int64_t n, double* p) const {
    const T* z = row(R, layers, 2 * q + 1, r0);
    T* top = row(L, layers, 2 * q, r0);
    for (int64_t r = 0; r < n; ++r) {
      T* t = top + r * ld[layers];
      cpu::score_gradient(score, z + r * ld[layers], classes, y[r0 + r], p, t);
      std::fill(t + classes, t + ld[layers], T(0));
    }
    for (int64_t i = layers - 1; i >= 0; --i) {
      const T* up = row(L, i + 1, 2 * q, r0);
      T* down = row(L, i, 2 * q, r0);
      if (kinds[i] == fused::kLinear) {
        cpu::gemm_nn(n, ld[i], width[i + 1], up, ld[i + 1], w[lin[i]].data(), ld[i], down, ld[i], nullptr,
                     false);
      } else {
        const T* d1 = row(D1, i, q, r0);
        for (int64_t e = 0; e < n * ld[i]; ++e) down[e] = d1[e] * up[e];
      }
    }
  }

  // The adjoint of point q's passes for rows [r0, r0 + n): bar_0 is set, ubar_M holds the task
  // loss's share (point x) or nothing yet (point x + kappa v, zeroed here).
  void adjoint(int64_t q, int64_t r0, int64_t n, bool want_input, double* p) const {
    for (int64_t i = 0; i < layers; ++i) {
      const T* in = row(R, i, 2 * q, r0);
      T* out = row(R, i + 1, 2 * q, r0);
      if (kinds[i] == fused::kLinear) {
        cpu::gemm_nn(n, ld[i + 1], width[i], in, ld[i], wt[lin[i]].data(), ld[i + 1], out, ld[i + 1], nullptr,
                     false);
      } else {
        const T* d1 = row(D1, i, q, r0);
        for (int64_t e = 0; e < n * ld[i]; ++e) out[e] = d1[e] * in[e];
      }
    }
    T* zbar = row(L, layers, 2 * q + 1, r0);
    if (q == 1) std::memset(zbar, 0, sizeof(T) * n * ld[layers]);
    if (score != fused::Score::kLogit) {
      const T* z = row(R, layers, 2 * q + 1, r0);
      const T* bar = row(R, layers, 2 * q, r0);
      for (int64_t r = 0; r < n; ++r)
        cpu::add_score_hvp(score, z + r * ld[layers], classes, y[r0 + r], bar + r * ld[layers], p,
                           zbar + r * ld[layers]);
    }
    const int64_t stop = want_input ? 0 : first_linear + 1;  // nothing below needs ubar
    for (int64_t i = layers - 1; i >= stop; --i) {
      const T* up = row(L, i + 1, 2 * q + 1, r0);
      T* down = row(L, i, 2 * q + 1, r0);
      const int64_t count = n * ld[i];
      if (kinds[i] == fused::kLinear) {
        cpu::gemm_nn(n, ld[i], width[i + 1], up, ld[i + 1], w[lin[i]].data(), ld[i], down, ld[i], nullptr,
                     false);
      } else if (fused::smooth(kinds[i])) {
        const T *d1 = row(D1, i, q, r0), *d2 = row(D2, i, q, r0);
        const T *delta = row(L, i + 1, 2 * q, r0), *bar = row(R, i, 2 * q, r0);
        for (int64_t e = 0; e < count; ++e) down[e] = d1[e] * up[e] + d2[e] * delta[e] * bar[e];
      } else {
        const T* d1 = row(D1, i, q, r0);
        for (int64_t e = 0; e < count; ++e) down[e] = d1[e] * up[e];
      }
    }
  }
};

}  // namespace cpu
}  // namespace r2et_fast
