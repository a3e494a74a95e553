// Device helpers shared by the CUDA kernels: deterministic block reductions and the per-row
// statistics of csrc/cpu/row_math.h, computed by one thread block per row, accumulating in double.
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>

namespace r2et_fast {
namespace gpu {

// Threads per block of the row kernels: a multiple of the warp size, as block_sum requires.
constexpr int kRowThreads = 256;

// Grid of one block per row (gridDim.x allows up to 2^31 - 1 blocks).
inline dim3 row_grid(int64_t rows) {
  TORCH_CHECK(rows <= std::numeric_limits<int>::max(), "r2et_fast CUDA: too many rows (", rows,
              ")");
  return dim3(static_cast<unsigned>(rows));
}

// The NaN the CPU kernels return for undefined statistics, std::numeric_limits<double>::quiet_NaN()
// (CUDART_NAN would differ: it has the sign bit set).
__device__ inline double quiet_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over the block, returned to every thread. Every thread of the block must call it (it
// synchronises), and blockDim.x must be a multiple of 32. The order of the additions is fixed, so
// the result does not vary from run to run.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // the previous call's readers are done with warp_sums
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += warp_sums[w];
  return total;
}

// Pearson correlation of rows x, y of n values, two-pass like pearson_of (means first, then the
// centred sums); NaN when either row is constant. Called by every thread of the block.
template <typename T>
__device__ double block_pearson(const T* x, const T* y, int64_t n) {
  double sx = 0, sy = 0;
  int varied = 0;  // entries differing from the row's first: a constant row is detected exactly,
                   // not through a centred sum that rounding may leave slightly above zero
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    sx += static_cast<double>(x[i]);
    sy += static_cast<double>(y[i]);
    varied |= (x[i] != x[0]) | ((y[i] != y[0]) << 1);
  }
  const int varied_x = block_sum(varied & 1), varied_y = block_sum(varied >> 1);
  const double mx = block_sum(sx) / static_cast<double>(n);
  const double my = block_sum(sy) / static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double dx = static_cast<double>(x[i]) - mx, dy = static_cast<double>(y[i]) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  sxy = block_sum(sxy);
  sxx = block_sum(sxx);
  syy = block_sum(syy);
  const double denom = sqrt(sxx) * sqrt(syy);
  return varied_x == 0 || varied_y == 0 || denom == 0.0 ? quiet_nan() : sxy / denom;
}

// out[r] = Pearson of row r of x and y; launch with one block of kRowThreads per row. InT is the
// dtype of the rows (the input dtype, or double for Spearman's rank rows), OutT the output dtype.
template <typename InT, typename OutT>
__global__ void pearson_rows_kernel(const InT* x, const InT* y, int64_t n, OutT* out) {
  const int64_t r = blockIdx.x;
  const double v = block_pearson(x + r * n, y + r * n, n);
  if (threadIdx.x == 0) out[r] = static_cast<OutT>(v);
}

}  // namespace gpu
}  // namespace r2et_fast
