// Block averaging by k: y = the mean of each k x k block, [C, H/k, W/k]. Its SVD: U = I on the
// low-resolution image, per block one singular value 1/k (the normalised constant vector: the block
// mean is (block sum / k) / k) and k*k - 1 zeros, completed by the Helmert basis. The SVD-domain layout
// is plane-major: x̄ viewed as [N, C, k*k, H/k, W/k] holds coefficient j of block (bi, bj) at
// [n, c, j, bi, bj], so the observed coefficients (j = 0) are the first H/k * W/k values of each
// channel: the low-resolution image times k. (native/cpu/block_average.cpp has the transform.)
import { native } from '../native.ts';
import { resolveDevice } from '../device.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { checkBatch, checkCount, checkIndices, checkShape, into, mul, type Degradation } from './operator.ts';

export class BlockAverageOperator implements Degradation {
  readonly kind = 'blockaverage' as const;
  readonly batchSize: number;
  readonly device: string;
  readonly signalShape: readonly number[];
  readonly measurementShape: readonly number[];
  readonly k: number;
  #s: Tensor | undefined;
  #p: Tensor | undefined;

  constructor(n: number, signalShape: readonly number[], k: number, options: { device?: string } = {}) {
    this.batchSize = checkCount(n, 'n');
    const [C, H, W] = checkShape(signalShape, 'signalShape');
    if (!Number.isSafeInteger(k) || k < 1 || k > 64 || H % k || W % k)
      throw new RangeError(`k: expected an integer in [1, 64] dividing the height ${H} and width ${W}, got ${JSON.stringify(k)}`);
    this.k = k;
    this.device = resolveDevice(options.device);
    this.signalShape = Object.freeze([C, H, W]);
    this.measurementShape = Object.freeze([C, H / k, W / k]);
  }

  /** [N, C, H, W] with `value` on the observed coefficients (the first plane of each channel), 0 elsewhere. */
  #pattern(value: number): Tensor {
    const [C, H, W] = this.signalShape as [number, number, number];
    const plane = (H / this.k) * (W / this.k);
    const out = new Float32Array(this.batchSize * C * H * W);
    for (let p = 0; p < this.batchSize * C; p++) out.fill(value, p * H * W, p * H * W + plane);
    return tensor(out, [this.batchSize, C, H, W], { device: this.device });
  }

  #check(t: Tensor, what: string, shape: readonly number[]): Tensor {
    return checkBatch(t, what, this.batchSize, shape, this.device);
  }

  vt(x: Tensor): Tensor {
    const h = this.#check(x, 'x', this.signalShape).handle();
    return into(this.device, x.shape, (out) => native.blockAverageVt(h, this.k, 1, out));
  }
  v(xbar: Tensor): Tensor {
    const h = this.#check(xbar, 'xbar', this.signalShape).handle();
    return into(this.device, xbar.shape, (out) => native.blockAverageV(h, this.k, 1, out));
  }
  singularValues(): Tensor {
    return (this.#s ??= this.#pattern(1 / this.k)).clone();
  }
  /** The block means: coefficient 0 (block sum / k) times the singular value 1/k. */
  apply(x: Tensor): Tensor {
    const h = this.#check(x, 'x', this.signalShape).handle();
    return into(this.device, [this.batchSize, ...this.measurementShape], (out) => native.blockAverageVt(h, this.k, 1 / this.k, out));
  }
  /** Each mean spread over its block, divided by k*k: V Σᵀ y. */
  adjoint(y: Tensor): Tensor {
    const h = this.#check(y, 'y', this.measurementShape).handle();
    return into(this.device, [this.batchSize, ...this.signalShape], (out) => native.blockAverageV(h, this.k, 1 / this.k, out));
  }
  /** Each mean copied over its block: V Σ† y. */
  pinv(y: Tensor): Tensor {
    const h = this.#check(y, 'y', this.measurementShape).handle();
    return into(this.device, [this.batchSize, ...this.signalShape], (out) => native.blockAverageV(h, this.k, this.k, out));
  }
  /** k y on the observed plane, exact zeros elsewhere: Vᵀ(H† y) projected by P (the observed plane is
   *  k y up to float rounding of the transform pair; the projection makes the rest exactly 0). */
  toSvd(y: Tensor): Tensor {
    const up = this.pinv(y);
    const coefs = this.vt(up);
    up.dispose();
    const out = mul(coefs, (this.#p ??= this.#pattern(1)));
    coefs.dispose();
    return out;
  }
  measurementMask(): null {
    return null;
  }
  select(indices: readonly number[]): BlockAverageOperator {
    return new BlockAverageOperator(checkIndices(indices, this.batchSize).length, this.signalShape, this.k, { device: this.device });
  }
  dispose(): void {
    this.#s?.dispose();
    this.#p?.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
