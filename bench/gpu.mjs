// The GPU benchmark suite, meant for one device call on the GPU machine (docs/gpu.md):
//   source .gpu/env.sh && KINTSUGI_COMMIT=<sha> node bench/gpu.mjs --out $OUT
// For each preset at batch 128: kintsugi's training step next to PyTorch's (eager fp32, torch.compile
// fp32 and bf16) measured in the same command; the GSURE step next to the supervised one; sampling throughput (50 DDIM steps, batch 256) next to
// PyTorch's; per-kernel TFLOP/s and GB/s against counted FLOPs and bytes, and one ResBlock's forward +
// backward through the unfused ops (`resblock fwd+bwd unfused`), the whole network's forward + backward
// fused (BF16) and unfused (FP32) (`unet fwd+bwd`); peak memory for all. Writes
// gpu-<date>.json (device, driver, commit, date) and prints the README table (bench/report.mjs).
// Per stage of the real network (`stages`): each ResBlock / attention / Downsample / Upsample, the time
// path, conv_in and the head, forward and backward, fused BF16 and FP32 (UNet.profileStages), beside
// PyTorch eager fp32 / bf16 per module (bench/torch_blocks.py), printed as one table per preset.
// --blocks-only: the ResBlock, network and stage rows alone, to gpu-blocks-<date>.json, printing the
// stage tables (seconds on a GPU; runs on the CPU too:
//   node bench/gpu.mjs --device cpu --blocks-only --presets tiny16 --batch 2 [--no-torch] --out /tmp/b).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Generator, randn, resolveConfig, synchronize, tensor, UNet, unetCost, unetLayout } from '../dist/index.js';
import { native } from '../dist/native.js';
import { arg, flag, runInfo, runPython } from './lib/common.mjs';
import { kernelFigures } from './lib/kernels.mjs';
import { timeGsureStep, timeSampling, timeTrainStep } from './lib/step.mjs';
import { markdownTables, stageTables } from './report.mjs';

const device = arg('device', 'cuda:0');
const presets = arg('presets', 'fmnist32,cifar32').split(',');
const batch = Number(arg('batch', 128));
const sampleBatch = Number(arg('sample-batch', 256));
const steps = Number(arg('steps', 30));
const quick = flag('quick'); // PyTorch eager only, fewer steps: a smoke run
const noTorch = flag('no-torch');
const outDir = arg('out', new URL('results/', import.meta.url).pathname);
const blocksOnly = flag('blocks-only'); // only the per-block rows (a short device call)
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// One ResBlock (GroupNorm, SiLU, conv 3x3, GroupNorm, SiLU, conv 3x3, + residual; c -> c at r x r, 32
// groups), forward then backward, through the unfused ops as the graph runs them today: the "before" of
// the fused block (native/dev/NOTES.md, "the fused block's conv", predicts the "after"; the fused entry
// points are native-only until the graph calls them). The time embedding's channel bias is left out (no
// op of its own). bytes: the elementwise and normalisation traffic of the block (fused-traffic.mjs's
// minimum model); flops: the six conv passes.
async function blockRows({ device, n, c, r, reps = 10 }) {
  const g = new Generator(13);
  const keep = [];
  const T = (shape) => {
    const t = randn(shape, { generator: g, device });
    keep.push(t);
    return t.handle();
  };
  const E = n * c * r * r;
  const gn = { n, c, hw: r * r, groups: 32 };
  const [x, u1, a1, h, u2, a2, y, gy, ga, gh, gx, gin] = Array.from({ length: 12 }, () => T([n, c, r, r]));
  const [w1, w2, gw1, gw2] = Array.from({ length: 4 }, () => T([c, c, 3, 3]));
  const [b1, b2, gb1, gb2, gam, bet, ggam, gbet] = Array.from({ length: 8 }, () => T([c]));
  const [m1, r1, m2, r2] = Array.from({ length: 4 }, () => T([n, 32]));
  const rows = [];
  for (const [p, label] of [
    [1, 'bf16'],
    [0, 'fp32'],
  ]) {
    const conv = { n, cin: c, h: r, w: r, cout: c, k: 3, stride: 1, precision: p };
    const step = () => {
      native.nnOp('groupnorm_forward', gn, [x, gam, bet], [u1, m1, r1]);
      native.nnOp('silu_forward', { n: E }, [u1], [a1]);
      native.nnOp('conv2d_forward', conv, [a1, w1, b1], [h]);
      native.nnOp('groupnorm_forward', gn, [h, gam, bet], [u2, m2, r2]);
      native.nnOp('silu_forward', { n: E }, [u2], [a2]);
      native.nnOp('conv2d_forward', conv, [a2, w2, b2], [y]);
      native.add(y, x, y);
      native.nnOp('conv2d_backward', conv, [a2, w2, gy], [ga, gw2, gb2]);
      native.nnOp('silu_backward', { n: E }, [u2, ga], [ga]);
      native.nnOp('groupnorm_backward', gn, [h, gam, m2, r2, ga], [gh, ggam, gbet]);
      native.nnOp('conv2d_backward', conv, [a1, w1, gh], [ga, gw1, gb1]);
      native.nnOp('silu_backward', { n: E }, [u1, ga], [ga]);
      native.nnOp('groupnorm_backward', gn, [x, gam, m1, r1, ga], [gx, ggam, gbet]);
      native.add(gx, gy, gin);
    };
    step();
    await synchronize(device);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) step();
    await synchronize(device);
    const ms = (performance.now() - t0) / reps;
    const flops = 6 * 2 * n * c * r * r * c * 9;
    const bytes = 4 * E * (2 * 2 + 2 * 2 + 3 + 2 * 3 + 2 * 3 + 3); // GN 2E/3E, SiLU 2E/3E, two adds
    rows.push({ kernel: `resblock fwd+bwd unfused ${label} ${n}x${c}x${r}x${r}`, ms, tflops: flops / ms / 1e9, gbs: null, flops, bytes });
  }
  for (const t of keep) t.dispose();
  return rows;
}

// A batch of n inputs for `net`, an output gradient and n time steps spread over [0, 1000).
function networkInputs(net, n, seed, device) {
  const { inChannels, outChannels, resolution: r } = net.config;
  const g = new Generator(seed);
  const x = randn([n, inChannels, r, r], { generator: g, device });
  const gout = randn([n, outChannels, r, r], { generator: g, device });
  const t = tensor(
    Array.from({ length: n }, (_, i) => (i * 997) % 1000),
    [n],
    { device },
  );
  return { x, gout, t };
}

// The whole network's forward + backward (no optimiser step) through the public API: with BF16 on a
// tensor-core device the graph runs the fused block everywhere (cuda/unet.cu: GroupNorm + SiLU in the
// conv's loader, concat and upsample gathered, bias / time bias / residual in the epilogue), with FP32 the
// unfused composition (the exact path). The pair is the per-network "after" beside its "before"; the two
// rows differ in operand precision as well as fusion (the graph has no unfused BF16 path left), so the
// unfused BF16 cost is the ResBlock rows' `unfused bf16` scaled, not measured here. flops: the counted
// forward + backward (unetCost's training figure).
async function networkRows({ device, preset, n, reps = 5 }) {
  const rows = [];
  for (const precision of ['bf16', 'fp32']) {
    const net = new UNet(preset, { device, seed: 0, precision });
    const { x, gout, t } = networkInputs(net, n, 3, device);
    const pass = () => {
      const { out, tape } = net.forward(x, t);
      net.backward(tape, gout);
      tape.release();
      out.dispose();
    };
    pass();
    await synchronize(device);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) pass();
    await synchronize(device);
    const ms = (performance.now() - t0) / reps;
    for (const u of [x, gout, t]) u.dispose();
    net.dispose();
    const flops = unetCost(preset, n).training;
    const label = precision === 'bf16' ? 'fused bf16' : 'unfused fp32';
    rows.push({ kernel: `unet fwd+bwd ${label} ${preset} batch ${n}`, ms, tflops: flops / ms / 1e9, gbs: null, flops, bytes: null });
  }
  return rows;
}

// Each stage of the real network (UNet.profileStages: the time path, conv_in, every ResBlock /
// attention / Downsample / Upsample, the head), forward and backward, fused BF16 and FP32, the median of
// `reps` profiled passes after one warm-up; beside PyTorch eager fp32 and bf16 autocast on the same
// network, timed per module by bench/torch_blocks.py. On CUDA both sides time with events on the stream;
// on the CPU with the host clock.
async function stageRows({ device, preset, n, reps = 5, torch = true }) {
  const out = { batch: n, reps, kintsugi: {}, torch: {} };
  const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  for (const precision of ['bf16', 'fp32']) {
    const net = new UNet(preset, { device, seed: 0, precision });
    const { x, gout, t } = networkInputs(net, n, 5, device);
    const runs = [];
    for (let i = 0; i <= reps; i++) {
      const p = await net.profileStages(x, t, gout);
      p.out.dispose();
      if (i > 0) runs.push(p.stages); // the first pass allocates and warms up
    }
    out.kintsugi[precision] = runs[0].map((s, k) => ({
      ...s,
      fwdMs: median(runs.map((run) => run[k].fwdMs)),
      bwdMs: median(runs.map((run) => run[k].bwdMs)),
    }));
    for (const u of [x, gout, t]) u.dispose();
    net.dispose();
  }
  if (torch) {
    const res = runPython('torch_blocks.py', [preset, n, reps, device.startsWith('cuda') ? 'cuda' : 'cpu', 'bf16,fp32']);
    for (const precision of ['bf16', 'fp32']) {
      out.torch[precision] = res.error ? { error: res.error } : { version: res.version, ...res.by_precision[precision] };
      if (out.torch[precision].error) log(preset, `  PyTorch stages ${precision}: ${out.torch[precision].error}`);
    }
  }
  return out;
}

const result = { suite: 'gpu', ...runInfo(device), batch, sampleBatch, presets: {} };
for (const preset of presets) {
  const r = (result.presets[preset] = {});
  const C = resolveConfig(preset).channels; // the level-0 ResBlock's width (at 32 x 32)
  if (blocksOnly) {
    log(preset, 'blocks');
    r.kernels = await blockRows({ device, n: batch, c: C, r: 32 });
    r.kernels.push(...(await networkRows({ device, preset, n: batch })));
    for (const k of r.kernels) log(preset, `  ${k.kernel}: ${k.ms.toFixed(3)} ms`);
    log(preset, 'stages');
    r.stages = await stageRows({ device, preset, n: batch, torch: !noTorch });
    continue;
  }
  log(preset, 'kintsugi training step');
  r.train = await timeTrainStep({ device, preset, batch, steps: quick ? 5 : steps });
  log(preset, `  ${r.train.median_ms.toFixed(2)} ms/step (${r.train.precision})`);
  // The exact path beside the default (tensor cores, BF16 operands): issue #13's before and after.
  log(preset, 'kintsugi training step, fp32 (SIMT)');
  r.trainFp32 = await timeTrainStep({ device, preset, batch, steps: quick ? 5 : steps, precision: 'fp32' });
  log(preset, `  ${r.trainFp32.median_ms.toFixed(2)} ms/step`);
  r.torchTrain = [];
  if (!noTorch) {
    const modes = quick
      ? [['eager', 'fp32']]
      : [
          ['eager', 'fp32'],
          ['compile', 'fp32'],
          ['compile', 'bf16'],
        ];
    for (const [mode, precision] of modes) {
      log(preset, `PyTorch ${mode} ${precision}`);
      const t = runPython('torch_step.py', [preset, batch, quick ? 5 : steps, 16, 'cuda', mode, precision]);
      r.torchTrain.push({ mode, precision, ...t, times_ms: undefined });
      log(preset, t.error ? `  error: ${t.error}` : `  ${t.median_ms.toFixed(2)} ms/step`);
    }
  }
  log(preset, 'kintsugi GSURE step (1 probe, forward differences)');
  r.gsure = await timeGsureStep({ device, preset, batch, steps: quick ? 5 : steps });
  r.gsure.ratio_to_supervised = r.gsure.median_ms / r.train.median_ms;
  log(preset, `  ${r.gsure.median_ms.toFixed(2)} ms/step (${r.gsure.ratio_to_supervised.toFixed(2)}x the supervised step)`);
  log(preset, 'kintsugi sampling');
  r.sample = await timeSampling({ device, preset, batch: sampleBatch, steps: 50 });
  log(preset, `  ${r.sample.img_per_s.toFixed(0)} img/s`);
  r.torchSample = [];
  if (!noTorch) {
    for (const mode of quick ? ['eager'] : ['eager', 'compile']) {
      log(preset, `PyTorch sampling ${mode} bf16`);
      const t = runPython('torch_sample.py', [preset, sampleBatch, 50, mode, 'bf16']);
      r.torchSample.push({ mode, ...t });
      log(preset, t.error ? `  error: ${t.error}` : `  ${t.img_per_s.toFixed(0)} img/s`);
    }
  }
  log(preset, 'kernels');
  r.kernels = await kernelFigures({ device, preset, batch, paramCount: unetLayout(preset).paramCount });
  log(preset, 'blocks');
  r.kernels.push(...(await blockRows({ device, n: batch, c: C, r: 32 })));
  r.kernels.push(...(await networkRows({ device, preset, n: batch })));
  log(preset, 'stages');
  r.stages = await stageRows({ device, preset, n: batch, reps: quick ? 3 : 5, torch: !noTorch });
}

mkdirSync(outDir, { recursive: true });
const file = join(outDir, `gpu${blocksOnly ? '-blocks' : ''}-${result.date.slice(0, 10)}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(blocksOnly ? stageTables(result) : markdownTables(result));
log(`wrote ${file}`);
