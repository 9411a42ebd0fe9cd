// safetensors: bytes built by hand, dtype conversions against independent computations, round trips
// (fixed and randomized), every hostile-header case, and the atomic writer under injected failures.
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, type SafetensorsInput } from '../lib/safetensors.ts';

// Lets a test make the next rename fail after the temporary file is complete (everything else is the real fs).
const hooks = vi.hoisted(() => ({ failRename: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (hooks.failRename) throw Object.assign(new Error('injected rename failure'), { code: 'EIO' });
      return real.rename(from, to);
    },
  };
});

const fixtures = new URL('./fixtures/safetensors/', import.meta.url);
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bitsOf = (x: Float32Array): number[] => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];
const f32FromBits = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer);
const le16 = (bits: number[]): Uint8Array => new Uint8Array(new Uint16Array(bits).buffer); // tests run on little-endian hosts
const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** A file from a header object and data bytes, built without the encoder (and without padding). */
function fileOf(header: unknown, data: Uint8Array | number[] = []): Uint8Array {
  return rawFile(new TextEncoder().encode(JSON.stringify(header)), data);
}
function rawFile(headerBytes: Uint8Array, data: Uint8Array | number[] = [], length = BigInt(headerBytes.length)): Uint8Array {
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** Header JSON and data buffer of an encoded file. */
function split(bytes: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

/** The bf16 bits of a float32 by a second method: the two bf16 neighbours by truncation, whichever is
 *  nearer (ties to the even one), with the exponent treated as unbounded so overflow rounds to infinity. */
function referenceBf16(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const bits = f32Bits(x);
  const sign = bits & 0x80000000 ? -1 : 1;
  const lo = (bits >>> 16) & 0x7fff; // magnitude truncated toward zero
  if (lo === 0x7f80) return bits >>> 16; // infinity
  const value = (h: number): number => (h === 0x7f80 ? 2 ** 128 : new Float32Array(new Uint32Array([h << 16]).buffer)[0]!);
  const a = Math.abs(x) - value(lo);
  const b = value(lo + 1) - Math.abs(x);
  const pick = a < b || (a === b && lo % 2 === 0) ? lo : lo + 1;
  return (sign < 0 ? 0x8000 : 0) | pick;
}

describe('bytes', () => {
  it('one F32 tensor matches a file built by hand byte for byte', () => {
    const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes, padded to 56
    const expected = [
      56,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...[...header].map((c) => c.charCodeAt(0)),
      0x20,
      0x20,
      0x00,
      0x00,
      0x80,
      0x3f, // 1.0f
      0x00,
      0x00,
      0x00,
      0xc0, // -2.0f
    ];
    expect(expected.length).toBe(72);
    expect([...encodeSafetensors({ a: { shape: [2], data: new Float32Array([1, -2]) } })]).toEqual(expected);
    const back = decodeSafetensors(new Uint8Array(expected));
    expect(back.metadata).toEqual({});
    expect([...back.tensors]).toEqual([['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) }]]);
  });

  it('pads the header with spaces so the data starts 8-byte aligned, for every header length mod 8', () => {
    for (let len = 1; len <= 16; len++) {
      const bytes = encodeSafetensors({ ['x'.repeat(len)]: { shape: [1], data: new Float32Array([len]) } }, { k: 'v'.repeat(len % 3) });
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const { header, data } = split(bytes);
      expect(header).toMatch(/^\{.*\} {0,7}$/);
      expect(header.trimEnd().length).toBeGreaterThan(n - 8);
      expect(data.length).toBe(4);
      expect(new Float32Array(bytes.buffer.slice(8 + n))[0]).toBe(len);
    }
  });

  it('writes "__metadata__" first and omits it when there is no metadata', () => {
    const t = { w: { shape: [1], data: new Float32Array([0]) } };
    expect(split(encodeSafetensors(t)).header).not.toMatch(/__metadata__/);
    expect(split(encodeSafetensors(t, { step: '3' })).header).toMatch(/^\{"__metadata__":\{"step":"3"\},"w":/);
  });

  it('decodes a fixture written by an independent writer (Python json + struct: F64, F32, BF16, F16, empty)', async () => {
    // Not the safetensors package (Debian's python3 here has neither safetensors nor torch); see make.py.
    const file = decodeSafetensors(new Uint8Array(await readFile(new URL('mixed.safetensors', fixtures))), 'mixed.safetensors');
    expect(file.metadata).toEqual({ format: 'pt', note: 'written by make.py' });
    expect([...file.tensors.keys()]).toEqual(['w64', 'empty', 'w32', 'wbf', 'wh']);
    const t = (k: string) => file.tensors.get(k)!;
    expect([t('w64').dtype, t('w64').shape, [...t('w64').data]]).toEqual(['F64', [3], [Math.fround(0.1), Infinity, -2.5]]);
    expect([t('empty').dtype, t('empty').shape, t('empty').data.length]).toEqual(['F32', [0, 3], 0]);
    expect(bitsOf(t('w32').data)).toEqual([0x3f800000, 0x80000000, 0x40600000, 0x00000001]);
    expect([...t('wbf').data]).toEqual([1, -2, Infinity, 2 ** -133]);
    expect(t('wh').shape).toEqual([2, 4]);
    expect([...t('wh').data]).toEqual([1, -2, 65504, 2 ** -24, Infinity, -Infinity, NaN, -0]);
    expect(Object.is(t('wh').data[7], -0)).toBe(true);
    expect(await readSafetensors(new URL('mixed.safetensors', fixtures).pathname)).toEqual(file);
  });
});

describe('dtype conversions', () => {
  const bf16Bytes = (values: number[]): number[] => {
    const { data } = split(encodeSafetensors({ t: { shape: [values.length], data: new Float32Array(values), dtype: 'BF16' } }));
    return [...new Uint16Array(data.slice().buffer)];
  };

  it('float32 -> BF16 rounds to nearest, ties to even (bits worked out by hand)', () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // 0x3F808000: a tie, 0x3F80 is even
      [1 + 3 * 2 ** -8, 0x3f82], // 0x3F818000: a tie, 0x3F81 is odd -> up
      [1 + 3 * 2 ** -9, 0x3f81], // 0x3F80C000: above the half -> up
      [1 + 2 ** -9, 0x3f80], // 0x3F804000: below the half -> down
      [-(1 + 2 ** -8), 0xbf80],
      [Math.PI, 0x4049], // 0x40490FDB
      [-2, 0xc000],
      [(2 - 2 ** -7) * 2 ** 127, 0x7f7f], // the largest bf16, exact
      [3.4028234663852886e38, 0x7f80], // the largest float32 rounds past the largest bf16: infinity
      [f32FromBits([0x00000001])[0]!, 0x0000], // smallest subnormal rounds to zero
      [f32FromBits([0x00008000])[0]!, 0x0000], // subnormal tie -> even (zero)
      [f32FromBits([0x00018000])[0]!, 0x0002], // subnormal tie -> even (up)
      [2 ** -133, 0x0001], // smallest bf16 subnormal, exact
      [0, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
    ];
    expect(bf16Bytes(cases.map((c) => c[0])).map((b) => b.toString(16))).toEqual(cases.map((c) => c[1].toString(16)));
  });

  it('float32 -> BF16 keeps NaN a NaN (an all-ones mantissa must not round into the sign bit)', () => {
    for (const h of bf16Bytes([NaN, -NaN, ...f32FromBits([0x7f800001, 0xffc00000, 0x7fffffff])])) {
      expect(h & 0x7f80).toBe(0x7f80);
      expect(h & 0x007f).not.toBe(0);
    }
  });

  it('float32 -> BF16 agrees with a nearest-neighbour computation on 20,000 random bit patterns', () => {
    const rand = mulberry32(7);
    const values = f32FromBits(Array.from({ length: 20000 }, () => (rand() * 2 ** 32) >>> 0));
    const got = bf16Bytes([...values]);
    for (let i = 0; i < values.length; i++) {
      if (Number.isNaN(values[i])) expect(got[i]! & 0x7fff).toBeGreaterThan(0x7f80);
      else if (got[i] !== referenceBf16(values[i]!))
        expect.fail(`bf16(${values[i]}) = ${got[i]!.toString(16)}, expected ${referenceBf16(values[i]!).toString(16)}`);
    }
  });

  it('BF16 -> float32 is exact', () => {
    const bits = [0x3f80, 0xc000, 0x7f7f, 0x0001, 0x8000, 0x7f80, 0xff80, 0x4049, 0xffc0];
    const data = decodeSafetensors(fileOf({ t: { dtype: 'BF16', shape: [9], data_offsets: [0, 18] } }, le16(bits))).tensors.get('t')!.data;
    expect(bitsOf(data)).toEqual(bits.map((b) => (b << 16) >>> 0));
  });

  it('F16 -> float32 is exact for known patterns, subnormals, infinities and NaN', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14],
      [0x3555, 0.333251953125],
      [0x3bff, 0.99951171875],
      [0x3c01, 1 + 2 ** -10],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
      [0x8000, -0],
      [0x8001, -(2 ** -24)],
      [0x7e00, NaN],
      [0xfc01, NaN],
    ];
    const header = { h: { dtype: 'F16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } };
    const data = decodeSafetensors(fileOf(header, le16(cases.map((c) => c[0])))).tensors.get('h')!.data;
    cases.forEach(([bits, value], i) => expect([bits.toString(16), data[i]]).toEqual([bits.toString(16), value]));
    expect(Object.is(data[12], -0)).toBe(true);
  });

  it('F16 -> float32 is strictly increasing over all positive finite patterns, in exact steps', () => {
    const n = 0x7c00;
    const data = decodeSafetensors(
      fileOf({ h: { dtype: 'F16', shape: [n], data_offsets: [0, 2 * n] } }, le16([...Array(n).keys()])),
    ).tensors.get('h')!.data;
    for (let h = 1; h < n; h++) {
      const step = 2 ** (Math.max(h >>> 10, 1) - 25); // the spacing within h's binade (subnormals: 2^-24)
      if (data[h]! - data[h - 1]! !== step && data[h]! - data[h - 1]! !== step / 2)
        expect.fail(`F16 0x${h.toString(16)}: step ${data[h]! - data[h - 1]!}`);
    }
  });

  it('F64 -> float32 rounds like Math.fround (overflow to infinity, underflow to zero)', () => {
    const values = [0.1, 1e300, -1e300, 1e-50, -2.5, 2 ** -149, NaN, 1 / 3];
    const data = new Uint8Array(new Float64Array(values).buffer);
    const out = decodeSafetensors(fileOf({ d: { dtype: 'F64', shape: [2, 4], data_offsets: [0, 64] } }, data)).tensors.get('d')!;
    expect(out.shape).toEqual([2, 4]);
    expect([...out.data]).toEqual(values.map(Math.fround));
  });
});

describe('round trips', () => {
  it('F32 is bit exact (-0, infinities, subnormals, extremes) and NaN stays NaN', () => {
    const bits = [0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3f800001, 0x7fc00000, 0x7f800001];
    const data = f32FromBits(bits);
    const back = decodeSafetensors(encodeSafetensors({ t: { shape: [3, 3], data } })).tensors.get('t')!;
    expect(bitsOf(back.data).slice(0, 7)).toEqual(bits.slice(0, 7));
    expect(Number.isNaN(back.data[7]) && Number.isNaN(back.data[8])).toBe(true);
  });

  it('BF16 values come back as the rounded value', () => {
    const back = decodeSafetensors(
      encodeSafetensors({ t: { shape: [3], data: new Float32Array([1 + 2 ** -8, Math.PI, NaN]), dtype: 'BF16' } }),
    );
    expect(back.tensors.get('t')).toEqual({ dtype: 'BF16', shape: [3], data: new Float32Array([1, 3.140625, NaN]) });
  });

  it('keeps insertion order (Map), including integer-like names, scalars and zero-sized tensors', () => {
    const tensors = new Map<string, SafetensorsInput>([
      ['10', { shape: [2], data: new Float32Array([1, 2]) }],
      ['2', { shape: [], data: new Float32Array([3]) }],
      ['z', { shape: [0, 4], data: new Float32Array(0) }],
      ['a.b', { shape: [1, 1], data: new Float32Array([4]), dtype: 'BF16' }],
    ]);
    const back = decodeSafetensors(encodeSafetensors(tensors));
    expect([...back.tensors.keys()]).toEqual(['10', '2', 'z', 'a.b']);
    expect(back.tensors.get('2')).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([3]) });
    expect(back.tensors.get('z')).toEqual({ dtype: 'F32', shape: [0, 4], data: new Float32Array(0) });
  });

  it('writes the viewed elements of a Float32Array that is a subarray', () => {
    const whole = new Float32Array([9, 1, 2, 3, 9]);
    const back = decodeSafetensors(encodeSafetensors({ v: { shape: [3], data: whole.subarray(1, 4) } }));
    expect([...back.tensors.get('v')!.data]).toEqual([1, 2, 3]);
  });

  it('decodes a Node Buffer and a view at an unaligned offset of a larger buffer', async () => {
    const bytes = encodeSafetensors({ h: { shape: [1], data: new Float32Array([7]) }, a: { shape: [2], data: new Float32Array([1, 2]) } });
    const path = join(dir, 'buffer.safetensors');
    await writeFile(path, bytes);
    const buffer = await readFile(path); // Buffer.prototype.slice returns a view: the decoder must copy
    expect([...decodeSafetensors(buffer).tensors.get('a')!.data]).toEqual([1, 2]);
    const pooled = Buffer.from(bytes); // small Buffers share a pool, at a non-zero offset
    expect([...decodeSafetensors(pooled).tensors.get('a')!.data]).toEqual([1, 2]);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect([...decodeSafetensors(shifted.subarray(3)).tensors.get('a')!.data]).toEqual([1, 2]);
  });

  it('decoded tensors do not alias the input bytes', () => {
    const bytes = encodeSafetensors({ a: { shape: [2], data: new Float32Array([1, 2]) } });
    const data = decodeSafetensors(bytes).tensors.get('a')!.data;
    bytes.fill(0);
    expect([...data]).toEqual([1, 2]);
  });

  it('metadata round-trips (unicode, quotes, empty strings, a "__proto__" key)', () => {
    const metadata = {
      ['__proto__']: 'not a prototype',
      'kintsugi.config': JSON.stringify({ channels: [64, 128], lr: 2e-4 }),
      step: '1200',
      note: 'ünïcode "quoted" \\ \n',
      empty: '',
    };
    expect(decodeSafetensors(encodeSafetensors({ w: { shape: [1], data: new Float32Array([1]) } }, metadata)).metadata).toEqual(metadata);
  });

  it('random files (seeded): names, shapes, dtypes, values and metadata come back as written', async () => {
    const rand = mulberry32(2026);
    const int = (n: number) => Math.floor(rand() * n);
    const chars = 'abcXYZ019._-/ "\\é→😀';
    for (let file = 0; file < 150; file++) {
      const tensors = new Map<string, SafetensorsInput>();
      const count = 1 + int(6);
      while (tensors.size < count) {
        const name = 'p' + Array.from({ length: int(12) }, () => [...chars][int([...chars].length)]).join('');
        const shape = Array.from({ length: int(5) }, () => int(rand() < 0.1 ? 1 : 6));
        const n = shape.reduce((a, b) => a * b, 1);
        const data = f32FromBits(Array.from({ length: n }, () => (rand() * 2 ** 32) >>> 0));
        tensors.set(name, { shape, data, dtype: rand() < 0.5 ? 'F32' : 'BF16' });
      }
      const metadata = Object.fromEntries(Array.from({ length: int(3) }, (_, i) => [`k${i}${chars[int(chars.length)]}`, String(rand())]));
      const bytes = encodeSafetensors(tensors, metadata);
      const back = file % 10 === 0 ? await roundTripOnDisk(tensors, metadata) : decodeSafetensors(bytes);
      expect(back.metadata).toEqual(metadata);
      expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
      for (const [name, t] of tensors) {
        const got = back.tensors.get(name)!;
        expect([got.dtype, got.shape]).toEqual([t.dtype, t.shape]);
        const want = t.dtype === 'BF16' ? [...t.data].map((x) => (Number.isNaN(x) ? NaN : referenceBf16(x) << 16)) : bitsOf(t.data);
        bitsOf(got.data).forEach((b, i) => {
          if (Number.isNaN(want[i])) expect(Number.isNaN(got.data[i])).toBe(true);
          else if (Number.isNaN(t.data[i]!)) expect(Number.isNaN(got.data[i])).toBe(true);
          else if (b !== want[i]! >>> 0) expect.fail(`${name}[${i}]: bits ${b.toString(16)}, expected ${(want[i]! >>> 0).toString(16)}`);
        });
      }
    }
  });
});

async function roundTripOnDisk(tensors: Map<string, SafetensorsInput>, metadata: Record<string, string>) {
  const path = join(dir, 'random.safetensors');
  await writeSafetensors(path, tensors, metadata);
  return readSafetensors(path);
}

describe('hostile or truncated files', () => {
  const src = 'evil.safetensors';
  const bad = (bytes: Uint8Array, message: RegExp) => {
    let error: unknown;
    try {
      decodeSafetensors(bytes, src);
    } catch (e) {
      error = e;
    }
    expect(error, `expected an error matching ${message}`).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^evil\.safetensors: /);
    expect((error as Error).message).toMatch(message);
    expect((error as { code?: string }).code).toBe('KINTSUGI_INVALID_SAFETENSORS');
  };
  const f32x2 = new Uint8Array(new Float32Array([1, 2]).buffer);
  const entry = (over: object) => ({ dtype: 'F32', shape: [2], data_offsets: [0, 8], ...over });

  it('too short, or a header length beyond the file or the limit (never allocated)', () => {
    bad(new Uint8Array(0), /file too short: expected at least 8 bytes \(the header length\), got 0/);
    bad(new Uint8Array(7), /file too short: .*got 7/);
    bad(rawFile(new Uint8Array(4), [], 2n ** 63n), /header length 9223372036854775808 exceeds the limit of 104857600 bytes/);
    bad(rawFile(new Uint8Array(4), [], 2n ** 64n - 1n), /header length 18446744073709551615 exceeds the limit/);
    bad(rawFile(new Uint8Array(4), [], 100n * 2n ** 20n + 1n), /header length 104857601 exceeds the limit/);
    bad(
      rawFile(new TextEncoder().encode('{}'), [], 10n),
      /header length 10 exceeds the 2 bytes after the length field \(truncated file\?\)/,
    );
  });

  it('a header that is not UTF-8 JSON or not an object', () => {
    bad(rawFile(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /header is not valid UTF-8 JSON/);
    bad(rawFile(new TextEncoder().encode('{"a":')), /header is not valid UTF-8 JSON/);
    bad(rawFile(new Uint8Array(0)), /header is not valid UTF-8 JSON/);
    bad(fileOf([1, 2]), /header: expected a JSON object, got \[1,2\]/);
    bad(fileOf(null), /header: expected a JSON object, got null/);
    bad(fileOf('x'), /header: expected a JSON object, got "x"/);
  });

  it('an entry that is not an object or lacks a field', () => {
    bad(fileOf({ a: 5 }), /tensor "a": expected an object \{dtype, shape, data_offsets\}, got 5/);
    bad(fileOf({ a: [1] }), /tensor "a": expected an object/);
    bad(fileOf({ a: { shape: [2], data_offsets: [0, 8] } }, f32x2), /tensor "a": missing "dtype"/);
    bad(fileOf({ a: { dtype: 'F32', data_offsets: [0, 8] } }, f32x2), /tensor "a": missing "shape"/);
    bad(fileOf({ a: { dtype: 'F32', shape: [2] } }, f32x2), /tensor "a": missing "data_offsets"/);
  });

  it('an unknown or unsupported dtype', () => {
    bad(fileOf({ a: entry({ dtype: 'I64' }) }, f32x2), /tensor "a": unsupported dtype "I64" \(expected F32, BF16, F16 or F64\)/);
    bad(fileOf({ a: entry({ dtype: 'f32' }) }, f32x2), /tensor "a": unsupported dtype "f32"/);
    bad(fileOf({ a: entry({ dtype: 'toString' }) }, f32x2), /tensor "a": unsupported dtype "toString"/);
    bad(fileOf({ a: entry({ dtype: 4 }) }, f32x2), /tensor "a": unsupported dtype 4/);
  });

  it('a shape that is not an array of non-negative safe integers, or whose product passes 2^53', () => {
    for (const shape of [2, [-1], [1.5], ['2'], [null], [2 ** 53], [2 ** 30, 2 ** 30, 2 ** 30]])
      bad(
        fileOf({ a: entry({ shape }) }, f32x2),
        new RegExp(
          `tensor "a": shape must be an array of non-negative integers with a product below 2\\^53, got ${escape(JSON.stringify(shape))}`,
        ),
      );
  });

  it('data_offsets that are not two ordered non-negative safe integers', () => {
    for (const offsets of [8, [0], [0, 8, 8], [-1, 7], [0.5, 8], ['0', 8], [8, 0], [0, 2 ** 53]])
      bad(
        fileOf({ a: entry({ data_offsets: offsets }) }, f32x2),
        new RegExp(
          `tensor "a": data_offsets must be \\[begin, end\\] with 0 <= begin <= end safe integers, got ${escape(JSON.stringify(offsets))}`,
        ),
      );
  });

  it('a range beyond the data buffer, or of the wrong size for the dtype and shape', () => {
    bad(fileOf({ a: entry({}) }, f32x2.subarray(0, 6)), /tensor "a": data_offsets \[0,8\] end beyond the 6-byte data buffer/);
    bad(
      fileOf({ a: entry({ data_offsets: [0, 4] }) }, f32x2),
      /tensor "a": data_offsets \[0,4\] span 4 bytes, but F32 shape \[2\] needs 8/,
    );
    bad(
      fileOf({ a: entry({ dtype: 'F16', shape: [3] }) }, f32x2),
      /tensor "a": data_offsets \[0,8\] span 8 bytes, but F16 shape \[3\] needs 6/,
    );
  });

  it('overlapping ranges, holes and trailing bytes (the tensors must tile the buffer exactly)', () => {
    const twelve = new Uint8Array(12);
    bad(
      fileOf({ a: entry({}), b: entry({ data_offsets: [4, 12] }) }, twelve),
      /tensor "b": bytes \[4, 12\) overlap tensor "a", which ends at 8/,
    );
    bad(fileOf({ a: entry({}), b: entry({}) }, f32x2), /tensor "b": bytes \[0, 8\) overlap tensor "a"/);
    const one = { dtype: 'F32', shape: [1] };
    bad(
      fileOf({ a: { ...one, data_offsets: [0, 4] }, b: { ...one, data_offsets: [8, 12] } }, twelve),
      /tensor "b": bytes \[4, 8\) before it belong to no tensor/,
    );
    bad(fileOf({ a: { ...one, data_offsets: [4, 8] } }, f32x2), /tensor "a": bytes \[0, 4\) before it belong to no tensor/);
    bad(fileOf({ a: entry({}) }, twelve), /bytes \[8, 12\) at the end of the data buffer belong to no tensor/);
    bad(fileOf({}, [0]), /bytes \[0, 1\) at the end of the data buffer belong to no tensor/);
  });

  it('__metadata__ that is not an object of strings', () => {
    for (const [metadata, message] of [
      ['x', /__metadata__: expected an object of strings, got "x"/],
      [null, /__metadata__: expected an object of strings, got null/],
      [['a'], /__metadata__: expected an object of strings, got \["a"\]/],
      [{ step: 3 }, /__metadata__\["step"\]: expected a string, got 3/],
      [{ c: { nested: 'x' } }, /__metadata__\["c"\]: expected a string, got \{"nested":"x"\}/],
    ] as const)
      bad(fileOf({ __metadata__: metadata, a: entry({}) }, f32x2), message);
  });

  it('quotes long hostile values only in part', () => {
    bad(fileOf({ a: entry({ shape: Array(1e5).fill(-1) }) }, f32x2), /^.{0,250}got \[-1,-1,[-1,]*\.\.\.$/);
  });

  it('readSafetensors names the path for truncated files', async () => {
    const good = encodeSafetensors({ weight: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
    const path = join(dir, 'truncated.safetensors');
    await writeFile(path, good.subarray(0, good.length - 3));
    await expect(readSafetensors(path)).rejects.toThrow(
      /truncated\.safetensors: tensor "weight": data_offsets \[0,16\] end beyond the 13-byte data buffer/,
    );
    await writeFile(path, good.subarray(0, 20));
    await expect(readSafetensors(path)).rejects.toThrow(
      /truncated\.safetensors: header length 64 exceeds the 12 bytes after the length field/,
    );
    await writeFile(path, good.subarray(0, 3));
    await expect(readSafetensors(path)).rejects.toThrow(/truncated\.safetensors: file too short: .*got 3/);
    await expect(readSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/ENOENT.*missing\.safetensors/);
  });
});

describe('encoder validation', () => {
  const ok = { shape: [2], data: new Float32Array(2) };
  it('names the tensor, the expected and the actual value', () => {
    expect(() => encodeSafetensors({ '': ok })).toThrow('tensor name: expected a non-empty string other than "__metadata__", got ""');
    expect(() => encodeSafetensors({ __metadata__: ok })).toThrow(/tensor name: .* got "__metadata__"/);
    expect(() => encodeSafetensors(new Map([[3 as unknown as string, ok]]))).toThrow(/tensor name: .* got 3/);
    expect(() => encodeSafetensors({ w: { ...ok, shape: [2, -1] } })).toThrow(
      'tensors["w"].shape: expected an array of non-negative integers with a product below 2^53, got [2,-1]',
    );
    expect(() => encodeSafetensors({ w: { ...ok, shape: [1.5] } })).toThrow(/tensors\["w"\]\.shape: .* got \[1.5\]/);
    expect(() => encodeSafetensors({ w: { ...ok, shape: [3] } })).toThrow('tensors["w"].data: shape [3] needs 3 values, got 2');
    expect(() => encodeSafetensors({ w: { ...ok, data: new Float64Array(2) as never } })).toThrow(
      'tensors["w"].data: expected a Float32Array, got Float64Array',
    );
    expect(() => encodeSafetensors({ w: { ...ok, data: [1, 2] as never } })).toThrow(
      'tensors["w"].data: expected a Float32Array, got array',
    );
    expect(() => encodeSafetensors({ w: { ...ok, dtype: 'F16' as never } })).toThrow(
      'tensors["w"].dtype: expected "F32" or "BF16", got "F16"',
    );
    expect(() => encodeSafetensors({ w: null as never })).toThrow('tensors["w"]: expected {shape, data, dtype?}, got null');
    expect(() => encodeSafetensors(null as never)).toThrow(/tensors: expected a Map or an object/);
    expect(() => encodeSafetensors({ w: ok }, { step: 3 as never })).toThrow('metadata["step"]: expected a string, got number 3');
    expect(() => encodeSafetensors({ w: ok }, [] as never)).toThrow(/metadata: expected an object of strings, got \[\]/);
  });

  it('accepts NaN and infinities (checkpoints may hold any float)', () => {
    expect(() => encodeSafetensors({ w: { shape: [2], data: new Float32Array([NaN, -Infinity]) } })).not.toThrow();
  });
});

describe('atomic write', () => {
  const leftovers = async (d: string) => (await readdir(d)).filter((f) => f.includes('.tmp-'));
  const one = (v: number) => ({ w: { shape: [1], data: new Float32Array([v]) } });

  it('writes, replaces, and leaves no temporary file', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, one(1), { step: '1' });
    await writeSafetensors(path, one(2), { step: '2' });
    expect(await readSafetensors(path)).toEqual({
      tensors: new Map([['w', { dtype: 'F32', shape: [1], data: new Float32Array([2]) }]]),
      metadata: { step: '2' },
    });
    expect(new Uint8Array(await readFile(path))).toEqual(encodeSafetensors(one(2), { step: '2' }));
    expect(await leftovers(dir)).toEqual([]);
  });

  it('into a directory that does not exist: a clear error and no temporary file', async () => {
    const path = join(dir, 'no', 'such', 'dir', 'model.safetensors');
    await expect(writeSafetensors(path, one(1))).rejects.toThrow(
      /model\.safetensors: cannot create a temporary file in .*no\/such\/dir: ENOENT/,
    );
    expect(await leftovers(dir)).toEqual([]);
  });

  it('invalid input leaves an existing file untouched and creates nothing', async () => {
    const d = await mkdtemp(join(dir, 'invalid-'));
    const path = join(d, 'model.safetensors');
    await writeSafetensors(path, one(1));
    const before = await readFile(path);
    await expect(writeSafetensors(path, { w: { shape: [2], data: new Float32Array(1) } })).rejects.toThrow(/needs 2 values, got 1/);
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(d)).toEqual(['model.safetensors']);
  });

  it('a failure after the temporary file is complete (rename) removes it and keeps the old file', async () => {
    const d = await mkdtemp(join(dir, 'rename-'));
    const path = join(d, 'model.safetensors');
    await writeSafetensors(path, one(1));
    const before = await readFile(path);
    hooks.failRename = true;
    try {
      await expect(writeSafetensors(path, one(2))).rejects.toThrow(
        /model\.safetensors: write failed, any previous file is unchanged: injected rename failure/,
      );
    } finally {
      hooks.failRename = false;
    }
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(d)).toEqual(['model.safetensors']);
  });

  it('a target that is a directory: the real rename fails, the temporary file is removed', async () => {
    const d = await mkdtemp(join(dir, 'isdir-'));
    await mkdir(join(d, 'model.safetensors'));
    await expect(writeSafetensors(join(d, 'model.safetensors'), one(1))).rejects.toThrow(
      /write failed, any previous file is unchanged: .*(EISDIR|ENOTEMPTY|EEXIST)/,
    );
    expect(await readdir(d)).toEqual(['model.safetensors']);
  });

  it('concurrent writers to one path: the result is one of them, whole', async () => {
    const d = await mkdtemp(join(dir, 'race-'));
    const path = join(d, 'model.safetensors');
    const big = (v: number) => ({ w: { shape: [1 << 16], data: new Float32Array(1 << 16).fill(v) } });
    await Promise.all([1, 2, 3, 4].map((v) => writeSafetensors(path, big(v))));
    const data = (await readSafetensors(path)).tensors.get('w')!.data;
    expect([1, 2, 3, 4]).toContain(data[0]);
    expect(data.every((x) => x === data[0])).toBe(true);
    expect(await readdir(d)).toEqual(['model.safetensors']);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A small seeded PRNG (uniform in [0, 1)). */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
