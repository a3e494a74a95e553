// CPU kernels for the ranking ops: top-k indices, ranks, P@k, Kendall tau-b (all features and
// restricted to T_k), Spearman. One row per task under at::parallel_for; every row is O(n log n)
// (O(n) for P@k), never O(n^2).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/row_math.h"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

// Rows per parallel task: enough work per task to amortise scheduling.
int64_t grain_rows(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

// "i ranks above j": larger value first, ties broken by the lower index (a strict total order).
template <typename T>
struct RanksAbove {
  const T* v;
  bool operator()(int64_t i, int64_t j) const { return v[i] > v[j] || (v[i] == v[j] && i < j); }
};

// Number of pairs inside runs of equal consecutive values: sum over runs of t(t-1)/2.
template <typename T>
int64_t tied_pairs(const T* v, int64_t n) {
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

// Sorts v ascending (bottom-up merge sort) and returns the number of inversions
// (pairs i < j with v[i] > v[j]); equal values are not inversions.
template <typename T>
int64_t sort_counting_inversions(std::vector<T>& v, std::vector<T>& buf) {
  const int64_t n = static_cast<int64_t>(v.size());
  int64_t inversions = 0;
  buf.resize(n);
  T* src = v.data();
  T* dst = buf.data();
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      int64_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) {
        if (src[j] < src[i]) {
          inversions += mid - i;  // src[j] jumps over every element left in the left run
          dst[o++] = src[j++];
        } else {
          dst[o++] = src[i++];
        }
      }
      while (i < mid) dst[o++] = src[i++];
      while (j < hi) dst[o++] = src[j++];
    }
    std::swap(src, dst);
  }
  if (src != v.data()) std::copy(src, src + n, v.data());
  return inversions;
}

// Kendall tau-b of (x, y), n values each, by Knight's O(n log n) algorithm. NaN when either side is
// constant (the statistic is undefined there, as in scipy).
template <typename T>
double kendall_tau_b(const T* x, const T* y, int64_t n, std::vector<int64_t>& perm,
                     std::vector<T>& ys, std::vector<T>& buf) {
  perm.resize(n);
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::sort(perm.begin(), perm.end(), [&](int64_t i, int64_t j) {
    return x[i] < x[j] || (x[i] == x[j] && y[i] < y[j]);
  });
  // Ties in x, and joint ties in (x, y), are runs in this order.
  int64_t ties_x = 0, ties_xy = 0, run_x = 1, run_xy = 1;
  for (int64_t r = 1; r < n; ++r) {
    const int64_t p = perm[r - 1], q = perm[r];
    if (x[p] == x[q]) {
      ++run_x;
      if (y[p] == y[q]) {
        ++run_xy;
      } else {
        ties_xy += run_xy * (run_xy - 1) / 2;
        run_xy = 1;
      }
    } else {
      ties_x += run_x * (run_x - 1) / 2;
      ties_xy += run_xy * (run_xy - 1) / 2;
      run_x = run_xy = 1;
    }
  }
  ties_x += run_x * (run_x - 1) / 2;
  ties_xy += run_xy * (run_xy - 1) / 2;

  ys.resize(n);
  for (int64_t r = 0; r < n; ++r) ys[r] = y[perm[r]];
  const int64_t discordant = sort_counting_inversions(ys, buf);
  const int64_t ties_y = tied_pairs(ys.data(), n);

  const int64_t pairs = n * (n - 1) / 2;
  const double denom =
      std::sqrt(static_cast<double>(pairs - ties_x)) * std::sqrt(static_cast<double>(pairs - ties_y));
  if (denom == 0.0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t numer = pairs - ties_x - ties_y + ties_xy - 2 * discordant;
  return static_cast<double>(numer) / denom;
}

// 1-based average ranks (ties share the mean of their positions), as scipy.stats.rankdata.
template <typename T>
void average_ranks(const T* v, int64_t n, std::vector<int64_t>& perm, double* out) {
  perm.resize(n);
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::sort(perm.begin(), perm.end(), [&](int64_t i, int64_t j) { return v[i] < v[j]; });
  for (int64_t lo = 0; lo < n;) {
    int64_t hi = lo + 1;
    while (hi < n && v[perm[hi]] == v[perm[lo]]) ++hi;
    const double rank = 0.5 * static_cast<double>(lo + 1 + hi);
    for (int64_t r = lo; r < hi; ++r) out[perm[r]] = rank;
    lo = hi;
  }
}

at::Tensor topk_indices_cpu(const at::Tensor& x_in, int64_t k) {
  check_maps(x_in, "x", 2);
  check_k(k, x_in.size(1));
  check_finite(x_in, "x");
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows, k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "topk_indices_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    int64_t* op = out.mutable_data_ptr<int64_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(n);
      for (int64_t r = begin; r < end; ++r) {
        std::iota(idx.begin(), idx.end(), int64_t{0});
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), RanksAbove<scalar_t>{xp + r * n});
        std::copy(idx.begin(), idx.begin() + k, op + r * k);
      }
    });
  });
  return out;
}

at::Tensor ranks_cpu(const at::Tensor& x_in) {
  check_maps(x_in, "x");
  check_finite(x_in, "x");
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows, n}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ranks_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    int64_t* op = out.mutable_data_ptr<int64_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(n);
      for (int64_t r = begin; r < end; ++r) {
        std::iota(idx.begin(), idx.end(), int64_t{0});
        std::sort(idx.begin(), idx.end(), RanksAbove<scalar_t>{xp + r * n});
        for (int64_t pos = 0; pos < n; ++pos) op[r * n + idx[pos]] = pos;
      }
    });
  });
  return out;
}

at::Tensor precision_at_k_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "precision_at_k_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(n);
      std::vector<char> in_a(n);
      for (int64_t r = begin; r < end; ++r) {
        // nth_element under a strict total order puts exactly T_k in the first k slots: O(n).
        std::iota(idx.begin(), idx.end(), int64_t{0});
        std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), RanksAbove<scalar_t>{ap + r * n});
        std::fill(in_a.begin(), in_a.end(), 0);
        for (int64_t i = 0; i < k; ++i) in_a[idx[i]] = 1;
        std::iota(idx.begin(), idx.end(), int64_t{0});
        std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), RanksAbove<scalar_t>{bp + r * n});
        int64_t hits = 0;
        for (int64_t i = 0; i < k; ++i) hits += in_a[idx[i]];
        op[r] = static_cast<scalar_t>(static_cast<double>(hits) / static_cast<double>(k));
      }
    });
  });
  return out;
}

at::Tensor kendall_tau_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair(a_in, b_in, 2);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "kendall_tau_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> perm;
      std::vector<scalar_t> ys, buf;
      for (int64_t r = begin; r < end; ++r)
        op[r] = static_cast<scalar_t>(kendall_tau_b(ap + r * n, bp + r * n, n, perm, ys, buf));
    });
  });
  return out;
}

at::Tensor kendall_tau_topk_cpu(const at::Tensor& a_in, const at::Tensor& b_in, int64_t k) {
  check_pair(a_in, b_in, 2);
  check_k(k, a_in.size(1));
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "kendall_tau_topk_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(n), perm;
      std::vector<scalar_t> xa(k), xb(k), ys, buf;
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* ar = ap + r * n;
        std::iota(idx.begin(), idx.end(), int64_t{0});
        std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), RanksAbove<scalar_t>{ar});
        for (int64_t i = 0; i < k; ++i) {
          xa[i] = ar[idx[i]];
          xb[i] = bp[r * n + idx[i]];
        }
        op[r] = static_cast<scalar_t>(kendall_tau_b(xa.data(), xb.data(), k, perm, ys, buf));
      }
    });
  });
  return out;
}

at::Tensor spearman_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_pair(a_in, b_in, 2);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "spearman_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> perm;
      std::vector<double> ra(n), rb(n);
      for (int64_t r = begin; r < end; ++r) {
        average_ranks(ap + r * n, n, perm, ra.data());
        average_ranks(bp + r * n, n, perm, rb.data());
        op[r] = static_cast<scalar_t>(pearson_of(ra.data(), rb.data(), n));
      }
    });
  });
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
