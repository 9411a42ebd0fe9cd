// The long-run memory check: STEPS small CPU training steps (default 10,000) in one process, sampling the
// resident set size (RSS) and the allocator's live bytes every SAMPLE steps, then the least-squares slope
// of RSS over the second half (after warm-up: JIT, allocator arenas, the V8 heap reaching its size). A
// leak of one small tensor per step would show as ~tens of KB per 1000 steps in the allocator's bytes and
// in RSS; steady memory shows as a slope near zero and live bytes back to their start.
//
//   nice -n 10 node --import ./test/support/register-ts.mjs scripts/memory-soak.ts [--steps 10000] [--sample 250]
import { parseArgs } from 'node:util';
import { memoryStats, synchronize } from '../lib/memory.ts';
import { train } from '../lib/train.ts';
import { UNet } from '../lib/unet.ts';
import { blobs } from '../test/helpers.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '10000' }, sample: { type: 'string', default: '250' } } });
const steps = Number(values.steps);
const every = Number(values.sample);
const model = new UNet(
  { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [8], resolution: 8 },
  { device: 'cpu', seed: 1 },
);
await synchronize('cpu');
const live0 = memoryStats('cpu').inUse;
const samples: { step: number; rss: number; live: number }[] = [];
const t0 = performance.now();
const r = await train({
  model,
  data: blobs(256),
  steps,
  batchSize: 8,
  seed: 1,
  emaDecay: 0.99,
  progressEvery: every,
  onProgress: (p) => samples.push({ step: p.step, rss: process.memoryUsage().rss, live: memoryStats('cpu').inUse }),
});
const seconds = (performance.now() - t0) / 1000;
r.optimizer.dispose();
r.ema?.dispose();
await synchronize('cpu');
const liveAfterTraining = memoryStats('cpu').inUse;
model.dispose();

const half = samples.filter((s) => s.step > steps / 2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const mx = mean(half.map((s) => s.step));
const my = mean(half.map((s) => s.rss));
const slope = half.reduce((a, s) => a + (s.step - mx) * (s.rss - my), 0) / half.reduce((a, s) => a + (s.step - mx) ** 2, 0);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`memory-soak: ${steps} steps in ${seconds.toFixed(0)} s (${new Date().toISOString()}, node ${process.version})`);
console.log(
  `RSS: ${mib(samples[0]!.rss)} MiB at step ${samples[0]!.step}, ${mib(samples.at(-1)!.rss)} MiB at step ${samples.at(-1)!.step}, min ${mib(Math.min(...samples.map((s) => s.rss)))}, max ${mib(Math.max(...samples.map((s) => s.rss)))}`,
);
console.log(`RSS slope over steps ${half[0]!.step}..${half.at(-1)!.step}: ${((slope * 1000) / 1024).toFixed(1)} KiB per 1000 steps`);
console.log(
  `allocator live bytes: ${live0} before (the model), ${Math.min(...samples.map((s) => s.live))}..${Math.max(...samples.map((s) => s.live))} during, ${liveAfterTraining} after training with its optimizer and EMA disposed`,
);
