// Small row-major GEMM (see small_gemm.h). Register blocking: 4 rows x 2 vectors of C stay in
// accumulators while the k loop loads 2 vectors of a B row (reused by the 4 rows) and broadcasts
// A's values. Written with GCC/Clang vector types so the compiler cannot choose a worse layout.
// The extension is built for baseline x86-64, so on GCC/Linux the function is cloned for
// x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512) and picked at load time by the CPU's features;
// elsewhere it is the portable build.
#include "cpu/small_gemm.h"

namespace r2et_fast {
namespace cpu {
namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define R2ET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define R2ET_CLONES
#endif

// Everything below is inlined into each clone, so it is compiled for that clone's instruction set.
#define R2ET_INLINE inline __attribute__((always_inline))

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64)));
};

template <typename V>
R2ET_INLINE V load(const void* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V>
R2ET_INLINE void store(void* p, V v) {
  __builtin_memcpy(p, &v, sizeof(V));
}

// Rows [r, r + Rows), vectors [j, j + Cols * lanes) of C.
template <typename T, int Rows, int Cols>
R2ET_INLINE void tile(int64_t r, int64_t j, int64_t k, const T* __restrict a, int64_t lda, const T* __restrict b,
                 int64_t ldb, T* __restrict c, int64_t ldc, const T* bias, bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = lanes<T>();
  V acc[Rows][Cols];
  for (int i = 0; i < Rows; ++i)
    for (int t = 0; t < Cols; ++t) acc[i][t] = V{} ;
  for (int64_t p = 0; p < k; ++p) {
    V bv[Cols];
    for (int t = 0; t < Cols; ++t) bv[t] = load<V>(b + p * ldb + j + t * L);
    for (int i = 0; i < Rows; ++i) {
      const T av = a[(r + i) * lda + p];
      for (int t = 0; t < Cols; ++t) acc[i][t] += av * bv[t];
    }
  }
  for (int i = 0; i < Rows; ++i)
    for (int t = 0; t < Cols; ++t) {
      T* cp = c + (r + i) * ldc + j + t * L;
      V base = bias ? load<V>(bias + j + t * L) : accumulate ? load<V>(cp) : V{};
      store<V>(cp, base + acc[i][t]);
    }
}

template <typename T, int Rows>
R2ET_INLINE void row_tiles(int64_t r, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                      int64_t ldc, const T* bias, bool accumulate) {
  constexpr int64_t L = lanes<T>();
  int64_t j = 0;
  for (; j + 2 * L <= n; j += 2 * L) tile<T, Rows, 2>(r, j, k, a, lda, b, ldb, c, ldc, bias, accumulate);
  for (; j < n; j += L) tile<T, Rows, 1>(r, j, k, a, lda, b, ldb, c, ldc, bias, accumulate);
}

template <typename T>
R2ET_INLINE void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                 int64_t ldc, const T* bias, bool accumulate) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) row_tiles<T, 4>(r, n, k, a, lda, b, ldb, c, ldc, bias, accumulate);
  for (; r < m; ++r) row_tiles<T, 1>(r, n, k, a, lda, b, ldb, c, ldc, bias, accumulate);
}

}  // namespace

R2ET_CLONES void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                         int64_t ldb, float* c, int64_t ldc, const float* bias, bool accumulate) {
  gemm(m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate);
}

R2ET_CLONES void gemm_nn(int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                         int64_t ldb, double* c, int64_t ldc, const double* bias, bool accumulate) {
  gemm(m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate);
}

}  // namespace cpu
}  // namespace r2et_fast
