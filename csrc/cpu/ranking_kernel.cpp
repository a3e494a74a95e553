// CPU kernels for the ranking ops: top-k indices, ranks, P@k, Kendall tau-b (all features and
// restricted to T_k), Spearman. One row per task under at::parallel_for; every row is O(n log n)
// or better (O(n) for P@k and top-k, O(n) radix sorts for ranks and Spearman), never O(n^2).
//
// Inputs are checked for NaN/Inf row by row inside the row loop (the row is in cache then), never
// in a separate pass; a row with NaN/Inf is skipped (NaN never reaches a sort) and the op raises
// "<name> contains NaN or Inf" after the loop, checking a before b as check_pair does.
//
// The per-row machinery lives in headers: cpu/radix_sort.h (order-preserving keys, the radix sort,
// RowSorter), cpu/topk_select.h (T_k for small k), cpu/kendall_tau.h with cpu/inversions.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/kendall_tau.h"
#include "cpu/radix_sort.h"
#include "cpu/row_math.h"
#include "cpu/row_topk.h"
#include "cpu/topk_select.h"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

void check_row_count(int64_t n) {
  TORCH_CHECK_VALUE(n <= std::numeric_limits<int32_t>::max(), "at most 2^31 - 1 features are supported, got ",
                    n);
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
      std::vector<uint8_t> mark(n, 0);
      cpu::RowTopK<scalar_t> top_a(n, k), top_b(n, k);
      for (int64_t r = begin; r < end; ++r) {
        if (!top_a.select(ap + r * n, n)) {
          bad_a.store(true, std::memory_order_relaxed);
          continue;
        }
        if (!top_b.select(bp + r * n, n)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        op[r] = static_cast<scalar_t>(cpu::overlap(top_a.idx(), top_b.idx(), k, mark));
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

// Spearman's rho from centred doubled average ranks d = 2 rank - (n + 1) = lo + hi - n for the tie
// run [lo, hi) of sorted positions: integers whose mean is exactly 0, so
// rho = sum(da db) / sqrt(sum(da^2) sum(db^2)) with no mean pass. Acc accumulates the sums:
// int64_t (exact) while n^3 fits, else double. Without ties (the common case) d = 2p + 1 - n at
// sorted position p and sum(d^2) = n (n^2 - 1) / 3: one pass per side, which also looks for ties;
// a row with ties is redone with the runs.
template <typename Acc, typename T>
class SpearmanRow {
 public:
  explicit SpearmanRow(int64_t n) : sorter_(n), d_(n), da_(n) {}

  // rho of rows a, b into *out; false (nothing computed) when a (*bad_a set) or b has NaN or Inf.
  bool rho(const T* a, const T* b, int64_t n, bool* bad_a, double* out) {
    const int32_t m = static_cast<int32_t>(n);
    const Acc untied = static_cast<Acc>(n) * (static_cast<Acc>(n) * n - 1) / 3;  // sum(d^2), no ties
    if (!sorter_.sort(a, n, /*descending=*/false)) {
      *bad_a = true;
      return false;
    }
    bool tied = false;
    for (int32_t p = 0; p < m; ++p) {
      da_[sorter_.index(p)] = 2 * p + 1 - m;
      tied |= p > 0 && sorter_.key(p) == sorter_.key(p - 1);
    }
    Acc sxx = untied;
    if (tied) {
      sxx = centred_ranks(m);
      for (int32_t p = 0; p < m; ++p) da_[sorter_.index(p)] = d_[p];
    }
    if (!sorter_.sort(b, n, /*descending=*/false)) return false;
    Acc sxy = 0, syy = untied;
    tied = false;
    for (int32_t p = 0; p < m; ++p) {
      sxy += static_cast<Acc>(da_[sorter_.index(p)]) * (2 * p + 1 - m);
      tied |= p > 0 && sorter_.key(p) == sorter_.key(p - 1);
    }
    if (tied) {
      syy = centred_ranks(m);
      sxy = 0;
      for (int32_t p = 0; p < m; ++p) sxy += static_cast<Acc>(da_[sorter_.index(p)]) * d_[p];
    }
    const double denom = std::sqrt(static_cast<double>(sxx)) * std::sqrt(static_cast<double>(syy));
    *out = denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(sxy) / denom;
    return true;
  }

 private:
  // d_ per sorted position of the row the sorter holds, with ties; returns sum(d^2). One forward
  // pass finds each run's start, one backward pass its end, both without branches.
  Acc centred_ranks(int32_t m) {
    int32_t lo = 0;
    d_[0] = 0;
    for (int32_t p = 1; p < m; ++p) {
      lo = sorter_.key(p) == sorter_.key(p - 1) ? lo : p;
      d_[p] = lo;
    }
    int32_t hi = m;  // the end of the run holding p
    Acc sum = 0;
    for (int32_t p = m - 1; p >= 0; --p) {
      d_[p] += hi - m;
      sum += static_cast<Acc>(d_[p]) * d_[p];
      hi = p > 0 && sorter_.key(p) == sorter_.key(p - 1) ? hi : p;
    }
    return sum;
  }

  RowSorter<T> sorter_;
  std::vector<int32_t> d_, da_;
};

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
    auto run = [&](auto acc_zero, int64_t begin, int64_t end) {
      SpearmanRow<decltype(acc_zero), scalar_t> row(n);
      for (int64_t r = begin; r < end; ++r) {
        bool row_bad_a = false;
        double rho;
        if (row.rho(ap + r * n, bp + r * n, n, &row_bad_a, &rho)) {
          op[r] = static_cast<scalar_t>(rho);
        } else {
          (row_bad_a ? bad_a : bad_b).store(true, std::memory_order_relaxed);
        }
      }
    };
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      if (n <= (int64_t{1} << 20)) {  // n^3 < 2^63: every sum fits an int64
        run(int64_t{0}, begin, end);
      } else {
        run(0.0, begin, end);
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
