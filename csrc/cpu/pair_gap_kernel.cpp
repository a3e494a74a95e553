// CPU kernels for the R2ET top-k pair-gap term G_k and its backward.
//
// Per row: select T_k (O(n) nth_element for pairs="all"; a partial sort of the first k + N ranks
// for "anchor"/"mm"), then sum the transformed gaps h = I_hi - I_lo. The ranking is detached: the
// forward also returns the chosen indices (hi, lo), and the backward only scatters coefficients.
//   all, linear: sum_{i in T} sum_{j notin T} h = n * sum_T I - k * sum_all I          (O(n))
//   all, exp:    -sum_i sum_j e^{-(I_i - I_j)} = -exp(LSE_T(-I) + LSE_rest(I))         (log space)
//   pairs:       sum_p h_p  or  -sum_p e^{-h_p}
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/pair_gap_rows.h"
#include "cpu/row_math.h"
#include "ops/checks.h"
#include "ops/pair_gap.h"

namespace r2et_fast {
namespace {

template <typename T>
struct RanksAbove {
  const T* v;
  bool operator()(int64_t i, int64_t j) const { return v[i] > v[j] || (v[i] == v[j] && i < j); }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> topk_pair_gap_cpu(const at::Tensor& maps_in,
                                                                 int64_t k, c10::string_view pairs_s,
                                                                 c10::string_view transform_s,
                                                                 int64_t n_pairs) {
  check_maps(maps_in, "maps", 2);
  const int64_t n = maps_in.size(1);
  check_k(k, n);
  const PairGapSpec spec = parse_pair_gap(pairs_s, transform_s, k, n, n_pairs);
  check_finite(maps_in, "maps");
  const at::Tensor maps = maps_in.contiguous();
  const int64_t rows = maps.size(0);
  const int64_t width_hi = spec.pairs == Pairs::kAll ? k : spec.n_pairs_total;
  const int64_t width_lo = spec.pairs == Pairs::kAll ? 0 : spec.n_pairs_total;
  at::Tensor gap = at::empty({rows}, maps.options());
  at::Tensor hi = at::empty({rows, width_hi}, maps.options().dtype(at::kLong));
  at::Tensor lo = at::empty({rows, width_lo}, maps.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "topk_pair_gap_cpu", [&] {
    const scalar_t* mp = maps.const_data_ptr<scalar_t>();
    scalar_t* gp = gap.mutable_data_ptr<scalar_t>();
    int64_t* hp = hi.mutable_data_ptr<int64_t>();
    int64_t* lp = lo.mutable_data_ptr<int64_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(n);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* v = mp + r * n;
        std::iota(idx.begin(), idx.end(), int64_t{0});
        const RanksAbove<scalar_t> above{v};
        double total = 0;
        if (spec.pairs == Pairs::kAll) {
          std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), above);
          std::copy(idx.begin(), idx.begin() + k, hp + r * k);
          if (spec.transform == Transform::kLinear) {
            double top = 0, all = 0;
            for (int64_t t = 0; t < k; ++t) top += v[idx[t]];
            for (int64_t i = 0; i < n; ++i) all += v[i];
            total = static_cast<double>(n) * top - static_cast<double>(k) * all;
          } else {
            total = -std::exp(cpu::log_sum_exp(v, idx.data(), k, -1.0) +
                              cpu::log_sum_exp(v, idx.data() + k, n - k, 1.0));
          }
        } else {
          std::partial_sort(idx.begin(), idx.begin() + spec.ranks_needed, idx.end(), above);
          int64_t* hr = hp + r * spec.n_pairs_total;
          int64_t* lr = lp + r * spec.n_pairs_total;
          fill_pair_ranks(spec, k, hr, lr);  // rank positions; mapped to features below
          for (int64_t p = 0; p < spec.n_pairs_total; ++p) {
            hr[p] = idx[hr[p]];
            lr[p] = idx[lr[p]];
            const double h = static_cast<double>(v[hr[p]]) - static_cast<double>(v[lr[p]]);
            total += spec.transform == Transform::kLinear ? h : -std::exp(-h);
          }
        }
        gp[r] = static_cast<scalar_t>(total);
      }
    });
  });
  return {gap, hi, lo};
}

at::Tensor topk_pair_gap_backward_cpu(const at::Tensor& grad_in, const at::Tensor& maps_in,
                                      const at::Tensor& hi_in, const at::Tensor& lo_in,
                                      c10::string_view pairs_s, c10::string_view transform_s) {
  const at::Tensor grad = grad_in.contiguous(), maps = maps_in.contiguous();
  const at::Tensor hi = hi_in.contiguous(), lo = lo_in.contiguous();
  check_pair_gap_backward_args(grad, maps, hi, lo);
  const int64_t rows = maps.size(0), n = maps.size(1), k = hi.size(1), m = lo.size(1);
  const Pairs pairs = parse_pairs(pairs_s);
  const Transform transform = parse_transform(transform_s);
  at::Tensor out = at::zeros_like(maps);
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "topk_pair_gap_backward_cpu", [&] {
    const scalar_t* mp = maps.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const int64_t* hp = hi.const_data_ptr<int64_t>();
    const int64_t* lp = lo.const_data_ptr<int64_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> rest;
      std::vector<char> in_top;
      for (int64_t r = begin; r < end; ++r) {
        const int64_t width = pairs == Pairs::kAll ? k : m;
        cpu::pair_gap_row_backward(mp + r * n, n, hp + r * width, k, lp + r * m, m, pairs, transform,
                                   static_cast<double>(gp[r]), op + r * n, rest, in_top);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) {
  m.impl("topk_pair_gap", &topk_pair_gap_cpu);
  m.impl("topk_pair_gap_backward", &topk_pair_gap_backward_cpu);
}

}  // namespace r2et_fast
