// One kintsugi CPU measurement in its own process, so its peak resident memory is its own (the
// PyTorch side runs in its own process too). Prints one JSON line. Used by bench/cpu.mjs.
//   node bench/lib/cpu-child.mjs train PRESET BATCH STEPS [gsure]
//   node bench/lib/cpu-child.mjs sample PRESET BATCH STEPS [WARMUP_STEPS]
import { native } from '../../dist/native.js';
import { timeGsureStep, timeSampling, timeTrainStep } from './step.mjs';

const [mode, preset, batchText, stepsText, extra] = process.argv.slice(2);
const batch = Number(batchText),
  steps = Number(stepsText);
const rss = () => process.resourceUsage().maxRSS * 1024; // bytes (Node reports KiB)
const rssBase = rss();

/** Runs fn; the fraction of the pool's thread-time left idle meanwhile (kintsugi/cpu_info.h). */
async function withIdle(fn) {
  const s0 = native.cpuPoolStats(),
    t0 = performance.now();
  const result = await fn();
  const s1 = native.cpuPoolStats(),
    wall = performance.now() - t0;
  const parallel = s1.parallelMs - s0.parallelMs,
    busy = s1.busyMs - s0.busyMs;
  const used = busy + (wall - parallel); // outside parallel jobs one thread works
  return {
    result,
    idle: {
      threads: s1.threads,
      wall_ms: wall,
      parallel_ms: parallel,
      busy_ms: busy,
      idle_fraction: Math.max(0, 1 - used / (s1.threads * wall)),
      jobs: s1.jobs - s0.jobs,
    },
  };
}

let out;
if (mode === 'train') {
  const { result: train, idle } = await withIdle(() => timeTrainStep({ device: 'cpu', preset, batch, steps, warmup: 2 }));
  const rssPeak = rss();
  const gsure = extra === 'gsure' ? await timeGsureStep({ device: 'cpu', preset, batch, steps, warmup: 2 }) : null;
  out = { train: { ...train, idle, rss_base_bytes: rssBase, rss_peak_bytes: rssPeak }, gsure };
} else if (mode === 'sample') {
  const warmupSteps = extra === undefined ? steps : Number(extra);
  const c0 = process.cpuUsage();
  const { result: sample, idle } = await withIdle(() => timeSampling({ device: 'cpu', preset, batch, steps, warmupSteps }));
  const c = process.cpuUsage(c0);
  out = { sample: { ...sample, idle, cpu_ms_with_warmup: (c.user + c.system) / 1000, rss_base_bytes: rssBase, rss_peak_bytes: rss() } };
} else {
  throw new Error(`cpu-child: expected mode train or sample, got ${mode}`);
}
console.log(JSON.stringify(out));
