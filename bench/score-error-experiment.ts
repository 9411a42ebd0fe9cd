// The 1−δ quantile score error against the training-set size (docs/score-error.md, seed 002): a UNet
// trained by denoising score matching on N samples of a Gaussian mixture whose noised score is exact,
// audited at several noise levels. One component is rare (weight `--rare`, below δ): small training
// sets hold few or none of its points, so the model is wrong there; the RMS error counts that, the
// (1−δ)-quantile does not. The table reports both, per N and level.
//
//   node --import ./test/support/register-ts.mjs bench/score-error-experiment.ts --out DIR [options]
//   smoke run: ... --sizes 32,128 --steps 20 --samples 300 --delta 0.1 --levels 4
//
// Writes DIR/results.json, DIR/results.md and DIR/mixture.safetensors (the data distribution).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDevice } from '../lib/device.ts';
import { unetDenoiser, timesteps } from '../lib/sample.ts';
import { NoiseSchedule } from '../lib/schedule.ts';
import { train } from '../lib/train.ts';
import { UNet, type UNetConfig } from '../lib/unet.ts';
import { GaussianMixture, TRAINING_STREAM } from '../lib/score-error/mixture.ts';
import { scoreErrorAudit, type ScoreErrorLevel } from '../lib/score-error/audit.ts';

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: '64,256,1024,4096' },
    steps: { type: 'string', default: '1500' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '2e-3' },
    resolution: { type: 'string', default: '8' },
    components: { type: 'string', default: '4' },
    rare: { type: 'string', default: '0.005' },
    delta: { type: 'string', default: '0.02' },
    samples: { type: 'string' },
    levels: { type: 'string', default: '6' },
    seed: { type: 'string', default: '1' },
    device: { type: 'string' },
    out: { type: 'string', default: 'score-error-experiment' },
  },
});
const device = a.device ?? defaultDevice();
const out = a.out!;
mkdirSync(out, { recursive: true });
const sizes = a.sizes!.split(',').map(Number);
const steps = Number(a.steps);
const batchSize = Number(a.batch);
const R = Number(a.resolution);
const K = Number(a.components);
const rare = Number(a.rare);
const delta = Number(a.delta);
const samples = a.samples ? Number(a.samples) : undefined;
const seed = Number(a.seed);
const schedule = new NoiseSchedule({ kind: 'linear' });
// Audit from t = 20 up: below it ε* is dominated by the isotropic part (s = 0.05 against √(1−ᾱ) < 0.05)
// and every model's ε-error is large in absolute terms for a reason that has nothing to do with N.
const levels = timesteps(schedule.steps - 20, Number(a.levels)).map((t) => t + 20);
// The rare component is the last; the others share the rest of the mass.
const weights = [...new Array<number>(K - 1).fill((1 - rare) / (K - 1)), rare];
const mixture = GaussianMixture.random({ shape: [1, R, R], components: K, rank: 4, weights, spread: 0.3, noise: 0.05, seed });
await mixture.save(join(out, 'mixture.safetensors'));
const config: UNetConfig = { inChannels: 1, channels: 32, mult: [1, 2], resBlocks: 1, attnResolutions: [], resolution: R };
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

const results = {
  date: new Date().toISOString(),
  device,
  args: a,
  weights,
  levels,
  config,
  runs: [] as { n: number; rareInTraining: number; finalLoss: number; seconds: number; levels: ScoreErrorLevel[] }[],
};
for (const n of sizes) {
  const { x, component } = mixture.sample(n, seed, TRAINING_STREAM);
  const rareInTraining = component.filter((k) => k === K - 1).length;
  const model = new UNet(config, { device, seed });
  const t0 = performance.now();
  const r = await train({
    model,
    data: { images: Float32Array.from(x), shape: [n, 1, R, R] },
    batchSize,
    steps,
    schedule,
    prediction: 'eps',
    seed,
    emaDecay: 0,
    optimizer: { lr: Number(a.lr), warmupSteps: 100, maxGradNorm: 1 },
  });
  const seconds = (performance.now() - t0) / 1000;
  const finalLoss = r.losses.slice(-50).reduce((s, l) => s + l.loss, 0) / Math.min(50, r.losses.length);
  const report = await scoreErrorAudit(unetDenoiser(model), {
    mixture,
    schedule,
    prediction: 'eps',
    levels,
    delta,
    samples,
    seed: 77,
    device,
  });
  model.dispose();
  results.runs.push({ n, rareInTraining, finalLoss, seconds, levels: report.levels });
  log(
    `N = ${n} (${rareInTraining} rare): loss ${finalLoss.toFixed(4)}, ${seconds.toFixed(0)} s; ` +
      report.levels.map((l) => `t=${l.t} q=${l.quantile.toFixed(3)} rms=${l.rms.toFixed(3)}`).join(', '),
  );
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
}

const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));
const md = [
  `# Score error against training-set size (${results.date.slice(0, 10)}, ${device})`,
  '',
  `Mixture: ${K} components on [1, ${R}, ${R}] (rank 4, spread 0.3, noise 0.05), the last of weight ${rare}. UNet ${JSON.stringify(config)}, ` +
    `ε-prediction, ${steps} steps of batch ${batchSize}. Errors are ‖ε̂ − ε*‖ over ${mixture.dim} values; δ = ${delta}, ` +
    `${results.runs[0]?.levels[0]?.samples ?? '?'} points per level, upper bound at 95 %.`,
  '',
  '| N | rare in training | t | quantile | upper bound | RMS | RMS on the rare component | RMS on the others |',
  '|---|---|---|---|---|---|---|---|',
  ...results.runs.flatMap((run) =>
    run.levels.map((l) => {
      const others = l.rmsByComponent.slice(0, K - 1);
      const counts = l.countByComponent.slice(0, K - 1);
      const pooled = Math.sqrt(
        others.reduce((s, v, k) => s + (Number.isNaN(v) ? 0 : v * v * counts[k]!), 0) / counts.reduce((s, c) => s + c, 0),
      );
      return `| ${run.n} | ${run.rareInTraining} | ${l.t} | ${f(l.quantile)} | ${f(l.upperBound)} | ${f(l.rms)} | ${f(l.rmsByComponent[K - 1]!)} | ${f(pooled)} |`;
    }),
  ),
  '',
];
writeFileSync(join(out, 'results.md'), md.join('\n'));
log(`wrote ${join(out, 'results.md')}`);
