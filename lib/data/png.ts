// PNG (https://www.w3.org/TR/png-3/), for looking at samples and reading image folders. The encoder
// writes 8-bit grey, grey+alpha, RGB or RGBA in one IDAT chunk, each row filtered by the filter that
// minimises the sum of absolute signed bytes (the heuristic the PNG specification suggests). The
// decoder reads every non-interlaced PNG: all colour types and bit depths (16-bit is scaled to 8 bits,
// 1/2/4-bit grey to 0..255, palettes are expanded to RGB, or RGBA when tRNS gives transparency).
// Decoding treats the file as hostile: every chunk's length and CRC is checked, and the image's size
// is bounded before any pixel memory is allocated or any data inflated.
import { readRegularFile } from './read-file.ts';
import { deflateSync, inflateSync } from 'node:zlib';
import { writeFileAtomic } from '../write-atomic.ts';

/** 8-bit pixels, row-major, channels interleaved: data[(y * width + x) * channels + c]. */
export interface PngImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

export interface PngEncodeOptions {
  /** "adaptive" (default): the best of the five filters per row; "none": filter 0 throughout (faster, larger). */
  filter?: 'adaptive' | 'none';
  /** zlib level 0..9 (default 9: samples are small and written once). */
  level?: number;
}

export interface PngDecodeOptions {
  /** The most bytes the decoded pixels (or the inflated image data) may take; default 1 GiB. */
  maxBytes?: number;
}

export interface ToPngOptions {
  /** The values that map to 0 and 255 (default [-1, 1], the range the models work in); values outside are clamped, NaN becomes 0. */
  range?: readonly [number, number];
}

export interface GridOptions extends ToPngOptions {
  /** Images per row (default ceil(sqrt(N))). */
  columns?: number;
  /** Pixels between images and around the grid (default 2). */
  padding?: number;
  /** Grey level 0..255 of the padding and of empty cells (default 255: white, so dark images stay apart). */
  padValue?: number;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const MAX_CHUNK = 2 ** 31 - 1; // the specification's limit for a chunk length, width and height
const DEFAULT_MAX_BYTES = 2 ** 30;
const COLOR_TYPE_OF: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
/** Colour type -> samples per pixel and the allowed bit depths. */
const COLOR_TYPES: Record<number, { name: string; samples: number; depths: number[] }> = {
  0: { name: 'greyscale', samples: 1, depths: [1, 2, 4, 8, 16] },
  2: { name: 'RGB', samples: 3, depths: [8, 16] },
  3: { name: 'palette', samples: 1, depths: [1, 2, 4, 8] },
  4: { name: 'greyscale+alpha', samples: 2, depths: [8, 16] },
  6: { name: 'RGBA', samples: 4, depths: [8, 16] },
};

function fail(source: string, message: string): Error {
  return Object.assign(new Error(`${source}: ${message}`), { code: 'KINTSUGI_INVALID_PNG' });
}

// ---------------------------------------------------------------------------------------------- CRC-32

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, the one PNG and gzip use) of `bytes`; pass a previous result as `crc` to continue it. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** A chunk: length, type, data, CRC of type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new TypeError(`type: expected 4 ASCII letters, got ${JSON.stringify(type)}`);
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length, false);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)), false);
  return out;
}

// ---------------------------------------------------------------------------------------------- encoding

function checkImage(image: PngImage, what: string): void {
  if (typeof image !== 'object' || image === null)
    throw new TypeError(`${what}: expected {width, height, channels, data}, got ${image === null ? 'null' : typeof image}`);
  const { width, height, channels, data } = image;
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 1 || v > MAX_CHUNK)
      throw new TypeError(`${what}.${k}: expected an integer in 1..2^31-1, got ${JSON.stringify(v)}`);
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4)
    throw new TypeError(`${what}.channels: expected 1, 2, 3 or 4, got ${JSON.stringify(channels)}`);
  if (!(data instanceof Uint8Array))
    throw new TypeError(`${what}.data: expected a Uint8Array, got ${(data as unknown as object)?.constructor?.name ?? typeof data}`);
  if (data.length !== width * height * channels)
    throw new TypeError(
      `${what}.data: ${width}x${height} with ${channels} channels needs ${width * height * channels} bytes, got ${data.length}`,
    );
}

const paeth = (a: number, b: number, c: number): number => {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** Row `cur` filtered with `type` against `prev` (zeros for the first row) into out[1..], out[0] = type. */
function filterRow(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  out[0] = type;
  for (let i = 0; i < cur.length; i++) {
    const a = i >= bpp ? cur[i - bpp]! : 0;
    const b = prev[i]!;
    const c = i >= bpp ? prev[i - bpp]! : 0;
    const pred = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? (a + b) >>> 1 : paeth(a, b, c);
    out[i + 1] = (cur[i]! - pred) & 0xff;
  }
}

/** PNG bytes of an 8-bit image. */
export function encodePng(image: PngImage, options: PngEncodeOptions = {}): Uint8Array {
  checkImage(image, 'image');
  const filter = options.filter ?? 'adaptive';
  if (filter !== 'adaptive' && filter !== 'none')
    throw new TypeError(`options.filter: expected "adaptive" or "none", got ${JSON.stringify(filter)}`);
  const level = options.level ?? 9;
  if (!Number.isInteger(level) || level < 0 || level > 9)
    throw new TypeError(`options.level: expected an integer 0..9, got ${JSON.stringify(level)}`);
  const { width, height, channels, data } = image;
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  const zeros = new Uint8Array(stride);
  const trial = new Uint8Array(stride + 1);
  for (let y = 0; y < height; y++) {
    const cur = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zeros;
    const out = raw.subarray(y * (stride + 1), (y + 1) * (stride + 1));
    if (filter === 'none') {
      filterRow(0, cur, prev, channels, out);
      continue;
    }
    let best = Infinity;
    for (let type = 0; type < 5; type++) {
      filterRow(type, cur, prev, channels, trial);
      let cost = 0;
      for (let i = 1; i <= stride && cost < best; i++) cost += trial[i]! < 128 ? trial[i]! : 256 - trial[i]!;
      if (cost < best) {
        best = cost;
        out.set(trial);
      }
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width, false);
  view.setUint32(4, height, false);
  ihdr.set([8, COLOR_TYPE_OF[channels]!, 0, 0, 0], 8); // depth 8, colour type, deflate, adaptive filtering, no interlace
  const parts = [SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw, { level })), pngChunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- decoding

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
}

function parseHeader(data: Uint8Array, source: string): Header {
  if (data.length !== 13) throw fail(source, `IHDR: expected 13 bytes, got ${data.length}`);
  const view = new DataView(data.buffer, data.byteOffset, 13);
  const [width, height] = [view.getUint32(0, false), view.getUint32(4, false)];
  const [depth, colorType, compression, filter, interlace] = data.subarray(8, 13);
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const)
    if (v < 1 || v > MAX_CHUNK) throw fail(source, `IHDR: ${k} must be 1..2^31-1, got ${v}`);
  const ct = COLOR_TYPES[colorType!];
  if (ct === undefined) throw fail(source, `IHDR: colour type must be 0, 2, 3, 4 or 6, got ${colorType}`);
  if (!ct.depths.includes(depth!))
    throw fail(
      source,
      `IHDR: bit depth ${depth} is not allowed for colour type ${colorType} (${ct.name}); allowed: ${ct.depths.join(', ')}`,
    );
  if (compression !== 0) throw fail(source, `IHDR: compression method must be 0 (deflate), got ${compression}`);
  if (filter !== 0) throw fail(source, `IHDR: filter method must be 0, got ${filter}`);
  if (interlace === 1) throw fail(source, `interlaced (Adam7) PNGs are not supported: save the image without interlacing`);
  if (interlace !== 0) throw fail(source, `IHDR: interlace method must be 0 or 1, got ${interlace}`);
  return { width, height, depth: depth!, colorType: colorType! };
}

const typeName = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

/** Decodes PNG bytes; `source` names them in error messages. Always returns 8-bit samples. */
export function decodePng(bytes: Uint8Array, source = '<png bytes>', options: PngDecodeOptions = {}): PngImage {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError(`bytes: expected a Uint8Array, got ${(bytes as unknown as object)?.constructor?.name ?? typeof bytes}`);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw new TypeError(`options.maxBytes: expected a positive integer, got ${JSON.stringify(maxBytes)}`);
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b))
    throw fail(
      source,
      `not a PNG file: expected the signature 89 50 4e 47 0d 0a 1a 0a, got ${[...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: Header | undefined;
  let palette: Uint8Array | undefined;
  let alpha: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatDone = false;
  let pos = 8;
  for (;;) {
    if (pos + 12 > bytes.length)
      throw fail(source, `file ends at byte ${bytes.length}, inside or before a chunk at byte ${pos}, with no IEND chunk (truncated)`);
    const length = view.getUint32(pos, false);
    const typeBytes = bytes.subarray(pos + 4, pos + 8);
    if (!typeBytes.every((c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122)))
      throw fail(
        source,
        `chunk at byte ${pos}: type must be 4 ASCII letters, got ${[...typeBytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')} (corrupt file)`,
      );
    const type = typeName(typeBytes);
    if (length > MAX_CHUNK) throw fail(source, `chunk ${type} at byte ${pos}: length ${length} exceeds 2^31-1`);
    if (pos + 12 + length > bytes.length)
      throw fail(source, `chunk ${type} at byte ${pos}: declares ${length} data bytes, only ${bytes.length - pos - 12} remain (truncated)`);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    const stored = view.getUint32(pos + 8 + length, false);
    const actual = crc32(bytes.subarray(pos + 4, pos + 8 + length));
    if (stored !== actual)
      throw fail(
        source,
        `chunk ${type} at byte ${pos}: CRC mismatch (stored ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')}): the file is corrupt`,
      );
    pos += 12 + length;

    if (header === undefined && type !== 'IHDR') throw fail(source, `the first chunk must be IHDR, got ${type}`);
    if (idat.length > 0 && type !== 'IDAT') idatDone = true;
    if (type === 'IHDR') {
      if (header !== undefined) throw fail(source, `a second IHDR chunk`);
      header = parseHeader(data, source);
    } else if (type === 'PLTE') {
      if (length % 3 !== 0 || length === 0 || length > 768)
        throw fail(source, `PLTE: length must be a multiple of 3 in 3..768, got ${length}`);
      if (idat.length > 0) throw fail(source, `PLTE after IDAT`);
      if (palette !== undefined) throw fail(source, `a second PLTE chunk`);
      palette = data;
    } else if (type === 'tRNS') {
      if (header!.colorType === 3) {
        if (palette === undefined) throw fail(source, `tRNS before PLTE`);
        if (length > palette.length / 3) throw fail(source, `tRNS: ${length} alpha values for a palette of ${palette.length / 3} entries`);
        alpha = data;
      } // grey and RGB colour keys are ignored: the pixels keep their colour and no alpha channel is added
    } else if (type === 'IDAT') {
      if (idatDone) throw fail(source, `IDAT chunks must be consecutive; another chunk came between them`);
      idat.push(data);
    } else if (type === 'IEND') {
      break; // anything after IEND is ignored, as libpng does
    } else if (typeBytes[0]! < 97) {
      throw fail(source, `unsupported critical chunk ${type}`);
    } // ancillary chunks (text, gamma, ...) are skipped
  }
  if (header === undefined) throw fail(source, `no IHDR chunk`);
  if (idat.length === 0) throw fail(source, `no IDAT chunk (no image data)`);
  const { width, height, depth, colorType } = header;
  if (colorType === 3 && palette === undefined) throw fail(source, `palette image without a PLTE chunk`);
  if (colorType === 3 && palette!.length / 3 > 2 ** depth)
    throw fail(source, `PLTE: ${palette!.length / 3} entries for a ${depth}-bit palette image (at most ${2 ** depth})`);

  const ct = COLOR_TYPES[colorType]!;
  const bitsPerPixel = ct.samples * depth;
  const rowBytes = Math.ceil((width * bitsPerPixel) / 8);
  const rawSize = height * (rowBytes + 1);
  const channels = (colorType === 3 ? (alpha ? 4 : 3) : ct.samples) as PngImage['channels'];
  const outSize = width * height * channels;
  if (rawSize > maxBytes || outSize > maxBytes)
    throw fail(
      source,
      `a ${width}x${height} ${ct.name} image needs ${Math.max(rawSize, outSize)} bytes, more than options.maxBytes (${maxBytes})`,
    );

  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat), { maxOutputLength: rawSize });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE')
      throw fail(source, `image data inflates to more than the ${rawSize} bytes a ${width}x${height} ${depth}-bit ${ct.name} image needs`);
    if (err.code === 'Z_BUF_ERROR') throw fail(source, `image data is truncated (the zlib stream ends early)`);
    throw fail(source, `image data is corrupt (zlib: ${err.message})`);
  }
  if (raw.length !== rawSize)
    throw fail(source, `image data inflates to ${raw.length} bytes, a ${width}x${height} ${depth}-bit ${ct.name} image needs ${rawSize}`);

  unfilter(raw, height, rowBytes, Math.max(1, bitsPerPixel >> 3), source);
  return { width, height, channels, data: toEightBit(raw, header, rowBytes, channels, palette, alpha, source) };
}

/** Undoes the per-row filters in place; each row keeps its leading filter byte. */
function unfilter(raw: Uint8Array, height: number, rowBytes: number, bpp: number, source: string): void {
  const stride = rowBytes + 1;
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    const type = raw[row]!;
    const cur = row + 1;
    const prev = cur - stride; // only read when y > 0
    switch (type) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < rowBytes; i++) raw[cur + i] = raw[cur + i]! + raw[cur + i - bpp]!;
        break;
      case 2:
        if (y > 0) for (let i = 0; i < rowBytes; i++) raw[cur + i] = raw[cur + i]! + raw[prev + i]!;
        break;
      case 3:
        for (let i = 0; i < rowBytes; i++) {
          const a = i >= bpp ? raw[cur + i - bpp]! : 0;
          const b = y > 0 ? raw[prev + i]! : 0;
          raw[cur + i] = raw[cur + i]! + ((a + b) >>> 1);
        }
        break;
      case 4:
        for (let i = 0; i < rowBytes; i++) {
          const a = i >= bpp ? raw[cur + i - bpp]! : 0;
          const b = y > 0 ? raw[prev + i]! : 0;
          const c = y > 0 && i >= bpp ? raw[prev + i - bpp]! : 0;
          raw[cur + i] = raw[cur + i]! + paeth(a, b, c);
        }
        break;
      default:
        throw fail(source, `row ${y}: filter type must be 0..4, got ${type} (corrupt image data)`);
    }
  }
}

function toEightBit(
  raw: Uint8Array,
  h: Header,
  rowBytes: number,
  channels: number,
  palette: Uint8Array | undefined,
  alpha: Uint8Array | undefined,
  source: string,
): Uint8Array {
  const { width, height, depth, colorType } = h;
  const samples = COLOR_TYPES[colorType]!.samples;
  const out = new Uint8Array(width * height * channels);
  const entries = palette ? palette.length / 3 : 0;
  for (let y = 0; y < height; y++) {
    const row = y * (rowBytes + 1) + 1;
    const o = y * width * channels;
    if (colorType === 3) {
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const index = depth === 8 ? raw[row + x]! : (raw[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
        if (index >= entries) throw fail(source, `pixel (${x}, ${y}): palette index ${index} beyond the ${entries}-entry PLTE`);
        out.set(palette!.subarray(3 * index, 3 * index + 3), o + x * channels);
        if (channels === 4) out[o + x * 4 + 3] = index < alpha!.length ? alpha![index]! : 255;
      }
    } else if (depth === 8) {
      out.set(raw.subarray(row, row + width * samples), o);
    } else if (depth === 16) {
      for (let i = 0; i < width * samples; i++) out[o + i] = Math.round(((raw[row + 2 * i]! << 8) | raw[row + 2 * i + 1]!) / 257);
    } else {
      const scale = 255 / ((1 << depth) - 1); // 255, 85 or 17: exact
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        out[o + x] = ((raw[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)) * scale;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- files

/** Reads and decodes a PNG file. */
export async function readPng(path: string, options: PngDecodeOptions = {}): Promise<PngImage> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  // The compressed file is about as large as its pixels at most (stored deflate blocks add ~0.01%): a far larger file is not read.
  const limit = 2 * maxBytes + 2 ** 20;
  const bytes = await readRegularFile(path, limit, (size) =>
    fail(path, `the file is ${size} bytes, more than an image within options.maxBytes (${maxBytes}) can take`),
  );
  return decodePng(bytes, path, options);
}

/** Writes PNG bytes (or an image, encoded first) atomically: a temporary file renamed over `path`. */
export async function writePng(path: string, png: Uint8Array | PngImage): Promise<void> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  const bytes = png instanceof Uint8Array ? png : encodePng(png);
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b))
    throw new TypeError(`png: expected PNG bytes (starting with the PNG signature) or an image {width, height, channels, data}`);
  await writeFileAtomic(path, bytes);
}

// ---------------------------------------------------------------------------------------------- tensors

function checkRange(range: unknown): [number, number] {
  const r = range ?? [-1, 1];
  if (!Array.isArray(r) || r.length !== 2 || !r.every(Number.isFinite) || !(r[0] < r[1]))
    throw new TypeError(`options.range: expected [low, high] with finite low < high, got ${JSON.stringify(range)}`);
  return r as [number, number];
}

function checkDims(shape: unknown, rank: number, names: string): number[] {
  if (!Array.isArray(shape) || shape.length !== rank || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new TypeError(`shape: expected [${names}] of positive integers, got ${JSON.stringify(shape)}`);
  const c = shape[rank - 3];
  if (c !== 1 && c !== 3 && c !== 4)
    throw new TypeError(`shape: C must be 1 (grey), 3 (RGB) or 4 (RGBA), got ${c} in ${JSON.stringify(shape)}`);
  return shape;
}

/** v in [lo, hi] -> 0..255, clamped; NaN -> 0. */
function toByte(v: number, lo: number, scale: number): number {
  const b = Math.round((v - lo) * scale);
  return b > 255 ? 255 : b >= 0 ? b : 0; // NaN fails both tests and becomes 0
}

/** One CHW image (float values, e.g. a model's sample) as PNG bytes. */
export function imageToPng(
  values: Float32Array,
  shape: readonly [number, number, number] | readonly number[],
  options: ToPngOptions = {},
): Uint8Array {
  const [c, h, w] = checkDims(shape, 3, 'C, H, W') as [number, number, number];
  if (!(values instanceof Float32Array))
    throw new TypeError(`values: expected a Float32Array, got ${(values as unknown as object)?.constructor?.name ?? typeof values}`);
  if (values.length !== c * h * w) throw new TypeError(`values: shape [${c}, ${h}, ${w}] needs ${c * h * w} values, got ${values.length}`);
  const [lo, hi] = checkRange(options.range);
  const scale = 255 / (hi - lo);
  const data = new Uint8Array(h * w * c);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) data[i * c + k] = toByte(values[k * h * w + i]!, lo, scale);
  return encodePng({ width: w, height: h, channels: c as 1 | 3 | 4, data });
}

/** N CHW images tiled into one PNG, left to right and top to bottom, with `padding` pixels around each. */
export function gridToPng(
  values: Float32Array,
  shape: readonly [number, number, number, number] | readonly number[],
  options: GridOptions = {},
): Uint8Array {
  const [n, c, h, w] = checkDims(shape, 4, 'N, C, H, W') as [number, number, number, number];
  if (!(values instanceof Float32Array))
    throw new TypeError(`values: expected a Float32Array, got ${(values as unknown as object)?.constructor?.name ?? typeof values}`);
  if (values.length !== n * c * h * w)
    throw new TypeError(`values: shape [${n}, ${c}, ${h}, ${w}] needs ${n * c * h * w} values, got ${values.length}`);
  const [lo, hi] = checkRange(options.range);
  const columns = options.columns ?? Math.ceil(Math.sqrt(n));
  if (!Number.isSafeInteger(columns) || columns < 1)
    throw new TypeError(`options.columns: expected a positive integer, got ${JSON.stringify(options.columns)}`);
  const pad = options.padding ?? 2;
  if (!Number.isSafeInteger(pad) || pad < 0 || pad > 1024)
    throw new TypeError(`options.padding: expected an integer 0..1024, got ${JSON.stringify(options.padding)}`);
  const padValue = options.padValue ?? 255;
  if (!Number.isInteger(padValue) || padValue < 0 || padValue > 255)
    throw new TypeError(`options.padValue: expected an integer 0..255, got ${JSON.stringify(options.padValue)}`);
  const cols = Math.min(columns, n);
  const rows = Math.ceil(n / cols);
  const width = cols * (w + pad) + pad;
  const height = rows * (h + pad) + pad;
  const data = new Uint8Array(width * height * c).fill(padValue);
  if (c === 4) for (let i = 3; i < data.length; i += 4) data[i] = 255; // opaque padding
  const scale = 255 / (hi - lo);
  for (let img = 0; img < n; img++) {
    const x0 = pad + (img % cols) * (w + pad);
    const y0 = pad + Math.floor(img / cols) * (h + pad);
    const base = img * c * h * w;
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) data[((y0 + y) * width + x0 + x) * c + k] = toByte(values[base + (k * h + y) * w + x]!, lo, scale);
  }
  return encodePng({ width, height, channels: c as 1 | 3 | 4, data });
}
