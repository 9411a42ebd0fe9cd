// The conditioned-diffusion data of the paper's first experiment (docs/transfer.md): x ∈ R^50 is an
// Euler–Maruyama path of du = β u(1−u²)/(1+u²) ds + dw, u_0 = 0, step Δ = 0.02 on (0, 1] (the SDE is
// Cui et al. 2016's; the paper's text lost it, so this is our assumption), observed as
// y = M x + N(0, I/4) with a fixed M ∈ R^{100×50}. The path prior has a closed-form density, so the
// exact posterior p(x | y) is known up to a constant; its mean, the experiment's reference, is estimated
// by MALA (Metropolis-adjusted Langevin), as the paper's "long Langevin Monte Carlo".
import { seededNormals } from '../metrics/normals.ts';
import { philoxBlock } from '../random.ts';

export const PATH_STEPS = 50;
export const DT = 0.02;
export const Y_DIM = 100;
/** Observation noise variance (I/4). */
export const NOISE_VAR = 0.25;

const drift = (u: number) => (u * (1 - u * u)) / (1 + u * u);
const driftPrime = (u: number) => (1 - 4 * u * u - u ** 4) / (1 + u * u) ** 2;

/**
 * The fixed measurement matrix: entries N(0, 1/50) from Philox (seed, stream 0), so Mx has about the
 * scale of one coordinate of x and MᵀM ≈ 2I. Row-major [100, 50].
 */
export function measurementMatrix(seed: bigint | number = 2025): Float32Array {
  const z = seededNormals(Y_DIM * PATH_STEPS, BigInt(seed), 0n);
  return Float32Array.from(z, (v) => v / Math.sqrt(PATH_STEPS));
}

/** n paths with parameter β: [n, 50]. Stream s of `seed` drives the Brownian increments. */
export function langevinPaths(beta: number, n: number, seed: bigint, stream: bigint): Float32Array {
  if (!Number.isFinite(beta)) throw new RangeError(`langevin: beta must be finite, got ${beta}`);
  const z = seededNormals(n * PATH_STEPS, seed, stream);
  const x = new Float32Array(n * PATH_STEPS);
  const sq = Math.sqrt(DT);
  for (let r = 0; r < n; r++) {
    let u = 0;
    for (let k = 0; k < PATH_STEPS; k++) {
      u = u + DT * beta * drift(u) + sq * z[r * PATH_STEPS + k]!;
      x[r * PATH_STEPS + k] = u;
    }
  }
  return x;
}

/** y = M x + N(0, I/4) for x [n, 50]: [n, 100]. */
export function observe(M: Float32Array, x: Float32Array, n: number, seed: bigint, stream: bigint): Float32Array {
  const z = seededNormals(n * Y_DIM, seed, stream);
  const y = new Float32Array(n * Y_DIM);
  const sd = Math.sqrt(NOISE_VAR);
  for (let r = 0; r < n; r++)
    for (let i = 0; i < Y_DIM; i++) {
      let acc = 0;
      for (let j = 0; j < PATH_STEPS; j++) acc += M[i * PATH_STEPS + j]! * x[r * PATH_STEPS + j]!;
      y[r * Y_DIM + i] = acc + sd * z[r * Y_DIM + i]!;
    }
  return y;
}

/** The pairs of one task: n paths with parameter β and their observations. */
export function langevinTask(
  beta: number,
  n: number,
  M: Float32Array,
  seed: bigint,
  task: number,
): { x: Float32Array; y: Float32Array; n: number } {
  const x = langevinPaths(beta, n, seed, BigInt(2 * task + 1));
  return { x, y: observe(M, x, n, seed, BigInt(2 * task + 2)), n };
}

/** log p(x | y) up to a constant and its gradient (double), for one path x [50]. */
export function logPosterior(x: Float64Array, beta: number, MtM: Float64Array, Mty: Float64Array, grad: Float64Array): number {
  const d = PATH_STEPS;
  grad.fill(0);
  let lp = 0;
  let prev = 0;
  for (let k = 0; k < d; k++) {
    const r = x[k]! - prev - DT * beta * drift(prev);
    lp -= (r * r) / (2 * DT);
    grad[k]! -= r / DT;
    if (k > 0) grad[k - 1]! += (r / DT) * (1 + DT * beta * driftPrime(prev));
    prev = x[k]!;
  }
  // −‖y − Mx‖²/(2·¼) = −2(xᵀMᵀMx − 2 xᵀMᵀy) + const
  const prec = 1 / NOISE_VAR;
  for (let i = 0; i < d; i++) {
    let q = 0;
    for (let j = 0; j < d; j++) q += MtM[i * d + j]! * x[j]!;
    lp -= 0.5 * prec * (x[i]! * q - 2 * x[i]! * Mty[i]!);
    grad[i]! += prec * (Mty[i]! - q);
  }
  return lp;
}

export interface MalaOptions {
  chains?: number;
  burnIn?: number;
  samples?: number;
  seed?: bigint | number;
}

/**
 * The posterior mean E[x | y] for each y [n, 100] by MALA: `chains` chains from 0, a burn-in that adapts
 * the step size towards 50% acceptance (×1.02 on accept, ×0.98 on reject), then the average over `samples` steps of every chain. Returns
 * [n, 50] and the mean acceptance rate.
 */
export function malaPosteriorMean(
  y: Float32Array,
  n: number,
  beta: number,
  M: Float32Array,
  options: MalaOptions = {},
): { mean: Float64Array; acceptance: number } {
  const d = PATH_STEPS;
  const chains = options.chains ?? 4;
  const burnIn = options.burnIn ?? 2000;
  const samples = options.samples ?? 4000;
  const seed = BigInt(options.seed ?? 0);
  const MtM = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < Y_DIM; k++) s += M[k * d + i]! * M[k * d + j]!;
      MtM[i * d + j] = s;
    }
  const mean = new Float64Array(n * d);
  let accepted = 0;
  let proposed = 0;
  const g = new Float64Array(d);
  const gp = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const Mty = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let k = 0; k < Y_DIM; k++) Mty[i]! += M[k * d + i]! * y[r * Y_DIM + k]!;
    for (let c = 0; c < chains; c++) {
      const stream = BigInt(r * chains + c) * 2n;
      const z = seededNormals((burnIn + samples) * d, seed, stream);
      let x = new Float64Array(d);
      let lp = logPosterior(x, beta, MtM, Mty, g);
      let h = 2e-3;
      let word = 0;
      let block: number[] = [];
      const uniform = () => {
        if (word % 4 === 0) block = philoxBlock(seed, 0n, stream + 1n, word / 4);
        return (block[word++ % 4]! + 0.5) / 4294967296;
      };
      for (let it = 0; it < burnIn + samples; it++) {
        const prop = new Float64Array(d);
        const sq = Math.sqrt(2 * h);
        for (let i = 0; i < d; i++) prop[i] = x[i]! + h * g[i]! + sq * z[it * d + i]!;
        const lq = logPosterior(prop, beta, MtM, Mty, gp);
        // log q(x | prop) − log q(prop | x) for the Langevin proposal N(x + h∇, 2h I)
        let fwd = 0;
        let bwd = 0;
        for (let i = 0; i < d; i++) {
          fwd += (prop[i]! - x[i]! - h * g[i]!) ** 2;
          bwd += (x[i]! - prop[i]! - h * gp[i]!) ** 2;
        }
        const logA = lq - lp + (fwd - bwd) / (4 * h);
        const ok = Math.log(uniform()) < logA;
        if (ok) {
          x = prop;
          lp = lq;
          g.set(gp);
        }
        if (it < burnIn) h *= ok ? 1.02 : 0.98;
        else {
          proposed++;
          if (ok) accepted++;
          for (let i = 0; i < d; i++) mean[r * d + i]! += x[i]! / (chains * samples);
        }
      }
    }
  }
  return { mean, acceptance: accepted / Math.max(1, proposed) };
}
