// Devices: the CPU and each CUDA device; the default is the first CUDA device, else the CPU, and
// KINTSUGI_DEVICE=cpu|cuda|cuda:N overrides it.
import { native, nativePath } from './native.ts';
// Declared with the binding (lib/native.ts sits below every other file); re-exported here.
import type { DeviceInfo, CudaStatus, NativeBuildInfo } from './native.ts';
export type { DeviceInfo, CudaStatus } from './native.ts';

/** A device name: "cpu", "cuda" (the same as "cuda:0") or "cuda:N". */
export type DeviceSpec = 'cpu' | 'cuda' | `cuda:${number}`;

/**
 * Whether the native op `op` (its registry name, e.g. "conv2d_forward") runs on `device` (default: the
 * default device) in this binary: every op runs on the CPU; on a GPU it needs a CUDA build and a CUDA
 * kernel for the op. False for an unknown name.
 */
export function supports(op: string, device?: string): boolean {
  if (typeof op !== 'string') throw new TypeError(`op: expected an op name, got ${typeof op}`);
  return native.supports(op, resolveDevice(device));
}

/** Every device this process can use: the CPU first, then each CUDA device. */
export function devices(): DeviceInfo[] {
  return native.devices();
}

/** Whether CUDA can be used, and if not, why (no device, no driver, driver too old, CPU-only build). */
export function cudaStatus(): CudaStatus {
  return native.cudaStatus();
}

export interface BuildInfo extends NativeBuildInfo {
  /** The addon file that was loaded (a prebuild or a local build). */
  binary: string;
}

export function buildInfo(): BuildInfo {
  return { ...native.buildInfo(), binary: nativePath };
}

/** "cuda" -> "cuda:0"; validates the text and that the device exists. */
export function resolveDevice(spec: string | undefined = undefined, what = 'device'): string {
  if (spec === undefined) return defaultDevice();
  if (typeof spec !== 'string') throw new TypeError(`${what}: expected a device name such as "cpu" or "cuda:0", got ${typeof spec}`);
  const m = /^(cpu|cuda)(?::(\d{1,3}))?$/.exec(spec);
  if (!m || (m[1] === 'cpu' && m[2] !== undefined)) throw new TypeError(`${what}: expected "cpu", "cuda" or "cuda:N", got "${spec}"`);
  if (m[1] === 'cpu') return 'cpu';
  const name = `cuda:${Number(m[2] ?? 0)}`;
  const status = native.cudaStatus();
  if (status.deviceCount === 0) throw new Error(`${what}: ${name} is not available: ${status.reason}`);
  if (Number(m[2] ?? 0) >= status.deviceCount)
    throw new RangeError(`${what}: ${name} does not exist; this machine has ${status.deviceCount} CUDA device(s)`);
  return name;
}

/** The device used when none is given: $KINTSUGI_DEVICE if set, else cuda:0 if present, else cpu. */
export function defaultDevice(): string {
  const forced = process.env.KINTSUGI_DEVICE;
  if (forced !== undefined && forced !== '') return resolveDevice(forced, 'KINTSUGI_DEVICE');
  return native.cudaStatus().deviceCount > 0 ? 'cuda:0' : 'cpu';
}
