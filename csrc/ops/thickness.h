// Argument checks of the top-k pair-agreement op, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include "ops/checks.h"

namespace r2et_fast {

inline void check_agreement_args(const at::Tensor& maps, const at::Tensor& top) {
  check_maps(maps, "maps", 2);
  TORCH_CHECK_TYPE(top.scalar_type() == at::kLong, "top must be int64, got ", top.scalar_type());
  TORCH_CHECK_VALUE(top.dim() == 2 && top.size(0) == maps.size(0), "top must have shape (B, k) = (",
                    maps.size(0), ", k) to match maps, got shape ", top.sizes());
  TORCH_CHECK_VALUE(top.size(1) >= 1 && top.size(1) < maps.size(1),
                    "top must have k columns with 1 <= k < n_features (n_features = ", maps.size(1),
                    "), got k = ", top.size(1));
  TORCH_CHECK_VALUE(top.device() == maps.device(), "maps and top must be on the same device, got ",
                    maps.device(), " and ", top.device());
}

}  // namespace r2et_fast
