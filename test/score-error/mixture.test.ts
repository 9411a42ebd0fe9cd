// The mixture's noised density and score, each checked by an independent computation: a dense 2-D
// evaluation by hand, central finite differences of the log density, and Monte-Carlo identities that
// hold only if ε* really is E[ε | x_t] (so the noising formula itself is checked, not just its algebra).
import { describe, expect, it } from 'vitest';
import { GaussianMixture, type MixtureComponent } from '../../lib/score-error/mixture.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

function component(weight: number, mean: number[], factor: number[], noise: number): MixtureComponent {
  return { weight, mean: Float64Array.from(mean), factor: Float64Array.from(factor), noise };
}

describe('GaussianMixture', () => {
  it('log density equals a dense 2-D evaluation (explicit inverse and determinant)', () => {
    const comps = [component(1, [0.3, -0.2], [0.8, 0.1], 0.2), component(3, [-0.5, 0.4], [-0.2, 0.6], 0.1)];
    const mix = new GaussianMixture([1, 1, 2], comps);
    const ab = 0.7;
    const x = Float64Array.from([0.1, 0.2, -1.3, 0.9, 2.5, -2.0]);
    const got = mix.noised(ab).logDensity(x);
    for (let i = 0; i < 3; i++) {
      const p = [x[2 * i]!, x[2 * i + 1]!];
      let total = 0;
      comps.forEach((k, idx) => {
        const [f0, f1] = k.factor as unknown as [number, number];
        const c = ab * k.noise ** 2 + 1 - ab;
        const a11 = ab * f0 * f0 + c;
        const a12 = ab * f0 * f1;
        const a22 = ab * f1 * f1 + c;
        const det = a11 * a22 - a12 * a12;
        const r0 = p[0]! - Math.sqrt(ab) * k.mean[0]!;
        const r1 = p[1]! - Math.sqrt(ab) * k.mean[1]!;
        const maha = (a22 * r0 * r0 - 2 * a12 * r0 * r1 + a11 * r1 * r1) / det;
        const w = idx === 0 ? 0.25 : 0.75;
        total += (w * Math.exp(-0.5 * maha)) / (2 * Math.PI * Math.sqrt(det));
      });
      expect(Math.abs(got[i]! - Math.log(total))).toBeLessThan(1e-12);
    }
  });

  it('score equals central finite differences of the log density', () => {
    const mix = GaussianMixture.random({ shape: [1, 4, 4], components: 3, rank: 3, seed: 7, noise: 0.1 });
    for (const ab of [0.999, 0.5, 0.02]) {
      const nm = mix.noised(ab);
      const x = mix.sample(4, 3).x.map((v, i) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * 0.3 * Math.sin(i));
      const score = nm.score(x);
      const h = 1e-5;
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        const up = Float64Array.from(x);
        const dn = Float64Array.from(x);
        up[i]! += h;
        dn[i]! -= h;
        const row = Math.floor(i / mix.dim);
        const fd = (nm.logDensity(up)[row]! - nm.logDensity(dn)[row]!) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - score[i]!));
        scale = Math.max(scale, Math.abs(score[i]!));
      }
      expect(worst / scale).toBeLessThan(1e-6);
    }
  });

  it('stays finite far from every component (log-sum-exp)', () => {
    const mix = GaussianMixture.random({ shape: [1, 2, 2], components: 2, seed: 1 });
    const far = new Float64Array(4).fill(1e3);
    const nm = mix.noised(0.999);
    expect(Number.isFinite(nm.logDensity(far)[0]!)).toBe(true);
    expect(nm.score(far).every(Number.isFinite)).toBe(true);
  });

  it('samples have the mixture mean and covariance', () => {
    const mix = GaussianMixture.random({ shape: [1, 1, 3], components: 2, rank: 2, seed: 4, weights: [1, 3], spread: 0.5, noise: 0.2 });
    const n = 40000;
    const { x, component } = mix.sample(n, 11);
    const d = 3;
    // Analytic: E x = Σ w μ, E x xᵀ = Σ w (F Fᵀ + s² I + μ μᵀ)
    const mean = new Float64Array(d);
    const second = new Float64Array(d * d);
    mix.components.forEach((k, idx) => {
      const w = mix.weights[idx]!;
      for (let i = 0; i < d; i++) {
        mean[i]! += w * k.mean[i]!;
        for (let j = 0; j < d; j++) {
          let ff = 0;
          for (let q = 0; q < mix.rank; q++) ff += k.factor[i * mix.rank + q]! * k.factor[j * mix.rank + q]!;
          second[i * d + j]! += w * (ff + (i === j ? k.noise ** 2 : 0) + k.mean[i]! * k.mean[j]!);
        }
      }
    });
    const m = new Float64Array(d);
    const s2 = new Float64Array(d * d);
    for (let p = 0; p < n; p++)
      for (let i = 0; i < d; i++) {
        m[i]! += x[p * d + i]! / n;
        for (let j = 0; j < d; j++) s2[i * d + j]! += (x[p * d + i]! * x[p * d + j]!) / n;
      }
    for (let i = 0; i < d; i++) {
      const sd = Math.sqrt(second[i * d + i]! - mean[i]! ** 2);
      expect(Math.abs(m[i]! - mean[i]!)).toBeLessThan((5 * sd) / Math.sqrt(n));
      for (let j = 0; j < d; j++) expect(Math.abs(s2[i * d + j]! - second[i * d + j]!)).toBeLessThan(0.03);
    }
    const ones = component.reduce((a, c) => a + c, 0) / n;
    expect(Math.abs(ones - 0.75)).toBeLessThan(5 * Math.sqrt((0.75 * 0.25) / n));
  });

  it('ε* is E[ε | x_t]: the residual ε − ε*(x_t) is uncorrelated with functions of x_t', () => {
    // If ε* = E[ε | x_t] then E[(ε − ε*) · g(x_t)] = 0 for every g. A wrong noised covariance or mean
    // (e.g. forgetting the √ᾱ on the mean, or ᾱ s² in c) breaks these by far more than the tolerance.
    const mix = GaussianMixture.random({ shape: [1, 2, 2], components: 3, rank: 2, seed: 5, spread: 0.4, noise: 0.1 });
    const d = mix.dim;
    const n = 30000;
    for (const ab of [0.9, 0.3]) {
      const { x } = mix.sample(n, 21);
      const eps = seededNormals(n * d, 21n, 99n);
      const xt = x.map((v, i) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * eps[i]!);
      const star = mix.noised(ab).epsStar(xt);
      for (const g of [(i: number) => xt[i]!, (i: number) => star[i]!, (i: number) => Math.tanh(3 * xt[i]!)]) {
        let sum = 0;
        let sum2 = 0;
        for (let p = 0; p < n; p++) {
          let v = 0;
          for (let j = 0; j < d; j++) v += (eps[p * d + j]! - star[p * d + j]!) * g(p * d + j);
          sum += v;
          sum2 += v * v;
        }
        const m = sum / n;
        const se = Math.sqrt((sum2 / n - m * m) / n);
        expect(Math.abs(m)).toBeLessThan(5 * se);
      }
      // And the residual is not trivially zero: E‖ε − ε*‖² = d − E‖ε*‖² > 0.
      let r2 = 0;
      for (let i = 0; i < n * d; i++) r2 += (eps[i]! - star[i]!) ** 2;
      expect(r2 / n).toBeGreaterThan(0.05);
    }
  });

  it('a wrong noising law fails the same identity (the check has teeth)', () => {
    const mix = GaussianMixture.random({ shape: [1, 2, 2], components: 3, rank: 2, seed: 5, spread: 0.4, noise: 0.1 });
    const d = mix.dim;
    const n = 30000;
    const ab = 0.9;
    const { x } = mix.sample(n, 21);
    const eps = seededNormals(n * d, 21n, 99n);
    // Noise the data with ᾱ = 0.9 but ask the level 0.8 for ε*.
    const xt = x.map((v, i) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * eps[i]!);
    const star = mix.noised(0.8).epsStar(xt);
    let sum = 0;
    let sum2 = 0;
    for (let p = 0; p < n; p++) {
      let v = 0;
      for (let j = 0; j < d; j++) v += (eps[p * d + j]! - star[p * d + j]!) * star[p * d + j]!;
      sum += v;
      sum2 += v * v;
    }
    const m = sum / n;
    expect(Math.abs(m)).toBeGreaterThan(10 * Math.sqrt((sum2 / n - m * m) / n));
  });

  it('saves and loads exactly; a bad file is a clear error', async () => {
    const mix = GaussianMixture.random({ shape: [2, 3, 3], components: 2, rank: 2, seed: 3, weights: [0.2, 0.8] });
    const back = GaussianMixture.decode(mix.encode());
    expect(back.shape).toEqual([2, 3, 3]);
    expect([...back.weights]).toEqual([...mix.weights]);
    back.components.forEach((k, i) => {
      expect([...k.mean]).toEqual([...mix.components[i]!.mean]);
      expect([...k.factor]).toEqual([...mix.components[i]!.factor]);
      expect(k.noise).toBe(mix.components[i]!.noise);
    });
    const x = mix.sample(3, 1).x;
    expect([...back.noised(0.5).score(x)]).toEqual([...mix.noised(0.5).score(x)]);
    const bytes = mix.encode();
    expect(() => GaussianMixture.decode(bytes.subarray(0, bytes.length - 10), 'cut.safetensors')).toThrow(/cut\.safetensors/);
    const { encodeSafetensors } = await import('../../lib/safetensors.ts');
    const other = encodeSafetensors({ w: { shape: [1], data: new Float32Array(1) } });
    expect(() => GaussianMixture.decode(other, 'model.safetensors')).toThrow(/model\.safetensors: not a kintsugi Gaussian mixture/);
  });

  it('rejects bad parameters with clear errors', () => {
    expect(() => new GaussianMixture([1, 2, 2], [])).toThrow(/at least one component/);
    expect(() => new GaussianMixture([1, 2, 2], [component(1, [0, 0, 0], [1, 1, 1, 1], 0.1)])).toThrow(/mean has 3 values, expected 4/);
    expect(() => new GaussianMixture([1, 2, 2], [component(1, [0, 0, 0, 0], [1, 1, 1, 1], 0)])).toThrow(/noise must be a positive number/);
    expect(() => new GaussianMixture([1, 2, 2], [component(-1, [0, 0, 0, 0], [1, 1, 1, 1], 0.1)])).toThrow(
      /weight must be a positive number/,
    );
    expect(() => new GaussianMixture([1, 2, 2], [component(1, [0, NaN, 0, 0], [1, 1, 1, 1], 0.1)])).toThrow(/non-finite/);
    const mix = GaussianMixture.random({ shape: [1, 2, 2], seed: 0 });
    expect(() => mix.noised(0)).toThrow(/alphaBar/);
    expect(() => mix.noised(0.5).score(new Float64Array(3))).toThrow(/expected n × 4 values/);
  });
});
