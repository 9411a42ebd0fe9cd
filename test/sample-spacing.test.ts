// DDIM timestep spacing (issue #16 part 5): 'linspace' (the default, unchanged), 'leading' (the DDIM
// paper's 0, 100, ..., 900) and 'trailing', as diffusers defines them, against grids computed by hand
// for T = 1000 (the expected values below are written out, not produced by the code under test).
import { describe, expect, it } from 'vitest';
import { NoiseSchedule, sample, tensor, timesteps } from '../lib/index.ts';
import { runCli } from './support/node.ts';

describe('timestep spacing', () => {
  it('linspace: round(i 999 / (N - 1)), both ends of the schedule (Math.round: halves go up)', () => {
    expect(timesteps(1000, 10)).toEqual([0, 111, 222, 333, 444, 555, 666, 777, 888, 999]);
    expect(timesteps(1000, 4, 'linspace')).toEqual([0, 333, 666, 999]);
    // 999/6 = 166.5, 499.5, 832.5
    expect(timesteps(1000, 7, 'linspace')).toEqual([0, 167, 333, 500, 666, 833, 999]);
    expect(timesteps(1000, 1, 'linspace')).toEqual([999]);
  });

  it('leading: i floor(1000 / N)', () => {
    expect(timesteps(1000, 10, 'leading')).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    expect(timesteps(1000, 3, 'leading')).toEqual([0, 333, 666]);
    expect(timesteps(1000, 7, 'leading')).toEqual([0, 142, 284, 426, 568, 710, 852]);
    expect(timesteps(1000, 1, 'leading')).toEqual([0]);
  });

  it('trailing: np.round(arange(1000, 0, -1000/N)) - 1, numpy rounding halves to even', () => {
    expect(timesteps(1000, 10, 'trailing')).toEqual([99, 199, 299, 399, 499, 599, 699, 799, 899, 999]);
    // 1000, 666.67, 333.33 -> 1000, 667, 333 -> minus 1
    expect(timesteps(1000, 3, 'trailing')).toEqual([332, 666, 999]);
    // steps of 62.5: 937.5 -> 938, 812.5 -> 812, 687.5 -> 688, 562.5 -> 562, 437.5 -> 438, 312.5 -> 312, 187.5 -> 188, 62.5 -> 62
    expect(timesteps(1000, 16, 'trailing')).toEqual([61, 124, 187, 249, 311, 374, 437, 499, 561, 624, 687, 749, 811, 874, 937, 999]);
    expect(timesteps(1000, 1, 'trailing')).toEqual([999]);
    expect(timesteps(1000, 1000, 'trailing')).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('bad spacings are refused; the sampler visits the grid from the top', async () => {
    expect(() => timesteps(1000, 10, 'uniform' as never)).toThrow(/spacing: expected linspace, leading, trailing, got "uniform"/);
    const seen: number[] = [];
    const schedule = new NoiseSchedule({ kind: 'linear' });
    const x = await sample((xt, t) => (seen.push(t[0]!), tensor(new Float32Array(xt.numel), xt.shape, { device: 'cpu' })), {
      schedule,
      prediction: 'x0',
      shape: [1, 1, 2, 2],
      device: 'cpu',
      steps: 10,
      spacing: 'leading',
    });
    x.dispose();
    expect(seen).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
  });

  it('kintsugi sample --spacing checks its value', () => {
    const r = runCli(['sample', '--checkpoint', 'none.safetensors', '--spacing', 'even']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--spacing: expected linspace, leading, trailing, got "even"');
  });
});
