#!/usr/bin/env bash
# GPU first light: every CUDA kernel checked and timed in one command of at most 8 minutes on an H100,
# from `source .gpu/env.sh` on (bench/README.md). Called as `bash bench/gpu-session.sh first-light`.
#   bash bench/first-light/run.sh [--dry-run]
# --dry-run: the same parts on the CPU with tiny shapes (KINTSUGI_DEVICE=cpu, PyTorch CPU where there is
# one, no compute-sanitizer), what CI runs so that this script cannot rot between GPU sessions.
#
# Every part runs under its own `timeout`, writes its result file as soon as it ends, and is followed by
# a fresh summary (summary.md) and archive, so a run cut short by the device tool loses only the part
# in flight. What comes back from $OUT (the device tool returns at most 8 files):
#   summary.md          passed / failed / not run per part, with the reason; the benchmark rows
#   bench.jsonl         one JSON line per benchmark row, appended as each row ends
#   first-light.tar.gz  every result file (nvidia-smi, build info, vitest JSON per file, sanitizer logs ...)
#   session.log         this script's progress lines
#
# Budget (seconds; FIRST_LIGHT_BUDGET, default 450, leaves about 30 s of the 8 minutes for env.sh's
# unpacking). A part's timeout is the smaller of its own and what is left before the deadline minus
# RESERVE; a part with under 3 s left is recorded as not run. The own timeouts below add up to the
# budget, so even a part that hangs to its limit leaves the later ones their share:
#   info        25   nvidia-smi 10 (it answers in about a second; a wedged driver must not eat the run),
#                    build 15 (node start, addon load, cudaStatus)
#   golden     150   vitest per file, CUDA cases only (-t cuda), CUDA_LAUNCH_BLOCKING=1 so a fault is
#                    blamed on its kernel: golden 50 (every op at 3 shapes, vs the CPU), unet 40 (tiny16
#                    and fmnist32 forward and backward, on the CPU too), rng 15, tensor 15, checkpoint 15;
#                    each file's start-up is 3-5 s of that
#   sanitizer  150   one process over the golden table's ops, small shapes (kernels.mjs): plain 25 (about
#                    5 s of it loads TypeScript and transpiles the tables), then memcheck 55, racecheck 40,
#                    synccheck 30 (instrumented kernels run 10-100x slower; racecheck is the slowest per
#                    launch, but only the shared-memory kernels cost it much)
#   oom         15   oom.mjs: fill the device to its real limit, the typed error, the device usable after
#                    (taken from the golden files' share: rng, tensor and checkpoint have few CUDA cases)
#   bench      110   kintsugi and PyTorch eager rows (fmnist32 b128 training step, DDIM 50 steps b256,
#                    GSURE step) take about 60-90 s with PyTorch's start-up; torch.compile rows only
#                    when 120 s are left for one (a cold compile is about a minute)
#   RESERVE     15   the last summary and archive
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

dry=0
case ${1:-} in
  --dry-run) dry=1 ;;
  '') ;;
  *) echo "usage: bash bench/first-light/run.sh [--dry-run]"; exit 2 ;;
esac
# The dry run must not fail CI because a shared machine is slow: its limits are SCALE times the GPU's
# (a timeout is reported, not failed) and its budget is larger.
scale=${FIRST_LIGHT_SCALE:-$((dry ? 4 : 1))}
budget=${FIRST_LIGHT_BUDGET:-$((dry ? 900 : 450))}
reserve=15
out=${OUT:-$root/build/first-light-out}
work=${FIRST_LIGHT_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/first-light.XXXXXX")}
mkdir -p "$out" "$work/parts" "$work/info" "$work/golden" "$work/sanitizer"
start=$(date +%s)
deadline=$((start + budget))
export FIRST_LIGHT_START=$start FIRST_LIGHT_BUDGET_S=$budget FIRST_LIGHT_DRY=$dry
# The GPU machine has no git: gpu:pack writes the commit it packed into .gpu/commit.
if [[ -z ${KINTSUGI_COMMIT:-} && -f .gpu/commit ]]; then export KINTSUGI_COMMIT=$(cat .gpu/commit); fi
if [[ -z ${KINTSUGI_COMMIT:-} ]]; then KINTSUGI_COMMIT=$(git rev-parse --short=12 HEAD 2> /dev/null) && export KINTSUGI_COMMIT; fi
: > "$out/bench.jsonl"
: > "$out/session.log"
log() { printf '[first-light %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/session.log"; }

if ((dry)); then
  export KINTSUGI_DEVICE=cpu
  device=cpu
  bench_args=(--preset tiny16 --batch 4 --sample-batch 4 --ddim-steps 5 --steps 3 --warmup 1 --compile off)
else
  device=cuda:0
  bench_args=(--preset fmnist32 --batch 128 --sample-batch 256 --ddim-steps 50 --steps 20 --warmup 3 --compile auto --compile-s 120)
fi
golden_files=(test/golden/golden.test.ts test/golden/unet.golden.test.ts test/rng.test.ts test/tensor.test.ts test/checkpoint.test.ts)
golden_limits=(50 40 15 15 15)
tools=(memcheck racecheck synccheck)
tool_limits=(55 40 30)

# Every part, in order, for the summary (a part the run never reached is listed as not run).
{
  echo info/nvidia-smi
  echo info/build
  for f in "${golden_files[@]}"; do echo "golden/$(basename "$f" .ts)"; done
  echo sanitizer/plain
  for t in "${tools[@]}"; do echo "sanitizer/$t"; done
  echo oom
  echo bench
} > "$work/planned.txt"

# Writes summary.md and the archive from whatever result files exist; atomic renames, so a kill
# during this leaves the previous ones whole.
summarize() {
  node bench/first-light/summary.mjs --work "$work" --bench "$out/bench.jsonl" > "$out/summary.md.part" 2>> "$out/session.log" &&
    mv -f "$out/summary.md.part" "$out/summary.md"
}
finish() {
  cp "$out/bench.jsonl" "$out/session.log" "$work/" 2> /dev/null
  summarize
  cp -f "$out/summary.md" "$work/" 2> /dev/null
  tar -czf "$out/first-light.tar.gz.part" -C "$work" . 2>> "$out/session.log" && mv -f "$out/first-light.tar.gz.part" "$out/first-light.tar.gz"
}

# part NAME LIMIT LOG COMMAND...: runs COMMAND under timeout with its output in LOG, records the exit
# status (124: timed out) in parts/NAME.json, then refreshes the summary.
part() {
  local name=$1 limit=$(($2 * scale)) logf=$3
  shift 3
  local file=$work/parts/${name//\//-}.json now left
  now=$(date +%s)
  left=$((deadline - reserve - now))
  if ((left < 3)); then
    printf '{"part":"%s","skipped":"the budget of %s s was spent before this part"}\n' "$name" "$budget" > "$file"
    log "$name: not run (budget spent)"
    return
  fi
  ((limit > left)) && limit=$left
  printf '{"part":"%s","running":true,"limit":%d}\n' "$name" "$limit" > "$file"
  log "$name: start (limit ${limit} s)"
  summarize  # so a kill from outside finds this part marked as running
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$logf" 2>&1
  local rc=$?
  printf '{"part":"%s","rc":%d,"seconds":%d,"limit":%d,"log":"%s"}\n' "$name" "$rc" "$((SECONDS - t0))" "$limit" "${logf#"$work"/}" > "$file"
  log "$name: exit $rc after $((SECONDS - t0)) s"
  finish
}
skip() {
  printf '{"part":"%s","skipped":"%s"}\n' "$1" "$2" > "$work/parts/${1//\//-}.json"
  log "$1: not run ($2)"
}

log "start: device $device, budget ${budget} s (deadline $(date -u -d "@$deadline" +%H:%M:%S)), results in $out, work folder $work"
finish

# 1. The machine and the build.
if command -v nvidia-smi > /dev/null; then
  part info/nvidia-smi 10 "$work/info/nvidia-smi.txt" nvidia-smi
else
  skip info/nvidia-smi "nvidia-smi is not on this machine"
fi
part info/build 15 "$work/info/build.json" node bench/first-light/info.mjs

# 2. The CUDA golden cases, one vitest process per file, JSON per file.
for i in "${!golden_files[@]}"; do
  f=${golden_files[$i]}
  name=$(basename "$f" .ts)
  part "golden/$name" "${golden_limits[$i]}" "$work/golden/$name.log" \
    env CUDA_LAUNCH_BLOCKING=1 node node_modules/vitest/vitest.mjs run --config test/vitest.config.ts "$f" \
    -t '[Cc][Uu][Dd][Aa]' --reporter=default --reporter=json --outputFile.json="$work/golden/$name.json"
done

# 3. compute-sanitizer over one process that launches every kernel once (kernels.mjs); first plainly.
driver=(node --import ./test/support/register-ts.mjs bench/first-light/kernels.mjs --device "$device")
part sanitizer/plain 25 "$work/sanitizer/plain.log" env CUDA_LAUNCH_BLOCKING=1 "${driver[@]}" --out "$work/sanitizer/plain.jsonl"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer \
  /opt/nvidia/*/compute-sanitizer/compute-sanitizer 2> /dev/null | head -n 1)
for i in "${!tools[@]}"; do
  t=${tools[$i]}
  if ((dry)); then
    skip "sanitizer/$t" "CPU dry run: compute-sanitizer needs a GPU"
  elif [[ -z $sanitizer ]]; then
    skip "sanitizer/$t" "compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
  else
    # --error-exitcode 86 tells its findings apart from the driver's own failures (exit 1).
    part "sanitizer/$t" "${tool_limits[$i]}" "$work/sanitizer/$t.log" "$sanitizer" --tool "$t" --error-exitcode 86 \
      --print-limit 20 --target-processes application-only "${driver[@]}" --out "$work/sanitizer/$t.jsonl"
  fi
done

# 4. Out of memory on the real device limit (the dry run: under a 96 MiB CPU cap), in its own process.
part oom 15 "$work/oom.json" env KINTSUGI_CPU_MEMORY_LIMIT=96M node bench/first-light/oom.mjs --device "$device"

# 5. The benchmark, row by row into $OUT/bench.jsonl; torch.compile only if the deadline allows.
bench_limit=$((deadline - reserve - $(date +%s)))
part bench $(((bench_limit > 0 ? bench_limit : 0) / scale)) "$work/bench.log" \
  node bench/first-light/bench.mjs --out "$out/bench.jsonl" --device "$device" --deadline "$((deadline - reserve))" "${bench_args[@]}"

log "done after $(($(date +%s) - start)) s"
finish
cat "$out/summary.md"
# Exit status: 1 when a part failed (summary.mjs --check); timeouts and parts not run do not count.
node bench/first-light/summary.mjs --work "$work" --bench "$out/bench.jsonl" --check > /dev/null
