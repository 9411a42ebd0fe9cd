// The precision option on the CPU (docs/precision.md): 'bf16' / 'tf32' round the convolutions'
// operands as the tensor cores do. A network with zeroInit false (every conv live) must give outputs
// that differ from FP32 by about the operands' rounding (neither identical, which would mean the option
// is not wired through, nor far off), and a few training steps of tiny16 must keep the loss within the
// band that bench/precision-train.mjs measured over longer runs (docs/performance.md).
import { describe, expect, it } from 'vitest';
import { Generator, NoiseSchedule, randn, tensor, train, UNet, type UNetConfig } from '../../lib/index.ts';

const config: UNetConfig = {
  inChannels: 1,
  channels: 32,
  mult: [1, 1],
  resBlocks: 1,
  attnResolutions: [4],
  resolution: 8,
  zeroInit: false,
};

async function output(precision: 'fp32' | 'bf16' | 'tf32') {
  const net = new UNet(config, { device: 'cpu', seed: 3, precision });
  const x = randn([2, 1, 8, 8], { generator: new Generator(5) });
  const t = tensor([10, 500], [2]);
  return net.predict(x, t).toArray();
}

const relRms = (a: Float32Array, b: Float32Array) => {
  let e = 0,
    r = 0;
  for (let i = 0; i < a.length; i++) ((e += (a[i]! - b[i]!) ** 2), (r += b[i]! ** 2));
  return Math.sqrt(e / r);
};

// Smooth 16x16 blobs (as in bench/precision-train.mjs).
function blobs16(n: number, seed = 1) {
  const images = new Float32Array(n * 256);
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < n; i++) {
    const cx = 2 + 12 * rnd(),
      cy = 2 + 12 * rnd(),
      r = 2 + 4 * rnd();
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) images[i * 256 + y * 16 + x] = 2 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r) - 1;
  }
  return { images, shape: [n, 1, 16, 16] as [number, number, number, number] };
}

describe('precision (CPU rounding mode)', () => {
  it('bf16 and tf32 move the output by about the operand rounding', async () => {
    const [f, b, t] = await Promise.all([output('fp32'), output('bf16'), output('tf32')]);
    const eb = relRms(b, f),
      et = relRms(t, f);
    console.log(`UNet output, relative RMS difference to fp32: bf16 ${eb.toExponential(2)}, tf32 ${et.toExponential(2)}`);
    // u = 2^-8 (BF16) and 2^-11 (TF32): a conv's relative error is about u; a few dozen layers in a row
    // stay within 10 u; and at least u / 20 (the rounding must show).
    expect(eb).toBeGreaterThan(2 ** -8 / 20);
    expect(eb).toBeLessThan(10 * 2 ** -8);
    expect(et).toBeGreaterThan(2 ** -11 / 20);
    expect(et).toBeLessThan(10 * 2 ** -11);
    expect(eb).toBeGreaterThan(2 * et);
  });

  it('rejects an unknown precision, naming it', () => {
    expect(() => new UNet(config, { device: 'cpu', precision: 'fp16' as never })).toThrow(
      /precision must be "fp32", "bf16" or "tf32", got "fp16"/,
    );
  });

  it('4 tiny16 training steps in bf16 keep the fp32 loss within the band', async () => {
    const data = blobs16(512);
    const run = async (precision: 'fp32' | 'bf16') => {
      const model = new UNet('tiny16', { device: 'cpu', seed: 5, precision });
      const r = await train({
        model,
        data,
        batchSize: 8,
        steps: 4,
        optimizer: { lr: 1e-3 },
        schedule: new NoiseSchedule({ kind: 'linear' }),
        seed: 11,
      });
      return r.losses.map((l) => l.loss);
    };
    const f = await run('fp32');
    const b = await run('bf16');
    const diff = Math.max(...b.map((v, i) => Math.abs(v - f[i]!) / f[i]!));
    console.log(
      `tiny16, 4 steps: losses fp32 ${f.map((v) => v.toFixed(5)).join(' ')}, bf16 ${b.map((v) => v.toFixed(5)).join(' ')}; largest relative difference ${diff.toExponential(2)}`,
    );
    expect(diff).toBeGreaterThan(0); // the rounding reaches the training loop
    expect(diff).toBeLessThan(BAND);
  }, 60_000);
});

// The band: bench/precision-train.mjs (the same data, seeds and batch) measured at most 7.1e-5 over its
// first 5 steps (2026-12-06, docs/performance.md); 2e-4 leaves a factor 3. Later in a run the two
// trajectories drift apart as any two training runs do (the script reports it; not asserted here).
const BAND = 2e-4;
