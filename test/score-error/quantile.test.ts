// The order-statistic quantile and its upper confidence bound, against exact rational arithmetic and
// against the coverage it promises, measured by simulation.
import { describe, expect, it } from 'vitest';
import { binomialCdf, minimumSamples, quantileWithBound } from '../../lib/score-error/quantile.ts';
import { philoxBlock } from '../../lib/random.ts';

/** P(Bin(n, num/den) ≤ k) for every k, exactly in BigInt, then divided once. */
function exactCdf(n: number, num: bigint, den: bigint): number[] {
  const out: number[] = [];
  let choose = 1n;
  let acc = 0n;
  const total = den ** BigInt(n);
  for (let k = 0; k <= n; k++) {
    if (k > 0) choose = (choose * BigInt(n - k + 1)) / BigInt(k);
    acc += choose * num ** BigInt(k) * (den - num) ** BigInt(n - k);
    // 1e15 fixed point keeps 15 significant digits through the BigInt division
    out.push(Number((acc * 10n ** 15n) / total) / 1e15);
  }
  return out;
}

describe('binomialCdf', () => {
  it('matches exact rational arithmetic', () => {
    for (const [n, num, den] of [
      [30, 9n, 10n],
      [200, 99n, 100n],
      [7, 1n, 2n],
    ] as const) {
      const got = binomialCdf(n, Number(num) / Number(den));
      const want = exactCdf(n, num, den);
      for (let k = 0; k <= n; k++) expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-12);
    }
  });
});

describe('quantileWithBound', () => {
  it('picks the order statistics that exact binomial sums give', () => {
    // values 1..100 in scrambled order: x_(j) = j
    const values = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    const q = quantileWithBound(values, 0.1, 0.95);
    expect(q.rank).toBe(90);
    expect(q.quantile).toBe(90);
    const cdf = exactCdf(100, 9n, 10n);
    const j = cdf.findIndex((c) => c >= 0.95) + 1; // smallest j with P(Bin ≤ j−1) ≥ 0.95
    expect(q.upperRank).toBe(j);
    expect(q.upperBound).toBe(j);
    expect(q.coverage).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(q.coverage - cdf[j - 1]!)).toBeLessThan(1e-12);
    expect(cdf[j - 2]!).toBeLessThan(0.95); // and j − 1 would not do
  });

  it('covers the true quantile as often as it promises', () => {
    // Uniform(0, 1) draws: the true 0.95-quantile is 0.95. Over many trials the bound must lie above
    // it with frequency equal to its exact coverage (within sampling error), and the point estimate
    // must fall on both sides of it.
    const M = 400;
    const delta = 0.05;
    const trials = 1500;
    let covered = 0;
    let above = 0;
    let coverage = 0;
    for (let t = 0; t < trials; t++) {
      const u = new Float64Array(M);
      for (let i = 0; i < M; i += 4) {
        const w = philoxBlock(5n, 0n, BigInt(t), i / 4);
        for (let j = 0; j < 4; j++) u[i + j] = w[j]! / 4294967296;
      }
      const q = quantileWithBound(u, delta, 0.9);
      coverage = q.coverage;
      if (q.upperBound >= 1 - delta) covered++;
      if (q.quantile >= 1 - delta) above++;
    }
    const se = Math.sqrt((coverage * (1 - coverage)) / trials);
    expect(Math.abs(covered / trials - coverage)).toBeLessThan(4 * se);
    expect(coverage).toBeGreaterThanOrEqual(0.9);
    expect(above / trials).toBeGreaterThan(0.3);
    expect(above / trials).toBeLessThan(0.7);
  });

  it('has no finite bound below the minimum sample count, and one at it', () => {
    const n = minimumSamples(0.01, 0.95);
    expect(n).toBe(Math.ceil(Math.log(0.05) / Math.log(0.99))); // 299
    expect(quantileWithBound(new Float64Array(n - 1).fill(1), 0.01, 0.95).upperBound).toBe(Infinity);
    expect(quantileWithBound(new Float64Array(n).fill(1), 0.01, 0.95).upperBound).toBe(1);
  });

  it('rejects bad input', () => {
    expect(() => quantileWithBound([], 0.1)).toThrow(/no values/);
    expect(() => quantileWithBound([1, NaN], 0.1)).toThrow(/NaN/);
    expect(() => quantileWithBound([1, 2], 0)).toThrow(/delta: expected a number in \(0, 1\)/);
    expect(() => quantileWithBound([1, 2], 0.1, 1)).toThrow(/confidence/);
  });
});
