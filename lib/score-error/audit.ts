// Auditing a trained denoiser against a Gaussian mixture's exact score (docs/methods.md §7,
// docs/score-error.md). Per noise level: draw M points x0 from the mixture and x_t = √ᾱ x0 + √(1−ᾱ) ε,
// ask the model for its prediction, turn it into ε̂, and measure ‖ε̂ − ε*(x_t)‖ with ε* = E[ε | x_t]
// exact in double. The score error is that divided by √(1−ᾱ): ‖ŝ − s‖ = ‖ε̂ − ε*‖ / √(1−ᾱ), so the
// ε-space error is the scale-free form of the (1−δ)-quantile measure D_δ of the sample-complexity
// paper; it is reported next to the RMS error, which a rare component inflates and the quantile does not.
import { seededNormals } from '../metrics/normals.ts';
import { timesteps, type TimestepSpacing } from '../sample.ts';
import type { NoiseSchedule, Prediction } from '../schedule.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { resolveDevice } from '../device.ts';
import type { GaussianMixture } from './mixture.ts';
import { quantileWithBound, minimumSamples } from './quantile.ts';

/** Any sampler denoiser (sample.ts), or one that answers asynchronously (e.g. computed on the host). */
export type AuditedDenoiser = (x: Tensor, t: Float32Array) => Tensor | Promise<Tensor>;

export interface ScoreErrorOptions {
  mixture: GaussianMixture;
  schedule: NoiseSchedule;
  /** What the denoiser predicts. */
  prediction: Prediction;
  /**
   * Step indices to audit. Default: the sampler's grid, the levels a sampler of `samplerSteps` steps
   * with `spacing` visits (default 50, 'linspace': `sample`'s defaults), since the paper's condition is
   * on every level the sampler visits.
   */
  levels?: readonly number[];
  /** The sampler whose grid is the default `levels`: its number of steps (default 50) and spacing (default 'linspace'). */
  samplerSteps?: number;
  spacing?: TimestepSpacing;
  /**
   * true (default): the bounds hold at every level at once with probability ≥ `confidence`, by a union
   * bound (each level's bound at confidence 1 − (1 − confidence)/L for L levels); false: each level's
   * bound alone at `confidence`.
   */
  simultaneous?: boolean;
  /** The measure's δ (default 0.01). */
  delta?: number;
  /** Points per level (default ⌈50/δ⌉). */
  samples?: number;
  /** Confidence of the upper bound (default 0.95). */
  confidence?: number;
  batchSize?: number;
  seed?: bigint | number;
  /** The denoiser's device (default: defaultDevice()). */
  device?: string;
  signal?: AbortSignal;
  onLevel?: (row: ScoreErrorLevel, done: number, total: number) => void;
}

export interface ScoreErrorLevel {
  t: number;
  alphaBar: number;
  /** The VE noise level σ = √((1−ᾱ)/ᾱ) of this step. */
  sigma: number;
  samples: number;
  /** (1−δ)-quantile of ‖ε̂ − ε*‖ (order statistic) and its upper confidence bound. */
  quantile: number;
  upperBound: number;
  /** The 1-based rank of the order statistic that is the upper bound (samples + 1 when there is none). */
  upperRank: number;
  /** √(mean ‖ε̂ − ε*‖²), the L2 error, and the largest error seen. */
  rms: number;
  max: number;
  /** The same quantile in score units: quantile / √(1−ᾱ). */
  scoreQuantile: number;
  /** RMS error of the points drawn from each component (NaN for a component no point came from). */
  rmsByComponent: number[];
  /** Points drawn from each component. */
  countByComponent: number[];
}

export interface ScoreErrorReport {
  delta: number;
  /** The confidence asked for: of all the bounds together when `simultaneous`, else of each. */
  confidence: number;
  simultaneous: boolean;
  /** The confidence of each level's bound: 1 − (1 − confidence)/L when simultaneous, else confidence. */
  levelConfidence: number;
  /** Values per sample d: ‖ε̂ − ε*‖ / √d is a per-coordinate RMS. */
  dim: number;
  levels: ScoreErrorLevel[];
}

function epsFromPrediction(prediction: Prediction, xt: Float32Array, out: Float32Array, alphaBar: number): Float64Array {
  const a = Math.sqrt(alphaBar);
  const b = Math.sqrt(1 - alphaBar);
  const eps = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) {
    const y = out[i]!;
    if (prediction === 'eps') eps[i] = y;
    else if (prediction === 'x0') eps[i] = (xt[i]! - a * y) / b;
    else eps[i] = a * y + b * xt[i]!; // v = √ᾱ ε − √(1−ᾱ) x0  ⇒  ε = √ᾱ v + √(1−ᾱ) x_t
  }
  return eps;
}

export async function scoreErrorAudit(denoiser: AuditedDenoiser, o: ScoreErrorOptions): Promise<ScoreErrorReport> {
  const { mixture, schedule, prediction } = o;
  const delta = o.delta ?? 0.01;
  const confidence = o.confidence ?? 0.95;
  const M = o.samples ?? Math.ceil(50 / delta);
  const batchSize = o.batchSize ?? 256;
  const seed = BigInt(o.seed ?? 0);
  const device = resolveDevice(o.device);
  const T = schedule.steps;
  const levels = o.levels ?? timesteps(T, o.samplerSteps ?? 50, o.spacing ?? 'linspace');
  if (!['eps', 'x0', 'v'].includes(prediction))
    throw new TypeError(`prediction: expected "eps", "x0" or "v", got ${JSON.stringify(prediction)}`);
  if (levels.length < 1 || levels.length > 256) throw new RangeError(`levels: expected 1 to 256 step indices, got ${levels.length}`);
  for (const t of levels)
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`levels: expected step indices in [0, ${T - 1}], got ${t}`);
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`samples: expected a positive integer, got ${M}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence: expected a number in (0, 1), got ${confidence}`);
  const simultaneous = o.simultaneous ?? true;
  // Union bound: P(some level's bound fails) ≤ Σ_l (1 − c_l) = 1 − confidence.
  const levelConfidence = simultaneous ? 1 - (1 - confidence) / levels.length : confidence;
  const needed = minimumSamples(delta, levelConfidence);
  if (M < needed)
    throw new RangeError(
      `samples: ${M} points per level cannot bound the ${1 - delta} quantile at confidence ${levelConfidence}` +
        (simultaneous && levels.length > 1 ? ` (${confidence} over ${levels.length} levels at once)` : '') +
        `; use at least ${needed} (⌈50/δ⌉ = ${Math.ceil(50 / delta)} is the default)`,
    );
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected a positive integer, got ${batchSize}`);
  const d = mixture.dim;
  const K = mixture.components.length;
  const shape = mixture.shape;

  const rows: ScoreErrorLevel[] = [];
  for (const [li, t] of levels.entries()) {
    const ab = schedule.alphaBars[t]!;
    const noised = mixture.noised(ab);
    const errors = new Float64Array(M);
    const sq = new Float64Array(K);
    const count = new Array<number>(K).fill(0);
    for (let start = 0; start < M; start += batchSize) {
      o.signal?.throwIfAborted();
      const n = Math.min(batchSize, M - start);
      // Each batch has its own Philox streams, 4s .. 4s+2 for s = (level, batch): x0 takes 4s and 4s+1
      // (mixture.sample), ε takes 4s+2. Changing batchSize changes the draws, not their law.
      const s = (BigInt(li) << 24n) + BigInt(start / batchSize);
      const { x, component } = mixture.sample(n, seed, 2n * s);
      const eps = seededNormals(n * d, seed, 4n * s + 2n);
      const xt = new Float32Array(n * d);
      const ra = Math.sqrt(ab);
      const rb = Math.sqrt(1 - ab);
      for (let i = 0; i < n * d; i++) xt[i] = ra * x[i]! + rb * eps[i]!;
      // The exact target at the point the network sees (its float32 input).
      const star = noised.epsStar(xt);
      const input = tensor(xt, [n, ...shape], { device });
      let out: Tensor;
      try {
        out = await denoiser(input, new Float32Array(n).fill(t));
      } finally {
        input.dispose();
      }
      const pred = await out.toArray();
      out.dispose();
      if (pred.length !== n * d) throw new RangeError(`denoiser: returned ${pred.length} values for a batch of ${n} × ${d}`);
      const epsHat = epsFromPrediction(prediction, xt, pred, ab);
      for (let i = 0; i < n; i++) {
        let e2 = 0;
        for (let j = 0; j < d; j++) {
          const v = epsHat[i * d + j]! - star[i * d + j]!;
          e2 += v * v;
        }
        if (!Number.isFinite(e2)) throw new RangeError(`denoiser: non-finite output at step ${t} (point ${start + i})`);
        errors[start + i] = Math.sqrt(e2);
        sq[component[i]!]! += e2;
        count[component[i]!]!++;
      }
    }
    const q = quantileWithBound(errors, delta, levelConfidence);
    let total = 0;
    let max = 0;
    for (const e of errors) {
      total += e * e;
      max = Math.max(max, e);
    }
    const row: ScoreErrorLevel = {
      t,
      alphaBar: ab,
      sigma: Math.sqrt((1 - ab) / ab),
      samples: M,
      quantile: q.quantile,
      upperBound: q.upperBound,
      upperRank: q.upperRank,
      rms: Math.sqrt(total / M),
      max,
      scoreQuantile: q.quantile / Math.sqrt(1 - ab),
      rmsByComponent: Array.from(sq, (s, k) => (count[k]! > 0 ? Math.sqrt(s / count[k]!) : NaN)),
      countByComponent: count,
    };
    rows.push(row);
    o.onLevel?.(row, li + 1, levels.length);
  }
  return { delta, confidence, simultaneous, levelConfidence, dim: d, levels: rows };
}
