// Kendall tau-b of two rows, ties handled as scipy.stats.kendalltau (variant "b"):
//   tau_b = (P - T_x - T_y + T_xy - 2 D) / sqrt((P - T_x) (P - T_y)),
// P = n(n-1)/2 pairs, T_x / T_y / T_xy pairs tied in x / in y / in both, D discordant pairs. All
// counts are exact integers; only the final division rounds. NaN when either side is constant.
//
// By n (float rows; thresholds measured, see benchmarks/RESULTS.md, "Rank metrics"):
// - n <= kDirectTauMaxN: every pair directly;
// - kRankedTauMinN <= n <= kBitsetInversionsMaxN: two radix sorts and the bitset inversion count
//   (tau_b_ranked below);
// - otherwise Knight's algorithm with the merge count: one radix sort by x, then a merge sort of
//   the y keys in x order counting inversions.
// double rows always take the direct or merge way (std::sort of 64-bit key pairs).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "cpu/inversions.h"
#include "cpu/radix_sort.h"

namespace r2et_fast {

// Tau-b of up to this many values counts all pairs directly.
constexpr int64_t kDirectTauMaxN = 64;
// From this many values (float) the two radix sorts + bitset count beat one radix sort + merge
// count: below it the sorts' fixed costs (4 x 256-bucket prefix sums per sort) dominate.
constexpr int64_t kRankedTauMinN = 256;

inline double tau_b_from_counts(int64_t n, int64_t ties_x, int64_t ties_y, int64_t ties_xy,
                                int64_t discordant) {
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

// Scratch for Knight's algorithm on one thread's rows.
template <typename T>
class TauScratch;

template <>
class TauScratch<float> {
 public:
  explicit TauScratch(int64_t n) : words_(n), tmp_(n), ranks_(n), ys_(n), buf_(n) {}

  // Tau-b of finite rows x, y of n > kDirectTauMaxN values.
  double tau_b(const float* x, const float* y, int64_t n) {
    int64_t ties_x, ties_xy;
    const uint64_t* s = sort_by_x_then_y(x, y, n, &ties_x, &ties_xy);
    if (n >= kRankedTauMinN && n <= kBitsetInversionsMaxN) return tau_b_ranked(s, n, ties_x, ties_xy);
    // Knight's merge count: the y keys in x order, merge-sorted.
    for (int64_t r = 0; r < n; ++r) ys_[r] = static_cast<uint32_t>(s[r]);
    uint32_t* sorted_y;
    const int64_t discordant = sort_counting_inversions(ys_.data(), buf_.data(), n, &sorted_y);
    return tau_b_from_counts(n, ties_x, tied_pairs(sorted_y, n), ties_xy, discordant);
  }

 private:
  // (x key << 32 | y key) words sorted by x, ties by y (a stable radix sort by x, then each run of
  // tied x sorted whole); counts the pairs tied in x and in both.
  uint64_t* sort_by_x_then_y(const float* x, const float* y, int64_t n, int64_t* ties_x, int64_t* ties_xy) {
    for (int64_t i = 0; i < n; ++i)
      words_[i] = (static_cast<uint64_t>(order_key(x[i])) << 32) | order_key(y[i]);
    uint64_t* s = radix_sort_hi32(words_.data(), tmp_.data(), n);  // by x, stable
    *ties_x = *ties_xy = 0;
    // Ties in x are rare in continuous data: look for one without a branch per element first
    // (the run loop below costs ~1 us at n = 784 even when it finds none).
    bool tied = false;
    for (int64_t p = 1; p < n; ++p) tied |= ((s[p] ^ s[p - 1]) >> 32) == 0;
    if (!tied) return s;
    for (int64_t lo = 0; lo < n;) {
      const uint32_t kx = static_cast<uint32_t>(s[lo] >> 32);
      int64_t hi = lo + 1;
      while (hi < n && static_cast<uint32_t>(s[hi] >> 32) == kx) ++hi;
      if (hi - lo > 1) {  // a run of tied x: order it by y too, and count joint ties
        std::sort(s + lo, s + hi);
        *ties_x += (hi - lo) * (hi - lo - 1) / 2;
        *ties_xy += tied_pairs(s + lo, hi - lo);
      }
      lo = hi;
    }
    return s;
  }

  // s: the words in x order, ties by y. A second stable radix sort, of (y key << 32 | x position)
  // words, gives each position its rank in y with ties in y broken by x position. Then in x order
  // a pair tied in x has its y ranks ascending (ties by y), and so has a pair tied in y (ties by
  // position): the inversions of the ranks are exactly the discordant pairs.
  double tau_b_ranked(const uint64_t* s, int64_t n, int64_t ties_x, int64_t ties_xy) {
    uint64_t* by_y = s == words_.data() ? tmp_.data() : words_.data();
    uint64_t* spare = s == words_.data() ? words_.data() : tmp_.data();  // s itself: no longer read
    for (int64_t p = 0; p < n; ++p) by_y[p] = (s[p] << 32) | static_cast<uint64_t>(p);
    const uint64_t* t = radix_sort_hi32(by_y, spare, n);
    // Ranks, and the pairs tied in y: run counts the earlier members of the current run of equal y.
    int64_t ties_y = 0, run = 0;
    ranks_[static_cast<uint32_t>(t[0])] = 0;
    for (int64_t q = 1; q < n; ++q) {
      run = (t[q] >> 32) == (t[q - 1] >> 32) ? run + 1 : 0;
      ties_y += run;
      ranks_[static_cast<uint32_t>(t[q])] = static_cast<uint16_t>(q);
    }
    return tau_b_from_counts(n, ties_x, ties_y, ties_xy, bitset_inversions(ranks_.data(), n));
  }

  std::vector<uint64_t> words_, tmp_;
  std::vector<uint16_t> ranks_;  // n <= kBitsetInversionsMaxN on that path
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

}  // namespace r2et_fast
