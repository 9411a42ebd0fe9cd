// `kintsugi mixture` (a Gaussian mixture and training samples from it) and `kintsugi score-error`
// (audit a checkpoint against the mixture's exact score). Together with `kintsugi train --data FILE.npy`
// they run the sample-complexity measurement of docs/score-error.md from the shell.
import { checkWritableFile, defineCommand, integer, number, numberList, stepPrinter, UsageError } from '../cli-common.ts';
import { loadUNet, readCheckpoint } from '../checkpoint.ts';
import { writeNpy } from '../data/npy.ts';
import { defaultDevice } from '../device.ts';
import { TIMESTEP_SPACINGS, timesteps, unetDenoiser, type TimestepSpacing } from '../sample.ts';
import { NoiseSchedule } from '../schedule.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import { scoreErrorAudit } from './audit.ts';
import { GaussianMixture, TRAINING_STREAM } from './mixture.ts';

export const MIXTURE_HELP = `usage: kintsugi mixture --out FILE [options]

Writes a Gaussian mixture of smooth random images (docs/score-error.md), and optionally samples from
it as a .npy training set for \`kintsugi train --data FILE.npy\`. Its noised score is exact, so a model
trained on it can be audited with \`kintsugi score-error\`.

options:
  --out FILE        the mixture (.safetensors)
  --shape C,H,W     one sample (default 1,16,16: the tiny16 preset)
  --components K    default 4
  --rank R          rank of each component's covariance factor (default 4)
  --weights W,...   component weights (default equal), e.g. 1,1,1,0.01 for a rare fourth component
  --spread X        per-pixel RMS of each factor direction (default 0.3)
  --noise X         isotropic standard deviation (default 0.05)
  --seed S          default 0
  --samples N       also draw N training samples ...
  --data FILE.npy   ... into this file (float32, [N, C, H, W])

example:
  kintsugi mixture --out mix.safetensors --weights 1,1,1,0.01 --samples 4096 --data mix-train.npy`;

export const SCORE_ERROR_HELP = `usage: kintsugi score-error --checkpoint FILE --mixture FILE [options]

Measures a trained model's score error against the exact score of the Gaussian mixture it was trained
on: per noise level, the (1-delta)-quantile of ||eps_hat - eps*|| over fresh points, with a 95 % upper
confidence bound, next to the RMS error (docs/score-error.md).

options:
  --checkpoint FILE a checkpoint from \`kintsugi train\`
  --mixture FILE    from \`kintsugi mixture\`
  --delta X         default 0.01
  --samples M       points per level (default ceil(50/delta))
  --levels L        the grid of a sampler of L steps (default 50, \`kintsugi sample\`'s), or a comma list of step indices
  --spacing S       that sampler's spacing: linspace (default) | leading | trailing
  --confidence X    of the upper bounds, all levels at once (a union bound; default 0.95)
  --no-ema          audit the raw weights instead of the EMA
  --seed S          default 0
  --device D        cpu | cuda | cuda:N
  --json FILE       also write the report as JSON

example:
  kintsugi score-error --checkpoint checkpoint.safetensors --mixture mix.safetensors --delta 0.02`;

export const mixtureCommand = defineCommand('mixture', {
  summary: 'a Gaussian mixture with an exact score, and training samples from it',
  help: MIXTURE_HELP,
  options: {
    out: { type: 'string' },
    shape: { type: 'string' },
    components: { type: 'string' },
    rank: { type: 'string' },
    weights: { type: 'string' },
    spread: { type: 'string' },
    noise: { type: 'string' },
    seed: { type: 'string' },
    samples: { type: 'string' },
    data: { type: 'string' },
  },
  run: (values) => mixtureRun(values as Record<string, string | undefined>),
});

async function mixtureRun(values: Record<string, string | undefined>): Promise<void> {
  if (!values.out) throw new UsageError('mixture: --out FILE is required (kintsugi mixture --help)');
  if ((values.samples === undefined) !== (values.data === undefined))
    throw new UsageError('mixture: --samples N and --data FILE.npy go together');
  checkWritableFile(values.out, '--out');
  if (values.data) checkWritableFile(values.data, '--data');
  const shape = numberList(values.shape ?? '1,16,16', '--shape');
  if (shape.length !== 3 || shape.some((v) => !Number.isInteger(v) || v < 1))
    throw new UsageError(`--shape: expected C,H,W (positive integers), got "${values.shape}"`);
  const weights = values.weights ? numberList(values.weights, '--weights') : undefined;
  const mixture = GaussianMixture.random({
    shape: shape as [number, number, number],
    components: integer(values.components, weights?.length ?? 4, '--components'),
    rank: integer(values.rank, 4, '--rank'),
    weights,
    spread: number(values.spread, 0.3, '--spread', { above: 0 }),
    noise: number(values.noise, 0.05, '--noise', { min: 0 }),
    seed: integer(values.seed, 0, '--seed', 0),
  });
  await mixture.save(values.out);
  console.log(
    `wrote ${values.out}: ${mixture.components.length} components on [${mixture.shape.join(', ')}], rank ${mixture.rank}, weights ${[...mixture.weights].map((w) => w.toFixed(4)).join(', ')}`,
  );
  if (values.data) {
    const n = integer(values.samples, 0, '--samples');
    const { x } = mixture.sample(n, integer(values.seed, 0, '--seed', 0), TRAINING_STREAM);
    await writeNpy(values.data, { data: Float32Array.from(x), shape: [n, ...mixture.shape] });
    console.log(`wrote ${values.data}: ${n} samples, float32 [${[n, ...mixture.shape].join(', ')}]`);
  }
}

export const scoreErrorCommand = defineCommand('score-error', {
  summary: "audit a checkpoint's score against a mixture's exact score: the (1-delta)-quantile error",
  help: SCORE_ERROR_HELP,
  options: {
    checkpoint: { type: 'string' },
    mixture: { type: 'string' },
    delta: { type: 'string' },
    samples: { type: 'string' },
    levels: { type: 'string' },
    spacing: { type: 'string' },
    confidence: { type: 'string' },
    'no-ema': { type: 'boolean' },
    seed: { type: 'string' },
    device: { type: 'string' },
    json: { type: 'string' },
  },
  run: (values) => scoreErrorRun(values as Record<string, string | undefined> & { 'no-ema'?: boolean }),
});

async function scoreErrorRun(values: Record<string, string | undefined> & { 'no-ema'?: boolean }): Promise<void> {
  if (!values.checkpoint || !values.mixture)
    throw new UsageError('score-error: --checkpoint FILE and --mixture FILE are required (kintsugi score-error --help)');
  if (values.json) checkWritableFile(values.json, '--json');
  const delta = number(values.delta, 0.01, '--delta', { above: 0, max: 0.5 });
  const confidence = number(values.confidence, 0.95, '--confidence', { above: 0 });
  if (!(confidence < 1)) throw new UsageError(`--confidence: expected a number in (0, 1), got ${values.confidence}`);
  const samples = values.samples === undefined ? undefined : integer(values.samples, 0, '--samples', 2);
  const seed = integer(values.seed, 0, '--seed', 0);
  const mixture = await GaussianMixture.load(values.mixture);
  const ck = await readCheckpoint(values.checkpoint);
  const device = values.device ?? defaultDevice();
  const cfg = ck.config;
  const [C, H, W] = mixture.shape;
  if (cfg.inChannels !== C || cfg.resolution !== H || H !== W || (cfg.outChannels ?? cfg.inChannels) !== C)
    throw new UsageError(
      `score-error: the mixture's samples are [${mixture.shape.join(', ')}] but the model takes [${cfg.inChannels}, ${cfg.resolution}, ${cfg.resolution}]`,
    );
  const schedule = new NoiseSchedule((ck.schedule as { kind: 'linear' | 'cosine' } | null) ?? { kind: 'linear' });
  const spacing = (values.spacing ?? 'linspace') as TimestepSpacing;
  if (!TIMESTEP_SPACINGS.includes(spacing)) throw new UsageError(`--spacing: expected ${TIMESTEP_SPACINGS.join(', ')}, got "${spacing}"`);
  const levelSpec = values.levels ?? '50';
  const steps = levelSpec.includes(',') ? 0 : integer(levelSpec, 50, '--levels');
  if (steps > schedule.steps) throw new UsageError(`--levels: expected at most ${schedule.steps} (the schedule's steps), got ${steps}`);
  const levels = levelSpec.includes(',') ? numberList(levelSpec, '--levels') : timesteps(schedule.steps, steps, spacing);
  const model = await loadUNet(values.checkpoint, { device, useEma: !values['no-ema'] && ck.ema !== undefined });
  const progress = stepPrinter('score-error: noise level');
  try {
    const report = await scoreErrorAudit(unetDenoiser(model), {
      mixture,
      schedule,
      prediction: ck.prediction,
      levels,
      delta,
      device,
      samples,
      confidence,
      seed,
      onLevel: (row, done, total) => progress(done, total, `t = ${row.t}, quantile ${row.quantile.toFixed(4)}`),
    });
    const pct = `${+(100 * (1 - report.delta)).toFixed(2)} %`;
    console.log(
      `${values.checkpoint} (${ck.prediction}-prediction, ${ck.ema && !values['no-ema'] ? 'EMA' : 'raw'} weights) against ${values.mixture}: ||eps_hat - eps*|| over ${report.dim} values, ${report.levels[0]!.samples} points per level; the bounds hold at all ${report.levels.length} levels at once with probability >= ${report.confidence} (union bound)`,
    );
    console.log(
      `${'t'.padStart(5)} ${'sigma'.padStart(8)} ${`${pct} quantile`.padStart(16)} ${`${+(100 * report.confidence).toFixed(2)} % bound`.padStart(10)} ${'RMS'.padStart(8)} ${'max'.padStart(8)}`,
    );
    for (const l of report.levels)
      console.log(
        `${String(l.t).padStart(5)} ${l.sigma.toPrecision(3).padStart(8)} ${l.quantile.toFixed(4).padStart(16)} ${l.upperBound.toFixed(4).padStart(10)} ${l.rms.toFixed(4).padStart(8)} ${l.max.toFixed(4).padStart(8)}`,
      );
    if (values.json) {
      await writeFileAtomic(
        values.json,
        new TextEncoder().encode(JSON.stringify({ checkpoint: values.checkpoint, mixture: values.mixture, ...report }, null, 2) + '\n'),
      );
      console.log(`wrote ${values.json}`);
    }
  } finally {
    model.dispose();
  }
}
