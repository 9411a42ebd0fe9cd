// .npy: files written by NumPy (test/fixtures/data/make_fixtures.py), our encoder's bytes against
// NumPy's, hand-built headers, and malformed or unsupported files.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../../lib/data/npy.ts';

const fixtures = fileURLToPath(new URL('../fixtures/data/', import.meta.url));
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A .npy file from a header text and data bytes (version 1.0 unless told), without our encoder. */
function npyOf(header: string, data: ArrayLike<number> = [], version = 1): Uint8Array {
  const text = new TextEncoder().encode(header);
  const prefix = version === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(text, prefix);
  out.set(data, prefix + text.length);
  return out;
}
const f4bytes = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer); // tests run on little-endian hosts
const a2x3 = Float32Array.from([0, 1, 2, 3, 4, 5], (v) => (v - 2.5) / 4);

describe('NumPy-written files', () => {
  it('reads float32 (versions 1.0 and 2.0), a float64 scalar and uint8', async () => {
    for (const name of ['f4-2x3.npy', 'f4-v2.npy'])
      expect(await readNpy(join(fixtures, name))).toEqual({ dtype: 'float32', shape: [2, 3], data: a2x3 });
    expect(await readNpy(join(fixtures, 'f8-scalar.npy'))).toEqual({ dtype: 'float64', shape: [], data: Float64Array.of(-1 / 3) });
    expect(await readNpy(join(fixtures, 'u1-5.npy'))).toEqual({ dtype: 'uint8', shape: [5], data: Uint8Array.of(0, 1, 127, 128, 255) });
  });

  it('writes the same bytes as np.save', async () => {
    expect(encodeNpy({ shape: [2, 3], data: a2x3 })).toEqual(new Uint8Array(await readFile(join(fixtures, 'f4-2x3.npy'))));
    expect(encodeNpy({ shape: [], data: Float64Array.of(-1 / 3) })).toEqual(
      new Uint8Array(await readFile(join(fixtures, 'f8-scalar.npy'))),
    );
    expect(encodeNpy({ shape: [5], data: Uint8Array.of(0, 1, 127, 128, 255) })).toEqual(
      new Uint8Array(await readFile(join(fixtures, 'u1-5.npy'))),
    );
  });

  it('refuses Fortran order, big-endian and other dtypes, saying how to fix the file', async () => {
    await expect(readNpy(join(fixtures, 'f4-fortran.npy'))).rejects.toThrow(
      /f4-fortran\.npy: fortran_order is True \(column-major\) and is not supported: save a C-ordered array, e\.g\. np\.save\(path, np\.ascontiguousarray\(a\)\)/,
    );
    await expect(readNpy(join(fixtures, 'f4-big-endian.npy'))).rejects.toThrow(
      /big-endian dtype >f4 is not supported: save it little-endian, e\.g\. np\.save\(path, a\.astype\('<f4'\)\)/,
    );
    await expect(readNpy(join(fixtures, 'i8-3.npy'))).rejects.toThrow(
      /unsupported dtype "<i8": expected '<f4' \(float32\), '<f8' \(float64\) or '\|u1' \(uint8\)/,
    );
  });
});

describe('decodeNpy', () => {
  it('reads hand-built headers: double quotes, no trailing comma, key order, Python 2 longs, version 2.0 and 3.0', () => {
    const data = f4bytes(1.5, -2);
    for (const header of [
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n",
      '{"shape": (2,), "descr": "<f4", "fortran_order": False}',
      "{'descr':'<f4','fortran_order':False,'shape':(1, 2L)}     \n",
    ])
      expect(decodeNpy(npyOf(header, data)).data).toEqual(Float32Array.of(1.5, -2));
    expect(decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2L)}", data)).shape).toEqual([1, 2]);
    for (const version of [2, 3])
      expect(decodeNpy(npyOf("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", [], version)).shape).toEqual([0, 4]);
    // Data at an odd offset still yields an aligned, independent array.
    const odd = npyOf("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", new Uint8Array(Float64Array.of(Math.E).buffer));
    const back = decodeNpy(odd);
    odd.fill(0);
    expect(back.data).toEqual(Float64Array.of(Math.E));
  });

  it('round-trips every dtype and shape, data starting at a multiple of 64', () => {
    for (const [shape, data] of [
      [[4, 1, 2], Float32Array.from({ length: 8 }, (_, i) => i / 7 - 0.3)],
      [[3], Float64Array.of(1e-300, -0, Infinity)],
      [[2, 2, 2, 2], Uint8Array.from({ length: 16 }, (_, i) => i * 16)],
      [[0], new Float32Array(0)],
    ] as const) {
      const bytes = encodeNpy({ shape, data });
      expect(new DataView(bytes.buffer).getUint16(8, true) + 10).toBe(bytes.length - data.byteLength);
      expect((bytes.length - data.byteLength) % 64).toBe(0);
      expect(decodeNpy(bytes)).toEqual({
        dtype: data instanceof Float32Array ? 'float32' : data instanceof Float64Array ? 'float64' : 'uint8',
        shape,
        data,
      });
    }
  });

  it('refuses malformed files', () => {
    const ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    expect(() => decodeNpy(new Uint8Array(20), 'z.npy')).toThrow(/^z\.npy: not a \.npy file: expected the magic \\x93NUMPY/);
    expect(() => decodeNpy(npyOf(ok, f4bytes(1)))).toThrow(
      /shape \(2\) of float32 needs 8 data bytes, the file has 4 after the header \(truncated\)/,
    );
    expect(() => decodeNpy(npyOf(ok, f4bytes(1, 2, 3)))).toThrow(/needs 8 data bytes, the file has 12 after the header \(trailing bytes\)/);
    const lying = npyOf(ok, f4bytes(1, 2));
    new DataView(lying.buffer).setUint16(8, 5000, true);
    expect(() => decodeNpy(lying)).toThrow(/header length 5000 runs past the end of the 75-byte file \(truncated\)/);
    expect(() => decodeNpy(npyOf('x'.repeat(20000), [], 2))).toThrow(/header length 20000 exceeds the limit of 10000 bytes/);
    const v9 = npyOf(ok, f4bytes(1, 2));
    v9[6] = 9;
    expect(() => decodeNpy(v9)).toThrow(/unsupported \.npy version 9\.0 \(expected 1\.0, 2\.0 or 3\.0\)/);
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'shape': (2,)}"))).toThrow(
      /expected exactly the keys descr, fortran_order, shape, got descr, shape/,
    );
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"))).toThrow(
      /got descr, fortran_order, shape, x/,
    );
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'descr': '<f4'}"))).toThrow(/duplicate key "descr"/);
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"))).toThrow(
      /shape must be a tuple of at most 32 non-negative integers, got \[-1\]/,
    );
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"))).toThrow(
      /fortran_order must be True or False, got 0/,
    );
    expect(() => decodeNpy(npyOf("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"))).toThrow(/is a structured dtype/);
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os')}"))).toThrow(
      /header: unexpected text at character/,
    );
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} extra"))).toThrow(
      /unexpected text after the dict/,
    );
    expect(() => decodeNpy(npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': ((((((((((2,))))))))))}"))).toThrow(/nesting too deep/);
    expect(() => decodeNpy(npyOf("{'descr: '<f4'}"))).toThrow(/header: expected ":"/);
    // A forged shape: refused from the sizes alone.
    expect(() => decodeNpy(npyOf("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", [1]))).toThrow(
      /needs 633825300114114700748351602688 data bytes, the file has 1/,
    );
    try {
      decodeNpy(npyOf(ok));
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('KINTSUGI_INVALID_NPY');
    }
  });
});

describe('encodeNpy and writeNpy', () => {
  it('validate input and write atomically', async () => {
    expect(() => encodeNpy({ shape: [2], data: new Int32Array(2) as unknown as Uint8Array })).toThrow(
      /array\.data: expected a Float32Array, Float64Array or Uint8Array, got Int32Array/,
    );
    expect(() => encodeNpy({ shape: [3], data: new Float32Array(2) })).toThrow(/array\.data: shape \[3\] needs 3 values, got 2/);
    expect(() => encodeNpy({ shape: [1.5], data: new Float32Array(2) })).toThrow(
      /array\.shape: expected at most 32 non-negative integers, got \[1\.5\]/,
    );
    const path = join(dir, 'a.npy');
    await writeNpy(path, { shape: [2, 3], data: a2x3 });
    expect(await readNpy(path)).toEqual({ dtype: 'float32', shape: [2, 3], data: a2x3 });
    await expect(readNpy(path, { maxBytes: 100 })).rejects.toThrow(/the file is 152 bytes, more than options\.maxBytes \(100\)/);
  });
});
