// Byte-level mutations of valid files (the blind half of the fuzzing) and raw builders for the formats,
// which write what the library's encoders refuse to (duplicate names, F16/F64 tensors, bad CRCs,
// lying lengths) so the structure-aware generators can reach every check of the parsers.
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { crc32 } from '../../lib/data/png.ts';

/** Integers that sit on the edges parsers get wrong: zero, sign bits, 2^31, 2^32, 2^53, 2^64. */
export const EDGE_INTS = [
  0n,
  1n,
  2n,
  3n,
  7n,
  8n,
  127n,
  128n,
  255n,
  256n,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x10000n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n,
  2n ** 64n - 1n,
];
/** The same edges as JSON numbers, with the non-integers and negatives a JSON header can hold. */
export const EDGE_NUMBERS = [
  0,
  1,
  2,
  3,
  4,
  8,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 64,
  1e308,
  -1,
  -0,
  0.5,
  1.5,
];

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'int'; at: number; width: 2 | 4 | 8; little: boolean; value: bigint }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'copy'; from: number; length: number; to: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x20, 0x22, 0x27, 0x2c, 0x30, 0x39, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xff),
  }),
  fc.record({
    kind: fc.constant('int' as const),
    at: fc.nat(),
    width: fc.constantFrom(2 as const, 4 as const, 8 as const),
    little: fc.boolean(),
    value: fc.constantFrom(...EDGE_INTS),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('copy' as const), from: fc.nat(), length: fc.integer({ min: 1, max: 256 }), to: fc.nat() }),
);

/** `bytes` with `ops` applied in turn (positions wrap around the current length). Never modifies `bytes`. */
export function mutate(bytes: Uint8Array, ops: readonly Mutation[]): Uint8Array {
  let b = Uint8Array.from(bytes);
  for (const op of ops) {
    const n = b.length;
    const at = n === 0 ? 0 : ('at' in op ? op.at : 0) % n;
    switch (op.kind) {
      case 'flip':
        if (n) b[at] = b[at]! ^ (1 << op.bit);
        break;
      case 'set':
        if (n) b[at] = op.value;
        break;
      case 'int': {
        const mask = (1n << BigInt(8 * op.width)) - 1n;
        const v = op.value & mask;
        for (let k = 0; k < op.width && at + k < n; k++) {
          const shift = BigInt(8 * (op.little ? k : op.width - 1 - k));
          b[at + k] = Number((v >> shift) & 0xffn);
        }
        break;
      }
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + op.length)]);
        break;
      case 'insert': {
        const out = new Uint8Array(n + op.bytes.length);
        out.set(b.subarray(0, at));
        out.set(op.bytes, at);
        out.set(b.subarray(at), at + op.bytes.length);
        b = out;
        break;
      }
      case 'copy': {
        if (!n) break;
        const from = op.from % n;
        const piece = b.slice(from, from + op.length);
        const to = op.to % n;
        const out = new Uint8Array(n + piece.length);
        out.set(b.subarray(0, to));
        out.set(piece, to);
        out.set(b.subarray(to), to + piece.length);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** One of `seeds` with up to `max` mutations. */
export function mutated(seeds: readonly Uint8Array[], max = 6): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: max }))
    .map(([i, ops]) => mutate(seeds[i]!, ops));
}

export const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const utf8 = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------- safetensors

/** A safetensors file from header text (anything: duplicates, bad JSON) and data; `declared` overrides the header length field. */
export function rawSafetensors(headerText: string, data: Uint8Array, declared?: bigint): Uint8Array {
  const header = utf8(headerText);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

// ---------------------------------------------------------------------------------------------- PNG

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** A chunk with any type bytes and, unless `badCrc`, the right CRC. */
export function rawChunk(type: string, data: Uint8Array, badCrc = false): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length, false);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i) & 0xff;
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ (badCrc ? 1 : 0)) >>> 0, false);
  return out;
}

export function ihdr(
  width: number,
  height: number,
  depth: number,
  colorType: number,
  interlace = 0,
  compression = 0,
  filter = 0,
): Uint8Array {
  const d = new Uint8Array(13);
  const v = new DataView(d.buffer);
  v.setUint32(0, width >>> 0, false);
  v.setUint32(4, height >>> 0, false);
  d.set([depth, colorType, compression, filter, interlace], 8);
  return d;
}

/** Rewrites every chunk's CRC that lies within the file, so mutations of chunk contents get past the CRC check. */
export function fixPngCrcs(bytes: Uint8Array): Uint8Array {
  const b = Uint8Array.from(bytes);
  const view = new DataView(b.buffer);
  let pos = 8;
  while (pos + 12 <= b.length) {
    const length = view.getUint32(pos, false);
    if (pos + 12 + length > b.length) break;
    view.setUint32(pos + 8 + length, crc32(b.subarray(pos + 4, pos + 8 + length)), false);
    pos += 12 + length;
  }
  return b;
}

/** PNG bytes: signature, IHDR, the extra chunks, IDAT(s) of `raw` deflated and split, IEND. */
export function rawPng(header: Uint8Array, raw: Uint8Array, extra: Uint8Array[] = [], splits = 1): Uint8Array {
  const z = deflateSync(raw);
  const idats: Uint8Array[] = [];
  const step = Math.ceil(z.length / splits);
  for (let i = 0; i < z.length; i += step) idats.push(rawChunk('IDAT', z.subarray(i, i + step)));
  return concat([PNG_SIGNATURE, rawChunk('IHDR', header), ...extra, ...idats, rawChunk('IEND', new Uint8Array(0))]);
}
