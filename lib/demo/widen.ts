// Function-preserving widening of a UNet (the "Net2WiderNet" idea): a trained network with `channels`
// c becomes one with 2c that computes the same function, so training can go on with more capacity
// from where the narrow one stopped instead of from scratch (scripts/train-demo-prior.ts --widen).
//
// Every channel i of every hidden width becomes the pair (2i, 2i+1), both carrying i's activation:
// - a layer's output rows, biases and GroupNorm affines are duplicated;
// - a layer reading a doubled input splits each weight between the pair, r w and (1 - r) w with r
//   drawn per entry in [0.25, 0.75]: the sum is w (up to rounding), so both copies of an output are
//   still equal, and the unequal split gives the two copies different gradients (a plain halving
//   would keep them identical for ever);
// - GroupNorm keeps 32 groups (groups = min(32, c)), so a group of the wide net holds exactly the
//   copies of one group of the narrow net: same statistics;
// - attention's softmax scale falls from 1/sqrt(c) to 1/sqrt(2c) while q . k over the pairs doubles:
//   the q rows are multiplied by 1/sqrt(2);
// - the time embedding's sinusoid of width 2c has frequency 2i where the narrow one had i
//   (f_i = 10000^(-i/half)): time.linear1 reads those columns and ignores the new frequencies;
// - the image input (conv_in's input) and output (out.conv's output) keep their channel counts.
import { resolveConfig, unetLayout, type UNetConfig } from '../unet.ts';

export function widenedConfig(config: UNetConfig): Required<UNetConfig> {
  const c = resolveConfig(config);
  return { ...c, channels: 2 * c.channels };
}

/** The weights of `widenedConfig(config)` that compute the same function as `params` of `config`. */
export function widenParams(config: UNetConfig, params: Float32Array, seed = 1): { config: Required<UNetConfig>; params: Float32Array } {
  const narrow = unetLayout(config);
  if (params.length !== narrow.paramCount)
    throw new RangeError(`widenParams: params has ${params.length} values, the config needs ${narrow.paramCount}`);
  const wideConfig = widenedConfig(config);
  const wide = unetLayout(wideConfig);
  const byName = new Map(narrow.params.map((p) => [p.name, p]));
  const out = new Float32Array(wide.paramCount);
  const split = splitShares(seed);
  const channels = resolveConfig(config).channels;
  const half = channels / 2;
  for (const p of wide.params) {
    const q = byName.get(p.name);
    if (!q || q.shape.length !== p.shape.length)
      throw new Error(`widenParams: ${p.name} has no counterpart of the same rank in the narrow network`);
    const src = params.subarray(q.offset, q.offset + q.numel);
    const dst = out.subarray(p.offset, p.offset + p.numel);
    const [o, O] = [q.shape[0]!, p.shape[0]!];
    const outDup = O === 2 * o ? 2 : O === o ? 1 : 0;
    if (outDup === 0) throw new Error(`widenParams: ${p.name}: ${o} rows became ${O}`);
    // q rows of an attention's qkv: the first third of the (narrow) output rows.
    const qRows = p.name.endsWith('.qkv.weight') || p.name.endsWith('.qkv.bias') ? o / 3 : 0;
    const gain = (row: number) => (row < qRows ? Math.SQRT1_2 : 1);
    if (q.shape.length === 1) {
      for (let r = 0; r < o; r++) for (let a = 0; a < outDup; a++) dst[r * outDup + a] = src[r]! * gain(r);
      continue;
    }
    const [i, I] = [q.shape[1]!, p.shape[1]!];
    const taps = q.numel / (o * i);
    if (p.name === 'time.linear1.weight') {
      // Sinusoid columns: narrow sin i -> wide sin 2i, narrow cos i -> wide cos 2i (wide half = 2 half).
      if (i !== channels || I !== 2 * channels) throw new Error(`widenParams: ${p.name}: unexpected shape ${p.shape}`);
      for (let r = 0; r < o; r++)
        for (let a = 0; a < outDup; a++)
          for (let k = 0; k < half; k++) {
            dst[(r * outDup + a) * I + 2 * k] = src[r * i + k]!;
            dst[(r * outDup + a) * I + 2 * half + 2 * k] = src[r * i + half + k]!;
          }
      continue;
    }
    const inDup = I === 2 * i ? 2 : I === i ? 1 : 0;
    if (inDup === 0) throw new Error(`widenParams: ${p.name}: ${i} input channels became ${I}`);
    for (let r = 0; r < o; r++)
      for (let a = 0; a < outDup; a++) {
        const R = r * outDup + a;
        for (let c = 0; c < i; c++)
          for (let t = 0; t < taps; t++) {
            const w = src[(r * i + c) * taps + t]! * gain(r);
            if (inDup === 1) {
              dst[(R * I + c) * taps + t] = w;
              continue;
            }
            const at0 = (R * I + 2 * c) * taps + t;
            const at1 = (R * I + 2 * c + 1) * taps + t;
            const share = 0.25 + 0.5 * split();
            dst[at0] = share * w;
            dst[at1] = w - share * w;
          }
      }
  }
  return { config: wideConfig, params: out };
}

/** Uniform numbers in [0, 1) from a 32-bit seed (mulberry32): the split shares need no more than that. */
function splitShares(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
