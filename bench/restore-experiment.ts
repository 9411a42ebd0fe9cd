// Restoring held-out Fashion-MNIST images with a trained prior (docs/restore.md, issue #14), and the
// moment-error table of the samplers on an exact Gaussian prior.
//
//   node --import ./test/support/register-ts.mjs bench/restore-experiment.ts --out DIR [options]
//     1. trains (or reuses DIR/clean.safetensors) a prior on clean images, and (DIR/gsure-mask.safetensors)
//        a GSURE prior on patch-masked measurements of the same images;
//     2. corrupts --n held-out images (not in the training set) by patch masks (p = 0.4, σ0 = 0.02) and by
//        block averaging by 2 (σ0 = 0.02), restores each with DDRM, DPS, ΠGDM and MMPS, K samples per image;
//     3. reports PSNR and SSIM of the posterior mean, the ±2σ coverage (the fraction of clean pixels within
//        mean ± 2 std of the K samples) and seconds per image, in DIR/results.{json,md}, with grids.
//   CPU-sized default: images pooled to 16x16 (--pool 2, patches of 2 instead of 4), the tiny16 UNet,
//   1500 training steps, 32 held-out images, K = 4, 25 sampler steps (DPS 50). GPU-sized: --pool 1
//   --preset fmnist32 --steps 20000 --n 256 --samples 16 --sampler-steps 100 --dps-steps 1000.
//
//   ... bench/restore-experiment.ts --moments [--out FILE.md]: the moment errors of every method against
//   the closed-form posterior of a Gaussian prior (d = 16) as a function of the steps (docs/restore.md).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadUNet, readCheckpoint } from '../lib/checkpoint.ts';
import { corruptDataset, type MeasurementSet } from '../lib/corruption/dataset.ts';
import { MaskOperator } from '../lib/corruption/mask.ts';
import type { Degradation } from '../lib/corruption/operator.ts';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { gridToPng, writePng } from '../lib/data/png.ts';
import { defaultDevice } from '../lib/device.ts';
import { psnr } from '../lib/metrics/psnr.ts';
import { ssim } from '../lib/metrics/ssim.ts';
import { lowresDataset } from '../lib/bootstrap/data.ts';
import { gsureSchedule, svdStatistics, trainGsure } from '../lib/gsure/train.ts';
import { NoiseSchedule, type Prediction } from '../lib/schedule.ts';
import { tensor } from '../lib/tensor.ts';
import { train } from '../lib/train.ts';
import { presets, resizedConfig, UNet } from '../lib/unet.ts';
import { unetPrior } from '../lib/restore/denoiser.ts';
import { denseOperator, gaussianDenoiser, gaussianPosterior, type DenseGaussian } from '../lib/restore/gaussian.ts';
import { restore } from '../lib/restore/restore.ts';
import { RESTORE_METHODS, type RestoreMethod } from '../lib/restore/samplers.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'restore-experiment' }, device: { type: 'string' }, pool: { type: 'string', default: '2' },
    preset: { type: 'string', default: 'tiny16' }, steps: { type: 'string', default: '1500' }, 'gsure-steps': { type: 'string' },
    batch: { type: 'string', default: '16' }, n: { type: 'string', default: '32' }, samples: { type: 'string', default: '4' },
    'sampler-steps': { type: 'string', default: '25' }, 'dps-steps': { type: 'string', default: '50' }, cg: { type: 'string', default: '1' },
    methods: { type: 'string', default: RESTORE_METHODS.join(',') }, priors: { type: 'string', default: 'clean,gsure' }, 'train-only': { type: 'boolean' }, moments: { type: 'boolean' },
  },
});
const log = (...m: unknown[]) => console.error(`[restore-experiment ${new Date().toISOString().slice(11, 19)}]`, ...m);

if (a.moments) await momentTable(a.out!);
else await experiment();

async function experiment(): Promise<void> {
  const out = a.out!;
  mkdirSync(out, { recursive: true });
  const device = a.device ?? defaultDevice();
  const pool = Number(a.pool);
  const full = await loadFashionMnist({ source: 'subset' });
  const data = pool > 1 ? await lowresDataset({ images: full.images, shape: full.shape }, pool) : { images: full.images, shape: full.shape };
  const [N, C, H, W] = data.shape as [number, number, number, number];
  const per = C * H * W;
  const nTest = Number(a.n);
  // The subset has no test split: the last nTest images are held out of both trainings.
  const nTrain = N - nTest;
  const trainImages = data.images.subarray(0, nTrain * per);
  const testImages = data.images.slice(nTrain * per);
  const base = presets[a.preset as keyof typeof presets];
  if (!base) throw new Error(`--preset: expected tiny16, fmnist32 or cifar32, got ${a.preset}`);
  const config = resizedConfig(base, H, C, C);
  const steps = Number(a.steps);
  const patch = 4 / pool;
  const maskSpec = { kind: 'mask' as const, patch, p: 0.4 };
  const sigma0 = 0.02;

  const common = (model: UNet, path: string) => ({
    model, steps, batchSize: Number(a.batch), optimizer: { lr: 1e-3, warmupSteps: 100, maxGradNorm: 1 }, emaDecay: 0.99, seed: 0,
    checkpoint: { path, every: 250 }, resume: existsSync(path) ? path : undefined, progressEvery: 100,
    onProgress: (p: { step: number; steps: number; loss: number }) => log(`${path}: step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`),
  });
  const cleanPath = join(out, 'clean.safetensors');
  const gsurePath = join(out, 'gsure-mask.safetensors');
  const t0 = performance.now();
  if (!(await finished(cleanPath, steps))) {
    log(`training the clean prior: ${nTrain} images ${H}x${W}, ${JSON.stringify(config)}, ${steps} steps`);
    using model = new UNet(config, { device, seed: 0n });
    await train({ ...common(model, cleanPath), data: { images: trainImages, shape: [nTrain, C, H, W] }, prediction: 'eps', schedule: new NoiseSchedule({ kind: 'linear' }) });
  }
  const trainSeconds = { clean: (performance.now() - t0) / 1000, gsure: 0 };
  const gsureSteps = Number(a['gsure-steps'] ?? steps);
  const t1 = performance.now();
  // --gsure-steps 0: no GSURE prior (the run restores with the clean prior only).
  if (gsureSteps > 0 && !(await finished(gsurePath, gsureSteps))) {
    const set = await corruptDataset(trainImages, [nTrain, C, H, W], { corruption: maskSpec, sigma0, seed: 1, device: 'cpu' });
    log(`training the GSURE prior on ${nTrain} masked measurements, ${gsureSteps} steps`);
    using model = new UNet(config, { device, seed: 0n });
    await trainGsure({ ...common(model, gsurePath), steps: gsureSteps, measurements: set, schedule: gsureSchedule((await svdStatistics(set)).vMax), seed: 0 });
  }
  trainSeconds.gsure = (performance.now() - t1) / 1000;
  if (a['train-only']) return;

  const K = Number(a.samples);
  const methods = a.methods!.split(',') as RestoreMethod[];
  const testShape = [nTest, C, H, W];
  const tasks: { name: string; set: MeasurementSet; priors: string[] }[] = [
    { name: `mask patch ${patch} p 0.4`, set: await corruptDataset(testImages, testShape, { corruption: maskSpec, sigma0, seed: 2, device: 'cpu' }), priors: gsureSteps > 0 ? ['clean', 'gsure'] : ['clean'] },
    { name: 'block average k 2', set: await corruptDataset(testImages, testShape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0, seed: 2, device: 'cpu' }), priors: ['clean'] },
  ];
  const rows: Record<string, unknown>[] = [];
  const wanted = a.priors!.split(',');
  for (const task of tasks) task.priors = task.priors.filter((p) => wanted.includes(p));
  for (const task of tasks.filter((t) => t.priors.length > 0)) {
    const { op, y } = task.set.batch(Array.from({ length: nTest }, (_, i) => i), { device });
    const yHost = await y.toArray();
    y.dispose();
    const grid: Float32Array[] = [testImages, await pinvOf(op, yHost)];
    // The baseline: the pseudo-inverse of y (dropped pixels 0, block means upsampled).
    const pinvBatch = { data: grid[1]!, shape: testShape }, cleanBatch = { data: testImages, shape: testShape };
    rows.push({ task: task.name, prior: '-', method: 'pseudo-inverse', steps: 0, samples: 1, psnr: (await psnr(pinvBatch, cleanBatch)).mean, ssim: (await ssim(pinvBatch, cleanBatch)).mean, coverage: NaN, secondsPerImage: 0 });
    for (const priorName of task.priors) {
      const path = priorName === 'clean' ? cleanPath : gsurePath;
      const ck = await readCheckpoint(path);
      using net = await loadUNet(path, { device, useEma: ck.ema !== undefined });
      const den = unetPrior(net, new NoiseSchedule((ck.schedule as { kind: 'linear' }) ?? { kind: 'linear' }), ck.prediction as Prediction);
      for (const method of methods) {
        const st = method === 'dps' ? Number(a['dps-steps']) : Number(a['sampler-steps']);
        const started = performance.now();
        const r = await restore(den, op, yHost, { method, sigma0, samples: K, steps: st, cgIterations: Number(a.cg), clip: [-1, 1], seed: 3, batchSize: 64 });
        const seconds = (performance.now() - started) / 1000;
        const batch = { data: r.mean, shape: testShape };
        const clean = { data: testImages, shape: testShape };
        let inside = 0;
        for (let i = 0; i < testImages.length; i++) if (Math.abs(testImages[i]! - r.mean[i]!) <= 2 * r.std[i]!) inside++;
        const row = {
          task: task.name, prior: priorName, method, steps: st, samples: K,
          psnr: (await psnr(batch, clean)).mean, ssim: (await ssim(batch, clean)).mean,
          coverage: inside / testImages.length, secondsPerImage: seconds / nTest,
        };
        log(JSON.stringify(row));
        rows.push(row);
        grid.push(r.mean);
        if (method === methods[methods.length - 1]) grid.push(r.std.map((s) => Math.min(1, 4 * s) * 2 - 1));
      }
    }
    op.dispose();
    // Columns: clean | pseudo-inverse of y | each prior's methods' means | the last method's std (x4).
    const show = Math.min(nTest, 8);
    const cols = grid.length;
    const tiles = new Float32Array(show * cols * per);
    for (let i = 0; i < show; i++) for (let c = 0; c < cols; c++) tiles.set(grid[c]!.subarray(i * per, (i + 1) * per), (i * cols + c) * per);
    await writePng(join(out, `${task.name.split(' ')[0]}.png`), gridToPng(tiles, [show * cols, C, H, W], { columns: cols }));
  }
  const info = { date: new Date().toISOString(), device, pool, preset: a.preset, config, trainImages: nTrain, trainSteps: steps, gsureSteps, trainSeconds, heldOut: nTest, samples: K, cg: Number(a.cg) };
  writeFileSync(join(out, 'results.json'), JSON.stringify({ info, rows }, null, 2) + '\n');
  const md = [
    `| task | prior | method | steps | PSNR (dB) | SSIM | ±2σ coverage | s / image |`,
    `|---|---|---|---|---|---|---|---|`,
    ...rows.map((r) => `| ${r.task} | ${r.prior} | ${r.method} | ${r.steps} | ${(r.psnr as number).toFixed(2)} | ${(r.ssim as number).toFixed(3)} | ${(r.coverage as number).toFixed(3)} | ${(r.secondsPerImage as number).toFixed(2)} |`),
  ].join('\n');
  writeFileSync(join(out, 'results.md'), `${JSON.stringify(info)}\n\n${md}\n`);
  console.log(md);
}

/** True when the checkpoint at `path` has reached `steps`. */
async function finished(path: string, steps: number): Promise<boolean> {
  if (!existsSync(path)) return false;
  return (await readCheckpoint(path)).step >= steps;
}

async function pinvOf(op: Degradation, y: Float32Array): Promise<Float32Array> {
  const yt = tensor(y, [op.batchSize, ...op.measurementShape], { device: op.device });
  const x = op.pinv(yt);
  const v = await x.toArray();
  yt.dispose();
  x.dispose();
  return v;
}

/**
 * Every method on the exact Gaussian prior of test/restore (d = 16, 4x4, correlated pixels): the largest
 * error of the sample mean over coordinates in posterior standard deviations, and the mean relative
 * error of the per-coordinate variances, against the closed-form posterior, for a pixel mask with
 * σ0 = 0.1 and 1000 samples (Monte-Carlo standard error: 0.032 sd on the mean, 4.5 % on a variance).
 */
async function momentTable(outFile: string): Promise<void> {
  const D = 16, SHAPE = [1, 4, 4];
  const mean = new Float64Array(D), cov = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    mean[i] = (0.2 * ((i % 4) - 1.5)) / 1.5;
    for (let j = 0; j < D; j++) cov[i * D + j] = 0.25 * Math.exp(-Math.hypot((i % 4) - (j % 4), Math.floor(i / 4) - Math.floor(j / 4)) / 1.5) + (i === j ? 0.01 : 0);
  }
  const prior: DenseGaussian = { mean, cov };
  const schedule = new NoiseSchedule({ kind: 'linear' });
  const sigma0 = 0.1, K = 1000;
  const op = new MaskOperator(Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0]), [1, 1, 4, 4], SHAPE, { device: 'cpu' });
  const { matrix, rows } = await denseOperator(op);
  const y = new Float32Array(D);
  for (const r of rows) y[r] = Math.sin(r) + sigma0 * Math.cos(3 * r);
  const post = gaussianPosterior(prior, matrix, rows.map((r) => y[r]!), sigma0);
  const lines = ['| method | steps | max mean error (posterior sd) | mean variance error | max variance error | seconds |', '|---|---|---|---|---|---|'];
  for (const method of RESTORE_METHODS)
    for (const steps of [20, 100, 1000]) {
      const t0 = performance.now();
      const r = await restore(gaussianDenoiser(prior, schedule, SHAPE), op, y, { method, sigma0, steps, samples: K, batchSize: K, seed: 1, cgIterations: 5 });
      const m = new Float64Array(D), v = new Float64Array(D);
      for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) m[j]! += r.samples[k * D + j]! / K;
      for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) v[j]! += (r.samples[k * D + j]! - m[j]!) ** 2 / (K - 1);
      let em = 0, ev = 0, evMax = 0;
      for (let j = 0; j < D; j++) {
        const pv = post.cov[j * D + j]!;
        em = Math.max(em, Math.abs(m[j]! - post.mean[j]!) / Math.sqrt(pv));
        ev += (v[j]! / pv - 1) / D;
        evMax = Math.max(evMax, Math.abs(v[j]! / pv - 1));
      }
      const line = `| ${method} | ${steps} | ${em.toFixed(3)} | ${(100 * ev).toFixed(1)} % | ${(100 * evMax).toFixed(1)} % | ${((performance.now() - t0) / 1000).toFixed(1)} |`;
      log(line);
      lines.push(line);
    }
  const text = lines.join('\n') + '\n';
  if (outFile.endsWith('.md')) writeFileSync(outFile, text);
  console.log(text);
}
