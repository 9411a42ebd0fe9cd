// The audit's bookkeeping with denoisers whose error is known exactly: the exact one (error = float32
// rounding), one off by a fixed vector (every error equals that vector's norm), and one wrong only on
// a rare component (the RMS sees it, the quantile does not).
import { describe, expect, it } from 'vitest';
import { NoiseSchedule } from '../../lib/schedule.ts';
import { tensor, type Tensor } from '../../lib/tensor.ts';
import { GaussianMixture } from '../../lib/score-error/mixture.ts';
import { scoreErrorAudit } from '../../lib/score-error/audit.ts';
import type { Prediction } from '../../lib/schedule.ts';

const schedule = new NoiseSchedule({ kind: 'linear' });
const mixture = GaussianMixture.random({ shape: [1, 4, 4], components: 3, rank: 2, seed: 2, spread: 0.3, noise: 0.05 });

/** A denoiser from an ε-space function of (x_t, ᾱ), returned as `prediction` by the textbook conversions. */
function analytic(prediction: Prediction, epsOf: (xt: Float32Array, ab: number, n: number) => Float64Array) {
  return async (x: Tensor, t: Float32Array): Promise<Tensor> => {
    const xt = await x.toArray();
    const ab = schedule.alphaBars[t[0]!]!;
    const eps = epsOf(xt, ab, t.length);
    const out = new Float32Array(xt.length);
    for (let i = 0; i < xt.length; i++) {
      const e = eps[i]!;
      const x0 = (xt[i]! - Math.sqrt(1 - ab) * e) / Math.sqrt(ab);
      out[i] = prediction === 'eps' ? e : prediction === 'x0' ? x0 : Math.sqrt(ab) * e - Math.sqrt(1 - ab) * x0;
    }
    return tensor(out, x.shape, { device: 'cpu' });
  };
}

const exact = (xt: Float32Array, ab: number) => mixture.noised(ab).epsStar(xt);

describe('scoreErrorAudit', () => {
  it('gives zero error (to float32 rounding) for the exact score, whatever the prediction target', async () => {
    for (const prediction of ['eps', 'x0', 'v'] as const) {
      const report = await scoreErrorAudit(analytic(prediction, exact), {
        mixture,
        schedule,
        prediction,
        levels: [50, 500, 999],
        delta: 0.1,
        samples: 500,
        device: 'cpu',
      });
      expect(report.dim).toBe(16);
      for (const row of report.levels) {
        // x0-prediction loses √ᾱ/√(1−ᾱ) digits at small t when turned back into ε
        const tol = prediction === 'x0' ? 1e-4 * Math.sqrt(row.alphaBar / (1 - row.alphaBar)) + 1e-5 : 1e-5;
        expect(row.max).toBeLessThan(tol);
        expect(row.samples).toBe(500);
      }
    }
  });

  it('an error of fixed size shows in every statistic exactly', async () => {
    const c = new Float64Array(16).map((_, i) => (i % 2 ? 0.3 : -0.4)); // ‖c‖ = √(8·0.09 + 8·0.16) = √2
    const shifted = (xt: Float32Array, ab: number) => exact(xt, ab).map((v, i) => v + c[i % 16]!);
    const report = await scoreErrorAudit(analytic('eps', shifted), {
      mixture,
      schedule,
      prediction: 'eps',
      levels: [200, 700],
      delta: 0.05,
      samples: 1000,
      device: 'cpu',
    });
    for (const row of report.levels) {
      for (const v of [row.quantile, row.upperBound, row.rms, row.max]) expect(Math.abs(v - Math.SQRT2)).toBeLessThan(1e-5);
      expect(Math.abs(row.scoreQuantile - Math.SQRT2 / Math.sqrt(1 - row.alphaBar))).toBeLessThan(1e-4);
      expect(row.sigma).toBeCloseTo(Math.sqrt((1 - row.alphaBar) / row.alphaBar), 12);
      expect(row.countByComponent.reduce((a, b) => a + b, 0)).toBe(1000);
    }
  });

  it('a rare component with a large error inflates the RMS but not the (1−δ)-quantile', async () => {
    const rare = GaussianMixture.random({
      shape: [1, 4, 4],
      components: 3,
      rank: 2,
      seed: 2,
      spread: 0.3,
      noise: 0.05,
      weights: [1, 1, 0.006],
    });
    const wrongOnRare = (xt: Float32Array, ab: number, n: number) => {
      const nm = rare.noised(ab);
      const star = nm.epsStar(xt);
      // The responsibility of the rare component, from the densities of the mixture with and without it.
      const without = new GaussianMixture(rare.shape, rare.components.slice(0, 2)).noised(ab).logDensity(xt);
      const all = nm.logDensity(xt);
      for (let i = 0; i < n; i++) {
        const rest = (rare.weights[0]! + rare.weights[1]!) * Math.exp(without[i]! - all[i]!);
        if (1 - rest > 0.5) for (let j = 0; j < 16; j++) star[i * 16 + j]! += 5 / 4; // ‖error‖ = 5
      }
      return star;
    };
    const [row] = (
      await scoreErrorAudit(analytic('eps', wrongOnRare), {
        mixture: rare,
        schedule,
        prediction: 'eps',
        levels: [100],
        delta: 0.02,
        samples: 4000,
        device: 'cpu',
      })
    ).levels;
    const nRare = row!.countByComponent[2]!;
    expect(nRare).toBeGreaterThan(5); // ~0.3 % of 4000
    expect(nRare).toBeLessThan(0.02 * 4000 - 30); // well inside the δ tail
    expect(row!.rmsByComponent[2]!).toBeGreaterThan(4.9); // each rare point is off by 5 …
    expect(row!.rms).toBeGreaterThan(0.9 * 5 * Math.sqrt(nRare / 4000)); // … which the RMS averages in
    expect(row!.quantile).toBeLessThan(1e-5); // … and the quantile ignores
    expect(row!.upperBound).toBeLessThan(1e-5);
    expect(row!.max).toBeGreaterThan(4.9);
  });

  it('is a pure function of its seed', async () => {
    const noisy = (xt: Float32Array, ab: number) => exact(xt, ab).map((v, i) => v + 0.1 * Math.sin(xt[i]! * 7));
    const run = (seed: number) =>
      scoreErrorAudit(analytic('eps', noisy), {
        mixture,
        schedule,
        prediction: 'eps',
        levels: [300],
        delta: 0.1,
        samples: 300,
        seed,
        device: 'cpu',
      });
    const [a, b, c] = await Promise.all([run(1), run(1), run(2)]);
    expect(a).toEqual(b);
    expect(a.levels[0]!.quantile).not.toBe(c.levels[0]!.quantile);
  });

  it('says what is wrong with its options and with the denoiser', async () => {
    const ok = analytic('eps', exact);
    const base = { mixture, schedule, prediction: 'eps' as const, device: 'cpu', levels: [10] };
    await expect(scoreErrorAudit(ok, { ...base, delta: 0.01, samples: 100 })).rejects.toThrow(/use at least 299/);
    await expect(scoreErrorAudit(ok, { ...base, levels: [1000] })).rejects.toThrow(/levels: expected step indices in \[0, 999\]/);
    await expect(scoreErrorAudit(ok, { ...base, prediction: 'score' as Prediction })).rejects.toThrow(/prediction/);
    const nan = analytic('eps', (xt) => new Float64Array(xt.length).fill(NaN));
    await expect(scoreErrorAudit(nan, { ...base, delta: 0.1, samples: 100 })).rejects.toThrow(/non-finite output at step 10/);
    const small = (x: Tensor) => tensor(new Float32Array(4), [1, 1, 2, 2], { device: x.device });
    await expect(scoreErrorAudit(small, { ...base, delta: 0.1, samples: 100 })).rejects.toThrow(
      /returned 4 values for a batch of 100 × 16/,
    );
    const ac = new AbortController();
    ac.abort();
    await expect(scoreErrorAudit(ok, { ...base, delta: 0.1, samples: 100, signal: ac.signal })).rejects.toThrow(/abort/i);
  });
});
