// IDX: bytes built by hand (big-endian values), round trips of every type raw and gzipped, files, and
// hostile input: bad magic, forged dimensions, truncation, trailing bytes, truncated or corrupt gzip.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIdx, encodeIdx, readIdx, writeIdx, type IdxData } from '../../lib/data/idx.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-idx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('decodeIdx', () => {
  it('reads hand-built files of every type, big-endian', () => {
    expect(decodeIdx(bytes(0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255))).toEqual({
      type: 'u8',
      shape: [2, 3],
      data: bytes(1, 2, 3, 4, 5, 255),
    });
    expect(decodeIdx(bytes(0, 0, 0x09, 1, 0, 0, 0, 2, 0x7f, 0x80)).data).toEqual(Int8Array.of(127, -128));
    expect(decodeIdx(bytes(0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe)).data).toEqual(Int16Array.of(258, -2));
    expect(decodeIdx(bytes(0, 0, 0x0c, 1, 0, 0, 0, 1, 0x80, 0, 0, 1)).data).toEqual(Int32Array.of(-(2 ** 31) + 1));
    expect(decodeIdx(bytes(0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0)).data).toEqual(Float32Array.of(1, -2.5));
    expect(decodeIdx(bytes(0, 0, 0x0e, 1, 0, 0, 0, 1, 0x3f, 0xd5, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55)).data).toEqual(
      Float64Array.of(1 / 3),
    );
    expect(decodeIdx(bytes(0, 0, 0x08, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28))).toEqual({
      type: 'u8',
      shape: [0, 28, 28],
      data: new Uint8Array(0),
    });
  });

  it('round-trips every type, raw and gzipped, and the result owns its memory', () => {
    const arrays: [IdxData, number[]][] = [
      [Uint8Array.from({ length: 24 }, (_, i) => (i * 37) & 255), [2, 3, 4]],
      [Int8Array.of(-128, -1, 0, 1, 127), [5]],
      [Int16Array.of(-32768, -1, 0, 1, 32767, 1234), [3, 2]],
      [Int32Array.of(-(2 ** 31), -1, 0, 2 ** 31 - 1), [2, 2]],
      [Float32Array.of(0, -0, 1.5, -1e-45, 3.4e38, Infinity, NaN), [7]],
      [Float64Array.of(Math.PI, -1e-300, 1e300), [1, 3]],
    ];
    for (const [data, shape] of arrays)
      for (const gzip of [false, true]) {
        const encoded = encodeIdx({ shape, data }, { gzip });
        expect(encoded[0] === 0x1f && encoded[1] === 0x8b).toBe(gzip);
        const back = decodeIdx(encoded);
        expect(back.shape).toEqual(shape);
        expect(back.data).toEqual(data);
        expect(back.data.constructor).toBe(data.constructor);
        if (!gzip) {
          encoded.fill(0xaa);
          expect(back.data).toEqual(data); // not a view of the input
        }
      }
  });

  it('refuses bad magic numbers and types', () => {
    expect(() => decodeIdx(bytes(1, 0, 8, 1, 0, 0, 0, 0))).toThrow(/bad magic number: expected 00 00 <type.*got 01 00 08 01/);
    expect(() => decodeIdx(bytes(0, 0, 0x0a, 1, 0, 0, 0, 0))).toThrow(/bad magic number.*got 00 00 0a 01/);
    expect(() => decodeIdx(bytes(0x89, 0x50, 0x4e, 0x47))).toThrow(/bad magic/);
    expect(() => decodeIdx(bytes(0, 0, 8))).toThrow(/file too short: expected at least 4 bytes.*got 3/);
    expect(() => decodeIdx(bytes(0, 0, 8, 0))).toThrow(/at least 1 dimension, got 0/);
    const err = (() => {
      try {
        decodeIdx(bytes(9, 9, 9, 9), 'x.idx');
      } catch (e) {
        return e as Error & { code: string };
      }
    })();
    expect(err?.code).toBe('KINTSUGI_INVALID_IDX');
    expect(err?.message).toMatch(/^x\.idx: /);
  });

  it('refuses dimensions that do not match the bytes, before allocating anything', () => {
    // Header truncated.
    expect(() => decodeIdx(bytes(0, 0, 8, 3, 0, 0, 0, 1, 0, 0))).toThrow(
      /3 dimensions need a 16-byte header, got 10 bytes \(truncated\?\)/,
    );
    // A forged header claiming 2^96 values: refused from the sizes alone (an attempt to allocate would throw a RangeError).
    expect(() => decodeIdx(bytes(0, 0, 0x0e, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1, 2, 3))).toThrow(
      /shape \[4294967295, 4294967295, 4294967295\] of f64 needs 633825299671392843082401579016 bytes, the file has 19 \(truncated, or a forged header\)/,
    );
    // One value short; one byte too many.
    expect(() => decodeIdx(bytes(0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3))).toThrow(
      /shape \[2, 2\] of u8 needs 16 bytes, the file has 15 \(truncated\)/,
    );
    expect(() => decodeIdx(bytes(0, 0, 0x0b, 1, 0, 0, 0, 2, 1, 2, 3))).toThrow(/shape \[2\] of i16 needs 12 bytes, the file has 11/);
    expect(() => decodeIdx(bytes(0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3))).toThrow(/needs 10 bytes, the file has 11 \(1 trailing bytes\)/);
  });

  it('explains truncated and corrupt gzip data, and caps what gzip may inflate to', () => {
    const gz = encodeIdx({ shape: [64, 64], data: Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255) }, { gzip: true });
    expect(() => decodeIdx(gz.subarray(0, gz.length - 20), 'a.gz')).toThrow(
      /^a\.gz: gzip data is truncated \(unexpected end of the compressed stream\): download the file again/,
    );
    expect(() => decodeIdx(gz.subarray(0, 12))).toThrow(/gzip data is truncated/);
    const corrupt = gz.slice();
    corrupt[gz.length - 6] ^= 0xff; // the CRC-32 in the trailer
    expect(() => decodeIdx(corrupt)).toThrow(/gzip data is corrupt \(.*check/);
    const bomb = gzipSync(new Uint8Array(1 << 20)); // 1 MiB of zeros in ~1 KB
    expect(() => decodeIdx(bomb, 'bomb.gz', { maxBytes: 1 << 16 })).toThrow(/inflates to more than 65536 bytes \(options\.maxBytes\)/);
    // The gunzipped content is validated like a raw file, and errors say so.
    expect(() => decodeIdx(gzipSync(bytes(0, 0, 8, 1, 0, 0, 0, 5, 1)), 'b.gz')).toThrow(/^b\.gz \(gunzipped\): shape \[5\] of u8 needs/);
  });

  it('validates what it encodes', () => {
    expect(() => encodeIdx({ shape: [2, 2], data: new Uint8Array(3) })).toThrow(/array\.data: shape \[2, 2\] needs 4 values, got 3/);
    expect(() => encodeIdx({ shape: [], data: new Uint8Array(1) })).toThrow(/array\.shape: expected 1 to 255 integers/);
    expect(() => encodeIdx({ shape: [2], data: [1, 2] as unknown as Uint8Array })).toThrow(
      /array\.data: expected a Uint8Array, .*got Array/,
    );
    expect(() => encodeIdx({ shape: [1], data: new Uint16Array(1) as unknown as Uint8Array })).toThrow(/got Uint16Array/);
    expect(() => encodeIdx({ shape: [1], data: new Uint8Array(1), type: 'f32' })).toThrow(
      /array\.type: "f32" does not match array\.data, a Uint8Array \("u8"\)/,
    );
  });
});

describe('readIdx and writeIdx', () => {
  it('writes gzip for .gz names and raw otherwise, and reads both (gzip by content, not name)', async () => {
    const array = { shape: [3, 2, 2], data: Uint8Array.from({ length: 12 }, (_, i) => i * 20) };
    await writeIdx(join(dir, 'a.idx.gz'), array);
    await writeIdx(join(dir, 'a.idx'), array);
    await writeIdx(join(dir, 'gz-without-suffix'), array, { gzip: true });
    const gz = await readFile(join(dir, 'a.idx.gz'));
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    expect((await readFile(join(dir, 'a.idx'))).subarray(0, 4)).toEqual(Buffer.from([0, 0, 8, 3]));
    for (const name of ['a.idx.gz', 'a.idx', 'gz-without-suffix']) expect(await readIdx(join(dir, name))).toEqual({ type: 'u8', ...array });
    expect(await readIdx(gz)).toEqual({ type: 'u8', ...array });
  });

  it('names the file in errors and enforces maxBytes before reading', async () => {
    const path = join(dir, 'truncated.gz');
    const gz = encodeIdx({ shape: [100, 100], data: Uint8Array.from({ length: 10000 }, (_, i) => (i * 31) & 255) }, { gzip: true });
    await writeFile(path, gz.subarray(0, gz.length >> 1));
    await expect(readIdx(path)).rejects.toThrow(`${path}: gzip data is truncated`);
    await expect(readIdx(join(dir, 'a.idx'), { maxBytes: 10 })).rejects.toThrow(/the file is 28 bytes, more than options\.maxBytes \(10\)/);
    await expect(readIdx(join(dir, 'missing.idx'))).rejects.toThrow(/ENOENT/);
    await expect(readIdx(join(dir, 'a.idx'), { maxBytes: 0 })).rejects.toThrow(/options\.maxBytes: expected a positive integer, got 0/);
  });
});
