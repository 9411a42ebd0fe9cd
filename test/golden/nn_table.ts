// Golden entries for the network ops (native/cpu/<op>.h and native/cuda/<op>.cu): one entry per op
// output, the float op run through nnOp, the reference the double-precision CPU reference of the same
// op (itself checked against PyTorch's float64 autograd and finite differences in test/unet/ops.test.ts).
// Accumulating outputs (weight and bias gradients) start at 0.25, so accumulation is checked too.
import { native, type NativeTensor } from '../../lib/native.ts';
import { testValues } from '../helpers.ts';
import type { GoldenCase } from './table.ts';

type Arrays = Record<string, Float32Array>;

interface Output {
  name: string;
  size: number;
  /** The key of referenceOp's result this output equals; absent: not compared (an auxiliary output). */
  ref?: string;
  accumulate?: boolean;
}

interface Spec {
  label: string;
  op: string; // nnOp name
  attrs: Record<string, number>;
  inputs: [string, number][]; // names and sizes, in nnOp order
  outputs: Output[]; // in nnOp order
  /** Inputs derived from the others (e.g. GroupNorm statistics). */
  derive?: (a: Arrays) => Arrays;
  refOp?: string;
  refArgs?: (a: Arrays) => Record<string, number | Float64Array>;
  /** Instead of refOp: a reference composed of other ops' references (fused ops). */
  reference?: (a: Arrays) => Promise<Record<string, Float64Array>>;
  nmse: number;
}

const f64 = (a: Float32Array) => Float64Array.from(a);

function groupStats(x: Float32Array, n: number, c: number, hw: number, groups: number) {
  const m = (c / groups) * hw;
  const mean = new Float32Array(n * groups);
  const rstd = new Float32Array(n * groups);
  for (let g = 0; g < n * groups; g++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += x[g * m + i]!;
    const mu = s / m;
    let v = 0;
    for (let i = 0; i < m; i++) v += (x[g * m + i]! - mu) ** 2;
    mean[g] = mu;
    rstd[g] = 1 / Math.sqrt(v / m + 1e-5);
  }
  return { mean, rstd };
}

function cases(spec: Spec): GoldenCase[] {
  // The same inputs on every call (CPU, CUDA, reference).
  const make = (): Arrays => {
    const a: Arrays = {};
    spec.inputs.forEach(([name, size], i) => (a[name] = testValues(size, 900 + i)));
    return { ...a, ...spec.derive?.(a) };
  };
  return spec.outputs.flatMap((target, k): GoldenCase[] =>
    target.ref === undefined
      ? []
      : [
          {
            op: `${spec.label} -> ${target.name}`,
            shape: [target.size],
            nmse: spec.nmse,
            inputs: () => {
              const a = make();
              return spec.inputs.map(([name]) => a[name]!);
            },
            inputShapes: () => spec.inputs.map(([, size]) => [size]),
            run: (ins: NativeTensor[], out: NativeTensor) => {
              const device = out.device!;
              const scratch: NativeTensor[] = [];
              const outs = spec.outputs.map((o, j) => {
                if (j === k) return out;
                const t = native.empty(device, [o.size]);
                native.fill(t, 0);
                scratch.push(t);
                return t;
              });
              native.fill(out, target.accumulate ? 0.25 : Number.NaN); // NaN: an unwritten output fails
              native.nnOp(spec.op, spec.attrs, ins, outs);
              for (const t of scratch) t.dispose();
            },
            reference: async () => {
              const r = spec.reference ? await spec.reference(make()) : await native.referenceOp(spec.refOp!, spec.refArgs!(make()));
              const v = r[target.ref!]!;
              return target.accumulate ? v.map((x) => x + 0.25) : v;
            },
          },
        ],
  );
}

type Conv = { label: string; n: number; cin: number; h: number; w: number; cout: number; k: number; stride: number; precision?: number };

// The operand rounding of the tensor cores (precision 1: BF16, 8 significant bits, ties to even;
// 2: TF32, 11 bits, ties away from zero), written independently of native/include/kintsugi/precision.h:
// the two neighbours with `bits` significant bits (truncation, and one unit more), the nearer one wins.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function roundOperand(x: number, precision: number): number {
  if (precision === 0 || !Number.isFinite(x) || x === 0) return x;
  const drop = precision === 1 ? 16 : 13; // low mantissa bits cleared
  f32[0] = x;
  const bits = u32[0]!;
  u32[0] = bits & ~((1 << drop) - 1);
  const down = f32[0]!;
  u32[0] = (bits | ((1 << drop) - 1)) + 1; // the next value of the coarse grid, away from zero
  const up = f32[0]!;
  const dd = Math.abs(x - down),
    du = Math.abs(up - x);
  if (dd !== du) return dd < du ? down : up;
  if (precision === 2) return up; // ties away from zero
  return ((bits >>> drop) & 1) === 0 ? down : up; // ties to even
}
const rounded = (a: Float32Array, precision: number) => Float64Array.from(a, (v) => roundOperand(v, precision));

const conv = (c: Conv, which: 'forward' | 'backward') => {
  const { label, n, cin, h, w, cout, k, stride } = c;
  const precision = c.precision ?? 0;
  const ho = Math.floor((h + 2 * Math.floor(k / 2) - k) / stride) + 1;
  const wo = Math.floor((w + 2 * Math.floor(k / 2) - k) / stride) + 1;
  const attrs = { n, cin, h, w, cout, k, stride, ...(precision ? { precision } : {}) };
  const [nx, nw, ny] = [n * cin * h * w, cout * cin * k * k, n * cout * ho * wo];
  // With a reduced precision the reference runs on the operands rounded as the GPU rounds them; the
  // products are then exact, and the op differs from it only by FP32 accumulation (NMSE ~ K u32^2,
  // about 1e-12 here), while a wrong or missing rounding costs about (2/3) u^2: 1e-5 (BF16), 2e-7 (TF32).
  // Hence the bound 1e-9. The bias gradient uses the unrounded gy (checked by the FP32 cases).
  const refArgs = (a: Arrays) => ({
    ...attrs,
    x: rounded(a.x!, precision),
    weight: rounded(a.w!, precision),
    bias: f64(a.b ?? new Float32Array(cout)),
    gout: rounded(a.gy ?? new Float32Array(ny), precision),
  });
  const nmse = precision ? 1e-9 : 1e-7;
  if (which === 'forward')
    return cases({
      label: `${label} forward`,
      op: 'conv2d_forward',
      attrs,
      inputs: [
        ['x', nx],
        ['w', nw],
        ['b', cout],
      ],
      outputs: [{ name: 'y', size: ny, ref: 'out' }],
      refOp: 'conv2d',
      refArgs,
      nmse,
    });
  return cases({
    label: `${label} backward`,
    op: 'conv2d_backward',
    attrs,
    inputs: [
      ['x', nx],
      ['w', nw],
      ['gy', ny],
    ],
    outputs: [
      { name: 'gx', size: nx, ref: 'grad.x' },
      { name: 'gw', size: nw, ref: 'grad.weight', accumulate: true },
      { name: 'gb', size: cout, ref: precision ? undefined : 'grad.bias', accumulate: true },
    ],
    refOp: 'conv2d',
    refArgs,
    nmse,
  });
};

// conv2d_forward_fused: the convolution's double reference (operands rounded as conv's), then the
// per-(sample, channel) bias and the residual added in double.
const convFused = (c: Conv) => {
  const { label, n, cin, h, w, cout, k, stride } = c;
  const precision = c.precision ?? 0;
  const ho = Math.floor((h + 2 * Math.floor(k / 2) - k) / stride) + 1;
  const wo = Math.floor((w + 2 * Math.floor(k / 2) - k) / stride) + 1;
  const attrs = { n, cin, h, w, cout, k, stride, ...(precision ? { precision } : {}) };
  const [nx, nw, ny, plane] = [n * cin * h * w, cout * cin * k * k, n * cout * ho * wo, ho * wo];
  return cases({
    label: `${label} forward + time bias + residual`,
    op: 'conv2d_forward_fused',
    attrs,
    inputs: [
      ['x', nx],
      ['w', nw],
      ['b', cout],
      ['cb', n * cout],
      ['res', ny],
    ],
    outputs: [{ name: 'y', size: ny, ref: 'out' }],
    reference: async (a) => {
      const r = await native.referenceOp('conv2d', {
        n,
        cin,
        h,
        w,
        cout,
        k,
        stride,
        x: rounded(a.x!, precision),
        weight: rounded(a.w!, precision),
        bias: f64(a.b!),
        gout: new Float64Array(ny),
      });
      return { out: r.out!.map((v, i) => v + a.cb![Math.floor(i / plane)]! + a.res![i]!) };
    },
    nmse: precision ? 1e-9 : 1e-7,
  });
};

type GN = { n: number; c: number; hw: number; groups: number };
const silu = (u: number) => u / (1 + Math.exp(-u));
const siluGrad = (u: number) => {
  const s = 1 / (1 + Math.exp(-u));
  return s * (1 + u * (1 - s));
};
/** groupnorm_silu's reference, unfused: GroupNorm's double reference, then SiLU and its derivative in double. */
const gnSiluReference = (gn: GN) => async (a: Arrays) => {
  const size = gn.n * gn.c * gn.hw;
  const u = (await native.referenceOp('groupnorm', { ...gnArgs(gn)(a), gout: new Float64Array(size) })).out!;
  const gy = a.gy ?? new Float32Array(size);
  const du = Float64Array.from(u, (v, i) => gy[i]! * siluGrad(v));
  const back = await native.referenceOp('groupnorm', { ...gnArgs(gn)(a), gout: du });
  return { out: u.map(silu), 'grad.x': back['grad.x']!, 'grad.weight': back['grad.weight']!, 'grad.bias': back['grad.bias']! };
};
const gnArgs = (gn: GN) => (a: Arrays) => ({
  ...gn,
  x: f64(a.x!),
  weight: f64(a.gamma!),
  bias: f64(a.beta ?? new Float32Array(gn.c)),
  gout: f64(a.gy ?? new Float32Array(gn.n * gn.c * gn.hw)),
});
type Lin = { n: number; in: number; out: number };
type Att = { n: number; c: number; p: number };
type Up = { planes: number; h: number; w: number };

/** The network ops' case makers, keyed by op name; their attributes are in ops.json. */
export const nnMakers: Record<string, (params: never) => GoldenCase[]> = {
  conv2d_forward: (c: Conv) => conv(c, 'forward'),
  conv2d_backward: (c: Conv) => conv(c, 'backward'),
  conv2d_forward_fused: (c: Conv) => convFused(c),
  groupnorm_forward: (gn: GN) => {
    const size = gn.n * gn.c * gn.hw;
    return cases({
      label: 'groupnorm forward',
      op: 'groupnorm_forward',
      attrs: gn,
      inputs: [
        ['x', size],
        ['gamma', gn.c],
        ['beta', gn.c],
      ],
      outputs: [
        { name: 'y', size, ref: 'out' },
        { name: 'mean', size: gn.n * gn.groups },
        { name: 'rstd', size: gn.n * gn.groups },
      ],
      refOp: 'groupnorm',
      refArgs: gnArgs(gn),
      nmse: 1e-7,
    });
  },
  groupnorm_backward: (gn: GN) => {
    const size = gn.n * gn.c * gn.hw;
    return cases({
      label: 'groupnorm backward',
      op: 'groupnorm_backward',
      attrs: gn,
      inputs: [
        ['x', size],
        ['gamma', gn.c],
        ['mean', gn.n * gn.groups],
        ['rstd', gn.n * gn.groups],
        ['gy', size],
      ],
      derive: (a) => groupStats(a.x!, gn.n, gn.c, gn.hw, gn.groups),
      outputs: [
        { name: 'gx', size, ref: 'grad.x' },
        { name: 'ggamma', size: gn.c, ref: 'grad.weight', accumulate: true },
        { name: 'gbeta', size: gn.c, ref: 'grad.bias', accumulate: true },
      ],
      refOp: 'groupnorm',
      refArgs: gnArgs(gn),
      nmse: 1e-6,
    });
  },
  groupnorm_silu_forward: (gn: GN) => {
    const size = gn.n * gn.c * gn.hw;
    return cases({
      label: 'groupnorm_silu forward',
      op: 'groupnorm_silu_forward',
      attrs: gn,
      inputs: [
        ['x', size],
        ['gamma', gn.c],
        ['beta', gn.c],
      ],
      outputs: [
        { name: 'y', size, ref: 'out' },
        { name: 'mean', size: gn.n * gn.groups },
        { name: 'rstd', size: gn.n * gn.groups },
      ],
      reference: gnSiluReference(gn),
      nmse: 1e-7,
    });
  },
  groupnorm_silu_backward: (gn: GN) => {
    const size = gn.n * gn.c * gn.hw;
    return cases({
      label: 'groupnorm_silu backward',
      op: 'groupnorm_silu_backward',
      attrs: gn,
      inputs: [
        ['x', size],
        ['gamma', gn.c],
        ['beta', gn.c],
        ['mean', gn.n * gn.groups],
        ['rstd', gn.n * gn.groups],
        ['gy', size],
      ],
      derive: (a) => groupStats(a.x!, gn.n, gn.c, gn.hw, gn.groups),
      outputs: [
        { name: 'gx', size, ref: 'grad.x' },
        { name: 'ggamma', size: gn.c, ref: 'grad.weight', accumulate: true },
        { name: 'gbeta', size: gn.c, ref: 'grad.bias', accumulate: true },
      ],
      reference: gnSiluReference(gn),
      nmse: 1e-6,
    });
  },
  silu_forward: ({ n }: { n: number }) =>
    cases({
      label: 'silu forward',
      op: 'silu_forward',
      attrs: { n },
      inputs: [['x', n]],
      outputs: [{ name: 'y', size: n, ref: 'out' }],
      refOp: 'silu',
      refArgs: (a) => ({ x: f64(a.x!), gout: new Float64Array(n) }),
      nmse: 1e-7,
    }),
  silu_backward: ({ n }: { n: number }) =>
    cases({
      label: 'silu backward',
      op: 'silu_backward',
      attrs: { n },
      inputs: [
        ['x', n],
        ['gy', n],
      ],
      outputs: [{ name: 'gx', size: n, ref: 'grad.x' }],
      refOp: 'silu',
      refArgs: (a) => ({ x: f64(a.x!), gout: f64(a.gy!) }),
      nmse: 1e-7,
    }),
  linear_forward: (lin: Lin) =>
    cases({
      label: 'linear forward',
      op: 'linear_forward',
      attrs: lin,
      inputs: [
        ['x', lin.n * lin.in],
        ['w', lin.out * lin.in],
        ['b', lin.out],
      ],
      outputs: [{ name: 'y', size: lin.n * lin.out, ref: 'out' }],
      refOp: 'linear',
      refArgs: (a) => ({ ...lin, x: f64(a.x!), weight: f64(a.w!), bias: f64(a.b!), gout: new Float64Array(lin.n * lin.out) }),
      nmse: 1e-7,
    }),
  linear_backward: (lin: Lin) =>
    cases({
      label: 'linear backward',
      op: 'linear_backward',
      attrs: lin,
      inputs: [
        ['x', lin.n * lin.in],
        ['w', lin.out * lin.in],
        ['gy', lin.n * lin.out],
      ],
      outputs: [
        { name: 'gx', size: lin.n * lin.in, ref: 'grad.x' },
        { name: 'gw', size: lin.out * lin.in, ref: 'grad.weight', accumulate: true },
        { name: 'gb', size: lin.out, ref: 'grad.bias', accumulate: true },
      ],
      refOp: 'linear',
      refArgs: (a) => ({ ...lin, x: f64(a.x!), weight: f64(a.w!), bias: new Float64Array(lin.out), gout: f64(a.gy!) }),
      nmse: 1e-7,
    }),
  // t = 0, 1.5 and 999 (the phases reach 999 radians: computed in double).
  time_embedding: ({ n, c }: { n: number; c: number }) =>
    cases({
      label: 'time_embedding',
      op: 'time_embedding',
      attrs: { n, c },
      inputs: [['t', n]],
      derive: () => ({ t: Float32Array.from({ length: n }, (_, i) => [0, 1.5, 999][i % 3]!) }),
      outputs: [{ name: 'emb', size: n * c, ref: 'out' }],
      refOp: 'time_embedding',
      refArgs: (a) => ({ c, t: f64(a.t!) }),
      nmse: 1e-7,
    }),
  attention_forward: (att: Att) =>
    cases({
      label: 'attention forward',
      op: 'attention_forward',
      attrs: att,
      inputs: [['qkv', att.n * 3 * att.c * att.p]],
      outputs: [
        { name: 'a', size: att.n * att.p * att.p, ref: 'attn' },
        { name: 'o', size: att.n * att.c * att.p, ref: 'out' },
      ],
      refOp: 'attention',
      refArgs: (a) => ({ ...att, qkv: f64(a.qkv!), gout: new Float64Array(att.n * att.c * att.p) }),
      nmse: 1e-6,
    }),
  attention_backward: (att: Att) =>
    cases({
      label: 'attention backward',
      op: 'attention_backward',
      attrs: att,
      inputs: [
        ['qkv', att.n * 3 * att.c * att.p],
        ['a', att.n * att.p * att.p],
        ['go', att.n * att.c * att.p],
      ],
      // The attention weights must be the softmax of the scores for the backward formula to hold.
      derive: (a) => ({ a: softmaxScores(a.qkv!, att.n, att.c, att.p) }),
      outputs: [{ name: 'gqkv', size: att.n * 3 * att.c * att.p, ref: 'grad.qkv' }],
      refOp: 'attention',
      refArgs: (a) => ({ ...att, qkv: f64(a.qkv!), gout: f64(a.go!) }),
      nmse: 1e-6,
    }),
  // The tensor-core wrapper alone (native/cuda/mma_check.cu): D = round(A) round(B) + C on one warp.
  // Against a GEMM in double of operands rounded by roundOperand; only FP32 accumulation differs (NMSE
  // ~1e-14), while a wrong fragment layout or rounding gives 1e-5 or more.
  mma_check: ({ variant }: { variant: number }): GoldenCase[] => {
    const K = variant === 1 ? 8 : 16;
    const precision = variant === 1 ? 2 : 1;
    return [
      {
        op: `mma_check variant ${variant}`,
        shape: [128],
        nmse: 1e-10,
        inputs: () => [testValues(16 * K, 1201), testValues(K * 8, 1202), testValues(128, 1203)],
        inputShapes: () => [[16 * K], [K * 8], [128]],
        run: ([a, b, c], out) => native.op('mma_check', { variant }, [a!, b!, c!], [out]),
        reference: ([a, b, c]) =>
          Float64Array.from({ length: 128 }, (_, i) => {
            const m = Math.floor(i / 8),
              n = i % 8;
            let s = c![i]!;
            for (let k = 0; k < K; k++) s += roundOperand(a![m * K + k]!, precision) * roundOperand(b![k * 8 + n]!, precision);
            return s;
          }),
      },
    ];
  },
  // The worked example of docs/adding-an-op.md: called by name, no binding of its own.
  silu_mul: ({ n }: { n: number }): GoldenCase[] => [
    {
      op: 'silu_mul',
      shape: [n],
      nmse: 1e-7,
      inputs: () => [testValues(n, 1101).map((x) => 8 * x), testValues(n, 1102)],
      run: ([a, b], out) => native.op('silu_mul', { n }, [a!, b!], [out]),
      reference: ([a, b]) => Float64Array.from(a!, (x, i) => (x / (1 + Math.exp(-x))) * b![i]!),
    },
  ],
  upsample2_forward: (up: Up) =>
    cases({
      label: 'upsample2 forward',
      op: 'upsample2_forward',
      attrs: up,
      inputs: [['x', up.planes * up.h * up.w]],
      outputs: [{ name: 'y', size: 4 * up.planes * up.h * up.w, ref: 'out' }],
      refOp: 'upsample2',
      refArgs: (a) => ({ ...up, x: f64(a.x!), gout: new Float64Array(4 * up.planes * up.h * up.w) }),
      nmse: 1e-7,
    }),
  upsample2_backward: (up: Up) =>
    cases({
      label: 'upsample2 backward',
      op: 'upsample2_backward',
      attrs: up,
      inputs: [['gy', 4 * up.planes * up.h * up.w]],
      outputs: [{ name: 'gx', size: up.planes * up.h * up.w, ref: 'grad.x' }],
      refOp: 'upsample2',
      refArgs: (a) => ({ ...up, x: new Float64Array(up.planes * up.h * up.w), gout: f64(a.gy!) }),
      nmse: 1e-7,
    }),
};

function softmaxScores(qkv: Float32Array, n: number, c: number, p: number): Float32Array {
  const a = new Float32Array(n * p * p);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < p; i++) {
      const row: number[] = [];
      for (let j = 0; j < p; j++) {
        let s = 0;
        for (let ch = 0; ch < c; ch++) s += qkv[(b * 3 * c + ch) * p + i]! * qkv[(b * 3 * c + c + ch) * p + j]!;
        row.push(s / Math.sqrt(c));
      }
      const mx = Math.max(...row);
      const z = row.reduce((acc, v) => acc + Math.exp(v - mx), 0);
      row.forEach((v, j) => (a[(b * p + i) * p + j] = Math.exp(v - mx) / z));
    }
  return a;
}
