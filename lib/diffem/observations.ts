// What DiffEM's conditional denoiser sees of a measurement y = A x + σ0 z, for any operator of
// lib/corruption (docs/diffem.md, "Operators"): an image-shaped condition (A⁺y, or Aᵀy) and one channel
// describing the operator. The condition puts the measurement where the image is, so one UNet
// architecture (inChannels 2C + 1) serves masks, block averaging and subsampled Fourier alike:
//   mask          A⁺y = Aᵀy = y (zeros where dropped);    channel: the mask (1 observed, 0 dropped)
//   blockaverage  A⁺y = each block mean over its block,  channel: the constant 1/k (the singular value)
//                 Aᵀy = that divided by k²;
//   fourier       A⁺y = Aᵀy = the zero-filled inverse FFT; channel: the sampled k-space rows (row r of the
//                 channel is 1 when k-space row r was sampled)
// For masks this is exactly what the model saw before other operators were accepted, so older runs and
// checkpoints keep their meaning.
import { corruptDataset, type CorruptionSpec, type MeasurementSet } from '../corruption/dataset.ts';
import type { DegradationKind } from '../corruption/operator.ts';
import type { Observations } from './conditional.ts';

/** The image-space form of the measurement the model is conditioned on. */
export type ConditionKind = 'pinv' | 'adjoint';

/** Q(y | x) of the masks of the first DiffEM version: drop each patch×patch square with probability p, then add N(0, sigma0²) noise. */
export interface MaskCorruption {
  p: number;
  patch?: number;
  sigma0: number;
}

/** Q(y | x) for any operator of lib/corruption: its law (fresh masks or k-space lines per draw) and the noise. */
export type OperatorCorruption = CorruptionSpec & { sigma0: number };

/** How the observations were made; the M-step re-corrupts with the same law. A law without `kind` is a mask law. */
export type DiffemCorruption = MaskCorruption | OperatorCorruption;

/** The CorruptionSpec and σ0 of a law (a MaskCorruption is a mask spec). */
export function corruptionSpec(q: DiffemCorruption): { spec: CorruptionSpec; sigma0: number } {
  if (q === null || typeof q !== 'object')
    throw new TypeError(`corruption: expected an object such as {kind: "mask", p: 0.75, sigma0: 0.01}, got ${String(q)}`);
  const sigma0 = q.sigma0;
  if (typeof sigma0 !== 'number' || !(sigma0 >= 0) || !Number.isFinite(sigma0))
    throw new RangeError(`corruption.sigma0: expected a finite noise level >= 0, got ${JSON.stringify(sigma0)}`);
  if (!('kind' in q) || q.kind === undefined)
    return { spec: { kind: 'mask', p: (q as MaskCorruption).p, patch: (q as MaskCorruption).patch ?? 1 }, sigma0 };
  const { sigma0: _, ...spec } = q as OperatorCorruption;
  return { spec: spec as CorruptionSpec, sigma0 };
}

export interface ObservationOptions {
  /** 'pinv' (default): A⁺y; 'adjoint': Aᵀy. They differ only for block averaging (by the factor k²). */
  condition?: ConditionKind;
}

/** Rows per device call when the condition is computed. */
const CHUNK = 512;

/**
 * The observations of any measurement set, as the conditional model takes them: the condition image
 * [N, C, H, W] and the operator's channel [N, 1, H, W], with the set kept as `source` (the mmps and dps
 * E-steps and round 0 use its operator).
 */
export async function observationsFrom(set: MeasurementSet, options: ObservationOptions = {}): Promise<Observations> {
  const condition = options.condition ?? 'pinv';
  if (condition !== 'pinv' && condition !== 'adjoint')
    throw new TypeError(`condition: expected "pinv" or "adjoint", got ${JSON.stringify(condition)}`);
  const [C, H, W] = set.signalShape as [number, number, number];
  const N = set.count;
  const hw = H * W;
  const per = C * hw;
  const y = new Float32Array(N * per);
  for (let start = 0; start < N; start += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, N - start) }, (_, k) => start + k);
    const { y: m, op } = set.batch(rows, { device: 'cpu' });
    const x = condition === 'pinv' ? op.pinv(m) : op.adjoint(m);
    y.set(await x.toArray(), start * per);
    for (const u of [x, m, op]) u.dispose();
  }
  const channel = new Float32Array(N * hw);
  const p = set.params;
  if (p.kind === 'mask') {
    // One channel: a per-channel mask is accepted when its channels agree.
    for (let i = 0; i < N; i++)
      for (let j = 0; j < hw; j++) {
        const v = p.mask[i * p.maskChannels * hw + j]!;
        for (let c = 1; c < p.maskChannels; c++)
          if (p.mask[(i * p.maskChannels + c) * hw + j] !== v)
            throw new RangeError(
              `diffem: sample ${i} has a mask that differs between channels; DiffEM here takes one mask for all channels`,
            );
        channel[i * hw + j] = v;
      }
  } else if (p.kind === 'fourier') {
    for (let i = 0; i < N; i++) for (let r = 0; r < H; r++) if (p.lines[i * H + r]) channel.fill(1, i * hw + r * W, i * hw + (r + 1) * W);
  } else channel.fill(1 / p.k);
  return { shape: [N, C, H, W], y, mask: channel, source: set, condition, kind: p.kind };
}

/**
 * ŷ ~ Q(· | x) with fresh operator parameters (masks, k-space lines) and noise drawn from `seed`: the
 * M-step's re-corruption, through lib/corruption's corruptDataset. Fourier signals are [2, H, W].
 */
export async function corruptWith(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  q: DiffemCorruption,
  seed: bigint,
  options: ObservationOptions = {},
): Promise<Observations> {
  const { spec, sigma0 } = corruptionSpec(q);
  const set = await corruptDataset(x, shape, { corruption: spec, sigma0, seed, device: 'cpu' });
  if (JSON.stringify(set.signalShape) !== JSON.stringify(shape.slice(1)))
    throw new RangeError(
      `diffem: a ${spec.kind} corruption turns [${shape.slice(1).join(', ')}] signals into [${set.signalShape.join(', ')}]; give DiffEM the signals in that shape (fourier: [2, H, W])`,
    );
  return observationsFrom(set, options);
}

/** The kind an observation set was made with ('mask' when given directly as {shape, y, mask}). */
export const kindOf = (o: Observations): DegradationKind => o.kind ?? 'mask';
