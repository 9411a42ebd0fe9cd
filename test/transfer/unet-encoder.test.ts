// An MLP encoder feeding the UNet's condition input: the gradient that reaches h's weights through the
// UNet (unet.backward's condGrad, then h.backward) against finite differences of the whole chain.
import { describe, expect, it } from 'vitest';
import { tensor, UNet, type UNetConfig } from '../../lib/index.ts';
import { Mlp } from '../../lib/transfer/mlp.ts';
import { unetCondition } from '../../lib/transfer/unet-cond.ts';
import { testValues } from '../helpers.ts';

const cfg: UNetConfig = { inChannels: 1, channels: 32, mult: [1, 2], resBlocks: 1, resolution: 8, attnResolutions: [], zeroInit: false };

describe('UNet conditioned on an MLP encoder', () => {
  it('h receives the gradient of the UNet loss (finite differences through the UNet)', async () => {
    const n = 2;
    const unet = new UNet(cfg, { seed: 3 });
    const h = new Mlp({ inputs: 5, hidden: 6, depth: 2, outputs: 128, activation: 'silu' }, { seed: 4 });
    const y = testValues(n * 5, 1);
    const x = tensor(testValues(n * 64, 2), [n, 1, 8, 8]);
    const t = tensor([30, 600], [n]);
    const G = testValues(n * 64, 3);
    const gout = tensor(G, [n, 1, 8, 8]);
    const c = unetCondition(h, unet, y, n);
    const { tape } = unet.forward(x, t, { cond: c.cond });
    const condGrad = tensor(new Float32Array(n * 128), [n, 128]);
    unet.backward(tape, gout, { condGrad });
    tape.release();
    h.grads.fill(0);
    await c.backward(condGrad);
    const loss = async () => {
      const k = unetCondition(h, unet, y, n);
      const out = await unet.predict(x, t, { cond: k.cond }).toArray();
      k.dispose();
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i]! * G[i]!;
      return s;
    };
    const step = 1e-2;
    let checked = 0;
    for (const i of [0, 7, 29, 40, 6 * 5 + 6 + 100, h.paramCount - 1]) {
      const keep = h.params[i]!;
      h.params[i] = keep + step;
      const up = await loss();
      h.params[i] = keep - step;
      const down = await loss();
      h.params[i] = keep;
      const fd = (up - down) / (2 * step);
      expect(Math.abs(h.grads[i]! - fd)).toBeLessThan(3e-2 * Math.max(Math.abs(fd), 0.05));
      if (Math.abs(fd) > 0.05) checked++;
    }
    expect(checked).toBeGreaterThan(2); // the check is not vacuous
    expect(() => unetCondition(new Mlp({ inputs: 5, hidden: 4, depth: 1, outputs: 10 }), unet, y, n)).toThrow(
      /outputs 10 values, the UNet's time embedding has 128/,
    );
  });
});
