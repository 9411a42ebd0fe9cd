// Uniform-attention guidance (lib/guidance.ts): the weakened network has uniform attention maps (its
// output no longer depends on the keys at all), the guided prediction is u + w (d − u) of two plain
// passes, weight 1 is the plain network, and what cannot be guided is refused by name.
import { describe, expect, it } from 'vitest';
import { uniformAttentionGuidance, uniformAttentionParams } from '../lib/guidance.ts';
import { tensor } from '../lib/tensor.ts';
import { UNet, unetLayout, type UNetConfig } from '../lib/unet.ts';

/** Deterministic values in [-1, 1] (inputs and replacement weights; no randomness needed). */
const wave = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s * 78.233));

const config: UNetConfig = {
  inChannels: 1,
  outChannels: 1,
  channels: 8,
  mult: [1, 2],
  resBlocks: 1,
  attnResolutions: [4],
  resolution: 8,
  zeroInit: false,
};

async function predictWith(net: UNet, params: Float32Array, x: Float32Array, t: number[]) {
  const p = tensor(params, [net.paramCount], { device: 'cpu' });
  const xt = tensor(x, [t.length, 1, 8, 8], { device: 'cpu' });
  const tt = tensor(Float32Array.from(t), [t.length], { device: 'cpu' });
  const out = net.predict(xt, tt, { params: p });
  const v = await out.toArray();
  for (const z of [p, xt, tt, out]) z.dispose();
  return v;
}

describe('uniform-attention guidance', () => {
  it('zeroes the query projections: 16,640 values of small32 (4 attention layers of 64 channels)', () => {
    const layout = unetLayout('small32');
    const params = Float32Array.from({ length: layout.paramCount }, (_, i) => 1 + (i % 7));
    const weak = uniformAttentionParams(
      { inChannels: 1, outChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [8], resolution: 32 },
      params,
    );
    let changed = 0;
    for (let i = 0; i < params.length; i++) if (weak[i] !== params[i]) (expect(weak[i]).toBe(0), changed++);
    // each attention (down.5, mid.1, up.1, up.3 at 8x8, 64 channels): q is 64 x 64 weights and 64 biases
    expect(changed).toBe(4 * (64 * 64 + 64));
  });

  it('makes every attention map uniform: the output no longer depends on the key projections', async () => {
    const net = new UNet(config, { device: 'cpu', seed: 3n });
    const params = await net.params.toArray();
    const layout = unetLayout(config).params.filter((p) => /\.qkv\.weight$/.test(p.name));
    expect(layout.length).toBeGreaterThan(0);
    // The same weights with other key rows (the second third of each qkv weight).
    const otherKeys = (p: Float32Array) => {
      const q = Float32Array.from(p);
      for (const l of layout) {
        const rows = l.shape[0]! / 3;
        const per = l.shape.slice(1).reduce((a, b) => a * b, 1);
        const noise = wave(rows * per, l.offset);
        for (let i = 0; i < rows * per; i++) q[l.offset + rows * per + i] = 0.5 * noise[i]!;
      }
      return q;
    };
    const x = wave(2 * 64, 4);
    const t = [100, 700];
    const weak = uniformAttentionParams(config, params);
    const a = await predictWith(net, weak, x, t);
    const b = await predictWith(net, otherKeys(weak), x, t);
    const maxDiff = (u: Float32Array, v: Float32Array) => u.reduce((m, ui, i) => Math.max(m, Math.abs(ui - v[i]!)), 0);
    expect(maxDiff(a, b)).toBeLessThan(1e-6); // softmax of constant logits: the keys cannot matter
    // ...whereas the trained network's output does depend on them (the check above can fail).
    expect(maxDiff(await predictWith(net, params, x, t), await predictWith(net, otherKeys(params), x, t))).toBeGreaterThan(1e-3);
    net.dispose();
  });

  it('predicts u + w (d − u) from the plain and the weakened pass; weight 1 is the plain network', async () => {
    const net = new UNet(config, { device: 'cpu', seed: 5n });
    const params = await net.params.toArray();
    const x = wave(3 * 64, 6);
    const t = [10, 400, 900];
    const d = await predictWith(net, params, x, t);
    const u = await predictWith(net, uniformAttentionParams(config, params), x, t);
    const run = async (w: number) => {
      const g = await uniformAttentionGuidance(net, w);
      const xi = tensor(x, [3, 1, 8, 8], { device: 'cpu' });
      const out = g.denoiser(xi, Float32Array.from(t));
      const v = await out.toArray();
      out.dispose();
      xi.dispose();
      g.dispose();
      return v;
    };
    expect(await run(1)).toEqual(d);
    const guided = await run(3);
    let err = 0;
    for (let i = 0; i < d.length; i++) err = Math.max(err, Math.abs(guided[i]! - (u[i]! + 3 * (d[i]! - u[i]!))));
    expect(err).toBeLessThan(1e-5);
    expect(guided).not.toEqual(d);
    net.dispose();
  });

  it('refuses a negative or non-finite weight and parameters of another network', async () => {
    const net = new UNet(config, { device: 'cpu', seed: 1n });
    await expect(uniformAttentionGuidance(net, -1)).rejects.toThrow('guidance: expected a weight >= 0 (1 = none), got -1');
    await expect(uniformAttentionGuidance(net, Number.NaN)).rejects.toThrow('got NaN');
    // Weight 1 needs no second pass, and every network has attention (the middle block's, always).
    const flat = new UNet({ ...config, attnResolutions: [] }, { device: 'cpu', seed: 1n });
    const mid = uniformAttentionParams(
      flat.config,
      Float32Array.from({ length: flat.paramCount }, () => 1),
    );
    expect(mid.filter((v) => v === 0).length).toBe(16 * 16 + 16); // mid.1 at 16 channels: q weights and bias
    flat.dispose();
    net.dispose();
    expect(() => uniformAttentionParams(config, new Float32Array(3))).toThrow('expected');
  });
});
