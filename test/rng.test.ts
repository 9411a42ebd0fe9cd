// The counter-based generator: published known-answer vectors, the stream layout against an
// independent JavaScript implementation, generator bookkeeping, distribution sanity, and
// bit-identical streams on CPU and GPU.
import { describe, expect, it } from 'vitest';
import { Generator, manualSeed, philoxBits, rand, randn } from '../lib/index.ts';
import { cudaSkipReason, hasCuda } from './helpers.ts';
import { philox4x32_10, referenceBits } from './reference/philox.ts';

// Random123's kat_vectors for philox4x32 with 10 rounds: counter (4 words), key (2 words), result.
const KAT: [number[], number[], number[]][] = [
  [
    [0, 0, 0, 0],
    [0, 0],
    [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
  ],
  [
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  ],
  [
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    [0xa4093822, 0x299f31d0],
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  ],
];

const u64 = (lo: number, hi: number) => (BigInt(hi) << 32n) | BigInt(lo);
const keyOf = (ctr: number[], key: number[]) => ({
  seed: u64(key[0]!, key[1]!),
  offset: u64(ctr[0]!, ctr[1]!),
  stream: u64(ctr[2]!, ctr[3]!),
});

describe('Philox4x32-10 known-answer vectors', () => {
  for (const [ctr, key, expected] of KAT) {
    const label = ctr.map((x) => x.toString(16)).join(' ');
    it(`native cpu: ${label}`, async () => {
      expect([...(await philoxBits(4, keyOf(ctr, key), { device: 'cpu' }))]).toEqual(expected);
    });
    it(`test reference: ${label}`, () => {
      expect(philox4x32_10(ctr, key)).toEqual(expected);
    });
    it.skipIf(!hasCuda)(`native cuda:0: ${label} ${cudaSkipReason}`, async () => {
      expect([...(await philoxBits(4, keyOf(ctr, key), { device: 'cuda:0' }))]).toEqual(expected);
    });
  }
});

describe('stream layout', () => {
  it('matches the reference for many blocks, a ragged length and a large offset and stream', async () => {
    const key = { seed: 0xdeadbeefcafef00dn, offset: (1n << 40n) + 3n, stream: 0x1234_5678_9abcn };
    const bits = await philoxBits(4099, key, { device: 'cpu' });
    expect([...bits]).toEqual([...referenceBits(4099, key.seed, key.offset, key.stream)]);
  });

  it('wraps the 64-bit block counter', async () => {
    const key = { seed: 5n, offset: (1n << 64n) - 1n, stream: 0n };
    const bits = await philoxBits(8, key, { device: 'cpu' });
    expect([...bits]).toEqual([...referenceBits(8, 5n, (1n << 64n) - 1n, 0n)]);
    // The second block is counter 0 again.
    expect([...bits.slice(4)]).toEqual([...(await philoxBits(4, { seed: 5n, offset: 0n }, { device: 'cpu' }))]);
  });

  it('a draw at offset k continues the draw at offset 0 from block k on', async () => {
    const whole = await philoxBits(64, { seed: 9n }, { device: 'cpu' });
    const tail = await philoxBits(40, { seed: 9n, offset: 6n }, { device: 'cpu' });
    expect([...tail]).toEqual([...whole.slice(24)]);
  });
});

describe('Generator', () => {
  it('advances by ceil(n/4) blocks per draw, so draws never overlap', async () => {
    const g = new Generator(42);
    expect(g.next(10)).toEqual({ seed: 42n, offset: 0n, stream: 0n });
    expect(g.offset).toBe(3n);
    const a = await randn([5], { generator: new Generator(42), device: 'cpu' }).toArray();
    const g2 = new Generator(42);
    g2.next(8); // two blocks
    const b = await randn([5], { generator: g2, device: 'cpu' }).toArray();
    expect([...a]).not.toEqual([...b]);
  });

  it('the same seed gives the same tensor; state round-trips', async () => {
    const g = new Generator(7n, { stream: 3n });
    const first = await randn([3, 5], { generator: g, device: 'cpu' }).toArray();
    const saved = g.getState();
    const second = await randn([3, 5], { generator: g, device: 'cpu' }).toArray();
    const resumed = await randn([3, 5], { generator: Generator.fromState(saved), device: 'cpu' }).toArray();
    expect([...resumed]).toEqual([...second]);
    expect([...(await randn([3, 5], { generator: new Generator(7n, { stream: 3n }), device: 'cpu' }).toArray())]).toEqual([...first]);
  });

  it('manualSeed makes the default generator reproducible', async () => {
    manualSeed(123);
    const a = await rand([9], { device: 'cpu' }).toArray();
    manualSeed(123);
    const b = await rand([9], { device: 'cpu' }).toArray();
    expect([...a]).toEqual([...b]);
  });

  it('rejects bad seeds and ranges with clear errors', () => {
    expect(() => new Generator(-1)).toThrow(/seed: expected a non-negative integer/);
    expect(() => new Generator(1n << 64n)).toThrow(/seed: expected an integer in \[0, 2\^64\)/);
    expect(() => rand([2], { low: 1, high: 1, device: 'cpu' })).toThrow(/low < high/);
  });
});

describe('distributions', () => {
  it('randn has mean 0 and variance 1 within 6 standard errors (n = 2^20)', async () => {
    const n = 1 << 20;
    const x = await randn([n], { generator: new Generator(2024), device: 'cpu' }).toArray();
    let s = 0;
    let s2 = 0;
    for (const v of x) {
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(6 / Math.sqrt(n));
    expect(Math.abs(variance - 1)).toBeLessThan(6 * Math.sqrt(2 / n));
  });

  it('rand stays in [low, high) with mean (low+high)/2', async () => {
    const n = 1 << 18;
    const x = await rand([n], { low: -3, high: 5, generator: new Generator(1), device: 'cpu' }).toArray();
    let s = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      s += v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBeGreaterThanOrEqual(-3);
    expect(hi).toBeLessThan(5);
    // Uniform on [-3, 5): standard deviation 8 / sqrt(12).
    expect(Math.abs(s / n - 1)).toBeLessThan((6 * 8) / Math.sqrt(12 * n));
  });
});

describe.skipIf(!hasCuda)(`cpu and cuda:0 streams ${cudaSkipReason}`, () => {
  it('raw bits are identical', async () => {
    const key = { seed: 0x0123456789abcdefn, offset: 77n, stream: 5n };
    const [cpu, gpu] = await Promise.all([philoxBits(1_000_003, key, { device: 'cpu' }), philoxBits(1_000_003, key, { device: 'cuda:0' })]);
    expect(Buffer.compare(Buffer.from(cpu.buffer), Buffer.from(gpu.buffer))).toBe(0);
  });

  it('normals agree to float rounding', async () => {
    const [cpu, gpu] = await Promise.all([
      randn([1_000_003], { generator: new Generator(11), device: 'cpu' }).toArray(),
      randn([1_000_003], { generator: new Generator(11), device: 'cuda:0' }).toArray(),
    ]);
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(cpu[i]! - gpu[i]!) / Math.max(1, Math.abs(cpu[i]!)));
    expect(worst).toBeLessThanOrEqual(2 ** -22);
  });
});

describe('the synchronous JavaScript Philox (host-side draws)', () => {
  it('gives the known answers and the native stream', async () => {
    const { philoxBlock } = await import('../lib/random.ts');
    for (const [ctr, key, expected] of KAT) {
      const k = keyOf(ctr, key);
      expect(philoxBlock(k.seed, k.offset, k.stream, 0)).toEqual(expected);
    }
    const native = await philoxBits(40, { seed: 77n, offset: 5n, stream: 3n }, { device: 'cpu' });
    const js = Array.from({ length: 10 }, (_, b) => philoxBlock(77n, 5n, 3n, b)).flat();
    expect(js).toEqual([...native]);
  });
});
