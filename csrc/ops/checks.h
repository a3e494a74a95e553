// Input checks shared by the CPU and CUDA kernels. They raise c10::ValueError / c10::TypeError,
// which PyTorch turns into Python ValueError / TypeError, so bad input never reaches a kernel.
#pragma once

#include <ATen/ATen.h>

namespace r2et_fast {

// A batch of maps: 2-D (batch, features), float32/float64, non-empty.
inline void check_maps(const at::Tensor& t, const char* name, int64_t min_features = 1) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
                   " must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 2, name, " must be a 2-D (batch, features) tensor, got shape ",
                    t.sizes());
  TORCH_CHECK_VALUE(t.size(0) > 0, name, " has an empty batch (shape ", t.sizes(), ")");
  TORCH_CHECK_VALUE(t.size(1) >= min_features, name, " needs at least ", min_features,
                    " features, got shape ", t.sizes());
}

// Sorting with NaN breaks the strict weak ordering std::sort relies on: reject it up front.
inline void check_finite(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(at::isfinite(t).all().item<bool>(), name, " contains NaN or Inf");
}

inline void check_pair(const at::Tensor& a, const at::Tensor& b, int64_t min_features = 1) {
  check_maps(a, "a", min_features);
  check_maps(b, "b", min_features);
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype, got ",
                   a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.device() == b.device(), "a and b must be on the same device, got ",
                    a.device(), " and ", b.device());
  TORCH_CHECK_VALUE(a.sizes() == b.sizes(), "a and b must have the same shape, got ", a.sizes(),
                    " and ", b.sizes());
  check_finite(a, "a");
  check_finite(b, "b");
}

// check_pair without the finiteness passes: for kernels that check each row for NaN/Inf inside
// their row loop (while the row is in cache) and then call raise_non_finite.
inline void check_pair_shapes(const at::Tensor& a, const at::Tensor& b, int64_t min_features = 1) {
  check_maps(a, "a", min_features);
  check_maps(b, "b", min_features);
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype, got ",
                   a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.device() == b.device(), "a and b must be on the same device, got ",
                    a.device(), " and ", b.device());
  TORCH_CHECK_VALUE(a.sizes() == b.sizes(), "a and b must have the same shape, got ", a.sizes(),
                    " and ", b.sizes());
}

// The error check_finite raises, for kernels that found the NaN/Inf themselves.
inline void raise_non_finite(const char* name) {
  TORCH_CHECK_VALUE(false, name, " contains NaN or Inf");
}

inline void check_k(int64_t k, int64_t n) {
  TORCH_CHECK_VALUE(k >= 1 && k < n, "k must satisfy 1 <= k < n_features (n_features = ", n,
                    "), got k = ", k);
}

}  // namespace r2et_fast
