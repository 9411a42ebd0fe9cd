// safetensors (https://github.com/huggingface/safetensors), the checkpoint format: an 8-byte
// little-endian header length N, N bytes of JSON naming each tensor's dtype, shape and byte range,
// then the raw little-endian data. Reading treats the file as hostile: every size is checked against
// the bytes actually present before anything is allocated, and the tensors must tile the data buffer
// exactly, as the reference implementation requires. Tensors are float32 in memory whatever the file holds.
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile } from './data/read-file.ts';
import { writeFileAtomic } from './write-atomic.ts';

export type SafetensorsDtype = 'F32' | 'BF16' | 'F16' | 'F64';

/** A tensor read from a file: `dtype` is what the file stored, `data` is converted to float32. */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  /** In file layout order (for files written here: the order they were written in). */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** A tensor to write; `dtype` defaults to F32. BF16 rounds each value to nearest, ties to even. */
export interface SafetensorsInput {
  shape: readonly number[];
  data: Float32Array;
  dtype?: 'F32' | 'BF16';
}

/** Written in insertion order. A plain object lists integer-like keys ("0", "12") first; use a Map to avoid that. */
export type SafetensorsTensors = Map<string, SafetensorsInput> | Record<string, SafetensorsInput>;

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F32: 4, BF16: 2, F16: 2, F64: 8 };
/** About the reference implementation's limit (100 MB): a header this large is hostile, not a checkpoint. */
const MAX_HEADER = 100 * 1024 * 1024;
/** Data regions up to this size are read at once. */
const SMALL_FILE = 16 * 1024 * 1024;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------- dtypes

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits, round to nearest, ties to even. NaN is kept apart: rounding would carry an
 *  all-ones mantissa into the sign bit, and plain truncation could leave infinity, so it keeps its top
 *  bits with the quiet bit set. */
export function float32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16; // overflow past the largest bf16 carries into infinity, as RNE must
}

export function bf16BitsToFloat32(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** float16 bits -> float32, exact (every half value, subnormals included, is a float32). */
export function f16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Converts one tensor's bytes, which must be a fresh copy owned by the result: F32 is viewed, not copied again. */
function toFloat32(dtype: SafetensorsDtype, bytes: Uint8Array, numel: number): Float32Array {
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
    return new Float32Array(bytes.buffer, 0, numel);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'BF16') out[i] = bf16BitsToFloat32(view.getUint16(2 * i, true));
    else if (dtype === 'F16') out[i] = f16BitsToFloat32(view.getUint16(2 * i, true));
    else out[i] = view.getFloat64(8 * i, true); // Math.fround, by the store
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- writing

/** A value as JSON for an error message, cut short: values from a hostile header can be megabytes long. */
function brief(v: unknown): string {
  const s = typeof v === 'bigint' ? `${v}` : (JSON.stringify(v) ?? String(v));
  return s.length > 100 ? `${s.slice(0, 100)}...` : s;
}

/** "Float64Array", "array", "undefined": what a wrong value is, without printing it whole. */
function describe(v: unknown): string {
  if (v === null || typeof v !== 'object') return v === null ? 'null' : typeof v;
  return Array.isArray(v) ? 'array' : (v.constructor?.name ?? 'object');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);
}

/** Product of a shape, or undefined when an entry is not a non-negative safe integer or the product passes 2^53. */
function numelOf(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    if (d > 0 && n > Number.MAX_SAFE_INTEGER / d) return undefined;
    n *= d;
  }
  return n;
}

/** The file's bytes. Throws before producing anything if a name, shape, data or metadata value is invalid. */
export function encodeSafetensors(tensors: SafetensorsTensors, metadata: Record<string, string> = {}): Uint8Array {
  if (!(tensors instanceof Map) && !isPlainObject(tensors))
    throw new TypeError(`tensors: expected a Map or an object of {shape, data, dtype?}, got ${brief(tensors)}`);
  if (!isPlainObject(metadata)) throw new TypeError(`metadata: expected an object of strings, got ${brief(metadata)}`);
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') throw new TypeError(`metadata[${brief(k)}]: expected a string, got ${typeof v} ${brief(v)}`);

  const header: string[] = [];
  if (Object.keys(metadata).length > 0) header.push(`"__metadata__":${JSON.stringify(metadata)}`);
  const items: { input: SafetensorsInput; dtype: 'F32' | 'BF16'; begin: number }[] = [];
  let offset = 0;
  for (const [name, input] of tensors instanceof Map ? tensors : Object.entries(tensors)) {
    const what = `tensors[${brief(name)}]`;
    if (typeof name !== 'string' || name === '' || name === '__metadata__')
      throw new TypeError(`tensor name: expected a non-empty string other than "__metadata__", got ${brief(name)}`);
    if (!isPlainObject(input)) throw new TypeError(`${what}: expected {shape, data, dtype?}, got ${brief(input)}`);
    const dtype = input.dtype ?? 'F32';
    if (dtype !== 'F32' && dtype !== 'BF16') throw new TypeError(`${what}.dtype: expected "F32" or "BF16", got ${brief(dtype)}`);
    const numel = numelOf(input.shape);
    if (numel === undefined)
      throw new TypeError(`${what}.shape: expected an array of non-negative integers with a product below 2^53, got ${brief(input.shape)}`);
    if (!(input.data instanceof Float32Array)) throw new TypeError(`${what}.data: expected a Float32Array, got ${describe(input.data)}`);
    if (input.data.length !== numel)
      throw new TypeError(`${what}.data: shape ${brief(input.shape)} needs ${numel} values, got ${input.data.length}`);
    const end = offset + numel * DTYPE_SIZE[dtype];
    header.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: [...input.shape], data_offsets: [offset, end] })}`);
    items.push({ input, dtype, begin: offset });
    offset = end;
  }

  // Built by hand, not JSON.stringify(object), which would move integer-like names to the front.
  const json = new TextEncoder().encode(`{${header.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8; // spaces, so the data starts 8-byte aligned (as the reference pads)
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  const base = 8 + padded;
  for (const { input, dtype, begin } of items) {
    const { data } = input;
    if (dtype === 'F32' && LITTLE_ENDIAN_HOST) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), base + begin);
    else if (dtype === 'F32') for (let i = 0; i < data.length; i++) view.setFloat32(base + begin + 4 * i, data[i]!, true);
    else for (let i = 0; i < data.length; i++) view.setUint16(base + begin + 2 * i, float32ToBf16Bits(data[i]!), true);
  }
  return out;
}

/**
 * Writes atomically: into a temporary file in the same directory, synced, then renamed over `path`,
 * and the directory synced so the rename survives a crash. On any failure the temporary file is
 * removed and an existing file at `path` is left as it was. The new file has the default mode (0666 & ~umask).
 */
export async function writeSafetensors(path: string, tensors: SafetensorsTensors, metadata?: Record<string, string>): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`path: expected a file name, got ${brief(path)}`);
  const bytes = encodeSafetensors(tensors, metadata); // invalid input fails here, before the disk is touched
  await writeFileAtomic(path, bytes);
}

// ---------------------------------------------------------------------------------------------- reading

interface Layout {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

function fail(source: string, message: string): Error {
  return Object.assign(new Error(`${source}: ${message}`), { code: 'KINTSUGI_INVALID_SAFETENSORS' });
}

/** The header length from the first 8 bytes, checked against the file size before anything is read or allocated. */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) throw fail(source, `file too short: expected at least 8 bytes (the header length), got ${fileSize}`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) throw fail(source, `header length ${n} exceeds the limit of ${MAX_HEADER} bytes`);
  if (n > BigInt(fileSize - 8))
    throw fail(source, `header length ${n} exceeds the ${fileSize - 8} bytes after the length field (truncated file?)`);
  return Number(n);
}

/** Parses and validates the header against a data buffer of `dataLength` bytes. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): { layout: Layout[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw fail(source, `header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(header)) throw fail(source, `header: expected a JSON object, got ${brief(header)}`);

  const metadata: [string, string][] = [];
  const layout: Layout[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw fail(source, `__metadata__: expected an object of strings, got ${brief(entry)}`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw fail(source, `__metadata__[${brief(k)}]: expected a string, got ${brief(v)}`);
        metadata.push([k, v]); // Object.fromEntries below: assigning would treat "__proto__" specially
      }
      continue;
    }
    const at = `tensor ${brief(name)}`;
    if (!isPlainObject(entry)) throw fail(source, `${at}: expected an object {dtype, shape, data_offsets}, got ${brief(entry)}`);
    for (const key of ['dtype', 'shape', 'data_offsets']) if (!Object.hasOwn(entry, key)) throw fail(source, `${at}: missing "${key}"`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype))
      throw fail(source, `${at}: unsupported dtype ${brief(dtype)} (expected F32, BF16, F16 or F64)`);
    const numel = numelOf(shape);
    if (numel === undefined)
      throw fail(source, `${at}: shape must be an array of non-negative integers with a product below 2^53, got ${brief(shape)}`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    )
      throw fail(source, `${at}: data_offsets must be [begin, end] with 0 <= begin <= end safe integers, got ${brief(offsets)}`);
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw fail(source, `${at}: data_offsets ${brief(offsets)} end beyond the ${dataLength}-byte data buffer`);
    const size = DTYPE_SIZE[dtype as SafetensorsDtype];
    if (end - begin !== numel * size)
      throw fail(
        source,
        `${at}: data_offsets ${brief(offsets)} span ${end - begin} bytes, but ${dtype} shape ${brief(shape)} needs ${numel * size}`,
      );
    layout.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], numel, begin, end });
  }

  // The tensors must tile the buffer exactly: no overlaps (aliasing), no holes, nothing trailing.
  layout.sort((a, b) => a.begin - b.begin || a.end - b.end); // stable: header order breaks ties
  let covered = 0;
  let previous = '';
  for (const t of layout) {
    if (t.begin < covered)
      throw fail(
        source,
        `tensor ${brief(t.name)}: bytes [${t.begin}, ${t.end}) overlap tensor ${brief(previous)}, which ends at ${covered}`,
      );
    if (t.begin > covered) throw fail(source, `tensor ${brief(t.name)}: bytes [${covered}, ${t.begin}) before it belong to no tensor`);
    covered = t.end;
    previous = t.name;
  }
  if (covered !== dataLength) throw fail(source, `bytes [${covered}, ${dataLength}) at the end of the data buffer belong to no tensor`);
  return { layout, metadata: Object.fromEntries(metadata) };
}

/** Decodes a whole file held in memory; `source` names it in error messages. The result shares no memory with `bytes`. */
export function decodeSafetensors(bytes: Uint8Array, source = '<safetensors bytes>'): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, got ${brief(bytes)}`);
  const n = headerLength(bytes, bytes.length, source);
  const base = 8 + n;
  const { layout, metadata } = parseHeader(bytes.subarray(8, base), bytes.length - base, source);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const t of layout) {
    const own = new Uint8Array(t.end - t.begin); // not bytes.slice(): on a Node Buffer that is a view, not a copy
    own.set(bytes.subarray(base + t.begin, base + t.end));
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: toFloat32(t.dtype, own, t.numel) });
  }
  return { tensors, metadata };
}

/** Reads a file tensor by tensor (never the whole file at once), validating the header before reading any data. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`path: expected a file name, got ${brief(path)}`);
  const { fh, size } = await openRegularFile(path);
  try {
    const prefix = await readAt(fh, 0, Math.min(8, size), path);
    const n = headerLength(prefix, size, path);
    const base = 8 + n;
    const { layout, metadata } = parseHeader(await readAt(fh, 8, n, path), size - base, path);
    const tensors = new Map<string, SafetensorsEntry>();
    // A small file in one read (a read per tensor costs more than the copy); a large one tensor by
    // tensor, so that memory never holds the file twice.
    const whole = size - base <= SMALL_FILE ? await readAt(fh, base, size - base, path) : undefined;
    for (const t of layout) {
      let bytes: Uint8Array;
      if (whole) {
        bytes = new Uint8Array(t.end - t.begin);
        bytes.set(whole.subarray(t.begin, t.end));
      } else bytes = await readAt(fh, base + t.begin, t.end - t.begin, path);
      tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: toFloat32(t.dtype, bytes, t.numel) });
    }
    return { tensors, metadata };
  } finally {
    await fh.close();
  }
}

/** `length` bytes at `position` into a fresh buffer; in chunks, since one read is limited to 2 GiB. */
async function readAt(fh: FileHandle, position: number, length: number, source: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  for (let done = 0; done < length; ) {
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, 1 << 30), position + done);
    if (bytesRead === 0)
      throw fail(source, `file ended at byte ${position + done}, expected ${length - done} more (changed while reading?)`);
    done += bytesRead;
  }
  return buf;
}
