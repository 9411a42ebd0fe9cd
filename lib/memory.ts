// Memory statistics and explicit synchronisation per device.
import { resolveDevice } from './device.ts';
import { native } from './native.ts';

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

export function memoryStats(device?: string): MemoryStats {
  return native.memoryStats(resolveDevice(device));
}

export function resetPeakMemory(device?: string): void {
  native.resetPeakMemory(resolveDevice(device));
}

/** Returns cached device memory to the driver, once queued work has finished. */
export function emptyCache(device?: string): Promise<void> {
  return native.emptyCache(resolveDevice(device));
}

/** Resolves when every operation queued on `device` so far has finished. */
export function synchronize(device?: string): Promise<void> {
  return native.synchronize(resolveDevice(device));
}
