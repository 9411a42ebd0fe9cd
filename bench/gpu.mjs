// The GPU benchmark suite, meant for one device call on the GPU machine (docs/gpu.md):
//   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> node bench/gpu.mjs --out $OUT
// For each preset at batch 128: kintsugi's training step next to PyTorch's (eager fp32, torch.compile
// fp32 and bf16) measured in the same command; the GSURE step next to the supervised one; sampling throughput (50 DDIM steps, batch 256) next to
// PyTorch's; per-kernel TFLOP/s and GB/s against counted FLOPs and bytes; peak memory for all. Writes
// gpu-<date>.json (device, driver, commit, date) and prints the README table (bench/report.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unetLayout } from '../dist/index.js';
import { arg, flag, runInfo, runPython } from './lib/common.mjs';
import { kernelFigures } from './lib/kernels.mjs';
import { timeGsureStep, timeSampling, timeTrainStep } from './lib/step.mjs';
import { markdownTables } from './report.mjs';

const device = arg('device', 'cuda:0');
const presets = arg('presets', 'fmnist32,cifar32').split(',');
const batch = Number(arg('batch', 128));
const sampleBatch = Number(arg('sample-batch', 256));
const steps = Number(arg('steps', 30));
const quick = flag('quick'); // PyTorch eager only, fewer steps: a smoke run
const noTorch = flag('no-torch');
const outDir = arg('out', new URL('results/', import.meta.url).pathname);
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

const result = { suite: 'gpu', ...runInfo(device), batch, sampleBatch, presets: {} };
for (const preset of presets) {
  const r = (result.presets[preset] = {});
  log(preset, 'kintsugi training step');
  r.train = await timeTrainStep({ device, preset, batch, steps: quick ? 5 : steps });
  log(preset, `  ${r.train.median_ms.toFixed(2)} ms/step (${r.train.precision})`);
  // The exact path beside the default (tensor cores, BF16 operands): issue #13's before and after.
  log(preset, 'kintsugi training step, fp32 (SIMT)');
  r.trainFp32 = await timeTrainStep({ device, preset, batch, steps: quick ? 5 : steps, precision: 'fp32' });
  log(preset, `  ${r.trainFp32.median_ms.toFixed(2)} ms/step`);
  r.torchTrain = [];
  if (!noTorch) {
    const modes = quick
      ? [['eager', 'fp32']]
      : [
          ['eager', 'fp32'],
          ['compile', 'fp32'],
          ['compile', 'bf16'],
        ];
    for (const [mode, precision] of modes) {
      log(preset, `PyTorch ${mode} ${precision}`);
      const t = runPython('torch_step.py', [preset, batch, quick ? 5 : steps, 16, 'cuda', mode, precision]);
      r.torchTrain.push({ mode, precision, ...t, times_ms: undefined });
      log(preset, t.error ? `  error: ${t.error}` : `  ${t.median_ms.toFixed(2)} ms/step`);
    }
  }
  log(preset, 'kintsugi GSURE step (1 probe, forward differences)');
  r.gsure = await timeGsureStep({ device, preset, batch, steps: quick ? 5 : steps });
  r.gsure.ratio_to_supervised = r.gsure.median_ms / r.train.median_ms;
  log(preset, `  ${r.gsure.median_ms.toFixed(2)} ms/step (${r.gsure.ratio_to_supervised.toFixed(2)}x the supervised step)`);
  log(preset, 'kintsugi sampling');
  r.sample = await timeSampling({ device, preset, batch: sampleBatch, steps: 50 });
  log(preset, `  ${r.sample.img_per_s.toFixed(0)} img/s`);
  r.torchSample = [];
  if (!noTorch) {
    for (const mode of quick ? ['eager'] : ['eager', 'compile']) {
      log(preset, `PyTorch sampling ${mode} bf16`);
      const t = runPython('torch_sample.py', [preset, sampleBatch, 50, mode, 'bf16']);
      r.torchSample.push({ mode, ...t });
      log(preset, t.error ? `  error: ${t.error}` : `  ${t.img_per_s.toFixed(0)} img/s`);
    }
  }
  log(preset, 'kernels');
  r.kernels = await kernelFigures({ device, preset, batch, paramCount: unetLayout(preset).paramCount });
}

mkdirSync(outDir, { recursive: true });
const file = join(outDir, `gpu-${result.date.slice(0, 10)}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(markdownTables(result));
log(`wrote ${file}`);
