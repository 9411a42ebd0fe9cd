// Loads the native addon: a prebuilt binary from prebuilds/ (no compiler needed), or the one built
// from source into build/Release. One clear error when neither loads. This file is the bottom of lib/:
// it imports nothing from the package, so the types the binding speaks (devices, memory statistics,
// the UNet's configuration and layout) are declared here and re-exported by the files that use them.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the addon says of its own build (buildInfo() in device.ts adds the file it was loaded from). */
export interface NativeBuildInfo {
  cuda: boolean;
  cudaArchitectures: string;
  napiVersion: number;
  compiler: string;
  /** The CPU kernels' instruction set in use: "sse" (portable baseline), "avx2" or "avx512" (docs/cpu.md). */
  cpuIsa: string;
  /** The variants this processor can run, lowest first, comma-separated ("sse,avx2,avx512"). */
  cpuIsaSupported: string;
  /** The CPU thread pool's size: KINTSUGI_CPU_THREADS (1..64), else one per hardware thread. */
  cpuThreads: number;
}

export interface DeviceInfo {
  /** Canonical name: "cpu" or "cuda:N". */
  device: string;
  type: 'cpu' | 'cuda';
  name: string;
  /** "9.0" for an H100; null for the CPU. */
  computeCapability: string | null;
  /** Bytes of device memory (for the CPU: physical memory). */
  totalMemory: number;
  /** Streaming multiprocessors, or CPU threads. */
  multiprocessors: number;
}

export interface CudaStatus {
  /** Whether this binary contains the CUDA backend. */
  compiled: boolean;
  deviceCount: number;
  /** cudaGetDeviceCount's error code: 0 ok, 100 no device, 35 driver missing or too old. */
  code: number;
  runtimeVersion: number;
  driverVersion: number;
  /** Why CUDA is unavailable, or null when it is. */
  reason: string | null;
}

export interface MemoryStats {
  /** Bytes held by live tensors (rounded to allocation blocks). */
  inUse: number;
  /** Highest inUse since start or resetPeakMemory(). */
  peak: number;
  /** Bytes kept in the caching allocator for reuse (CUDA only; 0 on the CPU). */
  cached: number;
  /** inUse + cached: what the device holds on kintsugi's behalf. */
  reserved: number;
  /** Calls to the underlying allocator (cudaMalloc / aligned_alloc). */
  allocations: number;
}

export interface UNetConfig {
  inChannels: number;
  /** Default: inChannels. */
  outChannels?: number;
  /** Base width C. */
  channels: number;
  /** Width multiplier per level. */
  mult: number[];
  /** ResBlocks per level on the way down. */
  resBlocks: number;
  /** Spatial sizes at which an Attention follows each ResBlock. */
  attnResolutions?: number[];
  /** Input height = width; divisible by 2^(levels-1). */
  resolution: number;
  /**
   * Start each ResBlock's conv2, each Attention's proj and out.conv at zero, so every block begins as
   * the identity (DDPM practice; default true). False gives PyTorch's default initialisation throughout.
   */
  zeroInit?: boolean;
}

/** Convolution operand precision (docs/precision.md). */
export type Precision = 'fp32' | 'bf16' | 'tf32';

/** One parameter tensor: its checkpoint name, shape, and slice of the flat parameter array. */
export interface ParamInfo {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}

/** One stage of the plan: a ResBlock, an Attention, a Downsample or an Upsample. */
export interface UNetStage {
  kind: 'res' | 'attn' | 'down' | 'up';
  /** Spatial size of the stage's input. */
  size: number;
  /** Input channels (including a concatenated skip on the up path) and output channels. */
  cin: number;
  cout: number;
  skipChannels: number;
}

/**
 * One entry of a stage profile (UNet.profileStages), in forward order: the time path, conv_in, each plan
 * stage (named as its checkpoint keys: "down.0", "mid.1", "up.3", ...), the output head ("out").
 */
export interface TimedStage {
  /** The module's name: "time", "conv_in", "down.k", "mid.k", "up.k" or "out". */
  stage: string;
  section: 'time' | 'conv_in' | 'down' | 'mid' | 'up' | 'out';
  kind: 'time' | 'conv' | 'res' | 'attn' | 'down' | 'up' | 'head';
  /** Height = width of the stage's input (0 for the time path). */
  size: number;
  /** Input channels (with a concatenated skip) and output channels. */
  cin: number;
  cout: number;
}

export interface NativeTensor {
  readonly shape: number[];
  readonly device: string | null;
  readonly disposed: boolean;
  readonly guarded: boolean;
  dispose(): void;
}

type U64 = bigint | number;

/** Opaque handles owned by the addon. */
export type NativeUNet = { readonly __brand: 'NativeUNet' };
export type NativeTape = { readonly __brand: 'NativeTape' };

export interface NativeAddon {
  NativeTensor: abstract new () => NativeTensor;
  devices(): DeviceInfo[];
  cudaStatus(): CudaStatus;
  buildInfo(): NativeBuildInfo;
  /** The CPU thread pool's counters since start (native/include/kintsugi/cpu_info.h). */
  cpuPoolStats(): { threads: number; parallelMs: number; busyMs: number; jobs: number };
  empty(device: string, shape: readonly number[], guarded?: boolean): NativeTensor;
  fill(out: NativeTensor, value: number): void;
  randn(out: NativeTensor, seed: U64, offset: U64, stream: U64): void;
  uniform(out: NativeTensor, low: number, high: number, seed: U64, offset: U64, stream: U64): void;
  randomBits(out: NativeTensor, seed: U64, offset: U64, stream: U64): void;
  copy(src: NativeTensor, dst: NativeTensor): void;
  add(a: NativeTensor, b: NativeTensor, out: NativeTensor): void;
  scale(a: NativeTensor, s: number, out: NativeTensor): void;
  sum(a: NativeTensor, out: NativeTensor): void;
  sumSquares(a: NativeTensor, out: NativeTensor): void;
  adamw(
    params: NativeTensor,
    grads: NativeTensor,
    m: NativeTensor,
    v: NativeTensor,
    sumsq: NativeTensor,
    options: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; maxNorm: number },
  ): void;
  emaUpdate(ema: NativeTensor, params: NativeTensor, decay: number): void;
  /** out[b] = sum_k coef_k[b] * x_k[b]; terms as a flat [x0, coef0, x1, coef1, ...] list (1 to 3 pairs). */
  combine(out: NativeTensor, terms: NativeTensor[]): void;
  clamp(a: NativeTensor, low: number, high: number, out: NativeTensor): void;
  /** out = a * b elementwise (same shapes). */
  mul(a: NativeTensor, b: NativeTensor, out: NativeTensor): void;
  /** Helmert coefficients of each k x k block of x [N,C,H,W], plane-major; out [N,C,H,W] (all) or [N,C,H/k,W/k] (coefficient 0); times scale. */
  blockAverageVt(x: NativeTensor, k: number, scale: number, out: NativeTensor): void;
  /** The inverse: c [N,C,H,W] or [N,C,H/k,W/k] (the other coefficients zero) -> out [N,C,H,W]; times scale. */
  blockAverageV(c: NativeTensor, k: number, scale: number, out: NativeTensor): void;
  /** Orthonormal 2-D DFT of x [N,2,H,W] (real, imaginary), H and W powers of two <= 2048; out may be x. */
  fft2(x: NativeTensor, inverse: boolean, out: NativeTensor): void;
  write(dst: NativeTensor, data: Float32Array): void;
  read(src: NativeTensor): Promise<Float32Array>;
  checkGuard(t: NativeTensor): Promise<boolean>;
  synchronize(device: string): Promise<void>;
  memoryStats(device: string): MemoryStats;
  resetPeakMemory(device: string): void;
  emptyCache(device: string): Promise<void>;
  tasksPending(): number;
  unetLayout(config: UNetConfig | string): {
    params: ParamInfo[];
    paramCount: number;
    stages: UNetStage[];
    timedStages: TimedStage[];
  };
  unetInit(config: UNetConfig | string, seed: U64, out: NativeTensor): void;
  /** precision: the operand precision of this instance's convolutions (not an architecture field). */
  unetCreate(config: (UNetConfig & { precision?: Precision }) | string, device: string): NativeUNet;
  /** cond [n, 4 * channels], when given, is added to the time embedding. */
  unetForward(
    net: NativeUNet,
    params: NativeTensor,
    x: NativeTensor,
    t: NativeTensor,
    out: NativeTensor,
    keepTape?: boolean,
    cond?: NativeTensor | null,
  ): NativeTape;
  unetBackward(
    net: NativeUNet,
    params: NativeTensor,
    tape: NativeTape,
    gout: NativeTensor,
    grads: NativeTensor,
    gx: NativeTensor | null,
    gcond?: NativeTensor | null,
  ): void;
  unetReleaseTape(tape: NativeTape): void;
  /** One forward + backward (out written, grads +=, gx written) with each stage timed, in timedStages order. */
  unetProfileStages(
    net: NativeUNet,
    params: NativeTensor,
    x: NativeTensor,
    t: NativeTensor,
    out: NativeTensor,
    gout: NativeTensor,
    grads: NativeTensor,
    gx: NativeTensor | null,
  ): Promise<{ fwdMs: Float64Array; bwdMs: Float64Array }>;
  /**
   * Any op the registry calls by name (native/core/registry.h; docs/adding-an-op.md), on the device of
   * its tensors: integer attributes, inputs, outputs (null where the op allows it).
   */
  op(op: string, attrs: Record<string, number>, inputs: NativeTensor[], outputs: (NativeTensor | null)[]): void;
  /** Whether `op` runs on `device`'s kind in this binary (false for an unknown op). */
  supports(op: string, device: string): boolean;
  /** Every registered op: whether it has a CUDA function in this binary, whether op() can call it by name. */
  ops(): { name: string; cuda: boolean; byName: boolean }[];
  /** One network op on the device of its tensors (outputs may be null where optional); the same function as op(). */
  nnOp(op: string, attrs: Record<string, number>, inputs: NativeTensor[], outputs: (NativeTensor | null)[]): void;
  /** The double-precision CPU reference of one op, forward and backward (tests). */
  referenceOp(op: string, args: Record<string, number | Float64Array>): Promise<Record<string, Float64Array>>;
  /** The double-precision CPU reference UNet, forward and backward (tests). */
  referenceUNet(
    config: UNetConfig | string,
    args: { n: number; params: Float64Array; x: Float64Array; t: Float64Array; gout: Float64Array },
  ): Promise<{ out: Float64Array; 'grad.params': Float64Array; 'grad.x': Float64Array }>;
  /** Test hook: queues a task that fails with `message`, as a failing kernel would. */
  failTask(t: NativeTensor, message: string): void;
  /** GSURE (native/include/kintsugi/gsure.h): x̄_t = √ᾱ ȳ + √D ε with ε = randn's draw of (seed, offset, stream). */
  svdNoise(
    ybar: NativeTensor,
    v: NativeTensor,
    alphaBar: ArrayLike<number>,
    vMax: number,
    seed: U64,
    offset: U64,
    stream: U64,
    out: NativeTensor,
  ): void;
  /** GSURE probe shifts: plus = x̄_t ± eps b for [N * probes, ...] rows, b drawn from (seed, offset, stream). */
  gsureProbe(
    xt: NativeTensor,
    probes: number,
    eps: number,
    seed: U64,
    offset: U64,
    stream: U64,
    plus: NativeTensor,
    minus: NativeTensor | null,
  ): void;
  /** GSURE loss parts [N, 2] (fit, div) and the gradients with respect to h̄, h̄⁺, h̄⁻. */
  gsureTerms(
    h: NativeTensor,
    plus: NativeTensor,
    minus: NativeTensor | null,
    ybar: NativeTensor,
    c: NativeTensor,
    v: NativeTensor,
    kappa: ArrayLike<number>,
    options: { probes: number; eps: number; gradScale: number; seed: U64; offset: U64; stream: U64 },
    parts: NativeTensor,
    gradH: NativeTensor,
    gradPlus: NativeTensor,
    gradMinus: NativeTensor | null,
  ): void;
}

const require = createRequire(import.meta.url);
/** The package root: this file is lib/native.ts in the repository and dist/native.js when installed. */
const root = fileURLToPath(new URL('..', import.meta.url));

function load(): { addon: NativeAddon; path: string } {
  const gypBuild = require('node-gyp-build') as { path(dir: string): string };
  let path: string;
  try {
    path = gypBuild.path(root);
  } catch (e) {
    throw new Error(
      `kintsugi: no native addon for ${process.platform}-${process.arch} (Node ${process.version}). ` +
        'Prebuilt binaries ship for linux-x64; elsewhere `npm install` builds one from source, which needs ' +
        'a C++17 compiler, make and python3 (node-gyp). Run `npm rebuild kintsugi` to retry. ' +
        `(${(e as Error).message.split('\n')[0]})`,
    );
  }
  try {
    return { addon: require(path) as NativeAddon, path };
  } catch (e) {
    throw new Error(`kintsugi: the native addon ${path} failed to load: ${(e as Error).message}`);
  }
}

const loaded = load();
export const native: NativeAddon = loaded.addon;
export const nativePath: string = loaded.path;
