// The transfer MLPs against an independent double-precision MLP written here (forward), and their
// gradients against central finite differences of that double MLP (backward): weights, biases and the
// input gradient, for both activations and for odd and even row/output counts (the kernels pair rows).
import { describe, expect, it } from 'vitest';
import { Mlp, mlpLayout, type Activation } from '../../lib/transfer/mlp.ts';
import { testValues } from '../helpers.ts';

/** y = W_L act(... act(W_1 x + b_1) ...) + b_L, in double, straight from the definition. */
function reference(params: Float64Array, x: Float64Array, n: number, sizes: number[], act: Activation): Float64Array {
  let h = x;
  let off = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const [a, b] = [sizes[l]!, sizes[l + 1]!];
    const y = new Float64Array(n * b);
    for (let r = 0; r < n; r++)
      for (let o = 0; o < b; o++) {
        let s = params[off + a * b + o]!;
        for (let i = 0; i < a; i++) s += params[off + o * a + i]! * h[r * a + i]!;
        const last = l + 2 === sizes.length;
        y[r * b + o] = last ? s : act === 'relu' ? Math.max(0, s) : s / (1 + Math.exp(-s));
      }
    off += a * b + b;
    h = y;
  }
  return h;
}

/** L = Σ c ⊙ out for fixed weights c, so dL/dout = c. */
function loss(params: Float64Array, x: Float64Array, c: Float64Array, n: number, sizes: number[], act: Activation): number {
  const out = reference(params, x, n, sizes, act);
  let s = 0;
  for (let i = 0; i < out.length; i++) s += c[i]! * out[i]!;
  return s;
}

describe('transfer MLP', () => {
  const cases: { act: Activation; n: number; sizes: number[] }[] = [
    { act: 'silu', n: 3, sizes: [5, 7, 7, 3] },
    { act: 'silu', n: 4, sizes: [4, 8, 2] },
    { act: 'relu', n: 5, sizes: [6, 9, 9, 5] },
    { act: 'relu', n: 1, sizes: [3, 1] },
  ];
  for (const { act, n, sizes } of cases) {
    const cfg = { inputs: sizes[0]!, hidden: sizes[1]!, depth: sizes.length - 1, outputs: sizes.at(-1)!, activation: act };
    it(`${act} ${sizes.join('-')} n=${n}: forward matches the double reference`, () => {
      const net = new Mlp(cfg, { seed: 7 });
      const x = testValues(n * cfg.inputs, 3);
      const { out } = net.forward(x, n);
      const ref = reference(Float64Array.from(net.params), Float64Array.from(x), n, sizes, act);
      for (let i = 0; i < out.length; i++) expect(Math.abs(out[i]! - ref[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(ref[i]!)));
    });
    it(`${act} ${sizes.join('-')} n=${n}: backward matches finite differences`, () => {
      const net = new Mlp(cfg, { seed: 11 });
      const x = testValues(n * cfg.inputs, 5);
      const c = Float64Array.from(testValues(n * cfg.outputs, 9));
      const { cache } = net.forward(x, n);
      const gx = net.backward(cache, Float32Array.from(c), { inputGrad: true })!;
      const P = Float64Array.from(net.params);
      const X = Float64Array.from(x);
      const h = 1e-6;
      const fd = (v: Float64Array, i: number, f: () => number) => {
        const keep = v[i]!;
        v[i] = keep + h;
        const up = f();
        v[i] = keep - h;
        const down = f();
        v[i] = keep;
        return (up - down) / (2 * h);
      };
      const f = () => loss(P, X, c, n, sizes, act);
      for (let i = 0; i < P.length; i++) expect(net.grads[i]!).toBeCloseTo(fd(P, i, f), 4);
      for (let i = 0; i < X.length; i++) expect(gx[i]!).toBeCloseTo(fd(X, i, f), 4);
      // backward adds: a second pass doubles the parameter gradients
      const once = Float32Array.from(net.grads);
      net.backward(cache, Float32Array.from(c));
      for (let i = 0; i < once.length; i++) expect(net.grads[i]!).toBeCloseTo(2 * once[i]!, 5);
    });
  }

  it('lays out weight then bias per layer and names them for checkpoints', () => {
    const { layers, paramCount } = mlpLayout({ inputs: 3, hidden: 4, depth: 2, outputs: 2 });
    expect(layers).toEqual([
      { in: 3, out: 4, w: 0, b: 12 },
      { in: 4, out: 2, w: 16, b: 24 },
    ]);
    expect(paramCount).toBe(26);
    const net = new Mlp({ inputs: 3, hidden: 4, depth: 2, outputs: 2 });
    expect(net.tensors().map((t) => `${t.name}:${t.shape.join('x')}`)).toEqual(['0.weight:4x3', '0.bias:4', '1.weight:2x4', '1.bias:2']);
  });

  it('initialises reproducibly within ±1/√fan_in, and differently per stream', () => {
    const a = new Mlp({ inputs: 16, hidden: 8, depth: 2, outputs: 4 }, { seed: 3, stream: 1 });
    const b = new Mlp({ inputs: 16, hidden: 8, depth: 2, outputs: 4 }, { seed: 3, stream: 1 });
    const c = new Mlp({ inputs: 16, hidden: 8, depth: 2, outputs: 4 }, { seed: 3, stream: 2 });
    expect(a.params).toEqual(b.params);
    expect(a.params).not.toEqual(c.params);
    for (let i = 0; i < 16 * 8 + 8; i++) expect(Math.abs(a.params[i]!)).toBeLessThanOrEqual(0.25);
  });

  it('rejects bad configurations and inputs with messages naming them', () => {
    expect(() => new Mlp({ inputs: 0, hidden: 4, depth: 2, outputs: 2 })).toThrow(/inputs must be a positive integer, got 0/);
    expect(() => new Mlp({ inputs: 2, hidden: 4, depth: 2, outputs: 2, activation: 'tanh' as Activation })).toThrow(/activation/);
    const net = new Mlp({ inputs: 2, hidden: 4, depth: 2, outputs: 2 });
    expect(() => net.forward(new Float32Array(5), 2)).toThrow(/x has 5 values, expected n \* inputs = 2 \* 2/);
  });
});
