#!/usr/bin/env bash
# The CUDA kernels of native/cuda under the host emulator, against the CPU reference (README.md here).
# Builds into build/emu (git-ignored) with g++ -O1 and ASan + UBSan, runs every check, prints the table
# and a last line "N passed, M failed"; exits non-zero on any failure.
#   bash native/dev/emu/run.sh [--checksums FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${KS_EMU_BUILD:-$root/build/emu}
start=$SECONDS

# Kernel sources: every .cu except the runtime the emulator stands in for (devices and streams, the
# caching allocator). The UNet executor (unet.cu) is in: unet_cases.inc runs the whole network.
kernels=()
for f in "$root"/native/cuda/*.cu; do
  case $(basename "$f") in device.cu | allocator.cu) ;; *) kernels+=("$f") ;; esac
done
# The CPU reference each tensor op is compared with; the network ops' reference is their header
# template (run in double), so their .cpp (the CPU's fast float path) is left out.
cpu=("$root/native/cpu/parallel.cpp")
for f in "${kernels[@]}"; do
  name=$(basename "$f" .cu)
  if [[ -f $root/native/cpu/$name.cpp && ! -f $root/native/cpu/$name.h ]]; then cpu+=("$root/native/cpu/$name.cpp"); fi
done
# What those CPU files call: the kernels per instruction set and their load-time choice (isa.cpp,
# isa/kernels_*.cpp, each variant with its own target flags below), and the float GroupNorm that
# groupnorm.h's float instantiation forwards to.
cpu+=("$root/native/cpu/isa.cpp" "$root"/native/cpu/isa/kernels_*.cpp "$root/native/cpu/groupnorm.cpp")
# The UNet executor (cuda/unet.cu, compiled with the kernels) needs the plan of the network.
cpu+=("$root/native/core/unet_plan.cpp")
# The CPU network in float, which rounds conv operands as the tensor cores do (round_operands.h): the
# reference of the odd networks' reduced-precision rows (unet_cases.inc), too ill-conditioned to compare
# with the exact graph. Its objects get the cpu_ prefix (cuda/unet.cu's generated source is unet.cpp too).
for f in unet attention conv2d elementwise groupnorm_silu gemm round_operands; do
  [[ " ${cpu[*]} " == *" $root/native/cpu/$f.cpp "* ]] || cpu+=("$root/native/cpu/$f.cpp")
done

build_failed() {
  echo "emu: $1 failed"
  echo "0 passed, 1 failed"
  exit 1
}
rm -rf "$out"
mkdir -p "$out/gen" "$out/obj"
node "$here/transform.mjs" "$out/gen" "${kernels[@]}" "$root"/native/cuda/*.cuh || build_failed "the launch rewriter"
# The case list comes from the golden table, keyed by op name (test/golden/ops.json).
node "$here/cases.mjs" "$root/test/golden/ops.json" "$out/gen/cases.inc" || build_failed "the case list"

flags=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  -Wall -Wextra -Wno-sign-compare -DKS_WITH_CUDA=1 -I"$here/include" -I"$here" -I"$out/gen" -I"$root/native/include"
  -I"$root/native/cuda" -I"$root/native/cpu" ${KS_EMU_CXXFLAGS:-})
printf '"%s"\n' "${flags[@]}" > "$out/flags"  # a response file: paths may hold spaces
sources=("$out"/gen/*.cpp "${cpu[@]}" "$here/emu.cpp" "$here/test.cpp")
# One object per source (the CPU files get a cpu_ prefix: names stay unique), as many at once as cores.
printf '%s\0' "${sources[@]}" | OUT=$out xargs -0 -P "$(nproc)" -I{} bash -c '
  src=$1 name=$(basename "$1" .cpp)
  case $src in */native/cpu/*) name=cpu_$name ;; esac
  isa=()  # the same flags as binding.gyp and CMakeLists.txt give each variant
  case $src in */kernels_avx2.cpp) isa=(-mavx2 -mfma) ;; */kernels_avx512.cpp) isa=(-mavx512f -mavx2 -mfma) ;; esac
  exec g++ @"$OUT/flags" "${isa[@]}" -c "$src" -o "$OUT/obj/$name.o"' _ {} || build_failed "compiling"
g++ -fsanitize=address,undefined -pthread "$out"/obj/*.o -o "$out/emu_test" || build_failed "linking"
echo "built in $((SECONDS - start)) s: ${#kernels[@]} kernel files, ${#cpu[@]} CPU reference files"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
"$out/emu_test" "$@" 2>&1 | tee "$out/log.txt"
rc=${PIPESTATUS[0]}
set -e
echo "ran in $((SECONDS - start)) s in all (exit $rc)"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/log.txt" | tail -n 1 || true)
if [[ -z $summary ]]; then
  # Stopped before its summary (a sanitizer report, a crash): count the rows it printed.
  passed=$(grep -Ec ' ok$' "$out/log.txt" || true)
  failed=$(($(grep -Ec ' FAIL$' "$out/log.txt" || true) + 1))
  echo "emu_test stopped early: see the report above"
else
  passed=${summary%% passed*}
  failed=${summary#*, }
  failed=${failed%% failed}
  if ((rc != 0 && failed == 0)); then failed=1; fi  # e.g. a leak report at exit
fi
echo "$passed passed, $failed failed"
((failed == 0 && rc == 0))
