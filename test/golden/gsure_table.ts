// Golden cases of the GSURE kernels (native/include/kintsugi/gsure.h): each output against a
// double-precision reference written here from the formulas of docs/gsure.md, the normal draws (ε and
// the probes) from the independent Philox / Box-Muller of test/reference/philox.ts.
import { native, type NativeTensor } from '../../lib/native.ts';
import { referenceNormals } from '../reference/philox.ts';
import { testValues } from '../helpers.ts';
import type { GoldenCase } from './table.ts';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const SEED = 0x13198a2e03707344n;
const OFFSET = 977n;
const STREAM = 11n;
const VMAX = 0.02;

// ᾱ per sample; the last of each batch sits exactly on the boundary 1 / (1 + vMax), where D = 0 at v = vMax.
const alphaBars = (n: number) => Array.from({ length: n }, (_, b) => (b === n - 1 ? 1 / (1 + VMAX) : 0.05 + (0.9 * b) / n));
// v in [0, vMax]: every third coordinate unobserved (0), one at exactly vMax.
const variances = (count: number, seed: number) =>
  Float32Array.from(testValues(count, seed), (x, i) => (i % 3 === 2 ? 0 : i === 0 ? VMAX : (VMAX * Math.abs(x)) / 2));
// c in [0, 4]: zero where v is (unobserved).
const weights = (count: number, seed: number) => Float32Array.from(testValues(count, seed), (x, i) => (i % 3 === 2 ? 0 : 1 + Math.abs(x)));

// [batch shape, whether v and c are shared by the batch (one sample's worth)]
const svdNoiseCase = ([shape, shared]: [number[], boolean]): GoldenCase[] => [
  {
    op: 'svd_noise',
    shape,
    nmse: 1e-7,
    inputs: (s) => [testValues(numel(s), 801), variances(shared ? numel(s) / s[0]! : numel(s), 802)],
    inputShapes: (s) => [s, shared ? [1, ...s.slice(1)] : s],
    run: ([y, v], out) => native.svdNoise(y!, v!, alphaBars(shape[0]!), VMAX, SEED, OFFSET, STREAM, out),
    reference: ([y, v], s) => {
      const n = s[0]!;
      const per = numel(s) / n;
      const ab = alphaBars(n);
      const z = referenceNormals(numel(s), SEED, OFFSET, STREAM);
      return Float64Array.from(y!, (yi, i) => {
        const b = Math.floor(i / per);
        const vi = v![shared ? i % per : i]!;
        const d = Math.max(1 - ab[b]! - ab[b]! * vi, 0);
        return Math.sqrt(ab[b]!) * yi + Math.sqrt(d) * z[i]!;
      });
    },
  },
];

// [batch shape, probes, central]
const probeCase = ([shape, probes, central]: [number[], number, boolean]): GoldenCase[] =>
  (central ? ['plus', 'minus'] : ['plus']).map((which): GoldenCase => {
    const s = shape as number[];
    const K = probes as number;
    const eps = 0.03;
    return {
      op: 'gsure_probe',
      shape: s,
      nmse: 1e-7,
      inputs: (sh) => [testValues(numel(sh), 811)],
      outShape: (sh) => [sh[0]! * K, ...sh.slice(1)],
      run: ([xt], out) => {
        const other = central ? native.empty(out.device!, [s[0]! * K, ...s.slice(1)]) : null;
        const [plus, minus] = which === 'plus' ? [out, other] : [other!, out];
        native.gsureProbe(xt!, K, eps, SEED, OFFSET, STREAM, plus, minus);
        other?.dispose();
      },
      reference: ([xt], sh) => {
        const per = numel(sh) / sh[0]!;
        const z = referenceNormals(numel(sh) * K, SEED, OFFSET, STREAM);
        const sign = which === 'plus' ? 1 : -1;
        return Float64Array.from(z, (zi, idx) => {
          const row = Math.floor(idx / per);
          return xt![Math.floor(row / K) * per + (idx % per)]! + sign * Math.fround(eps) * zi;
        });
      },
    };
  });

type TermsOutput = 'parts' | 'gradH' | 'gradPlus' | 'gradMinus';

/** The terms in double: parts, and the gradients of gradScale · Σ_b (fit_b + div_b). */
function referenceTerms(
  ins: Float32Array[],
  shape: number[],
  o: { probes: number; eps: number; gradScale: number; kappa: number[]; central: boolean; shared: boolean },
): Record<TermsOutput, Float64Array> {
  const [h, plus, minus, ybar, c, v] = ins as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const n = shape[0]!;
  const per = numel(shape) / n;
  const K = o.probes;
  const eps = Math.fround(o.eps);
  const z = referenceNormals(n * K * per, SEED, OFFSET, STREAM);
  const parts = new Float64Array(2 * n);
  const gradH = new Float64Array(n * per);
  const gradPlus = new Float64Array(n * K * per);
  const gradMinus = new Float64Array(n * K * per);
  for (let b = 0; b < n; b++) {
    const kappa = Math.fround(o.kappa[b]!);
    let fit = 0;
    let div = 0;
    for (let i = 0; i < per; i++) {
      const e = b * per + i;
      const ci = c[o.shared ? i : e]!;
      const vi = v[o.shared ? i : e]!;
      fit += ci * (h[e]! - ybar[e]!) ** 2;
      gradH[e] = (o.gradScale * 2 * ci * (h[e]! - ybar[e]!)) / per;
      for (let k = 0; k < K; k++) {
        const pe = (b * K + k) * per + i;
        // d = (h⁺ − h)/eps or (h⁺ − h⁻)/(2 eps); div_b = κ/(nK) Σ c v b d
        const d = o.central ? (plus[pe]! - minus[pe]!) / (2 * eps) : (plus[pe]! - h[e]!) / eps;
        div += ci * vi * z[pe]! * d;
        const g = (o.gradScale * kappa * ci * vi * z[pe]!) / (per * K * (o.central ? 2 * eps : eps));
        gradPlus[pe] = g;
        gradMinus[pe] = -g;
        if (!o.central) gradH[e] -= g;
      }
    }
    parts[2 * b] = fit / per;
    parts[2 * b + 1] = (kappa * div) / (per * K);
  }
  return { parts, gradH, gradPlus, gradMinus };
}

interface TermsSetup {
  shape: number[];
  probes: number;
  central: boolean;
  shared: boolean;
}

const termsCase = (setup: TermsSetup): GoldenCase[] =>
  (['parts', 'gradH', 'gradPlus', ...(setup.central ? ['gradMinus'] : [])] as TermsOutput[]).map((which): GoldenCase => {
    const { shape, probes: K, central, shared } = setup;
    const n = shape[0]!;
    const probeShape = [n * K, ...shape.slice(1)];
    const cvShape = shared ? [1, ...shape.slice(1)] : shape;
    const o = { probes: K, eps: 0.01, gradScale: 0.7, kappa: Array.from({ length: n }, (_, b) => 0.3 + 0.5 * b), central, shared };
    return {
      op: 'gsure_terms',
      shape,
      nmse: which === 'parts' ? 1e-6 : 1e-7,
      inputs: (s) => {
        const h = testValues(numel(s), 821);
        // h⁺ and h⁻ near h (as a network's outputs at nearby inputs), so the differences are meaningful.
        const near = (seed: number) =>
          Float32Array.from(
            testValues(numel(probeShape), seed),
            (x, i) => h[((Math.floor(i / (numel(s) / n)) / K) | 0) * (numel(s) / n) + (i % (numel(s) / n))]! + 0.01 * x,
          );
        return [h, near(822), near(823), testValues(numel(s), 824), weights(numel(cvShape), 825), variances(numel(cvShape), 826)];
      },
      inputShapes: (s) => [s, probeShape, probeShape, s, cvShape, cvShape],
      outShape: (s) => (which === 'parts' ? [n, 2] : which === 'gradH' ? s : probeShape),
      run: ([h, plus, minus, ybar, c, v], out) => {
        // Outputs other than the one checked go to temporaries on the same device.
        const temp = (shape_: number[]) => native.empty(out.device!, shape_);
        const outs: Record<TermsOutput, NativeTensor | null> = {
          parts: which === 'parts' ? out : temp([n, 2]),
          gradH: which === 'gradH' ? out : temp(shape),
          gradPlus: which === 'gradPlus' ? out : temp(probeShape),
          gradMinus: !central ? null : which === 'gradMinus' ? out : temp(probeShape),
        };
        native.gsureTerms(
          h!,
          plus!,
          central ? minus! : null,
          ybar!,
          c!,
          v!,
          o.kappa,
          { probes: K, eps: o.eps, gradScale: o.gradScale, seed: SEED, offset: OFFSET, stream: STREAM },
          outs.parts!,
          outs.gradH!,
          outs.gradPlus!,
          outs.gradMinus,
        );
        for (const t of Object.values(outs)) if (t && t !== out) t.dispose();
      },
      reference: (ins, s) => referenceTerms(ins, s, o)[which],
    };
  });

/** The GSURE ops' case makers, keyed by op name; their parameters are in ops.json. */
export const gsureMakers: Record<string, (params: never) => GoldenCase[]> = {
  svd_noise: svdNoiseCase,
  gsure_probe: probeCase,
  gsure_terms: termsCase,
};
