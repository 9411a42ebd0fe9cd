// Predicted H100 time of each stage of one forward + backward (UNet.profileStages' stages), BF16 on the
// fused path, written before any GPU run so that the first bench/gpu.mjs run checks them
// (native/dev/NOTES.md, "timing each fused block"). Model, per stage and phase:
//   convolutions: FLOPs per pass / the rate NOTES.md's instruction counts give ("the fused block's conv"):
//     forward 61 TFLOP/s with a GroupNorm prologue, 89 without; data gradient 50; weight gradient 53 with
//     the prologue (it recomputes the normalised input), 74 without;
//   attention's two products each way: SIMT 16x16 GEMMs at ~4.3 TFLOP/s (issue #13: cifar32's 129 GFLOP in
//     21-43 ms), its softmax 3 passes over n hw^2 floats;
//   elementwise and normalisation bytes of the wired graph (fused-traffic.mjs's "wired" min model, split by
//     stage): forward the residual read by the epilogue (1E of the output) and the statistics partials;
//     backward per GroupNorm + SiLU the folded backward 4E of its input (x and gy read, dL/dx written, the
//     addend read), attention's plain GroupNorm backward 3E and its gradient add 3E, Up's upsample fold 5E
//     of the small tensor, the skip gradient's add 3E where a skip was pushed;
//     at 3 TB/s;
//   launches: 4 us each (kernels per stage and phase counted from unet_graph.h / cuda/unet.cu).
// time = conv + attention + bytes / bandwidth + launches (no overlap between them: an upper-side guess).
//   node native/dev/stage-predict.mjs [preset] [batch]          (needs dist/: npm run build:ts)
import { native } from '../../dist/native.js';
import { resolveConfig } from '../../dist/unet.js';

const preset = process.argv[2] ?? 'fmnist32';
const n = Number(process.argv[3] ?? 128);
const cfg = resolveConfig(preset);
const { timedStages } = native.unetLayout(cfg);
const T = 1e12,
  BW = 3e12,
  LAUNCH = 4e-6,
  F = 4;
const rate = { fwdNorm: 61 * T, fwd: 89 * T, dgrad: 50 * T, wgradNorm: 53 * T, wgrad: 74 * T, attn: 4.3 * T };
const conv = (cin, cout, size, k) => 2 * n * cout * size * size * cin * k * k; // FLOPs of one pass at output size

function predict(s, i) {
  const hw = s.size * s.size,
    Ein = n * s.cin * hw,
    Eout = n * s.cout * hw;
  let f = 0, // seconds forward
    b = 0, // seconds backward
    fb = 0, // bytes forward
    bb = 0, // bytes backward
    fl = 0, // launches
    bl = 0,
    flops = 0;
  // A conv: forward, data gradient (dgrad false: none, conv_in), weight gradient.
  const c = (fl_, norm, dgrad = true) => {
    flops += fl_ * (dgrad ? 3 : 2);
    f += fl_ / (norm ? rate.fwdNorm : rate.fwd);
    b += (dgrad ? fl_ / rate.dgrad : 0) + fl_ / (norm ? rate.wgradNorm : rate.wgrad);
  };
  // A skip is pushed after conv_in and each down stage, except a ResBlock whose attention follows (the
  // attention's output is pushed instead).
  const next = timedStages[i + 1];
  const pushed = s.stage === 'conv_in' || (s.section === 'down' && !(s.kind === 'res' && next?.kind === 'attn'));
  switch (s.kind) {
    case 'time': {
      const C = cfg.channels,
        TC = 4 * C;
      flops += 3 * (2 * n * C * TC + 2 * n * TC * TC);
      fl += 5;
      bl += 6;
      break;
    }
    case 'conv':
      c(conv(s.cin, s.cout, s.size, 3), false, false);
      fb += F * 2 * Eout; // the copy of h0 (a skip) and its partials
      bb += F * 3 * Eout; // the skip gradient's add
      fl += 2;
      bl += 3;
      break;
    case 'res': {
      c(conv(s.cin, s.cout, s.size, 3), true);
      c(conv(s.cout, s.cout, s.size, 3), true);
      if (s.cin !== s.cout) c(conv(s.cin, s.cout, s.size, 1), false);
      flops += 3 * 2 * n * 4 * cfg.channels * s.cout;
      fb += F * Eout; // the residual read by conv2's epilogue (statistics partials: ~1 % more, ignored)
      bb += F * (4 * Eout + 4 * Ein); // norm2's and norm1's folded backward
      if (pushed) ((fb += F * 2 * Eout), (bb += F * 3 * Eout)); // the skip's copy; its gradient's add
      fl += 3 + 2 + (s.cin !== s.cout ? 3 : 2); // time linear; statistics folds; scale/shift; convs
      bl += 2 * 4 + 3 + (s.cin !== s.cout ? 3 : 0) + (pushed ? 1 : 0);
      break;
    }
    case 'attn': {
      const c_ = s.cin;
      c(conv(c_, 3 * c_, s.size, 1), true);
      c(conv(c_, c_, s.size, 1), false);
      const p = 2 * (2 * n * hw * hw * c_);
      flops += 3 * p;
      f += p / rate.attn;
      b += (2 * p) / rate.attn;
      fb += F * (3 * n * hw * hw + Ein);
      bb += F * (3 * n * hw * hw + 3 * Ein + 3 * Ein);
      if (pushed) ((fb += F * 2 * Eout), (bb += F * 3 * Eout));
      fl += 6;
      bl += 9;
      break;
    }
    case 'down':
      c(conv(s.cin, s.cout, s.size / 2, 3), false);
      if (pushed) ((fb += (F * 2 * Eout) / 4), (bb += (F * 3 * Eout) / 4));
      fl += 2;
      bl += 4;
      break;
    case 'up':
      c(conv(s.cin, s.cout, 2 * s.size, 3), false);
      bb += F * 5 * Ein;
      fl += 1;
      bl += 4;
      break;
    case 'head':
      c(conv(s.cin, s.cout, s.size, 3), true);
      bb += F * 3 * Ein;
      fl += 3;
      bl += 4;
      break;
  }
  const fwd = f + fb / BW + fl * LAUNCH,
    bwd = b + bb / BW + bl * LAUNCH;
  return { ...s, gflop: flops / 1e9, gb: (fb + bb) / 1e9, fwdMs: fwd * 1e3, bwdMs: bwd * 1e3 };
}

const rows = timedStages.map(predict);
console.log(`Predicted H100 per stage, ${preset} batch ${n}, BF16 fused (native/dev/stage-predict.mjs):\n`);
console.log('| stage | kind | size | cin → cout | GFLOP (fwd+bwd) | GB | fwd ms | bwd ms |');
console.log('|---|---|---|---|---|---|---|---|');
const sum = { gflop: 0, gb: 0, f: 0, b: 0 };
for (const r of rows) {
  sum.gflop += r.gflop;
  sum.gb += r.gb;
  sum.f += r.fwdMs;
  sum.b += r.bwdMs;
  console.log(
    `| ${r.stage} | ${r.kind} | ${r.size || '—'} | ${r.cin} → ${r.cout} | ${r.gflop.toFixed(1)} | ${r.gb.toFixed(3)} | ${r.fwdMs.toFixed(3)} | ${r.bwdMs.toFixed(3)} |`,
  );
}
console.log(`| **sum** | | | | ${sum.gflop.toFixed(1)} | ${sum.gb.toFixed(2)} | ${sum.f.toFixed(2)} | ${sum.b.toFixed(2)} |`);
