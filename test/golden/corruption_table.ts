// Golden entries for the degradation ops (lib/corruption): mul, block averaging in its Helmert basis
// (both directions, every coefficient or coefficient 0 alone), and the orthonormal 2-D FFT, each against
// an independent double-precision reference from test/corruption/reference.ts.
import { native } from '../../lib/native.ts';
import { testValues } from '../helpers.ts';
import { blockAverageVRef, blockAverageVtRef, dft2Ref } from '../corruption/reference.ts';
import type { GoldenCase } from './table.ts';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const small = (s: number[], k: number) => [s[0]!, s[1]!, s[2]! / k, s[3]! / k];

/** The corruption ops' case makers, keyed by op name; their parameters are in ops.json. */
export const corruptionMakers: Record<string, (params: never) => GoldenCase[]> = {
  mul: (shape: number[]) => [
    {
      op: 'mul',
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), 801), testValues(numel(s), 802)],
      run: ([a, b], out) => native.mul(a!, b!, out),
      reference: ([a, b]) => Float64Array.from(a!, (x, i) => x * b![i]!),
    },
  ],
  // [shape, k]: k = 1 (identity), odd block sizes, and more blocks than one thread sweep.
  block_average_vt: ([shape, k]: [number[], number]) => [
    {
      op: `block_average_vt k${k}`,
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), 811)],
      run: ([x], out) => native.blockAverageVt(x!, k, 1, out),
      reference: ([x], s) => blockAverageVtRef(x!, s, k, false),
    },
    {
      op: `block_average_vt k${k} coefficient 0, scale 1/k`,
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), 812)],
      outShape: (s) => small(s, k),
      run: ([x], out) => native.blockAverageVt(x!, k, 1 / k, out),
      reference: ([x], s) => blockAverageVtRef(x!, s, k, true, Math.fround(1 / k)),
    },
  ],
  block_average_v: ([shape, k]: [number[], number]) => [
    {
      op: `block_average_v k${k}`,
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), 813)],
      run: ([c], out) => native.blockAverageV(c!, k, 1, out),
      reference: ([c], s) => blockAverageVRef(c!, s, k, false),
    },
    {
      op: `block_average_v k${k} from coefficient 0, scale k`,
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(small(s, k)), 814)],
      inputShapes: (s) => [small(s, k)],
      run: ([c], out) => native.blockAverageV(c!, k, k, out),
      reference: ([c], s) => blockAverageVRef(c!, s, k, true, k),
    },
  ],
  // Square and oblong, rows and columns of length 1, and lines longer than one CUDA block's threads.
  fft2: (shape: number[]) =>
    [false, true].map((inverse) => ({
      op: inverse ? 'fft2 inverse' : 'fft2',
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), inverse ? 822 : 821)],
      run: ([x], out) => native.fft2(x!, inverse, out),
      reference: ([x], s) => dft2Ref(x!, s, inverse),
    })),
};
