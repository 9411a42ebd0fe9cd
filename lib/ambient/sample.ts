// Sampling an Ambient Diffusion model (docs/ambient.md): the paper's "fixed mask" sampler. Each sample
// gets one mask Ã drawn once, from the training law of the further-corrupted masks (A with drop p, then
// B with drop δ), and an ordinary sampler runs with x̂0 = h(Ã ⊙ x_t, Ã, t) at every step: the network
// only ever sees inputs like those it was trained on, and predicts every pixel from them.
import { randomPatchMask } from '../corruption/mask.ts';
import { mul } from '../corruption/operator.ts';
import { native, type NativeTensor } from '../native.ts';
import type { Denoiser } from '../sample.ts';
import { into, tensor, type Tensor } from '../tensor.ts';
import type { UNet } from '../unet.ts';
import { AMBIENT_SAMPLING_STREAM, furtherCorrupt } from './masks.ts';
import type { AmbientMaskLaw } from './train.ts';

// The addon's channel concatenation (native/napi/bootstrap_js.cpp), typed for this one use.
const concatOp = native as unknown as { concatChannels(a: NativeTensor, b: NativeTensor, out: NativeTensor): void };

/**
 * n sampling masks Ã [n, C, H, W] (0/1 floats, shared by the channels) from `law`, seeded: A from
 * randomPatchMask, then B on the stream AMBIENT_SAMPLING_STREAM of the same seed.
 */
export function ambientSamplingMasks(
  n: number,
  shape: readonly [number, number, number],
  law: AmbientMaskLaw,
  seed: bigint | number,
): Float32Array {
  const [C, H, W] = shape;
  const a = randomPatchMask(n, [H, W], { p: law.p, patch: law.maskPatch, seed });
  const at = furtherCorrupt(a, n, H, W, { delta: law.delta, patch: law.patch }, BigInt(seed), AMBIENT_SAMPLING_STREAM);
  const out = new Float32Array(n * C * H * W);
  for (let b = 0; b < n; b++)
    for (let c = 0; c < C; c++) out.set(Float32Array.from(at.subarray(b * H * W, (b + 1) * H * W)), (b * C + c) * H * W);
  return out;
}

/** Reads a checkpoint's "ambient" metadata (written by trainAmbient), or undefined if there is none. */
export function ambientLawOf(metadata: Record<string, string>, what = 'checkpoint'): AmbientMaskLaw | undefined {
  if (metadata.ambient === undefined) return undefined;
  let law: unknown;
  try {
    law = JSON.parse(metadata.ambient);
  } catch (e) {
    throw new TypeError(`${what}: metadata "ambient" is not valid JSON (${(e as Error).message})`);
  }
  const l = law as Partial<AmbientMaskLaw>;
  const ok = (v: unknown, lo: number, hi: number) => typeof v === 'number' && v >= lo && v <= hi;
  if (!(ok(l.p, 0, 1) && ok(l.delta, 0, 1) && Number.isSafeInteger(l.maskPatch) && Number.isSafeInteger(l.patch)))
    throw new TypeError(`${what}: metadata "ambient" must hold {p, maskPatch, delta, patch}, got ${metadata.ambient.slice(0, 200)}`);
  return l as AmbientMaskLaw;
}

/**
 * An Ambient Diffusion network as a sampler's x0-denoiser with the fixed masks `masks` [n, C, H, W]
 * (from ambientSamplingMasks, on the network's device): x̂0 = net(concat(Ã ⊙ x_t, Ã), t). `params`
 * (e.g. the EMA's) replaces the network's weights. Sample with prediction 'x0' and shape [n, C, H, W].
 */
export function ambientDenoiser(net: UNet, masks: Tensor, params?: Tensor): Denoiser {
  const [n, C, H, W] = masks.shape as [number, number, number, number];
  if (net.config.inChannels !== 2 * C || net.config.outChannels !== C)
    throw new TypeError(
      `ambientDenoiser: masks of ${C} channel(s) need a network with ${2 * C} input and ${C} output channels, got ${net.config.inChannels} and ${net.config.outChannels}`,
    );
  return (x, t) => {
    if (x.shape[0] !== n) throw new RangeError(`ambientDenoiser: the masks are for batches of ${n}, got ${x.shape[0]}`);
    const masked = mul(x, masks);
    try {
      const [pa, pb] = [masked.handle('x'), masks.handle('masks')];
      const input = into(masks.device, [n, 2 * C, H, W], (out) => concatOp.concatChannels(pa, pb, out));
      const tt = tensor(t, [t.length], { device: net.device });
      try {
        return net.predict(input, tt, { params });
      } finally {
        input.dispose();
        tt.dispose();
      }
    } finally {
      masked.dispose();
    }
  };
}
