// Elementwise and normalisation traffic of one UNet training step (forward + backward), before and after
// the fused block of issue #13 (native/dev/NOTES.md, "the fused block"): counts, per op of the graph
// (include/kintsugi/unet_graph.h), the bytes each pass must move at least, float32.
//   node native/dev/fused-traffic.mjs [preset] [batch]     (needs dist/: npm run build:ts)
// Model, E = elements of the tensor the op works on: GroupNorm forward 3E (a statistics read, a
// normalising read, a write), backward 5E (x and gy read for the sums, read again to apply, gx written);
// SiLU forward 2E, backward 3E; concat / split 2E; add_inplace 3E; add_channel_bias 2E; channel_sums 1E;
// upsample 5E of the small tensor each way. Graph copies (copy_of of the skips, the copy of g) are
// listed apart: they are not elementwise work and no kernel fusion removes them.
import { native } from '../../dist/native.js';
import { resolveConfig } from '../../dist/unet.js';

const preset = process.argv[2] ?? 'fmnist32';
const n = Number(process.argv[3] ?? 128);
const cfg = resolveConfig(preset);
const { stages } = native.unetLayout(cfg);
const F = 4;
const before = {}, after = {};
const add = (t, what, elems) => (t[what] = (t[what] ?? 0) + elems * F);

for (const s of stages) {
  const hw = s.size * s.size, Ein = n * s.cin * hw, Eout = n * s.cout * hw;
  const concat = s.skipChannels > 0;
  if (s.kind === 'res') {
    // before: concat, norm1, silu, conv1, + time bias, norm2, silu, conv2, + residual
    if (concat) add(before, 'concat / split', 2 * Ein + 2 * Ein);
    add(before, 'groupnorm fwd', 3 * Ein + 3 * Eout);
    add(before, 'silu fwd', 2 * Ein + 2 * Eout);
    add(before, 'channel bias + sums', 2 * Eout + Eout);
    add(before, 'residual add (fwd) / gradient adds (bwd)', 3 * Eout + 3 * Ein);
    add(before, 'silu bwd', 3 * Eout + 3 * Ein);
    add(before, 'groupnorm bwd', 5 * Eout + 5 * Ein);
    // after: statistics passes (the apply and SiLU are in the conv's loader), the time bias and the
    // residual in the epilogue (the residual read once), concat in the gather; backward: the fused
    // GroupNorm+SiLU backward (groupnorm_silu, 5E), channel_sums, the gradient add, the split.
    add(after, 'groupnorm statistics (fwd)', Ein + Eout);
    add(after, 'residual read in the epilogue', Eout);
    add(after, 'channel sums (bwd)', Eout);
    add(after, 'groupnorm+silu bwd (fused op)', 5 * Eout + 5 * Ein);
    add(after, 'gradient adds (bwd)', 3 * Ein);
    if (concat) add(after, 'split (bwd)', 2 * Ein);
  } else if (s.kind === 'attn') {
    add(before, 'groupnorm fwd', 3 * Ein);
    add(before, 'residual add (fwd) / gradient adds (bwd)', 3 * Ein + 3 * Ein);
    add(before, 'groupnorm bwd', 5 * Ein);
    add(after, 'groupnorm statistics (fwd)', Ein);  // the apply in qkv's loader (prologue without SiLU)
    add(after, 'residual read in the epilogue', Ein);
    add(after, 'groupnorm bwd', 5 * Ein);
    add(after, 'gradient adds (bwd)', 3 * Ein);
  } else if (s.kind === 'up') {
    add(before, 'upsample fwd / bwd', 5 * Ein + 5 * Ein);
    add(after, 'upsample bwd (fold of the gradient)', 5 * Ein);  // the forward is the conv's gather
  }
}
// Output head: norm, silu, out conv.
const Eh = n * cfg.channels * cfg.resolution * cfg.resolution;
add(before, 'groupnorm fwd', 3 * Eh);
add(before, 'silu fwd', 2 * Eh);
add(before, 'silu bwd', 3 * Eh);
add(before, 'groupnorm bwd', 5 * Eh);
add(after, 'groupnorm statistics (fwd)', Eh);
add(after, 'groupnorm+silu bwd (fused op)', 5 * Eh);

const GB = (b) => (b / 1e9).toFixed(2);
for (const [name, t] of [['before (the graph today)', before], ['after (fused paths in full use)', after]]) {
  const total = Object.values(t).reduce((a, b) => a + b, 0);
  console.log(`${preset} batch ${n}, ${name}: ${GB(total)} GB`);
  for (const [k, v] of Object.entries(t)) console.log(`  ${k.padEnd(44)} ${GB(v).padStart(7)} GB`);
}
