// CPU kernels for the ranking ops: top-k indices, ranks, P@k, Kendall tau-b (all features and
// restricted to T_k), Spearman. One row per task under at::parallel_for; every row is O(n log n)
// (O(n) for P@k and top-k), never O(n^2).
//
// Inputs are checked for NaN/Inf row by row inside the row loop (the row is in cache then), never
// in a separate pass; a row with NaN/Inf is skipped (NaN never reaches a sort) and the op raises
// "<name> contains NaN or Inf" after the loop, checking a before b as check_pair does.
//
// Sorting works on order-preserving unsigned keys (order_key): float rows are radix-sorted as
// packed (key << 32 | payload) words, double rows std::sort (key, payload) pairs. Keys compare
// exactly as the values do under < and == (+0.0 and -0.0 share a key), so ties are unchanged.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu/row_math.h"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

// k up to this selects T_k without sorting (column bound for k <= kColumns, else one streaming
// pass); larger k radix-sorts (float) or sorts (double) the row.
constexpr int64_t kStreamMaxK = 32;
// Kendall tau-b of up to this many values counts all pairs directly; more uses Knight's algorithm.
constexpr int64_t kDirectTauMaxN = 64;

template <typename T>
inline bool is_finite(T v) {
  return std::abs(v) <= std::numeric_limits<T>::max();  // false for NaN and +-Inf
}

void check_row_count(int64_t n) {
  TORCH_CHECK_VALUE(n <= std::numeric_limits<int32_t>::max(), "at most 2^31 - 1 features are supported, got ",
                    n);
}

// ---- Order-preserving keys -------------------------------------------------------------------
// For finite x, y: key(x) < key(y) iff x < y, and key(x) == key(y) iff x == y.
inline uint32_t order_key(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u = (u & 0x7fffffffu) == 0 ? 0u : u;  // -0.0 == +0.0: one key
  return u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);
}
inline uint64_t order_key(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  u = (u & ~(uint64_t{1} << 63)) == 0 ? 0u : u;
  return u ^ (static_cast<uint64_t>(static_cast<int64_t>(u) >> 63) | (uint64_t{1} << 63));
}

// Stable LSD radix sort of v[0, n) by the upper 32 bits of each word (the lower half rides along).
// Each pass scatters the first half of the input forwards from the buckets' starts and the second
// half backwards from the buckets' ends, together: two independent chains (runs of one digit would
// otherwise serialise on one counter), and still stable. tmp has room for n words; returns
// whichever of v / tmp holds the result.
uint64_t* radix_sort_hi32(uint64_t* v, uint64_t* tmp, int64_t n) {
  const int64_t half = n / 2;
  uint32_t hist[2][4][256];  // two sets of counters, summed: again two independent chains
  std::memset(hist, 0, sizeof hist);
  for (int64_t i = 0; i < half; ++i) {
    const uint32_t h = static_cast<uint32_t>(v[i] >> 32), g = static_cast<uint32_t>(v[half + i] >> 32);
    ++hist[0][0][h & 255];
    ++hist[1][0][g & 255];
    ++hist[0][1][(h >> 8) & 255];
    ++hist[1][1][(g >> 8) & 255];
    ++hist[0][2][(h >> 16) & 255];
    ++hist[1][2][(g >> 16) & 255];
    ++hist[0][3][h >> 24];
    ++hist[1][3][g >> 24];
  }
  for (int64_t i = 2 * half; i < n; ++i) {
    const uint32_t g = static_cast<uint32_t>(v[i] >> 32);
    ++hist[1][0][g & 255];
    ++hist[1][1][(g >> 8) & 255];
    ++hist[1][2][(g >> 16) & 255];
    ++hist[1][3][g >> 24];
  }
  uint64_t* src = v;
  uint64_t* dst = tmp;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 32 + 8 * pass;
    const uint32_t* c0 = hist[0][pass];
    const uint32_t* c1 = hist[1][pass];
    const uint32_t d0 = (src[0] >> shift) & 255;
    if (c0[d0] + c1[d0] == static_cast<uint32_t>(n)) continue;  // one digit: nothing moves
    uint32_t start[256], end[256];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      start[d] = sum;
      sum += c0[d] + c1[d];
      end[d] = sum;
    }
    int64_t i = 0, j = n - 1;
    for (; i < half; ++i, --j) {
      const uint64_t x = src[i], y = src[j];
      dst[start[(x >> shift) & 255]++] = x;
      dst[--end[(y >> shift) & 255]] = y;
    }
    if (i == j) dst[start[(src[i] >> shift) & 255]++] = src[i];  // odd n: the middle word
    std::swap(src, dst);
  }
  return src;
}

// Sorts one row by value, giving per position the value's key and feature index. Ascending, or
// descending with ties broken by the lower index (the ops' ranking order). Returns false, sorting
// nothing, when the row has NaN/Inf.
template <typename T>
class RowSorter;

template <>
class RowSorter<float> {
 public:
  explicit RowSorter(int64_t n) : words_(n), tmp_(n) {}
  bool sort(const float* x, int64_t n, bool descending) {
    const uint32_t flip = descending ? ~0u : 0u;
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      bad |= !is_finite(x[i]);
      // The low half is the index, so the stable sort keeps equal values in index order.
      words_[i] = (static_cast<uint64_t>(order_key(x[i]) ^ flip) << 32) | static_cast<uint64_t>(i);
    }
    if (bad) return false;
    out_ = radix_sort_hi32(words_.data(), tmp_.data(), n);
    return true;
  }
  uint32_t key(int64_t r) const { return static_cast<uint32_t>(out_[r] >> 32); }
  int64_t index(int64_t r) const { return static_cast<uint32_t>(out_[r]); }

 private:
  std::vector<uint64_t> words_, tmp_;
  const uint64_t* out_ = nullptr;
};

template <>
class RowSorter<double> {
 public:
  explicit RowSorter(int64_t n) : pairs_(n) {}
  bool sort(const double* x, int64_t n, bool descending) {
    const uint64_t flip = descending ? ~uint64_t{0} : 0;
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      bad |= !is_finite(x[i]);
      pairs_[i] = {order_key(x[i]) ^ flip, static_cast<uint64_t>(i)};
    }
    if (bad) return false;
    std::sort(pairs_.begin(), pairs_.begin() + n);  // (key, index): ties by the lower index
    return true;
  }
  uint64_t key(int64_t r) const { return pairs_[r].first; }
  int64_t index(int64_t r) const { return static_cast<int64_t>(pairs_[r].second); }

 private:
  std::vector<std::pair<uint64_t, uint64_t>> pairs_;
};

// ---- Top-k for small k ---------------------------------------------------------------------------
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

// T_k for k <= kColumns in two passes. Pass 1 takes the maximum of each of kColumns interleaved
// columns (x[i] goes to column i % kColumns) with plain vertical SIMD max, and checks finiteness.
// The k-th largest column maximum thr is a lower bound on the k-th largest value (k different
// columns hold a value >= thr), so T_k lies among the values >= thr: pass 2 finds those with a
// SIMD compare and feeds them, in index order, to the best-first buffer. Returns false on NaN/Inf.
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
template <>
bool column_maxima<float>(const float* x, int64_t n, float* colmax) {
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
inline uint32_t at_least_mask16<float>(const float* p, float thr) {
  const __m128 t = _mm_set1_ps(thr);
  const uint32_t m0 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p), t));
  const uint32_t m1 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 4), t));
  const uint32_t m2 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 8), t));
  const uint32_t m3 = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 12), t));
  return m0 | (m1 << 4) | (m2 << 8) | (m3 << 12);
}
#endif

template <typename T>
bool column_topk(const T* x, int64_t n, int64_t k, T* val, int64_t* idx) {
  T colmax[kColumns];
  if (!column_maxima(x, n, colmax)) return false;
  // thr = the k-th largest column maximum = the least of those with fewer than k strictly above
  // them (branch-free counting beats sorting 16 values).
  T thr = std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < kColumns; ++c) {
    int above = 0;
    for (int64_t d = 0; d < kColumns; ++d) above += colmax[d] > colmax[c];
    thr = above < k && colmax[c] < thr ? colmax[c] : thr;
  }
  int64_t count = 0;
  auto take = [&](int64_t i) {
    const T v = x[i];
    if (count < k) {
      insert_best(val, idx, count++, k, v, i);
    } else if (v > val[k - 1]) {
      insert_best(val, idx, k, k, v, i);
    }
  };
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
      for (uint32_t mask = masks[b]; mask != 0; mask &= mask - 1) take(starts[b] + __builtin_ctz(mask));
  }
  for (; i < n; ++i)
    if (x[i] >= thr) take(i);
  return true;
}

// T_k of a row, best first, for k <= kStreamMaxK. Returns false on NaN/Inf.
template <typename T>
bool small_topk(const T* x, int64_t n, int64_t k, T* val, int64_t* idx) {
  return k <= kColumns ? column_topk(x, n, k, val, idx) : stream_topk(x, n, k, val, idx);
}

// ---- Kendall tau-b -------------------------------------------------------------------------------
double tau_b_from_counts(int64_t n, int64_t ties_x, int64_t ties_y, int64_t ties_xy, int64_t discordant) {
  const int64_t pairs = n * (n - 1) / 2;
  const double denom =
      std::sqrt(static_cast<double>(pairs - ties_x)) * std::sqrt(static_cast<double>(pairs - ties_y));
  if (denom == 0.0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t numer = pairs - ties_x - ties_y + ties_xy - 2 * discordant;
  return static_cast<double>(numer) / denom;
}

// Tau-b by looking at every pair: for small n. NaN when either side is constant.
template <typename T>
double kendall_tau_b_direct(const T* x, const T* y, int64_t n) {
  int64_t s = 0, tx = 0, ty = 0;
  for (int64_t i = 0; i + 1 < n; ++i) {
    const T xi = x[i], yi = y[i];
    for (int64_t j = i + 1; j < n; ++j) {
      const int dx = (xi > x[j]) - (xi < x[j]);
      const int dy = (yi > y[j]) - (yi < y[j]);
      s += dx * dy;
      tx += dx == 0;
      ty += dy == 0;
    }
  }
  const int64_t pairs = n * (n - 1) / 2;
  const double denom =
      std::sqrt(static_cast<double>(pairs - tx)) * std::sqrt(static_cast<double>(pairs - ty));
  if (denom == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(s) / denom;  // s = concordant - discordant
}

// Number of pairs inside runs of equal consecutive values: sum over runs of t(t-1)/2.
template <typename K>
int64_t tied_pairs(const K* v, int64_t n) {
  int64_t total = 0, run = 1;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] == v[i - 1]) {
      ++run;
    } else {
      total += run * (run - 1) / 2;
      run = 1;
    }
  }
  return total + run * (run - 1) / 2;
}

// Merges the runs src[lo, mid) and src[mid, hi) into dst and returns the inversions between them
// (pairs with the left element above the right one). Branch-free; merges from both ends at once
// (two independent dependency chains) for min(left, right) steps, in which neither end can run
// out of either run, then from the front only.
template <typename K>
struct RunMerge {
  const K* src;
  K* dst;
  int64_t mid, i, j, o, ib, jb, ob, inversions = 0;
  RunMerge(const K* s, K* d, int64_t lo, int64_t m, int64_t hi)
      : src(s), dst(d), mid(m), i(lo), j(m), o(lo), ib(m - 1), jb(hi - 1), ob(hi - 1) {}
  inline void step_both() {
    const K l = src[i], r = src[j];
    const int64_t take_r = r < l;
    dst[o++] = take_r ? r : l;
    // r goes before every left element the front has not taken (all of them exceed r).
    inversions += (mid - i) & -take_r;
    i += 1 - take_r;
    j += take_r;
    const K lb = src[ib], rb = src[jb];
    const int64_t take_l = rb < lb;  // ties: the right element goes last
    dst[ob--] = take_l ? lb : rb;
    // rb goes after every left element the back has taken (all of them exceed rb).
    inversions += (mid - 1 - ib) & (take_l - 1);
    ib -= take_l;
    jb -= 1 - take_l;
  }
  void finish() {
    while (i <= ib && j <= jb) {
      const K l = src[i], r = src[j];
      const int64_t take_r = r < l;
      dst[o++] = take_r ? r : l;
      inversions += (mid - i) & -take_r;
      i += 1 - take_r;
      j += take_r;
    }
    inversions += (jb + 1 - j) * (mid - i);  // right leftovers lie below every left element the back took
    while (i <= ib) dst[o++] = src[i++];
    while (j <= jb) dst[o++] = src[j++];
  }
};

// Sorts v[0, n) ascending and returns the number of inversions (pairs i < j with v[i] > v[j];
// equal values are not inversions): bottom-up merge sort with branch-free merges, two merges of
// a level interleaved where both are full (four independent chains). tmp has room for n; *sorted
// is set to whichever of v / tmp holds the result.
template <typename K>
int64_t sort_counting_inversions(K* v, K* tmp, int64_t n, K** sorted) {
  int64_t inversions = 0;
  for (int64_t i = 0; i + 1 < n; i += 2) {  // width 1: compare-exchange pairs
    const K l = v[i], r = v[i + 1];
    const int64_t swap = r < l;
    v[i] = swap ? r : l;
    v[i + 1] = swap ? l : r;
    inversions += swap;
  }
  K* src = v;
  K* dst = tmp;
  for (int64_t width = 2; width < n; width *= 2) {
    int64_t lo = 0;
    for (; lo + 4 * width <= n; lo += 4 * width) {
      RunMerge<K> p(src, dst, lo, lo + width, lo + 2 * width);
      RunMerge<K> q(src, dst, lo + 2 * width, lo + 3 * width, lo + 4 * width);
      for (int64_t step = 0; step < width; ++step) {
        p.step_both();
        q.step_both();
      }
      inversions += p.inversions + q.inversions;
    }
    for (; lo < n; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      RunMerge<K> p(src, dst, lo, mid, hi);
      const int64_t both = std::min(mid - lo, hi - mid);
      for (int64_t step = 0; step < both; ++step) p.step_both();
      p.finish();
      inversions += p.inversions;
    }
    std::swap(src, dst);
  }
  *sorted = src;
  return inversions;
}

// Knight's O(n log n) tau-b from per-position keys (x sorted, ties by y; then y's inversions).
template <typename T>
class TauScratch;

template <>
class TauScratch<float> {
 public:
  explicit TauScratch(int64_t n) : words_(n), tmp_(n), ys_(n), buf_(n) {}
  double tau_b(const float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      words_[i] = (static_cast<uint64_t>(order_key(x[i])) << 32) | order_key(y[i]);
    uint64_t* s = radix_sort_hi32(words_.data(), tmp_.data(), n);  // by x, stable
    int64_t ties_x = 0, ties_xy = 0;
    for (int64_t lo = 0; lo < n;) {
      const uint32_t kx = static_cast<uint32_t>(s[lo] >> 32);
      int64_t hi = lo + 1;
      while (hi < n && static_cast<uint32_t>(s[hi] >> 32) == kx) ++hi;
      if (hi - lo > 1) {  // a run of tied x: order it by y too, and count joint ties
        std::sort(s + lo, s + hi);
        ties_x += (hi - lo) * (hi - lo - 1) / 2;
        ties_xy += tied_pairs(s + lo, hi - lo);
      }
      lo = hi;
    }
    for (int64_t r = 0; r < n; ++r) ys_[r] = static_cast<uint32_t>(s[r]);
    uint32_t* sorted_y;
    const int64_t discordant = sort_counting_inversions(ys_.data(), buf_.data(), n, &sorted_y);
    return tau_b_from_counts(n, ties_x, tied_pairs(sorted_y, n), ties_xy, discordant);
  }

 private:
  std::vector<uint64_t> words_, tmp_;
  std::vector<uint32_t> ys_, buf_;
};

template <>
class TauScratch<double> {
 public:
  explicit TauScratch(int64_t n) : pairs_(n), ys_(n), buf_(n) {}
  double tau_b(const double* x, const double* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) pairs_[i] = {order_key(x[i]), order_key(y[i])};
    std::sort(pairs_.begin(), pairs_.begin() + n);
    int64_t ties_x = 0, ties_xy = 0;
    for (int64_t lo = 0; lo < n;) {
      int64_t hi = lo + 1;
      while (hi < n && pairs_[hi].first == pairs_[lo].first) ++hi;
      if (hi - lo > 1) {
        ties_x += (hi - lo) * (hi - lo - 1) / 2;
        ties_xy += tied_pairs(pairs_.data() + lo, hi - lo);
      }
      lo = hi;
    }
    for (int64_t r = 0; r < n; ++r) ys_[r] = pairs_[r].second;
    uint64_t* sorted_y;
    const int64_t discordant = sort_counting_inversions(ys_.data(), buf_.data(), n, &sorted_y);
    return tau_b_from_counts(n, ties_x, tied_pairs(sorted_y, n), ties_xy, discordant);
  }

 private:
  std::vector<std::pair<uint64_t, uint64_t>> pairs_;
  std::vector<uint64_t> ys_, buf_;
};

// Tau-b of finite rows x, y of n values; NaN when either side is constant (as scipy).
template <typename T>
double kendall_tau_b(const T* x, const T* y, int64_t n, TauScratch<T>& scratch) {
  return n <= kDirectTauMaxN ? kendall_tau_b_direct(x, y, n) : scratch.tau_b(x, y, n);
}

// Raises the NaN/Inf error the loop recorded, a before b.
void raise_if_flagged(const std::atomic<bool>& bad_first, const char* first,
                      const std::atomic<bool>* bad_second = nullptr, const char* second = nullptr) {
  if (bad_first.load()) raise_non_finite(first);
  if (bad_second != nullptr && bad_second->load()) raise_non_finite(second);
}

// ---- Ops -------------------------------------------------------------------------------------------

at::Tensor topk_indices_cpu(const at::Tensor& x_in, int64_t k) {
  check_maps(x_in, "x", 2);
  check_k(k, x_in.size(1));
  check_row_count(x_in.size(1));
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows, k}, x.options().dtype(at::kLong));
  std::atomic<bool> bad{false};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "topk_indices_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    int64_t* op = out.mutable_data_ptr<int64_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      if (k <= kStreamMaxK) {
        std::vector<scalar_t> val(k);
        for (int64_t r = begin; r < end; ++r)
          if (!small_topk(xp + r * n, n, k, val.data(), op + r * k)) bad.store(true, std::memory_order_relaxed);
        return;
      }
      RowSorter<scalar_t> sorter(n);
      for (int64_t r = begin; r < end; ++r) {
        if (!sorter.sort(xp + r * n, n, /*descending=*/true)) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t i = 0; i < k; ++i) op[r * k + i] = sorter.index(i);
      }
    });
  });
  raise_if_flagged(bad, "x");
  return out;
}

at::Tensor ranks_cpu(const at::Tensor& x_in) {
  check_maps(x_in, "x");
  check_row_count(x_in.size(1));
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows, n}, x.options().dtype(at::kLong));
  std::atomic<bool> bad{false};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ranks_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    int64_t* op = out.mutable_data_ptr<int64_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      RowSorter<scalar_t> sorter(n);
      for (int64_t r = begin; r < end; ++r) {
        if (!sorter.sort(xp + r * n, n, /*descending=*/true)) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t pos = 0; pos < n; ++pos) op[r * n + sorter.index(pos)] = pos;
      }
    });
  });
  raise_if_flagged(bad, "x");
  return out;
}

at::Tensor precision_at_k_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair_shapes(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  check_row_count(a_in.size(1));
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  std::atomic<bool> bad_a{false}, bad_b{false};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "precision_at_k_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<uint8_t> in_a(n, 0);  // all zero between rows
      auto finish = [&](int64_t r, const int64_t* top_a, const int64_t* top_b) {
        for (int64_t i = 0; i < k; ++i) in_a[top_a[i]] = 1;
        int64_t hits = 0;
        for (int64_t i = 0; i < k; ++i) hits += in_a[top_b[i]];
        for (int64_t i = 0; i < k; ++i) in_a[top_a[i]] = 0;
        op[r] = static_cast<scalar_t>(static_cast<double>(hits) / static_cast<double>(k));
      };
      if (k <= kStreamMaxK) {
        std::vector<scalar_t> val(k);
        std::vector<int64_t> top_a(k), top_b(k);
        for (int64_t r = begin; r < end; ++r) {
          if (!small_topk(ap + r * n, n, k, val.data(), top_a.data())) {
            bad_a.store(true, std::memory_order_relaxed);
            continue;
          }
          if (!small_topk(bp + r * n, n, k, val.data(), top_b.data())) {
            bad_b.store(true, std::memory_order_relaxed);
            continue;
          }
          finish(r, top_a.data(), top_b.data());
        }
        return;
      }
      RowSorter<scalar_t> sorter(n);
      std::vector<int64_t> top_a(k), top_b(k);
      for (int64_t r = begin; r < end; ++r) {
        if (!sorter.sort(ap + r * n, n, /*descending=*/true)) {
          bad_a.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t i = 0; i < k; ++i) top_a[i] = sorter.index(i);
        if (!sorter.sort(bp + r * n, n, /*descending=*/true)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t i = 0; i < k; ++i) top_b[i] = sorter.index(i);
        finish(r, top_a.data(), top_b.data());
      }
    });
  });
  raise_if_flagged(bad_a, "a", &bad_b, "b");
  return out;
}

at::Tensor kendall_tau_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair_shapes(a_in, b_in, 2);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  std::atomic<bool> bad_a{false}, bad_b{false};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "kendall_tau_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      TauScratch<scalar_t> scratch(n);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* ar = ap + r * n;
        const scalar_t* br = bp + r * n;
        if (!row_finite(ar, n)) {
          bad_a.store(true, std::memory_order_relaxed);
          continue;
        }
        if (!row_finite(br, n)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        op[r] = static_cast<scalar_t>(kendall_tau_b(ar, br, n, scratch));
      }
    });
  });
  raise_if_flagged(bad_a, "a", &bad_b, "b");
  return out;
}

at::Tensor kendall_tau_topk_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair_shapes(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  check_row_count(a_in.size(1));
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  std::atomic<bool> bad_a{false}, bad_b{false};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "kendall_tau_topk_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> top(k);
      std::vector<scalar_t> xa(k), xb(k);
      TauScratch<scalar_t> scratch(k);
      const bool stream = k <= kStreamMaxK;
      RowSorter<scalar_t> sorter(stream ? 0 : n);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* ar = ap + r * n;
        const scalar_t* br = bp + r * n;
        if (stream) {
          if (!small_topk(ar, n, k, xa.data(), top.data())) {
            bad_a.store(true, std::memory_order_relaxed);
            continue;
          }
        } else {
          if (!sorter.sort(ar, n, /*descending=*/true)) {
            bad_a.store(true, std::memory_order_relaxed);
            continue;
          }
          for (int64_t i = 0; i < k; ++i) {
            top[i] = sorter.index(i);
            xa[i] = ar[top[i]];
          }
        }
        if (!row_finite(br, n)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t i = 0; i < k; ++i) xb[i] = br[top[i]];
        op[r] = static_cast<scalar_t>(kendall_tau_b(xa.data(), xb.data(), k, scratch));
      }
    });
  });
  raise_if_flagged(bad_a, "a", &bad_b, "b");
  return out;
}

at::Tensor spearman_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair_shapes(a_in, b_in, 2);
  check_row_count(a_in.size(1));
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  std::atomic<bool> bad_a{false}, bad_b{false};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "spearman_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      RowSorter<scalar_t> sorter(n);
      // Centred doubled average ranks d = 2 rank - (n + 1) = lo + hi - n for the tie run [lo, hi)
      // of sorted positions: integers, and their mean is exactly 0, so
      // rho = sum(da db) / sqrt(sum(da^2) sum(db^2)) with no mean pass.
      std::vector<double> da(n);
      for (int64_t r = begin; r < end; ++r) {
        if (!sorter.sort(ap + r * n, n, /*descending=*/false)) {
          bad_a.store(true, std::memory_order_relaxed);
          continue;
        }
        double sxx = 0, syy = 0, sxy = 0;
        for (int64_t lo = 0; lo < n;) {
          int64_t hi = lo + 1;
          while (hi < n && sorter.key(hi) == sorter.key(lo)) ++hi;
          const double d = static_cast<double>(lo + hi - n);
          for (int64_t p = lo; p < hi; ++p) da[sorter.index(p)] = d;
          sxx += static_cast<double>(hi - lo) * d * d;
          lo = hi;
        }
        if (!sorter.sort(bp + r * n, n, /*descending=*/false)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t lo = 0; lo < n;) {
          int64_t hi = lo + 1;
          while (hi < n && sorter.key(hi) == sorter.key(lo)) ++hi;
          const double d = static_cast<double>(lo + hi - n);
          double s = 0;
          for (int64_t p = lo; p < hi; ++p) s += da[sorter.index(p)];
          sxy += s * d;
          syy += static_cast<double>(hi - lo) * d * d;
          lo = hi;
        }
        const double denom = std::sqrt(sxx) * std::sqrt(syy);
        op[r] = static_cast<scalar_t>(denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : sxy / denom);
      }
    });
  });
  raise_if_flagged(bad_a, "a", &bad_b, "b");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) {
  m.impl("topk_indices", &topk_indices_cpu);
  m.impl("ranks", &ranks_cpu);
  m.impl("precision_at_k", &precision_at_k_cpu);
  m.impl("kendall_tau", &kendall_tau_cpu);
  m.impl("kendall_tau_topk", &kendall_tau_topk_cpu);
  m.impl("spearman", &spearman_cpu);
}

}  // namespace r2et_fast
