// Subsampled orthonormal 2-D Fourier transform (MRI-like): Vᵀ = F (native fft2, unitary), U = I,
// Σ = the k-space line mask (s = 1 on sampled lines, 0 elsewhere). Signals and measurements are
// [2, H, W] (channel 0 real, 1 imaginary; H and W powers of two); a measurement is the full k-space
// with zeros on the lines not sampled. k-space is unshifted (frequency 0 at row 0), and lines are rows
// (phase-encoding direction along the height): row i has the signed frequency i for i < H/2, i - H else.
import { native } from '../native.ts';
import { philoxBlock } from '../random.ts';
import { resolveDevice } from '../device.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { checkBatch, checkCount, checkIndices, checkShape, into, mul, toSeed, type Degradation } from './operator.ts';

/** The Philox stream of line draws ("line" in ASCII). */
export const LINE_STREAM = 0x6c696e65n;

export interface LineMaskOptions {
  /** Lines of lowest |frequency| always sampled: frequencies -floor(c/2) .. ceil(c/2) - 1. */
  centerLines: number;
  /** Further lines drawn uniformly without replacement from the rest, per sample. */
  randomLines: number;
  seed: bigint | number;
}

/** The row of signed frequency f in unshifted k-space of height H. */
const rowOf = (f: number, H: number) => ((f % H) + H) % H;

/**
 * n line masks [n, H] (1 = sampled): the centre lines, then `randomLines` more by a partial
 * Fisher-Yates shuffle of the other rows in increasing order, draw t of sample i being word t of
 * block offset i * ceil(H / 4) of (seed, LINE_STREAM), scaled to the remaining count (a bias below
 * H / 2^32).
 */
export function randomLineMask(n: number, H: number, options: LineMaskOptions): Uint8Array {
  checkCount(n, 'n');
  checkCount(H, 'H');
  const { centerLines: c, randomLines: r } = options ?? ({} as LineMaskOptions);
  if (!Number.isSafeInteger(c) || c < 0 || c > H)
    throw new RangeError(`options.centerLines: expected an integer in [0, ${H}], got ${JSON.stringify(c)}`);
  if (!Number.isSafeInteger(r) || r < 0 || r > H - c)
    throw new RangeError(`options.randomLines: expected an integer in [0, ${H - c}] (H - centerLines), got ${JSON.stringify(r)}`);
  const seed = toSeed(options.seed);
  const centre = new Uint8Array(H);
  for (let f = -Math.floor(c / 2); f < Math.ceil(c / 2); f++) centre[rowOf(f, H)] = 1;
  const rest: number[] = [];
  for (let i = 0; i < H; i++) if (!centre[i]) rest.push(i);
  const blocksPerSample = Math.ceil(H / 4);
  const out = new Uint8Array(n * H);
  for (let i = 0; i < n; i++) {
    out.set(centre, i * H);
    const pool = [...rest];
    let block: [number, number, number, number] = [0, 0, 0, 0];
    for (let t = 0; t < r; t++) {
      if (t % 4 === 0) block = philoxBlock(seed, BigInt(i * blocksPerSample + t / 4), LINE_STREAM, 0);
      const j = t + Math.floor((block[t % 4]! / 4294967296) * (pool.length - t));
      [pool[t], pool[j]] = [pool[j]!, pool[t]!];
      out[i * H + pool[t]!] = 1;
    }
  }
  return out;
}

export class FourierOperator implements Degradation {
  readonly kind = 'fourier' as const;
  readonly batchSize: number;
  readonly device: string;
  readonly signalShape: readonly number[];
  readonly measurementShape: readonly number[];
  /** The host line mask [N, H]. */
  readonly lines: Uint8Array;
  #m: Tensor;

  /** `lines` [N, H]: 1 where row i of sample n's k-space is sampled; signals [2, H, W]. */
  constructor(lines: Uint8Array, signalShape: readonly number[], options: { device?: string } = {}) {
    const [two, H, W] = checkShape(signalShape, 'signalShape') as [number, number, number];
    if (two !== 2)
      throw new RangeError(`signalShape: expected [2, H, W] (real and imaginary channels), got ${JSON.stringify(signalShape)}`);
    for (const [d, v] of [
      ['height', H],
      ['width', W],
    ] as const)
      if (v > 2048 || (v & (v - 1)) !== 0)
        throw new RangeError(`signalShape: the ${d} must be a power of two up to 2048, got ${v} in ${JSON.stringify(signalShape)}`);
    if (!(lines instanceof Uint8Array) || lines.length === 0 || lines.length % H)
      throw new RangeError(
        `lines: expected a Uint8Array of N * ${H} values (one per k-space row), got ${lines instanceof Uint8Array ? lines.length : typeof lines}`,
      );
    const bad = lines.findIndex((v) => v > 1);
    if (bad >= 0) throw new RangeError(`lines: values must be 0 or 1, got ${lines[bad]} at index ${bad}`);
    this.batchSize = lines.length / H;
    this.device = resolveDevice(options.device);
    this.signalShape = Object.freeze([2, H, W]);
    this.measurementShape = this.signalShape;
    this.lines = Uint8Array.from(lines);
    const full = new Float32Array(this.batchSize * 2 * H * W);
    for (let i = 0; i < this.batchSize; i++)
      for (let ch = 0; ch < 2; ch++)
        for (let row = 0; row < H; row++)
          if (lines[i * H + row]) full.fill(1, ((i * 2 + ch) * H + row) * W, ((i * 2 + ch) * H + row + 1) * W);
    this.#m = tensor(full, [this.batchSize, 2, H, W], { device: this.device });
  }

  #check(t: Tensor, what: string): Tensor {
    return checkBatch(t, what, this.batchSize, this.signalShape, this.device);
  }
  #fft(t: Tensor, inverse: boolean): Tensor {
    const h = t.handle();
    return into(this.device, t.shape, (out) => native.fft2(h, inverse, out));
  }

  vt(x: Tensor): Tensor {
    return this.#fft(this.#check(x, 'x'), false);
  }
  v(xbar: Tensor): Tensor {
    return this.#fft(this.#check(xbar, 'xbar'), true);
  }
  singularValues(): Tensor {
    return this.#m.clone();
  }
  apply(x: Tensor): Tensor {
    const k = this.vt(x);
    const out = mul(k, this.#m);
    k.dispose();
    return out;
  }
  adjoint(y: Tensor): Tensor {
    const masked = mul(this.#check(y, 'y'), this.#m);
    const out = this.#fft(masked, true);
    masked.dispose();
    return out;
  }
  /** Equal to the adjoint: the singular values are 0 or 1. */
  pinv(y: Tensor): Tensor {
    return this.adjoint(y);
  }
  toSvd(y: Tensor): Tensor {
    return mul(this.#check(y, 'y'), this.#m);
  }
  measurementMask(): Tensor {
    return this.#m.clone();
  }
  select(indices: readonly number[]): FourierOperator {
    const rows = checkIndices(indices, this.batchSize);
    const H = this.signalShape[1]!;
    const out = new Uint8Array(rows.length * H);
    rows.forEach((r, j) => out.set(this.lines.subarray(r * H, (r + 1) * H), j * H));
    return new FourierOperator(out, this.signalShape, { device: this.device });
  }
  dispose(): void {
    this.#m.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Random line masks (randomLineMask) for n signals [2, H, W]. */
export function randomFourier(n: number, signalShape: readonly number[], options: LineMaskOptions & { device?: string }): FourierOperator {
  const [, H] = checkShape(signalShape, 'signalShape');
  return new FourierOperator(randomLineMask(n, H, options), signalShape, { device: options.device });
}
