#!/usr/bin/env node
// The command line: devices, train, corrupt, sample, demo, eval. Long work shows a progress line (step, loss,
// throughput, ETA); errors say what to do. Everything here is also available as a library.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadUNet } from './checkpoint.ts';
import { loadFashionMnist } from './data/fashion-mnist.ts';
import { gridToPng, writePng } from './data/png.ts';
import { readNpy, writeNpy } from './data/npy.ts';
import { lossCurveSvg } from './data/plot.ts';
import { buildInfo, cudaStatus, defaultDevice, devices } from './device.ts';
import { Generator } from './random.ts';
import { sample, unetDenoiser } from './sample.ts';
import { NoiseSchedule, type Prediction } from './schedule.ts';
import { train } from './train.ts';
import { presets, UNet, type UNetConfig } from './unet.ts';
import { EVAL_HELP, evalCommand } from './metrics/eval-command.ts';
import { corruptDataset, loadMeasurements, parseCorruption, saveMeasurements, type MeasurementSet } from './corruption/dataset.ts';
import { gsureSchedule, svdStatistics, trainGsure } from './gsure/train.ts';
import { BOOTSTRAP_HELP, bootstrapSampleCommand, bootstrapTrainCommand, wantsBootstrap } from './bootstrap/cli.ts';
import { DIFFEM_HELP, diffemCommand } from './diffem/cli.ts';
import { RESTORE_HELP, restoreCommand } from './restore/cli.ts';
import { MIXTURE_HELP, mixtureCommand, SCORE_ERROR_HELP, scoreErrorCommand } from './score-error/cli.ts';
import { duration, interruptible, number, progressPrinter } from './cli-common.ts';
import { TRANSFER_HELP } from './transfer/help.ts';

const HELP: Record<string, string> = {
  main: `kintsugi — diffusion models trained from broken data, on CUDA or the CPU

usage: kintsugi <command> [options]      (kintsugi <command> --help for each)

commands:
  demo      train on the Fashion-MNIST subset shipped with the package and write samples and a loss curve
  train     train a UNet on clean images, or on corrupted measurements only (--method gsure)
  corrupt   corrupt a clean data set reproducibly (masks, block averaging, k-space lines) into a measurement file
  sample    draw images from a checkpoint into a PNG grid
  devices   the build, the CUDA status and every device
  eval      FD-FMNIST, precision/recall and SWD of samples against reference images
  diffem    learn from masked, noisy images only: EM with a conditional diffusion model (DiffEM)
  mixture   a Gaussian mixture with an exact score, and training samples from it
  score-error  audit a checkpoint's score against a mixture's exact score: the (1-delta)-quantile error
  restore   restore measurements with a trained prior: posterior samples, mean and uncertainty (DDRM, DPS, PiGDM, MMPS)
  transfer  pretrain a shared condition encoder on source tasks, fine-tune a new head on few target pairs

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
  --method M        supervised (default: clean images, the oracle) | gsure (corrupted measurements only:
                    GSURE-Diffusion, docs/gsure.md) | naive (supervised on the corrupted images as if clean)
                    | bootstrap (few full images plus low-res copies and crops: kintsugi help bootstrap)
  --data SRC        subset (default: the shipped 2,000 images) | debian (/usr/share/datasets/fashion-mnist) | DIR with the IDX files
                    | FILE.npy (supervised: float [N, C, H, W], e.g. from \`kintsugi mixture\`)
  --corruption C    gsure/naive: corrupt --data on the fly, e.g. mask:patch=4,p=0.4 | mask:p=0.3 |
                    blockaverage:k=2 | fourier:center=8,random=8 (seeded by --corrupt-seed, default 1)
  --sigma0 X        measurement noise with --corruption (default 0.02)
  --measurements F  gsure/naive: a measurement file (from \`kintsugi corrupt\` or your own data) instead of --data
  --probes K        gsure: Hutchinson probes per sample (default 1)
  --variant V       gsure: unbiased (default) | official (the released code's coefficient, for comparison)
  --preset P        tiny16 | fmnist32 | cifar32 | small32 (default: fmnist32 on a GPU, small32 on the CPU)
  --steps N         training steps (default 2000)
  --batch B         batch size (default 128 on a GPU, 16 on the CPU)
  --lr X            peak learning rate (default 2e-4 on a GPU, 1e-3 for the short CPU runs), with warm-up
  --prediction T    eps | x0 | v (default eps; gsure always x0)
  --seed S          seed of every random choice (default 0)
  --device D        cpu | cuda | cuda:N (default: see KINTSUGI_DEVICE)
  --out FILE        checkpoint path (default checkpoint.safetensors), saved atomically every --every steps
  --every N         checkpoint interval (default 500)
  --resume FILE     continue a run from its checkpoint

examples:
  kintsugi train --steps 20000 --out fmnist.safetensors
  kintsugi train --method gsure --corruption mask:patch=4,p=0.4 --sigma0 0.02 --steps 20000 --out gsure.safetensors
  kintsugi train --method naive --corruption mask:patch=4,p=0.4 --sigma0 0.02 --out naive.safetensors
  kintsugi train --method gsure --measurements my-scans.safetensors --out gsure.safetensors
  kintsugi train --resume fmnist.safetensors --steps 40000 --out fmnist.safetensors`,
  corrupt: `usage: kintsugi corrupt --corruption C [options]

Corrupts a clean data set reproducibly and writes a measurement file (docs/corruption.md): the
measurements, each sample's mask or k-space lines, sigma0 and the seed.

options:
  --corruption C    mask:patch=4,p=0.4 | mask:p=0.3 | blockaverage:k=2 | fourier:center=8,random=8
  --sigma0 X        measurement noise (default 0.02)
  --data SRC        subset (default) | debian | DIR with the IDX files
  --seed S          seed of the masks and the noise (default 1)
  --out FILE        measurement file (default measurements.safetensors)

example:
  kintsugi corrupt --data debian --corruption mask:patch=4,p=0.4 --sigma0 0.02 --out fmnist-p04.safetensors`,
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

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

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


/** The measurement set of --measurements, or --data corrupted by --corruption (seeded). */
async function measurementSet(values: Record<string, string | boolean | undefined>, method: string): Promise<MeasurementSet> {
  const str = (k: string) => values[k] as string | undefined;
  if (str('measurements')) {
    if (str('corruption')) throw new Error('--measurements and --corruption exclude each other: the file is already corrupted');
    return loadMeasurements(str('measurements')!);
  }
  if (!str('corruption'))
    throw new Error(
      `--method ${method} trains on corrupted measurements: give --corruption SPEC (e.g. mask:patch=4,p=0.4) to corrupt --data, ` +
        'or --measurements FILE (from `kintsugi corrupt`, or your own data: docs/corruption.md)',
    );
  const data = await loadFashionMnist({ source: str('data') ?? 'subset' });
  const sigma0 = number(str('sigma0'), 0.02, '--sigma0');
  const seed = number(str('corrupt-seed') ?? str('seed-corrupt'), 1, '--corrupt-seed');
  console.log(`corrupting ${data.shape[0]} images from ${data.file}: ${str('corruption')}, sigma0 ${sigma0}, seed ${seed}`);
  return corruptDataset(data.images, data.shape, { corruption: parseCorruption(str('corruption')!), sigma0, seed, device: 'cpu' });
}

/** Clean training images: Fashion-MNIST (subset, debian, a folder of IDX files) or a float .npy [N, C, H, W]. */
async function trainingImages(spec: string): Promise<{ images: Float32Array; shape: [number, number, number, number]; file: string }> {
  if (!spec.toLowerCase().endsWith('.npy')) return loadFashionMnist({ source: spec });
  const a = await readNpy(spec);
  if (a.shape.length !== 4 || a.dtype === 'uint8')
    throw new Error(`--data ${spec}: expected a float32 or float64 array of shape [N, C, H, W], got ${a.dtype} [${a.shape.join(', ')}]`);
  const images = Float32Array.from(a.data);
  const bad = images.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`--data ${spec}: value ${bad} is ${images[bad]} (training needs finite values)`);
  return { images, shape: a.shape as [number, number, number, number], file: spec };
}

/** H† y of every sample: what naive training takes for clean images. */
async function pseudoInverseImages(set: MeasurementSet): Promise<Float32Array> {
  const per = set.signalShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(set.count * per);
  for (let start = 0; start < set.count; start += 512) {
    const rows = Array.from({ length: Math.min(512, set.count - start) }, (_, k) => start + k);
    const { y, op } = set.batch(rows, { device: 'cpu' });
    const x = op.pinv(y);
    out.set(await x.toArray(), start * per);
    for (const u of [x, y, op]) u.dispose();
  }
  return out;
}

async function trainCommand(argv: string[], demo = false): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' }, preset: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
      prediction: { type: 'string' }, seed: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' }, every: { type: 'string' },
      resume: { type: 'string' }, help: { type: 'boolean' },
      ...(demo ? {} : {
        method: { type: 'string' }, corruption: { type: 'string' }, sigma0: { type: 'string' }, measurements: { type: 'string' },
        'corrupt-seed': { type: 'string' }, probes: { type: 'string' }, variant: { type: 'string' },
      } as const),
    },
  });
  if (values.help) return console.log(HELP[demo ? 'demo' : 'train']);
  const v = values as Record<string, string | boolean | undefined>;
  const method = (v.method as string | undefined) ?? 'supervised';
  if (!['supervised', 'gsure', 'naive'].includes(method)) throw new Error(`--method: expected supervised, gsure or naive, got "${method}"`);
  if (method === 'supervised' && (v.corruption || v.measurements))
    throw new Error('--corruption and --measurements need --method gsure (learn the clean distribution from them) or --method naive');
  const device = values.device ?? defaultDevice();
  const gpu = device.startsWith('cuda');
  if (!gpu) console.log(`running on the CPU (${devices()[0]!.multiprocessors} threads)${cudaStatus().deviceCount === 0 ? `: ${cudaStatus().reason}` : ''}. A GPU is 100x faster; the CPU suits small models and short runs.`);
  let config = presetConfig(values.preset ?? (gpu ? 'fmnist32' : 'small32'));
  const steps = number(values.steps, demo && !gpu ? 400 : 2000, '--steps');
  const batchSize = number(values.batch, gpu ? 128 : 16, '--batch');
  if (method === 'gsure' && values.prediction && values.prediction !== 'x0')
    throw new Error(`--prediction: GSURE trains an x0-predicting network, got "${values.prediction}" (leave --prediction out)`);
  const prediction = (values.prediction ?? (method === 'gsure' ? 'x0' : 'eps')) as Prediction;
  if (!['eps', 'x0', 'v'].includes(prediction)) throw new Error(`--prediction: expected eps, x0 or v, got "${prediction}"`);
  const outDir = demo ? (values.out ?? 'kintsugi-demo') : undefined;
  if (outDir) mkdirSync(outDir, { recursive: true });
  const checkpointPath = outDir ? join(outDir, 'checkpoint.safetensors') : (values.out ?? 'checkpoint.safetensors');
  const set = method === 'supervised' ? undefined : await measurementSet(v, method);
  const data = set ? undefined : await trainingImages(values.data ?? 'subset');
  const [C, H, W] = set ? (set.signalShape as number[]) : data!.shape.slice(1);
  if (H !== config.resolution || W !== config.resolution) throw new Error(`the data are ${H}x${W}, the model expects ${config.resolution}x${config.resolution}: choose another --preset`);
  if (C !== config.inChannels) config = { ...config, inChannels: C, outChannels: C }; // e.g. k-space as two channels
  const source = set ? `${set.count} ${set.kind} measurements (sigma0 ${set.sigma0})` : `${data!.shape[0]} images from ${data!.file}`;
  console.log(`${method}: ${source}; model: ${JSON.stringify(config)} on ${device}; ${steps} steps of batch ${batchSize}`);
  const model = new UNet(config, { device, seed: BigInt(number(values.seed, 0, '--seed')) });
  const controller = interruptible();
  const schedule = set ? gsureSchedule((await svdStatistics(set)).vMax) : new NoiseSchedule({ kind: 'linear' });
  const started = performance.now();
  const common = {
    model, steps, batchSize, schedule,
    optimizer: { lr: number(values.lr, gpu ? 2e-4 : 1e-3, '--lr'), warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
    emaDecay: steps < 2000 ? 0.99 : 0.999,
    seed: number(values.seed, 0, '--seed'),
    signal: controller.signal,
    onProgress: progressPrinter(method === 'supervised' ? 'train' : method),
    progressEvery: Math.max(1, Math.floor(steps / 100)),
    checkpoint: { path: checkpointPath, every: number(values.every, 500, '--every') },
    resume: values.resume,
  };
  const variant = (v.variant as string | undefined) ?? 'unbiased';
  if (variant !== 'unbiased' && variant !== 'official') throw new Error(`--variant: expected unbiased or official, got "${variant}"`);
  const result =
    method === 'gsure'
      ? await trainGsure({ ...common, measurements: set!, gsure: { probes: number(v.probes as string | undefined, 1, '--probes'), variant } })
      : await train({ ...common, prediction, data: set ? { images: await pseudoInverseImages(set), shape: [set.count, C!, H!, W!] } : data! });
  console.log(`${result.aborted ? 'stopped' : 'finished'} at step ${result.step} in ${duration((performance.now() - started) / 1000)}; checkpoint: ${checkpointPath}`);
  if (!outDir) return;
  writeFileSync(join(outDir, 'loss.svg'), lossCurveSvg(result.losses, { title: `training loss (${prediction}-prediction, batch ${batchSize}, ${device})` }));
  const n = 64;
  const x = await sample(unetDenoiser(model, result.ema?.params), { schedule, prediction, shape: [n, 1, config.resolution, config.resolution], device, method: 'ddim', steps: 50, clip: [-1, 1], generator: new Generator(1) });
  await writePng(join(outDir, 'samples.png'), gridToPng(await x.toArray(), [n, 1, config.resolution, config.resolution], { columns: 8 }));
  console.log(`wrote ${join(outDir, 'samples.png')} (64 samples, DDIM 50 steps, EMA weights) and ${join(outDir, 'loss.svg')}`);
}

async function corruptCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { corruption: { type: 'string' }, sigma0: { type: 'string' }, data: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) return console.log(HELP.corrupt);
  if (!values.corruption) throw new Error('corrupt: --corruption SPEC is required, e.g. mask:patch=4,p=0.4 (kintsugi corrupt --help)');
  const data = await loadFashionMnist({ source: values.data ?? 'subset' });
  const sigma0 = number(values.sigma0, 0.02, '--sigma0');
  const seed = number(values.seed, 1, '--seed');
  const set = await corruptDataset(data.images, data.shape, { corruption: parseCorruption(values.corruption), sigma0, seed, device: 'cpu' });
  const out = values.out ?? 'measurements.safetensors';
  await saveMeasurements(out, set);
  console.log(`wrote ${out}: ${set.count} ${set.kind} measurements of ${JSON.stringify(set.measurementShape)} from ${data.file} (${values.corruption}, sigma0 ${sigma0}, seed ${seed})`);
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
  const values32 = await x.toArray();
  if (c === 2) {
    // Complex images (k-space data as two channels): the PNG shows the magnitude, scaled so the
    // grid's largest maps to white (as MRI viewers do); the samples themselves go to a .npy.
    const mag = new Float32Array(n * r * r);
    let max = 1e-12;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < r * r; i++) {
        const [re, im] = [values32[(2 * b) * r * r + i]!, values32[(2 * b + 1) * r * r + i]!];
        mag[b * r * r + i] = Math.hypot(re, im);
        max = Math.max(max, mag[b * r * r + i]!);
      }
    for (let i = 0; i < mag.length; i++) mag[i] = (2 * mag[i]!) / max - 1;
    await writePng(out, gridToPng(mag, [n, 1, r, r]));
    const npy = out.replace(/\.png$/i, '') + '.npy';
    await writeNpy(npy, { data: values32, shape: [n, c, r, r] });
    console.log(`wrote ${out} (magnitudes of ${n} complex samples, ${method}) and ${npy} (the samples, real and imaginary channels)`);
    return;
  }
  await writePng(out, gridToPng(values32, [n, c, r, r]));
  console.log(`wrote ${out} (${n} samples, ${method})`);
}

HELP.eval = EVAL_HELP;
HELP.mixture = MIXTURE_HELP;
HELP.diffem = DIFFEM_HELP;
HELP['score-error'] = SCORE_ERROR_HELP;
HELP.restore = RESTORE_HELP;
HELP.transfer = TRANSFER_HELP;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'eval':
      return evalCommand(rest);
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
    case 'corrupt':
      return corruptCommand(rest);
    case 'diffem':
      return diffemCommand(rest);
    case 'mixture':
      return mixtureCommand(rest);
    case 'score-error':
      return scoreErrorCommand(rest);
    case 'restore':
      return restoreCommand(rest);
    case 'transfer':
      return (await import('./transfer/cli.ts')).transferCommand(rest);
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
