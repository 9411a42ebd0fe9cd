#!/usr/bin/env bash
# The CUDA caching allocator (native/cuda/allocator.cu) on the host, without a GPU: compiled against a
# stand-in CUDA runtime with a byte limit (include/cuda_runtime.h), its out-of-memory paths checked by
# test.cpp under ASan and UBSan. Prints "N passed, M failed"; exits non-zero on any failure.
#   bash native/dev/alloc/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${KS_ALLOC_BUILD:-$root/build/alloc}
mkdir -p "$out"
g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -pthread -DKS_WITH_CUDA=1 \
  -I"$here/include" -I"$root/native/include" -I"$root/native/cuda" \
  -x c++ "$root/native/cuda/allocator.cu" -x none "$here/test.cpp" -o "$out/alloc_test"
"$out/alloc_test"
