// Noisy measurements y = H x + σ0 z, z ~ N(0, I) in measurement space, drawn from Philox on a stream
// of its own. Coordinates that carry no data (measurementMask() = 0: dropped pixels, unsampled
// k-space lines) stay exactly 0: they are placeholders, and Σ† Uᵀ y ignores them anyway.
import { Generator } from '../random.ts';
import { randn, type Tensor } from '../tensor.ts';
import { mul, toSeed, type Degradation } from './operator.ts';

/** The Philox stream of measurement noise ("nois" in ASCII). */
export const NOISE_STREAM = 0x6e6f6973n;

export interface MeasureOptions {
  /** Standard deviation of the measurement noise, >= 0. */
  sigma0: number;
  /** The noise is a pure function of (seed, shape). */
  seed: bigint | number;
}

export function measure(op: Degradation, x: Tensor, options: MeasureOptions): Tensor {
  const sigma0 = options?.sigma0;
  if (typeof sigma0 !== 'number' || !(sigma0 >= 0) || !Number.isFinite(sigma0))
    throw new RangeError(`options.sigma0: expected a finite noise level >= 0, got ${JSON.stringify(sigma0)}`);
  const seed = toSeed(options.seed, 'options.seed');
  const y = op.apply(x);
  if (sigma0 === 0) return y;
  const z = randn(y.shape, { device: op.device, generator: new Generator(seed, { stream: NOISE_STREAM }) });
  const mask = op.measurementMask();
  const kept = mask ? mul(z, mask) : z;
  const noise = kept.scale(sigma0);
  const out = y.add(noise);
  for (const t of [y, z, mask, kept, noise]) t?.dispose();
  return out;
}
