// The GSURE experiment (issues #6, #16): Fashion-MNIST with patches dropped at p = 0.4 and sigma0 =
// 0.02. Four trainings with the same network, schedule, steps and seed: the oracle (the clean images),
// naive (the masked images as if they were clean), Ambient Diffusion (the masked images, further
// corrupted) and GSURE (the measurements only); each repeated for --seeds seeds (model initialisation,
// training draws and sampling noise; the corrupted data set is one and the same). Samples of each
// (DDIM, EMA weights) are scored by FD-FMNIST against held-out images: the test split, never a
// training image of any model. The metric's noise floor is FD-FMNIST between two disjoint held-out
// sets of the same size as the samples. Run after `npm run build:ts`:
//   nice -n 10 node bench/gsure-experiment.mjs [--device cuda:0] [--resolution 16|32] [--steps N]
//        [--batch B] [--samples N] [--seeds K | --seed-list 0,1,2] [--ddim N] [--train N] [--out DIR]
//   node bench/gsure-experiment.mjs --merge DIR1,DIR2,... [--out DIR]   (seeds run as separate processes)
// CPU defaults (~10 CPU-minutes): 16x16 images (2x2 means of the 32x32 ones; 2x2 patches are the 4x4
// patches of 32x32), a 32-channel UNet, 150 steps of batch 16, 256 samples of 10 DDIM steps, 3 seeds.
// The cost is linear in seeds x steps x batch (training, GSURE twice the others) plus seeds x samples x
// DDIM steps (sampling); on a GPU use --resolution 32 --preset fmnist32 --steps 20000 --batch 128
// --samples 2000. Writes DIR/gsure-experiment.json after every run (so a stopped run keeps what
// finished) and prints the table.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ambientDenoiser,
  ambientMaskLaw,
  ambientSamplingMasks,
  corruptDataset,
  defaultDevice,
  fdFmnistFeatures,
  frechetDistance,
  Generator,
  gridToPng,
  gsureSchedule,
  loadFashionMnist,
  presets,
  precisionRecall,
  sample,
  svdStatistics,
  tensor,
  train,
  trainAmbient,
  trainGsure,
  UNet,
  unetDenoiser,
  writePng,
} from '../dist/index.js';
import { arg, runInfo } from './lib/common.mjs';

const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const sd = (a) => (a.length > 1 ? Math.sqrt(a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / (a.length - 1)) : NaN);
const METHODS = ['oracle', 'naive', 'ambient', 'gsure'];

/** The table over every seed of `result.runs`, printed as markdown. */
function finish(result, outDir) {
  result.table = METHODS.map((method) => {
    const rows = result.runs.filter((r) => r.method === method);
    const f = (k) => ({ mean: mean(rows.map((r) => r[k])), sd: sd(rows.map((r) => r[k])) });
    return {
      method,
      seeds: rows.map((r) => r.seed),
      fd: f('fd'),
      precision: f('precision'),
      recall: f('recall'),
      cpuSeconds: f('cpuSeconds'),
    };
  });
  result.totalCpuSeconds = result.runs.reduce((s, r) => s + r.cpuSeconds, 0);
  writeFileSync(join(outDir, 'gsure-experiment.json'), JSON.stringify(result, null, 2) + '\n');
  const pm = (v, d) => `${v.mean.toFixed(d)} ± ${v.sd.toFixed(d)}`;
  console.log(`| method | FD-FMNIST (mean ± sd over seeds) | precision | recall | CPU-s per run | seeds |\n|---|---|---|---|---|---|`);
  for (const t of result.table)
    console.log(
      `| ${t.method} | ${pm(t.fd, 2)} | ${pm(t.precision, 3)} | ${pm(t.recall, 3)} | ${t.cpuSeconds.mean.toFixed(0)} | ${t.seeds.join(', ')} |`,
    );
  console.log(`| noise floor (two held-out sets of ${result.samples}) | ${pm(result.noiseFloor, 2)} | | | | |`);
  console.log(`total ${result.totalCpuSeconds.toFixed(0)} CPU-s in the runs`);
}

if (arg('merge', undefined)) {
  const parts = arg('merge')
    .split(',')
    .map((d) => JSON.parse(readFileSync(join(d, 'gsure-experiment.json'), 'utf8')));
  const result = { ...parts[0], runs: parts.flatMap((p) => p.runs), seeds: parts.flatMap((p) => p.seedList ?? []) };
  const out = arg('out', 'gsure-experiment');
  mkdirSync(out, { recursive: true });
  finish(result, out);
  process.exit(0);
}

const device = arg('device', defaultDevice());
const gpu = device.startsWith('cuda');
const R = Number(arg('resolution', gpu ? 32 : 16));
if (R !== 16 && R !== 32) throw new Error(`--resolution: expected 16 or 32, got ${R}`);
const presetName = arg('preset', undefined);
const base = presetName
  ? presets[presetName]
  : { inChannels: 1, outChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [], resolution: R };
if (!base) throw new Error(`--preset: unknown preset ${presetName}`);
const config = { ...base, resolution: R };
const steps = Number(arg('steps', gpu ? 20000 : 150));
const batchSize = Number(arg('batch', gpu ? 128 : 16));
const nSamples = Number(arg('samples', gpu ? 2000 : 256));
const seedList = arg('seed-list', undefined)?.split(',').map(Number) ?? Array.from({ length: Number(arg('seeds', 3)) }, (_, i) => i);
const ddimSteps = Number(arg('ddim', gpu ? 50 : 10));
const nTrain = Number(arg('train', gpu ? 60000 : 4000));
const outDir = arg('out', 'gsure-experiment');
const corruption = { kind: 'mask', patch: R / 8, p: 0.4 };
const sigma0 = 0.02;
const delta = 0.1;
const log = (...a) => console.error(`[gsure-experiment ${new Date().toISOString().slice(11, 19)}]`, ...a);
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
mkdirSync(outDir, { recursive: true });

/** 32x32 images at resolution R: 2x2 means for 16. */
function atResolution(images, n) {
  if (R === 32) return images;
  const out = new Float32Array(n * 256);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) {
        const o = i * 1024 + 2 * y * 32 + 2 * x;
        out[i * 256 + y * 16 + x] = (images[o] + images[o + 1] + images[o + 32] + images[o + 33]) / 4;
      }
  return out;
}
/** Images at R back to 32x32 for FD-FMNIST (nearest): samples and references go through the same pipeline. */
function to32(images, n) {
  if (R === 32) return { data: images, shape: [n, 1, 32, 32] };
  const out = new Float32Array(n * 1024);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) out[i * 1024 + y * 32 + x] = images[i * 256 + (y >> 1) * 16 + (x >> 1)];
  return { data: out, shape: [n, 1, 32, 32] };
}

const source = arg('data', 'debian');
const trainSet = await loadFashionMnist({ source, split: 'train', limit: nTrain });
const N = trainSet.shape[0];
const clean = atResolution(trainSet.images, N);
// Held-out references: the test split, which no model trains on. Reference 0 scores the models;
// disjoint pairs of the same size give the noise floor.
const floorPairs = 3;
const test = await loadFashionMnist({ source, split: 'test', limit: 2 * floorPairs * nSamples });
const refs = [];
for (let k = 0; k < 2 * floorPairs; k++)
  refs.push(
    await fdFmnistFeatures(to32(atResolution(test.images.subarray(k * nSamples * 1024, (k + 1) * nSamples * 1024), nSamples), nSamples)),
  );
const floor = [];
for (let k = 0; k < floorPairs; k++) floor.push(await frechetDistance(refs[2 * k], refs[2 * k + 1]));

const set = await corruptDataset(clean, [N, 1, R, R], { corruption, sigma0, seed: 1, device: 'cpu' });
const stats = await svdStatistics(set);
const schedule = gsureSchedule(stats.vMax);
const law = ambientMaskLaw(set, { delta });
const ambientConfig = { ...config, inChannels: 2, outChannels: 1 };
const runs = {
  oracle: (common) => train({ ...common, data: { images: clean, shape: [N, 1, R, R] }, prediction: 'x0' }),
  naive: (common) => train({ ...common, data: { images: set.measurements, shape: [N, 1, R, R] }, prediction: 'x0' }),
  ambient: (common) => trainAmbient({ ...common, measurements: set, ambient: { delta } }),
  gsure: (common) => trainGsure({ ...common, measurements: set }),
};
const result = {
  experiment: 'gsure',
  ...runInfo(device),
  config,
  resolution: R,
  source,
  trainImages: N,
  steps,
  batchSize,
  corruption,
  sigma0,
  delta,
  samples: nSamples,
  ddimSteps,
  seedList,
  reference: `held-out: ${source} test split, first ${nSamples} images`,
  noiseFloor: { pairs: floor, mean: mean(floor), sd: sd(floor), note: `FD-FMNIST between disjoint held-out sets of ${nSamples}` },
  runs: [],
};
const save = () => writeFileSync(join(outDir, 'gsure-experiment.json'), JSON.stringify(result, null, 2) + '\n');
log(
  `noise floor FD ${mean(floor).toFixed(2)} ± ${sd(floor).toFixed(2)}; ${N} training images at ${R}x${R}, seeds ${seedList.join(', ')}, ${steps} steps of ${batchSize}`,
);
save();

for (const seed of seedList)
  for (const [method, run] of Object.entries(runs)) {
    const c0 = cpuSeconds();
    const t0 = performance.now();
    const model = new UNet(method === 'ambient' ? ambientConfig : config, { device, seed: BigInt(seed) });
    const common = {
      model,
      steps,
      batchSize,
      schedule,
      seed,
      emaDecay: gpu ? 0.999 : 0.98,
      optimizer: { lr: gpu ? 2e-4 : 2e-3, warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
      progressEvery: Math.max(1, Math.floor(steps / 5)),
      onProgress: (p) => log(`seed ${seed} ${method} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`),
    };
    const r = await run(common);
    const trainCpu = cpuSeconds() - c0;
    const params = r.ema?.params;
    let masks;
    let denoiser = unetDenoiser(model, params);
    if (method === 'ambient') {
      masks = tensor(ambientSamplingMasks(nSamples, [1, R, R], law, 1000 + seed), [nSamples, 1, R, R], { device });
      denoiser = ambientDenoiser(model, masks, params);
    }
    const x = await sample(denoiser, {
      schedule,
      prediction: 'x0',
      shape: [nSamples, 1, R, R],
      device,
      method: 'ddim',
      steps: ddimSteps,
      clip: [-1, 1],
      generator: new Generator(100 + seed),
    });
    masks?.dispose();
    const images = await x.toArray();
    x.dispose();
    const features = await fdFmnistFeatures(to32(images, nSamples));
    const fd = await frechetDistance(features, refs[0]);
    const pr = await precisionRecall(features, refs[0]);
    if (seed === 0) await writePng(join(outDir, `${method}.png`), gridToPng(images.subarray(0, 64 * R * R), [64, 1, R, R], { columns: 8 }));
    const row = {
      method,
      seed,
      fd,
      precision: pr.precision,
      recall: pr.recall,
      finalLoss: r.losses.at(-1)?.loss,
      trainCpuSeconds: trainCpu,
      cpuSeconds: cpuSeconds() - c0,
      wallSeconds: (performance.now() - t0) / 1000,
    };
    result.runs.push(row);
    save();
    log(
      `seed ${seed} ${method}: FD-FMNIST ${fd.toFixed(2)}, precision ${pr.precision.toFixed(3)}, recall ${pr.recall.toFixed(3)}; ${row.cpuSeconds.toFixed(0)} CPU-s, ${row.wallSeconds.toFixed(0)} s wall`,
    );
    model.dispose();
  }

finish(result, outDir);
