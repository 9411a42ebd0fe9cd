// Memory statistics and explicit synchronisation per device.
import { resolveDevice } from './device.ts';
import { native } from './native.ts';
// Declared with the binding (lib/native.ts sits below every other file); re-exported here.
import type { MemoryStats } from './native.ts';
export type { MemoryStats } from './native.ts';

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
