// Counted FLOPs and bytes of the UNet (docs/unet.md), from the native plan's stage list, so that
// benchmarks report TFLOP/s and GB/s against what the network must do, not against what a kernel
// happens to do. Conventions (PyTorch's FLOP counter's): a multiply-add is 2 FLOPs; only matrix
// products count (convolutions, linears, the two attention products); normalisations and elementwise
// passes are counted separately, in bytes, because they are bandwidth-bound.
import { native } from './native.ts';
import { resolveConfig, type UNetConfig, type UNetPreset } from './unet.ts';
// Declared with the binding (lib/native.ts sits below every other file); re-exported here.
export type { UNetStage } from './native.ts';

export interface UNetCost {
  batch: number;
  /** Forward matrix FLOPs by kind. */
  forward: { conv: number; attention: number; linear: number; total: number };
  /**
   * Forward + backward FLOPs of a training step: each product's backward is two products (the input
   * gradient and the weight gradient) except that the first convolution needs no input gradient.
   */
  training: number;
  /**
   * Bytes the normalisation and elementwise passes of one forward must read and write at least (float32,
   * each GroupNorm reads its input twice (statistics, then normalise) and writes once; each SiLU, bias and
   * residual add reads and writes once): the bandwidth-bound part that fusion removes.
   */
  forwardElementwiseBytes: number;
}

const conv = (n: number, cin: number, cout: number, outSize: number, k: number) => 2 * n * cout * outSize * outSize * cin * k * k;

export function unetCost(config: UNetConfig | UNetPreset, batch: number): UNetCost {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`unetCost: batch must be a positive integer, got ${batch}`);
  const cfg = resolveConfig(config);
  const { stages } = native.unetLayout(cfg);
  const n = batch;
  const C = cfg.channels,
    TC = 4 * C,
    R = cfg.resolution;
  const f = { conv: 0, attention: 0, linear: 0 };
  let bytes = 0;
  const F = 4; // bytes per float
  const norm = (c: number, hw: number) => 3 * n * c * hw * F;
  const pass = (c: number, hw: number) => 2 * n * c * hw * F;

  f.linear += 2 * n * C * TC + 2 * n * TC * TC; // time.linear1, time.linear2
  const firstConv = conv(n, cfg.inChannels, C, R, 3);
  f.conv += firstConv;
  for (const s of stages) {
    const hw = s.size * s.size;
    switch (s.kind) {
      case 'res':
        f.conv += conv(n, s.cin, s.cout, s.size, 3) + conv(n, s.cout, s.cout, s.size, 3);
        if (s.cin !== s.cout) f.conv += conv(n, s.cin, s.cout, s.size, 1);
        f.linear += 2 * n * TC * s.cout;
        // norm1, silu, time bias, norm2, silu, residual add
        bytes += norm(s.cin, hw) + pass(s.cin, hw) + pass(s.cout, hw) + norm(s.cout, hw) + pass(s.cout, hw) + pass(s.cout, hw);
        break;
      case 'attn':
        f.conv += conv(n, s.cin, 3 * s.cin, s.size, 1) + conv(n, s.cin, s.cin, s.size, 1);
        f.attention += 2 * (2 * n * hw * hw * s.cin); // q^T k and v A^T
        bytes += norm(s.cin, hw) + 3 * n * hw * hw * F + pass(s.cin, hw); // norm, softmax (read, max/sum pass, write), residual
        break;
      case 'down':
        f.conv += conv(n, s.cin, s.cout, s.size / 2, 3);
        break;
      case 'up':
        f.conv += conv(n, s.cin, s.cout, 2 * s.size, 3);
        bytes += n * s.cin * hw * F * 5; // read hw, write 4 hw
        break;
    }
  }
  f.conv += conv(n, C, cfg.outChannels, R, 3); // out.conv
  bytes += norm(C, R * R) + pass(C, R * R);
  const total = f.conv + f.attention + f.linear;
  return { batch, forward: { ...f, total }, training: 3 * total - firstConv, forwardElementwiseBytes: bytes };
}
