// The ancestral sampler with the exact noise predictor of a Gaussian model, whose posterior is known in
// closed form: x ~ N(m, v), y = x + N(0, τ²) gives x | y ~ N(μ, s²) with s² = vτ²/(v + τ²),
// μ = (τ² m + v y)/(v + τ²); under the OU process x_t | y ~ N(α_t μ, α_t² s² + σ_t²), so
// ε̂ = σ_t (x_t − α_t μ)/(α_t² s² + σ_t²). The sampled mean and variance must match (μ, s²).
import { describe, expect, it } from 'vitest';
import { alphaOf, sigmaOf, TransferModel } from '../../lib/transfer/model.ts';
import { ancestralSample, meanSquaredError, posteriorMean, sampleConditional, sampleMse, timeGrid } from '../../lib/transfer/sample.ts';

describe('transfer conditional sampling', () => {
  it('samples the exact Gaussian posterior with the exact score', () => {
    const m = 0.5,
      v = 2,
      tau2 = 0.25,
      y = 1.7;
    const s2 = (v * tau2) / (v + tau2);
    const mu = (tau2 * m + v * y) / (v + tau2);
    const rows = 6000;
    const model = new TransferModel(
      { xDim: 1, yDim: 1, repDim: 1, encoder: { hidden: 2, depth: 1 }, head: { hidden: 2, depth: 1 } },
      { heads: 1 },
    );
    const grid = timeGrid(model, 200);
    const predict = (x: Float32Array, t: number) => {
      const a = alphaOf(t),
        s = sigmaOf(t);
      return Float32Array.from(x, (xt) => (s * (xt - a * mu)) / (a * a * s2 + s * s));
    };
    const out = ancestralSample(predict, rows, 1, grid, 3n);
    let mean = 0;
    for (const u of out) mean += u / rows;
    let varc = 0;
    for (const u of out) varc += (u - mean) ** 2 / (rows - 1);
    // sampling error of the mean: 4 sd/√rows; of the variance: about s²·√(2/rows) ≈ 1.8%
    expect(Math.abs(mean - mu)).toBeLessThan(4 * Math.sqrt(s2 / rows));
    expect(Math.abs(varc / s2 - 1)).toBeLessThan(0.08);
  });

  it('returns [n, samples, xDim], reproducibly, whatever the chunk size', () => {
    const model = new TransferModel(
      { xDim: 3, yDim: 2, repDim: 2, encoder: { hidden: 4, depth: 2 }, head: { hidden: 5, depth: 2 } },
      { heads: 2, seed: 4 },
    );
    const y = Float32Array.from([0.1, -0.3, 0.7, 0.2, 1.0, 0.0]);
    const a = sampleConditional(model, y, 3, { head: 1, samples: 4, steps: 6, seed: 9 });
    const b = sampleConditional(model, y, 3, { head: 1, samples: 4, steps: 6, seed: 9, chunk: 5 });
    expect(a.length).toBe(3 * 4 * 3);
    expect(b).toEqual(a);
    expect(sampleConditional(model, y, 3, { head: 1, samples: 4, steps: 6, seed: 10 })).not.toEqual(a);
    expect(() => sampleConditional(model, y, 2)).toThrow(/y has 6 values, expected n \* yDim = 4/);
    expect(() => sampleConditional(model, y, 3, { head: 2 })).toThrow(/no head 2/);
  });

  it('computes the metrics from their definitions', () => {
    // two conditions, two samples each, d = 2
    const samples = Float32Array.from([1, 0, 3, 0, 0, 2, 0, 4]);
    const pm = posteriorMean(samples, 2, 2, 2);
    expect(Array.from(pm)).toEqual([2, 0, 0, 3]);
    const truth = [2, 1, 1, 3];
    expect(meanSquaredError(pm, truth, 2, 2)).toBeCloseTo((1 + 1) / 2, 12); // ‖·‖² summed over d, mean over conditions
    expect(meanSquaredError(pm, truth, 2, 2, true)).toBeCloseTo(2 / 4, 12);
    // per-coordinate sample MSE: ((1+1)+(1+1)+(1+1)+(1+1)) / 8
    expect(sampleMse(samples, truth, 2, 2, 2)).toBeCloseTo(8 / 8, 12);
  });
});
