// UNet.profileStages (issue #13 item 6) on the CPU backend: one entry per stage in the order the
// architecture gives (written out by hand below from docs/unet.md, not read from the code), finite
// non-negative times, and the same outputs and gradients, bit for bit, as a plain forward + backward.
// No timing assertion beyond >= 0: the times themselves are what bench/gpu.mjs reports.
import { describe, expect, it } from 'vitest';
import { Generator, randn, tensor, UNet, type Precision } from '../../lib/index.ts';

// tiny16: C = 32, mult [1, 2], one ResBlock per level, attention at 8x8, 16x16 input, 1 channel.
// Down: ResBlock 32 -> 32 at 16 (pushed), Downsample at 16, ResBlock 32 -> 64 at 8 then its attention
// (pushed); skips on the stack: conv_in 32, down.0 32, down.1 32, down.3 64. Mid at 8: ResBlock,
// attention, ResBlock (64). Up at 8: two ResBlocks, each followed by attention, reading 64 + 64 and
// 64 + 32, the Upsample of 64; at 16: ResBlocks reading 64 + 32 and 32 + 32; the head 32 -> 1.
const tiny16Stages: [string, string, string, number, number, number][] = [
  ['time', 'time', 'time', 0, 32, 128],
  ['conv_in', 'conv_in', 'conv', 16, 1, 32],
  ['down.0', 'down', 'res', 16, 32, 32],
  ['down.1', 'down', 'down', 16, 32, 32],
  ['down.2', 'down', 'res', 8, 32, 64],
  ['down.3', 'down', 'attn', 8, 64, 64],
  ['mid.0', 'mid', 'res', 8, 64, 64],
  ['mid.1', 'mid', 'attn', 8, 64, 64],
  ['mid.2', 'mid', 'res', 8, 64, 64],
  ['up.0', 'up', 'res', 8, 128, 64],
  ['up.1', 'up', 'attn', 8, 64, 64],
  ['up.2', 'up', 'res', 8, 96, 64],
  ['up.3', 'up', 'attn', 8, 64, 64],
  ['up.4', 'up', 'up', 8, 64, 64],
  ['up.5', 'up', 'res', 16, 96, 32],
  ['up.6', 'up', 'res', 16, 64, 32],
  ['out', 'out', 'head', 16, 32, 1],
];

async function bits(t: { toArray(): Promise<Float32Array> }): Promise<Uint32Array> {
  const a = await t.toArray();
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('UNet.profileStages (cpu)', () => {
  for (const precision of ['fp32', 'bf16'] as Precision[]) {
    it(`${precision}: one entry per stage, times >= 0, outputs and gradients bit-identical to forward + backward`, async () => {
      using net = new UNet('tiny16', { device: 'cpu', seed: 5, precision });
      // zero-initialised conv2s and heads would leave most of the gradient zero: use non-zero weights.
      const g = new Generator(3);
      using w = randn([net.paramCount], { generator: g, device: 'cpu' });
      net.setParams((await w.toArray()).map((v) => 0.2 * v));
      using x = randn([2, 1, 16, 16], { generator: g, device: 'cpu' });
      using t = tensor([17, 640], [2], { device: 'cpu' });
      using gout = randn([2, 1, 16, 16], { generator: g, device: 'cpu' });

      const plain = net.forward(x, t);
      const gxPlain = net.backward(plain.tape, gout, { inputGrad: true })!;
      plain.tape.release();
      const want = { out: await bits(plain.out), grads: await bits(net.grads), gx: await bits(gxPlain) };
      plain.out.dispose();
      gxPlain.dispose();

      net.zeroGrad();
      const p = await net.profileStages(x, t, gout, { inputGrad: true });
      expect(await bits(p.out)).toEqual(want.out);
      expect(await bits(net.grads)).toEqual(want.grads);
      expect(await bits(p.inputGrad!)).toEqual(want.gx);
      p.out.dispose();
      p.inputGrad!.dispose();

      expect(p.stages.map((s) => [s.stage, s.section, s.kind, s.size, s.cin, s.cout])).toEqual(tiny16Stages);
      for (const s of p.stages) {
        expect(Number.isFinite(s.fwdMs) && s.fwdMs >= 0, `${s.stage} forward ${s.fwdMs}`).toBe(true);
        expect(Number.isFinite(s.bwdMs) && s.bwdMs >= 0, `${s.stage} backward ${s.bwdMs}`).toBe(true);
      }
    });
  }

  it('checks its arguments, naming them', async () => {
    using net = new UNet('tiny16', { device: 'cpu' });
    using x = randn([2, 1, 16, 16], { generator: new Generator(1), device: 'cpu' });
    using t = tensor([1, 2], [2], { device: 'cpu' });
    using bad = randn([2, 1, 8, 8], { generator: new Generator(2), device: 'cpu' });
    await expect(net.profileStages(x, t, bad)).rejects.toThrow('gout: expected shape [2,1,16,16], got [2,1,8,8]');
  });
});
