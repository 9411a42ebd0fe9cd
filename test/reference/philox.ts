// An independent Philox4x32-10 and Box-Muller in JavaScript (BigInt and double arithmetic), written
// from the published algorithm: the reference the native generator is checked against.
const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9n;
const W1 = 0xbb67ae85n;
const MASK = 0xffffffffn;

export function philox4x32_10(ctr: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = ctr.map(BigInt) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map(BigInt) as [bigint, bigint];
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) & MASK;
      k1 = (k1 + W1) & MASK;
    }
    const p0 = M0 * c0;
    const p1 = M1 * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & MASK, (p0 >> 32n) ^ c3 ^ k1, p0 & MASK];
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Block b of the project's stream: counter = (offset + b, stream), key = seed, each as (lo, hi) words. */
export function streamBlock(seed: bigint, offset: bigint, stream: bigint, b: number): number[] {
  const ctr = (offset + BigInt(b)) & ((1n << 64n) - 1n);
  return philox4x32_10(
    [Number(ctr & MASK), Number(ctr >> 32n), Number(stream & MASK), Number(stream >> 32n)],
    [Number(seed & MASK), Number(seed >> 32n)],
  );
}

export function referenceBits(n: number, seed: bigint, offset = 0n, stream = 0n): Uint32Array {
  const out = new Uint32Array(n);
  for (let b = 0; b * 4 < n; b++) {
    const w = streamBlock(seed, offset, stream, b);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = w[j]!;
  }
  return out;
}

export function referenceNormals(n: number, seed: bigint, offset = 0n, stream = 0n): Float64Array {
  const bits = referenceBits(Math.ceil(n / 4) * 4, seed, offset, stream);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = ((bits[i]! >>> 8) + 1) / 16777216;
    const u2 = (bits[i + 1]! >>> 8) / 16777216;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export function referenceUniform(n: number, low: number, high: number, seed: bigint, offset = 0n, stream = 0n): Float64Array {
  const bits = referenceBits(n, seed, offset, stream);
  return Float64Array.from(bits, (x) => low + (high - low) * ((x >>> 8) / 16777216));
}
