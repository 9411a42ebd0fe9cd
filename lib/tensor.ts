// Float32 NCHW tensors on a device. Operations queue work on the device and return at once; results
// are read with `await t.toArray()`. Work on one device runs in the order it was queued.
import { resolveDevice } from './device.ts';
import { native, type NativeTensor } from './native.ts';
import { Generator, getDefaultGenerator } from './random.ts';

export type Shape = readonly number[];

export interface CreateOptions {
  /** "cpu", "cuda" or "cuda:N"; default: defaultDevice(). */
  device?: string;
}

export interface RandomOptions extends CreateOptions {
  /** Default: the default generator (see manualSeed). */
  generator?: Generator;
}

function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 8)
    throw new TypeError(`${what}: expected an array of 1 to 8 dimensions, got ${JSON.stringify(shape)}`);
  for (const [i, d] of shape.entries())
    if (!Number.isSafeInteger(d) || d < 1)
      throw new TypeError(`${what}: dimension ${i} must be a positive integer, got ${JSON.stringify(d)} in ${JSON.stringify(shape)}`);
  return [...shape];
}

function numelOf(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor implements Disposable {
  readonly shape: Shape;
  readonly device: string;
  #handle: NativeTensor | null;

  /** Wraps a native handle; use the factory functions (tensor, zeros, randn, ...) instead. */
  constructor(handle: NativeTensor) {
    this.#handle = handle;
    this.shape = Object.freeze([...handle.shape]);
    this.device = handle.device!;
  }

  get numel(): number {
    return numelOf(this.shape);
  }

  get disposed(): boolean {
    return this.#handle === null || this.#handle.disposed;
  }

  /** The native handle, for ops; throws a clear error after dispose(). */
  handle(what = 'tensor'): NativeTensor {
    if (this.#handle === null || this.#handle.disposed) throw new TypeError(`${what}: the tensor was disposed`);
    return this.#handle;
  }

  /** Copies the values to JavaScript once all queued work that writes them has finished. */
  toArray(): Promise<Float32Array> {
    try {
      return native.read(this.handle());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A copy on `device` (any pair of devices). */
  to(device: string): Tensor {
    const src = this.handle('src');
    const out = new Tensor(native.empty(resolveDevice(device), this.shape));
    native.copy(src, out.handle());
    return out;
  }

  clone(): Tensor {
    return this.to(this.device);
  }

  /** this + other, elementwise (same shape and device). */
  add(other: Tensor): Tensor {
    const [a, b] = [this.handle('a'), other.handle('b')];
    return into(this.device, this.shape, (out) => native.add(a, b, out));
  }

  /** s * this. */
  scale(s: number): Tensor {
    const a = this.handle('a');
    return into(this.device, this.shape, (out) => native.scale(a, s, out));
  }

  /** min(max(this, low), high) elementwise (NaN stays NaN). */
  clamp(low: number, high: number): Tensor {
    const a = this.handle('a');
    return into(this.device, this.shape, (out) => native.clamp(a, low, high, out));
  }

  /** The sum of all elements, as a one-element tensor (accumulated in double). */
  sum(): Tensor {
    const a = this.handle('a');
    return into(this.device, [1], (out) => native.sum(a, out));
  }

  /** Sets every element to `value`, in place. */
  fill_(value: number): this {
    native.fill(this.handle('out'), value);
    return this;
  }

  /** Releases the memory now (queued work that still uses it keeps it until it finishes). */
  dispose(): void {
    this.#handle?.dispose();
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${JSON.stringify(this.shape)}, ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/** An uninitialised tensor. `guarded` adds guard bytes after the data (golden tests). */
export function empty(shape: Shape, options: CreateOptions & { guarded?: boolean } = {}): Tensor {
  return new Tensor(native.empty(resolveDevice(options.device), checkShape(shape, 'shape'), options.guarded ?? false));
}

/**
 * Runs `op`, which queues native work writing into `outputs` (tensors just allocated for it), and
 * returns its result; if queuing throws (a bad argument), the outputs are freed at once and the error
 * passes on, so a failed call leaves nothing allocated. Every lib call into `native.*` that allocates
 * its outputs goes through this (or `into`, its one-output form).
 */
export function disposeOnThrow<R>(outputs: readonly (Tensor | null | undefined)[], op: () => R): R {
  try {
    return op();
  } catch (e) {
    for (const t of outputs) t?.dispose();
    throw e;
  }
}

/** A new tensor of `shape` on `device` written by `op`; freed at once if queuing the op throws. */
export function into(device: string, shape: Shape, op: (out: NativeTensor) => void): Tensor {
  const out = empty(shape, { device });
  return disposeOnThrow([out], () => {
    op(out.handle('out'));
    return out;
  });
}

/** A tensor holding `data` (row-major, NCHW) with the given shape. */
export function tensor(data: Float32Array | readonly number[], shape: Shape, options: CreateOptions = {}): Tensor {
  const dims = checkShape(shape, 'shape');
  const values = data instanceof Float32Array ? data : Array.isArray(data) ? Float32Array.from(data) : undefined;
  if (values === undefined) throw new TypeError('data: expected a Float32Array or an array of numbers');
  if (values.length !== numelOf(dims))
    throw new TypeError(`data: shape ${JSON.stringify(dims)} needs ${numelOf(dims)} values, got ${values.length}`);
  const t = empty(dims, options);
  native.write(t.handle(), values);
  return t;
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  if (typeof value !== 'number') throw new TypeError(`value: expected a number, got ${typeof value}`);
  return empty(shape, options).fill_(value);
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** Standard normal values (Box-Muller on Philox4x32-10). */
export function randn(shape: Shape, options: RandomOptions = {}): Tensor {
  const t = empty(shape, options);
  const key = (options.generator ?? getDefaultGenerator()).next(t.numel);
  native.randn(t.handle(), key.seed, key.offset, key.stream);
  return t;
}

/** Uniform values in [low, high) (24 random bits each). */
export function rand(shape: Shape, options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high))
    throw new RangeError(`rand: expected finite low < high, got low=${low} high=${high}`);
  const t = empty(shape, options);
  const key = (options.generator ?? getDefaultGenerator()).next(t.numel);
  native.uniform(t.handle(), low, high, key.seed, key.offset, key.stream);
  return t;
}
