// The widened demo prior must compute the function of the narrow one (lib/demo/widen.ts): both run
// through the native forward on the same inputs, at noise levels across the schedule. The trained weights
// are the 16x16 prior the demo shipped until 2026-12-06 (kept as a test fixture).
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { widenParams } from '../../lib/demo/widen.ts';
import { Generator } from '../../lib/random.ts';
import { randn, tensor } from '../../lib/tensor.ts';
import { presets, UNet, unetLayout } from '../../lib/unet.ts';

const presetTiny16 = presets.tiny16;

const PRIOR = new URL('../fixtures/demo/demo-prior-16.safetensors', import.meta.url).pathname;

async function outputs(net: UNet, x: Float32Array, t: number[]): Promise<Float32Array> {
  using xs = tensor(x, [t.length, 1, 16, 16], { device: 'cpu' });
  using ts = tensor(t, [t.length], { device: 'cpu' });
  using y = net.predict(xs, ts);
  return y.toArray();
}

describe('widening the demo prior', () => {
  it("the 2x-wide network computes the narrow one's function (trained weights, t across the schedule)", async () => {
    const ckpt = await readCheckpoint(PRIOR);
    const narrow = new UNet(ckpt.config, { device: 'cpu' });
    narrow.setParams(ckpt.params);
    const { config, params } = widenParams(ckpt.config, ckpt.params);
    expect(config.channels).toBe(2 * ckpt.config.channels);
    const wide = new UNet(config, { device: 'cpu' });
    wide.setParams(params);
    const t = [0, 3, 40, 250, 600, 999];
    using noise = randn([t.length, 1, 16, 16], { generator: new Generator(3), device: 'cpu' });
    const x = await noise.toArray();
    const [a, b] = [await outputs(narrow, x, t), await outputs(wide, x, t)];
    let [err, scale] = [0, 0];
    for (let i = 0; i < a.length; i++) [err, scale] = [Math.max(err, Math.abs(a[i]! - b[i]!)), Math.max(scale, Math.abs(a[i]!))];
    // Float rounding only: the split weights sum to the narrow ones within an ulp, sums run in another order.
    expect(scale).toBeGreaterThan(0.1);
    expect(err / scale).toBeLessThan(1e-4);
    narrow.dispose();
    wide.dispose();
  });

  it('the two copies of a channel get different weights (else their gradients would stay equal)', async () => {
    const ckpt = await readCheckpoint(PRIOR);
    const { config, params } = widenParams(ckpt.config, ckpt.params);
    const p = unetLayout(config).params.find((q) => q.name === 'down.0.conv2.weight')!;
    const [rows, inner] = [p.shape[0]!, p.numel / p.shape[0]!];
    let equalRows = 0;
    for (let r = 0; r < rows; r += 2) {
      const row = (k: number) => params.subarray(p.offset + k * inner, p.offset + (k + 1) * inner);
      if (row(r).every((v, i) => v === row(r + 1)[i])) equalRows++;
    }
    expect(equalRows).toBe(0);
  });

  it('refuses weights of another size', () => {
    expect(() => widenParams({ ...presetTiny16 }, new Float32Array(10))).toThrow(/params has 10 values/);
  });
});
