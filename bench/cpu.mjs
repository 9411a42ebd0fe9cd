// `npm run bench`: the CPU benchmark suite (run after `npm run build`). The tiny16 training step at
// batch 16 next to PyTorch CPU's (Debian's python3-torch, same thread count) in interleaved rounds of
// one run, so load on this shared machine hits both alike: read the ratio, not the absolute times.
// Then per-kernel figures at that step's shapes. Writes bench/results/cpu-<date>.json.
//   node bench/cpu.mjs [--preset tiny16] [--batch 16] [--steps 10] [--rounds 2] [--out DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { unetLayout } from '../dist/index.js';
import { arg, median, runInfo, runPython } from './lib/common.mjs';
import { kernelFigures } from './lib/kernels.mjs';
import { timeGsureStep, timeTrainStep } from './lib/step.mjs';
import { markdownTables } from './report.mjs';

const preset = arg('preset', 'tiny16');
const batch = Number(arg('batch', 16));
const steps = Number(arg('steps', 10));
const rounds = Number(arg('rounds', 2));
const outDir = arg('out', new URL('results/', import.meta.url).pathname);
const threads = availableParallelism();
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

const ours = [];
const torch = [];
let last;
for (let round = 0; round < rounds; round++) {
  log(`round ${round + 1}/${rounds}: kintsugi ${preset} batch ${batch}`);
  last = await timeTrainStep({ device: 'cpu', preset, batch, steps });
  ours.push(...last.times_ms);
  log(`round ${round + 1}/${rounds}: PyTorch CPU`);
  const t = runPython('torch_step.py', [preset, batch, steps, threads, 'cpu', 'eager', 'fp32']);
  if (t.error) log(`  PyTorch unavailable: ${t.error}`);
  else torch.push(t);
}
const torchTimes = torch.flatMap((t) => t.times_ms);
// peak_bytes: the CPU allocator sees tensors but not the network's internal std::vector buffers, so it
// would understate the step's memory; the figure is reported for GPUs only.
const train = { ...last, times_ms: ours, median_ms: median(ours), img_per_s: (1000 * batch) / median(ours), peak_bytes: null };
train.tflops = train.gflop_per_step / train.median_ms; // GFLOP / ms = TFLOP/s
const torchTrain = torch.length
  ? [{ mode: 'eager', precision: 'fp32', version: torch[0].version, threads, median_ms: median(torchTimes), peak_bytes: null }]
  : [{ mode: 'eager', precision: 'fp32', error: 'PyTorch unavailable (install python3-torch)' }];
log('GSURE step');
const gsure = await timeGsureStep({ device: 'cpu', preset, batch, steps });
gsure.peak_bytes = null;
gsure.ratio_to_supervised = gsure.median_ms / train.median_ms;
log('kernels');
const kernels = await kernelFigures({ device: 'cpu', preset, batch, reps: 5, paramCount: unetLayout(preset).paramCount });
const result = { suite: 'cpu', ...runInfo('cpu'), threads, batch, presets: { [preset]: { train, torchTrain, gsure, kernels } } };
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `cpu-${result.date.slice(0, 10)}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(markdownTables(result));
log(`wrote ${file}`);
