// The demo's prior on its own (docs/demo.md): 64 DDIM samples of a prior file's weights, without any
// fine-tuning, measured as the demo measures its samples (the shipped Fashion-MNIST classifier's share
// of samples with confidence >= 0.8, and FD-FMNIST against the shipped images at the demo's resolution).
// Used to decide whether a longer prior run helps before it replaces lib/assets/demo-prior.safetensors.
//   node --import ./test/support/register-ts.mjs scripts/eval-demo-prior.ts [--prior FILE] [--seeds 1,2] [--steps 25]
//     [--method ddim|ddpm|heun] [--eta E] [--picture FILE.png]
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
import { DEMO_RESOLUTION, demoMeasurements, double, halve } from '../lib/demo/recipe.ts';
import { gsureSchedule, svdStatistics } from '../lib/gsure/train.ts';
import { Generator } from '../lib/random.ts';
import { sample, unetDenoiser } from '../lib/sample.ts';
import { UNet } from '../lib/unet.ts';

const { values: args } = parseArgs({
  options: {
    prior: { type: 'string', default: 'lib/assets/demo-prior.safetensors' },
    seeds: { type: 'string', default: '1,2' },
    steps: { type: 'string', default: '25' },
    method: { type: 'string', default: 'ddim' },
    eta: { type: 'string', default: '0' },
    picture: { type: 'string' },
  },
});
const seeds = args.seeds.split(',').map(Number);
const steps = Number(args.steps);
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: non-negative integers, got ${args.seeds}`);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps: a positive integer, got ${args.steps}`);
if (!['ddim', 'ddpm', 'heun'].includes(args.method)) throw new Error(`--method: ddim, ddpm or heun, got ${args.method}`);

const ckpt = await readCheckpoint(args.prior);
// A --work checkpoint of the training script carries the EMA weights beside the raw ones.
const params = ckpt.ema ?? ckpt.params;
const model = new UNet(ckpt.config, { device: 'cpu' });
model.setParams(params);
const set = await demoMeasurements(1);
const schedule = gsureSchedule((await svdStatistics(set)).vMax);
const r = DEMO_RESOLUTION;
const n = 64;
const reference = await loadFashionMnist({ source: 'subset' });
const m = reference.shape[0];
const refImages = double(halve(reference.images, m), m, r);
for (const seed of seeds) {
  const began = performance.now();
  const x = await sample(unetDenoiser(model), {
    schedule,
    prediction: 'x0',
    shape: [n, 1, r, r],
    device: 'cpu',
    method: args.method as 'ddim' | 'ddpm' | 'heun',
    eta: Number(args.eta),
    steps,
    clip: [-1, 1],
    generator: new Generator(seed),
  });
  const samples = await x.toArray();
  x.dispose();
  const q = await demoQuality(double(samples, n, r), n, refImages, m, 0.8, 'cpu');
  if (args.picture && seed === seeds[0]) await writeFile(args.picture, demoPicture([{ images: double(samples, n, r) }], n));
  const confident = Math.round(q.confident * n);
  const hist = new Array(10).fill(0);
  for (const c of q.classes) hist[c]++;
  console.log(
    `${args.prior}: seed ${seed}, ${args.method} ${steps} eta ${args.eta}: ${confident} of ${n} confident (${(100 * q.confident).toFixed(0)} %), ` +
      `FD-FMNIST ${q.fd.toFixed(1)}, classes [${hist.join(' ')}], ${((performance.now() - began) / 1000).toFixed(0)} s`,
  );
}
model.dispose();
