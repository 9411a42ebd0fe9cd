// Samplers: DDPM ancestral, DDIM (eta, any number of steps) and Heun's second-order method on the
// probability-flow ODE. Each works with any denoiser (a UNet, or an analytic one in tests), is batched
// and seeded (noise from a Philox generator: the same seed gives the same samples), and cancellable.
import { resolveDevice } from './device.ts';
import { synchronize } from './memory.ts';
import { Generator } from './random.ts';
import { combine, NoiseSchedule, splitPrediction, type Prediction } from './schedule.ts';
import { randn, tensor, Tensor } from './tensor.ts';
import type { UNet } from './unet.ts';

/** Predicts the target of kind `prediction` for x_t at per-sample times t (float step indices). */
export type Denoiser = (x: Tensor, t: Float32Array) => Tensor;

export interface SampleOptions {
  schedule: NoiseSchedule;
  prediction: Prediction;
  /** [n, c, h, w] of the samples. */
  shape: number[];
  /** Default: defaultDevice(); must be the denoiser's device. */
  device?: string;
  method?: 'ddpm' | 'ddim' | 'heun';
  /** DDIM and Heun: number of steps (default 50); DDPM always takes all T. */
  steps?: number;
  /** DDIM and Heun: how the steps are spread over the schedule (default 'linspace'; see TimestepSpacing). */
  spacing?: TimestepSpacing;
  /** DDIM: 0 deterministic, 1 ancestral (default 0). */
  eta?: number;
  /**
   * Clip each denoised estimate to this range and re-derive the noise from it (default: none). For
   * images in [-1, 1], [-1, 1] keeps an undertrained model's early, wild estimates from blowing up.
   */
  clip?: readonly [number, number];
  generator?: Generator;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/** A UNet as a denoiser; `params` (e.g. an EMA's) replaces the network's own weights. */
export function unetDenoiser(net: UNet, params?: Tensor): Denoiser {
  return (x, t) => {
    const tt = tensor(t, [t.length], { device: net.device });
    const out = net.predict(x, tt, { params });
    tt.dispose();
    return out;
  };
}

/**
 * How a sampler with fewer steps than the schedule picks its time steps, named as diffusers names them
 * (docs/guide.md, "Timestep spacing"): for T = 1000 and 10 steps,
 * - 'linspace': round(i (T−1)/(N−1)), 0, 111, ..., 999 (both ends of the schedule);
 * - 'leading': i ⌊T/N⌋, 0, 100, ..., 900 (the DDIM paper's; never visits the last, noisiest steps);
 * - 'trailing': round(T − i T/N) − 1, 99, 199, ..., 999 (starts at T−1, skips the first T/N − 1 steps).
 */
export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['linspace', 'leading', 'trailing'];

/** numpy's rounding: half to even (diffusers rounds its trailing grid with np.round). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `count` step indices in [0, T−1], ascending, spaced as `spacing` says (default 'linspace'). */
export function timesteps(T: number, count: number, spacing: TimestepSpacing = 'linspace'): number[] {
  if (!Number.isInteger(count) || count < 1 || count > T) throw new RangeError(`steps: expected an integer in [1, ${T}], got ${count}`);
  if (spacing === 'linspace')
    return Array.from({ length: count }, (_, i) => (count === 1 ? T - 1 : Math.round((i * (T - 1)) / (count - 1))));
  if (spacing === 'leading') {
    const ratio = Math.floor(T / count);
    return Array.from({ length: count }, (_, i) => i * ratio);
  }
  if (spacing === 'trailing') {
    // diffusers: np.round(np.arange(T, 0, -T / N)) - 1, reversed to ascending.
    const ratio = T / count;
    return Array.from({ length: count }, (_, i) => roundHalfEven(T - (count - 1 - i) * ratio) - 1);
  }
  throw new RangeError(`spacing: expected ${TIMESTEP_SPACINGS.join(', ')}, got ${JSON.stringify(spacing)}`);
}

// Keeps the queue a few steps deep: each step allocates at enqueue time, so running far ahead of the
// device would hold many steps' memory at once.
export const IN_FLIGHT = 4;

export async function sample(denoiser: Denoiser, options: SampleOptions): Promise<Tensor> {
  const { schedule, prediction, shape } = options;
  const method = options.method ?? 'ddim';
  const device = resolveDevice(options.device);
  const generator = options.generator ?? new Generator(0);
  const eta = options.eta ?? 0;
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`eta: expected a number in [0, 1], got ${eta}`);
  const n = shape[0]!;
  const ab = schedule.alphaBars;
  const grid =
    method === 'ddpm'
      ? timesteps(schedule.steps, schedule.steps)
      : timesteps(schedule.steps, options.steps ?? 50, options.spacing ?? 'linspace');
  const same = (v: number) => new Array<number>(n).fill(v);
  const predict = (x: Tensor, t: number) => {
    const pred = denoiser(x, new Float32Array(n).fill(t));
    const parts = splitPrediction(prediction, x, pred, same(ab[t]!));
    pred.dispose();
    if (!options.clip) return parts;
    const x0 = parts.x0.clamp(options.clip[0], options.clip[1]);
    // eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar), consistent with the clipped x0
    const eps = combine([
      [x, same(1 / Math.sqrt(1 - ab[t]!))],
      [x0, same(-Math.sqrt(ab[t]!) / Math.sqrt(1 - ab[t]!))],
    ]);
    parts.x0.dispose();
    parts.eps.dispose();
    return { x0, eps };
  };

  let x = randn(shape, { generator, device });
  for (let i = grid.length - 1; i >= 0; i--) {
    if (options.signal?.aborted) {
      x.dispose(); // cancelled part-way: the current sample goes now, not at the next garbage collection
      options.signal.throwIfAborted();
    }
    const t = grid[i]!;
    const prev = i > 0 ? grid[i - 1]! : -1;
    const abT = ab[t]!;
    const abPrev = prev >= 0 ? ab[prev]! : 1;
    const { x0, eps } = predict(x, t);
    let next: Tensor;
    if (method === 'heun' && prev >= 0) {
      // Probability-flow ODE in y = x / sqrt(abar), s = sqrt((1 - abar) / abar): dy/ds = eps.
      const sT = Math.sqrt((1 - abT) / abT);
      const sP = Math.sqrt((1 - abPrev) / abPrev);
      const euler = combine([
        [x, same(Math.sqrt(abPrev / abT))],
        [eps, same(Math.sqrt(abPrev) * (sP - sT))],
      ]);
      const second = predict(euler, prev);
      next = combine([
        [x, same(Math.sqrt(abPrev / abT))],
        [eps, same((Math.sqrt(abPrev) * (sP - sT)) / 2)],
        [second.eps, same((Math.sqrt(abPrev) * (sP - sT)) / 2)],
      ]);
      for (const u of [euler, second.x0, second.eps]) u.dispose();
    } else if (prev < 0) {
      next = x0.clone(); // the last step lands on the denoised estimate
    } else {
      // DDIM (DDPM is DDIM over every step with eta = 1): sigma^2 is eta^2 times the posterior variance.
      const sigma = (method === 'ddpm' ? 1 : eta) * Math.sqrt(((1 - abPrev) / (1 - abT)) * (1 - abT / abPrev));
      const dir = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
      if (sigma > 0) {
        const z = randn(shape, { generator, device });
        next = combine([
          [x0, same(Math.sqrt(abPrev))],
          [eps, same(dir)],
          [z, same(sigma)],
        ]);
        z.dispose();
      } else {
        next = combine([
          [x0, same(Math.sqrt(abPrev))],
          [eps, same(dir)],
        ]);
      }
    }
    for (const u of [x, x0, eps]) u.dispose();
    x = next;
    options.onStep?.(grid.length - i, grid.length);
    if ((grid.length - i) % IN_FLIGHT === 0) await synchronize(device);
  }
  await synchronize(device);
  return x;
}
