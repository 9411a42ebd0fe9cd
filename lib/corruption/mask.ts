// Pixel and patch masks: H = diag(m) with m in {0, 1}, so U = V = I and the singular values are the
// mask itself. A measurement has the signal's shape; dropped pixels hold 0 (placeholders, not data).
// Random masks come from Philox (lib/random.ts) on a stream of their own, and sample i's mask depends
// only on (seed, i): the same seed gives the same masks whatever the number of samples drawn.
import { philoxBlock } from '../random.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { resolveDevice } from '../device.ts';
import { checkBatch, checkCount, checkIndices, checkShape, mul, toSeed, type Degradation } from './operator.ts';

/** The Philox stream of mask draws ("mask" in ASCII), apart from noise and line draws of the same seed. */
export const MASK_STREAM = 0x6d61736bn;

export interface RandomMaskOptions {
  /** Side of the square patches dropped together (1: pixel mask). H and W must be multiples of it. Default 1. */
  patch?: number;
  /** Probability that a patch is dropped, in [0, 1]. */
  p: number;
  seed: bigint | number;
}

/**
 * n random masks [n, 1, H, W] (1 = observed, 0 = dropped): each patch x patch square of sample i is
 * dropped when word (i * patches + q) of the stream (seed, MASK_STREAM) is below p * 2^32, q the patch
 * index in row-major order.
 */
export function randomPatchMask(n: number, size: readonly [number, number] | readonly number[], options: RandomMaskOptions): Uint8Array {
  checkCount(n, 'n');
  const [H, W] = checkShape(size, 'size', 2) as [number, number];
  const patch = options?.patch ?? 1;
  if (!Number.isSafeInteger(patch) || patch < 1 || H % patch || W % patch)
    throw new RangeError(
      `options.patch: expected a positive integer dividing the height ${H} and width ${W}, got ${JSON.stringify(patch)}`,
    );
  const p = options.p;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1))
    throw new RangeError(`options.p: expected a drop probability in [0, 1], got ${JSON.stringify(p)}`);
  const seed = toSeed(options.seed);
  const ph = H / patch,
    pw = W / patch,
    patches = ph * pw;
  const out = new Uint8Array(n * H * W);
  const threshold = p * 4294967296;
  let block: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < n; i++)
    for (let q = 0; q < patches; q++) {
      const word = i * patches + q;
      if (word % 4 === 0) block = philoxBlock(seed, 0n, MASK_STREAM, Math.floor(word / 4));
      if (block[word % 4]! < threshold) continue; // dropped: stays 0
      const r0 = Math.floor(q / pw) * patch,
        c0 = (q % pw) * patch;
      for (let r = r0; r < r0 + patch; r++) out.fill(1, i * H * W + r * W + c0, i * H * W + r * W + c0 + patch);
    }
  return out;
}

export interface MaskOperatorOptions {
  /** Default: defaultDevice(). */
  device?: string;
}

/** H = diag(m) for each sample: `mask` [N, 1, H, W] (one mask for every channel) or [N, C, H, W], values 0 or 1. */
export class MaskOperator implements Degradation {
  readonly kind = 'mask' as const;
  readonly batchSize: number;
  readonly device: string;
  readonly signalShape: readonly number[];
  readonly measurementShape: readonly number[];
  /** The host copy of the mask, as given: [N, maskChannels, H, W]. */
  readonly mask: Uint8Array;
  readonly maskChannels: number;
  #m: Tensor;

  constructor(
    mask: Uint8Array | Float32Array,
    maskShape: readonly number[],
    signalShape: readonly number[],
    options: MaskOperatorOptions = {},
  ) {
    const [n, mc, mh, mw] = checkShape(maskShape, 'maskShape', 4) as [number, number, number, number];
    const [C, H, W] = checkShape(signalShape, 'signalShape');
    if (mh !== H || mw !== W || (mc !== 1 && mc !== C))
      throw new RangeError(
        `maskShape: expected [N, 1 or ${C}, ${H}, ${W}] for signals of shape ${JSON.stringify(signalShape)}, got ${JSON.stringify(maskShape)}`,
      );
    if (!(mask instanceof Uint8Array || mask instanceof Float32Array))
      throw new TypeError('mask: expected a Uint8Array or Float32Array of 0 and 1');
    if (mask.length !== n * mc * H * W)
      throw new RangeError(`mask: shape ${JSON.stringify(maskShape)} needs ${n * mc * H * W} values, got ${mask.length}`);
    const bad = mask.findIndex((v) => v !== 0 && v !== 1);
    if (bad >= 0) throw new RangeError(`mask: values must be 0 (dropped) or 1 (observed), got ${mask[bad]} at index ${bad}`);
    this.batchSize = n;
    this.device = resolveDevice(options.device);
    this.signalShape = Object.freeze([C, H, W]);
    this.measurementShape = this.signalShape;
    this.mask = Uint8Array.from(mask);
    this.maskChannels = mc;
    const full = new Float32Array(n * C * H * W);
    const plane = H * W;
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++)
        for (let j = 0; j < plane; j++) full[(i * C + c) * plane + j] = this.mask[(i * mc + (mc === 1 ? 0 : c)) * plane + j]!;
    this.#m = tensor(full, [n, C, H, W], { device: this.device });
  }

  #check(t: Tensor, what: string): Tensor {
    return checkBatch(t, what, this.batchSize, this.signalShape, this.device);
  }

  vt(x: Tensor): Tensor {
    return this.#check(x, 'x').clone();
  }
  v(xbar: Tensor): Tensor {
    return this.#check(xbar, 'xbar').clone();
  }
  singularValues(): Tensor {
    return this.#m.clone();
  }
  apply(x: Tensor): Tensor {
    return mul(this.#check(x, 'x'), this.#m);
  }
  adjoint(y: Tensor): Tensor {
    return mul(this.#check(y, 'y'), this.#m);
  }
  pinv(y: Tensor): Tensor {
    return mul(this.#check(y, 'y'), this.#m);
  }
  toSvd(y: Tensor): Tensor {
    return mul(this.#check(y, 'y'), this.#m);
  }
  measurementMask(): Tensor {
    return this.#m.clone();
  }
  select(indices: readonly number[]): MaskOperator {
    const rows = checkIndices(indices, this.batchSize);
    const per = this.mask.length / this.batchSize;
    const out = new Uint8Array(rows.length * per);
    rows.forEach((r, j) => out.set(this.mask.subarray(r * per, (r + 1) * per), j * per));
    return new MaskOperator(out, [rows.length, this.maskChannels, this.signalShape[1]!, this.signalShape[2]!], this.signalShape, {
      device: this.device,
    });
  }
  dispose(): void {
    this.#m.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Pixel masks (patch 1) or patch masks drawn at random for n samples of shape [C, H, W]: one mask per sample, shared by its channels. */
export function randomMask(n: number, signalShape: readonly number[], options: RandomMaskOptions & MaskOperatorOptions): MaskOperator {
  const [, H, W] = checkShape(signalShape, 'signalShape');
  const mask = randomPatchMask(n, [H, W], options);
  return new MaskOperator(mask, [n, 1, H, W], signalShape, { device: options.device });
}
