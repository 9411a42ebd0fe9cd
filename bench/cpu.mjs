// `npm run bench`: the CPU benchmark suite (run after `npm run build`). kintsugi next to PyTorch CPU
// (Debian's python3-torch, the same thread count) in interleaved rounds of one run, each measurement in
// its own process, so load on a shared machine hits both alike: read the ratios, not the absolute
// times. Per workload: wall time (median), CPU time of all threads per step (steadier under load) and
// peak resident memory of the process; for kintsugi also the pool's idle thread-time. Then per-kernel
// figures at tiny16's and small32's shapes. Writes bench/results/cpu-<date>.json and prints tables.
//   node bench/cpu.mjs [--presets tiny16,small32,fmnist32] [--batch 16] [--steps 5] [--rounds 2]
//                      [--sample-presets tiny16,small32] [--sample-batch 64] [--sample-steps 50]
//                      [--sample-warmup 2] [--kernels tiny16,small32] [--threads N] [--timeout S]
//                      [--tag NAME] [--out DIR]
// --threads sets both sides' thread count (default: all hardware threads). On a loaded machine use 1:
// PyTorch's OpenMP threads spin-wait for each other, so with more threads than free cores its times
// (and CPU time) balloon, and the ratio says more about the load than about either library.
// Sampling: each side warms up with --sample-warmup DDIM steps at the same batch (allocates every
// buffer, builds PyTorch's kernels), then one timed run of --sample-steps; CPU time is of that run.
// --timeout bounds each PyTorch process (seconds, default 600): small32 DDIM 50 x 64 at one thread
// takes PyTorch several minutes of CPU.
// GSURE: the first preset's process also times the GSURE step; its ratio to the supervised step is
// given in wall and in CPU time (medians over rounds).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unetLayout } from '../dist/index.js';
import { arg, median, runInfo, runPython } from './lib/common.mjs';
import { kernelFigures } from './lib/kernels.mjs';

const list = (name, fallback) => arg(name, fallback).split(',').filter(Boolean);
const presets = list('presets', 'tiny16,small32,fmnist32');
const samplePresets = list('sample-presets', 'tiny16,small32');
const kernelPresets = list('kernels', 'tiny16,small32');
const batch = Number(arg('batch', 16));
const steps = Number(arg('steps', 5));
const rounds = Number(arg('rounds', 2));
const sampleBatch = Number(arg('sample-batch', 64));
const sampleSteps = Number(arg('sample-steps', 50));
const sampleWarmup = Number(arg('sample-warmup', 2));
const timeoutMs = 1000 * Number(arg('timeout', 600));
const outDir = arg('out', new URL('results/', import.meta.url).pathname);
const threads = Number(arg('threads', availableParallelism()));
const tag = arg('tag', '');
process.env.KINTSUGI_CPU_THREADS = String(threads); // the children's pool
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
const child = fileURLToPath(new URL('lib/cpu-child.mjs', import.meta.url));
const ours = (...args) => {
  try {
    return JSON.parse(
      execFileSync(process.execPath, [child, ...args.map(String)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
        .trim()
        .split('\n')
        .pop(),
    );
  } catch (e) {
    return { error: String(e.message).split('\n')[0] };
  }
};

const load = [loadavg()[0]];
const result = { suite: 'cpu', ...runInfo('cpu'), threads, batch, sampleBatch, sampleSteps, sampleWarmup, rounds, presets: {} };
const entry = (p) => (result.presets[p] ??= { rounds: [] });
for (let round = 0; round < rounds; round++) {
  for (const preset of presets) {
    log(`round ${round + 1}/${rounds}: ${preset} training step, batch ${batch}: kintsugi, then PyTorch`);
    const k = ours('train', preset, batch, steps, preset === presets[0] ? 'gsure' : '');
    const t = runPython('torch_step.py', [preset, batch, steps, threads, 'cpu', 'eager', 'fp32'], timeoutMs);
    // The same network on both sides: PyTorch's own parameter count against ours.
    const paramsMatch = t.params === undefined ? null : t.params === unetLayout(preset).paramCount;
    entry(preset).rounds.push({
      kintsugi: k,
      torch: t,
      paramsMatch,
      ratio: t.median_ms / k.train?.median_ms,
      cpu_ratio: t.cpu_ms_per_step / k.train?.cpu_ms_per_step,
    });
    load.push(loadavg()[0]);
  }
  for (const preset of samplePresets) {
    log(`round ${round + 1}/${rounds}: ${preset} DDIM ${sampleSteps} steps, batch ${sampleBatch}: kintsugi, then PyTorch`);
    const k = ours('sample', preset, sampleBatch, sampleSteps, sampleWarmup);
    const t = runPython('torch_sample.py', [preset, sampleBatch, sampleSteps, 'eager', 'fp32', 'cpu', threads, sampleWarmup], timeoutMs);
    (entry(preset).sampleRounds ??= []).push({
      kintsugi: k,
      torch: t,
      ratio: t.ms / k.sample?.ms,
      cpu_ratio: t.cpu_ms / k.sample?.cpu_ms,
    });
    load.push(loadavg()[0]);
  }
}
for (const preset of kernelPresets) {
  log(`kernels at ${preset}'s shapes`);
  entry(preset).kernels = await kernelFigures({ device: 'cpu', preset, batch, reps: 5, paramCount: unetLayout(preset).paramCount });
}
result.loadAverage = load;

// Summaries in the shape bench/report.mjs reads (train, torchTrain, gsure, sample, torchSample).
for (const [preset, p] of Object.entries(result.presets)) {
  const ok = p.rounds.filter((r) => r.kintsugi.train && !r.torch.error);
  if (p.rounds.length) {
    const times = p.rounds.flatMap((r) => r.kintsugi.train?.times_ms ?? []);
    const last = p.rounds.at(-1).kintsugi.train;
    if (last) p.train = { ...last, times_ms: times, median_ms: median(times), img_per_s: (1000 * batch) / median(times), peak_bytes: null };
    const tt = ok.flatMap((r) => r.torch.times_ms);
    p.torchTrain = ok.length
      ? [{ mode: 'eager', precision: 'fp32', version: ok[0].torch.version, threads, median_ms: median(tt), peak_bytes: null }]
      : [{ mode: 'eager', precision: 'fp32', error: p.rounds[0].torch.error }];
    const g = p.rounds.map((r) => r.kintsugi.gsure).filter(Boolean);
    if (g.length)
      p.gsure = {
        ...g.at(-1),
        ratio_to_supervised: median(p.rounds.map((r) => r.kintsugi.gsure?.median_ms / r.kintsugi.train?.median_ms).filter(Number.isFinite)),
        cpu_ratio_to_supervised: median(
          p.rounds.map((r) => r.kintsugi.gsure?.cpu_ms_per_step / r.kintsugi.train?.cpu_ms_per_step).filter(Number.isFinite),
        ),
        peak_bytes: null,
      };
  }
  if (p.sampleRounds?.length) {
    const s = p.sampleRounds.map((r) => r.kintsugi.sample).filter(Boolean);
    if (s.length) p.sample = { ...s.at(-1), peak_bytes: null };
    p.torchSample = p.sampleRounds.map((r) =>
      r.torch.error ? { mode: 'eager fp32', error: r.torch.error } : { mode: 'eager fp32', img_per_s: r.torch.img_per_s },
    );
  }
}

mkdirSync(outDir, { recursive: true });
const file = join(outDir, `cpu-${result.date.slice(0, 10)}${tag ? `-${tag}` : ''}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');

const f = (v, d = 1) => (v === undefined || v === null || !Number.isFinite(v) ? '—' : Number(v).toFixed(d));
const mib = (b) => (b ? `${(b / 2 ** 20).toFixed(0)}` : '—');
const lines = [
  `CPU, ${result.deviceName}, ${threads} threads, kernels ${result.build.cpuIsa}, ${result.date.slice(0, 16)}Z, commit ${result.commit ?? 'unknown'}; load average ${load.map((l) => l.toFixed(1)).join(' / ')}`,
  '',
];
lines.push(
  '| workload | round | kintsugi ms | PyTorch ms | speed-up (wall) | CPU ms/step kintsugi / PyTorch | speed-up (CPU time) | peak RSS MiB kintsugi / PyTorch | kintsugi idle |',
  '|---|---|---|---|---|---|---|---|---|',
);
for (const [preset, p] of Object.entries(result.presets)) {
  p.rounds.forEach((r, i) => {
    const k = r.kintsugi.train,
      t = r.torch;
    lines.push(
      `| ${preset} step, batch ${batch} | ${i + 1} | ${f(k?.median_ms)} | ${t.error ? t.error : f(t.median_ms)} | ${f(r.ratio, 2)}x | ${f(k?.cpu_ms_per_step)} / ${f(t.cpu_ms_per_step)} | ${f(r.cpu_ratio, 2)}x | ${mib(k?.rss_peak_bytes)} / ${mib(t.rss_peak_bytes)} | ${f(100 * (k?.idle.idle_fraction ?? NaN), 0)}% |`,
    );
  });
  (p.sampleRounds ?? []).forEach((r, i) => {
    const k = r.kintsugi.sample,
      t = r.torch;
    lines.push(
      `| ${preset} DDIM ${sampleSteps}, batch ${sampleBatch} | ${i + 1} | ${f(k?.ms, 0)} | ${t.error ? t.error : f(t.ms, 0)} | ${f(r.ratio, 2)}x | ${f(k?.cpu_ms, 0)} / ${f(t.cpu_ms, 0)} (timed run) | ${f(r.cpu_ratio, 2)}x | ${mib(k?.rss_peak_bytes)} / ${mib(t.rss_peak_bytes)} | ${f(100 * (k?.idle.idle_fraction ?? NaN), 0)}% |`,
    );
  });
}
for (const [preset, p] of Object.entries(result.presets))
  if (p.gsure)
    lines.push(
      '',
      `GSURE step / supervised step, ${preset} batch ${batch} (median over rounds): ${f(p.gsure.cpu_ratio_to_supervised, 2)}x in CPU time, ${f(p.gsure.ratio_to_supervised, 2)}x in wall time`,
    );
for (const [preset, p] of Object.entries(result.presets)) {
  if (!p.kernels) continue;
  lines.push(
    '',
    `Kernels at ${preset}'s shapes, batch ${batch} (mean of queued launches):`,
    '',
    '| kernel | ms | GFLOP/s | GB/s |',
    '|---|---|---|---|',
  );
  for (const k of p.kernels)
    lines.push(
      `| ${k.kernel} | ${f(k.ms, 3)} | ${k.tflops === null ? '' : f(1000 * k.tflops, 1)} | ${k.gbs === null ? '' : f(k.gbs, 1)} |`,
    );
}
console.log(lines.join('\n'));
log(`wrote ${file}`);
