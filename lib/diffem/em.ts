// The DiffEM loop (docs/diffem.md; seed 004): expectation-maximisation with a conditional diffusion
// model as the posterior. Given observations y_i = m_i ⊙ (x_i + σ n_i) and reconstructions x̂_i from
// round 0 (a Gaussian prior, or any warm start), each round
//   M-step: re-corrupt the reconstructions with fresh masks and noise, ŷ_i ~ Q(· | x̂_i), and train the
//           conditional denoiser d_θ on the pairs (x̂_i, ŷ_i), warm-started from the previous round;
//   E-step: draw one new reconstruction per observation, x̂_i ~ q_θ(· | y_i).
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
import type { Tensor } from '../tensor.ts';
import type { UNet } from '../unet.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import { corruptDataset, type MeasurementSet } from '../corruption/dataset.ts';
import { MaskOperator } from '../corruption/mask.ts';
import { NoiseSchedule } from '../schedule.ts';
import { train } from '../train.ts';
import { unetPrior } from '../restore/denoiser.ts';
import { restore } from '../restore/restore.ts';
import { checkConditionalModel, checkObservations, conditionalSample, trainConditional, type ConditionalPairs, type Observations } from './conditional.ts';
import type { EdmConfig } from './edm.ts';

/** Q(y | x): drop each patch×patch square with probability p, then add N(0, sigma0²) noise to what is kept. */
export interface MaskCorruption {
  p: number;
  patch?: number;
  sigma0: number;
}

/** The observations of a mask measurement set (kintsugi corrupt, or a user's masked images). */
export function observationsOf(set: MeasurementSet): Observations {
  const params = set.params;
  if (params.kind !== 'mask')
    throw new TypeError(`diffem: measurements of kind ${params.kind} are not supported yet; DiffEM here conditions on masked images (kind mask)`);
  const [C, H, W] = set.signalShape as [number, number, number];
  const hw = H * W;
  const mask = new Float32Array(set.count * hw);
  // A per-channel mask is accepted when its channels agree: the model sees one mask channel.
  for (let i = 0; i < set.count; i++)
    for (let j = 0; j < hw; j++) {
      const v = params.mask[i * params.maskChannels * hw + j]!;
      for (let c = 1; c < params.maskChannels; c++)
        if (params.mask[(i * params.maskChannels + c) * hw + j] !== v) throw new RangeError(`diffem: sample ${i} has a mask that differs between channels; DiffEM here takes one mask for all channels`);
      mask[i * hw + j] = v;
    }
  return { shape: [set.count, C, H, W], y: set.measurements, mask };
}

/** ŷ ~ Q(· | x) with fresh masks and noise drawn from `seed`: the M-step's re-corruption (lib/corruption). */
export async function corruptWithMasks(x: Float32Array, shape: readonly [number, number, number, number], q: MaskCorruption, seed: bigint): Promise<Observations> {
  const set = await corruptDataset(x, shape, { corruption: { kind: 'mask', p: q.p, patch: q.patch ?? 1 }, sigma0: q.sigma0, seed, device: 'cpu' });
  return observationsOf(set);
}

/**
 * The E-step's posterior: DiffEM's conditional model (the default), or an unconditional prior with a
 * posterior sampler of lib/restore (EM-MMPS and DPS-EM, Rozet et al. 2024's baselines): then each
 * M-step trains the prior on the reconstructions (denoising score matching, eps-prediction, linear
 * schedule) and the E-step draws x̂_i ~ p_θ(x | y_i) by MMPS or DPS.
 */
export type EStep = 'conditional' | 'mmps' | 'dps';

export interface DiffemOptions {
  /** The UNet trained in place across rounds: conditional (inChannels 2C + 1, outChannels C) for the
   *  conditional E-step, unconditional (C in, C out) for mmps and dps. */
  model: UNet;
  /** Default 'conditional'. */
  eStep?: EStep;
  observations: Observations;
  /** How the observations were made: the M-step re-corrupts with the same law. */
  corruption: MaskCorruption;
  /** Round-0 reconstructions, [N, C, H, W] (e.g. posterior samples of a fitted Gaussian prior). */
  initial: Float32Array;
  rounds: number;
  stepsPerRound: number;
  batchSize: number;
  optimizer?: AdamWOptions;
  /** EMA decay of each round's training (default 0: sample with the trained weights). */
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
  if (!['conditional', 'mmps', 'dps'].includes(eStep)) throw new TypeError(`diffem: eStep: expected conditional, mmps or dps, got ${JSON.stringify(eStep)}`);
  const [N, C, H, W] = observations.shape;
  if (eStep === 'conditional') checkConditionalModel(model, observations.shape, 'diffem');
  else if (model.config.inChannels !== C || model.config.outChannels !== C || model.config.resolution !== H || H !== W)
    throw new TypeError(`diffem: the ${eStep} E-step needs an unconditional UNet for [${C}, ${H}, ${W}] images (inChannels = outChannels = ${C}, resolution ${H}); got inChannels ${model.config.inChannels}, outChannels ${model.config.outChannels}, resolution ${model.config.resolution}`);
  if (o.initial.length !== N * C * H * W) throw new RangeError(`diffem: initial: expected ${N * C * H * W} values ([${observations.shape.join(', ')}]), got ${o.initial.length}`);
  for (const [k, v] of [['rounds', o.rounds], ['stepsPerRound', o.stepsPerRound], ['batchSize', o.batchSize]] as const)
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`diffem: ${k} must be a positive integer, got ${v}`);
  const seed = BigInt(o.seed ?? 0);
  let x = o.initial;
  let done = 0;
  if (o.dir) mkdirSync(o.dir, { recursive: true });
  if (o.dir && existsSync(join(o.dir, 'state.json'))) {
    ({ round: done, x } = await readDiffemState(o.dir, observations.shape, eStep));
    if (done > 0) model.setParams((await readCheckpoint(roundFile(o.dir, done, 'safetensors'))).params);
  }
  const rounds: DiffemResult['rounds'] = [];
  for (let k = done + 1; k <= o.rounds; k++) {
    if (o.signal?.aborted) return { reconstructions: x, rounds, aborted: true };
    const checkpoint = o.dir ? { path: roundFile(o.dir, k, 'safetensors'), every: Math.max(1, Math.floor(o.stepsPerRound / 4)) } : undefined;
    const t0 = performance.now();
    const common = {
      model, steps: o.stepsPerRound, batchSize: o.batchSize, optimizer: o.optimizer, emaDecay: o.emaDecay ?? 0, seed: seed + BigInt(k), signal: o.signal, checkpoint,
      resume: checkpoint && existsSync(checkpoint.path) ? checkpoint.path : undefined,
      onProgress: o.onProgress && ((p: TrainProgress) => o.onProgress!(k, p)),
      progressEvery: Math.max(1, Math.floor(o.stepsPerRound / 20)),
    };
    let trained;
    if (eStep === 'conditional') {
      // Round k's masks and noise: a seed of their own per round, so no round reuses another's corruption.
      const corrupted = await corruptWithMasks(x, observations.shape, o.corruption, (seed << 20n) + BigInt(k));
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
    const tail = trained.losses.slice(-Math.max(1, Math.floor(trained.losses.length / 10)));
    const loss = tail.length ? tail.reduce((s, l) => s + l.loss, 0) / tail.length : NaN;
    const t1 = performance.now();
    if (eStep === 'conditional')
      x = await conditionalSample(model, observations, {
        edm: o.edm, method: o.sampler?.method, steps: o.sampler?.steps, batchSize: o.sampler?.batchSize,
        seed: (seed << 20n) + BigInt(k), params: trained.ema?.params, signal: o.signal,
        onBatch: o.onSample && ((done, total) => o.onSample!(k, done, total)),
      });
    else x = await posteriorEStep(model, observations, o, eStep, (seed << 20n) + BigInt(k), trained.ema?.params);
    trained.ema?.dispose();
    const round = { round: k, reconstructions: x, loss, trainSeconds, sampleSeconds: (performance.now() - t1) / 1000 };
    if (o.dir) {
      await writeNpy(roundFile(o.dir, k, 'npy'), { shape: [N, C, H, W], data: x });
      await writeFileAtomic(join(o.dir, 'state.json'), new TextEncoder().encode(JSON.stringify({ format: STATE_FORMAT, round: k, shape: [N, C, H, W], eStep }) + '\n'));
    }
    rounds.push({ round: k, loss, trainSeconds, sampleSeconds: round.sampleSeconds });
    await o.onRound?.(round);
  }
  return { reconstructions: x, rounds, aborted: false };
}

/** The schedule of the unconditional prior of the mmps and dps E-steps. */
const PRIOR_SCHEDULE = new NoiseSchedule({ kind: 'linear' });

/** x̂_i ~ p_θ(x | y_i) by a posterior sampler on the unconditional prior (the EMA's weights, when given, for the draw only). */
async function posteriorEStep(model: UNet, obs: Observations, o: DiffemOptions, method: 'mmps' | 'dps', seed: bigint, ema?: Tensor): Promise<Float32Array> {
  const [N, C, H, W] = obs.shape;
  const saved = ema ? await model.params.toArray() : undefined;
  if (ema) model.setParams(await ema.toArray());
  using op = new MaskOperator(Uint8Array.from(obs.mask), [N, 1, H, W], [C, H, W], { device: model.device });
  try {
    const r = await restore(unetPrior(model, PRIOR_SCHEDULE, 'eps'), op, Float32Array.from(obs.y), {
      method, sigma0: o.corruption.sigma0, steps: o.sampler?.steps, cgIterations: o.sampler?.cgIterations, batchSize: o.sampler?.batchSize,
      clip: [-1, 1], seed, signal: o.signal,
    });
    return r.samples;
  } finally {
    if (saved) model.setParams(saved);
  }
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
export async function readDiffemState(dir: string, shape: readonly number[], eStep?: EStep): Promise<{ round: number; x: Float32Array }> {
  const path = join(dir, 'state.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`diffem: ${path} is not a DiffEM state file (${(e as Error).message}); remove it to start over`);
  }
  // Any JSON value may be there (a hand-edited or foreign file): check the type before reading a field.
  const state = (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as { format?: unknown; round?: unknown; shape?: unknown; eStep?: unknown };
  if (state.format !== STATE_FORMAT || !Number.isSafeInteger(state.round) || (state.round as number) < 0)
    throw new Error(`diffem: ${path} is not a DiffEM state file of format ${STATE_FORMAT} with a round number; remove it to start over`);
  if (JSON.stringify(state.shape) !== JSON.stringify(shape))
    throw new Error(`diffem: ${path} belongs to a run on data of shape ${Array.isArray(state.shape) ? `[${state.shape.join(', ')}]` : JSON.stringify(state.shape) ?? 'undefined'}, these observations are [${shape.join(', ')}]`);
  const stored = typeof state.eStep === 'string' ? state.eStep : 'conditional';
  if (eStep !== undefined && stored !== eStep)
    throw new Error(`diffem: ${path} belongs to a run with the ${stored} E-step, this one uses ${eStep}; use another directory (or warm-start from its reconstructions)`);
  const round = state.round as number;
  const a = await readNpy(roundFile(dir, round, 'npy'));
  if (a.dtype !== 'float32' || JSON.stringify(a.shape) !== JSON.stringify(shape))
    throw new Error(`diffem: ${roundFile(dir, round, 'npy')} holds ${a.dtype} [${a.shape.join(', ')}], expected float32 [${shape.join(', ')}]`);
  return { round, x: a.data as Float32Array };
}
