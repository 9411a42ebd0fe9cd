// Elementwise and normalisation traffic of one UNet training step (forward + backward), before and after
// the fused block of issue #13 ("wired": what cuda/unet.cu runs on tensor cores: the fused conv and the
// folds; "fused conv alone": the graph before the folds were wired) (native/dev/NOTES.md, "the fused
// block", "the folds", "wiring the folds"): counts, per op of the graph
// (include/kintsugi/unet_graph.h), the bytes each pass must move at least, float32.
//   node native/dev/fused-traffic.mjs [preset] [batch] [min|two-pass]   (needs dist/: npm run build:ts)
// Model, E = elements of the tensor the op works on: GroupNorm forward 2E (min: read once, write; the
// 11.5 GB of native/dev/cuda-nn.md) or 3E (two-pass: a statistics read, a normalising read, a write),
// backward 3E (min) or 5E (x and gy read for the sums, read again to apply, gx written), the fused
// GroupNorm+SiLU backward the same; a statistics-only pass 1E; SiLU forward 2E, backward 3E; concat /
// split 2E; add_inplace 3E; add_channel_bias 2E; channel_sums 1E; upsample 5E of the small tensor each
// way; the residual read by the conv epilogue 1E. Graph copies (copy_of of the skips, the copy of g) are
// listed apart: they are not elementwise work and no kernel fusion removes them.
import { native } from '../../dist/native.js';
import { resolveConfig } from '../../dist/unet.js';

const preset = process.argv[2] ?? 'fmnist32';
const n = Number(process.argv[3] ?? 128);
const twoPass = process.argv[4] === 'two-pass';
const gnF = twoPass ? 3 : 2,
  gnB = twoPass ? 5 : 3;
const cfg = resolveConfig(preset);
const { stages } = native.unetLayout(cfg);
const F = 4;
// wired: with the four folds (NOTES.md, "the folds", wired as "wiring the folds" says): GroupNorm statistics as per-tile partials of the
// producing conv's epilogue (TcEpilogue::stats: a (mean, M2) pair of doubles per channel, 64-pixel tile
// and image the tile touches, written once and read once by groupnorm_stats_fold: 2 x 16 J / 64 bytes
// per element, J = images per tile, stats_images_per_tile in tc_conv.cu); the gradient add, the concat's
// split and the channel sums (time-bias and bias gradients) inside groupnorm_silu_backward_folded's apply
// pass (the addend read: 1E; two outputs: no extra bytes; the sums: none). Attention's GroupNorm is plain
// (groupnorm_backward): its gradient add stays a separate pass. Every conv whose output is the next
// stage's input writes partials (unet_graph.h): those of a Down stage's input are written and never read.
// Not counted in any row (as before): the convs' bias gradients (conv2d_bias_backward reads gy, 1E, for
// conv2, the skip convs, Down, Up, attention's proj and conv_in; conv1's comes from norm2's folded sums).
const before = {},
  after = {},
  folds = {};
const add = (t, what, elems) => (t[what] = (t[what] ?? 0) + elems * F);
// Images one 64-pixel tile can touch (tc_conv.cu's stats_images_per_tile).
const perTile = (plane) => Math.min(n, plane % 64 === 0 ? 1 : 64 % plane === 0 ? 64 / plane : Math.floor(63 / plane) + 2);
const partials = (elems, plane) => (elems * perTile(plane) * 2 * 16) / 64 / F; // in float-element units

for (const s of stages) {
  const hw = s.size * s.size,
    Ein = n * s.cin * hw,
    Eout = n * s.cout * hw;
  const concat = s.skipChannels > 0;
  if (s.kind === 'res') {
    // before: concat, norm1, silu, conv1, + time bias, norm2, silu, conv2, + residual
    if (concat) add(before, 'concat / split', 2 * Ein + 2 * Ein);
    add(before, 'groupnorm fwd', gnF * Ein + gnF * Eout);
    add(before, 'silu fwd', 2 * Ein + 2 * Eout);
    add(before, 'channel bias + sums', 2 * Eout + Eout);
    add(before, 'residual add (fwd) / gradient adds (bwd)', 3 * Eout + 3 * Ein);
    add(before, 'silu bwd', 3 * Eout + 3 * Ein);
    add(before, 'groupnorm bwd', gnB * Eout + gnB * Ein);
    // after: statistics passes (the apply and SiLU are in the conv's loader), the time bias and the
    // residual in the epilogue (the residual read once), concat in the gather; backward: the fused
    // GroupNorm+SiLU backward (groupnorm_silu, 5E), channel_sums, the gradient add, the split.
    add(after, 'groupnorm statistics (fwd)', Ein + Eout);
    add(folds, 'statistics partials (epilogue + fold)', partials(Ein + Eout, hw));
    add(folds, 'residual read in the epilogue', Eout);
    add(folds, 'groupnorm+silu bwd (folded: + addend read)', gnB * Eout + gnB * Ein + Ein);
    add(after, 'residual read in the epilogue', Eout);
    add(after, 'channel sums (bwd)', Eout);
    add(after, 'groupnorm+silu bwd (fused op)', gnB * Eout + gnB * Ein);
    add(after, 'gradient adds (bwd)', 3 * Ein);
    // The GroupNorm backward of a concat reads x as one tensor (its groups straddle the concat): the
    // backward writes the concat for it (2E) and splits its gradient (2E); the conv's own data gradient
    // writes the two halves directly (cuda/unet.cu).
    if (concat) add(after, 'concat rewritten + split (bwd, GroupNorm)', 2 * Ein + 2 * Ein);
  } else if (s.kind === 'attn') {
    add(before, 'groupnorm fwd', gnF * Ein);
    add(before, 'residual add (fwd) / gradient adds (bwd)', 3 * Ein + 3 * Ein);
    add(before, 'groupnorm bwd', gnB * Ein);
    add(after, 'groupnorm statistics (fwd)', Ein); // the apply in qkv's loader (prologue without SiLU)
    add(folds, 'statistics partials (epilogue + fold)', partials(Ein, hw));
    add(folds, 'residual read in the epilogue', Ein);
    add(folds, 'groupnorm bwd (attention, plain)', gnB * Ein);
    add(folds, 'gradient adds (bwd, attention)', 3 * Ein);
    add(after, 'residual read in the epilogue', Ein);
    add(after, 'groupnorm bwd', gnB * Ein);
    add(after, 'gradient adds (bwd)', 3 * Ein);
  } else if (s.kind === 'down') {
    add(folds, 'statistics partials unread (Down input)', partials(Ein, hw) / 2);
  } else if (s.kind === 'up') {
    add(before, 'upsample fwd / bwd', 5 * Ein + 5 * Ein);
    add(after, 'upsample bwd (fold of the gradient)', 5 * Ein); // the forward is the conv's gather
    add(folds, 'upsample bwd (fold of the gradient)', 5 * Ein);
  }
}
// Output head: norm, silu, out conv.
const Eh = n * cfg.channels * cfg.resolution * cfg.resolution;
add(before, 'groupnorm fwd', gnF * Eh);
add(before, 'silu fwd', 2 * Eh);
add(before, 'silu bwd', 3 * Eh);
add(before, 'groupnorm bwd', gnB * Eh);
add(after, 'groupnorm statistics (fwd)', Eh);
add(after, 'groupnorm+silu bwd (fused op)', gnB * Eh);
add(folds, 'statistics partials (epilogue + fold)', partials(Eh, cfg.resolution * cfg.resolution));
add(folds, 'groupnorm+silu bwd (folded: + addend read)', gnB * Eh);

const GB = (b) => (b / 1e9).toFixed(2);
for (const [name, t] of [
  ['before (unfused: every op its own pass)', before],
  ['fused conv alone (the graph before the folds were wired)', after],
  ['wired (the graph on tensor cores: fused conv + folds, 2026-12-06)', folds],
]) {
  const total = Object.values(t).reduce((a, b) => a + b, 0);
  console.log(`${preset} batch ${n} (${twoPass ? 'two-pass' : 'min'}), ${name}: ${GB(total)} GB`);
  for (const [k, v] of Object.entries(t)) console.log(`  ${k.padEnd(44)} ${GB(v).padStart(7)} GB`);
}
