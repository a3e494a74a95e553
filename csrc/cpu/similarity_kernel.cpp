// CPU kernels for the value-based similarity ops (Pearson, MSE, cosine): one pass per row in
// double precision, rows in parallel.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

#include "cpu/row_math.h"
#include "ops/checks.h"

namespace r2et_fast {
namespace {

// Applies stat(a_row, b_row, n) -> double to every row; min_features guards undefined cases.
// NaN/Inf is looked for row by row inside the loop (the row is in cache), a before b.
template <template <typename> class Stat>
at::Tensor rowwise(const at::Tensor& a_in, const at::Tensor& b_in, int64_t min_features) {
  check_pair_shapes(a_in, b_in, min_features);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t rows = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());
  std::atomic<bool> bad_a{false}, bad_b{false};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "r2et_fast_rowwise_cpu", [&] {
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 32768 / n);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (!row_finite(ap + r * n, n)) {
          bad_a.store(true, std::memory_order_relaxed);
          continue;
        }
        if (!row_finite(bp + r * n, n)) {
          bad_b.store(true, std::memory_order_relaxed);
          continue;
        }
        op[r] = static_cast<scalar_t>(Stat<scalar_t>{}(ap + r * n, bp + r * n, n));
      }
    });
  });
  if (bad_a.load()) raise_non_finite("a");
  if (bad_b.load()) raise_non_finite("b");
  return out;
}

template <typename T>
struct Pearson {
  double operator()(const T* x, const T* y, int64_t n) const { return pearson_of(x, y, n); }
};
template <typename T>
struct Cosine {
  double operator()(const T* x, const T* y, int64_t n) const { return cosine_of(x, y, n); }
};
template <typename T>
struct Mse {
  double operator()(const T* x, const T* y, int64_t n) const { return mse_of(x, y, n); }
};

at::Tensor pearson_cpu(const at::Tensor& a, const at::Tensor& b) { return rowwise<Pearson>(a, b, 2); }
at::Tensor cosine_cpu(const at::Tensor& a, const at::Tensor& b) { return rowwise<Cosine>(a, b, 1); }
at::Tensor mse_cpu(const at::Tensor& a, const at::Tensor& b) { return rowwise<Mse>(a, b, 1); }

}  // namespace

TORCH_LIBRARY_IMPL(r2et_fast, CPU, m) {
  m.impl("pearson", &pearson_cpu);
  m.impl("mse", &mse_cpu);
  m.impl("cosine", &cosine_cpu);
}

}  // namespace r2et_fast
