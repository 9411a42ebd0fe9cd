// Samplers against an exact answer: for data x0 ~ N(mu, s^2 I) the optimal denoiser is linear,
// E[x0 | x_t] = mu + k (x_t - sqrt(abar) mu) with k = sqrt(abar) s^2 / (abar s^2 + 1 - abar), so a
// correct sampler driven by it must return N(mu, s^2) samples, independent of any trained network.
import { describe, expect, it } from 'vitest';
import { Generator, NoiseSchedule, ones, sample, timesteps, type Denoiser, type Prediction } from '../lib/index.ts';
import { combine, splitPrediction } from '../lib/schedule.ts';

const MU = 0.7;
const S = 0.5;
const schedule = new NoiseSchedule({ kind: 'linear' });
const shape = [64, 1, 32, 32];

/** The exact denoiser, answering in any prediction target. */
function gaussianDenoiser(prediction: Prediction): Denoiser {
  return (x, t) => {
    const ab = Array.from(t, (ti) => schedule.alphaBars[ti]!);
    const k = ab.map((a) => (Math.sqrt(a) * S * S) / (a * S * S + 1 - a));
    const one = ones(x.shape, { device: x.device });
    const x0 = combine([
      [x, k],
      [one, ab.map((a, b) => MU - k[b]! * Math.sqrt(a) * MU)],
    ]);
    one.dispose();
    if (prediction === 'x0') return x0;
    // eps = (x - sqrt(ab) x0) / sqrt(1 - ab); v = sqrt(ab) eps - sqrt(1 - ab) x0
    const eps = combine([
      [x, ab.map((a) => 1 / Math.sqrt(1 - a))],
      [x0, ab.map((a) => -Math.sqrt(a) / Math.sqrt(1 - a))],
    ]);
    if (prediction === 'eps') return (x0.dispose(), eps);
    const v = combine([
      [eps, ab.map(Math.sqrt)],
      [x0, ab.map((a) => -Math.sqrt(1 - a))],
    ]);
    x0.dispose();
    eps.dispose();
    return v;
  };
}

async function moments(t: { toArray(): Promise<Float32Array> }) {
  const v = await t.toArray();
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return { mean, variance, n: v.length };
}

/**
 * The exact first two moments of what a sampler produces with the linear denoiser: every step is then
 * an affine map plus independent noise, x' = A x + B + sigma z, so mean' = A mean + B and
 * var' = A^2 var + sigma^2, computed here in double from the sampler's published update rules. This
 * includes each sampler's own discretisation error (DDPM with the posterior variance under-disperses
 * a little; a 50-step ODE solve is not exact), so the samples must match it to sampling error alone.
 */
function exactMoments(method: 'ddpm' | 'ddim' | 'heun', steps: number, eta: number) {
  const ab = schedule.alphaBars;
  const grid = method === 'ddpm' ? timesteps(schedule.steps, schedule.steps) : timesteps(schedule.steps, steps);
  const k = (t: number) => (Math.sqrt(ab[t]!) * S * S) / (ab[t]! * S * S + 1 - ab[t]!);
  const c0 = (t: number) => MU - k(t) * Math.sqrt(ab[t]!) * MU;
  // eps_hat = e1 x + e0 at time t
  const epsCoef = (t: number) =>
    [(1 - Math.sqrt(ab[t]!) * k(t)) / Math.sqrt(1 - ab[t]!), (-Math.sqrt(ab[t]!) * c0(t)) / Math.sqrt(1 - ab[t]!)] as const;
  let mean = 0;
  let variance = 1;
  for (let i = grid.length - 1; i >= 0; i--) {
    const t = grid[i]!;
    const prev = i > 0 ? grid[i - 1]! : -1;
    if (prev < 0) {
      mean = k(t) * mean + c0(t);
      variance = k(t) ** 2 * variance;
      break;
    }
    const [abT, abP] = [ab[t]!, ab[prev]!];
    const [e1, e0] = epsCoef(t);
    let A: number,
      B: number,
      sigma = 0;
    if (method === 'heun') {
      const h = Math.sqrt(abP) * (Math.sqrt((1 - abP) / abP) - Math.sqrt((1 - abT) / abT));
      const r = Math.sqrt(abP / abT);
      // Euler point y = r x + h eps(x); second eps at prev; x' = r x + h/2 (eps(x) + eps(y))
      const [f1, f0] = epsCoef(prev);
      const Ay = r + h * e1;
      const By = h * e0;
      A = r + (h / 2) * e1 + (h / 2) * f1 * Ay;
      B = (h / 2) * e0 + (h / 2) * (f1 * By + f0);
    } else {
      sigma = (method === 'ddpm' ? 1 : eta) * Math.sqrt(((1 - abP) / (1 - abT)) * (1 - abT / abP));
      const dir = Math.sqrt(Math.max(0, 1 - abP - sigma * sigma));
      A = Math.sqrt(abP) * k(t) + dir * e1;
      B = Math.sqrt(abP) * c0(t) + dir * e0;
    }
    mean = A * mean + B;
    variance = A * A * variance + sigma * sigma;
  }
  return { mean, variance };
}

describe('samplers on a Gaussian with the exact denoiser', () => {
  const cases = [
    { method: 'ddpm', steps: 1000, eta: 1, prediction: 'eps' },
    { method: 'ddim', eta: 1, steps: 100, prediction: 'x0' },
    { method: 'ddim', eta: 0, steps: 50, prediction: 'v' },
    { method: 'heun', steps: 25, eta: 0, prediction: 'eps' },
  ] as const;
  for (const c of cases) {
    it(`${c.method} ${c.steps} steps, eta ${c.eta} (${c.prediction}): the exact moments of its chain, and N(mu, s^2) up to discretisation`, async () => {
      const x = await sample(gaussianDenoiser(c.prediction), { schedule, shape, device: 'cpu', generator: new Generator(3), ...c });
      const m = await moments(x);
      const exact = exactMoments(c.method, c.steps, c.eta);
      console.log(
        `${c.method}/${c.steps}/eta ${c.eta}: mean ${m.mean.toFixed(4)} (chain ${exact.mean.toFixed(4)}, data ${MU}), variance/s^2 ${(m.variance / S / S).toFixed(4)} (chain ${(exact.variance / S / S).toFixed(4)})`,
      );
      // Six standard errors of the sample moments.
      expect(Math.abs(m.mean - exact.mean)).toBeLessThan(6 * Math.sqrt(exact.variance / m.n));
      expect(Math.abs(m.variance / exact.variance - 1)).toBeLessThan(6 * Math.sqrt(2 / m.n));
      // And the chain itself is close to the data distribution.
      expect(Math.abs(exact.mean - MU)).toBeLessThan(0.01);
      expect(Math.abs(exact.variance / (S * S) - 1)).toBeLessThan(0.2);
      x.dispose();
    });
  }

  it('DDPM and DDIM with eta = 1 over every step are the same sampler: same seed, same samples', async () => {
    const d = gaussianDenoiser('eps');
    const a = await (
      await sample(d, { schedule, prediction: 'eps', shape: [2, 1, 8, 8], method: 'ddpm', generator: new Generator(9) })
    ).toArray();
    const b = await (
      await sample(d, {
        schedule,
        prediction: 'eps',
        shape: [2, 1, 8, 8],
        method: 'ddim',
        eta: 1,
        steps: 1000,
        generator: new Generator(9),
      })
    ).toArray();
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-4);
  });

  it('each sampler is deterministic for a seed and differs across seeds', async () => {
    for (const method of ['ddpm', 'ddim', 'heun'] as const) {
      const run = async (seed: number) =>
        (
          await sample(gaussianDenoiser('eps'), {
            schedule,
            prediction: 'eps',
            shape: [2, 1, 4, 4],
            method,
            eta: 0.5,
            steps: 20,
            generator: new Generator(seed),
          })
        ).toArray();
      const [a, b, c] = [await run(1), await run(1), await run(2)];
      expect([...a]).toEqual([...b]);
      expect([...a]).not.toEqual([...c]);
    }
  });

  it('can be cancelled', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(
      sample(gaussianDenoiser('eps'), { schedule, prediction: 'eps', shape: [1, 1, 4, 4], signal: controller.signal }),
    ).rejects.toThrow('stop');
  });
});

describe('schedules and targets', () => {
  it('linear and cosine abar decrease from near 1 towards 0', () => {
    for (const kind of ['linear', 'cosine'] as const) {
      const s = new NoiseSchedule({ kind });
      expect(s.alphaBars[0]).toBeGreaterThan(0.99);
      expect(s.alphaBars[999]).toBeLessThan(1e-3);
      for (let t = 1; t < 1000; t++) expect(s.alphaBars[t]!).toBeLessThan(s.alphaBars[t - 1]!);
    }
    // DDPM's linear schedule: abar_999 = prod (1 - beta_t), about 4.0e-5.
    expect(new NoiseSchedule({ kind: 'linear' }).alphaBars[999]).toBeCloseTo(4.036e-5, 7);
  });

  it('splitPrediction inverts every target', async () => {
    const { tensor } = await import('../lib/index.ts');
    const x0 = tensor([0.5, -1, 0.25, 2], [2, 2], { device: 'cpu' });
    const eps = tensor([1, 0.5, -0.75, 0.1], [2, 2], { device: 'cpu' });
    const ab = [0.9, 0.3];
    const xt = combine([
      [x0, ab.map(Math.sqrt)],
      [eps, ab.map((a) => Math.sqrt(1 - a))],
    ]);
    const { targetOf } = await import('../lib/schedule.ts');
    for (const p of ['eps', 'x0', 'v'] as const) {
      const parts = splitPrediction(p, xt, targetOf(p, x0, eps, ab), ab);
      const [gx, ge, ex, ee] = await Promise.all([parts.x0.toArray(), parts.eps.toArray(), x0.toArray(), eps.toArray()]);
      for (let i = 0; i < 4; i++) {
        expect(gx[i]).toBeCloseTo(ex[i]!, 5);
        expect(ge[i]).toBeCloseTo(ee[i]!, 5);
      }
    }
  });

  it('timesteps are spread over [0, T-1]', () => {
    expect(timesteps(1000, 5)).toEqual([0, 250, 500, 749, 999]);
    expect(() => timesteps(10, 11)).toThrow(/steps: expected an integer in \[1, 10\]/);
  });
});
