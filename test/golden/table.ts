// The golden table: ops.json, keyed by the registry's op names, lists each op's case parameters (and
// the emulator's calls, and finite-difference checks); the makers here and in the *_table.ts files turn
// parameters into cases: inputs, the run, its NMSE bound and an independent reference computed in
// double precision. golden.test.ts runs every case on the CPU (against the reference) and on each CUDA
// device (against the CPU backend).
import { native, type NativeTensor } from '../../lib/native.ts';
import { referenceNormals, referenceUniform } from '../reference/philox.ts';
import { testValues } from '../helpers.ts';
import { bootstrapMakers } from './bootstrap_table.ts';
import { nnMakers } from './nn_table.ts';
import { gsureMakers } from './gsure_table.ts';
import { corruptionMakers } from './corruption_table.ts';
import opsTable from './ops.json' with { type: 'json' };

export interface GoldenCase {
  op: string;
  shape: number[];
  /** Bound on NMSE: 1e-7 for elementwise ops, 1e-6 for reductions (architecture.md). */
  nmse: number;
  /** Host inputs; never all zeros. */
  inputs(shape: number[]): Float32Array[];
  outShape?(shape: number[]): number[];
  /** Shapes of the inputs when they differ from `shape`. */
  inputShapes?(shape: number[]): number[][];
  /** Queues the op on native tensors, writing into the guarded `out`. */
  run(inputs: NativeTensor[], out: NativeTensor): void;
  /** The expected output, computed independently of the native code. */
  reference(inputs: Float32Array[], shape: number[]): Float64Array | Promise<Float64Array>;
}

const ADAMW = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 7, maxNorm: 0.5 };
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const SEED = 0x243f6a8885a308d3n;
const OFFSET = 12345n;
const STREAM = 7n;

// Shapes in ops.json are odd on purpose: they exercise the tails of vectorised and blocked loops (n % 4 != 0).
const elementwise =
  (op: string, nIn: number, run: GoldenCase['run'], f: (x: number[]) => number) =>
  (shape: number[]): GoldenCase[] => [
    {
      op,
      shape,
      nmse: 1e-7,
      inputs: (s) => Array.from({ length: nIn }, (_, k) => testValues(numel(s), 101 + k)),
      run,
      reference: (ins) => Float64Array.from(ins[0]!, (_, i) => f(ins.map((x) => x[i]!))),
    },
  ];

const tensorMakers: Record<string, (params: never) => GoldenCase[]> = {
  fill: (shape: number[]): GoldenCase[] => [
    {
      op: 'fill',
      shape,
      nmse: 1e-7,
      inputs: () => [],
      run: (_, out) => native.fill(out, 0.37),
      reference: (_, s) => new Float64Array(numel(s)).fill(Math.fround(0.37)),
    },
  ],
  randn: (shape: number[]): GoldenCase[] => [
    {
      op: 'randn',
      shape,
      nmse: 1e-7,
      inputs: () => [],
      run: (_, out) => native.randn(out, SEED, OFFSET, STREAM),
      reference: (_, s) => referenceNormals(numel(s), SEED, OFFSET, STREAM),
    },
  ],
  uniform: (shape: number[]): GoldenCase[] => [
    {
      op: 'uniform',
      shape,
      nmse: 1e-7,
      inputs: () => [],
      run: (_, out) => native.uniform(out, -2, 3, SEED, OFFSET, STREAM),
      reference: (_, s) => referenceUniform(numel(s), -2, 3, SEED, OFFSET, STREAM),
    },
  ],
  copy: elementwise(
    'copy',
    1,
    ([a], out) => native.copy(a!, out),
    ([a]) => a!,
  ),
  clamp: elementwise(
    'clamp',
    1,
    ([a], out) => native.clamp(a!, -0.5, 1.25, out),
    ([a]) => Math.min(Math.max(a!, -0.5), 1.25),
  ),
  add: elementwise(
    'add',
    2,
    ([a, b], out) => native.add(a!, b!, out),
    ([a, b]) => a! + b!,
  ),
  scale: elementwise(
    'scale',
    1,
    ([a], out) => native.scale(a!, -1.7, out),
    ([a]) => Math.fround(-1.7) * a!,
  ),
  sum_squares: (shape: number[]): GoldenCase[] => [
    {
      op: 'sum_squares',
      shape,
      nmse: 1e-6,
      inputs: (s) => [testValues(numel(s), 404)],
      outShape: () => [1],
      run: ([a], out) => native.sumSquares(a!, out),
      reference: ([a]) => Float64Array.of(a!.reduce((s, x) => s + x * x, 0)),
    },
  ],
  // AdamW: out starts as a copy of the parameters and is updated in place; m and v start non-zero
  // (a later step), and clipping is active (maxNorm below the gradient norm).
  adamw: (shape: number[]): GoldenCase[] => [
    {
      op: 'adamw',
      shape,
      nmse: 1e-7,
      inputs: (s) => {
        const n = numel(s);
        const grads = testValues(n, 505);
        const sumsq = Float32Array.of(grads.reduce((acc, g) => acc + g * g, 0));
        return [
          testValues(n, 501),
          grads,
          testValues(n, 502).map((x) => 0.1 * x),
          testValues(n, 503).map((x) => 0.01 * Math.abs(x)),
          sumsq,
        ];
      },
      inputShapes: (s) => [s, s, s, s, [1]],
      run: ([p, g, m, v, sumsq], out) => {
        native.copy(p!, out);
        native.adamw(out, g!, m!, v!, sumsq!, ADAMW);
      },
      reference: ([p, g, m, v, sumsq]) => {
        const { lr, beta1, beta2, eps, weightDecay, step, maxNorm } = ADAMW;
        const scale = Math.min(1, maxNorm / (Math.sqrt(sumsq![0]!) + 1e-6));
        return Float64Array.from(p!, (pi, i) => {
          const gi = g![i]! * scale;
          const mi = beta1 * m![i]! + (1 - beta1) * gi;
          const vi = beta2 * v![i]! + (1 - beta2) * gi * gi;
          const mhat = mi / (1 - beta1 ** step);
          const vhat = vi / (1 - beta2 ** step);
          return pi * (1 - lr * weightDecay) - (lr * mhat) / (Math.sqrt(vhat) + eps);
        });
      },
    },
  ],
  ema: (shape: number[]): GoldenCase[] => [
    {
      op: 'ema',
      shape,
      nmse: 1e-7,
      inputs: (s) => [testValues(numel(s), 601), testValues(numel(s), 602)],
      run: ([e, p], out) => {
        native.copy(e!, out);
        native.emaUpdate(out, p!, 0.95);
      },
      reference: ([e, p]) => Float64Array.from(e!, (ei, i) => Math.fround(0.95) * ei + (1 - Math.fround(0.95)) * p![i]!),
    },
  ],
  // Per-sample linear combination of three tensors (noising, target conversions, sampler updates).
  combine: (shape: number[]): GoldenCase[] => [
    {
      op: 'combine',
      shape,
      nmse: 1e-7,
      inputs: (s) => [
        testValues(numel(s), 701),
        testValues(numel(s), 702),
        testValues(numel(s), 703),
        testValues(s[0]!, 704),
        testValues(s[0]!, 705),
        testValues(s[0]!, 706),
      ],
      inputShapes: (s) => [s, s, s, [s[0]!], [s[0]!], [s[0]!]],
      run: ([x0, x1, x2, c0, c1, c2], out) => native.combine(out, [x0!, c0!, x1!, c1!, x2!, c2!]),
      reference: ([x0, x1, x2, c0, c1, c2], s) => {
        const per = numel(s) / s[0]!;
        return Float64Array.from(x0!, (_, i) => {
          const b = Math.floor(i / per);
          return c0![b]! * x0![i]! + c1![b]! * x1![i]! + c2![b]! * x2![i]!;
        });
      },
    },
  ],
  sum: (shape: number[]): GoldenCase[] => [
    {
      op: 'sum',
      shape,
      nmse: 1e-6,
      inputs: (s) => [testValues(numel(s), 303)],
      outShape: () => [1],
      run: ([a], out) => native.sum(a!, out),
      reference: ([a]) => Float64Array.of(a!.reduce((s, x) => s + x, 0)),
    },
  ],
};

/** One op's row of ops.json (the golden table keyed by op name; its $comment says what each field is). */
export interface OpRow {
  golden: unknown[] | string;
  emu: unknown[][] | string;
  fd?: { ref: string; attrs: Record<string, number> }[];
}
export const opRows: Record<string, OpRow> = Object.fromEntries(Object.entries(opsTable).filter(([op]) => !op.startsWith('$'))) as Record<
  string,
  OpRow
>;

/** The code of each op's golden cases (inputs, run, independent reference), keyed by op name. */
export const makers: Record<string, (params: never) => GoldenCase[]> = {
  ...tensorMakers,
  ...nnMakers,
  ...gsureMakers,
  ...corruptionMakers,
  ...bootstrapMakers,
};

/** Every golden case: for each op of ops.json with a list of golden parameters, its maker's cases. */
export const goldenTable: GoldenCase[] = Object.entries(opRows).flatMap(([op, row]) => {
  if (typeof row.golden === 'string') return [];
  const make = makers[op];
  if (!make) throw new Error(`test/golden/ops.json: op ${op} has golden parameters but no maker in test/golden/*_table.ts`);
  return row.golden.flatMap((params) => make(params as never));
});
