// The demo prior's oracle (docs/demo.md, "What would close the gap"): the same network, schedule,
// prediction target and batch as scripts/train-demo-prior.ts, trained by plain supervised denoising on the
// CLEAN 16x16 images that the prior only ever saw corrupted. Never shipped: it tells how much of the gap
// to the quality bar is the corruption (GSURE's harder problem) and how much is the network, its
// resolution and its training budget. Its --work checkpoint is read by scripts/eval-demo-prior.ts.
//   node --import ./test/support/register-ts.mjs scripts/train-demo-oracle.ts [--minutes 40] [--steps 20000]
//     [--work demo-oracle-run.safetensors] [--lr 5e-4] [--ema 0.999] [--seed 7]
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { interruptible, progressPrinter } from '../lib/cli-common.ts';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { DEMO_RESOLUTION, DEMO_UNET, demoMeasurements, halve } from '../lib/demo/recipe.ts';
import { gsureSchedule, svdStatistics } from '../lib/gsure/train.ts';
import { train } from '../lib/train.ts';
import { UNet } from '../lib/unet.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '40' },
    steps: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '5e-4' },
    warmup: { type: 'string', default: '200' },
    ema: { type: 'string', default: '0.999' },
    seed: { type: 'string', default: '7' },
    work: { type: 'string', default: 'demo-oracle-run.safetensors' },
  },
});
const num = (name: keyof typeof args, ok: (v: number) => boolean) => {
  const v = Number(args[name]);
  if (!ok(v)) throw new RangeError(`--${name}: got ${JSON.stringify(args[name])}`);
  return v;
};
const int = (v: number) => Number.isInteger(v) && v >= 0;
const minutes = num('minutes', (v) => v > 0);
const steps = num('steps', (v) => int(v) && v > 0);
const batchSize = num('batch', (v) => int(v) && v > 0);
const lr = num('lr', (v) => v > 0);
const warmupSteps = num('warmup', int);
const emaDecay = num('ema', (v) => v >= 0 && v < 1);
const seed = num('seed', int);

// The prior's schedule: the one GSURE derives from the demo's measurement noise.
const schedule = gsureSchedule((await svdStatistics(await demoMeasurements(7))).vMax);
const clean = await loadFashionMnist({ source: 'subset' });
const n = clean.shape[0];
const r = DEMO_RESOLUTION;
const images = halve(clean.images, n);
const model = new UNet(DEMO_UNET, { device: 'cpu', seed: 7n });
const controller = interruptible();
const timer = setTimeout(() => controller.abort(), minutes * 60_000);
const resume = existsSync(args.work) ? args.work : undefined;
console.log(
  `demo oracle: ${n} clean images at ${r}x${r}, x0-prediction, ${steps} steps of batch ${batchSize}, lr ${lr}, EMA ${emaDecay}, for at most ${minutes} min${resume ? `, resuming ${resume}` : ''}`,
);
const started = performance.now();
const result = await train({
  model,
  data: { images, shape: [n, 1, r, r] },
  schedule,
  prediction: 'x0',
  steps,
  batchSize,
  seed,
  optimizer: { lr, warmupSteps, maxGradNorm: 1 },
  emaDecay,
  signal: controller.signal,
  onProgress: progressPrinter('oracle'),
  progressEvery: 100,
  checkpoint: { path: args.work, every: 500 },
  resume,
});
clearTimeout(timer);
console.log(`${args.work}: ${result.step} steps, ${((performance.now() - started) / 60_000).toFixed(1)} min this run`);
model.dispose();
