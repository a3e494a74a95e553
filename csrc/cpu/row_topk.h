// T_k of one row (the k largest values, best first, ties by the lower index: the ops' ranking
// order), by selection for k <= kStreamMaxK and by a sort of the row above it. Used by P@k and by
// the fused attack loop, which records P@k at every step.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/radix_sort.h"
#include "cpu/topk_select.h"

namespace r2et_fast {
namespace cpu {

template <typename T>
class RowTopK {
 public:
  RowTopK(int64_t n, int64_t k) : k_(k), val_(k), idx_(k), sorter_(k <= kStreamMaxK ? 0 : n) {}

  // T_k of x (n values) into idx(); false, leaving idx() undefined, when x has NaN/Inf.
  bool select(const T* x, int64_t n) {
    if (k_ <= kStreamMaxK) return small_topk(x, n, k_, val_.data(), idx_.data());
    if (!sorter_.sort(x, n, /*descending=*/true)) return false;
    for (int64_t i = 0; i < k_; ++i) idx_[i] = sorter_.index(i);
    return true;
  }
  const int64_t* idx() const { return idx_.data(); }

 private:
  int64_t k_;
  std::vector<T> val_;
  std::vector<int64_t> idx_;
  RowSorter<T> sorter_;
};

// |top_a ∩ top_b| / k for two T_k index lists, with mark (n entries, all zero) as scratch that is
// left all zero again.
inline double overlap(const int64_t* top_a, const int64_t* top_b, int64_t k, std::vector<uint8_t>& mark) {
  for (int64_t i = 0; i < k; ++i) mark[top_a[i]] = 1;
  int64_t hits = 0;
  for (int64_t i = 0; i < k; ++i) hits += mark[top_b[i]];
  for (int64_t i = 0; i < k; ++i) mark[top_a[i]] = 0;
  return static_cast<double>(hits) / static_cast<double>(k);
}

}  // namespace cpu
}  // namespace r2et_fast
