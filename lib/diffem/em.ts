// The DiffEM loop (docs/diffem.md; seed 004): expectation-maximisation with a conditional diffusion
// model as the posterior. Given observations y_i = A_i x_i + σ z_i (any operator of lib/corruption:
// masks, block averaging, subsampled Fourier) and reconstructions x̂_i from round 0 (a Gaussian prior,
// or any warm start), each round
//   M-step: re-corrupt the reconstructions with fresh operator draws and noise, ŷ_i ~ Q(· | x̂_i), and
//           train the conditional denoiser d_θ on the pairs (x̂_i, ŷ_i), warm-started from the previous
//           round's EMA weights (as the authors' code does);
//   E-step: draw one new reconstruction per observation with the EMA weights, x̂_i ~ q_θ(· | y_i).
// With `dir`, every round leaves its reconstructions (round-K.npy), the model (round-K.safetensors,
// saved during training too) and state.json behind, written atomically: a stopped run resumes at the
// round, and within it at the training step, where it stopped.
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readCheckpoint } from '../checkpoint.ts';
import { readNpy, writeNpy } from '../data/npy.ts';
import type { AdamWOptions } from '../optim.ts';
import type { TrainProgress } from '../train.ts';
import type { UNet } from '../unet.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import type { MeasurementSet } from '../corruption/dataset.ts';
import { MaskOperator } from '../corruption/mask.ts';
import { NoiseSchedule } from '../schedule.ts';
import { train } from '../train.ts';
import { unetPrior } from '../restore/denoiser.ts';
import { restore } from '../restore/restore.ts';
import {
  checkConditionalModel,
  checkObservations,
  conditionalSample,
  trainConditional,
  type ConditionalPairs,
  type Observations,
} from './conditional.ts';
import type { EdmConfig } from './edm.ts';
import { corruptionSpec, corruptWith, kindOf, type DiffemCorruption, type MaskCorruption } from './observations.ts';

export type { DiffemCorruption, MaskCorruption, OperatorCorruption } from './observations.ts';

/** The observations of a mask measurement set, synchronously (observationsFrom takes every kind). */
export function observationsOf(set: MeasurementSet): Observations {
  const params = set.params;
  if (params.kind !== 'mask')
    throw new TypeError(
      `diffem: observationsOf reads mask measurements; for kind ${params.kind} use observationsFrom(set), which computes A⁺y`,
    );
  const [C, H, W] = set.signalShape as [number, number, number];
  const hw = H * W;
  const mask = new Float32Array(set.count * hw);
  // A per-channel mask is accepted when its channels agree: the model sees one mask channel.
  for (let i = 0; i < set.count; i++)
    for (let j = 0; j < hw; j++) {
      const v = params.mask[i * params.maskChannels * hw + j]!;
      for (let c = 1; c < params.maskChannels; c++)
        if (params.mask[(i * params.maskChannels + c) * hw + j] !== v)
          throw new RangeError(`diffem: sample ${i} has a mask that differs between channels; DiffEM here takes one mask for all channels`);
      mask[i * hw + j] = v;
    }
  return { shape: [set.count, C, H, W], y: set.measurements, mask, source: set, kind: 'mask', condition: 'pinv' };
}

/** ŷ ~ Q(· | x) with fresh masks and noise drawn from `seed` (corruptWith for any operator). */
export async function corruptWithMasks(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  q: MaskCorruption,
  seed: bigint,
): Promise<Observations> {
  return corruptWith(x, shape, { p: q.p, patch: q.patch ?? 1, sigma0: q.sigma0 }, seed);
}

/** DiffEM's defaults, the authors' settings: 32 rounds (laps 0..31), EMA decay 0.9999. */
export const DIFFEM_DEFAULTS = Object.freeze({ rounds: 32, emaDecay: 0.9999 });

/**
 * The E-step's posterior: DiffEM's conditional model (the default), or an unconditional prior with a
 * posterior sampler of lib/restore (EM-MMPS and DPS-EM, Rozet et al. 2024's baselines): then each
 * M-step trains the prior on the reconstructions (denoising score matching, eps-prediction, linear
 * schedule) and the E-step draws x̂_i ~ p_θ(x | y_i) by MMPS or DPS.
 */
export type EStep = 'conditional' | 'mmps' | 'dps';

export interface DiffemOptions {
  /** The UNet trained in place across rounds: conditional (inChannels 2C + 1, outChannels C) for the
   *  conditional E-step, unconditional (C in, C out) for mmps and dps. After a run it holds the last
   *  round's EMA weights (its raw weights when emaDecay is 0). */
  model: UNet;
  /** Default 'conditional'. */
  eStep?: EStep;
  /** From observationsFrom(set) (any operator) or corruptWith; masks also as {shape, y, mask}. */
  observations: Observations;
  /** How the observations were made: the M-step re-corrupts with the same law (same kind as the observations). */
  corruption: DiffemCorruption;
  /** Round-0 reconstructions, [N, C, H, W] (e.g. posterior samples of a fitted Gaussian prior). */
  initial: Float32Array;
  /** Default 32 (the authors' runs). */
  rounds?: number;
  stepsPerRound: number;
  batchSize: number;
  optimizer?: AdamWOptions;
  /** EMA decay of each round's training (default 0.9999, the paper's; 0: no EMA). The EMA starts each round
   *  at the round's starting weights; the E-step samples with it and the next round starts from it. It
   *  averages over about 1/(1 − decay) steps: with fewer steps per round the round's model stays close
   *  to where the round began (0.9999 keeps 82 % of it after 2,000 steps), so lower it for short rounds. */
  emaDecay?: number;
  edm?: EdmConfig;
  /** The E-step's sampler (default: ancestral, 256 steps, batches of 256; mmps/dps: their default steps
   *  of lib/restore, batches of 64, 3 CG iterations). */
  sampler?: { method?: 'ancestral' | 'heun'; steps?: number; batchSize?: number; cgIterations?: number };
  seed?: bigint | number;
  /** Where each round's state goes; an existing state there is resumed. */
  dir?: string;
  signal?: AbortSignal;
  onProgress?: (round: number, progress: TrainProgress) => void;
  /** During each E-step, after each sampled batch: `done` of `total` observations have their reconstruction. */
  onSample?: (round: number, done: number, total: number) => void;
  /** After each E-step, with that round's reconstructions (awaited: a metric may run here). */
  onRound?: (round: DiffemRound) => void | Promise<void>;
}

export interface DiffemRound {
  /** 1-based. */
  round: number;
  reconstructions: Float32Array;
  /** Mean training loss over the round's last tenth of steps (NaN when the round resumed after its training). */
  loss: number;
  trainSeconds: number;
  sampleSeconds: number;
}

export interface DiffemResult {
  reconstructions: Float32Array;
  /** The rounds run by this call (a resumed run lists only the new ones). */
  rounds: Omit<DiffemRound, 'reconstructions'>[];
  aborted: boolean;
}

const STATE_FORMAT = 'kintsugi-diffem-1';
const roundFile = (dir: string, k: number, ext: string) => join(dir, `round-${k}.${ext}`);

export async function diffem(o: DiffemOptions): Promise<DiffemResult> {
  const { model, observations } = o;
  checkObservations(observations, 'diffem: observations');
  const eStep = o.eStep ?? 'conditional';
  if (!['conditional', 'mmps', 'dps'].includes(eStep))
    throw new TypeError(`diffem: eStep: expected conditional, mmps or dps, got ${JSON.stringify(eStep)}`);
  const [N, C, H, W] = observations.shape;
  if (eStep === 'conditional') checkConditionalModel(model, observations.shape, 'diffem');
  else if (model.config.inChannels !== C || model.config.outChannels !== C || model.config.resolution !== H || H !== W)
    throw new TypeError(
      `diffem: the ${eStep} E-step needs an unconditional UNet for [${C}, ${H}, ${W}] images (inChannels = outChannels = ${C}, resolution ${H}); got inChannels ${model.config.inChannels}, outChannels ${model.config.outChannels}, resolution ${model.config.resolution}`,
    );
  const { spec } = corruptionSpec(o.corruption);
  if (spec.kind !== kindOf(observations))
    throw new TypeError(
      `diffem: corruption: the observations were made by a ${kindOf(observations)} operator, the re-corruption law is ${spec.kind}; the M-step must repeat the law that made them`,
    );
  if (eStep !== 'conditional' && kindOf(observations) !== 'mask' && !observations.source)
    throw new TypeError(`diffem: the ${eStep} E-step needs the operator: pass observations from observationsFrom(set)`);
  const roundCount = o.rounds ?? DIFFEM_DEFAULTS.rounds;
  const emaDecay = o.emaDecay ?? DIFFEM_DEFAULTS.emaDecay;
  if (!(typeof emaDecay === 'number' && emaDecay >= 0 && emaDecay < 1))
    throw new RangeError(`diffem: emaDecay: expected a number in [0, 1), got ${String(emaDecay)}`);
  if (o.initial.length !== N * C * H * W)
    throw new RangeError(`diffem: initial: expected ${N * C * H * W} values ([${observations.shape.join(', ')}]), got ${o.initial.length}`);
  for (const [k, v] of [
    ['rounds', roundCount],
    ['stepsPerRound', o.stepsPerRound],
    ['batchSize', o.batchSize],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`diffem: ${k} must be a positive integer, got ${v}`);
  const seed = BigInt(o.seed ?? 0);
  let x = o.initial;
  let done = 0;
  if (o.dir) mkdirSync(o.dir, { recursive: true });
  if (o.dir && existsSync(join(o.dir, 'state.json'))) {
    ({ round: done, x } = await readDiffemState(o.dir, observations.shape, eStep, {
      kind: kindOf(observations),
      condition: observations.condition ?? 'pinv',
    }));
    if (done > 0) {
      // A finished round's model is its EMA (the raw weights when it kept none, as before EMA was the default).
      const ck = await readCheckpoint(roundFile(o.dir, done, 'safetensors'));
      model.setParams(ck.ema ?? ck.params);
    }
  }
  const rounds: DiffemResult['rounds'] = [];
  for (let k = done + 1; k <= roundCount; k++) {
    if (o.signal?.aborted) return { reconstructions: x, rounds, aborted: true };
    const checkpoint = o.dir
      ? { path: roundFile(o.dir, k, 'safetensors'), every: Math.max(1, Math.floor(o.stepsPerRound / 4)) }
      : undefined;
    const t0 = performance.now();
    const common = {
      model,
      steps: o.stepsPerRound,
      batchSize: o.batchSize,
      optimizer: o.optimizer,
      emaDecay,
      seed: seed + BigInt(k),
      signal: o.signal,
      checkpoint,
      resume: checkpoint && existsSync(checkpoint.path) ? checkpoint.path : undefined,
      onProgress: o.onProgress && ((p: TrainProgress) => o.onProgress!(k, p)),
      progressEvery: Math.max(1, Math.floor(o.stepsPerRound / 20)),
    };
    let trained;
    if (eStep === 'conditional') {
      // Round k's operator draws and noise: a seed of their own per round, so no round reuses another's corruption.
      const corrupted = await corruptWith(x, observations.shape, o.corruption, (seed << 20n) + BigInt(k), {
        condition: observations.condition,
      });
      const pairs: ConditionalPairs = { ...corrupted, x };
      trained = await trainConditional({ ...common, data: pairs, edm: o.edm });
    } else {
      // EM with an unconditional prior: fit it to the current reconstructions as if they were clean.
      trained = await train({ ...common, data: { images: x, shape: [N, C, H, W] }, prediction: 'eps', schedule: PRIOR_SCHEDULE });
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    trained.optimizer.dispose(); // the next round starts a fresh optimiser from these weights
    if (trained.aborted) {
      trained.ema?.dispose();
      return { reconstructions: x, rounds, aborted: true };
    }
    // The round's model is its EMA: the E-step samples with it and the next round starts from it.
    if (trained.ema) model.setParams(await trained.ema.params.toArray());
    trained.ema?.dispose();
    const tail = trained.losses.slice(-Math.max(1, Math.floor(trained.losses.length / 10)));
    const loss = tail.length ? tail.reduce((s, l) => s + l.loss, 0) / tail.length : NaN;
    const t1 = performance.now();
    if (eStep === 'conditional')
      x = await conditionalSample(model, observations, {
        edm: o.edm,
        method: o.sampler?.method,
        steps: o.sampler?.steps,
        batchSize: o.sampler?.batchSize,
        seed: (seed << 20n) + BigInt(k),
        signal: o.signal,
        onBatch: o.onSample && ((done, total) => o.onSample!(k, done, total)),
      });
    else x = await posteriorEStep(model, observations, o, eStep, (seed << 20n) + BigInt(k));
    const round = { round: k, reconstructions: x, loss, trainSeconds, sampleSeconds: (performance.now() - t1) / 1000 };
    if (o.dir) {
      await writeNpy(roundFile(o.dir, k, 'npy'), { shape: [N, C, H, W], data: x });
      await writeFileAtomic(
        join(o.dir, 'state.json'),
        new TextEncoder().encode(
          JSON.stringify({
            format: STATE_FORMAT,
            round: k,
            shape: [N, C, H, W],
            eStep,
            kind: kindOf(observations),
            condition: observations.condition ?? 'pinv',
          }) + '\n',
        ),
      );
    }
    rounds.push({ round: k, loss, trainSeconds, sampleSeconds: round.sampleSeconds });
    await o.onRound?.(round);
  }
  return { reconstructions: x, rounds, aborted: false };
}

/** The schedule of the unconditional prior of the mmps and dps E-steps. */
const PRIOR_SCHEDULE = new NoiseSchedule({ kind: 'linear' });

/** x̂_i ~ p_θ(x | y_i) by a posterior sampler on the unconditional prior (the model's current weights: the round's EMA). */
async function posteriorEStep(
  model: UNet,
  obs: Observations,
  o: DiffemOptions,
  method: 'mmps' | 'dps',
  seed: bigint,
): Promise<Float32Array> {
  const [N, C, H, W] = obs.shape;
  // The operator and the raw measurements: from the set when there is one, else the masks given directly.
  using op = obs.source
    ? obs.source.operator({ device: model.device })
    : new MaskOperator(Uint8Array.from(obs.mask), [N, 1, H, W], [C, H, W], { device: model.device });
  const y = obs.source ? obs.source.measurements : Float32Array.from(obs.y);
  const r = await restore(unetPrior(model, PRIOR_SCHEDULE, 'eps'), op, y, {
    method,
    sigma0: corruptionSpec(o.corruption).sigma0,
    steps: o.sampler?.steps,
    cgIterations: o.sampler?.cgIterations,
    batchSize: o.sampler?.batchSize,
    clip: [-1, 1],
    seed,
    signal: o.signal,
  });
  return r.samples;
}

/**
 * The reconstructions of the last finished round of the run in `dir` (any E-step): the warm start of a
 * DiffEM run from EM-MMPS (its `initial`).
 */
export async function lastReconstructions(dir: string, shape: readonly number[]): Promise<{ round: number; x: Float32Array }> {
  return readDiffemState(dir, shape);
}

/**
 * The state a stopped run left in `dir` (state.json and its round's reconstructions), checked against the
 * observations' shape and, when given, the run's E-step.
 */
export async function readDiffemState(
  dir: string,
  shape: readonly number[],
  eStep?: EStep,
  operator?: { kind: string; condition: string },
): Promise<{ round: number; x: Float32Array }> {
  const path = join(dir, 'state.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`diffem: ${path} is not a DiffEM state file (${(e as Error).message}); remove it to start over`);
  }
  // Any JSON value may be there (a hand-edited or foreign file): check the type before reading a field.
  const state = (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as {
    format?: unknown;
    round?: unknown;
    shape?: unknown;
    eStep?: unknown;
    kind?: unknown;
    condition?: unknown;
  };
  if (state.format !== STATE_FORMAT || !Number.isSafeInteger(state.round) || (state.round as number) < 0)
    throw new Error(`diffem: ${path} is not a DiffEM state file of format ${STATE_FORMAT} with a round number; remove it to start over`);
  if (JSON.stringify(state.shape) !== JSON.stringify(shape))
    throw new Error(
      `diffem: ${path} belongs to a run on data of shape ${Array.isArray(state.shape) ? `[${state.shape.join(', ')}]` : (JSON.stringify(state.shape) ?? 'undefined')}, these observations are [${shape.join(', ')}]`,
    );
  const stored = typeof state.eStep === 'string' ? state.eStep : 'conditional';
  if (eStep !== undefined && stored !== eStep)
    throw new Error(
      `diffem: ${path} belongs to a run with the ${stored} E-step, this one uses ${eStep}; use another directory (or warm-start from its reconstructions)`,
    );
  // State written before other operators were accepted has neither field: a run on masks, conditioned on y.
  const kind = typeof state.kind === 'string' ? state.kind : 'mask';
  const condition = typeof state.condition === 'string' ? state.condition : 'pinv';
  if (operator && (kind !== operator.kind || condition !== operator.condition))
    throw new Error(
      `diffem: ${path} belongs to a run on ${kind} measurements conditioned on ${condition === 'pinv' ? 'A⁺y' : 'Aᵀy'}, these are ${operator.kind} measurements conditioned on ${operator.condition === 'pinv' ? 'A⁺y' : 'Aᵀy'}; use another directory`,
    );
  const round = state.round as number;
  const a = await readNpy(roundFile(dir, round, 'npy'));
  if (a.dtype !== 'float32' || JSON.stringify(a.shape) !== JSON.stringify(shape))
    throw new Error(
      `diffem: ${roundFile(dir, round, 'npy')} holds ${a.dtype} [${a.shape.join(', ')}], expected float32 [${shape.join(', ')}]`,
    );
  return { round, x: a.data as Float32Array };
}
