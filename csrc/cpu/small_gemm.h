// Row-major C = A B (+ bias or + C) for the small, cache-resident products of the fused MLP
// kernel (rows of one block times a layer's weights). Each output row depends on its own input row
// only, accumulated in one fixed order, so equal rows give bitwise-equal results whatever the
// block they sit in: the two points of Ĥ (x and x + kappa v) then agree exactly where a
// piecewise-linear net keeps its activation pattern, as autograd's separate passes do.
//
// Column counts are padded: n (the columns of B, C and bias) must be a multiple of lanes<T>(),
// and B's, C's and bias's padding columns are read and written like the others (keep B's and
// bias's padding at zero and C's padding is zero too).
#pragma once

#include <cstdint>

namespace r2et_fast {
namespace cpu {

template <typename T>
constexpr int64_t lanes() {
  return 64 / static_cast<int64_t>(sizeof(T));  // one 64-byte vector
}

inline int64_t padded(int64_t n, int64_t lane) { return (n + lane - 1) / lane * lane; }

// C (m x n, ldc) = A (m x k, lda) . B (k x n, ldb), then + bias[j] when bias is given, or + the old
// C when accumulate. No aliasing between C and A or B.
void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
             float* c, int64_t ldc, const float* bias, bool accumulate);
void gemm_nn(int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
             int64_t ldb, double* c, int64_t ldc, const double* bias, bool accumulate);

}  // namespace cpu
}  // namespace r2et_fast
