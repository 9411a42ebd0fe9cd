// Per-kernel figures on one device: each network op at the shapes one preset's training step runs it,
// reported in TFLOP/s against its counted FLOPs (matrix ops) or GB/s against its counted bytes (the
// bandwidth-bound ones). A timed call queues `reps` launches and waits once, so the host round trip
// is amortised; the figure is the mean per launch.
import { Generator, randn, synchronize, zeros } from '../../dist/index.js';
import { native } from '../../dist/native.js';

const time = async (device, reps, fn) => {
  fn();
  await synchronize(device); // warm-up: first-touch allocations, kernel loading
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  await synchronize(device);
  return (performance.now() - t0) / reps;
};

/** Shapes of the dominant ops of a preset's step at `batch` (docs/unet.md). */
function shapesOf(preset, batch) {
  const C = { tiny16: 32, small32: 32, fmnist32: 64, cifar32: 128 }[preset];
  const R = { tiny16: 16, small32: 32, fmnist32: 32, cifar32: 32 }[preset];
  if (!C) throw new Error(`kernels: unknown preset ${preset}`);
  return { n: batch, c: C, r: R, attnC: 2 * C, attnP: preset === 'cifar32' ? 256 : 64 };
}

export async function kernelFigures({ device, preset, batch, reps = 20, paramCount }) {
  const { n, c, r, attnC, attnP } = shapesOf(preset, batch);
  const g = new Generator(11);
  const rows = [];
  const keep = [];
  const T = (shape) => {
    const t = randn(shape, { generator: g, device });
    keep.push(t);
    return t.handle();
  };
  const add = (name, ms, flops, bytes) =>
    rows.push({ kernel: name, ms, tflops: flops ? flops / ms / 1e9 : null, gbs: bytes ? bytes / ms / 1e6 : null, flops, bytes });

  // conv 3x3, stride 1, c -> c at r x r: the bulk of every step.
  const conv = { n, cin: c, h: r, w: r, cout: c, k: 3, stride: 1 };
  const convFlops = 2 * n * c * r * r * c * 9;
  const x = T([n, c, r, r]),
    w = T([c, c, 3, 3]),
    b = T([c]),
    y = T([n, c, r, r]);
  const gx = T([n, c, r, r]),
    gw = T([c, c, 3, 3]),
    gb = T([c]);
  // In each precision (docs/precision.md): 0 FP32 SIMT, 1 BF16 and 2 TF32 on tensor cores (tc_conv.cu);
  // predictions per kernel in native/dev/NOTES.md. The stride-2 downsample too (phase-split data gradient).
  for (const [p, label] of [
    [0, 'fp32'],
    [1, 'bf16'],
    [2, 'tf32'],
  ]) {
    const cp = { ...conv, precision: p };
    add(
      `conv3x3 fwd ${label} ${n}x${c}x${r}x${r}`,
      await time(device, reps, () => native.nnOp('conv2d_forward', cp, [x, w, b], [y])),
      convFlops,
    );
    add(
      `conv3x3 bwd ${label} ${n}x${c}x${r}x${r}`,
      await time(device, reps, () => native.nnOp('conv2d_backward', cp, [x, w, y], [gx, gw, gb])),
      2 * convFlops,
    );
    const down = { ...cp, stride: 2 },
      yd = T([n, c, r / 2, r / 2]);
    add(
      `conv3x3 s2 fwd+bwd ${label} ${n}x${c}x${r}x${r}`,
      await time(device, reps, () => {
        native.nnOp('conv2d_forward', down, [x, w, b], [yd]);
        native.nnOp('conv2d_backward', down, [x, w, yd], [gx, gw, gb]);
      }),
      (3 * convFlops) / 4,
    );
  }

  // GroupNorm (32 groups) and SiLU over the same activation: bandwidth-bound.
  const numel = n * c * r * r;
  const gn = { n, c, hw: r * r, groups: 32 };
  const gam = T([c]),
    bet = T([c]),
    mean = T([n, 32]),
    rstd = T([n, 32]),
    ggam = T([c]),
    gbet = T([c]);
  add(
    `groupnorm fwd ${n}x${c}x${r}x${r}`,
    await time(device, reps, () => native.nnOp('groupnorm_forward', gn, [x, gam, bet], [y, mean, rstd])),
    null,
    3 * 4 * numel,
  );
  add(
    `groupnorm bwd ${n}x${c}x${r}x${r}`,
    await time(device, reps, () => native.nnOp('groupnorm_backward', gn, [x, gam, mean, rstd, y], [gx, ggam, gbet])),
    null,
    4 * 4 * numel,
  );
  // The fused pair the UNet runs (unet_graph.h): one statistics pass and one apply pass forward; backward
  // recomputes u (bytes counted as the unfused rows above, so the GB/s compare).
  add(
    `groupnorm+silu fwd ${n}x${c}x${r}x${r}`,
    await time(device, reps, () => native.nnOp('groupnorm_silu_forward', gn, [x, gam, bet], [y, mean, rstd])),
    null,
    3 * 4 * numel,
  );
  add(
    `groupnorm+silu bwd ${n}x${c}x${r}x${r}`,
    await time(device, reps, () => native.nnOp('groupnorm_silu_backward', gn, [x, gam, bet, mean, rstd, y], [gx, ggam, gbet])),
    null,
    4 * 4 * numel,
  );
  // The convolution with the ResBlock's epilogue (time bias and residual in its output pass).
  const tb = T([n, c]);
  add(
    `conv3x3 fwd fp32 +time bias +residual ${n}x${c}x${r}x${r}`,
    await time(device, reps, () => native.nnOp('conv2d_forward_fused', conv, [x, w, b, tb, gx], [y])),
    convFlops,
  );
  add(`silu fwd ${numel}`, await time(device, reps, () => native.nnOp('silu_forward', { n: numel }, [x], [y])), null, 2 * 4 * numel);
  add(`silu bwd ${numel}`, await time(device, reps, () => native.nnOp('silu_backward', { n: numel }, [x, y], [gx])), null, 3 * 4 * numel);
  add(`add ${numel}`, await time(device, reps, () => native.add(x, y, gx)), null, 3 * 4 * numel);

  // Attention at the lowest resolution with attention (single head).
  const qkv = T([n, 3 * attnC, attnP]),
    attn = T([n, attnP, attnP]),
    o = T([n, attnC, attnP]),
    gqkv = T([n, 3 * attnC, attnP]);
  const attnFlops = 2 * (2 * n * attnP * attnP * attnC);
  add(
    `attention fwd ${n}x${attnC}x${attnP}`,
    await time(device, reps, () => native.nnOp('attention_forward', { n, c: attnC, p: attnP }, [qkv], [attn, o])),
    attnFlops,
  );
  add(
    `attention bwd ${n}x${attnC}x${attnP}`,
    await time(device, reps, () => native.nnOp('attention_backward', { n, c: attnC, p: attnP }, [qkv, attn, o], [gqkv])),
    2 * attnFlops,
  );

  // AdamW over the whole parameter vector: reads p, g, m, v and writes p, m, v (28 bytes per parameter).
  if (paramCount) {
    const p = T([paramCount]),
      gr = T([paramCount]),
      m = zeros([paramCount], { device }),
      v = zeros([paramCount], { device }),
      s = zeros([1], { device });
    keep.push(m, v, s);
    const opts = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, maxNorm: 0 };
    add(
      `adamw ${paramCount}`,
      await time(device, reps, () => native.adamw(p, gr, m.handle(), v.handle(), s.handle(), opts)),
      null,
      28 * paramCount,
    );
  }
  for (const t of keep) t.dispose();
  return rows;
}
