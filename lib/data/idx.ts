// IDX, the format of MNIST and its relatives (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"):
// two zero bytes, a type code, the number of dimensions n, n big-endian uint32 sizes, then the values,
// big-endian, in C order. Files are often gzipped (.gz); both are read. Reading treats the file as
// hostile: the header's sizes must account for every byte of the file exactly before any array is
// made, so a forged header can never make us allocate more than the file holds, and gzip output is
// capped (a small .gz can inflate to gigabytes).
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';
import { readRegularFile } from './read-file.ts';
import { writeFileAtomic } from '../write-atomic.ts';

export type IdxType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  type: IdxType;
  shape: number[];
  /** The values in C order, in the type's natural typed array (host byte order). */
  data: IdxData;
}

export interface IdxReadOptions {
  /** The most bytes a file may hold once gunzipped (default 1 GiB; the largest EMNIST file is ~550 MB). */
  maxBytes?: number;
}

const TYPES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: 'u8', size: 1 },
  0x09: { type: 'i8', size: 1 },
  0x0b: { type: 'i16', size: 2 },
  0x0c: { type: 'i32', size: 4 },
  0x0d: { type: 'f32', size: 4 },
  0x0e: { type: 'f64', size: 8 },
};
const CODES: Record<IdxType, number> = { u8: 0x08, i8: 0x09, i16: 0x0b, i32: 0x0c, f32: 0x0d, f64: 0x0e };
const DEFAULT_MAX_BYTES = 2 ** 30;
const gunzipAsync = promisify(gunzip);

function fail(source: string, message: string): Error {
  return Object.assign(new Error(`${source}: ${message}`), { code: 'KINTSUGI_INVALID_IDX' });
}

const hex = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');

function checkMaxBytes(options: IdxReadOptions): number {
  const max = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(max) || max < 1)
    throw new TypeError(`options.maxBytes: expected a positive integer, got ${JSON.stringify(max)}`);
  return max;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Explains a zlib failure: a truncated download is the usual cause, so say so. */
function gunzipError(e: unknown, source: string, maxBytes: number): Error {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ERR_BUFFER_TOO_LARGE')
    return fail(source, `gzip data inflates to more than ${maxBytes} bytes (options.maxBytes); not an IDX file this library expects`);
  if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message))
    return fail(source, `gzip data is truncated (unexpected end of the compressed stream): download the file again`);
  return fail(source, `gzip data is corrupt (${err.message})`);
}

/** Decodes IDX bytes, raw or gzipped; `source` names them in error messages. Shares no memory with `bytes`. */
export function decodeIdx(bytes: Uint8Array, source = '<idx bytes>', options: IdxReadOptions = {}): IdxArray {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, got ${typeof bytes}`);
  const maxBytes = checkMaxBytes(options);
  if (isGzip(bytes)) {
    let raw: Uint8Array;
    try {
      raw = gunzipSync(bytes, { maxOutputLength: maxBytes });
    } catch (e) {
      throw gunzipError(e, source, maxBytes);
    }
    return parseRaw(raw, `${source} (gunzipped)`);
  }
  if (bytes.length > maxBytes) throw fail(source, `${bytes.length} bytes exceed options.maxBytes (${maxBytes})`);
  return parseRaw(bytes, source);
}

/** Reads an IDX file (gzipped when it starts with 1f 8b, whatever its name), or decodes bytes already in memory. */
export async function readIdx(source: string | Uint8Array, options: IdxReadOptions = {}): Promise<IdxArray> {
  const maxBytes = checkMaxBytes(options);
  if (source instanceof Uint8Array) return decodeIdx(source, '<idx bytes>', options);
  if (typeof source !== 'string' || source === '')
    throw new TypeError(`source: expected a file name or a Uint8Array, got ${JSON.stringify(source) ?? typeof source}`);
  const bytes = await readRegularFile(source, maxBytes, (size) =>
    fail(source, `the file is ${size} bytes, more than options.maxBytes (${maxBytes})`),
  );
  if (!isGzip(bytes)) return parseRaw(bytes, source);
  let raw: Uint8Array;
  try {
    raw = await gunzipAsync(bytes, { maxOutputLength: maxBytes }); // on the thread pool: a 47 MB file takes ~0.2 s
  } catch (e) {
    throw gunzipError(e, source, maxBytes);
  }
  return parseRaw(raw, `${source} (gunzipped)`);
}

function parseRaw(bytes: Uint8Array, source: string): IdxArray {
  if (bytes.length < 4) throw fail(source, `file too short: expected at least 4 bytes (the magic number), got ${bytes.length}`);
  const info = TYPES[bytes[2]!];
  if (bytes[0] !== 0 || bytes[1] !== 0 || info === undefined)
    throw fail(source, `bad magic number: expected 00 00 <type: 08, 09, 0b, 0c, 0d or 0e> <dimensions>, got ${hex(bytes.subarray(0, 4))}`);
  const ndim = bytes[3]!;
  if (ndim < 1) throw fail(source, `expected at least 1 dimension, got 0`);
  const headerSize = 4 + 4 * ndim;
  if (bytes.length < headerSize)
    throw fail(source, `file too short: ${ndim} dimensions need a ${headerSize}-byte header, got ${bytes.length} bytes (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  // The product is formed only while it stays below the file size, so it is exact (never past 2^53)
  // and a forged header is caught before any allocation.
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (numel * info.size > bytes.length)
      throw fail(
        source,
        `shape [${shape.join(', ')}] of ${info.type} needs ${shape.reduce((a, b) => a * BigInt(b), BigInt(info.size)) + BigInt(headerSize)} bytes, the file has ${bytes.length} (truncated, or a forged header)`,
      );
  }
  const dataBytes = numel * info.size;
  if (headerSize + dataBytes !== bytes.length) {
    const what = headerSize + dataBytes > bytes.length ? 'truncated' : `${bytes.length - headerSize - dataBytes} trailing bytes`;
    throw fail(
      source,
      `shape [${shape.join(', ')}] of ${info.type} needs ${headerSize + dataBytes} bytes, the file has ${bytes.length} (${what})`,
    );
  }
  return { type: info.type, shape, data: valuesOf(info.type, view, headerSize, numel) };
}

function valuesOf(type: IdxType, view: DataView, at: number, n: number): IdxData {
  switch (type) {
    case 'u8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + n));
    case 'i8':
      return new Int8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + n));
    case 'i16': {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(at + 2 * i, false);
      return out;
    }
    case 'i32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(at + 4 * i, false);
      return out;
    }
    case 'f32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(at + 4 * i, false);
      return out;
    }
    case 'f64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(at + 8 * i, false);
      return out;
    }
  }
}

function typeOfData(data: unknown): IdxType | undefined {
  if (data instanceof Uint8Array) return 'u8';
  if (data instanceof Int8Array) return 'i8';
  if (data instanceof Int16Array) return 'i16';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Float64Array) return 'f64';
  return undefined;
}

/** IDX bytes for `array` (its type follows from the typed array; `type`, if given, must agree); gzipped with `gzip`. */
export function encodeIdx(
  array: { shape: readonly number[]; data: IdxData; type?: IdxType },
  options: { gzip?: boolean } = {},
): Uint8Array {
  const type = typeOfData(array?.data);
  if (type === undefined)
    throw new TypeError(
      `array.data: expected a Uint8Array, Int8Array, Int16Array, Int32Array, Float32Array or Float64Array, got ${array?.data?.constructor?.name ?? typeof array?.data}`,
    );
  if (array.type !== undefined && array.type !== type)
    throw new TypeError(`array.type: "${array.type}" does not match array.data, a ${array.data.constructor.name} ("${type}")`);
  const { shape, data } = array;
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > 255 || !shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 32))
    throw new TypeError(`array.shape: expected 1 to 255 integers in 0..2^32-1, got ${JSON.stringify(shape)}`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== data.length) throw new TypeError(`array.data: shape [${shape.join(', ')}] needs ${numel} values, got ${data.length}`);
  const size = TYPES[CODES[type]]!.size;
  const headerSize = 4 + 4 * shape.length;
  const out = new Uint8Array(headerSize + numel * size);
  const view = new DataView(out.buffer);
  out[2] = CODES[type];
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  if (size === 1) out.set(new Uint8Array(data.buffer, data.byteOffset, data.length), headerSize);
  else
    for (let i = 0; i < numel; i++) {
      const v = data[i]!;
      const at = headerSize + size * i;
      if (type === 'i16') view.setInt16(at, v, false);
      else if (type === 'i32') view.setInt32(at, v, false);
      else if (type === 'f32') view.setFloat32(at, v, false);
      else view.setFloat64(at, v, false);
    }
  return options.gzip ? new Uint8Array(gzipSync(out, { level: 9 })) : out;
}

/** Writes an IDX file atomically; gzipped when `path` ends in ".gz" (or as `options.gzip` says). */
export async function writeIdx(
  path: string,
  array: { shape: readonly number[]; data: IdxData },
  options: { gzip?: boolean } = {},
): Promise<void> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  await writeFileAtomic(path, encodeIdx(array, { gzip: options.gzip ?? path.endsWith('.gz') }));
}
