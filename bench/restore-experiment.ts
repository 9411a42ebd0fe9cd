// Restoring held-out Fashion-MNIST images with a trained prior (docs/restore.md, issue #14), and the
// moment-error table of the samplers on an exact Gaussian prior.
//
//   node --import ./test/support/register-ts.mjs bench/restore-experiment.ts --out DIR --work WORK [options]
//   The test images are the first --n of Fashion-MNIST's test split (--data debian: Debian's
//   dataset-fashion-mnist) and never take part in any training; the priors learn from the 2,000 training
//   images shipped in lib/assets (with --data subset, the test images are the last --n of those instead).
//   Images are average-pooled to 16x16 (--pool 2), so the 4x4 patches become 2x2 patches (the same
//   share of the image). Two measurements of each test image: patches dropped at p = 0.4 and block
//   averaging by 2, both with σ0 = 0.02. Each is restored with DDRM, DPS, ΠGDM and MMPS, K samples per
//   image, with (a) the clean prior (--clean-prior, or trained here into WORK/clean.safetensors on clean
//   images for --steps) and (b) a GSURE prior (--gsure-prior; default the shipped demo prior, GSURE-trained
//   on pixel masks p = 0.4, σ0 = 0.05: block averaging by one operator has never-observed SVD coordinates
//   that GSURE cannot learn from); the masks also with DiffEM's conditional sampler, trained here by
//   DiffEM on --diffem-n patch-masked training images (WORK/diffem).
//   Each configuration (task, prior, method) saves WORK/parts/KEY.{json,npy} as it finishes and is
//   skipped when they exist, so a cut-off run resumes; --select REGEX runs only the matching keys (two
//   processes can share the work), --report assembles DIR/results.{json,md} and DIR/{mask,block}.png.
//   CPU-sized defaults (the 2026-12-06 run, with --clean-prior): 256 images at 16x16, K = 2, 10 steps for
//   every method, 1 CG iteration. GPU-sized: --pool 1 --preset fmnist32 --steps 20000 --samples 16
//   --sampler-steps 100 --dps-steps 1000 (and a GSURE prior trained on the patch masks, --gsure-prior).
//   Per configuration: PSNR and SSIM of the posterior mean (the mean of the K samples), the ±2σ coverage
//   (the share of clean pixels within mean ± 2 std; lib/restore/coverage.ts gives the mark exact
//   samples reach with K), and CPU and wall seconds per image of the sampling alone.
//
//   ... bench/restore-experiment.ts --moments [--out FILE.md]: the moment errors of every method against
//   the closed-form posterior of a Gaussian prior (d = 16) as a function of the steps (docs/restore.md).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadUNet, readCheckpoint } from '../lib/checkpoint.ts';
import { corruptDataset, type MeasurementSet } from '../lib/corruption/dataset.ts';
import { MaskOperator } from '../lib/corruption/mask.ts';
import type { Degradation } from '../lib/corruption/operator.ts';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { readNpy, writeNpy } from '../lib/data/npy.ts';
import { gridToPng, writePng } from '../lib/data/png.ts';
import { defaultDevice } from '../lib/device.ts';
import { psnr } from '../lib/metrics/psnr.ts';
import { ssim } from '../lib/metrics/ssim.ts';
import { lowresDataset } from '../lib/bootstrap/data.ts';
import { conditionalSample, trainConditional } from '../lib/diffem/conditional.ts';
import { corruptWithMasks, diffem, lastReconstructions, observationsOf } from '../lib/diffem/em.ts';
import { expandMask, fitGaussianPrior, posteriorSample } from '../lib/diffem/gaussian-prior.ts';
import { NoiseSchedule, type Prediction } from '../lib/schedule.ts';
import { tensor } from '../lib/tensor.ts';
import { train } from '../lib/train.ts';
import { presets, resizedConfig, UNet } from '../lib/unet.ts';
import { bandCoverage, gaussianCoverageMark } from '../lib/restore/coverage.ts';
import { unetPrior } from '../lib/restore/denoiser.ts';
import { denseOperator, gaussianDenoiser, gaussianPosterior, type DenseGaussian } from '../lib/restore/gaussian.ts';
import { momentsOf, restore } from '../lib/restore/restore.ts';
import { RESTORE_METHODS, type RestoreMethod } from '../lib/restore/samplers.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'restore-experiment' },
    work: { type: 'string' },
    device: { type: 'string' },
    data: { type: 'string', default: 'debian' },
    pool: { type: 'string', default: '2' },
    n: { type: 'string', default: '256' },
    preset: { type: 'string', default: 'tiny16' },
    steps: { type: 'string', default: '500' },
    batch: { type: 'string', default: '16' },
    'clean-prior': { type: 'string' },
    // The 16x16 demo prior (shipped in lib/assets/ until 2026-12-06; the demo now ships a 32x32 one).
    'gsure-prior': { type: 'string', default: 'test/fixtures/demo/demo-prior-16.safetensors' },
    samples: { type: 'string', default: '2' },
    'sampler-steps': { type: 'string', default: '10' },
    'dps-steps': { type: 'string' },
    cg: { type: 'string', default: '1' },
    methods: { type: 'string', default: RESTORE_METHODS.join(',') },
    priors: { type: 'string', default: 'clean,gsure' },
    'diffem-n': { type: 'string', default: '512' },
    'diffem-rounds': { type: 'string', default: '1' },
    'diffem-steps': { type: 'string', default: '400' },
    'diffem-rank': { type: 'string', default: '8' },
    'diffem-sampler': { type: 'string', default: 'heun' },
    'diffem-sample-steps': { type: 'string', default: '10' },
    'no-diffem': { type: 'boolean' },
    chunks: { type: 'string', default: '1' },
    select: { type: 'string' },
    report: { type: 'boolean' },
    moments: { type: 'boolean' },
  },
});
const log = (...m: unknown[]) => console.error(`[restore-experiment ${new Date().toISOString().slice(11, 19)}]`, ...m);

const SIGMA0 = 0.02;
const SHOW = 8; // images per grid

interface Setup {
  device: string;
  shape: [number, number, number, number]; // of the test set
  per: number;
  testImages: Float32Array;
  trainImages: Float32Array;
  nTrain: number;
  patch: number;
  testSource: string;
  sets: Record<'mask' | 'block', MeasurementSet>;
}

async function setup(): Promise<Setup> {
  const device = a.device ?? defaultDevice();
  const pool = Number(a.pool),
    nTest = Number(a.n);
  const shipped = await loadFashionMnist({ source: 'subset' });
  let trainRaw = shipped.images,
    testRaw: Float32Array,
    testSource: string;
  const [, C, H0, W0] = shipped.shape;
  const per0 = C * H0 * W0;
  if (a.data === 'subset') {
    // No test split: the last nTest shipped images are held out of every training.
    const nTrain = shipped.shape[0] - nTest;
    trainRaw = shipped.images.subarray(0, nTrain * per0);
    testRaw = shipped.images.slice(nTrain * per0);
    testSource = `the last ${nTest} of ${shipped.file}`;
  } else {
    const t = await loadFashionMnist({ source: a.data, split: 'test', limit: nTest });
    if (t.shape[0] !== nTest) throw new RangeError(`--n: the test split of ${t.file} holds ${t.shape[0]} images, fewer than ${nTest}`);
    testRaw = t.images;
    testSource = `the first ${nTest} of ${t.file}`;
  }
  const nTrain = trainRaw.length / per0;
  const down = async (x: Float32Array, n: number) =>
    pool > 1 ? (await lowresDataset({ images: x, shape: [n, C, H0, W0] }, pool)).images : x;
  const trainImages = await down(trainRaw, nTrain),
    testImages = await down(testRaw, nTest);
  const H = H0 / pool,
    W = W0 / pool;
  const shape: [number, number, number, number] = [nTest, C, H, W];
  const patch = 4 / pool;
  const sets = {
    mask: await corruptDataset(testImages, shape, { corruption: { kind: 'mask', patch, p: 0.4 }, sigma0: SIGMA0, seed: 2, device: 'cpu' }),
    block: await corruptDataset(testImages, shape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0: SIGMA0, seed: 2, device: 'cpu' }),
  };
  return { device, shape, per: C * H * W, testImages, trainImages, nTrain, patch, testSource, sets };
}

/** Every configuration, in the order they run (and the table lists them). */
function configKeys(): string[] {
  const methods = a.methods!.split(',') as RestoreMethod[];
  for (const m of methods)
    if (!RESTORE_METHODS.includes(m)) throw new RangeError(`--methods: expected some of ${RESTORE_METHODS.join(',')}, got ${m}`);
  const priors = a.priors!.split(',');
  const keys: string[] = [];
  for (const task of ['mask', 'block']) {
    for (const prior of priors) for (const m of methods) keys.push(`${task}-${prior}-${m}`);
    if (task === 'mask' && !a['no-diffem']) keys.push('mask-diffem-conditional');
  }
  return keys;
}

const partsDir = () => join(work(), 'parts');
function work(): string {
  return a.work ?? join(a.out!, 'work');
}

/** CPU seconds of this process (all its threads). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function experiment(): Promise<void> {
  mkdirSync(partsDir(), { recursive: true });
  const s = await setup();
  const [N, C, H, W] = s.shape;
  const K = Number(a.samples);
  const select = a.select ? new RegExp(a.select) : undefined;
  // DiffEM first: its training is the longest single piece, and other processes can restore meanwhile.
  const keys = configKeys();
  const todo = [...keys.filter((k) => k.includes('-diffem-')), ...keys.filter((k) => !k.includes('-diffem-'))].filter(
    (k) => (!select || select.test(k)) && !existsSync(join(partsDir(), `${k}.json`)),
  );
  log(`${N} test images ${H}x${W} (${s.testSource}); ${s.nTrain} training images; to run: ${todo.join(' ') || 'nothing'}`);
  const priors = new Map<string, { path: string; net: UNet; prediction: Prediction; schedule: NoiseSchedule }>();
  const priorOf = async (name: string) => {
    if (!priors.has(name)) {
      const path = name === 'clean' ? await cleanPrior(s) : name === 'gsure' ? a['gsure-prior']! : name;
      const ck = await readCheckpoint(path);
      const net = await loadUNet(path, { device: s.device, useEma: ck.ema !== undefined });
      priors.set(name, {
        path,
        net,
        prediction: ck.prediction as Prediction,
        schedule: new NoiseSchedule((ck.schedule as { kind: 'linear' }) ?? { kind: 'linear' }),
      });
    }
    return priors.get(name)!;
  };
  // --chunks S: a prior's configuration is restored in S slices of the images (units KEY#c, each its own
  // claim, seed 3 + 1000 c), so that several processes share one configuration; the process that
  // finishes the last slice merges them into KEY.json.
  const S = Number(a.chunks);
  const units = todo.flatMap((k) => (S > 1 && !k.includes('-diffem-') ? Array.from({ length: S }, (_, c) => `${k}#${c}`) : [k]));
  for (const unit of units) {
    const [key, chunk] = unit.split('#') as [string, string | undefined];
    if (existsSync(join(partsDir(), `${key}.json`)) || existsSync(join(partsDir(), `${unit}.json`)) || !claim(unit)) continue;
    const [task, prior, method] = key.split('-') as ['mask' | 'block', string, string];
    const set = s.sets[task];
    const c0 = cpuSeconds(),
      w0 = performance.now(),
      load0 = loadavg()[0]!;
    let samples: Float32Array,
      steps: number,
      extra: Record<string, unknown> = {};
    const c = chunk === undefined ? 0 : Number(chunk);
    const lo = Math.floor((c * N) / S),
      hi = chunk === undefined ? N : Math.floor(((c + 1) * N) / S);
    const all = Array.from({ length: hi - lo }, (_, i) => lo + i);
    if (prior === 'diffem') {
      const { model, info } = await diffemModel(s);
      extra = info;
      const t0 = cpuSeconds(),
        tw = performance.now();
      steps = Number(a['diffem-sample-steps']);
      samples = await diffemRestore(model, set, K, steps);
      model.dispose();
      extra.cpuSeconds = cpuSeconds() - t0;
      extra.wallSeconds = (performance.now() - tw) / 1000;
    } else {
      const p = await priorOf(prior);
      const { op, y } = set.batch(all, { device: s.device });
      const yHost = await y.toArray();
      y.dispose();
      steps = method === 'dps' ? Number(a['dps-steps'] ?? a['sampler-steps']) : Number(a['sampler-steps']);
      let last = 0;
      const r = await restore(unetPrior(p.net, p.schedule, p.prediction), op, yHost, {
        method: method as RestoreMethod,
        sigma0: SIGMA0,
        samples: K,
        steps,
        cgIterations: Number(a.cg),
        clip: [-1, 1],
        seed: 3 + 1000 * c,
        batchSize: 64,
        onProgress: (done, total) => {
          if (done === total || performance.now() - last > 60_000) ((last = performance.now()), log(`${unit}: step ${done}/${total}`));
        },
      });
      op.dispose();
      samples = r.samples;
      extra = { cpuSeconds: cpuSeconds() - c0, wallSeconds: (performance.now() - w0) / 1000, priorFile: p.path };
    }
    if (chunk !== undefined) {
      await writeNpy(join(partsDir(), `${unit}.npy`), { shape: [hi - lo, K, C, H, W], data: samples });
      writeFileSync(join(partsDir(), `${unit}.json`), JSON.stringify({ unit, images: [lo, hi], steps, load0, ...extra }) + '\n');
      log(`${unit} done`);
      const slices = Array.from({ length: S }, (_, j) => join(partsDir(), `${key}#${j}`));
      if (!slices.every((f) => existsSync(`${f}.json`))) continue;
      // The last slice: merge (their CPU and wall seconds add up to what one process would have spent).
      samples = new Float32Array(N * K * s.per);
      const ex = { cpuSeconds: 0, wallSeconds: 0, chunks: S, priorFile: extra.priorFile };
      for (const f of slices) {
        const info = JSON.parse(readFileSync(`${f}.json`, 'utf8'));
        samples.set((await readNpy(`${f}.npy`)).data as Float32Array, info.images[0] * K * s.per);
        ex.cpuSeconds += info.cpuSeconds;
        ex.wallSeconds += info.wallSeconds;
      }
      extra = ex;
    }
    const { mean, std } = momentsOf(samples, N, K, s.per);
    const batch = { data: mean, shape: s.shape },
      clean = { data: s.testImages, shape: s.shape };
    const row = {
      key,
      task,
      prior,
      method,
      steps,
      samples: K,
      cg: method === 'mmps' ? Number(a.cg) : undefined,
      psnr: (await psnr(batch, clean)).mean,
      ssim: (await ssim(batch, clean)).mean,
      coverage: bandCoverage(s.testImages, mean, std),
      cpuSecondsPerImage: (extra.cpuSeconds as number) / N,
      wallSecondsPerImage: (extra.wallSeconds as number) / N,
      loadAverage: [load0, loadavg()[0]],
      finished: new Date().toISOString(),
      ...extra,
    };
    // The first SHOW means and standard deviations for the grids, then the row (its file marks the configuration done).
    const shown = new Float32Array(2 * SHOW * s.per);
    shown.set(mean.subarray(0, SHOW * s.per));
    shown.set(std.subarray(0, SHOW * s.per), SHOW * s.per);
    await writeNpy(join(partsDir(), `${key}.npy`), { shape: [2, SHOW, C, H, W], data: shown });
    writeFileSync(join(partsDir(), `${key}.json`), JSON.stringify(row, null, 2) + '\n');
    log(JSON.stringify(row));
  }
  for (const p of priors.values()) p.net.dispose();
}

/**
 * Takes configuration `key` for this process (WORK/parts/KEY.claim holds its pid), so that several
 * processes share one list; false when a live process holds it. A dead process's claim is taken over.
 */
function claim(key: string): boolean {
  const file = join(partsDir(), `${key}.claim`);
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const pid = Number(readFileSync(file, 'utf8'));
    try {
      process.kill(pid, 0);
      return pid === process.pid;
    } catch {
      writeFileSync(file, String(process.pid));
      return true;
    }
  }
}

/** The clean prior: --clean-prior, or trained here (eps-prediction, linear schedule) on the clean training images. */
async function cleanPrior(s: Setup): Promise<string> {
  if (a['clean-prior']) return a['clean-prior'];
  const path = join(work(), 'clean.safetensors');
  const steps = Number(a.steps);
  if (existsSync(path) && (await readCheckpoint(path)).step >= steps) return path;
  const [, C, H] = s.shape;
  const base = presets[a.preset as keyof typeof presets];
  if (!base) throw new Error(`--preset: expected tiny16, fmnist32 or cifar32, got ${a.preset}`);
  log(`training the clean prior on ${s.nTrain} images, ${steps} steps`);
  using model = new UNet(resizedConfig(base, H, C, C), { device: s.device, seed: 0n });
  await train({
    model,
    steps,
    batchSize: Number(a.batch),
    optimizer: { lr: 1e-3, warmupSteps: 100, maxGradNorm: 1 },
    emaDecay: 0.99,
    seed: 0,
    checkpoint: { path, every: 250 },
    resume: existsSync(path) ? path : undefined,
    progressEvery: 100,
    onProgress: (p) => log(`clean prior: step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`),
    data: { images: s.trainImages, shape: [s.nTrain, C, H, H] },
    prediction: 'eps',
    schedule: new NoiseSchedule({ kind: 'linear' }),
  });
  return path;
}

/**
 * DiffEM on --diffem-n patch-masked training images (the test images' corruption, fresh masks and noise):
 * round 0 from a fitted Gaussian prior, then --diffem-rounds rounds; resumed from WORK/diffem. Returns the
 * conditional model of the last round.
 */
async function diffemModel(s: Setup): Promise<{ model: UNet; info: Record<string, unknown> }> {
  const [, C, H, W] = s.shape;
  const n = Number(a['diffem-n']),
    rounds = Number(a['diffem-rounds']),
    steps = Number(a['diffem-steps']);
  if (n > s.nTrain) throw new RangeError(`--diffem-n: expected at most the ${s.nTrain} training images, got ${n}`);
  const corruption = { p: 0.4, patch: s.patch, sigma0: SIGMA0 };
  const obs = await corruptWithMasks(s.trainImages.subarray(0, n * s.per), [n, C, H, W], corruption, 1n);
  const c0 = cpuSeconds(),
    w0 = performance.now();
  const mask = expandMask(Uint8Array.from(obs.mask), n, C, H * W);
  const gp = await fitGaussianPrior(obs.y, mask, n, s.per, { rank: Number(a['diffem-rank']), iterations: 30, sigmaY: SIGMA0, seed: 1n });
  const initial = Float32Array.from(posteriorSample(gp, obs.y, mask, n, s.per, SIGMA0, 1n, 0n));
  const base = presets[a.preset as keyof typeof presets]!;
  const model = new UNet(resizedConfig(base, H, 2 * C + 1, C), { device: s.device, seed: 1n });
  const dir = join(work(), 'diffem');
  const optimizer = { lr: 1e-3, warmupSteps: Math.min(100, Math.floor(steps / 10)), maxGradNorm: 1 };
  const onProgress = (k: number, p: { step: number; steps: number; loss: number }) =>
    p.step % 50 === 0 && log(`diffem round ${k}: step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`);
  // Rounds 1 .. R−1 by the EM loop; round R's M-step as the loop runs it (same re-corruption seed, same
  // training seed and checkpoint), without its E-step: the reconstructions of the training set that it
  // would draw are not needed to restore the test images.
  let x: Float32Array = initial;
  if (rounds > 1) {
    await diffem({
      model,
      observations: obs,
      corruption,
      initial,
      rounds: rounds - 1,
      stepsPerRound: steps,
      batchSize: Number(a.batch),
      optimizer,
      sampler: { method: a['diffem-sampler'] as 'ancestral' | 'heun', steps: Number(a['diffem-sample-steps']) },
      seed: 1,
      dir,
      onProgress,
    });
    x = (await lastReconstructions(dir, [n, C, H, W])).x;
  }
  mkdirSync(dir, { recursive: true });
  const last = join(dir, `round-${rounds}.safetensors`);
  const wasDone = existsSync(last) && (await readCheckpoint(last)).step >= steps;
  const pairs = { ...(await corruptWithMasks(x, [n, C, H, W], corruption, (1n << 20n) + BigInt(rounds))), x };
  const trained = await trainConditional({
    model,
    data: pairs,
    steps,
    batchSize: Number(a.batch),
    optimizer,
    emaDecay: 0,
    seed: 1n + BigInt(rounds),
    checkpoint: { path: last, every: Math.max(1, Math.floor(steps / 4)) },
    resume: existsSync(last) ? last : undefined,
    onProgress: (p) => onProgress(rounds, p),
    progressEvery: Math.max(1, Math.floor(steps / 20)),
  });
  trained.optimizer.dispose();
  trained.ema?.dispose();
  const trainFile = join(dir, 'training-time.json');
  // The training cost as measured by the process that trained (a resumed run only reads it back).
  if (!wasDone)
    writeFileSync(
      trainFile,
      JSON.stringify({
        cpuSeconds: cpuSeconds() - c0,
        wallSeconds: (performance.now() - w0) / 1000,
        note: 'of the last process that trained',
      }) + '\n',
    );
  const timing = existsSync(trainFile) ? JSON.parse(readFileSync(trainFile, 'utf8')) : undefined;
  return {
    model,
    info: {
      diffem: {
        trainImages: n,
        rounds,
        stepsPerRound: steps,
        batch: Number(a.batch),
        lr: 1e-3,
        gaussianRank: Number(a['diffem-rank']),
        sampler: a['diffem-sampler'],
        config: model.config,
        training: timing,
      },
    },
  };
}

/** K samples per measurement of a mask set by DiffEM's conditional sampler (the observations repeated K times), clipped to [-1, 1]. */
async function diffemRestore(model: UNet, set: MeasurementSet, K: number, steps: number): Promise<Float32Array> {
  const obs = observationsOf(set);
  const [N, C, H, W] = obs.shape;
  const per = C * H * W,
    hw = H * W;
  const y = new Float32Array(N * K * per),
    mask = new Float32Array(N * K * hw);
  for (let i = 0; i < N; i++)
    for (let k = 0; k < K; k++) {
      y.set(obs.y.subarray(i * per, (i + 1) * per), (i * K + k) * per);
      mask.set(obs.mask.subarray(i * hw, (i + 1) * hw), (i * K + k) * hw);
    }
  const x = await conditionalSample(
    model,
    { shape: [N * K, C, H, W], y, mask },
    {
      method: a['diffem-sampler'] as 'ancestral' | 'heun',
      steps,
      batchSize: 64,
      seed: 3,
      onBatch: (done, total) => done % 256 === 0 && log(`diffem sampling: ${done}/${total}`),
    },
  );
  for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(-1, x[i]!));
  return x;
}

const TASK_NAMES = { mask: (patch: number) => `${patch}×${patch} patches dropped, p = 0.4`, block: () => 'block average by 2' };
const METHOD_NAMES: Record<string, string> = {
  ddrm: 'DDRM',
  dps: 'DPS',
  pigdm: 'ΠGDM',
  mmps: 'MMPS',
  conditional: 'conditional sampler',
  'pseudo-inverse': 'pseudo-inverse',
};

/** DIR/results.{json,md} and the grids from the finished configurations in WORK/parts. */
async function report(): Promise<void> {
  const s = await setup();
  const [N, C, H, W] = s.shape;
  const K = Number(a.samples);
  const done = new Set(
    existsSync(partsDir())
      ? readdirSync(partsDir())
          .filter((f) => f.endsWith('.json'))
          .map((f) => f.slice(0, -5))
      : [],
  );
  const keys = configKeys();
  const rows: Record<string, any>[] = [];
  mkdirSync(a.out!, { recursive: true });
  for (const task of ['mask', 'block'] as const) {
    const { op, y } = s.sets[task].batch(Array.from({ length: N }, (_, i) => i));
    const pinv = await pinvOf(op, await y.toArray());
    op.dispose();
    y.dispose();
    const b = { data: pinv, shape: s.shape },
      clean = { data: s.testImages, shape: s.shape };
    rows.push({
      key: `${task}-none-pseudo-inverse`,
      task,
      prior: '-',
      method: 'pseudo-inverse',
      steps: 0,
      samples: 1,
      psnr: (await psnr(b, clean)).mean,
      ssim: (await ssim(b, clean)).mean,
    });
    const cols: Float32Array[] = [s.testImages.subarray(0, SHOW * s.per), pinv.subarray(0, SHOW * s.per)];
    let stdCol: Float32Array | undefined;
    for (const key of keys.filter((k) => k.startsWith(`${task}-`))) {
      if (!done.has(key)) {
        const [, prior, method] = key.split('-');
        rows.push({ key, task, prior, method, missing: true });
        continue;
      }
      rows.push(JSON.parse(readFileSync(join(partsDir(), `${key}.json`), 'utf8')));
      const shown = (await readNpy(join(partsDir(), `${key}.npy`))).data as Float32Array;
      cols.push(shown.subarray(0, SHOW * s.per));
      if (key === `${task}-clean-mmps`) stdCol = shown.subarray(SHOW * s.per).map((v) => Math.min(1, 4 * v) * 2 - 1);
    }
    if (stdCol) cols.push(stdCol);
    const tiles = new Float32Array(SHOW * cols.length * s.per);
    for (let i = 0; i < SHOW; i++)
      for (let c = 0; c < cols.length; c++) tiles.set(cols[c]!.subarray(i * s.per, (i + 1) * s.per), (i * cols.length + c) * s.per);
    await writePng(join(a.out!, `${task}.png`), gridToPng(tiles, [SHOW * cols.length, C, H, W], { columns: cols.length }));
  }
  const priorInfo: Record<string, unknown> = {};
  for (const [name, path] of [
    ['clean', a['clean-prior'] ?? join(work(), 'clean.safetensors')],
    ['gsure', a['gsure-prior']!],
  ] as const)
    if (existsSync(path)) {
      const ck = await readCheckpoint(path);
      const { seconds, recipe, batch, steps, lr, emaDecay } = ck.metadata;
      priorInfo[name] = {
        file: path,
        step: ck.step,
        prediction: ck.prediction,
        schedule: ck.schedule,
        config: ck.config,
        recipe,
        batch,
        steps,
        lr,
        emaDecay,
        seconds,
      };
    }
  const info = {
    date: new Date().toISOString(),
    device: s.device,
    test: s.testSource,
    trainImages: s.nTrain,
    resolution: [H, W],
    sigma0: SIGMA0,
    patch: s.patch,
    samples: K,
    coverageMark: gaussianCoverageMark(K),
    samplerSteps: Number(a['sampler-steps']),
    dpsSteps: Number(a['dps-steps'] ?? a['sampler-steps']),
    cg: Number(a.cg),
    priors: priorInfo,
    clip: [-1, 1],
    seed: 3,
  };
  writeFileSync(join(a.out!, 'results.json'), JSON.stringify({ info, rows }, null, 2) + '\n');
  const f = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
  const md = [
    `| task | prior | method | steps | PSNR (dB) | SSIM | ±2σ coverage (mark ${info.coverageMark.toFixed(2)}) | CPU s / image | wall s / image |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      r.missing
        ? `| ${TASK_NAMES[r.task as 'mask'](s.patch)} | ${r.prior} | ${METHOD_NAMES[r.method] ?? r.method} | not run (time) | | | | | |`
        : `| ${TASK_NAMES[r.task as 'mask'](s.patch)} | ${r.prior} | ${METHOD_NAMES[r.method] ?? r.method} | ${r.steps || '–'} | ${f(r.psnr, 2)} | ${f(r.ssim, 3)} | ${f(r.coverage, 3)} | ${f(r.cpuSecondsPerImage, 3)} | ${f(r.wallSecondsPerImage, 3)} |`,
    ),
  ].join('\n');
  writeFileSync(join(a.out!, 'results.md'), `${JSON.stringify(info)}\n\n${md}\n`);
  console.log(md);
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
  const D = 16,
    SHAPE = [1, 4, 4];
  const mean = new Float64Array(D),
    cov = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    mean[i] = (0.2 * ((i % 4) - 1.5)) / 1.5;
    for (let j = 0; j < D; j++)
      cov[i * D + j] = 0.25 * Math.exp(-Math.hypot((i % 4) - (j % 4), Math.floor(i / 4) - Math.floor(j / 4)) / 1.5) + (i === j ? 0.01 : 0);
  }
  const prior: DenseGaussian = { mean, cov };
  const schedule = new NoiseSchedule({ kind: 'linear' });
  const sigma0 = 0.1,
    K = 1000;
  const op = new MaskOperator(Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0]), [1, 1, 4, 4], SHAPE, { device: 'cpu' });
  const { matrix, rows } = await denseOperator(op);
  const y = new Float32Array(D);
  for (const r of rows) y[r] = Math.sin(r) + sigma0 * Math.cos(3 * r);
  const post = gaussianPosterior(
    prior,
    matrix,
    rows.map((r) => y[r]!),
    sigma0,
  );
  const lines = [
    '| method | steps | max mean error (posterior sd) | mean variance error | max variance error | seconds |',
    '|---|---|---|---|---|---|',
  ];
  for (const method of RESTORE_METHODS)
    for (const steps of [20, 100, 1000]) {
      const t0 = performance.now();
      const r = await restore(gaussianDenoiser(prior, schedule, SHAPE), op, y, {
        method,
        sigma0,
        steps,
        samples: K,
        batchSize: K,
        seed: 1,
        cgIterations: 5,
      });
      const m = new Float64Array(D),
        v = new Float64Array(D);
      for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) m[j]! += r.samples[k * D + j]! / K;
      for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) v[j]! += (r.samples[k * D + j]! - m[j]!) ** 2 / (K - 1);
      let em = 0,
        ev = 0,
        evMax = 0;
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

// Last, so that every constant above is initialised before the chosen mode runs.
if (a.moments) await momentTable(a.out!);
else if (a.report) await report();
else await experiment();
