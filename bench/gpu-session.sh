#!/usr/bin/env bash
# Everything the GPU machine is needed for, in parts that each fit one device call (10 minutes a call,
# about 30 minutes a session: docs/gpu.md). Here first:
#   npm run build:ts && npm run build:native:sm90 && ../shared/tools/gpu-pack
# Then one device call per part (carry [".gpu"]):
#   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> bash bench/gpu-session.sh tests    # golden + unit tests on the GPU (~3 min)
#   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> bash bench/gpu-session.sh bench    # bench/gpu.mjs (~6 min)
#   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> bash bench/gpu-session.sh demo     # fmnist32 demo on the subset (~5 min)
#   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> bash bench/gpu-session.sh gsure    # GSURE vs naive vs oracle (~9 min)
# Results go under $OUT; copy them into bench/results/ here and run `npm run bench:report`.
set -uo pipefail
out=${OUT:-/tmp/kintsugi-gpu-out}
part=${1:-tests}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
case $part in
  tests)
    # KINTSUGI_EXPECT_GPU=1 (set by env.sh) turns a skipped CUDA case into a failure.
    timeout 560 node node_modules/vitest/vitest.mjs run --config test/vitest.config.ts test/golden test/unet test/tensor.test.ts \
      test/rng.test.ts test/gsure test/corruption test/bootstrap > "$out/tests.txt" 2>&1
    echo "tests exit $?" | tee -a "$out/tests.txt"; tail -8 "$out/tests.txt" ;;
  bench)
    timeout 560 node bench/gpu.mjs --out "$out" > "$out/tables.md" 2> "$out/bench-log.txt"
    echo "bench exit $?"; cat "$out/tables.md"; tail -3 "$out/bench-log.txt" ;;
  demo)
    start=$SECONDS
    timeout 560 node dist/cli.js demo --steps "${DEMO_STEPS:-4000}" --out "$out/demo" > "$out/demo.txt" 2>&1
    echo "demo exit $?, $((SECONDS - start)) s" | tee -a "$out/demo.txt"; tail -4 "$out/demo.txt" ;;
  gsure)
    # A budget-sized version of issue #6's experiment: fmnist32, 3 x STEPS steps, on the shipped subset
    # (the GPU machine has no Debian data set, and the full set's 30 MB would not fit the 64 MiB carry
    # next to .gpu/): FD-FMNIST is then against the training images themselves.
    timeout 570 node bench/gsure-experiment.mjs --device cuda:0 --preset fmnist32 --data subset --steps "${GSURE_STEPS:-3000}" \
      --samples 2000 --out "$out/gsure" > "$out/gsure.txt" 2>&1
    echo "gsure exit $?" | tee -a "$out/gsure.txt"; tail -8 "$out/gsure.txt" ;;
  *) echo "usage: bash bench/gpu-session.sh tests|bench|demo|gsure"; exit 2 ;;
esac
