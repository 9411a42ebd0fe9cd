// GSURE-Diffusion training (docs/methods.md §2, docs/gsure.md): a UNet learns the clean distribution
// from a MeasurementSet alone. Each step draws a batch of measurements, moves them into the SVD domain
// of their operators (ȳ = Σ†Uᵀy), and runs gsureStep (noising, the network on x_t and on the probe
// shifts, the loss terms, ordinary backward passes) inside the shared training loop (progress,
// checkpoints, exact resume, abort). The weights w² = 1/E[P] of the loss are the observation
// frequencies of each SVD coordinate over the whole set (density compensation: for random masks with
// drop rate p this is 1/(1−p) up to sampling error; for a fixed operator it is 1). A coordinate that no
// sample observes has no weight at all, so a set with such coordinates is refused (checkObserved) unless
// the caller asks for a model of the observed subspace only.
import { philoxIntegers } from '../random.ts';
import { NoiseSchedule } from '../schedule.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from '../training-loop.ts';
import type { MeasurementSet } from '../corruption/dataset.ts';
import { gsureStep, type GsureBatch, type GsureOptions } from './step.ts';

export interface GsureTrainOptions extends LoopOptions {
  measurements: MeasurementSet;
  /**
   * Default: a linear schedule with β_1 = max(1e-4, vMax) (β_1 = σ0² for masks, as the official
   * configurations choose): the first step then adds more than the measurement noise everywhere
   * (D ≥ vMax² at t = 0), so every t is usable.
   */
  schedule?: NoiseSchedule;
  seed?: bigint | number;
  /** Hutchinson probes per sample, finite-difference step and scheme, loss variant, Λ, first t (gsureStep). */
  gsure?: Pick<GsureOptions, 'probes' | 'eps' | 'difference' | 'variant' | 'lambda' | 'minT' | 'maxT'>;
  /**
   * Train although some SVD coordinates are observed by no sample (default false: refused, see
   * checkObserved). The loss gives those coordinates weight 0, so the model is then one of the
   * observed subspace only: its output there means nothing.
   */
  observedSubspaceOnly?: boolean;
}

/** Observation statistics of a measurement set in the SVD domain (computed once per training). */
export interface SvdStatistics {
  /** Per SVD coordinate of one sample: the fraction of samples that observe it. */
  frequency: Float64Array;
  /** max over the set of σ0² / s² on observed coordinates (σ0² for masks, σ0² k² for block averaging). */
  vMax: number;
}

const CHUNK = 512;

async function singularValuesOf(set: MeasurementSet, rows: number[]): Promise<Float32Array> {
  const op = set.operator({ indices: rows, device: 'cpu' });
  try {
    const s = op.singularValues();
    const values = await s.toArray();
    s.dispose();
    return values;
  } finally {
    op.dispose();
  }
}

export async function svdStatistics(set: MeasurementSet): Promise<SvdStatistics> {
  const per = set.signalShape.reduce((a, b) => a * b, 1);
  const count = new Float64Array(per);
  let sMin = Infinity;
  for (let start = 0; start < set.count; start += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, set.count - start) }, (_, i) => start + i);
    const s = await singularValuesOf(set, rows);
    if (s.length !== rows.length * per)
      throw new Error(`gsure: the operator gave ${s.length} singular values for ${rows.length} samples of ${per} coordinates`);
    for (let i = 0; i < s.length; i++) {
      const v = s[i]!;
      if (v > 0) {
        count[i % per]! += 1;
        if (v < sMin) sMin = v;
      }
    }
  }
  if (sMin === Infinity) throw new Error('gsure: the measurement set observes nothing (every singular value is 0)');
  const frequency = count.map((c) => c / set.count);
  return { frequency, vMax: (set.sigma0 * set.sigma0) / (sMin * sMin) };
}

/** What a set that leaves coordinates unobserved would need, per operator kind (for the refusal). */
const REMEDY: Record<string, string> = {
  mask: 'draw a random mask per image (e.g. --corruption mask:patch=4,p=0.4) rather than one mask shared by every image, so that every pixel is kept in some images',
  blockaverage:
    'block averaging with one k observes only the block means, never the detail inside a block: mix in measurements that see it (other operators, some full images), or use random per-image masks',
  fourier:
    'draw random k-space lines per sample (e.g. --corruption fourier:center=8,random=8) so that every row is acquired in some samples',
};

/** Coordinates (per sample, in the SVD domain) that no sample of the set observes. */
export function unobservedCoordinates(stats: SvdStatistics): number {
  let n = 0;
  for (const f of stats.frequency) if (f === 0) n++;
  return n;
}

/**
 * Refuses a set that never observes some SVD coordinates (docs/gsure.md, "What GSURE can learn"): the
 * loss is blind there (weight 1/E[P] with E[P] = 0 is taken as 0), so training would silently produce
 * whatever the network happens to output on them. `observedSubspaceOnly` accepts it knowingly.
 */
export function checkObserved(
  set: MeasurementSet,
  stats: SvdStatistics,
  options: { observedSubspaceOnly?: boolean; optIn?: string } = {},
): void {
  const missing = unobservedCoordinates(stats);
  if (missing === 0 || options.observedSubspaceOnly) return;
  const per = stats.frequency.length;
  throw new RangeError(
    `gsure: ${missing} of the ${per} coordinates of a sample (in the operator's SVD domain) are never observed by any of the ${set.count} ` +
      `${set.kind} measurements, so the loss says nothing about them and the model would be garbage there. To learn the whole ` +
      `distribution, ${REMEDY[set.kind] ?? 'vary the operators between samples so that every coordinate is observed by some'}. ` +
      `To train a model of the observed subspace only, opt in with ${options.optIn ?? 'observedSubspaceOnly: true'}.`,
  );
}

/**
 * One training batch of `set` in the SVD domain on `device`: ȳ, the weights c = P/E[P] and the
 * variances v = P σ0²/s², and the operator's V as the basis (none for masks, where V = I). The
 * caller disposes of `dispose`.
 */
export async function gsureBatch(
  set: MeasurementSet,
  indices: number[],
  stats: SvdStatistics,
  device: string,
): Promise<{ batch: GsureBatch; dispose: () => void }> {
  const per = stats.frequency.length;
  // The singular values are needed on the host (weights and variances). On the CPU the batch's own
  // operator gives them (building a second operator cost as much as the rest of the batch); on a GPU
  // a CPU operator does, so that reading them does not wait for the GPU's queued work.
  const { y, op } = set.batch(indices, { device });
  let s: Float32Array;
  try {
    if (op.device === 'cpu') {
      const sv = op.singularValues();
      s = await sv.toArray().finally(() => sv.dispose());
    } else s = await singularValuesOf(set, indices);
  } catch (e) {
    y.dispose();
    op.dispose();
    throw e;
  }
  const weight = new Float32Array(s.length);
  const variance = new Float32Array(s.length);
  const s02 = set.sigma0 * set.sigma0;
  for (let i = 0; i < s.length; i++) {
    const si = s[i]!;
    if (si > 0) {
      weight[i] = 1 / stats.frequency[i % per]!;
      variance[i] = s02 / (si * si);
    }
  }
  const ybar = op.toSvd(y);
  y.dispose();
  const shape = [indices.length, ...set.signalShape];
  const w = tensor(weight, shape, { device });
  const v = tensor(variance, shape, { device });
  const identity = set.kind === 'mask';
  return {
    batch: {
      ybar,
      weight: w,
      variance: v,
      vMax: stats.vMax,
      sigma0: set.sigma0,
      basis: identity ? undefined : { v: (x: Tensor) => op.v(x), vt: (x: Tensor) => op.vt(x) },
    },
    dispose: () => {
      for (const t of [ybar, w, v]) t.dispose();
      op.dispose();
    },
  };
}

/** The default GSURE schedule for a measurement set's noise (see GsureTrainOptions.schedule). */
export function gsureSchedule(vMax: number): NoiseSchedule {
  const beta1 = Math.max(1e-4, vMax);
  if (!(beta1 < 0.5))
    throw new RangeError(`gsure: measurement noise of variance ${vMax} leaves no usable diffusion schedule (beta1 would be ${beta1})`);
  return new NoiseSchedule({ kind: 'linear', beta1, betaT: Math.max(0.02, beta1) });
}

export async function trainGsure(options: GsureTrainOptions): Promise<TrainResult> {
  const { model, measurements: set, batchSize } = options;
  const cfg = model.config;
  const [C, H, W] = set.signalShape as [number, number, number];
  if (C !== cfg.inChannels || C !== cfg.outChannels || H !== cfg.resolution || W !== cfg.resolution)
    throw new TypeError(
      `trainGsure: signals of shape [${C}, ${H}, ${W}] do not fit the model (in ${cfg.inChannels}, out ${cfg.outChannels} channels at ${cfg.resolution}x${cfg.resolution})`,
    );
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`trainGsure: batchSize must be a positive integer, got ${batchSize}`);
  const stats = await svdStatistics(set);
  checkObserved(set, stats, { observedSubspaceOnly: options.observedSubspaceOnly });
  const schedule = options.schedule ?? gsureSchedule(stats.vMax);
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  return trainingLoop(options, { prediction: 'x0', schedule: schedule.toJSON() }, async (step) => {
    // Stream 4s draws the batch; gsureStep uses 4s + 1 .. 4s + 3 (GSURE_STREAMS_PER_STEP).
    const indices = Array.from(philoxIntegers(batchSize, set.count, seed, BigInt(step) * 4n));
    const { batch, dispose } = await gsureBatch(set, indices, stats, device);
    try {
      const r = await gsureStep(model, batch, { ...options.gsure, schedule, seed, step, prediction: 'x0' });
      return { loss: r.values.then((v) => v.loss) };
    } finally {
      dispose(); // queued work keeps what it still needs
    }
  });
}
