// The views of bootstrapping diffusion (docs/bootstrap.md) as tensor functions over the native ops:
// r×r average pooling A, nearest upsampling U, the high-pass complement H = I − U A, patches P_j and
// their weighted overlap-add Σ_j P_jᵀ (W_j ⊙ ·), and the fused residual aggregation. Images are
// [n, c, h, w]; patches are [n · J, c, P, P] with patch j = row · cols + col of sample b at row b · J + j.
import { into, type Tensor } from '../tensor.ts';
import { bootstrapNative as native, type PatchWindow } from './native.ts';

export type { PatchWindow } from './native.ts';

/** The low-resolution view: the r×r block means, A x (r = 2 or 4 in practice; any r dividing h, w). */
export interface LowresView {
  kind: 'lowres';
  factor: number;
}

/**
 * The patch view: size×size patches every `stride` pixels ((h − size) and (w − size) multiples of the
 * stride, stride <= size: every pixel is covered). `window` weights the overlap-add (default "hann");
 * `positions` appends two channels with each pixel's row and column in the image, on [-1, 1].
 */
export interface PatchView {
  kind: 'patch';
  size: number;
  stride: number;
  window?: PatchWindow;
  positions?: boolean;
}

export type View = LowresView | PatchView;

function imageShape(x: Tensor, what: string): [number, number, number, number] {
  if (x.shape.length !== 4) throw new TypeError(`${what}: expected an [n, c, h, w] tensor, got shape ${JSON.stringify(x.shape)}`);
  return x.shape as unknown as [number, number, number, number];
}

function factor(r: number, [, , h, w]: readonly number[], what: string): number {
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`${what}: r must be a positive integer, got ${r}`);
  if (h % r !== 0 || w % r !== 0) throw new RangeError(`${what}: height and width must be multiples of r = ${r}, got ${h}x${w}`);
  return r;
}

/** A x: [n, c, h, w] -> [n, c, h/r, w/r], the mean of each r×r block. */
export function avgPool(x: Tensor, r: number): Tensor {
  const [n, c, h, w] = imageShape(x, 'avgPool');
  factor(r, x.shape, 'avgPool');
  const src = x.handle('x');
  return into(x.device, [n, c, h / r, w / r], (out) => native.avgPool(src, r, out));
}

/** U x: [n, c, h, w] -> [n, c, h r, w r], each value repeated over its r×r block. */
export function upsampleNearest(x: Tensor, r: number): Tensor {
  const [n, c, h, w] = imageShape(x, 'upsampleNearest');
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`upsampleNearest: r must be a positive integer, got ${r}`);
  const src = x.handle('x');
  return into(x.device, [n, c, h * r, w * r], (out) => native.upsampleNearest(src, r, out));
}

/** H x = x − U A x: x less the mean of each r×r block. */
export function highPass(x: Tensor, r: number): Tensor {
  imageShape(x, 'highPass');
  factor(r, x.shape, 'highPass');
  const src = x.handle('x');
  return into(x.device, x.shape, (out) => native.highPass(src, r, out));
}

/** Patches per image (J) of a size×size grid with `stride` over h×w; checks that it covers every pixel. */
export function patchCount(h: number, w: number, size: number, stride: number): number {
  if (!Number.isInteger(size) || size < 1 || size > Math.min(h, w))
    throw new RangeError(`patch size must be an integer in [1, ${Math.min(h, w)}], got ${size}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > size)
    throw new RangeError(`patch stride must be an integer in [1, size = ${size}] (every pixel covered), got ${stride}`);
  if ((h - size) % stride !== 0 || (w - size) % stride !== 0)
    throw new RangeError(`patches: (h − size) and (w − size) must be multiples of the stride ${stride}, got ${h}x${w} with size ${size}`);
  return ((h - size) / stride + 1) * ((w - size) / stride + 1);
}

/** The grid offsets [y, x] of the J patches of one image, in batch order. */
export function patchOffsets(h: number, w: number, size: number, stride: number): [number, number][] {
  patchCount(h, w, size, stride);
  const offsets: [number, number][] = [];
  for (let y = 0; y + size <= h; y += stride) for (let x = 0; x + size <= w; x += stride) offsets.push([y, x]);
  return offsets;
}

/** P_j x for every grid patch: [n, c, h, w] -> [n · J, c (+ 2 with positions), size, size]. */
export function extractPatches(x: Tensor, view: Omit<PatchView, 'kind' | 'window'>): Tensor {
  const [n, c, h, w] = imageShape(x, 'extractPatches');
  const J = patchCount(h, w, view.size, view.stride);
  const positions = view.positions ?? false;
  const src = x.handle('x');
  return into(x.device, [n * J, c + (positions ? 2 : 0), view.size, view.size], (out) =>
    native.patchExtract(src, view.size, view.stride, positions, out),
  );
}

/**
 * Σ_j P_jᵀ (W_j ⊙ patches_j) into images of `shape` [n, c, h, w]: each pixel is the window-weighted
 * average of the patches covering it (weights sum to one per pixel; docs/bootstrap.md).
 */
export function overlapAdd(
  patches: Tensor,
  shape: readonly [number, number, number, number],
  view: { stride: number; window?: PatchWindow },
): Tensor {
  imageShape(patches, 'overlapAdd');
  const src = patches.handle('patches');
  return into(patches.device, shape, (out) => native.patchOverlapAdd(src, view.stride, view.window ?? 'hann', out));
}

/** [n, ca, h, w] and [n, cb, h, w] -> [n, ca + cb, h, w]. */
export function concatChannels(a: Tensor, b: Tensor): Tensor {
  const [n, ca, h, w] = imageShape(a, 'concatChannels');
  const [, cb] = imageShape(b, 'concatChannels');
  const [pa, pb] = [a.handle('a'), b.handle('b')];
  return into(a.device, [n, ca + cb, h, w], (out) => native.concatChannels(pa, pb, out));
}

export interface AggregateInputs {
  /** The shape of the result, [n, c, h, w]. */
  shape: readonly [number, number, number, number];
  /** The low-resolution view's x0 estimate [n, c, h/r, w/r]. */
  lowres?: { estimate: Tensor; factor: number };
  /** The patch view's x0 estimates [n · J, c, P, P]. */
  patch?: { estimate: Tensor; stride: number; window?: PatchWindow };
  /** Added in the same pass (a residual that does not itself need the aggregate). */
  f0?: Tensor;
}

/**
 * The fused residual aggregation x̂_agg = U f_lr + H Σ_j P_jᵀ (W_j ⊙ f_patch_j) (+ f0): low
 * frequencies from the low-resolution view (A x̂_agg = f_lr exactly), detail from the patches. With
 * one view only: U f_lr, or the plain overlap-add of the patches.
 */
export function aggregate(a: AggregateInputs): Tensor {
  if (!a.lowres && !a.patch) throw new TypeError('aggregate: needs a lowres or a patch view (or both), got neither');
  const first = a.lowres?.estimate ?? a.patch!.estimate;
  const lr = a.lowres?.estimate.handle('lowres.estimate') ?? null;
  const pt = a.patch?.estimate.handle('patch.estimate') ?? null;
  const f0 = a.f0?.handle('f0') ?? null;
  return into(first.device, a.shape, (out) =>
    native.residualAggregate(lr, a.lowres?.factor ?? 1, pt, a.patch?.stride ?? 1, a.patch?.window ?? 'hann', f0, out),
  );
}
