// One CPU training step (forward, MSE against a noise target, backward, AdamW) of kintsugi next to
// PyTorch's CPU step on the same network, in one run (interleaved rounds, so machine load hits both
// alike); reports the median of each and their ratio. Run after `npm run build`:
//   node bench/cpu-step.mjs [--preset tiny16] [--batch 16] [--steps 10] [--json bench/results/cpu-step-<date>.json]
// PyTorch comes from Debian's python3-torch at /usr/bin/python3; without it only kintsugi is timed.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { AdamW, Generator, randn, tensor, UNet, synchronize, devices } from '../dist/index.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const preset = arg('preset', 'tiny16');
const batch = Number(arg('batch', 16));
const steps = Number(arg('steps', 10));
const rounds = 2;
const threads = availableParallelism();

const net = new UNet(preset, { device: 'cpu', seed: 0 });
const opt = new AdamW(net, { lr: 1e-4 });
const { inChannels, outChannels, resolution: r } = net.config;
const g = new Generator(1);
const x = randn([batch, inChannels, r, r], { generator: g, device: 'cpu' });
const eps = randn([batch, outChannels, r, r], { generator: g, device: 'cpu' });
const t = tensor(Array.from({ length: batch }, (_, i) => (i * 997) % 1000), [batch], { device: 'cpu' });
const scale = 2 / (batch * outChannels * r * r);
const negEps = eps.scale(-1);

async function step() {
  net.zeroGrad();
  const { out, tape } = net.forward(x, t);
  const diff = out.add(negEps);
  const gout = diff.scale(scale); // d/dout of mean((out - eps)^2)
  net.backward(tape, gout);
  opt.step();
  await synchronize('cpu');
  tape.release();
  for (const u of [out, diff, gout]) u.dispose();
}

function timeTorch() {
  try {
    const out = execFileSync('/usr/bin/python3', [new URL('torch_cpu_step.py', import.meta.url).pathname, preset, String(batch), String(steps), String(threads)], { encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return { impl: 'pytorch', error: String(e.message).split('\n')[0] };
  }
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (let i = 0; i < 2; i++) await step();
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
const result = {
  date: new Date().toISOString(),
  machine: devices()[0].name,
  threads,
  preset,
  batch,
  kintsugi_median_ms: median(ours),
  pytorch_median_ms: torchTimes.length ? median(torchTimes) : null,
  pytorch_version: torchRuns[0]?.version ?? null,
  pytorch_error: torchRuns.find((run) => run.error)?.error,
};
result.ratio = result.pytorch_median_ms ? result.kintsugi_median_ms / result.pytorch_median_ms : null;
console.log(JSON.stringify(result, null, 2));
console.log(`${preset} batch ${batch}, ${threads} threads: kintsugi ${result.kintsugi_median_ms.toFixed(1)} ms/step` +
  (result.pytorch_median_ms ? `, PyTorch ${result.pytorch_median_ms.toFixed(1)} ms/step: ratio ${result.ratio.toFixed(2)}x` : ` (PyTorch unavailable: ${result.pytorch_error})`));
const json = arg('json', undefined);
if (json) writeFileSync(json, JSON.stringify(result, null, 2));
