// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the
// magic "\x93NUMPY", a version, a little-endian header length (2 bytes in version 1.0, 4 in 2.0 and
// 3.0), a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces
// and a newline, then the raw values. We read and write little-endian float32, float64 and uint8 in C
// order. The header is parsed by a small parser for exactly that literal (never evaluated), bounded
// like NumPy's own (10,000 bytes), and the data must be exactly as long as the shape says.
import { readRegularFile } from './read-file.ts';
import { writeFileAtomic } from '../write-atomic.ts';

export type NpyDtype = 'float32' | 'float64' | 'uint8';
export type NpyData = Float32Array | Float64Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDtype;
  /** [] for a 0-d array (one value). */
  shape: number[];
  data: NpyData;
}

const MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY
/** NumPy's default max_header_size: longer headers are refused as a safety measure there too. */
const MAX_HEADER = 10_000;
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '|u1': 'uint8', '<u1': 'uint8', '>u1': 'uint8', u1: 'uint8' };
const DESCR_OF: Record<NpyDtype, string> = { float32: '<f4', float64: '<f8', uint8: '|u1' };
const SIZE: Record<NpyDtype, number> = { float32: 4, float64: 8, uint8: 1 };
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(source: string, message: string): Error {
  return Object.assign(new Error(`${source}: ${message}`), { code: 'KINTSUGI_INVALID_NPY' });
}

// ---------------------------------------------------------------------------------------------- header literal

type PyValue = string | number | boolean | PyValue[] | Map<string, PyValue>;

/** Parses the Python literal subset NumPy writes: a dict of str keys; str, int, True/False, tuples. */
function parseLiteral(text: string, source: string): PyValue {
  let i = 0;
  const bad = (what: string): Error =>
    fail(source, `header: ${what} at character ${i} of ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)}`);
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) throw bad('nesting too deep');
    ws();
    const ch = text[i];
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      if (end < 0) throw bad('unterminated string');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) throw bad('escapes in strings are not supported');
      i = end + 1;
      return s;
    }
    if (ch === '(' || ch === '[') {
      const close = ch === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      for (;;) {
        ws();
        if (text[i] === close) break;
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) throw bad(`expected "," or "${close}"`);
      }
      i++;
      return items;
    }
    if (ch === '{') {
      i++;
      const map = new Map<string, PyValue>();
      for (;;) {
        ws();
        if (text[i] === '}') break;
        const key = value(depth + 1);
        if (typeof key !== 'string') throw bad('dict keys must be strings');
        if (map.has(key)) throw bad(`duplicate key ${JSON.stringify(key)}`);
        ws();
        if (text[i] !== ':') throw bad('expected ":"');
        i++;
        map.set(key, value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') throw bad('expected "," or "}"');
      }
      i++;
      return map;
    }
    const word = /^(True|False|-?\d+L?)/.exec(text.slice(i, i + 32));
    if (word === null) throw bad('unexpected text');
    i += word[0].length;
    if (word[0] === 'True' || word[0] === 'False') return word[0] === 'True';
    return Number(word[0].replace('L', '')); // "3L": a Python 2 long, in files written by old NumPy
  };
  const v = value(0);
  ws();
  if (i !== text.length) throw bad('unexpected text after the dict');
  return v;
}

// ---------------------------------------------------------------------------------------------- reading

/** Decodes .npy bytes; `source` names them in error messages. The result shares no memory with `bytes`. */
export function decodeNpy(bytes: Uint8Array, source = '<npy bytes>'): NpyArray {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError(`bytes: expected a Uint8Array, got ${(bytes as unknown as object)?.constructor?.name ?? typeof bytes}`);
  if (bytes.length < 10 || !MAGIC.every((b, k) => bytes[k] === b))
    throw fail(
      source,
      `not a .npy file: expected the magic \\x93NUMPY and at least 10 bytes, got ${bytes.length} bytes starting ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 6)))}`,
    );
  const [major, minor] = [bytes[6]!, bytes[7]!];
  if (![1, 2, 3].includes(major) || minor !== 0)
    throw fail(source, `unsupported .npy version ${major}.${minor} (expected 1.0, 2.0 or 3.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthSize = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthSize) throw fail(source, `file too short for a version ${major}.0 header length`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER) throw fail(source, `header length ${headerLength} exceeds the limit of ${MAX_HEADER} bytes`);
  const start = 8 + lengthSize + headerLength;
  if (start > bytes.length)
    throw fail(source, `header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated)`);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(bytes.subarray(8 + lengthSize, start));
  } catch {
    throw fail(source, `header is not valid UTF-8`);
  }
  const dict = parseLiteral(text, source);
  if (!(dict instanceof Map)) throw fail(source, `header: expected a dict, got ${JSON.stringify(text.slice(0, 100))}`);
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape')
    throw fail(source, `header: expected exactly the keys descr, fortran_order, shape, got ${keys || 'none'}`);
  const descr = dict.get('descr');
  if (typeof descr !== 'string')
    throw fail(source, `header: descr ${JSON.stringify(descr)} is a structured dtype; only '<f4', '<f8' and '|u1' are supported`);
  const dtype = DESCR[descr];
  if (dtype === undefined) {
    if (/^>(f4|f8)$/.test(descr))
      throw fail(
        source,
        `big-endian dtype ${descr} is not supported: save it little-endian, e.g. np.save(path, a.astype('<${descr.slice(1)}'))`,
      );
    throw fail(source, `unsupported dtype ${JSON.stringify(descr)}: expected '<f4' (float32), '<f8' (float64) or '|u1' (uint8)`);
  }
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw fail(source, `header: fortran_order must be True or False, got ${JSON.stringify(fortran)}`);
  if (fortran)
    throw fail(
      source,
      `fortran_order is True (column-major) and is not supported: save a C-ordered array, e.g. np.save(path, np.ascontiguousarray(a))`,
    );
  const shape = dict.get('shape');
  if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))
    throw fail(source, `header: shape must be a tuple of at most 32 non-negative integers, got ${JSON.stringify(shape)}`);
  const dims = shape as number[];
  const available = bytes.length - start;
  let numel = 1;
  for (const d of dims) {
    numel *= d; // stops before the product can pass the file size, so it stays exact
    if (numel * SIZE[dtype] > available) break;
  }
  if (numel * SIZE[dtype] !== available) {
    const need = dims.reduce((a, b) => a * BigInt(b), BigInt(SIZE[dtype]));
    throw fail(
      source,
      `shape (${dims.join(', ')}) of ${dtype} needs ${need} data bytes, the file has ${available} after the header (${BigInt(available) < need ? 'truncated' : 'trailing bytes'})`,
    );
  }
  return { dtype, shape: dims, data: valuesOf(dtype, bytes.subarray(start), numel) };
}

function valuesOf(dtype: NpyDtype, bytes: Uint8Array, n: number): NpyData {
  const own = new Uint8Array(bytes.length); // a fresh, aligned buffer owned by the result
  own.set(bytes);
  if (dtype === 'uint8') return own;
  if (LITTLE_ENDIAN_HOST) return dtype === 'float32' ? new Float32Array(own.buffer, 0, n) : new Float64Array(own.buffer, 0, n);
  const view = new DataView(own.buffer);
  if (dtype === 'float32') return Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
  return Float64Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true));
}

/** Reads a .npy file (refusing, before reading it whole, one far larger than `maxBytes`, default 4 GiB). */
export async function readNpy(path: string, options: { maxBytes?: number } = {}): Promise<NpyArray> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  const max = options.maxBytes ?? 2 ** 32;
  const bytes = await readRegularFile(path, max, (size) => fail(path, `the file is ${size} bytes, more than options.maxBytes (${max})`));
  return decodeNpy(bytes, path);
}

// ---------------------------------------------------------------------------------------------- writing

function dtypeOf(data: unknown): NpyDtype | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}

/** .npy bytes (version 1.0, as np.save writes) of a C-ordered array; the dtype follows from `data`. */
export function encodeNpy(array: { shape: readonly number[]; data: NpyData }): Uint8Array {
  const dtype = dtypeOf(array?.data);
  if (dtype === undefined)
    throw new TypeError(
      `array.data: expected a Float32Array, Float64Array or Uint8Array, got ${(array?.data as unknown as object)?.constructor?.name ?? typeof array?.data}`,
    );
  const { shape, data } = array;
  if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new TypeError(`array.shape: expected at most 32 non-negative integers, got ${JSON.stringify(shape)}`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== data.length) throw new TypeError(`array.data: shape [${shape.join(', ')}] needs ${numel} values, got ${data.length}`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${tuple}, }`;
  // As NumPy does: pad with spaces and end with a newline so the data starts at a multiple of 64 bytes.
  // Version 1.0 always suffices: with at most 32 dimensions the header stays under 1 KB.
  const prefix = 10;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total + data.byteLength);
  const view = new DataView(out.buffer);
  out.set(MAGIC);
  out[6] = 1;
  view.setUint16(8, total - prefix, true);
  for (let k = 0; k < dict.length; k++) out[prefix + k] = dict.charCodeAt(k);
  out.fill(0x20, prefix + dict.length, total - 1);
  out[total - 1] = 0x0a;
  if (LITTLE_ENDIAN_HOST || dtype === 'uint8') out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  else if (dtype === 'float32') for (let k = 0; k < numel; k++) view.setFloat32(total + 4 * k, data[k]!, true);
  else for (let k = 0; k < numel; k++) view.setFloat64(total + 8 * k, data[k]!, true);
  return out;
}

/** Writes a .npy file atomically. */
export async function writeNpy(path: string, array: { shape: readonly number[]; data: NpyData }): Promise<void> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  await writeFileAtomic(path, encodeNpy(array));
}
