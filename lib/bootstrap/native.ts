// The addon's bootstrap ops (native/napi/bootstrap_js.cpp), typed here beside their only users.
import { native, type NativeTensor } from '../native.ts';

export type PatchWindow = 'uniform' | 'triangle' | 'hann';

export interface BootstrapAddon {
  /** out [n, c, h/r, w/r] = r×r block means of x [n, c, h, w]. */
  avgPool(x: NativeTensor, r: number, out: NativeTensor): void;
  /** out [n, c, h r, w r]: nearest upsampling. */
  upsampleNearest(x: NativeTensor, r: number, out: NativeTensor): void;
  /** out = x − U A x. */
  highPass(x: NativeTensor, r: number, out: NativeTensor): void;
  /** out [n J, c (+2), size, size]: the patches at the grid offsets (with position channels). */
  patchExtract(x: NativeTensor, size: number, stride: number, positions: boolean, out: NativeTensor): void;
  /** out [n, c, h, w] = Σ_j P_jᵀ (W_j ⊙ patches_j). */
  patchOverlapAdd(patches: NativeTensor, stride: number, window: PatchWindow, out: NativeTensor): void;
  /** out = U fLr + H Σ_j P_jᵀ (W_j ⊙ fPatch_j) (+ f0); either view may be null, not both. */
  residualAggregate(
    fLr: NativeTensor | null,
    r: number,
    fPatch: NativeTensor | null,
    stride: number,
    window: PatchWindow,
    f0: NativeTensor | null,
    out: NativeTensor,
  ): void;
  /** out [n, ca + cb, h, w]. */
  concatChannels(a: NativeTensor, b: NativeTensor, out: NativeTensor): void;
  /** out[b] = x[b] − mean over the batch of x (out may be x). */
  batchCenter(x: NativeTensor, out: NativeTensor): void;
}

export const bootstrapNative = native as unknown as BootstrapAddon;
