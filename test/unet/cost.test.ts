// The counted FLOPs of lib/cost.ts against an independent count: PyTorch's FLOP counter on the same
// network, as recorded in docs/performance.md (forward + backward, batch 128: 1,109 and 4,778 GFLOP).
import { describe, expect, it } from 'vitest';
import { unetCost } from '../../lib/index.ts';

describe('unetCost', () => {
  it("training FLOPs agree with PyTorch's FLOP counter (docs/performance.md) to its printed precision", () => {
    expect(unetCost('fmnist32', 128).training / 1e9).toBeCloseTo(1109, -0.3); // |diff| < 1 GFLOP
    expect(unetCost('cifar32', 128).training / 1e9).toBeCloseTo(4778, -0.3);
  });

  it('scales linearly with the batch and splits by kind', () => {
    const a = unetCost('tiny16', 8),
      b = unetCost('tiny16', 16);
    expect(b.training).toBe(2 * a.training);
    expect(a.forward.total).toBe(a.forward.conv + a.forward.attention + a.forward.linear);
    // conv_in of tiny16 (1 -> 32 channels at 16x16, 3x3): 2 * 8 * 32 * 256 * 9 FLOPs need no input gradient.
    expect(a.training).toBe(3 * a.forward.total - 2 * 8 * 32 * 256 * 9);
    expect(() => unetCost('tiny16', 0)).toThrow('unetCost: batch must be a positive integer, got 0');
  });
});
