// AdamW with learning-rate warm-up and gradient clipping by global norm, and an EMA of the weights.
// Each works on the model's flat parameter and gradient tensors: one pass per step, queued on the
// model's device with no host synchronisation (the clipping norm is read on the device).
import { native } from './native.ts';
import { empty, Tensor, zeros } from './tensor.ts';

/** Anything with flat params and grads on one device, such as a UNet. */
export interface Parameters {
  readonly params: Tensor;
  readonly grads: Tensor;
}

export interface AdamWOptions {
  /** Peak learning rate (default 1e-4). */
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay (default 0). */
  weightDecay?: number;
  /** Linear warm-up from lr/warmupSteps to lr over this many steps (default 0: none). */
  warmupSteps?: number;
  /** Clip gradients to this global L2 norm (default 0: no clipping). */
  maxGradNorm?: number;
}

export interface AdamWState {
  step: number;
  m: Tensor;
  v: Tensor;
}

export class AdamW {
  readonly options: Readonly<Required<AdamWOptions>>;
  readonly m: Tensor;
  readonly v: Tensor;
  #step = 0;
  readonly #target: Parameters;
  /** The squared global gradient norm of the last step (one element, on the device). */
  readonly #sumsq: Tensor;

  constructor(target: Parameters, options: AdamWOptions = {}) {
    this.options = resolveAdamWOptions(options);
    this.#target = target;
    const { shape, device } = target.params;
    this.m = zeros(shape, { device });
    this.v = zeros(shape, { device });
    this.#sumsq = zeros([1], { device });
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /** The learning rate of (1-based) step `step`, after warm-up. */
  lrAt(step: number): number {
    const w = this.options.warmupSteps;
    return w > 0 ? (this.options.lr * Math.min(step, w)) / w : this.options.lr;
  }

  /**
   * Applies the gradients accumulated in target.grads (it does not clear them); `lrFactor` scales this
   * step's rate (a decay schedule, see lrDecayFactor in training-loop.ts).
   */
  step(lrFactor = 1): void {
    if (!(lrFactor >= 0 && Number.isFinite(lrFactor)))
      throw new RangeError(`AdamW: lrFactor must be a finite number >= 0, got ${lrFactor}`);
    const step = this.#step + 1;
    const { params, grads } = this.#target;
    if (this.options.maxGradNorm > 0) native.sumSquares(grads.handle('grads'), this.#sumsq.handle());
    native.adamw(params.handle('params'), grads.handle('grads'), this.m.handle('m'), this.v.handle('v'), this.#sumsq.handle(), {
      lr: this.lrAt(step) * lrFactor,
      beta1: this.options.betas[0],
      beta2: this.options.betas[1],
      eps: this.options.eps,
      weightDecay: this.options.weightDecay,
      step,
      maxNorm: this.options.maxGradNorm,
    });
    this.#step = step;
  }

  /** The global gradient norm before clipping at the last step (reads from the device). */
  async lastGradNorm(): Promise<number> {
    if (this.options.maxGradNorm <= 0) {
      native.sumSquares(this.#target.grads.handle('grads'), this.#sumsq.handle());
    }
    return Math.sqrt((await this.#sumsq.toArray())[0]!);
  }

  state(): AdamWState {
    return { step: this.#step, m: this.m, v: this.v };
  }

  /** Restores a saved state (moments copied in; step set). */
  loadState(state: { step: number; m: Float32Array; v: Float32Array }): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new RangeError(`AdamW state: step must be an integer >= 0, got ${state.step}`);
    for (const [name, data] of [
      ['m', state.m],
      ['v', state.v],
    ] as const)
      if (data.length !== this.m.numel) throw new RangeError(`AdamW state: ${name} has ${data.length} values, the model ${this.m.numel}`);
    native.write(this.m.handle(), state.m);
    native.write(this.v.handle(), state.v);
    this.#step = state.step;
  }

  dispose(): void {
    this.m.dispose();
    this.v.dispose();
    this.#sumsq.dispose();
  }
}

/** An exponential moving average of the parameters (what sampling uses). */
export class EMA {
  readonly decay: number;
  readonly params: Tensor;
  readonly #source: Tensor;

  constructor(target: { readonly params: Tensor }, decay = 0.9999) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`EMA: decay must lie in [0, 1], got ${decay}`);
    this.decay = decay;
    this.#source = target.params;
    this.params = empty(target.params.shape, { device: target.params.device });
    native.copy(target.params.handle('params'), this.params.handle());
  }

  update(): void {
    native.emaUpdate(this.params.handle('ema'), this.#source.handle('params'), this.decay);
  }

  load(values: Float32Array): void {
    if (values.length !== this.params.numel) throw new RangeError(`EMA: expected ${this.params.numel} values, got ${values.length}`);
    native.write(this.params.handle(), values);
  }

  dispose(): void {
    this.params.dispose();
  }
}

/**
 * One named parameter group of a host-side model (Float32Arrays in JavaScript memory): its values,
 * its gradients, and whether the optimiser may change it. A frozen group is never read or written by
 * step(), so its weights stay bit-for-bit what they were (fine-tuning with a frozen encoder).
 */
export interface ParamGroup {
  name: string;
  params: Float32Array;
  grads: Float32Array;
  frozen?: boolean;
  /** Multiplies the optimiser's learning rate for this group (default 1). */
  lrScale?: number;
}

/**
 * AdamW over parameter groups of host arrays, with the same arithmetic as the device AdamW above
 * (PyTorch's torch.optim.AdamW, in float; global-norm clipping over the trainable groups only). For
 * the small vector models of the transfer method, whose weights live in JavaScript memory.
 */
export class HostAdamW {
  readonly options: Readonly<Required<AdamWOptions>>;
  readonly groups: readonly ParamGroup[];
  /** First and second moments of each trainable group (by name); frozen groups have none. */
  readonly moments: ReadonlyMap<string, { m: Float32Array; v: Float32Array }>;
  #step = 0;

  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    this.options = resolveAdamWOptions(options);
    const names = new Set<string>();
    for (const g of groups) {
      if (!g || typeof g.name !== 'string' || g.name === '')
        throw new TypeError(`HostAdamW: every group needs a name, got ${JSON.stringify(g?.name)}`);
      if (names.has(g.name)) throw new TypeError(`HostAdamW: group name "${g.name}" appears twice`);
      names.add(g.name);
      if (!(g.params instanceof Float32Array) || !(g.grads instanceof Float32Array) || g.params.length !== g.grads.length)
        throw new TypeError(`HostAdamW: group "${g.name}" needs Float32Array params and grads of one length`);
      if (g.lrScale !== undefined && !(g.lrScale >= 0 && Number.isFinite(g.lrScale)))
        throw new RangeError(`HostAdamW: group "${g.name}" lrScale must be a finite number >= 0, got ${g.lrScale}`);
    }
    this.groups = Object.freeze([...groups]);
    this.moments = new Map(
      groups.filter((g) => !g.frozen).map((g) => [g.name, { m: new Float32Array(g.params.length), v: new Float32Array(g.params.length) }]),
    );
  }

  get stepCount(): number {
    return this.#step;
  }

  /** The learning rate of (1-based) step `step`, after warm-up. */
  lrAt(step: number): number {
    const w = this.options.warmupSteps;
    return w > 0 ? (this.options.lr * Math.min(step, w)) / w : this.options.lr;
  }

  /** The global L2 norm of the trainable groups' gradients. */
  gradNorm(): number {
    let s = 0;
    for (const g of this.groups) if (!g.frozen) for (let i = 0; i < g.grads.length; i++) s += g.grads[i]! * g.grads[i]!;
    return Math.sqrt(s);
  }

  /** Applies the gradients of every trainable group; `lrFactor` scales this step's rate (a decay schedule). */
  step(lrFactor = 1): void {
    const o = this.options;
    const step = this.#step + 1;
    const f = Math.fround;
    const scale = o.maxGradNorm > 0 ? Math.min(1, f(o.maxGradNorm / f(f(this.gradNorm()) + 1e-6))) : 1;
    const [b1, b2] = o.betas;
    const bc1 = f(1 - b1 ** step);
    const bc2sqrt = f(Math.sqrt(f(1 - b2 ** step)));
    for (const g of this.groups) {
      if (g.frozen) continue;
      const lr = f(this.lrAt(step) * lrFactor * (g.lrScale ?? 1));
      const stepSize = f(lr / bc1);
      const decay = f(1 - lr * o.weightDecay);
      const { m, v } = this.moments.get(g.name)!;
      const p = g.params;
      for (let i = 0; i < p.length; i++) {
        const gi = g.grads[i]! * scale;
        m[i] = b1 * m[i]! + (1 - b1) * gi;
        v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
        p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2sqrt + o.eps);
      }
    }
    this.#step = step;
  }

  /** Restores moments (by group name) and the step count. */
  loadState(state: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> }): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new RangeError(`HostAdamW state: step must be an integer >= 0, got ${state.step}`);
    for (const [name, mine] of this.moments) {
      const saved = state.moments.get(name);
      if (!saved) throw new RangeError(`HostAdamW state: no moments for group "${name}"`);
      if (saved.m.length !== mine.m.length || saved.v.length !== mine.v.length)
        throw new RangeError(`HostAdamW state: group "${name}" has ${saved.m.length} values, the model ${mine.m.length}`);
      mine.m.set(saved.m);
      mine.v.set(saved.v);
    }
    this.#step = state.step;
  }
}

/** AdamW's options with their defaults, checked: shared by AdamW and HostAdamW. */
function resolveAdamWOptions(options: AdamWOptions): Readonly<Required<AdamWOptions>> {
  const o: Required<AdamWOptions> = {
    lr: options.lr ?? 1e-4,
    betas: options.betas ?? [0.9, 0.999],
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? 0,
    warmupSteps: options.warmupSteps ?? 0,
    maxGradNorm: options.maxGradNorm ?? 0,
  };
  const bad = (what: string, v: unknown) => new RangeError(`AdamW: ${what}, got ${JSON.stringify(v)}`);
  if (!(o.lr >= 0 && Number.isFinite(o.lr))) throw bad('lr must be a finite number >= 0', o.lr);
  if (!o.betas.every((b) => b >= 0 && b < 1)) throw bad('betas must lie in [0, 1)', o.betas);
  if (!(o.eps > 0)) throw bad('eps must be > 0', o.eps);
  if (!(o.weightDecay >= 0)) throw bad('weightDecay must be >= 0', o.weightDecay);
  if (!(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0)) throw bad('warmupSteps must be an integer >= 0', o.warmupSteps);
  if (!(o.maxGradNorm >= 0)) throw bad('maxGradNorm must be >= 0', o.maxGradNorm);
  return Object.freeze(o);
}
