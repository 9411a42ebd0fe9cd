// The masks of Ambient Diffusion (docs/ambient.md): each training image comes with its own mask A, and
// every step corrupts it further, Ã = A ⊙ B, where B drops each pixel (or each patch) with probability
// δ. Draws come from Philox, so a step's masks depend only on (seed, stream) and resumed runs repeat.
import { philoxBlock } from '../random.ts';

/** The Philox stream of the sampling masks ("ambi" in ASCII), apart from every training stream. */
export const AMBIENT_SAMPLING_STREAM = 0x616d6269n;

export interface FurtherCorruption {
  /** Probability that the further mask B drops a pixel (or patch) that A kept, in (0, 1). */
  delta: number;
  /** Side of the square patches B drops together (default 1: pixels). */
  patch?: number;
}

/** Checks a FurtherCorruption against images of size H x W; returns the patch side. */
export function checkFurther(f: FurtherCorruption, H: number, W: number): number {
  const delta = f?.delta;
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1))
    throw new RangeError(`ambient.delta: expected a further drop probability in (0, 1), got ${JSON.stringify(delta)}`);
  const patch = f.patch ?? 1;
  if (!Number.isSafeInteger(patch) || patch < 1 || H % patch || W % patch)
    throw new RangeError(
      `ambient.patch: expected a positive integer dividing the height ${H} and width ${W}, got ${JSON.stringify(patch)}`,
    );
  return patch;
}

/**
 * Ã = A ⊙ B for n masks A [n, H, W] (values 0 or 1): patch q of mask i is dropped when word
 * (i · patches + q) of the stream (seed, stream) is below δ · 2^32.
 */
export function furtherCorrupt(
  masks: Uint8Array,
  n: number,
  H: number,
  W: number,
  f: FurtherCorruption,
  seed: bigint,
  stream: bigint,
): Uint8Array {
  const patch = checkFurther(f, H, W);
  if (masks.length !== n * H * W)
    throw new RangeError(`masks: expected ${n * H * W} values (${n} masks of ${H}x${W}), got ${masks.length}`);
  const out = masks.slice();
  const pw = W / patch;
  const patches = (H / patch) * pw;
  const threshold = f.delta * 4294967296;
  let block: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < n; i++)
    for (let q = 0; q < patches; q++) {
      const word = i * patches + q;
      if (word % 4 === 0) block = philoxBlock(seed, 0n, stream, Math.floor(word / 4));
      if (block[word % 4]! >= threshold) continue; // kept by B
      const r0 = Math.floor(q / pw) * patch,
        c0 = (q % pw) * patch;
      for (let r = r0; r < r0 + patch; r++) out.fill(0, i * H * W + r * W + c0, i * H * W + r * W + c0 + patch);
    }
  return out;
}
