// Sorting rows of float / double values for the ranking kernels (ranks, Spearman, Kendall tau,
// top-k for large k) on order-preserving unsigned keys.
//
// float rows: a stable LSD radix sort of packed (key << 32 | payload) words, four passes of 8 bits
// (O(n), no comparisons; ~4 us for n = 784, ~2.3 cycles per word and pass, bound by the counter
// updates and scattered stores). Measured and not adopted at n = 784: three passes of 10-11 bits
// over the keys' varying bits (10 % faster when they vary in <= 30 bits, i.e. rows of one sign;
// 60 % slower at 32 bits, where 2048-bucket prefix sums cost more than the saved pass), and two
// sorts interleaved in one loop (no faster: throughput-bound, not latency-bound).
// double rows: std::sort of (key, payload) pairs.
//
// Keys compare exactly as the values do under < and == (+0.0 and -0.0 share a key), so ties are
// the values' ties. The ops' order "descending value, ties by the lower index" is the ascending
// order of (key ^ ~0, index): the stable sort of words whose payload is the index keeps it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "cpu/row_math.h"

namespace r2et_fast {

// ---- Order-preserving keys -------------------------------------------------------------------
// For finite x, y: key(x) < key(y) iff x < y, and key(x) == key(y) iff x == y. Negative values have
// all bits flipped, positive ones only the sign bit; -0.0 is first mapped to +0.0.
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

// ---- Radix sort of packed words ------------------------------------------------------------------
// Stable LSD radix sort of v[0, n) by the upper 32 bits of each word (the lower half rides along).
// Each pass scatters the first half of the input forwards from the buckets' starts and the second
// half backwards from the buckets' ends, together: two independent chains (runs of one digit would
// otherwise serialise on one counter), and still stable. A pass whose digit is the same in every
// word is skipped. tmp has room for n words; returns whichever of v / tmp holds the result.
// (Counting the digits while the caller builds the words, to save this pass over them, measured
// 10-30 % slower: the build loops no longer vectorise.)
inline uint64_t* radix_sort_hi32(uint64_t* v, uint64_t* tmp, int64_t n) {
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

// ---- Sorting a row -----------------------------------------------------------------------------
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

}  // namespace r2et_fast
