// Golden entries of the bootstrap ops (kintsugi/bootstrap.h) against the double-precision references
// of test/reference/bootstrap.ts. Odd sizes, overlapping and non-overlapping grids, every window.
import type { NativeTensor } from '../../lib/native.ts';
import { bootstrapNative as native } from '../../lib/bootstrap/native.ts';
import {
  refAggregate,
  refExtract,
  refHighPass,
  refOffsets,
  refOverlapAdd,
  refPool,
  refUpsample,
  type Image4,
  type Window,
} from '../reference/bootstrap.ts';
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
const aggregate = (
  shape: number[],
  r: number | null,
  patch: { P: number; S: number; window: Window } | null,
  withF0: boolean,
): GoldenCase => {
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

// a [n, ca, h, w] and b with cb channels, stacked along channels.
const concat = ([shape, cb]: [number[], number]): GoldenCase => {
  const [n, ca, h, w] = shape as [number, number, number, number];
  const hw = h * w;
  return {
    op: 'concat_channels',
    shape,
    nmse: 1e-7,
    inputs: () => [testValues(n * ca * hw, 851), testValues(n * cb * hw, 852)],
    inputShapes: () => [shape, [n, cb, h, w]],
    outShape: () => [n, ca + cb, h, w],
    run: ([a, b], out: NativeTensor) => native.concatChannels(a!, b!, out),
    reference: ([a, b]) => {
      const out = new Float64Array(n * (ca + cb) * hw);
      for (let i = 0; i < n; i++) {
        out.set(a!.subarray(i * ca * hw, (i + 1) * ca * hw), i * (ca + cb) * hw);
        out.set(b!.subarray(i * cb * hw, (i + 1) * cb * hw), i * (ca + cb) * hw + ca * hw);
      }
      return out;
    },
  };
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

type Patch = { P: number; S: number; window: Window };

/** The bootstrap ops' case makers, keyed by op name; their parameters are in ops.json. */
export const bootstrapMakers: Record<string, (params: never) => GoldenCase[]> = {
  avg_pool: ([shape, r]: [number[], number]) => [block('avg_pool', shape, r)],
  upsample_nearest: ([shape, r]: [number[], number]) => [block('upsample_nearest', shape, r)],
  high_pass: ([shape, r]: [number[], number]) => [block('high_pass', shape, r)],
  patch_extract: ([shape, P, S, positions]: [number[], number, number, boolean]) => [extract(shape, P, S, positions)],
  patch_overlap_add: ([shape, P, S, window]: [number[], number, number, Window]) => [overlap(shape, P, S, window)],
  residual_aggregate: ([shape, r, patch, withF0]: [number[], number | null, Patch | null, boolean]) => [aggregate(shape, r, patch, withF0)],
  concat_channels: (params: [number[], number]) => [concat(params)],
  batch_center: (shape: number[]) => [center(shape)],
};
