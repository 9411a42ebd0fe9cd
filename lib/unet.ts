// The UNet of docs/unet.md: parameters in one flat tensor (checkpoint-key order), forward passes that
// return a tape, backward passes that add into one flat gradient, so several forward/backward pairs
// accumulate into one step (the GSURE divergence needs two or three).
import { native, type NativeTape, type NativeUNet } from './native.ts';
import { resolveDevice } from './device.ts';
import { disposeOnThrow, empty, Tensor, zeros } from './tensor.ts';
// Declared with the binding (lib/native.ts sits below every other file); re-exported here.
import type { UNetConfig, ParamInfo, Precision, TimedStage } from './native.ts';
export type { UNetConfig, ParamInfo, Precision, TimedStage } from './native.ts';

/** A stage of the network with its forward and backward time in one profiled pass (UNet.profileStages). */
export interface StageTime extends TimedStage {
  fwdMs: number;
  bwdMs: number;
}

export type UNetPreset = 'tiny16' | 'small32' | 'fmnist32' | 'cifar32';

export const presets: Readonly<Record<UNetPreset, Readonly<UNetConfig>>> = Object.freeze({
  tiny16: { inChannels: 1, outChannels: 1, channels: 32, mult: [1, 2], resBlocks: 1, attnResolutions: [8], resolution: 16 },
  // 32x32 greyscale, small enough to train in minutes on two CPU cores (the CLI's CPU default).
  small32: { inChannels: 1, outChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [8], resolution: 32 },
  fmnist32: { inChannels: 1, outChannels: 1, channels: 64, mult: [1, 2, 2], resBlocks: 2, attnResolutions: [8], resolution: 32 },
  cifar32: { inChannels: 3, outChannels: 3, channels: 128, mult: [1, 2, 2, 2], resBlocks: 2, attnResolutions: [16], resolution: 32 },
});

/** `base` at another resolution and channel count: levels only as deep as the size divides, attention only at sizes a level has. */
export function resizedConfig(base: UNetConfig, resolution: number, inChannels: number, outChannels: number): UNetConfig {
  let mult = [...base.mult];
  while (mult.length > 1 && resolution % 2 ** (mult.length - 1) !== 0) mult = mult.slice(0, -1);
  const levels = mult.map((_, k) => resolution / 2 ** k);
  return {
    ...base,
    mult,
    resolution,
    inChannels,
    outChannels,
    attnResolutions: (base.attnResolutions ?? []).filter((r) => levels.includes(r)),
  };
}

export function resolveConfig(config: UNetConfig | UNetPreset): Required<UNetConfig> {
  const c = typeof config === 'string' ? presets[config] : config;
  if (c === undefined || c === null || typeof c !== 'object')
    throw new TypeError(
      `config: expected a preset (${Object.keys(presets)
        .map((k) => JSON.stringify(k))
        .join(', ')}) or an object, got ${JSON.stringify(config)}`,
    );
  for (const key of ['mult', 'attnResolutions'] as const)
    if (c[key] !== undefined && !Array.isArray(c[key]))
      throw new TypeError(`unet config: ${key} must be an array of integers, got ${JSON.stringify(c[key])}`);
  if (c.mult === undefined) throw new TypeError('unet config: mult is required');
  if (c.zeroInit !== undefined && typeof c.zeroInit !== 'boolean')
    throw new TypeError(`unet config: zeroInit must be a boolean, got ${JSON.stringify(c.zeroInit)}`);
  const full: Required<UNetConfig> = {
    inChannels: c.inChannels,
    outChannels: c.outChannels ?? c.inChannels,
    channels: c.channels,
    mult: [...c.mult],
    resBlocks: c.resBlocks,
    attnResolutions: [...(c.attnResolutions ?? [])],
    resolution: c.resolution,
    zeroInit: c.zeroInit ?? true,
  };
  native.unetLayout(full); // validates, with errors naming the field
  const sizes = full.mult.map((_, level) => full.resolution >> level);
  for (const r of full.attnResolutions)
    if (!sizes.includes(r)) throw new TypeError(`unet config: attnResolutions entry ${r} matches no level (sizes ${sizes.join(', ')})`);
  return full;
}

/** Every parameter (name, shape, offset into the flat array), in checkpoint order. */
export function unetLayout(config: UNetConfig | UNetPreset): { params: ParamInfo[]; paramCount: number } {
  return native.unetLayout(resolveConfig(config));
}

/** The activations one forward pass keeps for its backward pass; release() frees them early. */
export class Tape {
  #handle: NativeTape | null;
  readonly batch: number;
  constructor(handle: NativeTape, batch: number) {
    this.#handle = handle;
    this.batch = batch;
  }
  handle(): NativeTape {
    if (this.#handle === null) throw new TypeError('tape: it was released');
    return this.#handle;
  }
  release(): void {
    if (this.#handle) native.unetReleaseTape(this.#handle);
    this.#handle = null;
  }
}

export class UNet implements Disposable {
  readonly config: Readonly<Required<UNetConfig>>;
  readonly device: string;
  readonly layout: readonly ParamInfo[];
  readonly paramCount: number;
  /** All parameters, flat, in checkpoint order. */
  readonly params: Tensor;
  /** Gradients, same layout; backward adds into it, zeroGrad() clears it. */
  readonly grads: Tensor;
  #net: NativeUNet;

  /**
   * Operand precision of the convolutions (docs/precision.md): 'bf16' by default on CUDA (tensor cores,
   * FP32 accumulation, FP32 master weights), 'fp32' (exact) on the CPU. On the CPU 'bf16' / 'tf32' round
   * the operands as the GPU does, for comparisons; on GPUs before compute capability 8.0 they run in FP32.
   */
  readonly precision: Precision;

  constructor(config: UNetConfig | UNetPreset, options: { device?: string; seed?: bigint | number; precision?: Precision } = {}) {
    this.config = Object.freeze(resolveConfig(config));
    this.device = resolveDevice(options.device);
    const precision = options.precision ?? (this.device === 'cpu' ? 'fp32' : 'bf16');
    if (!['fp32', 'bf16', 'tf32'].includes(precision))
      throw new TypeError(`UNet: precision must be "fp32", "bf16" or "tf32", got ${JSON.stringify(options.precision)}`);
    this.precision = precision;
    const { params, paramCount } = native.unetLayout(this.config);
    this.layout = Object.freeze(params);
    this.paramCount = paramCount;
    this.#net = native.unetCreate({ ...this.config, precision }, this.device);
    const init = empty([paramCount], { device: 'cpu' });
    native.unetInit(this.config, options.seed ?? 0, init.handle());
    this.params = this.device === 'cpu' ? init : init.to(this.device);
    if (this.params !== init) init.dispose();
    this.grads = zeros([paramCount], { device: this.device });
  }

  /**
   * out = net(x, t) for x [n, inChannels, r, r] and t [n]; the tape is what backward needs. `params`
   * (same layout, e.g. an EMA's) replaces the network's weights for this pass. `cond` [n, 4·channels]
   * is added to the time embedding (before its SiLU): a condition embedding made outside the network,
   * such as the transfer method's h(y) (docs/transfer.md); backward's `condGrad` returns its gradient.
   */
  forward(x: Tensor, t: Tensor, options: { params?: Tensor; cond?: Tensor } = {}): { out: Tensor; tape: Tape } {
    const n = x.shape[0]!;
    const out = empty([n, this.config.outChannels, this.config.resolution, this.config.resolution], { device: this.device });
    return disposeOnThrow([out], () => {
      const params = (options.params ?? this.params).handle('params');
      const tape = native.unetForward(
        this.#net,
        params,
        x.handle('x'),
        t.handle('t'),
        out.handle(),
        true,
        options.cond?.handle('cond') ?? null,
      );
      return { out, tape: new Tape(tape, n) };
    });
  }

  /**
   * out = net(x, t) without a tape (inference, e.g. sampling): each stage's activations are freed as
   * soon as they are read, so the peak memory is a fraction of forward()'s and nothing is left to
   * release. `params` as in forward().
   */
  predict(x: Tensor, t: Tensor, options: { params?: Tensor; cond?: Tensor } = {}): Tensor {
    const n = x.shape[0]!;
    const out = empty([n, this.config.outChannels, this.config.resolution, this.config.resolution], { device: this.device });
    return disposeOnThrow([out], () => {
      const params = (options.params ?? this.params).handle('params');
      native.unetReleaseTape(
        native.unetForward(this.#net, params, x.handle('x'), t.handle('t'), out.handle(), false, options.cond?.handle('cond') ?? null),
      );
      return out;
    });
  }

  /**
   * Adds dL/dparams into `grads` for dL/dout = gout and, with `inputGrad`, returns dL/dx (posterior
   * samplers need it). With `condGrad` ([n, 4·channels]) it writes dL/dcond there, for a forward that
   * took `cond`. The tape may be used once or several times; release it when done.
   */
  backward(tape: Tape, gout: Tensor, options: { inputGrad?: boolean; condGrad?: Tensor } = {}): Tensor | undefined {
    const gx = options.inputGrad
      ? empty([tape.batch, this.config.inChannels, this.config.resolution, this.config.resolution], { device: this.device })
      : undefined;
    return disposeOnThrow([gx], () => {
      native.unetBackward(
        this.#net,
        this.params.handle('params'),
        tape.handle(),
        gout.handle('gout'),
        this.grads.handle('grads'),
        gx?.handle() ?? null,
        options.condGrad?.handle('condGrad') ?? null,
      );
      return gx;
    });
  }

  /**
   * One forward and its backward, exactly as forward() then backward() compute them (the same out, the
   * same bits added into `grads`, dL/dx with `inputGrad`), with each stage timed: the time path, conv_in,
   * each ResBlock / attention / Downsample / Upsample of the plan and the output head, named as their
   * checkpoint keys. On CUDA the times come from events on the device's stream (a stage's kernels and
   * the launch gaps between them); on the CPU from the host clock (docs/performance.md). For benchmarks:
   * the first call after creation also pays for allocation and warm-up.
   */
  async profileStages(
    x: Tensor,
    t: Tensor,
    gout: Tensor,
    options: { inputGrad?: boolean; params?: Tensor } = {},
  ): Promise<{ out: Tensor; inputGrad?: Tensor; stages: StageTime[] }> {
    const n = x.shape[0]!;
    const r = this.config.resolution;
    const out = empty([n, this.config.outChannels, r, r], { device: this.device });
    const gx = options.inputGrad ? empty([n, this.config.inChannels, r, r], { device: this.device }) : undefined;
    try {
      const times = await native.unetProfileStages(
        this.#net,
        (options.params ?? this.params).handle('params'),
        x.handle('x'),
        t.handle('t'),
        out.handle(),
        gout.handle('gout'),
        this.grads.handle('grads'),
        gx?.handle() ?? null,
      );
      const entries = native.unetLayout(this.config).timedStages;
      const stages = entries.map((e, i) => ({ ...e, fwdMs: times.fwdMs[i]!, bwdMs: times.bwdMs[i]! }));
      return gx ? { out, inputGrad: gx, stages } : { out, stages };
    } catch (err) {
      out.dispose();
      gx?.dispose();
      throw err;
    }
  }

  zeroGrad(): void {
    this.grads.fill_(0);
  }

  /** One parameter's values, by its checkpoint name. */
  async getParam(name: string): Promise<Float32Array> {
    const p = this.layout.find((q) => q.name === name);
    if (!p) throw new TypeError(`getParam: no parameter named "${name}"`);
    const all = await this.params.toArray();
    return all.slice(p.offset, p.offset + p.numel);
  }

  /** Replaces every parameter (a flat array in checkpoint order). */
  setParams(values: Float32Array): void {
    if (!(values instanceof Float32Array) || values.length !== this.paramCount)
      throw new TypeError(`setParams: expected a Float32Array of ${this.paramCount} values, got ${values?.length}`);
    native.write(this.params.handle(), values);
  }

  dispose(): void {
    this.params.dispose();
    this.grads.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
