// The whole UNet: layout against docs/unet.md, the double-precision CPU reference against PyTorch's
// float64 autograd (fixtures from test/interop/make_fixtures.py), finite differences, and the float
// CPU path against the double reference.
import { describe, expect, it } from 'vitest';
import { Generator, randn, tensor, UNet, unetLayout, type UNetConfig } from '../../lib/index.ts';
import { native } from '../../lib/native.ts';
import { referenceBits } from '../reference/philox.ts';
import { get, readFixture, relErr, type Fixture } from '../reference/fixtures.ts';

const fixture = (name: string) => readFixture(new URL(`../fixtures/unet/${name}.safetensors`, import.meta.url).pathname);

describe('layout', () => {
  it('parameter counts of the presets match docs/unet.md', () => {
    expect(unetLayout('tiny16').paramCount).toBe(701_345);
    expect(unetLayout('fmnist32').paramCount).toBe(6_469_889);
    expect(unetLayout('cifar32').paramCount).toBe(35_746_307);
  });

  it('fmnist32 keys and shapes named in docs/unet.md', () => {
    const { params } = unetLayout('fmnist32');
    const shape = (name: string) => params.find((p) => p.name === name)?.shape;
    expect(params.slice(0, 2).map((p) => [p.name, p.shape])).toEqual([
      ['time.linear1.weight', [256, 64]],
      ['time.linear1.bias', [256]],
    ]);
    expect(shape('down.0.conv1.weight')).toEqual([64, 64, 3, 3]);
    expect(shape('down.2.conv.weight')).toEqual([64, 64, 3, 3]);
    expect(shape('down.3.skip.weight')).toEqual([128, 64, 1, 1]);
    expect(params.slice(-6).map((p) => [p.name, p.shape])).toEqual([
      ['up.13.skip.weight', [64, 128, 1, 1]],
      ['up.13.skip.bias', [64]],
      ['out.norm.weight', [64]],
      ['out.norm.bias', [64]],
      ['out.conv.weight', [1, 64, 3, 3]],
      ['out.conv.bias', [1]],
    ]);
    // docs/unet.md says 245; the count that matches its 6,469,889 parameters is 244 (PyTorch agrees).
    expect(params.length).toBe(244);
    let offset = 0;
    for (const p of params) {
      expect(p.offset).toBe(offset);
      offset += p.numel;
    }
  });

  it('names and shapes equal PyTorch state_dict keys, in order (micro and tiny16 fixtures)', () => {
    for (const name of ['micro', 'tiny16']) {
      const f = fixture(name);
      const config = JSON.parse(f.metadata['kintsugi.config']!) as UNetConfig;
      const torchKeys = [...f.tensors.entries()].filter(([k]) => !k.startsWith('grad.') && !['x', 't', 'g', 'out'].includes(k));
      expect(unetLayout(config).params.map((p) => [p.name, p.shape])).toEqual(torchKeys.map(([k, v]) => [k, v.shape]));
    }
  });

  it('bad configurations are clear errors', () => {
    expect(() => unetLayout({ inChannels: 1, channels: 32, mult: [1, 2], resBlocks: 1, resolution: 15 })).toThrow(
      /resolution must be divisible by 2\^\(levels-1\) = 2, got 15/,
    );
    expect(() => unetLayout({ inChannels: 1, channels: 33, mult: [1], resBlocks: 1, resolution: 8 })).toThrow(/channels must be even/);
    expect(() => unetLayout('huge' as never)).toThrow(/expected a preset/);
    // Level widths 16 and 32 are fine, but the up path concatenates 32 + 16 = 48 channels: GroupNorm(32, 48) is invalid.
    expect(() => unetLayout({ inChannels: 1, channels: 16, mult: [1, 2], resBlocks: 1, resolution: 8 })).toThrow(
      /up\.\d+\.norm1 would normalise 48 channels in 32 groups/,
    );
  });
});

function flatParams(f: Fixture, config: UNetConfig): Float64Array {
  const { params, paramCount } = unetLayout(config);
  const flat = new Float64Array(paramCount);
  for (const p of params) flat.set(get(f, p.name), p.offset);
  return flat;
}

async function reference(f: Fixture) {
  const config = JSON.parse(f.metadata['kintsugi.config']!) as UNetConfig;
  const x = get(f, 'x');
  const n = f.tensors.get('x')!.shape[0]!;
  const r = await native.referenceUNet(
    { ...config, zeroInit: false },
    { n, params: flatParams(f, config), x, t: get(f, 't'), gout: get(f, 'g') },
  );
  return { config, r };
}

describe('double-precision reference vs PyTorch float64 autograd', () => {
  for (const name of ['micro', 'tiny16']) {
    it(`${name}: output, input gradient and every parameter gradient`, async () => {
      const f = fixture(name);
      const { config, r } = await reference(f);
      expect(relErr(r.out, get(f, 'out'))).toBeLessThan(1e-11);
      expect(relErr(r['grad.x'], get(f, 'grad.x'))).toBeLessThan(1e-10);
      // Parameter gradients: micro's are float64; tiny16's were stored rounded to float32. Gradients
      // that vanish by structure (GroupNorm cancelling a per-channel constant) are round-off on both
      // sides: compare those on an absolute floor.
      const tol = name === 'micro' ? 1e-9 : 1e-6;
      const structurallyZero = new Set(JSON.parse(f.metadata.structurally_zero_grads!) as string[]);
      const norm = (a: ArrayLike<number>) => {
        let s = 0;
        for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
        return Math.sqrt(s);
      };
      const total = norm(r['grad.params']);
      let worst = 0;
      for (const p of unetLayout(config).params) {
        const ours = r['grad.params'].subarray(p.offset, p.offset + p.numel);
        const theirs = get(f, `grad.${p.name}`);
        if (structurallyZero.has(`grad.${p.name}`)) {
          expect(norm(ours) / total, p.name).toBeLessThan(1e-12);
          expect(norm(theirs) / total, p.name).toBeLessThan(1e-7);
          continue;
        }
        const e = relErr(ours, theirs);
        worst = Math.max(worst, e);
        expect(e, p.name).toBeLessThan(tol);
      }
      console.log(
        `${name}: out ${relErr(r.out, get(f, 'out')).toExponential(1)}, grad.x ${relErr(r['grad.x'], get(f, 'grad.x')).toExponential(1)}, worst parameter gradient ${worst.toExponential(1)}`,
      );
    });
  }
});

describe('double-precision reference vs central finite differences', () => {
  it('micro: directional derivatives along random directions in parameters and input', async () => {
    const f = fixture('micro');
    const config = { ...(JSON.parse(f.metadata['kintsugi.config']!) as UNetConfig), zeroInit: false };
    const params = flatParams(f, config);
    const x = get(f, 'x');
    const t = get(f, 't');
    const g = get(f, 'g');
    const n = 2;
    const base = await native.referenceUNet(config, { n, params, x, t, gout: g });
    const loss = async (p: Float64Array, xx: Float64Array) => {
      const { out } = await native.referenceUNet(config, { n, params: p, x: xx, t, gout: g });
      return out.reduce((s, v, i) => s + v * g[i]!, 0);
    };
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    // Central differences at h and h/2 combined by Richardson extrapolation: error O(h^4). (A direction
    // over all parameters sees large curvature: plain central differences converge as h^2, 2.8e-6
    // relative at h = 1e-4 and 2.8e-8 at 1e-5, measured on this fixture.)
    const derivative = async (at: (e: number) => Promise<number>, h: number) => {
      const central = async (e: number) => ((await at(e)) - (await at(-e))) / (2 * e);
      return (4 * (await central(h / 2)) - (await central(h))) / 3;
    };
    for (let trial = 0; trial < 3; trial++) {
      const v = params.map(() => rnd());
      const fd = await derivative(
        (e) =>
          loss(
            params.map((p, i) => p + e * v[i]!),
            x,
          ),
        1e-5,
      );
      const an = base['grad.params'].reduce((s, gi, i) => s + gi * v[i]!, 0);
      expect(Math.abs(fd - an) / Math.abs(an)).toBeLessThan(1e-8);
      const u = x.map(() => rnd());
      const fdx = await derivative(
        (e) =>
          loss(
            params,
            x.map((p, i) => p + e * u[i]!),
          ),
        1e-5,
      );
      const anx = base['grad.x'].reduce((s, gi, i) => s + gi * u[i]!, 0);
      expect(Math.abs(fdx - anx) / Math.abs(anx)).toBeLessThan(1e-8);
    }
  });
});

/** The tiny16 fixture as a float CPU UNet with its inputs, and the double reference's results. */
async function tiny16Fixture() {
  const f = fixture('tiny16');
  const config = { ...(JSON.parse(f.metadata['kintsugi.config']!) as UNetConfig), zeroInit: false };
  const { r } = await reference(f);
  const net = new UNet(config, { device: 'cpu' });
  net.setParams(Float32Array.from(flatParams(f, config)));
  const x = tensor(Float32Array.from(get(f, 'x')), [2, 1, 16, 16], { device: 'cpu' });
  const t = tensor(Float32Array.from(get(f, 't')), [2], { device: 'cpu' });
  return { f, r, net, x, t };
}

describe('float CPU UNet', () => {
  it('tiny16: forward and backward agree with the double reference (NMSE)', async () => {
    const { f, r, net, x, t } = await tiny16Fixture();
    const g = tensor(Float32Array.from(get(f, 'g')), [2, 1, 16, 16], { device: 'cpu' });
    const { out, tape } = net.forward(x, t);
    const gx = net.backward(tape, g, { inputGrad: true })!;
    tape.release();
    const nmse = (a: ArrayLike<number>, b: ArrayLike<number>) => relErr(a, b) ** 2;
    expect(nmse(await out.toArray(), r.out)).toBeLessThan(1e-10);
    expect(nmse(await gx.toArray(), r['grad.x'])).toBeLessThan(1e-10);
    expect(nmse(await net.grads.toArray(), r['grad.params'])).toBeLessThan(1e-10);
    net.dispose();
  });

  it('gradients of several forward/backward pairs accumulate into one step', async () => {
    const net = new UNet('tiny16', { device: 'cpu', seed: 5 });
    net.setParams(
      await randn([net.paramCount], { generator: new Generator(9), device: 'cpu' })
        .scale(0.05)
        .toArray(),
    );
    const gen = new Generator(1);
    const x1 = randn([2, 1, 16, 16], { generator: gen, device: 'cpu' });
    const x2 = randn([2, 1, 16, 16], { generator: gen, device: 'cpu' });
    const t = tensor([10, 700], [2], { device: 'cpu' });
    const g = randn([2, 1, 16, 16], { generator: gen, device: 'cpu' });
    const run = (x: typeof x1) => {
      const { tape } = net.forward(x, t);
      net.backward(tape, g);
      tape.release();
    };
    run(x1);
    const g1 = await net.grads.toArray();
    net.zeroGrad();
    run(x2);
    const g2 = await net.grads.toArray();
    net.zeroGrad();
    // Two forwards first, then two backwards: the tapes must not interfere.
    const a = net.forward(x1, t);
    const b = net.forward(x2, t);
    net.backward(b.tape, g);
    net.backward(a.tape, g);
    const both = await net.grads.toArray();
    let worst = 0;
    for (let i = 0; i < both.length; i++)
      worst = Math.max(worst, Math.abs(both[i]! - (g1[i]! + g2[i]!)) / (1e-3 + Math.abs(g1[i]! + g2[i]!)));
    expect(worst).toBeLessThan(1e-4);
    net.dispose();
  });

  it("predict (no tape: activations freed as they die) gives forward's output bit for bit", async () => {
    const { r, net, x, t } = await tiny16Fixture();
    const { out, tape } = net.forward(x, t);
    tape.release();
    const pred = await net.predict(x, t).toArray();
    expect(pred).toEqual(await out.toArray());
    expect(relErr(pred, r.out) ** 2).toBeLessThan(1e-10);
    // Other weights through `params`, as the EMA's are used for sampling.
    const other = await randn([net.paramCount], { generator: new Generator(3), device: 'cpu' }).scale(0.02);
    const viaForward = net.forward(x, t, { params: other });
    viaForward.tape.release();
    expect(await net.predict(x, t, { params: other }).toArray()).toEqual(await viaForward.out.toArray());
    net.dispose();
  });

  it('a tape from an inference forward cannot be used for backward: a clear error', async () => {
    const net = native.unetCreate('tiny16', 'cpu');
    const { paramCount } = native.unetLayout('tiny16');
    const params = randn([paramCount], { device: 'cpu' }).scale(0.02);
    const grads = randn([paramCount], { device: 'cpu' });
    const x = randn([2, 1, 16, 16], { device: 'cpu' });
    const t = tensor([1, 2], [2], { device: 'cpu' });
    const out = randn([2, 1, 16, 16], { device: 'cpu' });
    const tape = native.unetForward(net, params.handle(), x.handle(), t.handle(), out.handle(), false);
    native.unetBackward(net, params.handle(), tape, out.handle(), grads.handle(), null);
    await expect(grads.toArray()).rejects.toThrow('backward: this forward ran without a tape (inference)');
    native.unetReleaseTape(tape);
  });

  it('wrong shapes are clear errors that allocate nothing', () => {
    const net = new UNet('tiny16', { device: 'cpu' });
    const x = randn([2, 1, 8, 8], { device: 'cpu' });
    const t = tensor([1, 2], [2], { device: 'cpu' });
    expect(() => net.forward(x, t)).toThrow('x: expected shape [2,1,16,16], got [2,1,8,8]');
    const x2 = randn([2, 1, 16, 16], { device: 'cpu' });
    expect(() => net.forward(x2, tensor([1, 2, 3], [3], { device: 'cpu' }))).toThrow('t: expected shape [2], got [3]');
    net.dispose();
  });
});

describe('initialisation', () => {
  it('draws PyTorch-default bounds from Philox, zero-inits the identity blocks, and is reproducible', async () => {
    const a = new UNet('tiny16', { device: 'cpu', seed: 123 });
    const b = new UNet('tiny16', { device: 'cpu', seed: 123 });
    const c = new UNet('tiny16', { device: 'cpu', seed: 124 });
    const [pa, pb, pc] = await Promise.all([a.params.toArray(), b.params.toArray(), c.params.toArray()]);
    expect(Buffer.compare(Buffer.from(pa.buffer), Buffer.from(pb.buffer))).toBe(0);
    expect(pa[0]).not.toBe(pc[0]);
    for (const [k, p] of a.layout.entries()) {
      const v = pa.subarray(p.offset, p.offset + p.numel);
      if (/\.(norm\d?|out\.norm)\.weight$|norm\d?\.weight$/.test(p.name))
        expect(
          v.every((x) => x === 1),
          p.name,
        ).toBe(true);
      else if (/norm\d?\.bias$/.test(p.name))
        expect(
          v.every((x) => x === 0),
          p.name,
        ).toBe(true);
      else if (/(conv2|proj)\.|^out\.conv\./.test(p.name))
        expect(
          v.every((x) => x === 0),
          p.name,
        ).toBe(true);
      else {
        // Independent recomputation: stream k of the seed, 24-bit uniforms scaled to +-1/sqrt(fan_in).
        const layer = a.layout.find((q) => q.name === p.name.replace(/bias$/, 'weight'))!;
        const fanIn = layer.shape.slice(1).reduce((s, d) => s * d, 1);
        const bound = Math.fround(1 / Math.sqrt(fanIn));
        const bits = referenceBits(Math.min(8, p.numel), 123n, 0n, BigInt(k));
        const expected = [...bits].map((w) => Math.fround(bound * Math.fround(2 * ((w >>> 8) / 16777216) - 1)));
        expect([...v.subarray(0, expected.length)], p.name).toEqual(expected);
      }
    }
    for (const net of [a, b, c]) net.dispose();
  });
});

describe('config validation in TypeScript', () => {
  it('names the field', () => {
    expect(() => unetLayout({} as never)).toThrow('unet config: mult is required');
    expect(() =>
      unetLayout({ ...{ inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, resolution: 8 }, zeroInit: 'x' as never }),
    ).toThrow(/zeroInit must be a boolean/);
    expect(() => unetLayout({ inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, resolution: 8, attnResolutions: [3] })).toThrow(
      /attnResolutions entry 3 matches no level \(sizes 8, 4\)/,
    );
  });
});
