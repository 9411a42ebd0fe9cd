// The whole UNet, forward and backward, on CUDA against the CPU backend (skipped, with the reason in
// the suite's name, where there is no GPU). Bound: NMSE 2e-3 for a whole network (architecture.md);
// the FP32 kernels should land far below it. Each precision on both sides (docs/precision.md): fp32
// (SIMT) and bf16 (tensor cores on the GPU, the same operand rounding on the CPU), where only the order of
// FP32 additions differs, and with it an occasional BF16 rounding of an activation.
import { describe, expect, it } from 'vitest';
import { Generator, presets, randn, tensor, UNet } from '../../lib/index.ts';
import { cudaSkipReason, hasCuda, nmse } from '../helpers.ts';

async function step(device: string, preset: 'tiny16' | 'fmnist32', batch: number, precision: 'fp32' | 'bf16') {
  const net = new UNet({ ...presets[preset], zeroInit: false }, { device, seed: 11, precision });
  const g = new Generator(4);
  const { inChannels, outChannels, resolution: r } = net.config;
  const x = randn([batch, inChannels, r, r], { generator: g, device });
  const gout = randn([batch, outChannels, r, r], { generator: g, device });
  const t = tensor(
    Array.from({ length: batch }, (_, i) => (i * 131) % 1000),
    [batch],
    { device },
  );
  const { out, tape } = net.forward(x, t);
  const gx = net.backward(tape, gout, { inputGrad: true })!;
  tape.release();
  const result = { out: await out.toArray(), gx: await gx.toArray(), grads: await net.grads.toArray() };
  net.dispose();
  return result;
}

describe.skipIf(!hasCuda)(`golden: whole UNet, cuda:0 vs cpu ${cudaSkipReason}`, () => {
  for (const [preset, batch] of [
    ['tiny16', 4],
    ['fmnist32', 2],
  ] as const)
    for (const precision of ['fp32', 'bf16'] as const)
      it(`${preset} batch ${batch} ${precision}: output, input gradient, parameter gradients`, async () => {
        const [gpu, cpu] = [await step('cuda:0', preset, batch, precision), await step('cpu', preset, batch, precision)];
        const errors = { out: nmse(gpu.out, cpu.out), gx: nmse(gpu.gx, cpu.gx), grads: nmse(gpu.grads, cpu.grads) };
        console.log(`${preset} ${precision}: NMSE`, errors);
        for (const [name, e] of Object.entries(errors)) expect(e, name).toBeLessThan(2e-3);
      });
});
