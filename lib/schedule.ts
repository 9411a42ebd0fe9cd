// Noise schedules and prediction targets of DDPM-style diffusion (docs/methods.md §1):
// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t = 0 .. T-1 (the UNet sees t as a float).
// Every conversion between targets lives here, as per-sample combinations on the device.
import { native } from './native.ts';
import { tensor, Tensor } from './tensor.ts';

export type Prediction = 'eps' | 'x0' | 'v';

export interface ScheduleConfig {
  kind: 'linear' | 'cosine';
  /** Number of diffusion steps T (default 1000). */
  steps?: number;
  /** Linear schedule: beta of the first step (default 1e-4) and of the last (default 0.02). */
  beta1?: number;
  betaT?: number;
  /** Cosine schedule offset s (default 0.008, Nichol & Dhariwal). */
  offset?: number;
}

export class NoiseSchedule {
  readonly config: Readonly<Required<ScheduleConfig>>;
  readonly betas: Float64Array;
  /** abar_t = prod_{s <= t} (1 - beta_s). */
  readonly alphaBars: Float64Array;

  constructor(config: ScheduleConfig = { kind: 'linear' }) {
    const c: Required<ScheduleConfig> = {
      kind: config.kind,
      steps: config.steps ?? 1000,
      beta1: config.beta1 ?? 1e-4,
      betaT: config.betaT ?? 0.02,
      offset: config.offset ?? 0.008,
    };
    if (c.kind !== 'linear' && c.kind !== 'cosine')
      throw new TypeError(`schedule: kind must be "linear" or "cosine", got ${JSON.stringify(c.kind)}`);
    if (!Number.isInteger(c.steps) || c.steps < 2) throw new RangeError(`schedule: steps must be an integer >= 2, got ${c.steps}`);
    if (!(c.beta1 > 0 && c.beta1 <= c.betaT && c.betaT < 1))
      throw new RangeError(`schedule: need 0 < beta1 <= betaT < 1, got ${c.beta1}, ${c.betaT}`);
    this.config = Object.freeze(c);
    const T = c.steps;
    this.betas = new Float64Array(T);
    this.alphaBars = new Float64Array(T);
    if (c.kind === 'linear') {
      for (let t = 0; t < T; t++) this.betas[t] = c.beta1 + ((c.betaT - c.beta1) * t) / (T - 1);
    } else {
      const f = (u: number) => Math.cos(((u / T + c.offset) / (1 + c.offset)) * (Math.PI / 2)) ** 2;
      for (let t = 0; t < T; t++) this.betas[t] = Math.min(1 - f(t + 1) / f(t), 0.999);
    }
    let ab = 1;
    for (let t = 0; t < T; t++) this.alphaBars[t] = ab *= 1 - this.betas[t]!;
  }

  get steps(): number {
    return this.config.steps;
  }

  toJSON(): Required<ScheduleConfig> {
    return { ...this.config };
  }
}

/** Per-sample coefficients as a [n] tensor on `device`. */
export function coefficients(values: ArrayLike<number>, device: string): Tensor {
  return tensor(Float32Array.from(values), [values.length], { device });
}

/** out[b] = sum_k c_k[b] x_k[b] for 1 to 3 terms; coefficients are host numbers per sample. */
export function combine(terms: [Tensor, ArrayLike<number>][]): Tensor {
  const first = terms[0]![0];
  const coefs = terms.map(([, c]) => coefficients(c, first.device));
  try {
    const out = new Tensor(native.empty(first.device, first.shape));
    native.combine(
      out.handle(),
      terms.flatMap(([x], k) => [x.handle(`x${k}`), coefs[k]!.handle()]),
    );
    return out;
  } finally {
    for (const c of coefs) c.dispose(); // queued work keeps them until it has run
  }
}

const perSample = (ab: ArrayLike<number>, f: (a: number) => number) => Array.from(ab, f);

/** The training target for x0, eps at per-sample abar. */
export function targetOf(prediction: Prediction, x0: Tensor, eps: Tensor, alphaBar: ArrayLike<number>): Tensor {
  if (prediction === 'eps') return eps.clone();
  if (prediction === 'x0') return x0.clone();
  // v = sqrt(abar) eps - sqrt(1 - abar) x0
  return combine([
    [eps, perSample(alphaBar, Math.sqrt)],
    [x0, perSample(alphaBar, (a) => -Math.sqrt(1 - a))],
  ]);
}

/** x0 and eps implied by a prediction of `prediction` at x_t. */
export function splitPrediction(
  prediction: Prediction,
  xt: Tensor,
  pred: Tensor,
  alphaBar: ArrayLike<number>,
): { x0: Tensor; eps: Tensor } {
  const s = perSample(alphaBar, Math.sqrt);
  const r = perSample(alphaBar, (a) => Math.sqrt(1 - a));
  if (prediction === 'eps')
    return {
      eps: pred.clone(),
      x0: combine([
        [xt, s.map((v) => 1 / v)],
        [pred, r.map((v, b) => -v / s[b]!)],
      ]),
    };
  if (prediction === 'x0')
    return {
      x0: pred.clone(),
      eps: combine([
        [xt, r.map((v) => 1 / v)],
        [pred, s.map((v, b) => -v / r[b]!)],
      ]),
    };
  return {
    x0: combine([
      [xt, s],
      [pred, r.map((v) => -v)],
    ]),
    eps: combine([
      [xt, r],
      [pred, s],
    ]),
  };
}
