// Ambient Diffusion training (Daras et al. 2023; docs/methods.md §3, docs/ambient.md): from masked
// images only. Each step takes a batch of measurements y = A x0 (+ noise) with their masks A, corrupts
// the masks further, Ã = A ⊙ B, noises, and asks the network, which sees only concat(Ã ⊙ x_t, Ã), to
// predict x0 on every pixel A observed: loss (1/n) Σ_i A_i (h_i − y_i)². Pixels of A \ Ã are never in
// the input, so the network must predict them from the rest: the optimum is E[x0 | Ã x_t, Ã] on
// every pixel that has a positive chance of being in A given Ã (all of them, for δ > 0).
import { native } from '../native.ts';
import { philoxIntegers } from '../random.ts';
import { seededNormals } from '../metrics/normals.ts';
import { combine, NoiseSchedule } from '../schedule.ts';
import { tensor, zeros, type Tensor } from '../tensor.ts';
import { mul } from '../corruption/operator.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from '../training-loop.ts';
import type { MeasurementSet } from '../corruption/dataset.ts';
import { checkFurther, furtherCorrupt, type FurtherCorruption } from './masks.ts';

/** Default further drop probability, as in methods.md §3 and the paper's masked experiments. */
export const DEFAULT_AMBIENT_DELTA = 0.1;
const STREAMS_PER_STEP = 4n;

/** The law of the sampling masks: A's (drop p in patches of maskPatch) and the further B's. */
export interface AmbientMaskLaw {
  p: number;
  maskPatch: number;
  delta: number;
  patch: number;
}

export interface AmbientTrainOptions extends LoopOptions {
  /** Masked images (kind "mask"); other operators are refused. */
  measurements: MeasurementSet;
  /** Default: linear, β from 1e-4 to 0.02 over 1,000 steps. */
  schedule?: NoiseSchedule;
  seed?: bigint | number;
  /** The further corruption (default δ = 0.1, pixels). */
  ambient?: Partial<FurtherCorruption>;
}

/** One step's host-side batch: the network's input, the targets y and the masks A over every channel. */
export interface AmbientBatch {
  /** concat(Ã ⊙ x_t, Ã): [n, 2C, H, W]. */
  input: Float32Array;
  /** y = A x0 (+ noise): [n, C, H, W]. */
  y: Float32Array;
  /** A as 0/1 floats: [n, C, H, W]. */
  observed: Float32Array;
  /** Ã, as 0/1 floats: [n, C, H, W]. */
  further: Float32Array;
}

/** Checks that a measurement set is one Ambient Diffusion takes (masks) and returns its shape. */
export function ambientShape(set: MeasurementSet): [number, number, number] {
  if (set.kind !== 'mask')
    throw new TypeError(
      `ambient: Ambient Diffusion learns from masked images (measurements of kind "mask"), got "${set.kind}": use GSURE (--method gsure) for block averaging or k-space data`,
    );
  return set.signalShape as [number, number, number];
}

/**
 * The batch of rows `indices` at time steps `ts`: further masks from stream `stream + 1`, noise ε from
 * `stream` (n·C·H·W normals), x_t = √ᾱ y + √(1 − ᾱ) ε (only Ã ⊙ x_t is used, where y = x0 + noise).
 */
export function ambientBatch(
  set: MeasurementSet,
  indices: ArrayLike<number>,
  ts: ArrayLike<number>,
  o: { schedule: NoiseSchedule; seed: bigint; stream: bigint; further: FurtherCorruption },
): AmbientBatch {
  const [C, H, W] = ambientShape(set);
  const { mask, maskChannels: mc } = set.params as { mask: Uint8Array; maskChannels: number };
  const n = indices.length;
  const hw = H * W;
  const per = C * hw;
  const a = new Uint8Array(n * mc * hw);
  for (let b = 0; b < n; b++) a.set(mask.subarray(indices[b]! * mc * hw, (indices[b]! + 1) * mc * hw), b * mc * hw);
  const at = furtherCorrupt(a, n * mc, H, W, o.further, o.seed, o.stream + 1n);
  const eps = seededNormals(n * per, o.seed, o.stream);
  const input = new Float32Array(n * 2 * per);
  const y = new Float32Array(n * per);
  const observed = new Float32Array(n * per);
  const further = new Float32Array(n * per);
  for (let b = 0; b < n; b++) {
    const ab = o.schedule.alphaBars[ts[b]!]!;
    const [sa, sb] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
    const row = indices[b]!;
    for (let c = 0; c < C; c++)
      for (let i = 0; i < hw; i++) {
        const m = (b * mc + (mc === 1 ? 0 : c)) * hw + i; // A is shared by the channels when mc = 1
        const k = b * per + c * hw + i;
        const v = set.measurements[row * per + c * hw + i]!;
        y[k] = v;
        observed[k] = a[m]!;
        further[k] = at[m]!;
        input[b * 2 * per + c * hw + i] = at[m]! ? sa * v + sb * eps[k]! : 0;
        input[b * 2 * per + per + c * hw + i] = at[m]!;
      }
  }
  return { input, y, observed, further };
}

/**
 * The gradient of the batch-mean loss (1/n) Σ_i A_i (out_i − y_i)² with respect to `out`, and the loss
 * once computed (the caller disposes of `gout`).
 */
export function ambientLoss(out: Tensor, y: Tensor, observed: Tensor): { gout: Tensor; loss: Promise<number> } {
  const B = out.shape[0]!;
  const scale = 2 / out.numel;
  const diff = combine([
    [out, new Array(B).fill(scale)],
    [y, new Array(B).fill(-scale)],
  ]);
  let gout: Tensor | undefined;
  let sumsq: Tensor | undefined;
  try {
    gout = mul(diff, observed);
    sumsq = zeros([1], { device: out.device });
    native.sumSquares(gout.handle(), sumsq.handle());
  } catch (e) {
    gout?.dispose();
    sumsq?.dispose();
    throw e;
  } finally {
    diff.dispose();
  }
  const loss = sumsq.toArray().then((v) => {
    sumsq.dispose();
    return v[0]! / (scale * scale * out.numel);
  });
  return { gout, loss };
}

/** The law of A for sampling: the corruption spec the set was made with, else its measured drop rate on pixels. */
export function ambientMaskLaw(set: MeasurementSet, further: FurtherCorruption): AmbientMaskLaw {
  const [, H, W] = ambientShape(set);
  const patch = checkFurther(further, H, W);
  const spec = set.provenance.corruption as { kind?: string; p?: number; patch?: number } | undefined;
  if (spec?.kind === 'mask' && typeof spec.p === 'number') return { p: spec.p, maskPatch: spec.patch ?? 1, delta: further.delta, patch };
  const { mask } = set.params as { mask: Uint8Array };
  let kept = 0;
  for (const v of mask) kept += v;
  return { p: 1 - kept / mask.length, maskPatch: 1, delta: further.delta, patch };
}

export async function trainAmbient(options: AmbientTrainOptions): Promise<TrainResult> {
  const { model, measurements: set, batchSize } = options;
  const cfg = model.config;
  const [C, H, W] = ambientShape(set);
  if (cfg.inChannels !== 2 * C || cfg.outChannels !== C || cfg.resolution !== H || H !== W)
    throw new TypeError(
      `trainAmbient: images [${C}, ${H}, ${W}] need a model with ${2 * C} input channels (the masked image and its mask), ${C} output channels, ` +
        `at ${H}x${W}; got in ${cfg.inChannels}, out ${cfg.outChannels} at ${cfg.resolution}x${cfg.resolution}`,
    );
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`trainAmbient: batchSize must be a positive integer, got ${batchSize}`);
  const further: FurtherCorruption = { delta: options.ambient?.delta ?? DEFAULT_AMBIENT_DELTA, patch: options.ambient?.patch ?? 1 };
  checkFurther(further, H, W);
  const law = ambientMaskLaw(set, further);
  const schedule = options.schedule ?? new NoiseSchedule({ kind: 'linear' });
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  const meta = { prediction: 'x0' as const, schedule: schedule.toJSON(), metadata: { ambient: JSON.stringify(law) } };
  return trainingLoop(options, meta, (step) => {
    // Streams 4s (rows), 4s + 1 (t), 4s + 2 (ε), 4s + 3 (the further masks).
    const base = BigInt(step) * STREAMS_PER_STEP;
    const indices = philoxIntegers(batchSize, set.count, seed, base);
    const ts = philoxIntegers(batchSize, schedule.steps, seed, base + 1n);
    const batch = ambientBatch(set, indices, ts, { schedule, seed, stream: base + 2n, further });
    const made: { dispose(): void }[] = [];
    const keep = <T extends { dispose(): void }>(x: T): T => (made.push(x), x);
    try {
      const input = keep(tensor(batch.input, [batchSize, 2 * C, H, W], { device }));
      const y = keep(tensor(batch.y, [batchSize, C, H, W], { device }));
      const a = keep(tensor(batch.observed, [batchSize, C, H, W], { device }));
      const t = keep(tensor(Float32Array.from(ts), [batchSize], { device }));
      const { out, tape } = model.forward(input, t);
      made.push(out, { dispose: () => tape.release() });
      const { gout, loss } = ambientLoss(out, y, a);
      keep(gout);
      model.backward(tape, gout);
      return { loss };
    } finally {
      for (const u of made) u.dispose(); // queued work keeps what it still needs
    }
  });
}
