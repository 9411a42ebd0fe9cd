// Elementwise and reduction throughput of the native ops on every device, next to the same work in
// plain JavaScript on Float32Arrays, measured in one run (the ratio is what to read; absolute times
// on shared machines are noisy). Run after `npm run build` (uses dist/):
//   node bench/ops.bench.mjs [--n 4194304] [--json bench/results/ops-<date>.json]
import { writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { BlockAverageOperator, buildInfo, devices, FourierOperator, Generator, randn, synchronize } from '../dist/index.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const n = Number(arg('n', 1 << 22));
const jsonPath = arg('json', undefined);

const bench = new Bench({ time: 500, warmupTime: 100 });
const bytes = {}; // bytes moved per call, for GB/s

const a = new Float32Array(n).map((_, i) => Math.sin(i) + 1.5);
const b = new Float32Array(n).map((_, i) => Math.cos(i) - 1.5);
const out = new Float32Array(n);
bench.add('js add (Float32Array loop)', () => {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
});
bytes['js add (Float32Array loop)'] = 12 * n;
bench.add('js sum (Float64 accumulator)', () => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i];
  return s;
});
bytes['js sum (Float64 accumulator)'] = 4 * n;

const tensors = [];
for (const { device } of devices()) {
  const x = randn([n], { generator: new Generator(1), device });
  const y = randn([n], { generator: new Generator(2), device });
  tensors.push(x, y);
  const g = new Generator(3);
  // Each timed call queues the op and waits for the device, so the time is the op's own.
  const timed = (name, moved, fn) => {
    bench.add(`${device} ${name}`, async () => {
      const t = fn();
      await synchronize(device);
      t.dispose();
    });
    bytes[`${device} ${name}`] = moved;
  };
  timed('add', 12 * n, () => x.add(y));
  timed('scale', 8 * n, () => x.scale(0.5));
  timed('sum', 4 * n, () => x.sum());
  timed('randn', 4 * n, () => randn([n], { generator: g, device }));
  // The degradation transforms on 32 complex 256x256 images (lib/corruption); bytes: one read, one write.
  const img = randn([32, 2, 256, 256], { generator: new Generator(4), device });
  const fourier = new FourierOperator(new Uint8Array(32 * 256).fill(1), [2, 256, 256], { device });
  const blocks = new BlockAverageOperator(32, [2, 256, 256], 4, { device });
  tensors.push(img, fourier, blocks);
  timed('fft2 32x2x256x256', 8 * img.numel, () => fourier.vt(img));
  timed('block_average_vt k4 32x2x256x256', 8 * img.numel, () => blocks.vt(img));
}

await bench.run();
const rows = bench.tasks.map((t) => {
  const ms = t.result.latency.p50;
  return {
    task: t.name,
    'median ms': ms.toFixed(3),
    'GB/s': (bytes[t.name] / ms / 1e6).toFixed(2),
    samples: t.result.latency.samplesCount,
  };
});
console.log(
  `n = ${n}; ${new Date().toISOString()}; ${devices()
    .map((d) => `${d.device}: ${d.name}`)
    .join('; ')}`,
);
console.table(rows);
const jsAdd = bench.tasks.find((t) => t.name.startsWith('js add')).result.latency.p50;
const cpuAdd = bench.tasks.find((t) => t.name === 'cpu add').result.latency.p50;
console.log(`cpu add vs a plain JavaScript loop, same run: ${(jsAdd / cpuAdd).toFixed(2)}x`);
if (jsonPath) {
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), n, build: buildInfo(), devices: devices(), rows }, null, 2));
}
for (const t of tensors) t.dispose();
