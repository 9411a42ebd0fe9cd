// Uniform-attention guidance: a guidance for unconditional sampling that needs no class labels and no
// second model. The network is run twice per step, once as trained and once with every self-attention
// map made uniform, and the sampler follows
//   D_w(x, t) = D_u(x, t) + w (D(x, t) − D_u(x, t)),
// the prediction pushed away from the weakened network's. The weakened network keeps every local
// feature (the convolutions are untouched) but loses the long-range coupling that attention gives, so
// what the guidance amplifies is global coherence: in the demo's samples, garments drawn in one piece
// instead of fragments (docs/demo.md). It is the limit of smoothed-energy guidance (attention logits
// blurred without bound) and a sibling of perturbed-attention guidance (there the map is the identity).
//
// Uniform maps come from the weights alone: with the query projection zero (the first c rows of each
// `qkv` weight and bias, docs/unet.md), every logit qᵀk/√c is 0 and the softmax gives 1/P to every key.
// So the weakened network is the same UNet with a second parameter tensor, and every backend runs it.
import { unetDenoiser, type Denoiser } from './sample.ts';
import { tensor, type Tensor } from './tensor.ts';
import { unetLayout, type UNet } from './unet.ts';
import type { UNetConfig } from './native.ts';

/** `params` of a network of `config` with each attention's query projection zeroed: uniform attention maps. */
export function uniformAttentionParams(config: UNetConfig, params: Float32Array): Float32Array {
  const { params: layout, paramCount } = unetLayout(config);
  if (params.length !== paramCount)
    throw new TypeError(`uniformAttentionParams: expected ${paramCount} values for this network, got ${params.length}`);
  const out = Float32Array.from(params);
  let found = 0;
  for (const p of layout) {
    if (!/\.qkv\.(weight|bias)$/.test(p.name)) continue;
    // [3c, ...]: q, k, v in that order along the first axis; q is the first third.
    const rows = p.shape[0]! / 3;
    const per = p.shape.slice(1).reduce((a, b) => a * b, 1);
    out.fill(0, p.offset, p.offset + rows * per);
    found++;
  }
  // Never true of docs/unet.md's network (its middle block always has attention): a guard against a
  // layout whose names change, which would otherwise make the guidance silently the plain network.
  if (found === 0) throw new Error('uniform-attention guidance: no `qkv` parameters in the network layout');
  return out;
}

/**
 * A denoiser of `net` (with `params`, default its own) guided by uniform attention with weight `weight`:
 * 1 is the plain network (one pass per step); any other weight runs both networks (two passes per
 * step), above 1 guiding away from the weakened one. `dispose()` frees the weakened network's
 * parameters when sampling is done.
 */
export async function uniformAttentionGuidance(
  net: UNet,
  weight: number,
  params?: Tensor,
): Promise<{ denoiser: Denoiser; dispose(): void }> {
  if (!(Number.isFinite(weight) && weight >= 0)) throw new RangeError(`guidance: expected a weight >= 0 (1 = none), got ${weight}`);
  const own = params ?? net.params;
  const plain = unetDenoiser(net, own);
  if (weight === 1) return { denoiser: plain, dispose() {} };
  const weak = tensor(uniformAttentionParams(net.config, await own.toArray()), [net.paramCount], { device: net.device });
  const weakened = unetDenoiser(net, weak);
  const denoiser: Denoiser = (x, t) => {
    const held: Tensor[] = [];
    try {
      const d = plain(x, t);
      held.push(d);
      const u = weakened(x, t);
      held.push(u);
      const dw = d.scale(weight);
      held.push(dw);
      const uw = u.scale(1 - weight);
      held.push(uw);
      return dw.add(uw); // u + w (d − u)
    } finally {
      for (const h of held) h.dispose();
    }
  };
  return { denoiser, dispose: () => weak.dispose() };
}
