// A small multilayer perceptron in TypeScript on Float32Arrays: the condition encoder h and the vector
// score heads f of the transfer method (docs/transfer.md). These networks are tiny (a few hundred units
// wide, vectors of a few hundred values), so they live in host memory: a device queue would spend more
// on per-op dispatch than on the arithmetic, and a host model needs no read-back to feed a host-side
// optimiser or a checkpoint. Parameters sit in one flat array (layer by layer, weight then bias), so a
// whole network is one optimiser parameter group; backward adds into one flat gradient array.
import { philoxBlock } from '../random.ts';

export type Activation = 'relu' | 'silu';

export interface MlpConfig {
  /** Input features. */
  inputs: number;
  /** Width of every hidden layer. */
  hidden: number;
  /** Linear layers (>= 1); depth - 1 hidden layers, each followed by the activation. */
  depth: number;
  /** Output features. */
  outputs: number;
  /** Hidden-layer activation (default 'relu', as in the paper). */
  activation?: Activation;
}

export interface LayerInfo {
  in: number;
  out: number;
  /** Offsets of the weight [out, in] and bias [out] in the flat parameter array. */
  w: number;
  b: number;
}

/** What backward needs from a forward pass: the input and every layer's pre-activation. */
export interface MlpCache {
  n: number;
  x: Float32Array;
  pre: Float32Array[];
  /** The activated hidden outputs (the input of the next layer). */
  act: Float32Array[];
}

function positiveInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new RangeError(`mlp: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

export function resolveMlpConfig(c: MlpConfig, what = 'mlp'): Required<MlpConfig> {
  if (c === null || typeof c !== 'object')
    throw new TypeError(`${what}: expected {inputs, hidden, depth, outputs}, got ${JSON.stringify(c)}`);
  const activation = c.activation ?? 'relu';
  if (activation !== 'relu' && activation !== 'silu')
    throw new TypeError(`${what}.activation: expected "relu" or "silu", got ${JSON.stringify(activation)}`);
  return {
    inputs: positiveInt(c.inputs, `${what}.inputs`),
    hidden: positiveInt(c.hidden, `${what}.hidden`),
    depth: positiveInt(c.depth, `${what}.depth`),
    outputs: positiveInt(c.outputs, `${what}.outputs`),
    activation,
  };
}

/** The layers' shapes and offsets, and the total parameter count. */
export function mlpLayout(config: MlpConfig): { layers: LayerInfo[]; paramCount: number } {
  const c = resolveMlpConfig(config);
  const layers: LayerInfo[] = [];
  let offset = 0;
  for (let l = 0; l < c.depth; l++) {
    const inF = l === 0 ? c.inputs : c.hidden;
    const outF = l === c.depth - 1 ? c.outputs : c.hidden;
    layers.push({ in: inF, out: outF, w: offset, b: offset + inF * outF });
    offset += inF * outF + outF;
  }
  return { layers, paramCount: offset };
}

/** n uniforms in [-a, a) from Philox(seed, 0, stream), 4 per block: the same values on every machine. */
export function seededUniforms(n: number, a: number, seed: bigint, stream: bigint): Float32Array {
  const out = new Float32Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const w = philoxBlock(seed, 0n, stream, b);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = (2 * (w[j]! / 4294967296) - 1) * a;
  }
  return out;
}

export class Mlp {
  readonly config: Readonly<Required<MlpConfig>>;
  readonly layers: readonly LayerInfo[];
  readonly paramCount: number;
  readonly params: Float32Array;
  readonly grads: Float32Array;

  /**
   * PyTorch's default initialisation (weights and biases uniform in ±1/√fan_in), drawn from Philox
   * stream `stream` of `seed`, so two networks built with the same (seed, stream) are identical.
   */
  constructor(config: MlpConfig, options: { seed?: bigint | number; stream?: bigint | number } = {}) {
    this.config = Object.freeze(resolveMlpConfig(config));
    const { layers, paramCount } = mlpLayout(this.config);
    this.layers = Object.freeze(layers);
    this.paramCount = paramCount;
    this.params = new Float32Array(paramCount);
    this.grads = new Float32Array(paramCount);
    const seed = BigInt(options.seed ?? 0);
    const stream = BigInt(options.stream ?? 0) * 64n;
    layers.forEach((L, l) => {
      const a = 1 / Math.sqrt(L.in);
      this.params.set(seededUniforms(L.in * L.out + L.out, a, seed, stream + BigInt(l)), L.w);
    });
  }

  /** Names and shapes of each tensor in the flat array (for checkpoints): `<l>.weight`, `<l>.bias`. */
  tensors(): { name: string; shape: number[]; offset: number; numel: number }[] {
    return this.layers.flatMap((L, l) => [
      { name: `${l}.weight`, shape: [L.out, L.in], offset: L.w, numel: L.in * L.out },
      { name: `${l}.bias`, shape: [L.out], offset: L.b, numel: L.out },
    ]);
  }

  /** out [n, outputs] for x [n, inputs] (row-major); `params` (same layout) replaces the weights for this pass. */
  forward(x: Float32Array, n: number, params: Float32Array = this.params): { out: Float32Array; cache: MlpCache } {
    const c = this.config;
    if (x.length !== n * c.inputs) throw new RangeError(`mlp.forward: x has ${x.length} values, expected n * inputs = ${n} * ${c.inputs}`);
    if (params.length !== this.paramCount)
      throw new RangeError(`mlp.forward: params has ${params.length} values, expected ${this.paramCount}`);
    const pre: Float32Array[] = [];
    const act: Float32Array[] = [];
    let h = x;
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l]!;
      const z = linear(h, params, L, n);
      pre.push(z);
      if (l === this.layers.length - 1) return { out: z, cache: { n, x, pre, act } };
      h = activate(z, c.activation);
      act.push(h);
    }
    throw new Error('unreachable');
  }

  /**
   * Adds dL/dparams into `grads` for dL/dout = gout; returns dL/dx when `inputGrad` (the encoder's
   * gradient flows into h through the head's input, so heads need it).
   */
  backward(
    cache: MlpCache,
    gout: Float32Array,
    options: { inputGrad?: boolean; params?: Float32Array; grads?: Float32Array } = {},
  ): Float32Array | undefined {
    const { n } = cache;
    const P = options.params ?? this.params;
    const G = options.grads ?? this.grads;
    if (gout.length !== n * this.config.outputs)
      throw new RangeError(`mlp.backward: gout has ${gout.length} values, expected ${n * this.config.outputs}`);
    let g = gout;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const L = this.layers[l]!;
      const input = l === 0 ? cache.x : cache.act[l - 1]!;
      const wantGx = l > 0 || options.inputGrad === true;
      const gx = linearBackward(input, P, G, L, n, g, wantGx);
      if (l === 0) return gx;
      g = activateBackward(cache.pre[l - 1]!, gx!, this.config.activation);
    }
    return undefined;
  }
}

/** y[r, o] = b[o] + Σ_i x[r, i] W[o, i]. */
function linear(x: Float32Array, P: Float32Array, L: LayerInfo, n: number): Float32Array {
  const y = new Float32Array(n * L.out);
  const W = P.subarray(L.w, L.w + L.in * L.out);
  const B = P.subarray(L.b, L.b + L.out);
  // Two rows by two outputs per pass: each load of x and W feeds two products (about 2x the plain loop in V8).
  const K = L.in;
  let r = 0;
  for (; r + 1 < n; r += 2) {
    const x0 = r * K;
    const x1 = x0 + K;
    let o = 0;
    for (; o + 1 < L.out; o += 2) {
      const w0 = o * K;
      const w1 = w0 + K;
      let a00 = B[o]!,
        a01 = B[o + 1]!,
        a10 = B[o]!,
        a11 = B[o + 1]!;
      for (let i = 0; i < K; i++) {
        const u = x[x0 + i]!,
          v = x[x1 + i]!,
          p = W[w0 + i]!,
          q = W[w1 + i]!;
        a00 += u * p;
        a01 += u * q;
        a10 += v * p;
        a11 += v * q;
      }
      y[r * L.out + o] = a00;
      y[r * L.out + o + 1] = a01;
      y[(r + 1) * L.out + o] = a10;
      y[(r + 1) * L.out + o + 1] = a11;
    }
    for (; o < L.out; o++) {
      let a0 = B[o]!,
        a1 = B[o]!;
      for (let i = 0; i < K; i++) {
        a0 += x[x0 + i]! * W[o * K + i]!;
        a1 += x[x1 + i]! * W[o * K + i]!;
      }
      y[r * L.out + o] = a0;
      y[(r + 1) * L.out + o] = a1;
    }
  }
  for (; r < n; r++)
    for (let o = 0; o < L.out; o++) {
      let acc = B[o]!;
      for (let i = 0; i < K; i++) acc += x[r * K + i]! * W[o * K + i]!;
      y[r * L.out + o] = acc;
    }
  return y;
}

/** gW += gyᵀ x, gb += Σ_r gy; returns gx = gy W when asked. Pairs of rows (and of outputs for gx) halve the loads and stores. */
function linearBackward(
  x: Float32Array,
  P: Float32Array,
  G: Float32Array,
  L: LayerInfo,
  n: number,
  gy: Float32Array,
  wantGx: boolean,
): Float32Array | undefined {
  const K = L.in;
  const O = L.out;
  const W = P.subarray(L.w, L.w + K * O);
  const gW = G.subarray(L.w, L.w + K * O);
  const gB = G.subarray(L.b, L.b + O);
  let r = 0;
  for (; r + 1 < n; r += 2) {
    const x0 = r * K;
    const x1 = x0 + K;
    for (let o = 0; o < O; o++) {
      const g0 = gy[r * O + o]!;
      const g1 = gy[(r + 1) * O + o]!;
      if (g0 === 0 && g1 === 0) continue; // ReLU zeroes many of them
      gB[o]! += g0 + g1;
      const wo = o * K;
      for (let i = 0; i < K; i++) gW[wo + i]! += g0 * x[x0 + i]! + g1 * x[x1 + i]!;
    }
  }
  for (; r < n; r++)
    for (let o = 0; o < O; o++) {
      const g = gy[r * O + o]!;
      gB[o]! += g;
      for (let i = 0; i < K; i++) gW[o * K + i]! += g * x[r * K + i]!;
    }
  if (!wantGx) return undefined;
  const gx = new Float32Array(n * K);
  for (let q = 0; q < n; q++) {
    const xo = q * K;
    let o = 0;
    for (; o + 1 < O; o += 2) {
      const g0 = gy[q * O + o]!;
      const g1 = gy[q * O + o + 1]!;
      if (g0 === 0 && g1 === 0) continue;
      const w0 = o * K;
      const w1 = w0 + K;
      for (let i = 0; i < K; i++) gx[xo + i]! += g0 * W[w0 + i]! + g1 * W[w1 + i]!;
    }
    for (; o < O; o++) {
      const g = gy[q * O + o]!;
      for (let i = 0; i < K; i++) gx[xo + i]! += g * W[o * K + i]!;
    }
  }
  return gx;
}

function activate(z: Float32Array, kind: Activation): Float32Array {
  const a = new Float32Array(z.length);
  if (kind === 'relu') for (let i = 0; i < z.length; i++) a[i] = z[i]! > 0 ? z[i]! : 0;
  else for (let i = 0; i < z.length; i++) a[i] = z[i]! / (1 + Math.exp(-z[i]!));
  return a;
}

/** dL/dz from dL/da (in place in `ga`). */
function activateBackward(z: Float32Array, ga: Float32Array, kind: Activation): Float32Array {
  if (kind === 'relu') for (let i = 0; i < z.length; i++) ga[i] = z[i]! > 0 ? ga[i]! : 0;
  else
    for (let i = 0; i < z.length; i++) {
      const s = 1 / (1 + Math.exp(-z[i]!));
      ga[i] = ga[i]! * s * (1 + z[i]! * (1 - s));
    }
  return ga;
}
