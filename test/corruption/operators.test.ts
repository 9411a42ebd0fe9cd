// The degradation operators against their definitions: adjoint and pseudo-inverse identities, V
// orthonormal, A = U Σ Vᵀ on random vectors, toSvd of noise-free measurements, and apply / vt against
// independent host computations (block means, a naive DFT, the mask product). All on the CPU.
import { describe, expect, it } from 'vitest';
import {
  BlockAverageOperator,
  FourierOperator,
  MaskOperator,
  randn,
  randomFourier,
  randomMask,
  tensor,
  type Degradation,
  type Tensor,
} from '../../lib/index.ts';
import { Generator } from '../../lib/random.ts';
import { dft2Ref } from './reference.ts';

const N = 3;
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));
/** max |a - b| / max(max |b|, 1e-30). */
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let e = 0;
  let m = 1e-30;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return e / m;
};
const host = (t: Tensor) => t.toArray();
let seed = 100;
const gauss = (shape: readonly number[]) => randn(shape, { device: 'cpu', generator: new Generator(seed++) });

// The operators under test, each with U Σ applied on the host to an SVD-domain vector: the map from
// x̄ to y that the SVD claims (identity U for masks and Fourier; block averaging keeps plane 0 of
// each channel, the observed coefficients, as the low-resolution image).
interface Case {
  name: string;
  make(): Degradation;
  uSigma(op: Degradation, xbar: Float32Array, s: Float32Array): Float64Array;
}
const elementwise = (_op: Degradation, xbar: Float32Array, s: Float32Array) => Float64Array.from(xbar, (v, i) => v * s[i]!);
const firstPlane = (op: Degradation, xbar: Float32Array, s: Float32Array) => {
  const [C, h, w] = op.measurementShape as [number, number, number];
  const [, H, W] = op.signalShape as [number, number, number];
  const out = new Float64Array(op.batchSize * C * h * w);
  for (let p = 0; p < op.batchSize * C; p++) for (let j = 0; j < h * w; j++) out[p * h * w + j] = xbar[p * H * W + j]! * s[p * H * W + j]!;
  return out;
};
const cases: Case[] = [
  { name: 'pixel mask p=0.3', make: () => randomMask(N, [1, 8, 8], { p: 0.3, seed: 1, device: 'cpu' }), uSigma: elementwise },
  {
    name: 'patch mask 4x4 p=0.4, 3 channels',
    make: () => randomMask(N, [3, 16, 16], { patch: 4, p: 0.4, seed: 2, device: 'cpu' }),
    uSigma: elementwise,
  },
  {
    name: 'given mask per channel',
    make: () =>
      new MaskOperator(
        Uint8Array.from({ length: N * 2 * 4 * 4 }, (_, i) => ((i * 7) % 3 === 0 ? 0 : 1)),
        [N, 2, 4, 4],
        [2, 4, 4],
        { device: 'cpu' },
      ),
    uSigma: elementwise,
  },
  { name: 'block average k=2', make: () => new BlockAverageOperator(N, [3, 8, 12], 2, { device: 'cpu' }), uSigma: firstPlane },
  { name: 'block average k=4', make: () => new BlockAverageOperator(N, [1, 16, 16], 4, { device: 'cpu' }), uSigma: firstPlane },
  { name: 'block average k=1', make: () => new BlockAverageOperator(N, [2, 4, 4], 1, { device: 'cpu' }), uSigma: firstPlane },
  {
    name: 'fourier 16x8 lines',
    make: () => randomFourier(N, [2, 16, 8], { centerLines: 4, randomLines: 3, seed: 3, device: 'cpu' }),
    uSigma: elementwise,
  },
];

describe.each(cases)('$name', ({ make, uSigma }) => {
  const sig = (op: Degradation) => [op.batchSize, ...op.signalShape];
  const meas = (op: Degradation) => [op.batchSize, ...op.measurementShape];

  it('adjoint: <Ax, y> = <x, Aᵀy> on random vectors', async () => {
    using op = make();
    for (let trial = 0; trial < 3; trial++) {
      using x = gauss(sig(op));
      using y = gauss(meas(op));
      using ax = op.apply(x);
      using aty = op.adjoint(y);
      const [lhs, rhs] = [dot(await host(ax), await host(y)), dot(await host(x), await host(aty))];
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * (norm(await host(ax)) * norm(await host(y)) + 1e-12));
    }
  });

  it('V is orthonormal: |Vᵀx| = |x|, V Vᵀ x = x, Vᵀ V x̄ = x̄', async () => {
    using op = make();
    using x = gauss(sig(op));
    using xbar = op.vt(x);
    using back = op.v(xbar);
    using vx = op.v(x);
    using vtvx = op.vt(vx);
    const hx = await host(x);
    expect(Math.abs(norm(await host(xbar)) / norm(hx) - 1)).toBeLessThan(1e-6);
    expect(relErr(await host(back), hx)).toBeLessThan(2e-6);
    expect(relErr(await host(vtvx), hx)).toBeLessThan(2e-6);
  });

  it('A = U Σ Vᵀ on random vectors', async () => {
    using op = make();
    using x = gauss(sig(op));
    using ax = op.apply(x);
    using xbar = op.vt(x);
    using s = op.singularValues();
    const hs = await host(s);
    expect(hs.every((v) => v >= 0)).toBe(true);
    expect(hs.some((v) => v > 0) && hs.some((v) => v === 0)).toBe(op.kind !== 'blockaverage' || (op as BlockAverageOperator).k > 1);
    expect(relErr(await host(ax), uSigma(op, await host(xbar), hs))).toBeLessThan(2e-6);
  });

  it('pseudo-inverse: A A† A = A and A† A A† = A†', async () => {
    using op = make();
    using x = gauss(sig(op));
    using y = gauss(meas(op));
    using ax = op.apply(x);
    using p1 = op.pinv(ax);
    using aapa = op.apply(p1);
    expect(relErr(await host(aapa), await host(ax))).toBeLessThan(2e-6);
    using py = op.pinv(y);
    using apy = op.apply(py);
    using papy = op.pinv(apy);
    expect(relErr(await host(papy), await host(py))).toBeLessThan(2e-6);
  });

  it('toSvd of a noise-free measurement is P Vᵀx, exactly 0 off the observed coordinates', async () => {
    using op = make();
    using x = gauss(sig(op));
    using y = op.apply(x);
    using ybar = op.toSvd(y);
    using xbar = op.vt(x);
    using s = op.singularValues();
    const [hy, hx, hs] = [await host(ybar), await host(xbar), await host(s)];
    expect(
      relErr(
        hy,
        Float64Array.from(hx, (v, i) => (hs[i]! > 0 ? v : 0)),
      ),
    ).toBeLessThan(2e-6);
    expect(hy.every((v, i) => hs[i]! > 0 || v === 0)).toBe(true);
  });

  it('select takes the rows of a batch', async () => {
    using op = make();
    using sub = op.select([2, 0]);
    expect(sub.batchSize).toBe(2);
    using s = op.singularValues();
    using ss = sub.singularValues();
    const [all, part] = [await host(s), await host(ss)];
    const per = all.length / N;
    expect(Array.from(part)).toEqual([...all.subarray(2 * per, 3 * per), ...all.subarray(0, per)]);
    expect(() => op.select([N])).toThrow(/indices\[0\]: expected an integer in \[0, 3\), got 3/);
  });
});

describe('apply and Vᵀ against independent host computations', () => {
  it('block average: apply gives the block means; vt coefficient 0 is block sum / k', async () => {
    using op = new BlockAverageOperator(2, [2, 6, 9], 3, { device: 'cpu' });
    using x = gauss([2, 2, 6, 9]);
    using y = op.apply(x);
    const hx = await host(x);
    const want = new Float64Array(2 * 2 * 2 * 3);
    for (let p = 0; p < 4; p++)
      for (let i = 0; i < 6; i++)
        for (let j = 0; j < 9; j++) want[p * 6 + Math.floor(i / 3) * 3 + Math.floor(j / 3)] += hx[p * 54 + i * 9 + j]! / 9;
    expect(relErr(await host(y), want)).toBeLessThan(1e-6);
    using pin = op.pinv(y);
    const hp = await host(pin);
    expect(hp[0]).toBeCloseTo(want[0]!, 5); // H† y spreads each mean over its block
    expect(hp[9 + 2]).toBeCloseTo(want[0]!, 5);
  });

  it('fourier: vt is the orthonormal DFT (naive double sum), apply keeps the sampled rows', async () => {
    using op = new FourierOperator(Uint8Array.of(1, 0, 0, 1, 0, 1, 1, 0), [2, 8, 4], { device: 'cpu' });
    using x = gauss([1, 2, 8, 4]);
    const hx = await host(x);
    const ref = dft2Ref(hx, [1, 2, 8, 4], false);
    using xbar = op.vt(x);
    expect(relErr(await host(xbar), ref)).toBeLessThan(1e-6);
    using y = op.apply(x);
    const hy = await host(y);
    const rows = [1, 0, 0, 1, 0, 1, 1, 0];
    expect(
      relErr(
        hy,
        Float64Array.from(ref, (v, i) => (rows[Math.floor(i / 4) % 8] ? v : 0)),
      ),
    ).toBeLessThan(1e-6);
  });

  it('mask: apply is the product with the mask, shared by the channels', async () => {
    const mask = Uint8Array.of(1, 0, 0, 1);
    using op = new MaskOperator(mask, [1, 1, 2, 2], [3, 2, 2], { device: 'cpu' });
    using x = tensor(
      Float32Array.from({ length: 12 }, (_, i) => i + 1),
      [1, 3, 2, 2],
      { device: 'cpu' },
    );
    using y = op.apply(x);
    expect(Array.from(await host(y))).toEqual([1, 0, 0, 4, 5, 0, 0, 8, 9, 0, 0, 12]);
  });
});

describe('argument errors name the argument, the expected and the actual value', () => {
  it('batches of the wrong shape or device', () => {
    using op = new BlockAverageOperator(2, [1, 8, 8], 2, { device: 'cpu' });
    using x = gauss([2, 1, 8, 4]);
    expect(() => op.apply(x)).toThrow('x: expected shape [2,1,8,8], got [2,1,8,4]');
    expect(() => op.pinv(x)).toThrow('y: expected shape [2,1,4,4], got [2,1,8,4]');
  });
  it('bad parameters', () => {
    expect(() => new BlockAverageOperator(1, [1, 8, 8], 3)).toThrow(
      'k: expected an integer in [1, 64] dividing the height 8 and width 8, got 3',
    );
    expect(() => randomMask(2, [1, 8, 8], { p: 1.5, seed: 1 })).toThrow('options.p: expected a drop probability in [0, 1], got 1.5');
    expect(() => randomMask(2, [1, 8, 8], { patch: 3, p: 0.5, seed: 1 })).toThrow(
      /options.patch: expected a positive integer dividing the height 8 and width 8, got 3/,
    );
    expect(() => new FourierOperator(new Uint8Array(12), [2, 12, 8])).toThrow(
      'signalShape: the height must be a power of two up to 2048, got 12 in [2,12,8]',
    );
    expect(() => new FourierOperator(new Uint8Array(8), [1, 8, 8])).toThrow(/expected \[2, H, W\]/);
    expect(() => new MaskOperator(Uint8Array.of(0, 2, 1, 1), [1, 1, 2, 2], [1, 2, 2])).toThrow(
      'mask: values must be 0 (dropped) or 1 (observed), got 2 at index 1',
    );
    expect(() => randomFourier(1, [2, 8, 8], { centerLines: 4, randomLines: 5, seed: 0 })).toThrow(
      'options.randomLines: expected an integer in [0, 4] (H - centerLines), got 5',
    );
  });
});
