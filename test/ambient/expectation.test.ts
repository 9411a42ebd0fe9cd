// The expectation property of the Ambient Diffusion loss (Daras et al. 2023, docs/ambient.md) on a
// Gaussian toy, against an independent double-precision computation. Data x0 ~ N(μ, Σ) in 4 pixels,
// masks A that keep each pixel with probability 1 − p, the library's further corruption Ã = A ⊙ B,
// noising and loss. For a denoiser h linear in its input given Ã, h = W_Ã (Ã x_t) + b_Ã, the expected
// loss is analytic:
//   E[loss] = (1/n) Σ_Ã P(Ã) Σ_i q_i(Ã) E[(h_i − x0_i)² | Ã],   q_i = 1 on Ã, else P(A_i = 1 | Ã_i = 0),
// with E[(h − x0)²] from the Gaussian moments of e = (a W D − I) x0 + s W D ε + b (D = diag Ã). The
// Monte Carlo mean of the library's loss must match it for the exact conditional mean E[x0 | Ã x_t]
// and for other denoisers, and the conditional mean must be the smallest: q_i > 0 on every pixel, so
// the optimum is the clean conditional mean on unobserved pixels too.
import { describe, expect, it } from 'vitest';
import { corruptDataset, NoiseSchedule, tensor } from '../../lib/index.ts';
import { ambientBatch, ambientLoss } from '../../lib/ambient/train.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

const n = 4;
const mu = [0.3, -0.2, 0.1, 0.5];
// Σ = L Lᵀ with a fixed lower-triangular L: correlated pixels, so unseen ones are predictable.
const L = [
  [0.8, 0, 0, 0],
  [0.5, 0.6, 0, 0],
  [0.3, 0.4, 0.5, 0],
  [0.1, 0.3, 0.4, 0.45],
];
const Sigma = L.map((r) => L.map((q) => r.reduce((acc, v, k) => acc + v * q[k]!, 0)));
const p = 0.4;
const delta = 0.3;

/** Solves A x = b (Gauss-Jordan with pivoting) in double. */
function solve(A: number[][], b: number[][]): number[][] {
  const m = A.length;
  const M = A.map((r, i) => [...r, ...b[i]!]);
  for (let c = 0; c < m; c++) {
    let piv = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[piv]![c]!)) piv = r;
    [M[c], M[piv]] = [M[piv]!, M[c]!];
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k < M[r]!.length; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((r, i) => r.slice(m).map((v) => v / M[i]![i]!));
}

/** The conditional mean E[x0 | z] for z = D(a x0 + s ε) as W z + b (W zero on unseen columns). */
function conditionalMean(obs: number[], a: number, s: number): { W: number[][]; b: number[] } {
  const W = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  if (obs.length === 0) return { W, b: [...mu] };
  const Soo = obs.map((i) => obs.map((j) => a * a * Sigma[i]![j]! + (i === j ? s * s : 0)));
  // K = a Σ_{:,O} Soo⁻¹  (n x |O|), via Soo K_rowᵀ = a Σ_{O,:}
  const KT = solve(
    Soo,
    obs.map((i) => Sigma[i]!.map((v) => a * v)),
  ); // |O| x n
  const b = [...mu];
  for (let r = 0; r < n; r++)
    obs.forEach((j, k) => {
      W[r]![j] = KT[k]![r]!;
      b[r]! -= KT[k]![r]! * a * mu[j]!;
    });
  return { W, b };
}

type Linear = (mask: number) => { W: number[][]; b: number[] };

/** The analytic expected loss of a linear denoiser, in double. */
function expectedLoss(h: Linear, a: number, s: number): number {
  const keepT = (1 - p) * (1 - delta);
  const q0 = ((1 - p) * delta) / (1 - keepT); // P(A_i = 1 | Ã_i = 0)
  let total = 0;
  for (let m = 0; m < 1 << n; m++) {
    const d = Array.from({ length: n }, (_, i) => (m >> i) & 1);
    const prob = d.reduce((pr, v) => pr * (v ? keepT : 1 - keepT), 1);
    const { W, b } = h(m);
    // M = a W D − I, e = M x0 + s W D ε + b
    const M = W.map((r, i) => r.map((v, j) => a * v * d[j]! - (i === j ? 1 : 0)));
    for (let i = 0; i < n; i++) {
      const mean = M[i]!.reduce((acc, v, j) => acc + v * mu[j]!, 0) + b[i]!;
      let varX = 0;
      for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) varX += M[i]![j]! * Sigma[j]![k]! * M[i]![k]!;
      const varE = s * s * W[i]!.reduce((acc, v, j) => acc + v * v * d[j]!, 0);
      total += (prob * (d[i] ? 1 : q0) * (mean * mean + varX + varE)) / n;
    }
  }
  return total;
}

describe('Ambient Diffusion loss: expectation on a Gaussian toy', () => {
  it('the Monte Carlo mean of the library loss matches the analytic expectation; the clean conditional mean is its minimiser', async () => {
    const N = 24576;
    const z = seededNormals(N * n, 11n, 0n);
    const x0 = new Float32Array(N * n);
    for (let b = 0; b < N; b++)
      for (let i = 0; i < n; i++) x0[b * n + i] = mu[i]! + L[i]!.reduce((acc, v, k) => acc + v * z[b * n + k]!, 0);
    const set = await corruptDataset(x0, [N, 1, 1, n], { corruption: { kind: 'mask', p }, sigma0: 0, seed: 5, device: 'cpu' });
    const schedule = new NoiseSchedule({ kind: 'linear' });
    const t = 150;
    const ab = schedule.alphaBars[t]!;
    const [a, s] = [Math.sqrt(ab), Math.sqrt(1 - ab)];

    const exact: Linear = (m) =>
      conditionalMean(
        [0, 1, 2, 3].filter((i) => (m >> i) & 1),
        a,
        s,
      );
    const shifted: Linear = (m) => ({ W: exact(m).W, b: exact(m).b.map((v, i) => v + 0.2 * (i - 1.5)) });
    const shrunk: Linear = (m) => ({ W: exact(m).W.map((r) => r.map((v) => 0.7 * v)), b: exact(m).b });
    // Only the observed pixels predicted well, the unseen ones left at 0: what a loss on Ã alone would allow.
    const blind: Linear = (m) => ({
      W: exact(m).W.map((r, i) => ((m >> i) & 1 ? r : r.map(() => 0))),
      b: exact(m).b.map((v, i) => ((m >> i) & 1 ? v : 0)),
    });
    const denoisers = { exact, shifted, shrunk, blind };

    const batch = 512;
    const means: Record<string, number[]> = Object.fromEntries(Object.keys(denoisers).map((k) => [k, []]));
    for (let start = 0; start < N; start += batch) {
      const indices = Array.from({ length: batch }, (_, k) => start + k);
      const ts = new Int32Array(batch).fill(t);
      const B = ambientBatch(set, indices, ts, { schedule, seed: 3n, stream: BigInt(start) * 4n, further: { delta } });
      const y = tensor(B.y, [batch, 1, 1, n], { device: 'cpu' });
      const obs = tensor(B.observed, [batch, 1, 1, n], { device: 'cpu' });
      for (const [name, h] of Object.entries(denoisers)) {
        const out = new Float32Array(batch * n);
        for (let r = 0; r < batch; r++) {
          // The network's input: channel 0 is Ã ⊙ x_t, channel 1 is Ã.
          const zin = B.input.subarray(r * 2 * n, r * 2 * n + n);
          const min = B.input.subarray(r * 2 * n + n, (r + 1) * 2 * n);
          let m = 0;
          for (let i = 0; i < n; i++) if (min[i]) m |= 1 << i;
          const { W, b } = h(m);
          for (let i = 0; i < n; i++) out[r * n + i] = W[i]!.reduce((acc, v, j) => acc + v * zin[j]!, 0) + b[i]!;
        }
        const o = tensor(out, [batch, 1, 1, n], { device: 'cpu' });
        const { gout, loss } = ambientLoss(o, y, obs);
        means[name]!.push(await loss);
        gout.dispose();
        o.dispose();
      }
      y.dispose();
      obs.dispose();
    }
    const stat = (v: number[]) => {
      const m = v.reduce((x, y) => x + y, 0) / v.length;
      const sd = Math.sqrt(v.reduce((x, y) => x + (y - m) ** 2, 0) / (v.length - 1));
      return { mean: m, se: sd / Math.sqrt(v.length) };
    };
    const analytic: Record<string, number> = {};
    for (const [name, h] of Object.entries(denoisers)) {
      analytic[name] = expectedLoss(h, a, s);
      const { mean, se } = stat(means[name]!);
      console.log(`${name}: Monte Carlo ${mean.toFixed(5)} ± ${se.toFixed(5)}, analytic ${analytic[name]!.toFixed(5)}`);
      expect(Math.abs(mean - analytic[name]!)).toBeLessThan(5 * se);
    }
    // Paired differences to the exact conditional mean: much smaller errors, same analytic check.
    for (const name of ['shifted', 'shrunk', 'blind']) {
      const diff = stat(means[name]!.map((v, k) => v - means.exact![k]!));
      expect(Math.abs(diff.mean - (analytic[name]! - analytic.exact!))).toBeLessThan(5 * diff.se);
      expect(diff.mean).toBeGreaterThan(5 * diff.se); // the conditional mean wins, unseen pixels included
    }
  }, 120_000);
});
