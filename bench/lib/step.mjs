// kintsugi's side of the step and sampling benchmarks. A training step is what lib/train.ts does per
// step minus the batch gather: forward, the MSE gradient, backward, AdamW, on fixed inputs. Each timed
// step ends with synchronize(), so the host clock measures the device's work plus the queue overhead.
import {
  AdamW,
  Generator,
  memoryStats,
  NoiseSchedule,
  randn,
  resetPeakMemory,
  sample,
  synchronize,
  tensor,
  UNet,
  unetCost,
  unetDenoiser,
} from '../../dist/index.js';
import { median } from './common.mjs';

/** Runs `step` warm-up times, then times `steps` of it; the device's peak memory over the timed steps. */
async function timeSteps(step, { device, steps, warmup }) {
  for (let i = 0; i < warmup; i++) await step();
  resetPeakMemory(device);
  const times = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  // CPU time of all the process's threads per step: on a loaded machine a steadier figure than wall time.
  return { times, peak: memoryStats(device).peak, cpuMs: (cpu.user + cpu.system) / 1000 / steps };
}

// precision: the convolutions' operand precision (docs/precision.md); undefined: the device's default.
export async function timeTrainStep({ device, preset, batch, steps = 30, warmup = 3, precision }) {
  const net = new UNet(preset, { device, seed: 0, precision });
  const opt = new AdamW(net, { lr: 1e-4 });
  const { inChannels, outChannels, resolution: r } = net.config;
  const g = new Generator(1);
  const x = randn([batch, inChannels, r, r], { generator: g, device });
  const negEps = randn([batch, outChannels, r, r], { generator: g, device }).scale(-1);
  const t = tensor(
    Array.from({ length: batch }, (_, i) => (i * 997) % 1000),
    [batch],
    { device },
  );
  const scale = 2 / (batch * outChannels * r * r);
  const step = async () => {
    net.zeroGrad();
    const { out, tape } = net.forward(x, t);
    const diff = out.add(negEps);
    const gout = diff.scale(scale); // d/dout of mean((out - eps)^2)
    net.backward(tape, gout);
    opt.step();
    tape.release();
    await synchronize(device);
    for (const u of [out, diff, gout]) u.dispose();
  };
  const { times, peak, cpuMs } = await timeSteps(step, { device, steps, warmup });
  for (const u of [x, negEps, t]) u.dispose();
  net.dispose();
  const ms = median(times);
  const flops = unetCost(preset, batch).training;
  return {
    preset,
    batch,
    precision: net.precision,
    median_ms: ms,
    times_ms: times,
    cpu_ms_per_step: cpuMs,
    img_per_s: (1000 * batch) / ms,
    tflops: flops / ms / 1e9,
    gflop_per_step: flops / 1e9,
    peak_bytes: peak,
  };
}

// warmupSteps: DDIM steps of the warm-up run (default: as many as the timed run). A short warm-up
// (2 steps at the same batch allocates every buffer) halves a CPU benchmark's cost at small32.
export async function timeSampling({ device, preset, batch, steps = 50, warmupSteps = steps }) {
  const net = new UNet(preset, { device, seed: 0 });
  const schedule = new NoiseSchedule({ kind: 'linear' });
  const { inChannels, resolution: r } = net.config;
  const run = (n) =>
    sample(unetDenoiser(net), {
      schedule,
      prediction: 'eps',
      shape: [batch, inChannels, r, r],
      device,
      method: 'ddim',
      steps: n,
      generator: new Generator(5),
    });
  (await run(warmupSteps)).dispose(); // warm-up
  await synchronize(device);
  resetPeakMemory(device);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const x = await run(steps);
  await synchronize(device);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  x.dispose();
  const peak = memoryStats(device).peak;
  net.dispose();
  // cpu_ms: CPU time of all the process's threads during the timed run (on the CPU device, the work itself).
  return { preset, batch, steps, warmupSteps, ms, cpu_ms: (c.user + c.system) / 1000, img_per_s: (1000 * batch) / ms, peak_bytes: peak };
}

/**
 * One GSURE step (docs/gsure.md) at the same preset and batch: a batch of masked measurements (4x4
 * patches dropped with p = 0.4, sigma0 = 0.02) moved into the SVD domain, noised, the network on x_t
 * and on the probe shift(s), the terms kernel, two (or three) backward passes, AdamW. The batch
 * preparation is timed too: it is part of every step.
 */
export async function timeGsureStep({ device, preset, batch, steps = 30, warmup = 3, probes = 1, difference = 'forward' }) {
  const { corruptDataset, gsureBatch, gsureSchedule, gsureStep, svdStatistics } = await import('../../dist/index.js');
  const net = new UNet(preset, { device, seed: 0 });
  const opt = new AdamW(net, { lr: 1e-4 });
  const { inChannels: c, resolution: r } = net.config;
  const count = Math.max(batch, 256);
  const images = await randn([count, c, r, r], { generator: new Generator(2) }).toArray();
  const set = await corruptDataset(images, [count, c, r, r], {
    corruption: { kind: 'mask', patch: 4, p: 0.4 },
    sigma0: 0.02,
    seed: 3,
    device: 'cpu',
  });
  const stats = await svdStatistics(set);
  const schedule = gsureSchedule(stats.vMax);
  let s = 0;
  const step = async () => {
    net.zeroGrad();
    const rows = Array.from({ length: batch }, (_, i) => (s * batch + i) % count);
    const { batch: b, dispose } = await gsureBatch(set, rows, stats, device);
    await gsureStep(net, b, { schedule, seed: 1, step: s++, probes, difference, prediction: 'x0' });
    dispose();
    opt.step();
    await synchronize(device);
  };
  const { times, peak, cpuMs } = await timeSteps(step, { device, steps, warmup });
  net.dispose();
  const ms = median(times);
  return {
    preset,
    batch,
    probes,
    difference,
    median_ms: ms,
    times_ms: times,
    cpu_ms_per_step: cpuMs,
    img_per_s: (1000 * batch) / ms,
    peak_bytes: peak,
  };
}
