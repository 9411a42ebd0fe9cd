// Round 0 of DiffEM (docs/diffem.md): a Gaussian prior x ~ N(μ, W Wᵀ + diag(D)) fitted by EM to masked
// noisy observations y = m ⊙ (x + σ_y n), and the exact posterior of x given y under it, which gives the
// first reconstructions x̂. Host-side double precision throughout.
//
// x = μ + W z + e with z ~ N(0, I_r) and e ~ N(0, diag(D)) makes the coordinates of x independent given
// z, so conditioning one sample on its observed set O costs O(|O| r² + r³) (an r×r precision
// I + W_Oᵀ Ψ_O⁻¹ W_O, Ψ = D + σ_y²) and the M-step is d independent regressions of x_j on [z; 1]:
// nothing of size d×d is ever formed.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { toSeed } from '../corruption/operator.ts';
import { seededNormals } from '../metrics/normals.ts';
import { cholesky, cholSolve } from '../metrics/linalg.ts';

export interface GaussianPriorFitOptions {
  /** r: columns of the factor W (1 ≤ r ≤ d). */
  rank: number;
  /** EM iterations (default 50). 0 returns the initialisation. */
  iterations?: number;
  /** σ_y ≥ 0: standard deviation of the noise added to the observed coordinates. */
  sigmaY: number;
  /** Floor on D (default 1e-4): keeps Ψ and Σ positive definite when a coordinate is (nearly) explained by W. */
  minVariance?: number;
  /** Seed of the random initial W (default 0). */
  seed?: bigint | number;
  /** Called after each E-step: it = k after k iterations (0: the initialisation), with the total log-likelihood. */
  onIteration?: (it: number, logLikelihood: number) => void;
  /** Checked between iterations. */
  signal?: AbortSignal;
}

export interface GaussianPrior {
  /** μ [d] */
  mean: Float64Array;
  /** W [d × r], row-major (row j holds the r loadings of coordinate j). */
  factor: Float64Array;
  /** D [d], each ≥ minVariance. */
  diag: Float64Array;
  rank: number;
  dim: number;
  /** Total log-likelihood of the observations in nats, entry k after k iterations (entry 0: the initialisation). */
  logLikelihood: number[];
}

const LOG_2PI = Math.log(2 * Math.PI);
/** Philox stream of the initial W ("gprior" in ASCII). */
const INIT_STREAM = 0x677072696f72n;

/**
 * Fits μ, W, D by maximum likelihood with EM, parameter-expanded (PX-EM, see expandParameters). `y` [n × d] holds the observations, `mask` [n × d] is 1 where
 * y is observed and 0 where it is a placeholder (ignored, whatever its value); a mask shared over channels
 * can be widened with expandMask. Every coordinate must be observed in at least one sample: the mean and
 * variance of one that never is are undetermined, so that is an error rather than a silent guess.
 */
export async function fitGaussianPrior(
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  o: GaussianPriorFitOptions,
): Promise<GaussianPrior> {
  checkObservations(y, mask, n, d);
  const r = o.rank;
  if (!Number.isSafeInteger(r) || r < 1 || r > d)
    throw new RangeError(`options.rank: expected an integer in [1, d = ${d}], got ${String(r)}`);
  const iterations = o.iterations ?? 50;
  if (!Number.isSafeInteger(iterations) || iterations < 0)
    throw new RangeError(`options.iterations: expected a non-negative integer, got ${String(iterations)}`);
  checkSigma(o.sigmaY, 'options.sigmaY');
  const floor = o.minVariance ?? 1e-4;
  if (!(typeof floor === 'number' && floor > 0 && Number.isFinite(floor)))
    throw new RangeError(`options.minVariance: expected a finite number > 0, got ${String(floor)}`);
  const seed = toSeed(o.seed ?? 0, 'options.seed');

  const counts = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) counts[j]! += mask[i * d + j]!;
  const never = counts.findIndex((c) => c === 0);
  if (never >= 0) {
    const total = counts.reduce((s, c) => s + (c === 0 ? 1 : 0), 0);
    throw new RangeError(
      `mask: coordinate ${never} is never observed in the ${n} samples (${total} of ${d} coordinates are not): ` +
        'its mean and variance are undetermined; use more samples or masks that observe every coordinate at least once',
    );
  }
  const prior = initialPrior(y, mask, n, d, r, counts, o.sigmaY, floor, seed);

  // Expected sufficient statistics of the regressions of x_j on z̃ = [z; 1], kept as the sum K over all
  // samples and, per coordinate, the sums over the samples observing it (see mStep). Symmetric
  // (r+1)×(r+1) matrices are packed: their upper triangle row by row.
  const R = r + 1;
  const T = (R * (R + 1)) / 2;
  const all = new Float64Array(T);
  const observedK = new Float64Array(d * T);
  const yZ = new Float64Array(d * R);
  const ySq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) if (mask[i * d + j]) ySq[j]! += y[i * d + j]! ** 2;
  const k = new Float64Array(T);
  const cov = new Float64Array(r * r);

  for (let it = 0; ; it++) {
    o.signal?.throwIfAborted();
    const c = conditioning(prior, o.sigmaY);
    const last = it === iterations;
    all.fill(0);
    observedK.fill(0);
    yZ.fill(0);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const base = i * d;
      const post = conditionSample(prior, c, y, mask, base);
      total += post.logLikelihood;
      if (last) continue; // the last E-step only measures the fitted prior
      latentCovariance(post.chol, r, cov);
      packSecondMoment(cov, post.zMean, r, k);
      for (let t = 0; t < T; t++) all[t]! += k[t]!;
      for (let j = 0; j < d; j++) {
        if (!mask[base + j]) continue;
        const kj = j * T;
        for (let t = 0; t < T; t++) observedK[kj + t]! += k[t]!;
        const yj = y[base + j]!;
        const zj = j * R;
        for (let a = 0; a < r; a++) yZ[zj + a]! += yj * post.zMean[a]!;
        yZ[zj + r]! += yj;
      }
    }
    prior.logLikelihood.push(total);
    o.onIteration?.(it, total);
    if (last) return prior;
    mStep(prior, c, n, counts, all, observedK, yZ, ySq, floor);
    await nextTurn(); // lets an abort (or anything else queued) run between iterations
  }
}

/** The posterior functions' argument checks, then what conditioning on y under `prior` needs. */
function checkedConditioning(
  prior: GaussianPrior,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  sigmaY: number,
): Conditioning {
  checkObservations(y, mask, n, d);
  checkPrior(prior, d);
  checkSigma(sigmaY, 'sigmaY');
  return conditioning(prior, sigmaY);
}

/** E[x_i | y_i] for each sample [n × d], under `prior` with measurement noise σ_y. */
export function posteriorMean(
  prior: GaussianPrior,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  sigmaY: number,
): Float64Array {
  const c = checkedConditioning(prior, y, mask, n, d, sigmaY);
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const { zMean } = conditionSample(prior, c, y, mask, i * d);
    conditionalX(prior, c, y, mask, i * d, zMean, null, out);
  }
  return out;
}

/**
 * One exact draw x_i ~ p(x_i | y_i) for each sample [n × d]: z from its Gaussian posterior, then each x_j
 * given z. Sample i's normals come from Philox(seed) on stream stream·2³² + i (stream < 2³²), so its draw
 * depends only on (seed, stream, i, y_i), not on n or on the other samples.
 */
export function posteriorSample(
  prior: GaussianPrior,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  sigmaY: number,
  seed: bigint | number,
  stream: bigint | number = 0,
): Float64Array {
  const c = checkedConditioning(prior, y, mask, n, d, sigmaY);
  const s = toSeed(seed, 'seed');
  const st = toSeed(stream, 'stream');
  if (st >= 1n << 32n || n > 2 ** 32) throw new RangeError(`stream: expected below 2^32 (and n ≤ 2^32), got stream ${st}, n ${n}`);
  const r = prior.rank;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const { zMean, chol } = conditionSample(prior, c, y, mask, i * d);
    const g = seededNormals(r + d, s, (st << 32n) + BigInt(i));
    // z = z̄ + L⁻ᵀ g has covariance L⁻ᵀ L⁻¹ = (L Lᵀ)⁻¹ = S: back substitution on Lᵀ, S never formed.
    for (let a = r - 1; a >= 0; a--) {
      let v = g[a]!;
      for (let b = a + 1; b < r; b++) v -= chol[b * r + a]! * g[b]!;
      g[a] = v / chol[a * r + a]!;
    }
    for (let a = 0; a < r; a++) zMean[a]! += g[a]!;
    conditionalX(prior, c, y, mask, i * d, zMean, g.subarray(r), out);
  }
  return out;
}

/** log p(y_i) [n]: the log density of each sample's observed coordinates, N(μ_O, Σ_OO + σ_y² I), in nats. */
export function observationLogLikelihood(
  prior: GaussianPrior,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  sigmaY: number,
): Float64Array {
  const c = checkedConditioning(prior, y, mask, n, d, sigmaY);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = conditionSample(prior, c, y, mask, i * d).logLikelihood;
  return out;
}

/** Widens masks [n, 1, H, W] shared over channels to [n, C, H, W] (hw = H·W), the layout the functions above take. */
export function expandMask(mask: Uint8Array, n: number, channels: number, hw: number): Uint8Array {
  if (mask.length !== n * hw) throw new RangeError(`mask: expected n × hw = ${n} × ${hw} = ${n * hw} values, got ${mask.length}`);
  if (!Number.isSafeInteger(channels) || channels < 1)
    throw new RangeError(`channels: expected a positive integer, got ${String(channels)}`);
  const out = new Uint8Array(n * channels * hw);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < channels; ch++) out.set(mask.subarray(i * hw, (i + 1) * hw), (i * channels + ch) * hw);
  return out;
}

/** What conditioning on y_j = x_j + σ_y n_j needs per coordinate, for one prior and σ_y. */
interface Conditioning {
  /** 1 / Ψ_j = 1 / (D_j + σ_y²) */
  invPsi: Float64Array;
  /** a_j = D_j / (D_j + σ_y²): for j observed, E[x_j | z, y_j] = a_j y_j + (1 − a_j)(μ_j + W_j z). */
  gain: Float64Array;
  /** Var[x_j | z, y_j] = a_j σ_y² for j observed (D_j for j not). */
  condVar: Float64Array;
}

function conditioning(p: GaussianPrior, sigmaY: number): Conditioning {
  const s2 = sigmaY * sigmaY;
  const invPsi = p.diag.map((dj) => 1 / (dj + s2));
  // A quotient, not D_j · (1/Ψ_j): exactly 1 when σ_y = 0, so observed values come back unchanged.
  const gain = p.diag.map((dj) => dj / (dj + s2));
  return { invPsi, gain, condVar: gain.map((a) => a * s2) };
}

/**
 * The posterior of z given sample i's observed coordinates (row offset `base`): N(z̄, S) with
 * S⁻¹ = I + W_Oᵀ Ψ_O⁻¹ W_O (returned as its lower Cholesky factor) and z̄ = S W_Oᵀ Ψ_O⁻¹ (y_O − μ_O), and
 * log p(y_O) by the determinant lemma and Woodbury:
 * −½ (|O| log 2π + log det Ψ_O + log det S⁻¹ + ρᵀ Ψ_O⁻¹ ρ − bᵀ S b), ρ = y_O − μ_O, b = W_Oᵀ Ψ_O⁻¹ ρ.
 */
function conditionSample(
  p: GaussianPrior,
  c: Conditioning,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  base: number,
): { zMean: Float64Array; chol: Float64Array; logLikelihood: number } {
  const { rank: r, dim: d, mean, factor } = p;
  const prec = new Float64Array(r * r);
  for (let a = 0; a < r; a++) prec[a * r + a] = 1;
  const b = new Float64Array(r);
  const rows: number[] = [];
  let logDetPsi = 0;
  let quad = 0;
  for (let j = 0; j < d; j++) {
    if (!mask[base + j]) continue;
    const ip = c.invPsi[j]!;
    const res = y[base + j]! - mean[j]!;
    rows.push(j);
    logDetPsi -= Math.log(ip);
    quad += res * res * ip;
    for (let a = 0; a < r; a++) b[a]! += factor[j * r + a]! * ip * res;
  }
  // W_Oᵀ Ψ_O⁻¹ W_O four rows at a time, so each precision entry is loaded and stored once per four rows
  // (1.6× faster at r = 16; this and the sums of second moments in the fit are the O(|O| r²) work of an
  // E-step). Only the lower triangle: cholesky reads no more.
  const observed = rows.length;
  let t = 0;
  for (; t + 4 <= observed; t += 4) {
    const w0 = rows[t]! * r,
      w1 = rows[t + 1]! * r,
      w2 = rows[t + 2]! * r,
      w3 = rows[t + 3]! * r;
    const i0 = c.invPsi[rows[t]!]!,
      i1 = c.invPsi[rows[t + 1]!]!,
      i2 = c.invPsi[rows[t + 2]!]!,
      i3 = c.invPsi[rows[t + 3]!]!;
    for (let a = 0; a < r; a++) {
      const f0 = factor[w0 + a]! * i0,
        f1 = factor[w1 + a]! * i1,
        f2 = factor[w2 + a]! * i2,
        f3 = factor[w3 + a]! * i3;
      for (let q = 0; q <= a; q++)
        prec[a * r + q]! += f0 * factor[w0 + q]! + f1 * factor[w1 + q]! + f2 * factor[w2 + q]! + f3 * factor[w3 + q]!;
    }
  }
  for (; t < observed; t++) {
    const w = rows[t]! * r;
    const ip = c.invPsi[rows[t]!]!;
    for (let a = 0; a < r; a++) {
      const fa = factor[w + a]! * ip;
      for (let q = 0; q <= a; q++) prec[a * r + q]! += fa * factor[w + q]!;
    }
  }
  const chol = cholesky(prec, r);
  const zMean = Float64Array.from(b);
  cholSolve(chol, r, zMean);
  let logDetPrec = 0;
  let bSb = 0;
  for (let a = 0; a < r; a++) {
    logDetPrec += 2 * Math.log(chol[a * r + a]!);
    bSb += b[a]! * zMean[a]!;
  }
  return { zMean, chol, logLikelihood: -0.5 * (observed * LOG_2PI + logDetPsi + logDetPrec + quad - bSb) };
}

/** S = (L Lᵀ)⁻¹ into `out` [r × r], column by column. */
function latentCovariance(chol: Float64Array, r: number, out: Float64Array): void {
  const col = new Float64Array(r);
  for (let q = 0; q < r; q++) {
    col.fill(0);
    col[q] = 1;
    cholSolve(chol, r, col);
    for (let a = 0; a < r; a++) out[a * r + q] = col[a]!;
  }
}

/** E[z̃ z̃ᵀ] for z̃ = [z; 1], z ~ N(z̄, S), packed: [[S + z̄ z̄ᵀ, z̄], [z̄ᵀ, 1]]. */
function packSecondMoment(cov: Float64Array, zMean: Float64Array, r: number, out: Float64Array): void {
  let t = 0;
  for (let a = 0; a < r; a++) {
    for (let q = a; q < r; q++) out[t++] = cov[a * r + q]! + zMean[a]! * zMean[q]!;
    out[t++] = zMean[a]!;
  }
  out[t] = 1;
}

/** out = P x for the packed symmetric R×R matrix at P[off..]. */
function packedMatVec(P: Float64Array, off: number, R: number, x: Float64Array, out: Float64Array): void {
  out.fill(0);
  let t = off;
  for (let a = 0; a < R; a++)
    for (let q = a; q < R; q++) {
      const v = P[t++]!;
      out[a]! += v * x[q]!;
      if (q !== a) out[q]! += v * x[a]!;
    }
}

const dot = (u: Float64Array, v: Float64Array): number => u.reduce((s, x, i) => s + x * v[i]!, 0);

/**
 * The M-step: per coordinate j the regression of x_j on z̃ = [z; 1] with coefficients β_j = [W_j; μ_j],
 * β_j ← K⁻¹ E[Σ_i z̃_i x_ij], D_j ← (E[Σ_i x_ij²] − β_jᵀ E[Σ_i z̃_i x_ij]) / n, under the posterior of
 * (z_i, x_i) given y_i at the current parameters (old β, D, a, v below). With K = Σ_i E[z̃ z̃ᵀ], B_j its
 * sum over the n_j samples observing j, c_j = Σ_{those} y_ij E[z̃_i] and s_j = Σ_{those} y_ij²:
 *   E[Σ_i z̃_i x_ij] = (K − a B_j) β + a c_j
 *   E[Σ_i x_ij²]    = βᵀ K β − a(2 − a) βᵀ B_j β + 2a(1 − a) βᵀ c_j + a² s_j + (n − n_j) D + n_j v
 * (x_ij given z is N(βᵀz̃, D) where unobserved and N(a y + (1 − a) βᵀz̃, v) where observed).
 * Flooring D at minVariance is the M-step constrained to D ≥ floor (β's optimum does not depend on
 * D), so EM still never decreases the likelihood.
 */
function mStep(
  p: GaussianPrior,
  c: Conditioning,
  n: number,
  counts: Float64Array,
  all: Float64Array,
  observedK: Float64Array,
  yZ: Float64Array,
  ySq: Float64Array,
  floor: number,
): void {
  const { rank: r, dim: d } = p;
  const R = r + 1;
  const T = (R * (R + 1)) / 2;
  const full = new Float64Array(R * R);
  for (let a = 0, t = 0; a < R; a++) for (let q = a; q < R; q++, t++) full[a * R + q] = full[q * R + a] = all[t]!;
  const kChol = cholesky(full, R);
  const beta = new Float64Array(R);
  const kBeta = new Float64Array(R);
  const bBeta = new Float64Array(R);
  const rhs = new Float64Array(R);
  for (let j = 0; j < d; j++) {
    beta.set(p.factor.subarray(j * r, (j + 1) * r));
    beta[r] = p.mean[j]!;
    const a = c.gain[j]!;
    const cj = yZ.subarray(j * R, (j + 1) * R);
    packedMatVec(all, 0, R, beta, kBeta);
    packedMatVec(observedK, j * T, R, beta, bBeta);
    for (let q = 0; q < R; q++) rhs[q] = kBeta[q]! - a * bBeta[q]! + a * cj[q]!;
    const sumSq =
      dot(beta, kBeta) -
      a * (2 - a) * dot(beta, bBeta) +
      2 * a * (1 - a) * dot(beta, cj) +
      a * a * ySq[j]! +
      (n - counts[j]!) * p.diag[j]! +
      counts[j]! * c.condVar[j]!;
    const next = Float64Array.from(rhs);
    cholSolve(kChol, R, next);
    p.factor.set(next.subarray(0, r), j * r);
    p.mean[j] = next[r]!;
    p.diag[j] = Math.max((sumSq - dot(next, rhs)) / n, floor);
  }
  expandParameters(p, full, n);
}

/**
 * The parameter-expanded step of PX-EM (Liu, Rubin & Wu 1998): in the model with z ~ N(η, Γ) the
 * M-step also sets η and Γ to the mean and covariance of the posterior z̄ (from K = Σ_i E[z̃ z̃ᵀ],
 * `full`, R×R), and mapping back to z ~ N(0, I) gives μ ← μ + W η, W ← W L with Γ = L Lᵀ. The
 * likelihood still never decreases, and W no longer creeps up from a small start over hundreds of
 * iterations as in plain EM.
 */
function expandParameters(p: GaussianPrior, full: Float64Array, n: number): void {
  const { rank: r, dim: d, factor } = p;
  const R = r + 1;
  const eta = new Float64Array(r);
  for (let a = 0; a < r; a++) eta[a] = full[a * R + r]! / n;
  const gamma = new Float64Array(r * r);
  for (let a = 0; a < r; a++) for (let q = 0; q < r; q++) gamma[a * r + q] = full[a * R + q]! / n - eta[a]! * eta[q]!;
  const l = cholesky(gamma, r);
  const row = new Float64Array(r);
  for (let j = 0; j < d; j++) {
    const w = factor.subarray(j * r, (j + 1) * r);
    p.mean[j]! += dot(w, eta);
    row.fill(0);
    for (let a = 0; a < r; a++) for (let q = 0; q <= a; q++) row[q]! += w[a]! * l[a * r + q]!;
    w.set(row);
  }
}

/** x_j given z (and y_j where observed) for one sample into out[base..]: its mean, plus √Var · noise[j] when noise is given. */
function conditionalX(
  p: GaussianPrior,
  c: Conditioning,
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  base: number,
  z: Float64Array,
  noise: Float64Array | null,
  out: Float64Array,
): void {
  const { rank: r, dim: d, mean, factor } = p;
  for (let j = 0; j < d; j++) {
    let f = mean[j]!;
    for (let a = 0; a < r; a++) f += factor[j * r + a]! * z[a]!;
    const observed = mask[base + j] === 1;
    let x = observed ? c.gain[j]! * y[base + j]! + (1 - c.gain[j]!) * f : f;
    if (noise) x += Math.sqrt(observed ? c.condVar[j]! : p.diag[j]!) * noise[j]!;
    out[base + j] = x;
  }
}

/** μ and D from the observed values of each coordinate (D net of σ_y², floored), W small and random. */
function initialPrior(
  y: Float32Array | Float64Array,
  mask: Uint8Array,
  n: number,
  d: number,
  r: number,
  counts: Float64Array,
  sigmaY: number,
  floor: number,
  seed: bigint,
): GaussianPrior {
  const mean = new Float64Array(d);
  const diag = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) if (mask[i * d + j]) mean[j]! += y[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= counts[j]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) if (mask[i * d + j]) diag[j]! += (y[i * d + j]! - mean[j]!) ** 2;
  for (let j = 0; j < d; j++) diag[j] = Math.max(diag[j]! / counts[j]! - sigmaY * sigmaY, floor);
  // Small enough not to bias the start, nonzero so the first E-step sees some structure to grow: EM
  // amplifies the directions of shared variance geometrically from here. A zero W would be a fixed point.
  const factor = seededNormals(d * r, seed, INIT_STREAM);
  for (let j = 0; j < d; j++) for (let a = 0; a < r; a++) factor[j * r + a]! *= 0.1 * Math.sqrt(diag[j]! / r);
  return { mean, factor, diag, rank: r, dim: d, logLikelihood: [] };
}

function checkObservations(y: Float32Array | Float64Array, mask: Uint8Array, n: number, d: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`n: expected a positive integer, got ${String(n)}`);
  if (!Number.isSafeInteger(d) || d < 1) throw new RangeError(`d: expected a positive integer, got ${String(d)}`);
  if (!(y instanceof Float32Array || y instanceof Float64Array))
    throw new TypeError(`y: expected a Float32Array or Float64Array, got ${describe(y)}`);
  if (!(mask instanceof Uint8Array)) throw new TypeError(`mask: expected a Uint8Array, got ${describe(mask)}`);
  if (y.length !== n * d) throw new RangeError(`y: expected n × d = ${n} × ${d} = ${n * d} values, got ${y.length}`);
  if (mask.length !== n * d) throw new RangeError(`mask: expected n × d = ${n} × ${d} = ${n * d} values, got ${mask.length}`);
  for (let t = 0; t < n * d; t++) {
    const m = mask[t]!;
    if (m > 1) throw new RangeError(`mask: expected 0 or 1, got ${m} at sample ${Math.floor(t / d)}, coordinate ${t % d}`);
    if (m && !Number.isFinite(y[t]!))
      throw new RangeError(`y: expected finite observed values, got ${y[t]} at sample ${Math.floor(t / d)}, coordinate ${t % d}`);
  }
}

function checkPrior(p: GaussianPrior, d: number): void {
  const r = p.rank;
  if (p.dim !== d || p.mean.length !== d || p.diag.length !== d || p.factor.length !== d * r)
    throw new RangeError(
      `prior: expected dim ${d} (mean and diag of ${d}, factor of ${d} × rank ${r}), got dim ${p.dim}, ` +
        `mean ${p.mean.length}, diag ${p.diag.length}, factor ${p.factor.length}`,
    );
  const bad = p.diag.findIndex((v) => !(v > 0 && Number.isFinite(v)));
  if (bad >= 0) throw new RangeError(`prior.diag: expected finite values > 0, got ${p.diag[bad]} at coordinate ${bad}`);
}

function checkSigma(s: number, what: string): void {
  if (!(typeof s === 'number' && s >= 0 && Number.isFinite(s)))
    throw new RangeError(`${what}: expected a finite number ≥ 0, got ${String(s)}`);
}

const describe = (v: unknown): string => (v === null ? 'null' : typeof v === 'object' ? v.constructor.name : typeof v);
