// The GSURE kernel wrappers: reproducible draws, the D ≥ 0 rule, the coefficients, and clear errors.
import { describe, expect, it } from 'vitest';
import { divergenceCoefficients, gsureProbes, gsureTerms, minValidStep, svdNoise } from '../../lib/gsure/kernels.ts';
import { Generator, NoiseSchedule, randn, tensor, zeros } from '../../lib/index.ts';
import { referenceNormals } from '../reference/philox.ts';

const key = { seed: 42n, offset: 0n, stream: 9n };

describe('svdNoise', () => {
  it('ε is randn of the same key; unobserved coordinates (v = 0) get noise 1 − ᾱ, observed ones (1 − ᾱ) − ᾱ v', async () => {
    const y = tensor([0.5, -1, 2, 0], [2, 2]);
    const v = tensor([0.01, 0, 0.04, 0], [2, 2]);
    const ab = [0.5, 0.9];
    const x = await svdNoise(y, v, ab, 0.04, key).toArray();
    const eps = await randn([2, 2], { generator: new Generator(key.seed, { stream: key.stream }) }).toArray();
    const z = referenceNormals(4, key.seed, key.offset, key.stream);
    const yv = [0.5, -1, 2, 0];
    const vv = [0.01, 0, 0.04, 0];
    for (let i = 0; i < 4; i++) {
      const a = ab[i >> 1]!;
      expect(eps[i]).toBeCloseTo(z[i]!, 6);
      expect(x[i]).toBeCloseTo(Math.sqrt(a) * yv[i]! + Math.sqrt(1 - a - a * vv[i]!) * z[i]!, 6);
    }
  });

  it('β_1 = σ0² makes every step usable; D < 0 is an error naming both remedies, never a NaN', async () => {
    const sigma0 = 0.02;
    const s = new NoiseSchedule({ kind: 'linear', beta1: sigma0 ** 2 });
    expect(minValidStep(s, sigma0 ** 2)).toBe(0);
    // At t = 0: D = σ0² − (1 − σ0²) σ0² = σ0⁴ > 0, tiny but not negative.
    const x = await svdNoise(tensor([1], [1, 1]), tensor([sigma0 ** 2], [1, 1]), [s.alphaBars[0]!], sigma0 ** 2, key).toArray();
    expect(Number.isFinite(x[0])).toBe(true);
    const plain = new NoiseSchedule({ kind: 'linear' }); // β_1 = 1e-4 < σ0²
    const first = minValidStep(plain, sigma0 ** 2);
    expect(first).toBeGreaterThan(0);
    expect(1 - plain.alphaBars[first]! - plain.alphaBars[first]! * sigma0 ** 2).toBeGreaterThanOrEqual(0);
    expect(1 - plain.alphaBars[first - 1]! - plain.alphaBars[first - 1]! * sigma0 ** 2).toBeLessThan(0);
    expect(() => svdNoise(tensor([1], [1, 1]), tensor([sigma0 ** 2], [1, 1]), [plain.alphaBars[0]!], sigma0 ** 2, key)).toThrow(
      /svd_noise: the added noise variance D = \(1 - alphaBar\) - alphaBar \* v is negative for sample 0 \(alphaBar 0\.9999, vMax 0\.0004.*beta1 >= vMax \/ \(1 \+ vMax\).*restrict t/,
    );
  });

  it('errors name the argument, the expected and the actual value', () => {
    const y = zeros([2, 3]);
    expect(() => svdNoise(y, zeros([2, 4]), [0.5, 0.5], 0, key)).toThrow(
      /svd_noise: variance must have the shape of \[2,3\] or hold one sample's 3 values, got shape \[2,4\]/,
    );
    expect(() => svdNoise(y, zeros([1, 3]), [0.5], 0, key)).toThrow(/alphaBar must hold one value per sample \(2\), got 1/);
    expect(() => svdNoise(y, zeros([1, 3]), [0.5, 1.5], 0, key)).toThrow(/alphaBar\[1\] must be in \(0, 1\], got 1\.5/);
    expect(() => svdNoise(y, zeros([1, 3]), [0.5, 0.5], -1, key)).toThrow(/vMax must be a finite number >= 0, got -1/);
  });
});

describe('gsureProbes and gsureTerms', () => {
  it('probe rows are b * K + k; errors are clear', async () => {
    const xt = tensor([1, 2, 3, 4], [2, 2]);
    const { plus, minus } = gsureProbes(xt, { probes: 3, eps: 0.5, key, central: true });
    expect(plus.shape).toEqual([6, 2]);
    const [p, m] = [await plus.toArray(), await minus!.toArray()];
    const b = referenceNormals(12, key.seed, key.offset, key.stream);
    for (let r = 0; r < 6; r++)
      for (let i = 0; i < 2; i++) {
        const x = [1, 2, 3, 4][Math.floor(r / 3) * 2 + i]!;
        expect(p[r * 2 + i]).toBeCloseTo(x + 0.5 * b[r * 2 + i]!, 5);
        expect(m[r * 2 + i]).toBeCloseTo(x - 0.5 * b[r * 2 + i]!, 5);
      }
    expect(() => gsureProbes(xt, { probes: 0, eps: 0.5, key, central: false })).toThrow(/probes: expected an integer >= 1, got 0/);
    expect(() => gsureProbes(xt, { probes: 1, eps: 0, key, central: false })).toThrow(/gsure_probe: eps must be > 0, got 0/);
    const base = {
      h: xt,
      plus: zeros([2, 2]),
      ybar: xt,
      weight: zeros([2, 2]),
      variance: zeros([1, 2]),
      kappa: [1, 1],
      probes: 1,
      eps: 0.1,
      key,
    };
    expect(() => gsureTerms(base)).toThrow(/weight and variance must both be per sample or both shared, got shapes \[2,2\] and \[1,2\]/);
    expect(() => gsureTerms({ ...base, variance: zeros([2, 2]), plus: zeros([4, 2]) })).toThrow(
      /gsure_terms: plus must have shape \[2,2\], got \[4,2\]/,
    );
    expect(() => gsureTerms({ ...base, variance: zeros([2, 2]), kappa: [1] })).toThrow(/kappa must hold one value per sample \(2\), got 1/);
  });
});

describe('divergenceCoefficients', () => {
  it('unbiased 2√ᾱ; official 2(1 − ᾱ)Λ/σ0², equal where √ᾱ σ0² = (1 − ᾱ)Λ', () => {
    const sigma0 = 0.01;
    // √ᾱ · 1e-4 = (1 − ᾱ) · 1e-4  ⇔  √ᾱ = (√5 − 1)/2
    const ab = ((Math.sqrt(5) - 1) / 2) ** 2;
    const [u] = divergenceCoefficients('unbiased', [ab]);
    const [o] = divergenceCoefficients('official', [ab], { sigma0 });
    expect(u).toBeCloseTo(2 * Math.sqrt(ab), 12);
    expect(o! / u!).toBeCloseTo(1, 12);
    expect(divergenceCoefficients('official', [0.5], { sigma0: 0.02 })[0]).toBeCloseTo((2 * 0.5 * 1e-4) / 0.0004, 12);
    expect(() => divergenceCoefficients('official', [0.5])).toThrow(/official' variant needs sigma0 > 0.*got undefined for sample 0/);
    expect(() => divergenceCoefficients('x' as never, [0.5])).toThrow(/variant: expected "unbiased" or "official", got "x"/);
  });
});
