// One training step (forward, MSE against a noise target, backward, AdamW) of kintsugi next to
// PyTorch's eager float32 step on the same network, in one run (interleaved rounds, so machine load
// hits both alike). Reports medians, their ratio, img/s, TFLOP/s against the FLOP counts of
// docs/performance.md, and peak memory. Run after `npm run build`:
//   node bench/train-step.mjs [--device cpu|cuda:0] [--preset tiny16] [--batch 16] [--steps 10] [--json FILE]
// PyTorch: Debian's python3-torch at /usr/bin/python3 here, `python3` on the GPU machine; without it
// only kintsugi is timed. Each kintsugi step ends with synchronize(), so the host clock is honest.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { AdamW, Generator, devices, memoryStats, randn, resetPeakMemory, synchronize, tensor, UNet } from '../dist/index.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const device = arg('device', 'cpu');
const preset = arg('preset', 'tiny16');
const batch = Number(arg('batch', device === 'cpu' ? 16 : 128));
const steps = Number(arg('steps', 10));
const rounds = 2;
const threads = availableParallelism();
// Forward + backward GFLOP per step at batch 128 (PyTorch's FLOP counter, docs/performance.md).
const GFLOP_128 = { fmnist32: 1109, cifar32: 4778 };

const net = new UNet(preset, { device, seed: 0 });
const opt = new AdamW(net, { lr: 1e-4 });
const { inChannels, outChannels, resolution: r } = net.config;
const g = new Generator(1);
const x = randn([batch, inChannels, r, r], { generator: g, device });
const eps = randn([batch, outChannels, r, r], { generator: g, device });
const t = tensor(Array.from({ length: batch }, (_, i) => (i * 997) % 1000), [batch], { device });
const scale = 2 / (batch * outChannels * r * r);
const negEps = eps.scale(-1);

async function step() {
  net.zeroGrad();
  const { out, tape } = net.forward(x, t);
  const diff = out.add(negEps);
  const gout = diff.scale(scale); // d/dout of mean((out - eps)^2)
  net.backward(tape, gout);
  opt.step();
  tape.release();
  await synchronize(device);
  for (const u of [out, diff, gout]) u.dispose();
}

function timeTorch() {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  try {
    const script = new URL('torch_step.py', import.meta.url).pathname;
    const out = execFileSync(python, [script, preset, String(batch), String(steps), String(threads), device === 'cpu' ? 'cpu' : 'cuda'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return { impl: 'pytorch', error: String(e.message).split('\n')[0] };
  }
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (let i = 0; i < 3; i++) await step();
resetPeakMemory(device);
const ours = [];
const torchRuns = [];
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    ours.push(performance.now() - t0);
  }
  torchRuns.push(timeTorch());
}
const torchTimes = torchRuns.flatMap((run) => run.times_ms ?? []);
const ms = median(ours);
const gflop = GFLOP_128[preset] ? (GFLOP_128[preset] * batch) / 128 : null;
const result = {
  date: new Date().toISOString(),
  device: devices().find((d) => d.device === device)?.name ?? device,
  threads,
  preset,
  batch,
  kintsugi_median_ms: ms,
  kintsugi_img_per_s: (1000 * batch) / ms,
  kintsugi_tflops: gflop ? gflop / ms : null,
  kintsugi_peak_bytes: memoryStats(device).peak,
  pytorch_median_ms: torchTimes.length ? median(torchTimes) : null,
  pytorch_version: torchRuns[0]?.version ?? null,
  pytorch_peak_bytes: torchRuns[0]?.peak_bytes ?? null,
  pytorch_error: torchRuns.find((run) => run.error)?.error,
};
result.ratio = result.pytorch_median_ms ? ms / result.pytorch_median_ms : null;
console.log(JSON.stringify(result, null, 2));
console.log(`${preset} batch ${batch} on ${device}: kintsugi ${ms.toFixed(1)} ms/step` +
  (result.pytorch_median_ms ? `, PyTorch ${result.pytorch_median_ms.toFixed(1)} ms/step: ratio ${result.ratio.toFixed(2)}x` : ` (PyTorch unavailable: ${result.pytorch_error})`));
const json = arg('json', undefined);
if (json) writeFileSync(json, JSON.stringify(result, null, 2));
