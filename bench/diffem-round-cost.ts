// The cost of one DiffEM round (docs/diffem.md, "Cost of a round"), measured in CPU time, not wall time
// (the machine may be shared): a few M-step training steps and a few E-step denoiser evaluations of the
// conditional UNet, per preset, then the round of a given setting as steps × (CPU s per step) +
// N × sample steps × (CPU s per image-evaluation). Both parts scale linearly in their counts.
//
//   node --import ./test/support/register-ts.mjs bench/diffem-round-cost.ts [--device cpu] [--steps 6] [--out FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultDevice } from '../lib/device.ts';
import { conditionalSample, trainConditional } from '../lib/diffem/conditional.ts';
import { presets, resizedConfig, UNet } from '../lib/unet.ts';

const { values: a } = parseArgs({
  options: { device: { type: 'string' }, steps: { type: 'string', default: '6' }, out: { type: 'string' } },
});
const device = a.device ?? defaultDevice();
const trainSteps = Number(a.steps);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const settings = [
  { preset: 'tiny16', size: 16, batch: 16 },
  { preset: 'fmnist32', size: 32, batch: 16 },
] as const;
const rows = [];
for (const s of settings) {
  const C = 1;
  const model = new UNet(resizedConfig(presets[s.preset], s.size, 2 * C + 1, C), { device, seed: 1 });
  const n = 16;
  const d = C * s.size * s.size;
  const x = new Float32Array(n * d).map((_, i) => Math.sin(i) * 0.5);
  const mask = new Float32Array(n * s.size * s.size).map((_, i) => (i % 3 === 0 ? 0 : 1));
  const y = x.map((v, i) => v * mask[(i % (s.size * s.size)) + Math.floor(i / d) * s.size * s.size]!);
  const data = { shape: [n, C, s.size, s.size] as const, x, y, mask };
  // One warm-up step (allocations, first-call costs), then the measured ones.
  (await trainConditional({ model, data, steps: 1, batchSize: s.batch, emaDecay: 0 })).optimizer.dispose();
  let t0 = cpu();
  let w0 = performance.now();
  const r = await trainConditional({ model, data, steps: trainSteps, batchSize: s.batch, emaDecay: 0.9999 });
  r.optimizer.dispose();
  r.ema?.dispose();
  const stepCpu = (cpu() - t0) / trainSteps;
  const stepWall = (performance.now() - w0) / 1000 / trainSteps;
  const sampleSteps = 8;
  t0 = cpu();
  w0 = performance.now();
  await conditionalSample(model, data, { method: 'ancestral', steps: sampleSteps, batchSize: n, seed: 1 });
  const evalCpu = (cpu() - t0) / (n * sampleSteps);
  const evalWall = (performance.now() - w0) / 1000 / (n * sampleSteps);
  model.dispose();
  rows.push({ preset: s.preset, size: s.size, batch: s.batch, stepCpu, stepWall, evalCpu, evalWall });
  console.log(
    `${s.preset} ${s.size}x${s.size}: training step (batch ${s.batch}) ${stepCpu.toFixed(3)} CPU s (${stepWall.toFixed(3)} s wall); E-step ${(evalCpu * 1000).toFixed(2)} CPU ms per image and denoiser evaluation`,
  );
}
const result = { date: new Date().toISOString(), device, trainSteps, rows };
if (a.out) writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
