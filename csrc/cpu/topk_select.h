// Top-k selection for small k (T_k of a row: the k largest values, best first, ties by the lower
// index), used by topk_indices, P@k and Kendall tau on T_k for k <= kStreamMaxK. O(n) per row and
// no sort: at n = 784 (float) a threshold pass and a SIMD compare pass cost ~0.2 us a row in all
// (measured), a radix sort of the row ~4 us; a radix select would need a counting pass per 8-bit
// digit (~0.3 us each, from the sort's counting pass), and 2-3 digits where the keys' top byte is
// nearly constant (values of one binade), so it does not pay either.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu/row_math.h"

namespace r2et_fast {

// k up to this selects T_k without sorting (column bound for k <= kColumns, else one streaming
// pass); larger k radix-sorts (float) or sorts (double) the row.
constexpr int64_t kStreamMaxK = 32;

// Inserts (v, i) into the best-first buffer val/idx holding count <= k entries (keeping k): it goes
// after equal values, so with indices arriving in increasing order ties go to the lower index.
template <typename T>
inline void insert_best(T* val, int64_t* idx, int64_t count, int64_t k, T v, int64_t i) {
  int64_t p = std::min(count, k - 1);
  while (p > 0 && val[p - 1] < v) {
    val[p] = val[p - 1];
    idx[p] = idx[p - 1];
    --p;
  }
  val[p] = v;
  idx[p] = i;
}

// T_k of row x for k <= kStreamMaxK in one pass: val/idx keep the k best values seen so far, best
// first. Scanning in index order, a value enters only when strictly above the current k-th best.
// Returns false on NaN/Inf.
template <typename T>
bool stream_topk(const T* x, int64_t n, int64_t k, T* val, int64_t* idx) {
  if (!row_finite(x, n)) return false;
  for (int64_t i = 0; i < k; ++i) insert_best(val, idx, i, k, x[i], i);
  T thr = val[k - 1];
  for (int64_t i = k; i < n; ++i) {
    if (x[i] > thr) {
      insert_best(val, idx, k, k, x[i], i);
      thr = val[k - 1];
    }
  }
  return true;
}

// Pass 1 of column_topk (below): the maximum of each of kColumns interleaved columns (x[i] goes to
// column i % kColumns), by plain vertical SIMD max, and the finiteness check.
constexpr int64_t kColumns = 16;

template <typename T>
bool column_maxima(const T* x, int64_t n, T* colmax) {
  int bad = 0;
  for (int64_t c = 0; c < kColumns; ++c) colmax[c] = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    bad |= !is_finite(v);
    T& m = colmax[i % kColumns];
    m = v > m ? v : m;
  }
  return bad == 0;
}

template <typename T>
inline uint32_t at_least_mask16(const T* p, T thr) {
  uint32_t mask = 0;
  for (int j = 0; j < 16; ++j) mask |= static_cast<uint32_t>(p[j] >= thr) << j;
  return mask;
}

#if defined(__SSE2__)
// Pass 1 for float rows; with kBlocks it also stores, per block of 16 values, the lane-wise
// maximum of its four registers (blockmax has room for n / 16), for column_topk_by_blocks.
template <bool kBlocks>
inline bool column_maxima_sse2(const float* x, int64_t n, float* colmax, __m128* blockmax) {
  const __m128 big = _mm_set1_ps(std::numeric_limits<float>::max());
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  const __m128 lo = _mm_set1_ps(-std::numeric_limits<float>::infinity());
  __m128 m0 = lo, m1 = lo, m2 = lo, m3 = lo, bad = _mm_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128 v0 = _mm_loadu_ps(x + i), v1 = _mm_loadu_ps(x + i + 4);
    const __m128 v2 = _mm_loadu_ps(x + i + 8), v3 = _mm_loadu_ps(x + i + 12);
    m0 = _mm_max_ps(m0, v0);
    m1 = _mm_max_ps(m1, v1);
    m2 = _mm_max_ps(m2, v2);
    m3 = _mm_max_ps(m3, v3);
    if constexpr (kBlocks) blockmax[i / 16] = _mm_max_ps(_mm_max_ps(v0, v1), _mm_max_ps(v2, v3));
    // !(|v| <= max): NaN or Inf
    const __m128 b01 = _mm_or_ps(_mm_cmpnle_ps(_mm_and_ps(v0, abs_mask), big),
                                 _mm_cmpnle_ps(_mm_and_ps(v1, abs_mask), big));
    const __m128 b23 = _mm_or_ps(_mm_cmpnle_ps(_mm_and_ps(v2, abs_mask), big),
                                 _mm_cmpnle_ps(_mm_and_ps(v3, abs_mask), big));
    bad = _mm_or_ps(bad, _mm_or_ps(b01, b23));
  }
  _mm_storeu_ps(colmax, m0);
  _mm_storeu_ps(colmax + 4, m1);
  _mm_storeu_ps(colmax + 8, m2);
  _mm_storeu_ps(colmax + 12, m3);
  int any_bad = _mm_movemask_ps(bad);
  for (int64_t c = 0; c < n - i; ++c) {  // fewer than 16 left
    const float v = x[i + c];
    any_bad |= !is_finite(v);
    colmax[c] = v > colmax[c] ? v : colmax[c];
  }
  return any_bad == 0;
}

template <>
inline bool column_maxima<float>(const float* x, int64_t n, float* colmax) {
  return column_maxima_sse2<false>(x, n, colmax, nullptr);
}

template <>
inline uint32_t at_least_mask16<float>(const float* p, float thr) {
  const __m128 t = _mm_set1_ps(thr);
  const uint32_t m0 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p), t));
  const uint32_t m1 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 4), t));
  const uint32_t m2 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 8), t));
  const uint32_t m3 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 12), t));
  return m0 | (m1 << 4) | (m2 << 8) | (m3 << 12);
}
#endif

// The k-th largest of the kColumns column maxima: the least of those with fewer than k strictly
// above them (counting beats sorting 16 values).
template <typename T>
T kth_largest_column_max(const T* colmax, int64_t k) {
  T thr = std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < kColumns; ++c) {
    int above = 0;
    for (int64_t d = 0; d < kColumns; ++d) above += colmax[d] > colmax[c];
    thr = above < k && colmax[c] < thr ? colmax[c] : thr;
  }
  return thr;
}

#if defined(__SSE2__)
// The same with all 16 counts in four registers at once: the scalar double loop above compiles to
// 256 dependent compare-and-adds, ~0.2 us a row, as much as pass 1 itself.
template <>
inline float kth_largest_column_max<float>(const float* colmax, int64_t k) {
  const __m128 c0 = _mm_loadu_ps(colmax), c1 = _mm_loadu_ps(colmax + 4);
  const __m128 c2 = _mm_loadu_ps(colmax + 8), c3 = _mm_loadu_ps(colmax + 12);
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;  // lane c: values above colmax[c]
  for (int64_t d = 0; d < kColumns; ++d) {
    const __m128 v = _mm_set1_ps(colmax[d]);  // true lanes are -1: subtracting counts them
    a0 = _mm_sub_epi32(a0, _mm_castps_si128(_mm_cmpgt_ps(v, c0)));
    a1 = _mm_sub_epi32(a1, _mm_castps_si128(_mm_cmpgt_ps(v, c1)));
    a2 = _mm_sub_epi32(a2, _mm_castps_si128(_mm_cmpgt_ps(v, c2)));
    a3 = _mm_sub_epi32(a3, _mm_castps_si128(_mm_cmpgt_ps(v, c3)));
  }
  const __m128i kv = _mm_set1_epi32(static_cast<int>(k));
  const __m128 inf = _mm_set1_ps(std::numeric_limits<float>::infinity());
  auto eligible = [&](__m128 c, __m128i above) {  // c where fewer than k are above it, else +inf
    const __m128 ok = _mm_castsi128_ps(_mm_cmplt_epi32(above, kv));
    return _mm_or_ps(_mm_and_ps(ok, c), _mm_andnot_ps(ok, inf));
  };
  __m128 m = _mm_min_ps(_mm_min_ps(eligible(c0, a0), eligible(c1, a1)),
                        _mm_min_ps(eligible(c2, a2), eligible(c3, a3)));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
#endif

// Picks T_k among the m candidates of pass 2, which arrive in index order. Up to kMaxRanked of
// them (float with SSE2) are collected and placed by rank: candidate i goes to place
// #{j : c_j > c_i, or c_j == c_i and j < i}, m^2 SIMD compares without a branch. Measured at
// n = 784 (uniform rows): ~20 % faster than insertion at k = 8 (m ~ 10.5), even at k <= 2,
// slower from m ~ 50 (hence the cap). More candidates (many ties at the threshold), and double
// rows, go to the best-first buffer by insertion, whose data-dependent loop mispredicts about
// once per candidate. For column_topk only: k <= kColumns.
template <typename T>
class TopKSelection {
 public:
#if defined(__SSE2__)
  static constexpr int64_t kMaxRanked = std::is_same<T, float>::value ? 40 : 0;
#else
  static constexpr int64_t kMaxRanked = 0;
#endif

  TopKSelection(const T* x, int64_t k, T* val, int64_t* idx) : x_(x), k_(k), val_(val), idx_(idx) {}

  void add(int64_t i) {
    if constexpr (kMaxRanked > 0) {
      if (m_ < kMaxRanked) {
        cv_[m_] = x_[i];
        ci_[m_++] = static_cast<int32_t>(i);
        return;
      }
      if (m_ == kMaxRanked) {  // one more than fits: insert those collected, then insert all
        for (int64_t c = 0; c < kMaxRanked; ++c) insert(ci_[c]);
        ++m_;
      }
    }
    insert(i);
  }

  void finish() {
    if constexpr (kMaxRanked > 0) {
      if (m_ <= kMaxRanked) place_by_rank();
    }
  }

 private:
  void insert(int64_t i) {
    const T v = x_[i];
    if (count_ < k_) {
      insert_best(val_, idx_, count_++, k_, v, i);
    } else if (v > val_[k_ - 1]) {
      insert_best(val_, idx_, k_, k_, v, i);
    }
  }

  void place_by_rank();

  const T* x_;
  int64_t k_;
  T* val_;
  int64_t* idx_;
  int64_t m_ = 0, count_ = 0;
  T cv_[kMaxRanked + 4];  // + padding to whole registers
  int32_t ci_[kMaxRanked + 1];
};

template <typename T>
void TopKSelection<T>::place_by_rank() {}  // kMaxRanked == 0: never called

#if defined(__SSE2__)
template <>
inline void TopKSelection<float>::place_by_rank() {
  const int64_t padded = (m_ + 3) & ~int64_t{3};
  for (int64_t j = m_; j < padded; ++j) cv_[j] = -std::numeric_limits<float>::infinity();  // never above
  float vals[kColumns + 1];  // place k (>= k_) collects all candidates outside T_k
  int64_t idxs[kColumns + 1];
  const __m128i lanes = _mm_setr_epi32(0, 1, 2, 3), four = _mm_set1_epi32(4);
  for (int64_t i = 0; i < m_; ++i) {
    const __m128 v = _mm_set1_ps(cv_[i]);
    const __m128i iv = _mm_set1_epi32(static_cast<int>(i));
    __m128i above = _mm_setzero_si128(), j = lanes;
    for (int64_t jb = 0; jb < padded; jb += 4) {
      const __m128 c = _mm_loadu_ps(cv_ + jb);
      const __m128i tied_before =
          _mm_and_si128(_mm_castps_si128(_mm_cmpeq_ps(c, v)), _mm_cmpgt_epi32(iv, j));
      above = _mm_sub_epi32(above, _mm_or_si128(_mm_castps_si128(_mm_cmpgt_ps(c, v)), tied_before));
      j = _mm_add_epi32(j, four);
    }
    above = _mm_add_epi32(above, _mm_shuffle_epi32(above, 0x4e));
    above = _mm_add_epi32(above, _mm_shuffle_epi32(above, 0xb1));
    const int64_t place = std::min<int64_t>(_mm_cvtsi128_si32(above), k_);
    vals[place] = cv_[i];
    idxs[place] = ci_[i];
  }
  for (int64_t p = 0; p < k_; ++p) {
    val_[p] = vals[p];
    idx_[p] = idxs[p];
  }
}
#endif

// column_topk below for float rows of n <= kBlockTopKMaxN (SSE2): pass 1 also keeps each block's
// maximum, and pass 2 lists the blocks whose maximum reaches thr (~10 of 49 at n = 784, k = 8) and
// compares only their values: measured ~15 % faster at k = 8, ~25 % at k = 1, even at k = 16
// (where more blocks hold candidates).
constexpr int64_t kBlockTopKMaxN = 256 * 16;

#if defined(__SSE2__)
inline bool column_topk_by_blocks(const float* x, int64_t n, int64_t k, float* val, int64_t* idx) {
  float colmax[kColumns];
  __m128 blockmax[kBlockTopKMaxN / 16];
  if (!column_maxima_sse2<true>(x, n, colmax, blockmax)) return false;
  const float thr = kth_largest_column_max(colmax, k);
  const __m128 t = _mm_set1_ps(thr);
  const int64_t blocks = n / 16;
  int32_t listed[kBlockTopKMaxN / 16];
  int64_t count = 0;
  for (int64_t b = 0; b < blocks; ++b) {  // without a branch per block
    listed[count] = static_cast<int32_t>(b);
    count += _mm_movemask_ps(_mm_cmpge_ps(blockmax[b], t)) != 0;
  }
  TopKSelection<float> selection(x, k, val, idx);
  for (int64_t c = 0; c < count; ++c) {
    const int64_t start = int64_t{listed[c]} * 16;
    for (uint32_t mask = at_least_mask16(x + start, thr); mask != 0; mask &= mask - 1)
      selection.add(start + __builtin_ctz(mask));
  }
  for (int64_t i = blocks * 16; i < n; ++i)
    if (x[i] >= thr) selection.add(i);
  selection.finish();
  return true;
}
#endif

// T_k for k <= kColumns in two passes. Pass 1 takes the maximum of each of kColumns interleaved
// columns (x[i] goes to column i % kColumns) with plain vertical SIMD max, and checks finiteness.
// The k-th largest column maximum thr is a lower bound on the k-th largest value (k different
// columns hold a value >= thr), so T_k lies among the values >= thr: pass 2 finds those with a
// SIMD compare and hands them, in index order, to TopKSelection. Returns false on NaN/Inf.
template <typename T>
bool column_topk(const T* x, int64_t n, int64_t k, T* val, int64_t* idx) {
#if defined(__SSE2__)
  if constexpr (std::is_same<T, float>::value) {
    if (n <= kBlockTopKMaxN) return column_topk_by_blocks(x, n, k, val, idx);
  }
#endif
  T colmax[kColumns];
  if (!column_maxima(x, n, colmax)) return false;
  const T thr = kth_largest_column_max(colmax, k);
  TopKSelection<T> selection(x, k, val, idx);
  // Blocks holding candidates go to a list without a branch per block (few blocks hold any).
  constexpr int64_t kChunk = 64 * 16;
  uint32_t masks[64];
  int32_t starts[64];
  int64_t i = 0;
  while (i + 16 <= n) {
    const int64_t chunk_end = std::min(n - n % 16, i + kChunk);
    int64_t listed = 0;
    for (; i < chunk_end; i += 16) {
      const uint32_t mask = at_least_mask16(x + i, thr);
      masks[listed] = mask;
      starts[listed] = static_cast<int32_t>(i);
      listed += mask != 0;
    }
    for (int64_t b = 0; b < listed; ++b)
      for (uint32_t mask = masks[b]; mask != 0; mask &= mask - 1)
        selection.add(starts[b] + __builtin_ctz(mask));
  }
  for (; i < n; ++i)
    if (x[i] >= thr) selection.add(i);
  selection.finish();
  return true;
}

// T_k of a row, best first, for k <= kStreamMaxK. Returns false on NaN/Inf.
template <typename T>
bool small_topk(const T* x, int64_t n, int64_t k, T* val, int64_t* idx) {
  return k <= kColumns ? column_topk(x, n, k, val, idx) : stream_topk(x, n, k, val, idx);
}

}  // namespace r2et_fast
