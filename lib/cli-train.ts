// `kintsugi train --method M`: one registry of training methods. Each method brings its own options,
// its help and its trainer; the options every method shares (data, model, steps, batch, device, ...)
// are declared once here. Adding a method is one entry in TRAIN_METHODS.
import { DEFAULT_AMBIENT_DELTA, trainAmbient } from './ambient/train.ts';
import { bootstrapMethod } from './bootstrap/cli.ts';
import { readCheckpoint } from './checkpoint.ts';
import {
  checkWritableFile,
  defineCommand,
  duration,
  integer,
  interruptible,
  number,
  type Options,
  progressPrinter,
  str,
  UsageError,
  type Values,
} from './cli-common.ts';
import { corruptDataset, loadMeasurements, parseCorruption, type MeasurementSet } from './corruption/dataset.ts';
import { loadFashionMnist } from './data/fashion-mnist.ts';
import { readNpy } from './data/npy.ts';
import { cudaStatus, defaultDevice, devices } from './device.ts';
import { checkObserved, gsureSchedule, svdStatistics, trainGsure } from './gsure/train.ts';
import { NoiseSchedule, type Prediction } from './schedule.ts';
import { train } from './train.ts';
import { presets, UNet, type UNetConfig, type UNetPreset } from './unet.ts';

/** One training method of `kintsugi train`. */
export interface TrainMethod {
  /** One line for `kintsugi train --help`. */
  summary: string;
  /** The method's own options (besides TRAIN_OPTIONS) and their help lines. */
  options: Options;
  help: string;
  examples: string[];
  run(values: Values): Promise<void>;
}

/** The options every method takes. */
export const TRAIN_OPTIONS: Options = {
  method: { type: 'string' },
  data: { type: 'string' },
  preset: { type: 'string' },
  steps: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  device: { type: 'string' },
  out: { type: 'string' },
};

const COMMON_HELP = `  --data SRC        subset (default: the shipped 2,000 images) | debian (/usr/share/datasets/fashion-mnist) | DIR with the IDX files
  --preset P        ${Object.keys(presets).join(' | ')} (default: fmnist32 on a GPU, small32 on the CPU)
  --steps N         training steps (default 2000)
  --batch B         batch size (default 128 on a GPU, 16 on the CPU)
  --lr X            peak learning rate (default 2e-4 on a GPU, 1e-3 for the short CPU runs), with warm-up
  --seed S          seed of every random choice (default 0)
  --device D        cpu | cuda | cuda:N (default: see KINTSUGI_DEVICE)`;

const DENOISER_HELP = `  --out FILE        checkpoint path (default checkpoint.safetensors), saved atomically every --every steps
  --every N         checkpoint interval (default 500)
  --resume FILE     continue a run from its checkpoint (its preset is used unless --preset is given)`;

const CORRUPTION_HELP = `  --corruption C    corrupt --data on the fly, e.g. mask:patch=4,p=0.4 | mask:p=0.3 | blockaverage:k=2 |
                    fourier:center=8,random=8 (seeded by --corrupt-seed, default 1)
  --sigma0 X        measurement noise with --corruption (default 0.02)
  --measurements F  a measurement file (from \`kintsugi corrupt\` or your own data) instead of --data`;

const DENOISER_OPTIONS: Options = { every: { type: 'string' }, resume: { type: 'string' } };
const CORRUPTION_OPTIONS: Options = {
  corruption: { type: 'string' },
  sigma0: { type: 'string' },
  measurements: { type: 'string' },
  'corrupt-seed': { type: 'string' },
};

/** The preset whose architecture `config` is, if any (for messages). */
function presetOf(config: UNetConfig): string | undefined {
  const keys = ['channels', 'mult', 'resBlocks', 'attnResolutions', 'resolution'] as const;
  return Object.entries(presets).find(([, p]) => keys.every((k) => JSON.stringify(p[k]) === JSON.stringify(config[k])))?.[0];
}

export function presetConfig(name: string): UNetConfig {
  const p = presets[name as UNetPreset];
  if (!p) throw new UsageError(`--preset: expected ${Object.keys(presets).join(', ')}, got "${name}"`);
  return p;
}

/** The measurement set of --measurements, or --data corrupted by --corruption (seeded). */
async function measurementSet(values: Values, method: string): Promise<MeasurementSet> {
  if (str(values, 'measurements')) {
    if (str(values, 'corruption'))
      throw new UsageError('--measurements and --corruption exclude each other: the file is already corrupted');
    return loadMeasurements(str(values, 'measurements')!);
  }
  if (!str(values, 'corruption'))
    throw new UsageError(
      `--method ${method} trains on corrupted measurements: give --corruption SPEC (e.g. mask:patch=4,p=0.4) to corrupt --data, ` +
        'or --measurements FILE (from `kintsugi corrupt`, or your own data: docs/corruption.md)',
    );
  const spec = parseCorruptionFlag(str(values, 'corruption')!, '--corruption');
  const data = await loadData(str(values, 'data') ?? 'subset');
  const sigma0 = number(str(values, 'sigma0'), 0.02, '--sigma0', { min: 0 });
  const seed = integer(str(values, 'corrupt-seed'), 1, '--corrupt-seed', 0);
  console.log(`corrupting ${data.shape[0]} images from ${data.file}: ${str(values, 'corruption')}, sigma0 ${sigma0}, seed ${seed}`);
  return corruptDataset(data.images, data.shape, { corruption: spec, sigma0, seed, device: 'cpu' });
}

export function parseCorruptionFlag(spec: string, flag: string) {
  try {
    return parseCorruption(spec);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message.replace(/^corruption /, '')}`);
  }
}

/** Fashion-MNIST from --data, its errors naming the flag. */
export async function loadData(source: string, limit?: number) {
  try {
    return await loadFashionMnist({ source, limit });
  } catch (e) {
    throw new UsageError(
      `--data ${source}: ${(e as Error).message.replace(/ as options\.source/, ' as --data').replace(/^options\.source: /, '')}`,
    );
  }
}

/** Clean training images: Fashion-MNIST (subset, debian, a folder of IDX files) or a float .npy [N, C, H, W]. */
async function trainingImages(spec: string): Promise<{ images: Float32Array; shape: [number, number, number, number]; file: string }> {
  if (!spec.toLowerCase().endsWith('.npy')) return loadData(spec);
  const a = await readNpy(spec);
  if (a.shape.length !== 4 || a.dtype === 'uint8')
    throw new UsageError(
      `--data ${spec}: expected a float32 or float64 array of shape [N, C, H, W], got ${a.dtype} [${a.shape.join(', ')}]`,
    );
  const images = Float32Array.from(a.data);
  const bad = images.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new UsageError(`--data ${spec}: value ${bad} is ${images[bad]} (training needs finite values)`);
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

/** Prints where training runs, and why on the CPU. */
export function announceDevice(device: string): void {
  if (!device.startsWith('cuda'))
    console.log(
      `running on the CPU (${devices()[0]!.multiprocessors} threads)${cudaStatus().deviceCount === 0 ? `: ${cudaStatus().reason}` : ''}. A GPU is 100x faster; the CPU suits small models and short runs.`,
    );
}

/** Supervised, naive, GSURE and Ambient Diffusion: one UNet trained as a denoiser, checkpointed into --out. */
async function trainDenoiser(values: Values, method: 'supervised' | 'naive' | 'gsure' | 'ambient'): Promise<void> {
  const s = (k: string) => str(values, k);
  const device = s('device') ?? defaultDevice();
  const gpu = device.startsWith('cuda');
  const steps = integer(s('steps'), 2000, '--steps');
  const batchSize = integer(s('batch'), gpu ? 128 : 16, '--batch');
  const every = integer(s('every'), 500, '--every');
  const lr = number(s('lr'), gpu ? 2e-4 : 1e-3, '--lr', { above: 0 });
  const seed = integer(s('seed'), 0, '--seed', 0);
  if (method === 'gsure' && s('prediction') && s('prediction') !== 'x0')
    throw new UsageError(`--prediction: GSURE trains an x0-predicting network, got "${s('prediction')}" (leave --prediction out)`);
  const delta = method === 'ambient' ? number(s('delta'), DEFAULT_AMBIENT_DELTA, '--delta', { above: 0, max: 0.999 }) : 0;
  const furtherPatch = method === 'ambient' ? integer(s('further-patch'), 1, '--further-patch') : 1;
  const prediction = (s('prediction') ?? (method === 'gsure' || method === 'ambient' ? 'x0' : 'eps')) as Prediction;
  if (!['eps', 'x0', 'v'].includes(prediction)) throw new UsageError(`--prediction: expected eps, x0 or v, got "${prediction}"`);
  const variant = s('variant') ?? 'unbiased';
  if (variant !== 'unbiased' && variant !== 'official') throw new UsageError(`--variant: expected unbiased or official, got "${variant}"`);
  const probes = integer(s('probes'), 1, '--probes');
  const checkpointPath = s('out') ?? 'checkpoint.safetensors';
  checkWritableFile(checkpointPath, '--out');

  // The architecture: --preset, else the resumed checkpoint's, else the device's default.
  const resumed = s('resume') ? await readCheckpoint(s('resume')!) : undefined;
  const presetName = s('preset') ?? (resumed ? undefined : gpu ? 'fmnist32' : 'small32');
  let config: UNetConfig = presetName ? presetConfig(presetName) : resumed!.config;
  if (resumed && presetName) {
    const [a, b] = [presetOf(resumed.config), presetName];
    if (a !== b && !(a === undefined && presetOf(config) === undefined))
      throw new UsageError(
        `--resume ${s('resume')} holds a ${a ? `${a} model` : `model of ${JSON.stringify(resumed.config)}`}, but --preset ${b}${s('preset') ? '' : ' (the default)'} was asked for: ${a ? `pass --preset ${a}, or ` : ''}leave --preset out to take the checkpoint's`,
      );
  }
  announceDevice(device);
  const set = method === 'supervised' ? undefined : await measurementSet(values, method);
  const data = set ? undefined : await trainingImages(s('data') ?? 'subset');
  const [C, H, W] = set ? (set.signalShape as number[]) : data!.shape.slice(1);
  if (H !== config.resolution || W !== config.resolution) {
    const fitting = Object.entries(presets)
      .filter(([, p]) => p.resolution === H)
      .map(([k]) => k);
    throw new UsageError(
      `the data are ${H}x${W}, but ${presetName ? `--preset ${presetName}` : `the model of --resume ${s('resume')}`} makes ${config.resolution}x${config.resolution} models` +
        (fitting.length ? `: choose --preset ${fitting.join(' or ')}` : `: no preset is ${H}x${W}`),
    );
  }
  if (method === 'ambient') {
    if (set!.kind !== 'mask')
      throw new UsageError(
        `--method ambient learns from masked images (--corruption mask:...), got ${set!.kind} measurements: use --method gsure for those`,
      );
    if (H! % furtherPatch) throw new UsageError(`--further-patch: expected a divisor of the image size ${H}, got ${furtherPatch}`);
    config = { ...config, inChannels: 2 * C!, outChannels: C! }; // the masked image and its mask in, the image out
  } else if (C !== config.inChannels) config = { ...config, inChannels: C, outChannels: C }; // e.g. k-space as two channels
  const source = set ? `${set.count} ${set.kind} measurements (sigma0 ${set.sigma0})` : `${data!.shape[0]} images from ${data!.file}`;
  const model = new UNet(config, { device, seed: BigInt(seed) });
  const controller = interruptible();
  console.log(
    `${method}: ${source}; model: ${presetName ?? presetOf(config) ?? 'custom'} ${JSON.stringify(config)} on ${device}; ${steps} steps of batch ${batchSize}`,
  );
  const stats = set ? await svdStatistics(set) : undefined;
  if (method === 'gsure') {
    try {
      checkObserved(set!, stats!, { observedSubspaceOnly: values['observed-subspace-only'] === true, optIn: '--observed-subspace-only' });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const schedule = stats && method !== 'ambient' ? gsureSchedule(stats.vMax) : new NoiseSchedule({ kind: 'linear' });
  const started = performance.now();
  const common = {
    model,
    steps,
    batchSize,
    schedule,
    seed,
    optimizer: { lr, warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
    emaDecay: steps < 2000 ? 0.99 : 0.999,
    signal: controller.signal,
    onProgress: progressPrinter(method === 'supervised' ? 'train' : method),
    progressEvery: Math.max(1, Math.floor(steps / 100)),
    checkpoint: { path: checkpointPath, every },
    resume: s('resume'),
  };
  const result =
    method === 'gsure'
      ? await trainGsure({
          ...common,
          measurements: set!,
          gsure: { probes, variant },
          observedSubspaceOnly: values['observed-subspace-only'] === true,
        })
      : method === 'ambient'
        ? await trainAmbient({ ...common, measurements: set!, ambient: { delta, patch: furtherPatch } })
        : await train({
            ...common,
            prediction,
            data: set ? { images: await pseudoInverseImages(set), shape: [set.count, C!, H!, W!] } : data!,
          });
  console.log(
    `${result.aborted ? 'stopped' : 'finished'} at step ${result.step} in ${duration((performance.now() - started) / 1000)}; checkpoint: ${checkpointPath}`,
  );
  model.dispose();
}

const supervised: TrainMethod = {
  summary: 'clean images: the oracle every corrupted-data method is compared with',
  options: { ...DENOISER_OPTIONS, prediction: { type: 'string' } },
  help: `  --prediction T    eps (default) | x0 | v\n${DENOISER_HELP}\n  --data also takes FILE.npy: float [N, C, H, W], e.g. from \`kintsugi mixture\``,
  examples: [
    'kintsugi train --steps 20000 --out fmnist.safetensors',
    'kintsugi train --resume fmnist.safetensors --steps 40000 --out fmnist.safetensors',
  ],
  run: (v) => trainDenoiser(v, 'supervised'),
};

const naive: TrainMethod = {
  summary: 'corrupted images taken as if clean (H† y): the baseline that shows the corruption',
  options: { ...DENOISER_OPTIONS, ...CORRUPTION_OPTIONS, prediction: { type: 'string' } },
  help: `${CORRUPTION_HELP}\n  --prediction T    eps (default) | x0 | v\n${DENOISER_HELP}`,
  examples: ['kintsugi train --method naive --corruption mask:patch=4,p=0.4 --sigma0 0.02 --out naive.safetensors'],
  run: (v) => trainDenoiser(v, 'naive'),
};

const gsure: TrainMethod = {
  summary: 'corrupted measurements only: GSURE-Diffusion (docs/gsure.md), an x0-predicting network',
  options: {
    ...DENOISER_OPTIONS,
    ...CORRUPTION_OPTIONS,
    probes: { type: 'string' },
    variant: { type: 'string' },
    prediction: { type: 'string' },
    'observed-subspace-only': { type: 'boolean' },
  },
  help:
    `${CORRUPTION_HELP}\n  --probes K        Hutchinson probes per sample (default 1)\n  --variant V       unbiased (default) | official (the released code's coefficient, for comparison)\n` +
    `  --observed-subspace-only  train although some coordinates are never observed (e.g. blockaverage): a model of\n` +
    `                    the observed subspace only (refused without it; docs/gsure.md)\n${DENOISER_HELP}`,
  examples: [
    'kintsugi train --method gsure --corruption mask:patch=4,p=0.4 --sigma0 0.02 --steps 20000 --out gsure.safetensors',
    'kintsugi train --method gsure --measurements my-scans.safetensors --out gsure.safetensors',
  ],
  run: (v) => trainDenoiser(v, 'gsure'),
};

const ambient: TrainMethod = {
  summary: 'masked images only: Ambient Diffusion (docs/ambient.md), further-corrupted masks, an x0-predicting network',
  options: { ...DENOISER_OPTIONS, ...CORRUPTION_OPTIONS, delta: { type: 'string' }, 'further-patch': { type: 'string' } },
  help:
    `${CORRUPTION_HELP}\n                    (masks only: mask:patch=P,p=X or a mask measurement file)\n` +
    `  --delta X         further corruption: each step drops each kept pixel with probability X (default ${DEFAULT_AMBIENT_DELTA})\n` +
    `  --further-patch P drop P x P squares together in the further corruption (default 1: pixels)\n${DENOISER_HELP}\n` +
    '  the network takes the masked image and its mask (2C input channels); `kintsugi sample` draws the masks itself',
  examples: ['kintsugi train --method ambient --corruption mask:patch=4,p=0.4 --delta 0.1 --steps 20000 --out ambient.safetensors'],
  run: (v) => trainDenoiser(v, 'ambient'),
};

/** The methods of `kintsugi train --method`, in the order --help lists them. */
export const TRAIN_METHODS: Record<string, TrainMethod> = { supervised, naive, gsure, ambient, bootstrap: bootstrapMethod };

function methodOf(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--method' || a.startsWith('--method='));
  if (i < 0) return undefined;
  return argv[i]!.includes('=') ? argv[i]!.slice('--method='.length) : argv[i + 1];
}

function trainHelp(name?: string): string {
  const names = Object.keys(TRAIN_METHODS);
  if (name) {
    const m = TRAIN_METHODS[name]!;
    return `usage: kintsugi train --method ${name} [options]\n\n${name}: ${m.summary}\n\noptions:\n${COMMON_HELP}\n${m.help}\n\nexamples:\n${m.examples.map((e) => `  ${e}`).join('\n')}`;
  }
  const width = Math.max(...names.map((n) => n.length));
  return `usage: kintsugi train [--method M] [options]      (kintsugi train --method M --help for M's options)

methods:
${names.map((n) => `  ${n.padEnd(width)}  ${TRAIN_METHODS[n]!.summary}${n === 'supervised' ? ' (default)' : ''}`).join('\n')}

options of every method:
${COMMON_HELP}

options of supervised, naive, gsure and ambient:
${DENOISER_HELP}

examples:
${names.map((n) => `  ${TRAIN_METHODS[n]!.examples[0]}`).join('\n')}`;
}

export const trainCommand = {
  summary: 'train a UNet: on clean images, or on corrupted data only (--method gsure, bootstrap, ...)',
  get help() {
    return trainHelp();
  },
  async run(argv: string[]): Promise<void> {
    const name = methodOf(argv) ?? 'supervised';
    const method = TRAIN_METHODS[name];
    if (!method) throw new UsageError(`--method: expected ${Object.keys(TRAIN_METHODS).join(', ')}, got "${name}"`);
    const options = { ...TRAIN_OPTIONS, ...method.options };
    // Options of another method get a message that says which method takes them.
    const cmd = defineCommand('train', { summary: '', help: trainHelp(methodOf(argv) && name), options, run: (v) => method.run(v) });
    try {
      await cmd.run(argv);
    } catch (e) {
      const unknown = e instanceof UsageError && /unknown option --([\w-]+)/.exec(e.message);
      const owners = unknown
        ? Object.entries(TRAIN_METHODS)
            .filter(([, m]) => unknown[1]! in m.options)
            .map(([n]) => n)
        : [];
      if (owners.length) throw new UsageError(`train: --${unknown && unknown[1]} belongs to --method ${owners.join(' or ')}, not ${name}`);
      throw e;
    }
  },
};
