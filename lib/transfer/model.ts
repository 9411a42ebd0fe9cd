// The conditional score model of the transfer method (docs/transfer.md): s_k(x, y, t) = f_k(x, h(y), t)
// with one condition encoder h shared by every task and one head f_k per task. Both are MLPs (mlp.ts).
// The forward process is the paper's Ornstein–Uhlenbeck process: x_t = α_t x + σ_t ε with α_t = e^{-t},
// σ_t² = 1 − e^{-2t}, t ∈ [t0, T]. A head predicts ε (the noise), so s = −ε̂/σ_t; its DSM loss
// E‖ε̂ − ε‖² is the paper's E‖s + (x_t − α_t x)/σ_t²‖² weighted by σ_t², which keeps the small-t terms
// (whose targets grow like 1/σ_t) from dominating the gradient.
import { Mlp, resolveMlpConfig, type Activation } from './mlp.ts';

export interface NetConfig {
  hidden: number;
  /** Linear layers. */
  depth: number;
  activation?: Activation;
}

export interface TransferConfig {
  /** Dimension of x (the data). */
  xDim: number;
  /** Dimension of the condition y. */
  yDim: number;
  /** Dimension d_y of the representation w = h(y). */
  repDim: number;
  encoder: NetConfig;
  head: NetConfig;
  /** Fourier features of t that enter each head (even; default 16). */
  timeFeatures?: number;
  /** Smallest and largest diffusion time (default 1e-3 and 5). */
  t0?: number;
  tMax?: number;
  /**
   * Add the exact noise of a Gaussian fitted to the data (per-coordinate mean and variance) to each
   * head's output, so the head learns only the non-Gaussian rest (default false). Needed when the head
   * is narrower than x: a bottleneck MLP cannot carry x_t through to ε̂ (e.g. MNIST, 784 values).
   */
  gaussianSkip?: boolean;
}

export type ResolvedTransferConfig = Required<Omit<TransferConfig, 'encoder' | 'head'>> & {
  encoder: Required<NetConfig>;
  head: Required<NetConfig>;
};

export function resolveTransferConfig(c: TransferConfig): ResolvedTransferConfig {
  if (c === null || typeof c !== 'object') throw new TypeError(`transfer config: expected an object, got ${JSON.stringify(c)}`);
  for (const k of ['xDim', 'yDim', 'repDim'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 1)
      throw new RangeError(`transfer config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  const timeFeatures = c.timeFeatures ?? 16;
  if (!Number.isInteger(timeFeatures) || timeFeatures < 2 || timeFeatures % 2)
    throw new RangeError(`transfer config: timeFeatures must be an even integer >= 2, got ${JSON.stringify(timeFeatures)}`);
  const t0 = c.t0 ?? 1e-3;
  const tMax = c.tMax ?? 5;
  if (!(t0 > 0 && tMax > t0 && Number.isFinite(tMax)))
    throw new RangeError(`transfer config: need 0 < t0 < tMax, got t0 ${t0}, tMax ${tMax}`);
  const net = (n: NetConfig, what: string): Required<NetConfig> => {
    const r = resolveMlpConfig({ inputs: 1, outputs: 1, ...n }, `transfer config.${what}`);
    return { hidden: r.hidden, depth: r.depth, activation: r.activation };
  };
  if (c.gaussianSkip !== undefined && typeof c.gaussianSkip !== 'boolean')
    throw new TypeError(`transfer config: gaussianSkip must be a boolean, got ${JSON.stringify(c.gaussianSkip)}`);
  return {
    xDim: c.xDim,
    yDim: c.yDim,
    repDim: c.repDim,
    timeFeatures,
    t0,
    tMax,
    gaussianSkip: c.gaussianSkip ?? false,
    encoder: net(c.encoder, 'encoder'),
    head: net(c.head, 'head'),
  };
}

export const alphaOf = (t: number) => Math.exp(-t);
export const sigmaOf = (t: number) => Math.sqrt(-Math.expm1(-2 * t));

/**
 * sin(πk u), cos(πk u) for k = 1..F/2, with u = log(t/t0) / log(T/t0) ∈ [0, 1]: log time, because σ_t
 * changes fastest near t0, where the head must tell close times apart.
 */
export function timeFeatures(t: number, c: ResolvedTransferConfig, out: Float32Array, at = 0): void {
  const u = Math.log(t / c.t0) / Math.log(c.tMax / c.t0);
  const half = c.timeFeatures / 2;
  for (let k = 0; k < half; k++) {
    out[at + k] = Math.sin(Math.PI * (k + 1) * u);
    out[at + half + k] = Math.cos(Math.PI * (k + 1) * u);
  }
}

export function makeEncoder(c: ResolvedTransferConfig, seed: bigint | number, stream: number): Mlp {
  return new Mlp({ inputs: c.yDim, outputs: c.repDim, ...c.encoder }, { seed, stream });
}

export function makeHead(c: ResolvedTransferConfig, seed: bigint | number, stream: number): Mlp {
  return new Mlp({ inputs: c.xDim + c.repDim + c.timeFeatures, outputs: c.xDim, ...c.head }, { seed, stream });
}

/** h and its heads. Stream numbers keep every network's initial weights distinct and reproducible. */
export class TransferModel {
  readonly config: ResolvedTransferConfig;
  readonly encoder: Mlp;
  readonly heads: Mlp[];
  /** Per-coordinate mean and variance of x for the Gaussian skip (fitStats sets them). */
  readonly mean: Float32Array;
  readonly variance: Float32Array;

  constructor(config: TransferConfig, options: { heads: number; seed?: bigint | number; encoder?: Mlp; headStreamBase?: number }) {
    this.config = resolveTransferConfig(config);
    if (!Number.isInteger(options.heads) || options.heads < 1)
      throw new RangeError(`transfer model: heads must be a positive integer, got ${options.heads}`);
    const seed = options.seed ?? 0;
    this.encoder = options.encoder ?? makeEncoder(this.config, seed, 0);
    if (options.encoder && options.encoder.paramCount !== makeEncoder(this.config, 0, 0).paramCount)
      throw new RangeError('transfer model: the given encoder does not match config.encoder');
    const base = options.headStreamBase ?? 1;
    this.heads = Array.from({ length: options.heads }, (_, k) => makeHead(this.config, seed, base + k));
    this.mean = new Float32Array(this.config.xDim);
    this.variance = new Float32Array(this.config.xDim).fill(1);
  }

  /** Sets the Gaussian skip's mean and variance per coordinate from the x of these pair sets (pooled). */
  fitStats(sets: { x: Float32Array; n: number }[]): void {
    const d = this.config.xDim;
    const sum = new Float64Array(d);
    const sq = new Float64Array(d);
    let n = 0;
    for (const s of sets) {
      for (let r = 0; r < s.n; r++)
        for (let i = 0; i < d; i++) {
          const v = s.x[r * d + i]!;
          sum[i]! += v;
          sq[i]! += v * v;
        }
      n += s.n;
    }
    if (n === 0) throw new RangeError('fitStats: no pairs');
    for (let i = 0; i < d; i++) {
      this.mean[i] = sum[i]! / n;
      this.variance[i] = Math.max(0, sq[i]! / n - (sum[i]! / n) ** 2);
    }
  }

  /** Adds the Gaussian skip ε_G = σ (x_t − α μ)/(α² v + σ²) to `eps` (rows at times ts), when configured. */
  addSkip(eps: Float32Array, xt: Float32Array, ts: ArrayLike<number>, n: number): void {
    if (!this.config.gaussianSkip) return;
    const d = this.config.xDim;
    for (let r = 0; r < n; r++) {
      const a = alphaOf(ts[r]!);
      const s = sigmaOf(ts[r]!);
      for (let i = 0; i < d; i++) eps[r * d + i]! += (s * (xt[r * d + i]! - a * this.mean[i]!)) / (a * a * this.variance[i]! + s * s);
    }
  }

  /** The representation w = h(y) for y [n, yDim]. */
  encode(y: Float32Array, n: number): Float32Array {
    return this.encoder.forward(y, n).out;
  }

  /** Head input rows [x_t, w, features(t)] for n rows. */
  headInput(xt: Float32Array, w: Float32Array, ts: ArrayLike<number>, n: number): Float32Array {
    const c = this.config;
    const width = c.xDim + c.repDim + c.timeFeatures;
    const inp = new Float32Array(n * width);
    for (let r = 0; r < n; r++) {
      inp.set(xt.subarray(r * c.xDim, (r + 1) * c.xDim), r * width);
      inp.set(w.subarray(r * c.repDim, (r + 1) * c.repDim), r * width + c.xDim);
      timeFeatures(ts[r]!, c, inp, r * width + c.xDim + c.repDim);
    }
    return inp;
  }

  /** ε̂ of head k for n rows at times ts (w given). */
  predictNoise(k: number, xt: Float32Array, w: Float32Array, ts: ArrayLike<number>, n: number): Float32Array {
    const head = this.heads[k];
    if (!head) throw new RangeError(`transfer model: no head ${k} (it has ${this.heads.length})`);
    const eps = head.forward(this.headInput(xt, w, ts, n), n).out;
    this.addSkip(eps, xt, ts, n);
    return eps;
  }

  /** The score s_k(x_t, y, t) = −ε̂/σ_t (tests compare it with analytic scores). */
  score(k: number, xt: Float32Array, y: Float32Array, ts: ArrayLike<number>, n: number): Float32Array {
    const eps = this.predictNoise(k, xt, this.encode(y, n), ts, n);
    const d = this.config.xDim;
    for (let r = 0; r < n; r++) {
      const s = sigmaOf(ts[r]!);
      for (let i = 0; i < d; i++) eps[r * d + i] = -eps[r * d + i]! / s;
    }
    return eps;
  }
}

/** Initial-weight stream of the target head f_0 (source heads use 1..K). */
export const TARGET_HEAD_STREAM = 1000;

/**
 * The one-head model trained on the target pairs. With `encoder` (a pre-trained h) its weights are
 * copied in, to be frozen: fine-tuning. Without, h starts fresh: the from-scratch baseline. f_0 starts
 * from the same weights in both (PyTorch's default initialisation drawn from (seed, stream 1000)), so
 * the two runs differ only in h; `headFrom` instead copies a pre-trained source head into f_0. `stats`
 * copies the Gaussian skip's mean and variance (a head started from a source head keeps the ones it
 * was trained with; a new head, fine-tuned or baseline, fits its own to the m pairs with fitStats).
 */
export function targetModel(
  config: TransferConfig,
  options: { seed?: bigint | number; encoder?: Mlp; headFrom?: Mlp; stats?: { mean: Float32Array; variance: Float32Array } } = {},
): TransferModel {
  const model = new TransferModel(config, { heads: 1, seed: options.seed ?? 0, headStreamBase: TARGET_HEAD_STREAM });
  if (options.encoder) {
    if (options.encoder.paramCount !== model.encoder.paramCount)
      throw new RangeError(
        `target model: the pre-trained encoder has ${options.encoder.paramCount} parameters, config.encoder ${model.encoder.paramCount}`,
      );
    model.encoder.params.set(options.encoder.params);
  }
  if (options.stats) {
    model.mean.set(options.stats.mean);
    model.variance.set(options.stats.variance);
  }
  if (options.headFrom) {
    if (options.headFrom.paramCount !== model.heads[0]!.paramCount)
      throw new RangeError('target model: headFrom does not match config.head');
    model.heads[0]!.params.set(options.headFrom.params);
  }
  return model;
}
