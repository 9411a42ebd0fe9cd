// The denoisers' vector–Jacobian products against central finite differences, the exact Gaussian
// denoiser against a direct Cholesky solve, and conjugate gradients against a dense solve.
import { describe, expect, it } from 'vitest';
import { Generator, NoiseSchedule, randn, tensor, UNet, type Prediction } from '../../lib/index.ts';
import { cholesky, cholSolve } from '../../lib/metrics/linalg.ts';
import { unetPrior } from '../../lib/restore/denoiser.ts';
import { conjugateGradient } from '../../lib/restore/cg.ts';
import { D, denoiser, schedule, SHAPE, testPrior } from './setup.ts';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

/**
 * The VJP g = Jᵀu, and the directional derivative uᵀ J w along w = g / ‖g‖ by central differences of
 * step eps: they agree (both equal ‖g‖) only if g is Jᵀu, and ‖g‖ is never small by accident.
 */
async function vjpVersusFd(den: ReturnType<typeof denoiser>, shape: number[], t: number, eps: number, seed: number) {
  const g = new Generator(seed);
  const x = randn(shape, { generator: g });
  const u = randn(shape, { generator: g });
  const d = await den.denoise(x, t, { vjp: true });
  const jtu = await d.vjp(u);
  const gh = await jtu.toArray();
  const analytic = Math.sqrt(dot(gh, gh));
  d.dispose();
  const w = tensor(
    gh.map((v) => v / analytic),
    shape,
  );
  const [wp, wm] = [w.scale(eps), w.scale(-eps)];
  const xp = x.add(wp),
    xm = x.add(wm);
  const [dp, dm] = [await den.denoise(xp, t), await den.denoise(xm, t)];
  const uh = await u.toArray();
  const fd = (dot(uh, await dp.x0.toArray()) - dot(uh, await dm.x0.toArray())) / (2 * eps);
  for (const q of [x, u, w, wp, wm, jtu, xp, xm, dp, dm]) q.dispose();
  return { analytic, fd };
}

describe('vector–Jacobian products', () => {
  // A small UNet with every block active (zeroInit false), so J is far from a multiple of I.
  const config = { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [4], resolution: 8, zeroInit: false };
  for (const prediction of ['eps', 'x0', 'v'] as Prediction[])
    for (const t of [50, 600])
      it(`UNet (${prediction} prediction, t = ${t}) matches central differences`, async () => {
        const net = new UNet(config, { device: 'cpu', seed: 3 });
        const den = unetPrior(net, new NoiseSchedule({ kind: 'linear' }), prediction);
        // eps = 1e-2: the truncation error is O(eps²) times third derivatives of order 1; float32
        // rounding of the outputs (~1e-7 of values of order 1, over 64 terms) divided by 2 eps is ~1e-4.
        const { analytic, fd } = await vjpVersusFd(den, [2, 1, 8, 8], t, 1e-2, 7);
        expect(Math.abs(analytic - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
        // The VJP's scratch use of the parameter gradients is cleared again.
        expect((await net.grads.toArray()).every((v) => v === 0)).toBe(true);
        net.dispose();
      });

  it('exact Gaussian prior: linear, so central differences agree to rounding', async () => {
    const { analytic, fd } = await vjpVersusFd(denoiser(), [3, ...SHAPE], 300, 0.1, 11);
    expect(Math.abs(analytic - fd)).toBeLessThan(1e-4 * Math.max(1, Math.abs(analytic)));
  });
});

describe('exact Gaussian denoiser', () => {
  it('equals μ + √ᾱ Σ (ᾱ Σ + (1 − ᾱ) I)⁻¹ (x_t − √ᾱ μ) by a Cholesky solve', async () => {
    const { mean, cov } = testPrior();
    for (const t of [0, 250, 999]) {
      const ab = schedule.alphaBars[t]!;
      const x = Float32Array.from({ length: D }, (_, i) => Math.cos(1.7 * i + t));
      const xt = tensor(x, [1, ...SHAPE]);
      const d = await denoiser().denoise(xt, t);
      xt.dispose();
      const got = await d.x0.toArray();
      const a = cov.map((v, k) => ab * v + (Math.floor(k / D) === k % D ? 1 - ab : 0));
      const rhs = Float64Array.from(x, (v, i) => v - Math.sqrt(ab) * mean[i]!);
      cholSolve(cholesky(a, D), D, rhs);
      for (let i = 0; i < D; i++) {
        let s = mean[i]!;
        for (let j = 0; j < D; j++) s += Math.sqrt(ab) * cov[i * D + j]! * rhs[j]!;
        expect(got[i]).toBeCloseTo(s, 5);
      }
      d.dispose();
    }
  });
});

describe('conjugate gradients', () => {
  it('m iterations solve m×m SPD systems as a dense Cholesky solve does, one system per sample', async () => {
    const m = 6,
      n = 3;
    const mats: Float64Array[] = [];
    for (let b = 0; b < n; b++) {
      const g = Float64Array.from({ length: m * m }, (_, k) => Math.sin(k * 1.3 + b * 7));
      const a = new Float64Array(m * m);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++) {
          let s = i === j ? 0.5 : 0;
          for (let k = 0; k < m; k++) s += g[i * m + k]! * g[j * m + k]!;
          a[i * m + j] = s;
        }
      mats.push(a);
    }
    const rhs = Float64Array.from({ length: n * m }, (_, k) => Math.cos(k));
    const matvec = async (p: Float32Array) => {
      const out = new Float32Array(n * m);
      for (let b = 0; b < n; b++)
        for (let i = 0; i < m; i++) out[b * m + i] = dot(mats[b]!.subarray(i * m, (i + 1) * m), p.subarray(b * m, (b + 1) * m));
      return out;
    };
    // The products round p to float32 (as device products do): about 1e-6 relative.
    const v = await conjugateGradient(matvec, rhs, n, m);
    for (let b = 0; b < n; b++) {
      const exact = rhs.slice(b * m, (b + 1) * m);
      cholSolve(cholesky(mats[b]!, m), m, exact);
      const scale = Math.max(...exact.map(Math.abs));
      for (let i = 0; i < m; i++) expect(Math.abs(v[b * m + i]! - exact[i]!)).toBeLessThan(1e-4 * scale);
    }
    // Zero iterations return 0; a zero right-hand side stays 0 without dividing by zero.
    expect((await conjugateGradient(matvec, rhs, n, 0)).every((x) => x === 0)).toBe(true);
    expect((await conjugateGradient(matvec, new Float64Array(n * m), n, 4)).every((x) => x === 0)).toBe(true);
    await expect(conjugateGradient(matvec, rhs, n, -1)).rejects.toThrow(/cgIterations/);
  });
});
