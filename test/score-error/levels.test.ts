// The audit's default levels are the sampler's grid, and its bounds hold at all levels at once by a
// union bound (issue #16 part 5). Expected ranks come from an independent double-precision binomial
// sum in this file; the grids are written out by hand.
import { describe, expect, it } from 'vitest';
import { NoiseSchedule } from '../../lib/schedule.ts';
import { tensor, type Tensor } from '../../lib/tensor.ts';
import { GaussianMixture } from '../../lib/score-error/mixture.ts';
import { scoreErrorAudit } from '../../lib/score-error/audit.ts';

const schedule = new NoiseSchedule({ kind: 'linear' });
const mixture = GaussianMixture.random({ shape: [1, 2, 2], components: 2, rank: 1, seed: 4, spread: 0.3, noise: 0.05 });
// ε̂ = ε* + a fixed offset whose size varies per point: errors with a continuous spread.
const noisy = async (x: Tensor, t: Float32Array): Promise<Tensor> => {
  const xt = await x.toArray();
  const ab = schedule.alphaBars[t[0]!]!;
  const eps = mixture.noised(ab).epsStar(xt);
  return tensor(
    Float32Array.from(eps, (e, i) => e + 0.1 * Math.sin(1000 * xt[i]!)),
    x.shape,
    { device: 'cpu' },
  );
};

/** The smallest 1-based rank j with P(Binomial(M, q) <= j - 1) >= c, by a plain sum of pmf terms in double. */
function upperRank(M: number, q: number, c: number): number {
  let cdf = 0;
  for (let k = 0; k < M; k++) {
    let logChoose = 0;
    for (let i = 1; i <= k; i++) logChoose += Math.log((M - k + i) / i);
    cdf += Math.exp(logChoose + k * Math.log(q) + (M - k) * Math.log(1 - q));
    if (cdf >= c) return k + 1;
  }
  return M + 1;
}

describe('score-error audit levels and the union bound', () => {
  it('defaults to the grid of the default sampler (50 linspace steps), or of the sampler named', async () => {
    const base = { mixture, schedule, prediction: 'eps' as const, delta: 0.2, samples: 60, device: 'cpu' };
    const r = await scoreErrorAudit(noisy, base);
    expect(r.levels.length).toBe(50);
    // round(i 999 / 49): 0, 20 (20.39), 41 (40.78), ..., 979 (978.6), 999
    expect(r.levels.slice(0, 3).map((l) => l.t)).toEqual([0, 20, 41]);
    expect(r.levels.slice(-2).map((l) => l.t)).toEqual([979, 999]);
    const t = await scoreErrorAudit(noisy, { ...base, samplerSteps: 10, spacing: 'trailing' });
    expect(t.levels.map((l) => l.t)).toEqual([99, 199, 299, 399, 499, 599, 699, 799, 899, 999]);
  }, 120_000);

  it('each level is bounded at 1 - (1 - confidence)/L, so all L bounds hold at once with the confidence asked', async () => {
    const base = {
      mixture,
      schedule,
      prediction: 'eps' as const,
      delta: 0.1,
      samples: 200,
      device: 'cpu',
      levels: [100, 300, 500, 700, 900],
    };
    const joint = await scoreErrorAudit(noisy, base);
    expect(joint.simultaneous).toBe(true);
    expect(joint.levelConfidence).toBeCloseTo(1 - 0.05 / 5, 15);
    const alone = await scoreErrorAudit(noisy, { ...base, simultaneous: false });
    expect(alone.levelConfidence).toBe(0.95);
    const [jj, ja] = [upperRank(200, 0.9, 0.99), upperRank(200, 0.9, 0.95)];
    expect(jj).toBeGreaterThan(ja); // the joint bound is a higher order statistic
    for (const [k, row] of joint.levels.entries()) {
      // Same draws in both runs: the same sorted errors, so the bounds are the order statistics of ranks jj and ja.
      expect(row.quantile).toBe(alone.levels[k]!.quantile);
      expect(row.upperRank).toBe(jj);
      expect(alone.levels[k]!.upperRank).toBe(ja);
      expect(row.upperBound).toBeGreaterThanOrEqual(alone.levels[k]!.upperBound);
    }
    expect(joint.levels.filter((row, k) => row.upperBound > alone.levels[k]!.upperBound).length).toBeGreaterThan(0);
  }, 120_000);

  it('refuses too few points for the per-level confidence the union bound needs', async () => {
    const base = { mixture, schedule, prediction: 'eps' as const, delta: 0.1, device: 'cpu', levels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] };
    // 0.995 per level: (0.9)^M <= 0.005 needs M >= ln 0.005 / ln 0.9 = 50.29, so 51.
    await expect(scoreErrorAudit(noisy, { ...base, samples: 50 })).rejects.toThrow(
      /confidence 0\.995 \(0\.95 over 10 levels at once\); use at least 51/,
    );
    await expect(scoreErrorAudit(noisy, { ...base, samples: 51 })).resolves.toBeDefined();
    // Each level alone at 0.95: ln 0.05 / ln 0.9 = 28.4, so 29 suffice.
    await expect(scoreErrorAudit(noisy, { ...base, samples: 29, simultaneous: false })).resolves.toBeDefined();
  }, 120_000);
});
