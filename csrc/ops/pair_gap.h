// Options of the top-k pair-gap op, parsed and checked once for the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "ops/checks.h"

namespace r2et_fast {

enum class Pairs { kAll, kAnchor, kMm };
enum class Transform { kLinear, kExp };

struct PairGapSpec {
  Pairs pairs;
  Transform transform;
  int64_t above = 0;          // anchor: pairs (rank k-1-t, anchor), t = 1..above
  int64_t below = 0;          // anchor: pairs (anchor, rank k-1+t), t = 1..below; mm: k' pairs
  int64_t n_pairs_total = 0;  // number of explicit pairs (0 for "all")
  int64_t ranks_needed = 0;   // how many leading ranks the selection must sort
};

inline Pairs parse_pairs(c10::string_view pairs) {
  if (pairs == "all") return Pairs::kAll;
  if (pairs == "anchor") return Pairs::kAnchor;
  TORCH_CHECK_VALUE(pairs == "mm", "pairs must be one of 'all', 'anchor', 'mm', got '",
                    std::string(pairs), "'");
  return Pairs::kMm;
}

inline Transform parse_transform(c10::string_view transform) {
  if (transform == "linear") return Transform::kLinear;
  TORCH_CHECK_VALUE(transform == "exp", "transform must be 'linear' or 'exp', got '",
                    std::string(transform), "'");
  return Transform::kExp;
}

// anchor (N): the k-th feature (rank k-1) against the N ranks just above and the N just below it,
// clipped to what exists. mm (k'): rank k-1-m against rank k+m, m = 0..k'-1, k' <= min(k, n-k).
inline PairGapSpec parse_pair_gap(c10::string_view pairs, c10::string_view transform, int64_t k,
                                  int64_t n, int64_t n_pairs) {
  PairGapSpec s{};
  s.pairs = parse_pairs(pairs);
  s.transform = parse_transform(transform);
  if (s.pairs == Pairs::kAnchor) {
    TORCH_CHECK_VALUE(n_pairs >= 1, "n_pairs must be >= 1 for pairs='anchor', got ", n_pairs);
    s.above = std::min(n_pairs, k - 1);
    s.below = std::min(n_pairs, n - k);
    s.n_pairs_total = s.above + s.below;
    s.ranks_needed = k + s.below;
  } else if (s.pairs == Pairs::kMm) {
    TORCH_CHECK_VALUE(n_pairs >= 1 && n_pairs <= std::min(k, n - k),
                      "n_pairs must satisfy 1 <= n_pairs <= min(k, n_features - k) = ",
                      std::min(k, n - k), " for pairs='mm', got ", n_pairs);
    s.below = n_pairs;
    s.n_pairs_total = n_pairs;
    s.ranks_needed = k + n_pairs;
  }
  return s;
}

// Rank positions (0 = best) of the explicit pairs: hi ranks above lo.
inline void fill_pair_ranks(const PairGapSpec& s, int64_t k, int64_t* hi, int64_t* lo) {
  int64_t p = 0;
  if (s.pairs == Pairs::kAnchor) {
    for (int64_t t = 1; t <= s.above; ++t, ++p) {
      hi[p] = k - 1 - t;
      lo[p] = k - 1;
    }
    for (int64_t t = 1; t <= s.below; ++t, ++p) {
      hi[p] = k - 1;
      lo[p] = k - 1 + t;
    }
  } else {
    for (int64_t m = 0; m < s.below; ++m, ++p) {
      hi[p] = k - 1 - m;
      lo[p] = k + m;
    }
  }
}

inline void check_pair_gap_backward_args(const at::Tensor& grad, const at::Tensor& maps,
                                         const at::Tensor& hi, const at::Tensor& lo) {
  check_maps(maps, "maps", 2);
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == maps.size(0),
                    "grad must have shape (batch,), got ", grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == maps.scalar_type(), "grad must have the dtype of maps");
  TORCH_CHECK_VALUE(hi.dim() == 2 && lo.dim() == 2 && hi.size(0) == maps.size(0) &&
                        lo.size(0) == maps.size(0),
                    "hi and lo must be (batch, m) index tensors");
  TORCH_CHECK_TYPE(hi.scalar_type() == at::kLong && lo.scalar_type() == at::kLong,
                   "hi and lo must be int64");
  TORCH_CHECK_VALUE(hi.size(1) >= 1 && hi.size(1) < maps.size(1), "hi must hold 1..n-1 indices per row");
}

}  // namespace r2et_fast
