#!/bin/sh
# Prints the CUDA toolkit root: the folder whose bin/ holds the real nvcc and whose lib64/ holds
# libcudart (a wrapper script on PATH, e.g. /usr/local/bin/nvcc, is not the root).
for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /opt/cuda; do
  if [ -n "$d" ] && [ -x "$d/bin/nvcc" ] && ls "$d"/lib64/libcudart.so* >/dev/null 2>&1; then
    echo "$d"; exit 0
  fi
done
nvcc=$(command -v nvcc) || exit 1
d=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
[ -x "$d/bin/nvcc" ] && echo "$d"
