#!/usr/bin/env node
// The command line: devices, train, sample, demo. Long work shows a progress line (step, loss,
// throughput, ETA); errors say what to do. Everything here is also available as a library.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadUNet } from './checkpoint.ts';
import { loadFashionMnist } from './data/fashion-mnist.ts';
import { gridToPng, writePng } from './data/png.ts';
import { lossCurveSvg } from './data/plot.ts';
import { buildInfo, cudaStatus, defaultDevice, devices } from './device.ts';
import { Generator } from './random.ts';
import { sample, unetDenoiser } from './sample.ts';
import { NoiseSchedule, type Prediction } from './schedule.ts';
import { train, type TrainProgress } from './train.ts';
import { presets, UNet, type UNetConfig } from './unet.ts';
import { BOOTSTRAP_HELP, bootstrapSampleCommand, bootstrapTrainCommand, wantsBootstrap } from './bootstrap/cli.ts';

const HELP: Record<string, string> = {
  main: `kintsugi — diffusion models trained from broken data, on CUDA or the CPU

usage: kintsugi <command> [options]      (kintsugi <command> --help for each)

commands:
  demo      train on the Fashion-MNIST subset shipped with the package and write samples and a loss curve
  train     train a UNet on images (supervised denoising) and write a checkpoint
  sample    draw images from a checkpoint into a PNG grid
  devices   the build, the CUDA status and every device

environment:
  KINTSUGI_DEVICE=cpu|cuda|cuda:N   the default device (else cuda:0 when present, else cpu)`,
  demo: `usage: kintsugi demo [--out DIR] [--steps N] [--device D]

Trains on the 2,000 Fashion-MNIST images shipped with the package, then samples a grid.
On a GPU: the fmnist32 UNet; on the CPU: a small UNet that finishes in a few minutes (blurry garments).
Writes DIR/samples.png, DIR/loss.svg and DIR/checkpoint.safetensors (default DIR: kintsugi-demo).

examples:
  npx kintsugi demo
  npx kintsugi demo --steps 3000 --out run1`,
  train: `usage: kintsugi train [options]

options:
  --data SRC        subset (default: the shipped 2,000 images) | debian (/usr/share/datasets/fashion-mnist) | DIR with the IDX files
  --preset P        tiny16 | fmnist32 | cifar32 | small32 (default: fmnist32 on a GPU, small32 on the CPU)
  --steps N         training steps (default 2000)
  --batch B         batch size (default 128 on a GPU, 16 on the CPU)
  --lr X            peak learning rate (default 2e-4 on a GPU, 1e-3 for the short CPU runs), with warm-up
  --prediction T    eps | x0 | v (default eps)
  --seed S          seed of every random choice (default 0)
  --device D        cpu | cuda | cuda:N (default: see KINTSUGI_DEVICE)
  --out FILE        checkpoint path (default checkpoint.safetensors), saved atomically every --every steps
  --every N         checkpoint interval (default 500)
  --resume FILE     continue a run from its checkpoint
  --method bootstrap  bootstrapping diffusion from low-res copies and crops (kintsugi help bootstrap)

examples:
  kintsugi train --steps 20000 --out fmnist.safetensors
  kintsugi train --resume fmnist.safetensors --steps 40000 --out fmnist.safetensors`,
  sample: `usage: kintsugi sample --checkpoint FILE [options]

options:
  --n N             images (default 64)
  --method M        ddim (default) | ddpm | heun
  --steps N         DDIM/Heun steps (default 50)
  --eta X           DDIM eta (default 0)
  --seed S          seed (default 0)
  --no-ema          use the raw weights instead of the EMA
  --device D        cpu | cuda | cuda:N
  --out FILE        PNG grid (default samples.png)

example:
  kintsugi sample --checkpoint fmnist.safetensors --n 100 --out grid.png`,
  devices: 'usage: kintsugi devices\n\nPrints the addon in use, whether CUDA is available (and why not), and every device.',
};

// A small UNet for 32x32 images that trains in minutes on two CPU cores.
const SMALL32: UNetConfig = { inChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [8], resolution: 32 };

function presetConfig(name: string): UNetConfig {
  if (name === 'small32') return SMALL32;
  const p = presets[name as keyof typeof presets];
  if (!p) throw new Error(`--preset: expected tiny16, fmnist32, cifar32 or small32, got "${name}"`);
  return p;
}

function number(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (!Number.isFinite(v)) throw new Error(`${what}: expected a number, got "${value}"`);
  return v;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const duration = (s: number) => (s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

function devicesCommand(): void {
  const b = buildInfo();
  console.log(`kintsugi addon: ${b.binary}`);
  console.log(`  N-API ${b.napiVersion}, compiler ${b.compiler}, CUDA backend: ${b.cuda ? `yes (${b.cudaArchitectures})` : 'no'}`);
  const s = cudaStatus();
  console.log(s.deviceCount > 0 ? `CUDA: ${s.deviceCount} device(s), driver ${s.driverVersion}` : `CUDA: unavailable: ${s.reason}`);
  for (const d of devices()) {
    const cc = d.computeCapability ? `, compute capability ${d.computeCapability}` : '';
    console.log(`  ${d.device.padEnd(7)} ${d.name} (${gib(d.totalMemory)}, ${d.multiprocessors} ${d.type === 'cpu' ? 'threads' : 'SMs'}${cc})`);
  }
  console.log(`default device: ${defaultDevice()}`);
}

/** A progress line: rewritten in place on a terminal, one line per tenth of the run otherwise. */
function progressPrinter(label: string) {
  let lastTenth = -1;
  return (p: TrainProgress) => {
    const line = `${label} step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s  elapsed ${duration(p.elapsedSeconds)}  ETA ${duration(p.etaSeconds)}`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K${p.step === p.steps ? '\n' : ''}`);
    else if (Math.floor((10 * p.step) / p.steps) !== lastTenth || p.step === p.steps) {
      lastTenth = Math.floor((10 * p.step) / p.steps);
      console.log(line);
    }
  };
}

function interruptible(): AbortController {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    console.log('\ninterrupted: finishing the current step and saving a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return controller;
}

async function trainCommand(argv: string[], demo = false): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' }, preset: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
      prediction: { type: 'string' }, seed: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' }, every: { type: 'string' },
      resume: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) return console.log(HELP[demo ? 'demo' : 'train']);
  const device = values.device ?? defaultDevice();
  const gpu = device.startsWith('cuda');
  if (!gpu) console.log(`running on the CPU (${devices()[0]!.multiprocessors} threads)${cudaStatus().deviceCount === 0 ? `: ${cudaStatus().reason}` : ''}. A GPU is 100x faster; the CPU suits small models and short runs.`);
  const config = presetConfig(values.preset ?? (gpu ? 'fmnist32' : 'small32'));
  const steps = number(values.steps, demo && !gpu ? 400 : 2000, '--steps');
  const batchSize = number(values.batch, gpu ? 128 : 16, '--batch');
  const prediction = (values.prediction ?? 'eps') as Prediction;
  if (!['eps', 'x0', 'v'].includes(prediction)) throw new Error(`--prediction: expected eps, x0 or v, got "${prediction}"`);
  const outDir = demo ? (values.out ?? 'kintsugi-demo') : undefined;
  if (outDir) mkdirSync(outDir, { recursive: true });
  const checkpointPath = outDir ? join(outDir, 'checkpoint.safetensors') : (values.out ?? 'checkpoint.safetensors');
  const data = await loadFashionMnist({ source: values.data ?? 'subset' });
  if (data.shape[2] !== config.resolution) throw new Error(`the data are ${data.shape[2]}x${data.shape[3]}, the model expects ${config.resolution}x${config.resolution}: choose another --preset`);
  console.log(`data: ${data.shape[0]} images from ${data.file}; model: ${JSON.stringify(config)} on ${device}; ${steps} steps of batch ${batchSize}`);
  const model = new UNet(config, { device, seed: BigInt(number(values.seed, 0, '--seed')) });
  const controller = interruptible();
  const schedule = new NoiseSchedule({ kind: 'linear' });
  const started = performance.now();
  const result = await train({
    model, data, steps, batchSize, schedule, prediction,
    optimizer: { lr: number(values.lr, gpu ? 2e-4 : 1e-3, '--lr'), warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
    emaDecay: steps < 2000 ? 0.99 : 0.999,
    seed: number(values.seed, 0, '--seed'),
    signal: controller.signal,
    onProgress: progressPrinter('train'),
    progressEvery: Math.max(1, Math.floor(steps / 100)),
    checkpoint: { path: checkpointPath, every: number(values.every, 500, '--every') },
    resume: values.resume,
  });
  console.log(`${result.aborted ? 'stopped' : 'finished'} at step ${result.step} in ${duration((performance.now() - started) / 1000)}; checkpoint: ${checkpointPath}`);
  if (!outDir) return;
  writeFileSync(join(outDir, 'loss.svg'), lossCurveSvg(result.losses, { title: `training loss (${prediction}-prediction, batch ${batchSize}, ${device})` }));
  const n = 64;
  const x = await sample(unetDenoiser(model, result.ema?.params), { schedule, prediction, shape: [n, 1, config.resolution, config.resolution], device, method: 'ddim', steps: 50, clip: [-1, 1], generator: new Generator(1) });
  await writePng(join(outDir, 'samples.png'), gridToPng(await x.toArray(), [n, 1, config.resolution, config.resolution], { columns: 8 }));
  console.log(`wrote ${join(outDir, 'samples.png')} (64 samples, DDIM 50 steps, EMA weights) and ${join(outDir, 'loss.svg')}`);
}

async function sampleCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' }, n: { type: 'string' }, method: { type: 'string' }, steps: { type: 'string' }, eta: { type: 'string' },
      seed: { type: 'string' }, 'no-ema': { type: 'boolean' }, device: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) return console.log(HELP.sample);
  if (!values.checkpoint) throw new Error('sample: --checkpoint FILE is required (a file written by `kintsugi train`)');
  const method = (values.method ?? 'ddim') as 'ddim' | 'ddpm' | 'heun';
  if (!['ddim', 'ddpm', 'heun'].includes(method)) throw new Error(`--method: expected ddim, ddpm or heun, got "${method}"`);
  const { readCheckpoint } = await import('./checkpoint.ts');
  const ck = await readCheckpoint(values.checkpoint);
  const device = values.device ?? defaultDevice();
  const model = await loadUNet(values.checkpoint, { device, useEma: !values['no-ema'] && ck.ema !== undefined });
  const schedule = new NoiseSchedule((ck.schedule as { kind: 'linear' | 'cosine' } | null) ?? { kind: 'linear' });
  const n = number(values.n, 64, '--n');
  const { resolution: r, outChannels: c } = model.config;
  let done = 0;
  const x = await sample(unetDenoiser(model), {
    schedule, prediction: ck.prediction, shape: [n, c, r, r], device, method, steps: number(values.steps, 50, '--steps'), eta: number(values.eta, 0, '--eta'), clip: [-1, 1],
    generator: new Generator(number(values.seed, 0, '--seed')),
    onStep: (i, total) => {
      if (process.stdout.isTTY && (i === total || i - done >= 5)) process.stdout.write(`\rsample step ${(done = i)}/${total}\x1b[K${i === total ? '\n' : ''}`);
    },
  });
  const out = values.out ?? 'samples.png';
  await writePng(out, gridToPng(await x.toArray(), [n, c, r, r]));
  console.log(`wrote ${out} (${n} samples, ${method})`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'devices':
    case 'info':
      return devicesCommand();
    case 'train':
      if (wantsBootstrap(rest)) return bootstrapTrainCommand(rest, { presetConfig, number, progressPrinter, interruptible });
      return trainCommand(rest);
    case 'demo':
      return trainCommand(rest, true);
    case 'sample':
      if (wantsBootstrap(rest)) return bootstrapSampleCommand(rest, { presetConfig, number, progressPrinter, interruptible });
      return sampleCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      if (rest[0] === 'bootstrap') return console.log(BOOTSTRAP_HELP);
      return console.log(rest[0] && HELP[rest[0]] ? HELP[rest[0]] : HELP.main);
    default:
      console.error(`kintsugi: unknown command "${command}"\n\n${HELP.main}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(`kintsugi: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
