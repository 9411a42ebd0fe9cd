// Unbiasedness of the GSURE loss (docs/gsure.md): for fixed denoisers h (not trained), the mean over
// many draws (data, masks, measurement noise, t, ε, probes) of GSURE(h) − (1/n)‖W P (h̄ − x̄)‖² must be
// the same constant for every h, namely E[(1/n) Σ_i c_i v_i] = σ0² · mean_i(1/s_i²), which Stein's
// lemma gives (docs/gsure.md, "Why it is unbiased"). The released code's coefficient ('official')
// leaves a bias that depends on h's divergence: shown here too. Everything runs through the kernels
// on CPU tensors; the denoisers are evaluated on the host in double and written into tensors.
import { describe, expect, it } from 'vitest';
import { divergenceCoefficients, gsureProbes, gsureTerms, svdNoise } from '../../lib/gsure/kernels.ts';
import { Generator, randn, rand, tensor, type Tensor } from '../../lib/index.ts';

const n = 32; // coordinates per sample, shape [1, 4, 8]
const N = 4096; // draws per batch
const BATCHES = 2;
const SHAPE = [N, 1, 4, 8];
const sigma0 = 0.1;
// Per coordinate: keep probability q_i = E[P_ii] (so w_i² = 1/q_i) and singular value s_i when observed.
const q = Float64Array.from({ length: n }, (_, i) => 0.3 + (0.6 * ((i * 7) % n)) / (n - 1));
const s = Float64Array.from({ length: n }, (_, i) => [0.5, 1, 2][i % 3]!);
const vMax = sigma0 ** 2 / 0.25;
const expectedConstant = (sigma0 ** 2 * s.reduce((a, si) => a + 1 / (si * si), 0)) / n;

// A small deterministic generator for the denoisers' matrices.
let lcg = 12345;
const rnd = () => ((lcg = (lcg * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const matrix = (scale: number) => Float64Array.from({ length: n * n }, () => (scale * rnd()) / Math.sqrt(n));
const offset = Float64Array.from({ length: n }, () => 0.2 * rnd());

interface Denoiser {
  name: string;
  h(x: Float32Array, row: number, out: Float64Array): void;
}
const affine = (name: string, A: Float64Array | null, diag: number): Denoiser => ({
  name,
  h(x, row, out) {
    for (let i = 0; i < n; i++) {
      let acc = offset[i]! + diag * x[row * n + i]!;
      if (A) for (let j = 0; j < n; j++) acc += A[i * n + j]! * x[row * n + j]!;
      out[i] = acc;
    }
  },
});
const B = matrix(1.5);
const denoisers: Denoiser[] = [
  affine('constant h = c', null, 0),
  affine('h = 0.9 x + c', null, 0.9),
  affine('h = (0.5 I + A) x + c', matrix(0.6), 0.5),
  {
    // Smooth and nonlinear: h = 0.8 tanh(B x) + 0.3 x; its divergence varies with x.
    name: 'h = 0.8 tanh(B x) + 0.3 x',
    h(x, row, out) {
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += B[i * n + j]! * x[row * n + j]!;
        out[i] = 0.8 * Math.tanh(acc) + 0.3 * x[row * n + i]!;
      }
    },
  },
];

/** Writes h(rows of x) into a new tensor (the denoiser on the host, in double, rounded once). */
function evaluate(d: Denoiser, x: Float32Array, shape: number[]): Tensor {
  const rows = x.length / n;
  const out = new Float32Array(x.length);
  const tmp = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    d.h(x, r, tmp);
    for (let i = 0; i < n; i++) out[r * n + i] = tmp[i]!;
  }
  return tensor(out, shape, { device: 'cpu' });
}

interface Draws {
  xbar: Float32Array;
  c: Float32Array;
  v: Float32Array;
  alphaBar: Float64Array;
  ybar: Tensor;
  weight: Tensor;
  variance: Tensor;
  xt: Tensor;
}

async function drawBatch(batch: number): Promise<Draws> {
  const g = new Generator(2026, { stream: BigInt(batch) });
  const [gx, u, gz, ut] = await Promise.all(
    [randn(SHAPE, { generator: g }), rand(SHAPE, { generator: g }), randn(SHAPE, { generator: g }), rand([N], { generator: g })].map(
      async (t) => {
        const a = await t.toArray();
        t.dispose();
        return a;
      },
    ),
  );
  const xbar = Float32Array.from(gx!, (x) => Math.tanh(1.5 * x) + 0.2); // not Gaussian, not centred
  const c = new Float32Array(N * n);
  const v = new Float32Array(N * n);
  const y = new Float32Array(N * n);
  for (let k = 0; k < N * n; k++) {
    const i = k % n;
    if (u![k]! < q[i]!) {
      c[k] = 1 / q[i]!;
      v[k] = (sigma0 * sigma0) / (s[i]! * s[i]!);
      y[k] = xbar[k]! + (sigma0 / s[i]!) * gz![k]!; // ȳ = Σ† (s x̄ + σ0 z) = x̄ + σ0 z / s
    }
  }
  // ᾱ uniform over the range where D ≥ 0 for every coordinate: ᾱ ≤ 1 / (1 + vMax).
  const alphaBar = Float64Array.from(ut!, (x) => 0.02 + x * (1 / (1 + vMax) - 0.02));
  const ybar = tensor(y, SHAPE);
  const variance = tensor(v, SHAPE);
  const xt = svdNoise(ybar, variance, alphaBar, vMax, new Generator(77, { stream: BigInt(batch) }).next(N * n));
  return { xbar, c, v, alphaBar, ybar, weight: tensor(c, SHAPE), variance, xt };
}

interface Setting {
  variant: 'unbiased' | 'official';
  difference: 'central' | 'forward';
}

/** Per draw: GSURE − supervised, and GSURE − supervised − (1/n) Σ c v (whose mean is 0 when unbiased). */
async function differences(d: Denoiser, draws: Draws[], setting: Setting): Promise<{ diff: Float64Array; centred: Float64Array }> {
  const diff = new Float64Array(N * BATCHES);
  const centred = new Float64Array(N * BATCHES);
  const probes = 2;
  const eps = 1e-2;
  for (const [batch, dr] of draws.entries()) {
    const key = new Generator(99, { stream: BigInt(batch) }).next(N * probes * n);
    const central = setting.difference === 'central';
    const { plus, minus } = gsureProbes(dr.xt, { probes, eps, key, central });
    const [xt, xp, xm] = await Promise.all([dr.xt.toArray(), plus.toArray(), minus?.toArray()]);
    const h = evaluate(d, xt, SHAPE);
    const hp = evaluate(d, xp, plus.shape as number[]);
    const hm = xm ? evaluate(d, xm, plus.shape as number[]) : undefined;
    const kappa = divergenceCoefficients(setting.variant, dr.alphaBar, { sigma0 });
    const out = gsureTerms({ h, plus: hp, minus: hm, ybar: dr.ybar, weight: dr.weight, variance: dr.variance, kappa, probes, eps, key });
    const [parts, hv] = await Promise.all([out.parts.toArray(), h.toArray()]);
    for (const t of [plus, minus, h, hp, hm, out.parts, out.gradH, out.gradPlus, out.gradMinus]) t?.dispose();
    for (let b = 0; b < N; b++) {
      let sup = 0;
      let cv = 0;
      for (let i = 0; i < n; i++) {
        const k = b * n + i;
        sup += dr.c[k]! * (hv[k]! - dr.xbar[k]!) ** 2;
        cv += dr.c[k]! * dr.v[k]!;
      }
      const gsure = parts[2 * b]! + parts[2 * b + 1]!;
      diff[batch * N + b] = gsure - sup / n;
      centred[batch * N + b] = gsure - sup / n - cv / n;
    }
  }
  return { diff, centred };
}

const mean = (a: Float64Array) => a.reduce((s_, x) => s_ + x, 0) / a.length;
const stderr = (a: Float64Array) => {
  const m = mean(a);
  return Math.sqrt(a.reduce((s_, x) => s_ + (x - m) ** 2, 0) / (a.length - 1) / a.length);
};
const minus = (a: Float64Array, b: Float64Array) => a.map((x, i) => x - b[i]!);

// 5 standard errors: a false alarm about once in 1.7 million runs per comparison (normal tails);
// the draws are fixed by seeds, so the test is deterministic anyway.
const Z = 5;

describe('GSURE unbiasedness (n = 32, 8192 draws, random masks with known E[P], σ0 = 0.1)', async () => {
  const draws = await Promise.all(Array.from({ length: BATCHES }, (_, b) => drawBatch(b)));

  for (const difference of ['central', 'forward'] as const) {
    it(`unbiased, ${difference} differences: the same constant σ0²·mean(1/s²) for every denoiser`, async () => {
      const results = [];
      for (const d of denoisers) results.push({ d, ...(await differences(d, draws, { variant: 'unbiased', difference })) });
      const rows = results.map(({ d, diff, centred }) => ({
        denoiser: d.name,
        'mean(GSURE - sup)': mean(diff).toExponential(4),
        'std err': stderr(diff).toExponential(2),
        'minus constant, in std errs': ((mean(diff) - expectedConstant) / stderr(diff)).toFixed(2),
        'mean(centred) / se': (mean(centred) / stderr(centred)).toFixed(2),
      }));
      console.log(`unbiased, ${difference}: constant ${expectedConstant.toExponential(4)}`);
      console.table(rows);
      for (const { d, diff, centred } of results) {
        expect(Math.abs(mean(diff) - expectedConstant), d.name).toBeLessThan(Z * stderr(diff));
        expect(Math.abs(mean(centred)), d.name).toBeLessThan(Z * stderr(centred));
      }
      // Paired against the first denoiser (same draws): the difference of the means is zero.
      for (const { d, diff } of results.slice(1)) {
        const paired = minus(diff, results[0]!.diff);
        expect(Math.abs(mean(paired)), d.name).toBeLessThan(Z * stderr(paired));
      }
    });
  }

  it('official: the bias depends on the denoiser (beyond Monte-Carlo error)', async () => {
    const results: ({ d: (typeof denoisers)[number] } & Awaited<ReturnType<typeof differences>>)[] = [];
    for (const d of denoisers) results.push({ d, ...(await differences(d, draws, { variant: 'official', difference: 'central' })) });
    const rows = results.map(({ d, diff }, k) => {
      const paired = minus(diff, results[0]!.diff);
      return {
        denoiser: d.name,
        'mean(GSURE - sup)': mean(diff).toExponential(4),
        'vs constant h, in std errs': k ? (mean(paired) / stderr(paired)).toFixed(1) : '-',
      };
    });
    console.log('official (Λ = 1e-4): means differ between denoisers');
    console.table(rows);
    // The denoisers with a divergence (all but the constant) differ from the constant one by far more
    // than the Monte-Carlo error (measured: 20 to 35 standard errors; required: 2Z = 10).
    for (const { d, diff } of results.slice(1)) {
      const paired = minus(diff, results[0]!.diff);
      expect(Math.abs(mean(paired)), d.name).toBeGreaterThan(2 * Z * stderr(paired));
    }
  });
});
