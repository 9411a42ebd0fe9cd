#!/usr/bin/env bash
# Everything the GPU machine is needed for, in one device call (its time is scarce: docs/gpu.md).
# Here first:  npm run build:ts && npm run build:native:sm90 && ../shared/tools/gpu-pack
# Then, with the device tool (carry [".gpu"]):
#   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> bash bench/gpu-session.sh
# Writes under $OUT: golden.txt (CUDA vs CPU golden tests), bench/ (bench/gpu.mjs JSON and tables),
# demo/ (the fmnist32 demo: samples.png, loss.svg, demo.txt with its time). Each part is bounded by a
# timeout so one slow part cannot eat the others' time.
set -uo pipefail
out=${OUT:-/tmp/kintsugi-gpu-out}
mkdir -p "$out/bench" "$out/demo"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
echo "== golden and unit tests on the GPU (KINTSUGI_EXPECT_GPU=1: a missing GPU fails)"
timeout 240 node node_modules/vitest/vitest.mjs run --config test/vitest.config.ts test/golden test/unet test/tensor.test.ts test/rng.test.ts \
  > "$out/golden.txt" 2>&1; echo "tests exit $?" | tee -a "$out/golden.txt"; tail -5 "$out/golden.txt"
echo "== benchmarks"
timeout 420 node bench/gpu.mjs --out "$out/bench" > "$out/bench/tables.md" 2> "$out/bench/log.txt"; echo "bench exit $?"; cat "$out/bench/tables.md"
echo "== demo (fmnist32 on the shipped subset)"
start=$SECONDS
timeout 420 node dist/cli.js demo --steps "${DEMO_STEPS:-4000}" --out "$out/demo" > "$out/demo/demo.txt" 2>&1; echo "demo exit $?, $((SECONDS - start)) s" | tee -a "$out/demo/demo.txt"
tail -3 "$out/demo/demo.txt"
