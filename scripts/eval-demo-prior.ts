// The demo's prior on its own (docs/demo.md): 64 DDIM samples of a prior file's weights, without any
// fine-tuning, measured as the demo measures its samples (the shipped Fashion-MNIST classifier's share
// of samples with confidence >= 0.8, and FD-FMNIST against the shipped images at the demo's resolution).
// Used to decide whether a longer prior run helps before it replaces lib/assets/demo-prior.safetensors.
//   node --import ./test/support/register-ts.mjs scripts/eval-demo-prior.ts [--prior FILE] [--seeds 1,2] [--steps 25]
//     [--method ddim|ddpm|heun] [--eta E] [--guidance W] [--picture FILE.png] [--device cpu|cuda] [--json FILE]
// The resolution is the prior's (32x32 as shipped; 16x16 from `--resolution 16` of train-demo-prior.ts).
// It prints, per seed, the confident share, FD-FMNIST and the classifier's class histogram (a sampler that
// raises the share by favouring the easy classes shows there: docs/demo.md).
// FILE may be a prior (EMA weights) or the training script's --work checkpoint (its EMA weights are used
// when it holds them).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { demoPicture } from '../lib/demo/picture.ts';
import { readCheckpoint } from '../lib/checkpoint.ts';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { demoQuality } from '../lib/demo/quality.ts';
import { writeFileSync } from 'node:fs';
import { atClassifierSize, atResolution, demoMeasurements, demoResolution } from '../lib/demo/recipe.ts';
import { gsureSchedule, svdStatistics } from '../lib/gsure/train.ts';
import { Generator } from '../lib/random.ts';
import { uniformAttentionGuidance } from '../lib/guidance.ts';
import { sample } from '../lib/sample.ts';
import { UNet } from '../lib/unet.ts';

const { values: args } = parseArgs({
  options: {
    prior: { type: 'string', default: 'lib/assets/demo-prior.safetensors' },
    seeds: { type: 'string', default: '1,2' },
    steps: { type: 'string', default: '25' },
    method: { type: 'string', default: 'ddim' },
    eta: { type: 'string', default: '0' },
    // Uniform-attention guidance weight (lib/guidance.ts; 1 = none, the demo's default is DEMO_GUIDANCE).
    guidance: { type: 'string', default: '1' },
    picture: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    // The per-seed figures and their totals as JSON (the GPU session keeps them).
    json: { type: 'string' },
  },
});
const seeds = args.seeds.split(',').map(Number);
const steps = Number(args.steps);
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: non-negative integers, got ${args.seeds}`);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps: a positive integer, got ${args.steps}`);
const guidance = Number(args.guidance);
if (!(guidance >= 0)) throw new Error(`--guidance: a weight >= 0, got ${args.guidance}`);
if (!['ddim', 'ddpm', 'heun'].includes(args.method)) throw new Error(`--method: ddim, ddpm or heun, got ${args.method}`);

const ckpt = await readCheckpoint(args.prior);
// A --work checkpoint of the training script carries the EMA weights beside the raw ones.
const params = ckpt.ema ?? ckpt.params;
const device = args.device;
const model = new UNet(ckpt.config, { device });
model.setParams(params);
const r = demoResolution(ckpt.config.resolution, args.prior);
const set = await demoMeasurements(1, undefined, r);
const schedule = gsureSchedule((await svdStatistics(set)).vMax);
const n = 64;
const reference = await loadFashionMnist({ source: 'subset' });
const m = reference.shape[0];
const refImages = atClassifierSize(atResolution(reference.images, m, r), m, r);
const rows: { seed: number; confident: number; fd: number; classes: number[]; seconds: number }[] = [];
for (const seed of seeds) {
  const began = performance.now();
  const guided = await uniformAttentionGuidance(model, guidance);
  const x = await sample(guided.denoiser, {
    schedule,
    prediction: 'x0',
    shape: [n, 1, r, r],
    device,
    method: args.method as 'ddim' | 'ddpm' | 'heun',
    eta: Number(args.eta),
    steps,
    clip: [-1, 1],
    generator: new Generator(seed),
  }).finally(() => guided.dispose());
  const samples = await x.toArray();
  x.dispose();
  const big = atClassifierSize(samples, n, r);
  const q = await demoQuality(big, n, refImages, m, 0.8, device.startsWith('cuda') ? device : 'cpu');
  if (args.picture && seed === seeds[0]) await writeFile(args.picture, demoPicture([{ images: big }], n));
  const confident = Math.round(q.confident * n);
  const hist = new Array(10).fill(0);
  for (const c of q.classes) hist[c]++;
  console.log(
    `${args.prior}: seed ${seed}, ${args.method} ${steps} eta ${args.eta}${guidance === 1 ? '' : ` guidance ${guidance}`}: ${confident} of ${n} confident (${(100 * q.confident).toFixed(0)} %), ` +
      `FD-FMNIST ${q.fd.toFixed(1)}, classes [${hist.join(' ')}], ${((performance.now() - began) / 1000).toFixed(0)} s`,
  );
  rows.push({ seed, confident, fd: q.fd, classes: hist, seconds: (performance.now() - began) / 1000 });
}
model.dispose();
const total = rows.reduce((a, q) => a + q.confident, 0);
const meanFd = rows.reduce((a, q) => a + q.fd, 0) / rows.length;
console.log(
  `${args.prior}: ${total} of ${n * rows.length} confident (${((100 * total) / (n * rows.length)).toFixed(1)} %), mean FD-FMNIST ${meanFd.toFixed(1)}`,
);
if (args.json)
  writeFileSync(
    args.json,
    JSON.stringify(
      {
        prior: args.prior,
        resolution: r,
        method: args.method,
        steps,
        eta: Number(args.eta),
        guidance,
        device,
        rows,
        total,
        of: n * rows.length,
        meanFd,
      },
      null,
      2,
    ) + '\n',
  );
