// Row functions of the top-k pair-gap term G_k (csrc/cpu/pair_gap_kernel.cpp has the formulas),
// shared by its backward kernel and the fused attack loop (csrc/cpu/fused_attack_kernel.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/pair_gap.h"

namespace r2et_fast {
namespace cpu {

// log(sum_{i in idx} exp(sign * v[i])), stable for any magnitude.
template <typename T>
double log_sum_exp(const T* v, const int64_t* idx, int64_t m, double sign) {
  double hi = -std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < m; ++t) hi = std::max(hi, sign * static_cast<double>(v[idx[t]]));
  double s = 0;
  for (int64_t t = 0; t < m; ++t) s += std::exp(sign * static_cast<double>(v[idx[t]]) - hi);
  return hi + std::log(s);
}

// o = g * dG/dv for one row v (n values) over fixed indices: for pairs "all" hi holds T_k (k
// entries, lo unused), else pair p is hi[p] above lo[p] (m pairs). o is overwritten. rest and
// in_top are scratch of any size (resized here).
template <typename T>
void pair_gap_row_backward(const T* v, int64_t n, const int64_t* hi, int64_t k, const int64_t* lo, int64_t m,
                           Pairs pairs, Transform transform, double g, T* o, std::vector<int64_t>& rest,
                           std::vector<char>& in_top) {
  if (pairs == Pairs::kAll) {
    if (transform == Transform::kLinear) {
      // d/dI_j = -k for every j, plus n for j in T (n - k in all).
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(-g * k);
      for (int64_t t = 0; t < k; ++t) o[hi[t]] = static_cast<T>(g * (n - k));
      return;
    }
    in_top.assign(n, 0);
    for (int64_t t = 0; t < k; ++t) in_top[hi[t]] = 1;
    rest.clear();
    for (int64_t i = 0; i < n; ++i)
      if (!in_top[i]) rest.push_back(i);
    // G = -A R: dG/dI_i = e^{-I_i} R (i in T), dG/dI_j = -A e^{I_j} (j not in T).
    const double log_a = log_sum_exp(v, hi, k, -1.0);
    const double log_r = log_sum_exp(v, rest.data(), n - k, 1.0);
    for (int64_t t = 0; t < k; ++t) o[hi[t]] = static_cast<T>(g * std::exp(-static_cast<double>(v[hi[t]]) + log_r));
    for (int64_t j : rest) o[j] = static_cast<T>(-g * std::exp(static_cast<double>(v[j]) + log_a));
    return;
  }
  std::fill(o, o + n, T(0));
  for (int64_t p = 0; p < m; ++p) {
    double c = g;  // d h_p: +1 at hi, -1 at lo; exp: d(-e^{-h})/dh = e^{-h}
    if (transform == Transform::kExp) c *= std::exp(-(static_cast<double>(v[hi[p]]) - static_cast<double>(v[lo[p]])));
    o[hi[p]] += static_cast<T>(c);
    o[lo[p]] -= static_cast<T>(c);
  }
}

}  // namespace cpu
}  // namespace r2et_fast
