// Gaussian mixtures whose noised scores are exact (docs/score-error.md): the data distribution against
// which a trained model's score error can be measured, not estimated.
//
// Component k is N(μ_k, F_k F_kᵀ + s_k² I) with a d×r factor F_k (r small, or r = d for a full
// covariance). Under x_t = √ᾱ x0 + √(1−ᾱ) ε it becomes N(√ᾱ μ_k, a F_k F_kᵀ + c_k I), a = ᾱ,
// c_k = ᾱ s_k² + 1 − ᾱ: still low rank plus a multiple of I, so Woodbury with an r×r Cholesky factor
// gives its inverse and log-determinant in O(d r) per point, in double, for images of any size.
// Responsibilities are combined by log-sum-exp, so far-out points do not underflow to 0/0.
import { encodeSafetensors, decodeSafetensors, readSafetensors } from '../safetensors.ts';
import { seededNormals } from '../metrics/normals.ts';
import { philoxBlock } from '../random.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import { cholesky, cholSolve } from '../metrics/linalg.ts';

export interface MixtureComponent {
  weight: number;
  /** [d] */
  mean: Float64Array;
  /** [d × rank], row-major (row i holds the r loadings of coordinate i). */
  factor: Float64Array;
  /** Standard deviation of the isotropic part (> 0 keeps every covariance nonsingular). */
  noise: number;
}

export interface RandomMixtureOptions {
  /** [C, H, W] of one sample. */
  shape: readonly [number, number, number];
  components?: number;
  /** Rank of each component's factor (default 4). */
  rank?: number;
  /** Mixture weights (default: equal); normalised. A small weight makes a rare component. */
  weights?: readonly number[];
  /** Size of the factor directions, per direction (default 0.3). */
  spread?: number;
  /** Isotropic standard deviation of every component (default 0.05). */
  noise?: number;
  seed?: bigint | number;
}

const LOG_2PI = Math.log(2 * Math.PI);
const f32 = (x: number) => Math.fround(x);

/** One component at one noise level: what Woodbury needs, computed once per level. */
interface NoisedComponent {
  logWeight: number;
  /** √ᾱ μ */
  mean: Float64Array;
  factor: Float64Array;
  /** a = ᾱ (factor scale), c = ᾱ s² + 1 − ᾱ (isotropic part). */
  a: number;
  c: number;
  /** Cholesky factor of G = I_r + (a/c) Fᵀ F, and −½ log det C. */
  chol: Float64Array;
  halfLogDet: number;
}

/** The mixture after noising to level ᾱ: its exact log density, score and optimal noise prediction. */
export class NoisedMixture {
  readonly alphaBar: number;
  readonly dim: number;
  readonly rank: number;
  private readonly parts: NoisedComponent[];

  constructor(mixture: GaussianMixture, alphaBar: number) {
    if (!(alphaBar > 0 && alphaBar <= 1)) throw new RangeError(`alphaBar: expected a number in (0, 1], got ${alphaBar}`);
    this.alphaBar = alphaBar;
    const d = (this.dim = mixture.dim);
    const r = (this.rank = mixture.rank);
    const root = Math.sqrt(alphaBar);
    this.parts = mixture.components.map((k, index) => {
      const a = alphaBar;
      const c = alphaBar * k.noise * k.noise + (1 - alphaBar);
      const g = new Float64Array(r * r);
      for (let i = 0; i < d; i++)
        for (let p = 0; p < r; p++) {
          const fp = k.factor[i * r + p]!;
          if (fp === 0) continue;
          for (let q = 0; q <= p; q++) g[p * r + q]! += fp * k.factor[i * r + q]!;
        }
      for (let p = 0; p < r; p++)
        for (let q = 0; q <= p; q++) {
          const v = (a / c) * g[p * r + q]! + (p === q ? 1 : 0);
          g[p * r + q] = v;
          g[q * r + p] = v;
        }
      const chol = cholesky(g, r);
      let logDetG = 0;
      for (let p = 0; p < r; p++) logDetG += 2 * Math.log(chol[p * r + p]!);
      return {
        logWeight: Math.log(mixture.weights[index]!),
        mean: k.mean.map((m) => root * m),
        factor: k.factor,
        a,
        c,
        chol,
        halfLogDet: -0.5 * (d * Math.log(c) + logDetG),
      };
    });
  }

  /**
   * For each of the n points in `x` ([n × d]): the log density (returned) and, when `score` is given,
   * ∇ log q_t(x) written to it ([n × d]).
   */
  private evaluate(x: Float64Array | Float32Array, score?: Float64Array): Float64Array {
    const d = this.dim;
    const r = this.rank;
    if (x.length % d !== 0 || x.length === 0) throw new RangeError(`x: expected n × ${d} values, got ${x.length}`);
    const n = x.length / d;
    const K = this.parts.length;
    const out = new Float64Array(n);
    const res = new Float64Array(d);
    const u = new Float64Array(r);
    const logp = new Float64Array(K);
    // Per component: C⁻¹ (x − m) for the score; kept until the responsibilities are known.
    const grads = score ? Array.from({ length: K }, () => new Float64Array(d)) : [];
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) {
        const p = this.parts[k]!;
        let rr = 0;
        for (let j = 0; j < d; j++) {
          const v = x[i * d + j]! - p.mean[j]!;
          res[j] = v;
          rr += v * v;
        }
        u.fill(0);
        for (let j = 0; j < d; j++) {
          const v = res[j]!;
          for (let q = 0; q < r; q++) u[q]! += p.factor[j * r + q]! * v;
        }
        const uu = Float64Array.from(u);
        cholSolve(p.chol, r, u); // u = G⁻¹ Fᵀ res
        let uv = 0;
        for (let q = 0; q < r; q++) uv += uu[q]! * u[q]!;
        const s = p.a / p.c;
        // (c I + a F Fᵀ)⁻¹ = (1/c)(I − (a/c) F G⁻¹ Fᵀ)
        const maha = (rr - s * uv) / p.c;
        logp[k] = p.logWeight + p.halfLogDet - 0.5 * (d * LOG_2PI + maha);
        if (score) {
          const g = grads[k]!;
          for (let j = 0; j < d; j++) {
            let fu = 0;
            for (let q = 0; q < r; q++) fu += p.factor[j * r + q]! * u[q]!;
            g[j] = (res[j]! - s * fu) / p.c;
          }
        }
      }
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, logp[k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(logp[k]! - mx);
      const lse = mx + Math.log(sum);
      out[i] = lse;
      if (score) {
        const row = score.subarray(i * d, (i + 1) * d);
        row.fill(0);
        for (let k = 0; k < K; k++) {
          const w = Math.exp(logp[k]! - lse);
          if (w === 0) continue;
          const g = grads[k]!;
          for (let j = 0; j < d; j++) row[j]! -= w * g[j]!;
        }
      }
    }
    return out;
  }

  /** log q_t(x) for each of the n points of x ([n × d]). */
  logDensity(x: Float64Array | Float32Array): Float64Array {
    return this.evaluate(x);
  }

  /** ∇ log q_t(x), [n × d]. */
  score(x: Float64Array | Float32Array): Float64Array {
    const s = new Float64Array(x.length);
    this.evaluate(x, s);
    return s;
  }

  /** The optimal noise prediction E[ε | x_t] = −√(1−ᾱ) ∇ log q_t(x_t), [n × d]. */
  epsStar(x: Float64Array | Float32Array): Float64Array {
    const s = this.score(x);
    const k = -Math.sqrt(1 - this.alphaBar);
    for (let i = 0; i < s.length; i++) s[i]! *= k;
    return s;
  }
}

export class GaussianMixture {
  readonly shape: readonly [number, number, number];
  readonly dim: number;
  readonly rank: number;
  /** As given (saved as float32; a file holds exactly the mixture it was saved from). */
  readonly components: readonly MixtureComponent[];
  /** The component weights normalised to sum to one. */
  readonly weights: Float64Array;

  constructor(shape: readonly [number, number, number], components: readonly MixtureComponent[]) {
    if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((s) => Number.isInteger(s) && s > 0))
      throw new TypeError(`mixture: shape must be [C, H, W] of positive integers, got ${JSON.stringify(shape)}`);
    if (components.length === 0) throw new RangeError('mixture: needs at least one component');
    const d = shape[0] * shape[1] * shape[2];
    const r = components[0]!.factor.length / d;
    if (!Number.isInteger(r) || r < 1)
      throw new RangeError(`mixture: factor of component 0 has ${components[0]!.factor.length} values, not d × rank for d = ${d}`);
    let total = 0;
    components.forEach((k, i) => {
      const at = `mixture: component ${i}`;
      if (k.mean.length !== d) throw new RangeError(`${at}: mean has ${k.mean.length} values, expected ${d}`);
      if (k.factor.length !== d * r) throw new RangeError(`${at}: factor has ${k.factor.length} values, expected ${d} × ${r}`);
      if (!(k.weight > 0) || !Number.isFinite(k.weight)) throw new RangeError(`${at}: weight must be a positive number, got ${k.weight}`);
      if (!(k.noise > 0) || !Number.isFinite(k.noise)) throw new RangeError(`${at}: noise must be a positive number, got ${k.noise}`);
      for (const v of k.mean) if (!Number.isFinite(v)) throw new RangeError(`${at}: mean has a non-finite value`);
      for (const v of k.factor) if (!Number.isFinite(v)) throw new RangeError(`${at}: factor has a non-finite value`);
      total += k.weight;
    });
    this.shape = [shape[0], shape[1], shape[2]];
    this.dim = d;
    this.rank = r;
    this.components = components.map((k) => ({ ...k }));
    this.weights = Float64Array.from(components, (k) => k.weight / total);
  }

  /**
   * A mixture of smooth random images: each mean and factor direction is a sum of a few low-frequency
   * cosines with Philox-drawn coefficients, so a small UNet can represent it. Values are rounded to
   * float32, so a saved mixture is exactly the one that was used.
   */
  static random(o: RandomMixtureOptions): GaussianMixture {
    const [C, H, W] = o.shape;
    const K = o.components ?? 4;
    const r = o.rank ?? 4;
    const spread = o.spread ?? 0.3;
    const noise = o.noise ?? 0.05;
    const seed = BigInt(o.seed ?? 0);
    if (!Number.isInteger(K) || K < 1) throw new RangeError(`components: expected a positive integer, got ${K}`);
    if (!Number.isInteger(r) || r < 1) throw new RangeError(`rank: expected a positive integer, got ${r}`);
    const weights = o.weights ?? new Array<number>(K).fill(1);
    if (weights.length !== K) throw new RangeError(`weights: expected ${K} values, got ${weights.length}`);
    const d = C * H * W;
    const modes = 3; // frequencies 0..2 along each axis
    const pattern = (coef: Float64Array, at: number) => {
      const img = new Float64Array(d);
      for (let c = 0; c < C; c++)
        for (let fy = 0; fy < modes; fy++)
          for (let fx = 0; fx < modes; fx++) {
            const w = coef[at + (c * modes + fy) * modes + fx]!;
            for (let y = 0; y < H; y++) {
              const cy = Math.cos((Math.PI * fy * (y + 0.5)) / H);
              for (let x = 0; x < W; x++) img[(c * H + y) * W + x]! += w * cy * Math.cos((Math.PI * fx * (x + 0.5)) / W);
            }
          }
      return img;
    };
    const per = C * modes * modes;
    const coef = seededNormals(K * (1 + r) * per, seed, 0x6d6978n); // "mix"
    const components: MixtureComponent[] = [];
    for (let k = 0; k < K; k++) {
      const base = k * (1 + r) * per;
      // Means inside [-0.8, 0.8]: tanh keeps them off the clip range of [-1, 1] image models.
      const mean = pattern(coef, base).map((v) => f32(0.8 * Math.tanh(0.5 * v)));
      const factor = new Float64Array(d * r);
      for (let q = 0; q < r; q++) {
        const dir = pattern(coef, base + (1 + q) * per);
        let norm = 0;
        for (const v of dir) norm += v * v;
        const scale = (spread * Math.sqrt(d)) / Math.sqrt(norm || 1); // rms per pixel = spread
        for (let i = 0; i < d; i++) factor[i * r + q] = f32(dir[i]! * scale);
      }
      components.push({ weight: f32(weights[k]!), mean, factor, noise: f32(noise) });
    }
    return new GaussianMixture(o.shape, components);
  }

  /** The mixture noised to level ᾱ (precomputes one r×r Cholesky factor per component). */
  noised(alphaBar: number): NoisedMixture {
    return new NoisedMixture(this, alphaBar);
  }

  /**
   * n samples ([n × d], double) and their components, from Philox(seed): component draws on stream
   * 2·stream, normals on 2·stream + 1, so different `stream`s give independent sets.
   */
  sample(n: number, seed: bigint | number, stream: bigint | number = 0): { x: Float64Array; component: Int32Array } {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n: expected a positive integer, got ${n}`);
    const d = this.dim;
    const r = this.rank;
    const s = BigInt(seed);
    const st = BigInt(stream) * 2n;
    const cdf: number[] = [];
    let acc = 0;
    for (const w of this.weights) cdf.push((acc += w));
    const component = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const [w0, w1] = philoxBlock(s, 0n, st, i);
      const u = (w0 + w1 / 4294967296) / 4294967296;
      let k = 0;
      while (k < cdf.length - 1 && u >= cdf[k]!) k++;
      component[i] = k;
    }
    const z = seededNormals(n * (r + d), s, st + 1n);
    const x = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      const k = this.components[component[i]!]!;
      const zi = z.subarray(i * (r + d), i * (r + d) + r);
      const xi = z.subarray(i * (r + d) + r, (i + 1) * (r + d));
      for (let j = 0; j < d; j++) {
        let v = k.mean[j]! + k.noise * xi[j]!;
        for (let q = 0; q < r; q++) v += k.factor[j * r + q]! * zi[q]!;
        x[i * d + j] = v;
      }
    }
    return { x, component };
  }

  /** As safetensors: per component `components.K.mean` [d], `.factor` [d, r]; weights and noise in one tensor each. */
  encode(): Uint8Array {
    const t = new Map<string, { shape: number[]; data: Float32Array }>();
    const K = this.components.length;
    t.set('weights', { shape: [K], data: Float32Array.from(this.components, (k) => k.weight) });
    t.set('noise', { shape: [K], data: Float32Array.from(this.components, (k) => k.noise) });
    this.components.forEach((k, i) => {
      t.set(`components.${i}.mean`, { shape: [this.dim], data: Float32Array.from(k.mean) });
      t.set(`components.${i}.factor`, { shape: [this.dim, this.rank], data: Float32Array.from(k.factor) });
    });
    return encodeSafetensors(t, { format: MIXTURE_FORMAT, shape: JSON.stringify(this.shape) });
  }

  async save(path: string): Promise<void> {
    await writeFileAtomic(path, this.encode());
  }

  static decode(bytes: Uint8Array, source = '<mixture bytes>'): GaussianMixture {
    return fromFile(decodeSafetensors(bytes, source), source);
  }

  static async load(path: string): Promise<GaussianMixture> {
    return fromFile(await readSafetensors(path), path);
  }
}

/**
 * The `stream` of training sets drawn from a mixture: far above the streams an audit uses (below 2^34),
 * so a model is never audited on the points it was trained on, whatever the seeds.
 */
export const TRAINING_STREAM = 1n << 40n;

export const MIXTURE_FORMAT = 'kintsugi-gaussian-mixture-1';

function fromFile(file: Awaited<ReturnType<typeof readSafetensors>>, source: string): GaussianMixture {
  const fail = (why: string) => new Error(`${source}: not a kintsugi Gaussian mixture: ${why}`);
  if (file.metadata.format !== MIXTURE_FORMAT) throw fail(`format is ${JSON.stringify(file.metadata.format)}, expected ${MIXTURE_FORMAT}`);
  let shape: unknown;
  try {
    shape = JSON.parse(file.metadata.shape ?? '');
  } catch {
    throw fail('its shape metadata is not JSON');
  }
  const get = (name: string) => {
    const e = file.tensors.get(name);
    if (!e) throw fail(`the tensor ${name} is missing`);
    return e;
  };
  const weights = get('weights').data;
  const noise = get('noise').data;
  if (noise.length !== weights.length) throw fail(`weights has ${weights.length} values and noise ${noise.length}`);
  const components = Array.from(weights, (w, i) => ({
    weight: w,
    noise: noise[i]!,
    mean: Float64Array.from(get(`components.${i}.mean`).data),
    factor: Float64Array.from(get(`components.${i}.factor`).data),
  }));
  try {
    return new GaussianMixture(shape as [number, number, number], components);
  } catch (e) {
    throw fail((e as Error).message);
  }
}
