// CPU kernel of topk_pair_agreement, the per-point count behind the top-k thickness (docs/spec.md §2):
// per row, the fraction of the k(n - k) ordered pairs (i in top, j not in top) with
// maps[i] >= maps[j] (ties count as satisfied: 1[h >= 0]).
//
// One row per task under at::parallel_for. A row sorts its n - k "rest" values ascending and
// binary-searches each top value for the number of rest values <= it: O(n log n) per row, never a
// k * n loop. Counts are exact integers; the fraction is formed in double.
//
// Checks: shapes and dtypes up front; per row, inside the row loop, top's indices (in range,
// distinct) and then the finiteness of maps (a row with NaN never reaches the sort). A bad row is
// skipped, and after the loop the op raises, in this order: "top contains an index out of
// range", "top contains duplicate indices", "maps contains NaN or Inf".
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "cpu/row_math.h"
#include "ops/checks.h"
#include "ops/thickness.h"

namespace r2et_fast {
namespace {

at::Tensor topk_pair_agreement_cpu(const at::Tensor& maps_in, const at::Tensor& top_in) {
  check_agreement_args(maps_in, top_in);
  const at::Tensor maps = maps_in.contiguous(), top = top_in.contiguous();
  const int64_t rows = maps.size(0), n = maps.size(1), k = top.size(1);
  const double pairs = static_cast<double>(k) * static_cast<double>(n - k);
  at::Tensor out = at::empty({rows}, maps.options());
  std::atomic<bool> bad_range{false}, bad_duplicate{false}, bad_maps{false};
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "topk_pair_agreement_cpu", [&] {
    const scalar_t* mp = maps.const_data_ptr<scalar_t>();
    const int64_t* tp = top.const_data_ptr<int64_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      // stamp[j] == r + 1 marks j as a member of row r's top: no reset between rows.
      std::vector<int64_t> stamp(n, 0);
      std::vector<scalar_t> rest(n - k);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* x = mp + r * n;
        const int64_t* t = tp + r * k;
        bool ok = true;
        for (int64_t p = 0; p < k; ++p) ok &= t[p] >= 0 && t[p] < n;
        if (!ok) {
          bad_range.store(true, std::memory_order_relaxed);
          continue;
        }
        for (int64_t p = 0; p < k; ++p) {
          const int64_t i = t[p];
          if (stamp[i] == r + 1) {
            bad_duplicate.store(true, std::memory_order_relaxed);
            ok = false;
            break;
          }
          stamp[i] = r + 1;
        }
        if (!ok) continue;
        if (!row_finite(x, n)) {
          bad_maps.store(true, std::memory_order_relaxed);
          continue;
        }
        int64_t m = 0;
        for (int64_t j = 0; j < n; ++j)
          if (stamp[j] != r + 1) rest[m++] = x[j];
        std::sort(rest.begin(), rest.end());  // m == n - k: the indices are distinct
        int64_t satisfied = 0;
        for (int64_t p = 0; p < k; ++p)  // rest values <= the top value (-0.0 == +0.0)
          satisfied += std::upper_bound(rest.begin(), rest.end(), x[t[p]]) - rest.begin();
        op[r] = static_cast<scalar_t>(static_cast<double>(satisfied) / pairs);
      }
    });
  });
  TORCH_CHECK_VALUE(!bad_range.load(), "top contains an index out of range [0, ", n, ")");
  TORCH_CHECK_VALUE(!bad_duplicate.load(), "top contains duplicate indices");
  if (bad_maps.load()) raise_non_finite("maps");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) { m.impl("topk_pair_agreement", &topk_pair_agreement_cpu); }

}  // namespace r2et_fast
