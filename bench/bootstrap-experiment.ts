// The data-efficiency experiment of bootstrapping diffusion (issue #7, docs/bootstrap.md): view models
// trained once on every Fashion-MNIST training image (low-res copies and crops), then for each N the
// residual f0 on the first N images; against the same UNet trained on the N images alone and against
// x̂_agg alone (views only); a λ sweep; FD-FMNIST of each model's samples against the test split; the
// counted and timed cost of one bootstrapped evaluation against one plain UNet evaluation. Meant for
// the GPU machine (hours on a CPU); a smoke run on the CPU takes a minute:
//
//   node --import ./test/support/register-ts.mjs bench/bootstrap-experiment.ts --out DIR [options]
//   ... --data subset --preset tiny16 --full 4,8 --steps 2 --view-steps 2 --baseline-steps 2 --samples 8 --sample-steps 2 --lambdas 0,1
//
// Writes DIR/results.json and a sample grid per model (DIR/*.png).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { unetCost } from '../lib/cost.ts';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { gridToPng, writePng } from '../lib/data/png.ts';
import { defaultDevice } from '../lib/device.ts';
import { synchronize } from '../lib/memory.ts';
import { fdFmnist } from '../lib/metrics/fd-fmnist.ts';
import { Generator } from '../lib/random.ts';
import { sample, unetDenoiser, type Denoiser } from '../lib/sample.ts';
import { NoiseSchedule } from '../lib/schedule.ts';
import { randn } from '../lib/tensor.ts';
import { train } from '../lib/train.ts';
import { presets, resizedConfig, UNet, type UNetConfig } from '../lib/unet.ts';
import { bootstrapDenoiser } from '../lib/bootstrap/denoiser.ts';
import { loadBootstrap, parseViews, trainBootstrap } from '../lib/bootstrap/run.ts';
import { patchCount } from '../lib/bootstrap/views.ts';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'debian' },
    views: { type: 'string', default: 'lowres:4,patch:16' },
    full: { type: 'string', default: '16,64,256,1024' },
    preset: { type: 'string', default: 'fmnist32' },
    steps: { type: 'string', default: '20000' },
    'view-steps': { type: 'string', default: '40000' },
    'baseline-steps': { type: 'string' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '2e-4' },
    lambda: { type: 'string', default: '0.1' },
    residual: { type: 'string', default: 'unconditioned' },
    lambdas: { type: 'string', default: '0,0.01,0.1,1,10' },
    'sweep-n': { type: 'string' },
    samples: { type: 'string', default: '2000' },
    'sample-steps': { type: 'string', default: '50' },
    device: { type: 'string' },
    out: { type: 'string', default: 'bootstrap-experiment' },
  },
});
const device = a.device ?? defaultDevice();
const out = a.out!;
mkdirSync(out, { recursive: true });
const fulls = a.full!.split(',').map(Number);
const lambdas = a.lambdas!.split(',').map(Number);
const sweepN = Number(a['sweep-n'] ?? fulls[Math.min(1, fulls.length - 1)]);
const steps = Number(a.steps);
const viewSteps = Number(a['view-steps']);
const baselineSteps = Number(a['baseline-steps'] ?? a.steps);
const batchSize = Number(a.batch);
const nSamples = Number(a.samples);
const sampleSteps = Number(a['sample-steps']);
const config: UNetConfig =
  presets[a.preset as keyof typeof presets] ??
  (() => {
    throw new Error(`--preset: expected tiny16, fmnist32 or cifar32, got ${a.preset}`);
  })();
const views = parseViews(a.views!);
const residual = a.residual as 'unconditioned' | 'conditioned';
if (residual !== 'unconditioned' && residual !== 'conditioned')
  throw new Error(`--residual: expected unconditioned or conditioned, got ${a.residual}`);
const schedule = new NoiseSchedule({ kind: 'linear' });
const optimizer = { lr: Number(a.lr), warmupSteps: 200, maxGradNorm: 1 };

const data = await loadFashionMnist({ source: a.data! });
const reference = a.data === 'subset' ? data : await loadFashionMnist({ source: a.data!, split: 'test' });
const [N, C, H, W] = data.shape;
const refBatch = { data: reference.images, shape: [...reference.shape] };
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  device,
  args: a,
  data: { train: N, reference: reference.shape[0] },
  runs: [] as unknown[],
};
const runs = results.runs as Record<string, unknown>[];
const save = () => writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

/** nSamples from `d` (x0-prediction), FD-FMNIST against the reference, a grid of the first 64. */
async function evaluate(name: string, d: Denoiser, prediction: 'x0' | 'eps' | 'v'): Promise<number> {
  const chunk = Math.min(nSamples, 500);
  const images = new Float32Array(nSamples * C * H * W);
  for (let s = 0; s < nSamples; s += chunk) {
    const m = Math.min(chunk, nSamples - s);
    const x = await sample(d, {
      schedule,
      prediction,
      shape: [m, C, H, W],
      device,
      method: 'ddim',
      steps: sampleSteps,
      clip: [-1, 1],
      generator: new Generator(1000 + s),
    });
    images.set(await x.toArray(), s * C * H * W);
    x.dispose();
  }
  const g = Math.min(64, nSamples);
  await writePng(join(out, `${name}.png`), gridToPng(images.subarray(0, g * C * H * W), [g, C, H, W]));
  return fdFmnist({ data: images, shape: [nSamples, C, H, W] }, refBatch, { device });
}

// Views once (with the first N), then f0 for every N reusing them.
let viewsManifest: string | undefined;
for (const full of fulls) {
  const dir = join(out, `n${full}`);
  mkdirSync(dir, { recursive: true });
  log(`N = ${full}: ${viewsManifest ? 'residual' : 'views and residual'}`);
  const run = await trainBootstrap({
    data,
    full,
    views,
    residual,
    config,
    steps,
    viewSteps,
    batchSize,
    optimizer,
    lambda: Number(a.lambda),
    device,
    outDir: dir,
    viewsFrom: viewsManifest,
    seed: 0,
    onProgress: (stage, p) => p.step === p.steps && log(`  ${stage}: loss ${p.loss.toFixed(4)}, ${p.imagesPerSecond.toFixed(0)} img/s`),
  });
  viewsManifest ??= run.path;
  const boot = await loadBootstrap(run.path, { device });
  const fdBoot = await evaluate(`bootstrap-n${full}`, boot.denoiser, 'x0');
  const fdAgg = runs.length === 0 ? await evaluate('aggregate-only', bootstrapDenoiser(boot.views), 'x0') : undefined;
  boot.dispose();
  // The same UNet on the N full images alone.
  const plain = new UNet(resizedConfig(config, H, C, C), { device, seed: 7 });
  const r = await train({
    model: plain,
    data: { images: data.images.subarray(0, full * C * H * W), shape: [full, C, H, W] },
    steps: baselineSteps,
    batchSize,
    optimizer,
    schedule,
    prediction: 'v',
    seed: 0,
  });
  const fdPlain = await evaluate(`plain-n${full}`, unetDenoiser(plain, r.ema?.params), 'v');
  plain.dispose();
  runs.push({ full, lambda: Number(a.lambda), fdBootstrap: fdBoot, fdPlain, ...(fdAgg !== undefined ? { fdAggregateOnly: fdAgg } : {}) });
  log(
    `N = ${full}: FD bootstrap ${fdBoot.toFixed(2)}, plain ${fdPlain.toFixed(2)}${fdAgg !== undefined ? `, x̂_agg alone ${fdAgg.toFixed(2)}` : ''}`,
  );
  save();
}

// λ sweep at one N.
results.lambdaSweep = [];
for (const lambda of lambdas) {
  const dir = join(out, `n${sweepN}-lambda${lambda}`);
  mkdirSync(dir, { recursive: true });
  const run = await trainBootstrap({
    data,
    full: sweepN,
    views,
    residual,
    config,
    steps,
    batchSize,
    optimizer,
    lambda,
    device,
    outDir: dir,
    viewsFrom: viewsManifest,
    seed: 0,
  });
  const boot = await loadBootstrap(run.path, { device });
  const fd = await evaluate(`bootstrap-n${sweepN}-lambda${lambda}`, boot.denoiser, 'x0');
  boot.dispose();
  (results.lambdaSweep as unknown[]).push({ full: sweepN, lambda, fd });
  log(`λ = ${lambda} (N = ${sweepN}): FD ${fd.toFixed(2)}`);
  save();
}

// Cost of one evaluation: counted forward FLOPs, and the time of one batch on this device.
{
  const J = views.patch ? patchCount(H, W, views.patch.size, views.patch.stride) : 0;
  const flops = (cfg: UNetConfig, batch: number) => unetCost(cfg, batch).forward.total;
  const plainF = flops(resizedConfig(config, H, C, C), 1);
  const bootF =
    (views.lowres ? flops(resizedConfig(config, H / views.lowres.factor, C, C), 1) : 0) +
    (views.patch ? flops(resizedConfig(config, views.patch.size, views.patch.positions ? C + 2 : C, C), J) : 0) +
    flops(resizedConfig(config, H, residual === 'conditioned' ? 2 * C : C, C), 1);
  const boot = await loadBootstrap(viewsManifest!, { device });
  const plain = new UNet(resizedConfig(config, H, C, C), { device, seed: 1 });
  const time = async (d: Denoiser) => {
    const x = randn([batchSize, C, H, W], { generator: new Generator(5), device });
    const t = new Float32Array(batchSize).fill(500);
    for (let i = 0; i < 2; i++) d(x, t).dispose();
    await synchronize(device);
    const t0 = performance.now();
    const reps = 5;
    for (let i = 0; i < reps; i++) d(x, t).dispose();
    await synchronize(device);
    x.dispose();
    return (performance.now() - t0) / reps;
  };
  const msBoot = await time(boot.denoiser);
  const msPlain = await time(unetDenoiser(plain));
  results.cost = {
    batch: batchSize,
    flopsPlain: plainF,
    flopsBootstrap: bootF,
    flopRatio: bootF / plainF,
    msPlain,
    msBootstrap: msBoot,
    timeRatio: msBoot / msPlain,
  };
  log(
    `cost: ${(bootF / plainF).toFixed(2)}x the FLOPs, ${(msBoot / msPlain).toFixed(2)}x the time of one plain UNet evaluation (batch ${batchSize})`,
  );
  boot.dispose();
  plain.dispose();
  save();
}
log(`wrote ${join(out, 'results.json')}`);
