// DiffEM on Fashion-MNIST with masked, noisy observations (docs/diffem.md): round 0 from a Gaussian
// prior fitted by EM, then K rounds of conditional-diffusion EM; per round, the PSNR of the
// reconstructions against the clean images (known here because the corruption is synthetic) and the
// FD-FMNIST of the reconstructions against the clean set, and the CPU time of each round. EM is meant to
// improve round by round; docs/diffem.md reports what the runs showed (so far, at CPU budgets, it did not).
//
//   node --import ./test/support/register-ts.mjs bench/diffem-experiment.ts --out DIR [options]
//   CPU smoke run (16x16, ~10 min on 2 cores):
//   ... --n 256 --pool 2 --preset tiny16 --rounds 2 --steps 200 --batch 16 --sampler heun --sample-steps 16
//
// Writes DIR/results.json, DIR/results.md and DIR/round-K.png (the first 64 reconstructions).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { gridToPng, writePng } from '../lib/data/png.ts';
import { defaultDevice } from '../lib/device.ts';
import { fdFmnist } from '../lib/metrics/fd-fmnist.ts';
import { psnr } from '../lib/metrics/psnr.ts';
import { presets, resizedConfig, UNet } from '../lib/unet.ts';
import { lowresDataset } from '../lib/bootstrap/data.ts';
import { upsampleNearest } from '../lib/bootstrap/views.ts';
import { tensor } from '../lib/tensor.ts';
import { corruptWithMasks, diffem } from '../lib/diffem/em.ts';
import { expandMask, fitGaussianPrior, posteriorSample } from '../lib/diffem/gaussian-prior.ts';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'subset' },
    n: { type: 'string', default: '2000' },
    pool: { type: 'string', default: '1' },
    p: { type: 'string', default: '0.75' },
    patch: { type: 'string', default: '1' },
    sigma0: { type: 'string', default: '0.01' },
    preset: { type: 'string', default: 'fmnist32' },
    rounds: { type: 'string', default: '8' },
    steps: { type: 'string', default: '4000' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '2e-4' },
    rank: { type: 'string', default: '16' },
    'prior-iterations': { type: 'string', default: '30' },
    sampler: { type: 'string', default: 'ancestral' },
    'sample-steps': { type: 'string', default: '256' },
    ema: { type: 'string', default: '0.9999' },
    seed: { type: 'string', default: '1' },
    device: { type: 'string' },
    out: { type: 'string', default: 'diffem-experiment' },
  },
});
const device = a.device ?? defaultDevice();
const out = a.out!;
mkdirSync(out, { recursive: true });
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const seed = BigInt(a.seed!);

const full = await loadFashionMnist({ source: a.data!, limit: Number(a.n) });
const data = Number(a.pool) > 1 ? await lowresDataset(full, Number(a.pool)) : full;
const shape = data.shape as [number, number, number, number];
const [N, C, H, W] = shape;
const corruption = { p: Number(a.p), patch: Number(a.patch), sigma0: Number(a.sigma0) };
const observations = await corruptWithMasks(data.images, shape, corruption, seed);
log(`${N} images ${H}x${W} from ${full.file}; masks p = ${corruption.p} (patch ${corruption.patch}), sigma0 ${corruption.sigma0}`);

// FD-FMNIST's classifier reads 32x32: pooled images are compared after nearest upsampling, both sides alike.
const to32 = async (x: Float32Array) => {
  if (H === 32) return x;
  using t = tensor(x, [N, C, H, W], { device: 'cpu' });
  using u = upsampleNearest(t, 32 / H);
  return u.toArray();
};
const reference = { data: await to32(data.images), shape: [N, C, 32, 32] };
const metrics = async (x: Float32Array) => ({
  psnr: (await psnr({ data: x, shape }, { data: data.images, shape })).mean,
  fd: await fdFmnist({ data: await to32(x), shape: [N, C, 32, 32] }, reference, { device }),
});
const rows: { round: number; psnr: number; fd: number; loss?: number; seconds: number; cpuSeconds: number }[] = [];
// CPU time of the process since the last round (user + system, all threads): wall time on a shared machine means little.
let cpuMark = process.cpuUsage();
const cpuSince = () => {
  const u = process.cpuUsage(cpuMark);
  cpuMark = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const results = { date: new Date().toISOString(), device, args: a, rows };
const record = async (round: number, x: Float32Array, extra: { loss?: number; seconds: number }) => {
  const m = await metrics(x);
  rows.push({ round, ...m, ...extra, cpuSeconds: cpuSince() });
  await writePng(join(out, `round-${round}.png`), gridToPng(x.subarray(0, 64 * C * H * W), [Math.min(64, N), C, H, W]));
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  log(
    `round ${round}: PSNR ${m.psnr.toFixed(2)} dB, FD-FMNIST ${m.fd.toFixed(2)}${extra.loss === undefined ? '' : `, loss ${extra.loss.toFixed(4)}`}, ${extra.seconds.toFixed(0)} s`,
  );
};

// Round 0: a Gaussian prior (mean, rank-r + diagonal covariance) fitted to the observations by EM,
// and one posterior sample per observation.
const t0 = performance.now();
const mask = expandMask(Uint8Array.from(observations.mask), N, C, H * W);
const prior = await fitGaussianPrior(observations.y, mask, N, C * H * W, {
  rank: Number(a.rank),
  iterations: Number(a['prior-iterations']),
  sigmaY: corruption.sigma0,
  seed,
});
const initial = Float32Array.from(posteriorSample(prior, observations.y, mask, N, C * H * W, corruption.sigma0, seed, 0n));
await record(0, initial, { seconds: (performance.now() - t0) / 1000 });

const base =
  presets[a.preset as keyof typeof presets] ??
  (() => {
    throw new Error(`--preset: expected tiny16, fmnist32 or cifar32, got ${a.preset}`);
  })();
const config = resizedConfig(base, H, 2 * C + 1, C);
const model = new UNet(config, { device, seed });
const steps = Number(a.steps);
await diffem({
  model,
  observations,
  corruption,
  initial,
  rounds: Number(a.rounds),
  stepsPerRound: steps,
  batchSize: Number(a.batch),
  emaDecay: Number(a.ema),
  optimizer: { lr: Number(a.lr), warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
  sampler: { method: a.sampler as 'ancestral' | 'heun', steps: Number(a['sample-steps']) },
  seed,
  dir: join(out, 'state'),
  onRound: (r) => record(r.round, r.reconstructions, { loss: r.loss, seconds: r.trainSeconds + r.sampleSeconds }),
});

const md = [
  `# DiffEM on Fashion-MNIST (${results.date.slice(0, 10)}, ${device})`,
  '',
  `${N} images ${H}x${W}, masks p = ${corruption.p} (patch ${corruption.patch}), sigma0 ${corruption.sigma0}; round 0: Gaussian prior of rank ${a.rank}; ` +
    `conditional UNet ${JSON.stringify(config)}, ${steps} steps of batch ${a.batch} per round, EMA ${a.ema}; E-step ${a.sampler}, ${a['sample-steps']} steps. ` +
    'PSNR of the reconstructions against the clean images; FD-FMNIST of the reconstructions against the clean set' +
    (H === 32 ? '.' : ' (both upsampled to 32x32).'),
  '',
  '| round | PSNR (dB) | FD-FMNIST | training loss | seconds | CPU seconds |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.round} | ${r.psnr.toFixed(2)} | ${r.fd.toFixed(2)} | ${r.loss === undefined ? '' : r.loss.toFixed(4)} | ${r.seconds.toFixed(0)} | ${r.cpuSeconds.toFixed(0)} |`,
  ),
  '',
];
writeFileSync(join(out, 'results.md'), md.join('\n'));
log(`wrote ${join(out, 'results.md')}`);
