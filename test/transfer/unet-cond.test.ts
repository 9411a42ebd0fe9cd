// The UNet's optional condition input (an embedding [n, 4C] added to the time embedding, for the
// transfer method's h(y)). Two exact identities make its golden values: adding the same c to every row
// is the same network with time.linear2.bias + c, and the bias gradient of that layer is the sum over
// rows of dL/dcond; finite differences of the float network check dL/dcond row by row.
import { describe, expect, it } from 'vitest';
import { tensor, UNet, type UNetConfig } from '../../lib/index.ts';
import { testValues } from '../helpers.ts';

// 32 channels doubling to 64: GroupNorm(32) then groups two channels at the second level, so the time
// embedding (a per-channel shift, which a one-channel group would normalise away) reaches the output.
const cfg: UNetConfig = { inChannels: 1, channels: 32, mult: [1, 2], resBlocks: 1, resolution: 8, attnResolutions: [4], zeroInit: false };
const n = 3;
const TC = 128;

describe('UNet condition embedding', () => {
  it('cond = 0 changes nothing; a shared cond equals shifting time.linear2.bias', async () => {
    const net = new UNet(cfg, { seed: 5 });
    const x = tensor(testValues(n * 64, 21), [n, 1, 8, 8]);
    const t = tensor([3, 400, 999], [n]);
    const plain = await net.predict(x, t).toArray();
    expect(await net.predict(x, t, { cond: tensor(new Float32Array(n * TC), [n, TC]) }).toArray()).toEqual(plain);
    const c = testValues(TC, 7).map((v) => v * 0.3);
    const rows = new Float32Array(n * TC);
    for (let r = 0; r < n; r++) rows.set(c, r * TC);
    const withCond = await net.predict(x, t, { cond: tensor(rows, [n, TC]) }).toArray();
    const bias = net.layout.find((p) => p.name === 'time.linear2.bias')!;
    const shifted = await net.params.toArray();
    for (let i = 0; i < TC; i++) shifted[bias.offset + i]! += c[i]!;
    const viaBias = await net.predict(x, t, { params: tensor(shifted, [net.paramCount]) }).toArray();
    let maxDiff = 0;
    for (let i = 0; i < plain.length; i++) maxDiff = Math.max(maxDiff, Math.abs(withCond[i]! - viaBias[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
    expect(withCond).not.toEqual(plain);
  });

  it('dL/dcond sums over rows to the time.linear2.bias gradient and matches finite differences', async () => {
    const net = new UNet(cfg, { seed: 6 });
    const x = tensor(testValues(n * 64, 22), [n, 1, 8, 8]);
    const t = tensor([10, 250, 700], [n]);
    const condValues = testValues(n * TC, 3).map((v) => v * 0.2);
    const cond = tensor(condValues, [n, TC]);
    const gout = tensor(testValues(n * 64, 24), [n, 1, 8, 8]);
    const { tape } = net.forward(x, t, { cond });
    const gcond = tensor(new Float32Array(n * TC), [n, TC]);
    net.zeroGrad();
    net.backward(tape, gout, { condGrad: gcond });
    tape.release();
    const g = await gcond.toArray();
    const grads = await net.grads.toArray();
    const bias = net.layout.find((p) => p.name === 'time.linear2.bias')!;
    for (let i = 0; i < TC; i++) {
      const sum = g[i]! + g[TC + i]! + g[2 * TC + i]!;
      expect(Math.abs(sum - grads[bias.offset + i]!)).toBeLessThan(1e-5 * (1 + Math.abs(sum)));
    }
    const G = await gout.toArray();
    const loss = async (values: Float32Array) => {
      const out = await net.predict(x, t, { cond: tensor(values, [n, TC]) }).toArray();
      let s = 0;
      for (let i = 0; i < out.length; i++) s += (out[i]! as number) * G[i]!;
      return s;
    };
    expect(Math.max(...Array.from(g, Math.abs))).toBeGreaterThan(1e-2); // a gradient worth checking
    const h = 1e-2;
    for (const i of [0, 17, TC + 5, 2 * TC + 101]) {
      const up = Float32Array.from(condValues);
      up[i]! += h;
      const down = Float32Array.from(condValues);
      down[i]! -= h;
      const fd = ((await loss(up)) - (await loss(down))) / (2 * h);
      expect(Math.abs(g[i]! - fd)).toBeLessThan(2e-2 * Math.max(Math.abs(fd), 0.05));
    }
  });

  it('rejects a cond of the wrong shape, naming it', () => {
    const net = new UNet(cfg, { seed: 1 });
    const x = tensor(testValues(n * 64, 21), [n, 1, 8, 8]);
    const t = tensor([1, 2, 3], [n]);
    expect(() => net.forward(x, t, { cond: tensor(new Float32Array(n * 16), [n, 16]) })).toThrow(
      /cond: expected shape \[3,128\], got \[3,16\]/,
    );
    const { tape } = net.forward(x, t);
    expect(() => net.backward(tape, x, { condGrad: tensor(new Float32Array(TC), [1, TC]) })).toThrow(/gcond: expected shape \[3,128\]/);
    tape.release();
  });
});
