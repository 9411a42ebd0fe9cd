// The calibration figures of the restoration experiment: the band coverage count and the mark exact
// posterior samples reach, against closed forms of Student's t and a Monte-Carlo draw.
import { describe, expect, it } from 'vitest';
import { bandCoverage, gaussianCoverageMark } from '../../lib/restore/coverage.ts';
import { Generator } from '../../lib/random.ts';
import { randn } from '../../lib/tensor.ts';

describe('bandCoverage', () => {
  it('counts the values inside mean ± z·std, edges included', () => {
    const ref = [0, 1, 2, 3, -1];
    const mean = [0, 0, 0, 0, 0];
    const std = [0, 0.5, 0.5, 1, 0.1];
    // inside: 0 (|0| <= 0), 1 (<= 1), 2? |2| <= 1 no, 3? <= 2 no, -1? <= 0.2 no
    expect(bandCoverage(ref, mean, std)).toBe(2 / 5);
    expect(bandCoverage(ref, mean, std, 3)).toBe(3 / 5); // 3 <= 3 now inside
  });
  it('refuses arrays of different lengths and empty ones', () => {
    expect(() => bandCoverage([1, 2], [1], [1, 1])).toThrow(/one length, got 2, 1 and 2/);
    expect(() => bandCoverage([], [], [])).toThrow(/at least one value/);
  });
});

describe('gaussianCoverageMark', () => {
  it("matches Student's t in closed form for 1, 2 and 3 degrees of freedom", () => {
    const t = (K: number) => 2 / Math.sqrt(1 + 1 / K);
    // ν = 1 (Cauchy): (2/π) atan t; ν = 2: t / √(2 + t²); ν = 3: (2/π)(atan(t/√3) + (t/√3)/(1 + t²/3)).
    expect(gaussianCoverageMark(2)).toBeCloseTo((2 / Math.PI) * Math.atan(t(2)), 9);
    expect(gaussianCoverageMark(3)).toBeCloseTo(t(3) / Math.sqrt(2 + t(3) ** 2), 9);
    const u = t(4) / Math.sqrt(3);
    expect(gaussianCoverageMark(4)).toBeCloseTo((2 / Math.PI) * (Math.atan(u) + u / (1 + u * u)), 9);
    expect(gaussianCoverageMark(4)).toBeCloseTo(0.8284, 3);
  });
  it('tends to the normal 95.45 % as K grows', () => {
    expect(gaussianCoverageMark(100_000)).toBeCloseTo(0.9545, 3);
  });
  it('is what K exact Gaussian samples and a fresh draw reach (Monte Carlo)', async () => {
    const K = 3,
      n = 20_000;
    const draws = await randn([n, K + 1], { generator: new Generator(5n) }).toArray();
    const ref = new Float64Array(n),
      mean = new Float64Array(n),
      std = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = draws.subarray(i * (K + 1), i * (K + 1) + K);
      const m = s.reduce((a, b) => a + b, 0) / K;
      mean[i] = m;
      std[i] = Math.sqrt(s.reduce((a, b) => a + (b - m) ** 2, 0) / (K - 1));
      ref[i] = draws[i * (K + 1) + K]!;
    }
    const p = gaussianCoverageMark(K);
    // 4 binomial standard errors (0.012 at n = 20,000).
    expect(Math.abs(bandCoverage(ref, mean, std) - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
  });
  it('refuses K < 2 and a bad z', () => {
    expect(() => gaussianCoverageMark(1)).toThrow(/K must be an integer >= 2.*got 1/);
    expect(() => gaussianCoverageMark(3, -1)).toThrow(/z must be a finite number > 0, got -1/);
  });
});
