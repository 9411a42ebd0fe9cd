#!/usr/bin/env bash
# Everything the GPU machine is needed for, in parts that each fit one device call (10 minutes a call,
# 15 minutes of device time a session). The first call of a session with a GPU is always first light:
#   npm run gpu:pack      # here: builds (CUDA for sm_90) and packs .gpu/ (bench/README.md)
#   source .gpu/env.sh && bash bench/gpu-session.sh first-light    # every kernel checked and timed, <= 8 min
#   (bash bench/gpu-session.sh first-light --dry-run: the same on the CPU, tiny shapes; CI runs it)
# The other parts, for later calls, from the same pack (gpu:pack runs build:bench, which compiles the .ts
# experiments and lib/ to .js beside them: the GPU bundle has no TypeScript; .gpu/env.sh sets
# KINTSUGI_COMMIT from .gpu/commit). One device call per part (carry [".gpu"]):
#   source .gpu/env.sh && bash bench/gpu-session.sh tests    # golden + unit tests on the GPU (~3 min)
#   source .gpu/env.sh && bash bench/gpu-session.sh bench    # bench/gpu.mjs (~6 min; the per-stage rows add about a minute, estimated)
#   source .gpu/env.sh && bash bench/gpu-session.sh demo     # kintsugi demo on the GPU, shipped 32x32 prior (~7 min at most)
#   source .gpu/env.sh && bash bench/gpu-session.sh prior    # the demo's 32x32 prior, trained and measured (~8 min)
#   source .gpu/env.sh && bash bench/gpu-session.sh gsure    # GSURE vs naive vs oracle (~9 min)
#   source .gpu/env.sh && bash bench/gpu-session.sh diffem   # DiffEM rounds on the subset (never run on a GPU yet: size by DIFFEM_*)
#   source .gpu/env.sh && bash bench/gpu-session.sh score-error  # quantile score error vs N (never run on a GPU yet)
# Results go under $OUT; copy them into bench/results/ here and run `npm run bench:report`.
set -uo pipefail
part=${1:-tests}
# First light keeps $OUT to its four files (the device tool returns at most 8): nothing else here.
if [[ $part == first-light ]]; then exec bash "$(dirname "$0")/first-light/run.sh" "${@:2}"; fi
out=${OUT:-/tmp/kintsugi-gpu-out}
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
    # Time-boxed (DEMO_MINUTES of fine-tuning): at 32x32 the 4,000 steps' time on the GPU is predicted, not measured.
    timeout 560 node dist/cli.js demo --steps "${DEMO_STEPS:-4000}" --minutes "${DEMO_MINUTES:-5}" --out "$out/demo" > "$out/demo.txt" 2>&1
    echo "demo exit $?, $((SECONDS - start)) s" | tee -a "$out/demo.txt"; tail -4 "$out/demo.txt" ;;
  prior)
    # The demo's 32x32 prior (issue #17: 16x16 caps real images at 84 % confident, 32x32 at 92 %):
    # scripts/train-demo-prior.js --resolution 32 on the GPU for PRIOR_MINUTES, from corrupted data only
    # (the shipped 2,000 images, mask p = 0.4, noise 0.05), then its 64-sample share and FD over 8 seeds
    # (scripts/eval-demo-prior.js). The BF16 file (about 2.2 MB) comes back for lib/assets/ (docs/demo.md);
    # the training's work checkpoint stays on the machine. $OUT keeps 5 files (the tool returns 8).
    # PRIOR_INIT=lib/assets/demo-prior.safetensors continues the shipped prior (trained on the CPU) instead of
    # starting from scratch. PRIOR_DEVICE=cpu PRIOR_MINUTES=1 PRIOR_STEPS=2 PRIOR_BATCH=4 PRIOR_SEEDS=1 runs the
    # part here, at a token size.
    work=/tmp/kintsugi-prior-run.safetensors dev=${PRIOR_DEVICE:-cuda:0}
    rm -f "$work"  # a fresh run: the script would resume an earlier one's work file
    timeout $((${PRIOR_MINUTES:-5} * 60 + 60)) node scripts/train-demo-prior.js --device "$dev" --resolution 32 \
      --minutes "${PRIOR_MINUTES:-5}" --steps "${PRIOR_STEPS:-100000}" --batch "${PRIOR_BATCH:-128}" --lr "${PRIOR_LR:-1e-3}" \
      --warmup 500 --ema 0.999 ${PRIOR_INIT:+--init "$PRIOR_INIT" --seed 12} --work "$work" --out "$out/demo-prior-32.safetensors" > "$out/prior.txt" 2>&1
    echo "prior training exit $?" | tee -a "$out/prior.txt"
    # Measured as the demo samples: uniform-attention guidance 3 (PRIOR_GUIDANCE=1 for the plain network).
    timeout 120 node scripts/eval-demo-prior.js --prior "$out/demo-prior-32.safetensors" --device "$dev" --seeds "${PRIOR_SEEDS:-1,2,3,4,5,6,7,8}" \
      --guidance "${PRIOR_GUIDANCE:-3}" --picture "$out/prior-samples.png" --json "$out/prior-eval.json" >> "$out/prior.txt" 2>&1
    echo "prior eval exit $?" | tee -a "$out/prior.txt"; grep -E 'wrote|confident \(' "$out/prior.txt" | tail -3 ;;
  gsure)
    # A budget-sized version of issue #6's experiment: fmnist32, 3 x STEPS steps, on the shipped subset
    # (the GPU machine has no Debian data set, and the full set's 30 MB would not fit the 64 MiB carry
    # next to .gpu/): FD-FMNIST is then against the training images themselves.
    timeout 570 node bench/gsure-experiment.mjs --device cuda:0 --preset fmnist32 --data subset --steps "${GSURE_STEPS:-3000}" \
      --samples 2000 --out "$out/gsure" > "$out/gsure.txt" 2>&1
    echo "gsure exit $?" | tee -a "$out/gsure.txt"; tail -8 "$out/gsure.txt" ;;
  diffem)
    # Round 0 (host-side Gaussian prior, ~30 s) and DIFFEM_ROUNDS rounds of fmnist32-width conditional
    # training and 256-step ancestral E-steps on the 2,000 shipped images, masks p = 0.75.
    timeout 570 node bench/diffem-experiment.js --device cuda:0 --data subset --n 2000 --rounds "${DIFFEM_ROUNDS:-2}" \
      --steps "${DIFFEM_STEPS:-1500}" --batch 64 --out "$out/diffem" > "$out/diffem.txt" 2>&1
    echo "diffem exit $?" | tee -a "$out/diffem.txt"; tail -6 "$out/diffem.txt" ;;
  score-error)
    timeout 570 node bench/score-error-experiment.js --device cuda:0 --sizes "${SCORE_SIZES:-256,4096,65536}" \
      --steps "${SCORE_STEPS:-10000}" --batch 256 --out "$out/score-error" > "$out/score-error.txt" 2>&1
    echo "score-error exit $?" | tee -a "$out/score-error.txt"; tail -6 "$out/score-error.txt" ;;
  *) echo "usage: bash bench/gpu-session.sh first-light [--dry-run]|tests|bench|demo|prior|gsure|diffem|score-error"; exit 2 ;;
esac
