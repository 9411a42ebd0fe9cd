// Random numbers from Philox4x32-10, a counter-based generator: a draw is a pure function of
// (seed, offset, stream), so the CPU and every GPU produce the same values, and a generator's whole
// state is two integers that a checkpoint can store.
import { resolveDevice } from './device.ts';
import { native } from './native.ts';

const U64_MAX = (1n << 64n) - 1n;

function toU64(v: bigint | number, what: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${what}: expected a non-negative integer, got ${v}`);
    return BigInt(v);
  }
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new TypeError(`${what}: expected an integer in [0, 2^64), got ${String(v)}`);
  return v;
}

/** Where a draw's values come from: value j of the draw is word j % 4 of Philox block (offset + j / 4). */
export interface RngKey {
  seed: bigint;
  offset: bigint;
  stream: bigint;
}

/**
 * A generator: a seed and an offset counted in Philox blocks (4 values each). Every draw takes
 * ceil(n / 4) blocks and advances the offset by as many, so consecutive draws never overlap.
 * `stream` selects an independent sequence for the same seed (e.g. one per purpose or per worker).
 */
export class Generator {
  #seed: bigint;
  #offset = 0n;
  readonly stream: bigint;

  constructor(seed: bigint | number, options: { stream?: bigint | number } = {}) {
    this.#seed = toU64(seed, 'seed');
    this.stream = toU64(options.stream ?? 0n, 'stream');
  }

  get seed(): bigint {
    return this.#seed;
  }

  get offset(): bigint {
    return this.#offset;
  }

  /** Reserves the blocks for n values and returns their key. */
  next(n: number): RngKey {
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`n: expected a non-negative integer, got ${n}`);
    const key = { seed: this.#seed, offset: this.#offset, stream: this.stream };
    this.#offset = (this.#offset + BigInt(Math.ceil(n / 4))) & U64_MAX;
    return key;
  }

  /** The state to save in a checkpoint; `setState` restores it exactly. */
  getState(): { seed: string; offset: string; stream: string } {
    return { seed: this.#seed.toString(), offset: this.#offset.toString(), stream: this.stream.toString() };
  }

  static fromState(state: { seed: string; offset: string; stream: string }): Generator {
    const g = new Generator(toU64(BigInt(state.seed), 'state.seed'), { stream: toU64(BigInt(state.stream), 'state.stream') });
    g.#offset = toU64(BigInt(state.offset), 'state.offset');
    return g;
  }
}

let defaultGenerator: Generator | undefined;

function freshSeed(): bigint {
  const env = process.env.KINTSUGI_SEED;
  if (env !== undefined && env !== '') {
    if (!/^\d+$/.test(env)) throw new TypeError(`KINTSUGI_SEED: expected a non-negative integer, got "${env}"`);
    return toU64(BigInt(env), 'KINTSUGI_SEED');
  }
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0]!) << 32n) | BigInt(words[1]!);
}

/** The generator used when none is given: seeded from $KINTSUGI_SEED, else at random. */
export function getDefaultGenerator(): Generator {
  defaultGenerator ??= new Generator(freshSeed());
  return defaultGenerator;
}

/** Replaces the default generator with one seeded by `seed`. */
export function manualSeed(seed: bigint | number): Generator {
  defaultGenerator = new Generator(seed);
  return defaultGenerator;
}

/**
 * The raw uint32 stream: n words starting at block `offset` of (seed, stream), computed on `device`.
 * Streams are bit-identical on every device.
 */
export async function philoxBits(
  n: number,
  key: { seed: bigint | number; offset?: bigint | number; stream?: bigint | number },
  options: { device?: string } = {},
): Promise<Uint32Array> {
  if (!Number.isSafeInteger(n) || n < 1) throw new TypeError(`n: expected a positive integer, got ${n}`);
  const device = resolveDevice(options.device);
  const t = native.empty(device, [n]);
  try {
    native.randomBits(t, toU64(key.seed, 'seed'), toU64(key.offset ?? 0n, 'offset'), toU64(key.stream ?? 0n, 'stream'));
    const f = await native.read(t);
    return new Uint32Array(f.buffer, f.byteOffset, f.length);
  } finally {
    t.dispose();
  }
}

// 32x32 -> 64-bit product as (hi, lo) in plain double arithmetic (exact: every partial is < 2^53).
function mulhilo(a: number, b: number): [number, number] {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return [(ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0, Math.imul(a, b) >>> 0];
}

/**
 * Block `block` of the stream (seed, offset, stream), computed synchronously in JavaScript: the same
 * four words as the native generator (kintsugi/philox.h), for small host-side draws (batch indices,
 * time steps) that should not wait for a device queue.
 */
export function philoxBlock(seed: bigint, offset: bigint, stream: bigint, block: number): [number, number, number, number] {
  const ctr = (offset + BigInt(block)) & U64_MAX;
  let c0 = Number(ctr & 0xffffffffn);
  let c1 = Number(ctr >> 32n);
  let c2 = Number(stream & 0xffffffffn);
  let c3 = Number((stream >> 32n) & 0xffffffffn);
  let k0 = Number(seed & 0xffffffffn);
  let k1 = Number((seed >> 32n) & 0xffffffffn);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** n uniform integers in [0, bound) from the stream (seed, 0, stream): word j of the draw, scaled. */
export function philoxIntegers(n: number, bound: number, seed: bigint, stream: bigint): Int32Array {
  const out = new Int32Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const w = philoxBlock(seed, 0n, stream, b);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = Math.floor((w[j]! / 4294967296) * bound);
  }
  return out;
}
