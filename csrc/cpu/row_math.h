// Per-row statistics shared by the CPU kernels; accumulation is always in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace r2et_fast {

// Rows per at::parallel_for task: enough work per task (about 16k elements) to amortise scheduling.
inline int64_t grain_rows(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

template <typename T>
inline bool is_finite(T v) {
  return std::abs(v) <= std::numeric_limits<T>::max();  // false for NaN and +-Inf
}

// True when no value of the row is NaN or +-Inf. Branch-free so it vectorises; meant to run on a
// row the kernel is about to read anyway (it is in cache), replacing a separate isfinite pass.
template <typename T>
bool row_finite(const T* x, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !is_finite(x[i]);
  return bad == 0;
}

// Pearson correlation of two rows of n values; NaN when either row is constant (undefined).
template <typename T>
double pearson_of(const T* x, const T* y, int64_t n) {
  double mx = 0, my = 0;
  bool varied_x = false, varied_y = false;  // exact constant-row test: rounding can leave the
                                            // centred sums of a constant row slightly above zero
  for (int64_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
    varied_x |= x[i] != x[0];
    varied_y |= y[i] != y[0];
  }
  if (!varied_x || !varied_y) return std::numeric_limits<double>::quiet_NaN();
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const double denom = std::sqrt(sxx) * std::sqrt(syy);
  return denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : sxy / denom;
}

// Cosine similarity a.b / (|a| |b|); NaN when either row is all zeros (undefined).
template <typename T>
double cosine_of(const T* x, const T* y, int64_t n) {
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = x[i], b = y[i];
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  const double denom = std::sqrt(sxx) * std::sqrt(syy);
  return denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : sxy / denom;
}

// Mean squared difference |a - b|^2 / n.
template <typename T>
double mse_of(const T* x, const T* y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    s += d * d;
  }
  return s / static_cast<double>(n);
}

}  // namespace r2et_fast
