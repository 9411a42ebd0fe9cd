// Seeded standard normals in double on the host, from the library's Philox stream (random.ts): the
// same values on every machine, so a metric with random projections is a pure function of its seed.
import { philoxBlock } from '../random.ts';

const TWO32 = 4294967296;

/** n standard normals: Box-Muller on pairs of 32-bit words of Philox(seed, offset 0, stream). */
export function seededNormals(n: number, seed: bigint, stream: bigint): Float64Array {
  const out = new Float64Array(n);
  for (let b = 0; 2 * b < n; b++) {
    const [w0, w1, w2, w3] = philoxBlock(seed, 0n, stream, b);
    // u1 in (0, 1] so log(u1) is finite; two 32-bit words per uniform keep the tails continuous enough for projections.
    const u1 = (w0 + (w1 + 1) / TWO32) / TWO32;
    const u2 = (w2 + w3 / TWO32) / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[2 * b] = r * Math.cos(2 * Math.PI * u2);
    if (2 * b + 1 < n) out[2 * b + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
