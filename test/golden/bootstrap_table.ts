// Golden entries of the bootstrap ops (kintsugi/bootstrap.h) against the double-precision references
// of test/reference/bootstrap.ts. Odd sizes, overlapping and non-overlapping grids, every window.
import type { NativeTensor } from '../../lib/native.ts';
import { bootstrapNative as native } from '../../lib/bootstrap/native.ts';
import { refAggregate, refExtract, refHighPass, refOffsets, refOverlapAdd, refPool, refUpsample, type Image4, type Window } from '../reference/bootstrap.ts';
import { testValues } from '../helpers.ts';
import type { GoldenCase } from './table.ts';

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const img = (s: number[]) => s as unknown as Image4;

const block = (op: string, shape: number[], r: number): GoldenCase => {
  const [n, c, h, w] = shape as [number, number, number, number];
  const up = op === 'upsample_nearest';
  return {
    op,
    shape,
    nmse: 1e-7,
    inputs: (s) => [testValues(numel(s), 811 + r)],
    outShape: () => (up ? [n, c, h * r, w * r] : op === 'avg_pool' ? [n, c, h / r, w / r] : shape),
    run: ([x], out) => (op === 'avg_pool' ? native.avgPool : up ? native.upsampleNearest : native.highPass)(x!, r, out),
    reference: ([x], s) => (op === 'avg_pool' ? refPool : up ? refUpsample : refHighPass)(x!, img(s), r),
  };
};

const extract = (shape: number[], P: number, S: number, positions: boolean): GoldenCase => {
  const J = refOffsets(shape[2]!, shape[3]!, P, S).length;
  return {
    op: 'patch_extract',
    shape,
    nmse: 1e-7,
    inputs: (s) => [testValues(numel(s), 821)],
    outShape: (s) => [s[0]! * J, s[1]! + (positions ? 2 : 0), P, P],
    run: ([x], out) => native.patchExtract(x!, P, S, positions, out),
    reference: ([x], s) => refExtract(x!, img(s), P, S, positions),
  };
};

const overlap = (shape: number[], P: number, S: number, window: Window): GoldenCase => {
  const J = refOffsets(shape[2]!, shape[3]!, P, S).length;
  return {
    op: 'patch_overlap_add',
    shape,
    nmse: 1e-7,
    inputs: (s) => [testValues(s[0]! * J * s[1]! * P * P, 831)],
    inputShapes: (s) => [[s[0]! * J, s[1]!, P, P]],
    run: ([p], out) => native.patchOverlapAdd(p!, S, window, out),
    reference: ([p], s) => refOverlapAdd(p!, img(s), P, S, window),
  };
};

// Inputs in the order f_lr, f_patch, f0 (those present).
const aggregate = (shape: number[], r: number | null, patch: { P: number; S: number; window: Window } | null, withF0: boolean): GoldenCase => {
  const [n, c, h, w] = shape as [number, number, number, number];
  const J = patch ? refOffsets(h, w, patch.P, patch.S).length : 0;
  const shapes = [...(r ? [[n, c, h / r, w / r]] : []), ...(patch ? [[n * J, c, patch.P, patch.P]] : []), ...(withF0 ? [shape] : [])];
  return {
    op: 'residual_aggregate',
    shape,
    nmse: 1e-7,
    inputs: () => shapes.map((s, k) => testValues(numel(s), 841 + k)),
    inputShapes: () => shapes,
    run: (ins, out) => {
      const q = [...ins];
      const lr = r ? q.shift()! : null;
      const fp = patch ? q.shift()! : null;
      const f0 = withF0 ? q.shift()! : null;
      native.residualAggregate(lr, r ?? 1, fp, patch?.S ?? 1, patch?.window ?? 'hann', f0, out);
    },
    reference: (ins, s) => {
      const q = [...ins];
      const lr = r ? { f: q.shift()!, r } : null;
      const fp = patch ? { f: q.shift()!, ...patch } : null;
      return refAggregate(img(s), lr, fp, withF0 ? q.shift()! : null);
    },
  };
};

const concat: GoldenCase = {
  op: 'concat_channels',
  shape: [2, 3, 5, 7],
  nmse: 1e-7,
  inputs: () => [testValues(2 * 3 * 35, 851), testValues(2 * 2 * 35, 852)],
  inputShapes: () => [[2, 3, 5, 7], [2, 2, 5, 7]],
  outShape: () => [2, 5, 5, 7],
  run: ([a, b], out: NativeTensor) => native.concatChannels(a!, b!, out),
  reference: ([a, b]) => {
    const out = new Float64Array(2 * 5 * 35);
    for (let i = 0; i < 2; i++) {
      out.set(a!.subarray(i * 105, (i + 1) * 105), i * 175);
      out.set(b!.subarray(i * 70, (i + 1) * 70), i * 175 + 105);
    }
    return out;
  },
};

const center = (shape: number[]): GoldenCase => ({
  op: 'batch_center',
  shape,
  nmse: 1e-7,
  inputs: (s) => [testValues(numel(s), 861)],
  run: ([x], out) => native.batchCenter(x!, out),
  reference: ([x], s) => {
    const n = s[0]!;
    const per = numel(s) / n;
    const mean = new Float64Array(per);
    x!.forEach((v, i) => (mean[i % per]! += v / n));
    return Float64Array.from(x!, (v, i) => v - mean[i % per]!);
  },
});

export const bootstrapTable: GoldenCase[] = [
  block('avg_pool', [2, 3, 8, 12], 2),
  block('avg_pool', [1, 2, 16, 16], 4),
  block('upsample_nearest', [2, 3, 4, 5], 2),
  block('upsample_nearest', [1, 2, 3, 3], 4),
  block('high_pass', [2, 3, 8, 12], 2),
  block('high_pass', [1, 2, 16, 8], 4),
  extract([2, 3, 12, 16], 8, 4, true),
  extract([1, 2, 16, 16], 8, 8, false),
  extract([3, 1, 7, 9], 3, 2, true),
  overlap([2, 3, 12, 16], 8, 4, 'hann'),
  overlap([2, 3, 12, 16], 8, 4, 'triangle'),
  overlap([1, 1, 7, 9], 3, 2, 'uniform'),
  overlap([1, 2, 16, 16], 8, 8, 'hann'),
  overlap([2, 1, 10, 10], 4, 3, 'hann'),
  aggregate([2, 3, 16, 16], 4, { P: 8, S: 4, window: 'hann' }, true),
  aggregate([2, 3, 16, 16], 4, { P: 8, S: 4, window: 'triangle' }, false),
  aggregate([1, 2, 12, 16], 2, { P: 6, S: 2, window: 'uniform' }, true),
  aggregate([2, 1, 8, 8], 2, null, true),
  aggregate([2, 1, 10, 10], null, { P: 4, S: 3, window: 'hann' }, false),
  concat,
  center([5, 3, 7, 7]),
  center([1, 11]),
];
