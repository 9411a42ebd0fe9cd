// Trains the prior that `kintsugi demo` starts from (lib/assets/demo-prior.safetensors), from corrupted
// data only: the shipped 2,000 Fashion-MNIST images at 32x32, each pixel missing with probability 0.4,
// noise 0.05 on the rest (lib/demo/recipe.ts), GSURE-Diffusion (x0-prediction), the demo's UNet
// (DEMO_UNET_32). The measurement seed (7) differs from the demo's (1): the demo fine-tunes on fresh
// corruptions.
//
//   node --import ./test/support/register-ts.mjs scripts/train-demo-prior.ts [--minutes 40] [--steps 20000]
//
// --resolution 16 trains the smaller 16x16 network (DEMO_UNET) on the images averaged down, as the demo's
// first prior was (test/fixtures/demo/demo-prior-16.safetensors). --device cuda trains on a GPU; `bash
// bench/gpu-session.sh prior` runs it there (compiled to scripts/*.js by build:bench, since the GPU
// machine has no TypeScript) and measures the result.
//
// Time-boxed and resumable: it checkpoints to --work every 200 steps and a second call continues there;
// at the end (time up, step count reached, or Ctrl-C) it writes the EMA weights as BF16 to --out with
// the training's settings and wall time in the metadata. docs/demo.md records the runs that made the
// shipped file.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { loadUNet, readCheckpoint, saveCheckpoint } from '../lib/checkpoint.ts';
import { interruptible, progressPrinter } from '../lib/cli-common.ts';
import { DEMO_CORRUPTION, demoMeasurements, demoResolution, demoUNet } from '../lib/demo/recipe.ts';
import { widenParams } from '../lib/demo/widen.ts';
import { gsureSchedule, svdStatistics, trainGsure } from '../lib/gsure/train.ts';
import { UNet } from '../lib/unet.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '40' },
    steps: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '1e-3' },
    // 0.995: the EMA forgets the random initial weights within ~1,000 steps (0.999 would still weigh
    // them 37 % after 1,000 steps, and a CPU-sized run is only a few thousand steps long).
    ema: { type: 'string', default: '0.995' },
    work: { type: 'string', default: 'demo-prior-run.safetensors' },
    // Continue from an earlier prior (its weights; fresh optimizer and EMA): its steps and training time
    // are added to the new file's metadata, so the record stays the whole training's.
    init: { type: 'string' },
    // The seed of the batches, noise and probes; a continuation takes another one than its start did.
    seed: { type: 'string', default: '7' },
    warmup: { type: 'string', default: '200' },
    out: { type: 'string', default: 'lib/assets/demo-prior.safetensors' },
    // With --init: continue from the earlier prior widened to twice its channels by a function-preserving
    // map (lib/demo/widen.ts), so the wider network starts where the narrow one stopped.
    widen: { type: 'boolean', default: false },
    resolution: { type: 'string', default: '32' },
    device: { type: 'string', default: 'cpu' },
    // The rate falls to 0 along a half cosine over --steps (after the warm-up): a run that ends at its
    // step count rather than its time box finishes at a small rate, where the weights settle.
    cosine: { type: 'boolean', default: false },
    // Draw t from [0, --max-t) instead of [0, T): a continuation leaves out the noisiest steps, where
    // alphaBar < 0.01 (t >= 600) and the x0 prediction is little more than the data's mean.
    'max-t': { type: 'string' },
  },
});
const resolution = demoResolution(Number(args.resolution), '--resolution');
const [minutes, steps, batchSize, lr, emaDecay, seed, warmupSteps] = [
  Number(args.minutes),
  Number(args.steps),
  Number(args.batch),
  Number(args.lr),
  Number(args.ema),
  Number(args.seed),
  Number(args.warmup),
];
const maxT = args['max-t'] === undefined ? undefined : Number(args['max-t']);
const set = await demoMeasurements(7, undefined, resolution);
const schedule = gsureSchedule((await svdStatistics(set)).vMax);
if (args.widen && !args.init) throw new Error('--widen needs --init FILE (the prior to widen)');
const init = args.init ? await readCheckpoint(args.init) : undefined;
if (init && init.config.resolution !== resolution)
  throw new Error(`--init ${args.init} is a ${init.config.resolution}x${init.config.resolution} network; --resolution is ${resolution}`);
const widened = args.widen && init ? widenParams(init.config, init.params) : undefined;
const model = new UNet(widened?.config ?? init?.config ?? demoUNet(resolution), { device: args.device, seed: 7n });
const controller = interruptible();
const timer = setTimeout(() => controller.abort(), minutes * 60_000);
const resume = existsSync(args.work) ? args.work : undefined;
const before = resume ? (JSON.parse((await readCheckpoint(resume)).metadata.seconds ?? '0') as number) : 0;
// The earlier training a continuation starts from (--init): weights, steps, seconds and recipe.
if (init && !resume) model.setParams(widened?.params ?? init.params);
const earlier = { steps: Number(init?.metadata.steps ?? 0), seconds: Number(init?.metadata.seconds ?? 0) };
console.log(
  `demo prior: ${init ? `continuing ${args.init} (${earlier.steps} steps${widened ? `, widened to ${widened.config.channels} channels` : ''}), ` : ''}EMA decay ${emaDecay}; ${set.count} measurements (${DEMO_CORRUPTION.spec}, sigma0 ${DEMO_CORRUPTION.sigma0}) at ${resolution}x${resolution} on ${args.device}, ${steps} steps of batch ${batchSize}, lr ${lr}, for at most ${minutes} min${resume ? `, resuming ${resume}` : ''}`,
);
const started = performance.now();
const result = await trainGsure({
  model,
  measurements: set,
  schedule,
  steps,
  batchSize,
  seed,
  optimizer: { lr, warmupSteps, maxGradNorm: 1 },
  lrDecay: args.cosine ? 'cosine' : 'constant',
  ...(maxT === undefined ? {} : { gsure: { maxT } }),
  emaDecay,
  signal: controller.signal,
  onProgress: progressPrinter('prior'),
  progressEvery: 50,
  checkpoint: { path: args.work, every: 200 },
  resume,
});
clearTimeout(timer);
const seconds = before + (performance.now() - started) / 1000;
// Record the cumulative wall time in the work file too, so that a resumed run adds to it.
await saveCheckpoint(args.work, model, {
  optimizer: result.optimizer,
  ema: result.ema,
  step: result.step,
  prediction: 'x0',
  schedule: schedule.toJSON(),
  metadata: { seconds: String(seconds) },
});
const prior = await loadUNet(args.work, { useEma: true });
await saveCheckpoint(args.out, prior, {
  step: result.step,
  prediction: 'x0',
  schedule: schedule.toJSON(),
  dtype: 'BF16',
  metadata: {
    recipe: `GSURE-Diffusion on the shipped 2,000 Fashion-MNIST images ${resolution === 16 ? 'averaged to 16x16' : 'at 32x32'}, ${DEMO_CORRUPTION.spec}, sigma0 ${DEMO_CORRUPTION.sigma0}, measurement seed 7`,
    device: args.device,
    command: ['node --import ./test/support/register-ts.mjs scripts/train-demo-prior.ts', ...process.argv.slice(2)].join(' '),
    steps: String(earlier.steps + result.step),
    batch: String(batchSize),
    lr: `${lr}${args.cosine ? ` (cosine decay to 0 over ${steps} steps)` : ''}`,
    emaDecay: String(emaDecay),
    ...(maxT === undefined ? {} : { maxT: String(maxT) }),
    seconds: (earlier.seconds + seconds).toFixed(0),
    ...(init
      ? {
          continued: `${basename(args.init!)} (${earlier.steps} steps, ${earlier.seconds} s: ${init.metadata.command ?? ''} lr ${init.metadata.lr} EMA ${init.metadata.emaDecay})${widened ? `, widened to ${widened.config.channels} channels` : ''}, then ${result.step} steps with seed ${seed}, warm-up ${warmupSteps}`,
        }
      : {}),
  },
});
console.log(`wrote ${args.out}: EMA weights after ${result.step} steps, ${(seconds / 60).toFixed(1)} min of training`);
prior.dispose();
model.dispose();
