// `kintsugi train --method bootstrap ...` and `kintsugi sample --checkpoint DIR/bootstrap.json`
// (docs/bootstrap.md). lib/cli.ts hands over its shared helpers (presets, numbers, progress, Ctrl-C).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../data/fashion-mnist.ts';
import { gridToPng, writePng } from '../data/png.ts';
import { defaultDevice } from '../device.ts';
import { Generator } from '../random.ts';
import { sample } from '../sample.ts';
import type { TrainProgress } from '../train.ts';
import type { UNetConfig } from '../unet.ts';
import { loadBootstrap, parseViews, trainBootstrap } from './run.ts';
import type { ResidualPenalty } from './train.ts';

export interface CliHelpers {
  presetConfig(name: string): UNetConfig;
  number(value: string | undefined, fallback: number, what: string): number;
  progressPrinter(label: string): (p: TrainProgress) => void;
  interruptible(): AbortController;
}

export const BOOTSTRAP_HELP = `usage: kintsugi train --method bootstrap --views V --full N [options]

Bootstrapping diffusion (docs/bootstrap.md): a denoiser per view trained on views of every image,
then the residual f0 on the first N images only; writes DIR/{lowres,patch,residual}.safetensors,
DIR/bootstrap.json and DIR/samples.png.

options:
  --views V         lowres:R and/or patch:P[/S][+pos][@uniform|triangle|hann], e.g. lowres:4,patch:16
  --full N          full-resolution images for the residual (the first N of the data)
  --lambda X        residual penalty weight (default 0.1)
  --penalty P       l2 (default) | batch-variance
  --data SRC        subset (default) | debian | DIR with the Fashion-MNIST IDX files
  --preset P        tiny16 | fmnist32 | cifar32 | small32: width and depth of every model (default small32)
  --steps N         residual steps (default 2000); --view-steps N for each view model (default: --steps)
  --batch B         batch size (default 16)
  --lr X            learning rate (default 1e-3)
  --seed S          seed of every random choice (default 0)
  --device D        cpu | cuda | cuda:N
  --out DIR         output folder (default bootstrap)
  --n N             samples in DIR/samples.png (default 16; 0: none)

examples:
  kintsugi train --method bootstrap --views lowres:4,patch:16 --full 64 --steps 3000 --out boot64
  kintsugi sample --checkpoint boot64/bootstrap.json --n 64 --out grid.png`;

/** True when argv asks for the bootstrap method (train) or names a bootstrap manifest (sample). */
export function wantsBootstrap(argv: string[]): boolean {
  const at = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  };
  return at('--method') === 'bootstrap' || (at('--checkpoint') ?? '').endsWith('.json');
}

export async function bootstrapTrainCommand(argv: string[], h: CliHelpers): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      method: { type: 'string' }, views: { type: 'string' }, full: { type: 'string' }, lambda: { type: 'string' }, penalty: { type: 'string' },
      data: { type: 'string' }, preset: { type: 'string' }, steps: { type: 'string' }, 'view-steps': { type: 'string' }, batch: { type: 'string' },
      lr: { type: 'string' }, seed: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' }, n: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) return console.log(BOOTSTRAP_HELP);
  if (!values.views) throw new Error('--views is required for --method bootstrap (e.g. --views lowres:4,patch:16)');
  if (!values.full) throw new Error('--full N is required for --method bootstrap (the number of full-resolution images)');
  const penalty = (values.penalty ?? 'l2') as ResidualPenalty;
  if (penalty !== 'l2' && penalty !== 'batch-variance') throw new Error(`--penalty: expected l2 or batch-variance, got "${penalty}"`);
  const device = values.device ?? defaultDevice();
  const outDir = values.out ?? 'bootstrap';
  mkdirSync(outDir, { recursive: true });
  const data = await loadFashionMnist({ source: values.data ?? 'subset' });
  const views = parseViews(values.views);
  const steps = h.number(values.steps, 2000, '--steps');
  const full = h.number(values.full, 0, '--full');
  console.log(`data: ${data.shape[0]} images from ${data.file} (views of all, the first ${full} at full resolution); views ${values.views}; on ${device}`);
  const printers = new Map<string, (p: TrainProgress) => void>();
  const controller = h.interruptible();
  const result = await trainBootstrap({
    data, full, views, config: h.presetConfig(values.preset ?? 'small32'), steps, viewSteps: h.number(values['view-steps'], steps, '--view-steps'),
    batchSize: h.number(values.batch, 16, '--batch'), optimizer: { lr: h.number(values.lr, 1e-3, '--lr'), maxGradNorm: 1 },
    lambda: h.number(values.lambda, 0.1, '--lambda'), penalty, seed: h.number(values.seed, 0, '--seed'), device, outDir, signal: controller.signal,
    onProgress: (stage, p) => {
      if (!printers.has(stage)) printers.set(stage, h.progressPrinter(stage));
      printers.get(stage)!(p);
    },
  });
  console.log(`${result.aborted ? 'stopped' : 'finished'}; manifest: ${result.path}`);
  const n = h.number(values.n, 16, '--n');
  if (n > 0 && !result.aborted) await writeSamples(result.path, { n, device, out: join(outDir, 'samples.png'), method: 'ddim', steps: 50, seed: 1 });
}

async function writeSamples(manifest: string, o: { n: number; device: string; out: string; method: 'ddim' | 'ddpm' | 'heun'; steps: number; seed: number }): Promise<void> {
  const boot = await loadBootstrap(manifest, { device: o.device });
  try {
    const [c, r] = boot.imageShape;
    const x = await sample(boot.denoiser, {
      schedule: boot.views.schedule, prediction: 'x0', shape: [o.n, c, r, r], device: o.device, method: o.method, steps: o.steps, clip: [-1, 1],
      generator: new Generator(o.seed),
    });
    await writePng(o.out, gridToPng(await x.toArray(), [o.n, c, r, r]));
    x.dispose();
    console.log(`wrote ${o.out} (${o.n} samples of the bootstrapped denoiser, ${o.method})`);
  } finally {
    boot.dispose();
  }
}

export async function bootstrapSampleCommand(argv: string[], h: CliHelpers): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' }, n: { type: 'string' }, method: { type: 'string' }, steps: { type: 'string' }, seed: { type: 'string' },
      device: { type: 'string' }, out: { type: 'string' },
    },
  });
  const method = (values.method ?? 'ddim') as 'ddim' | 'ddpm' | 'heun';
  if (!['ddim', 'ddpm', 'heun'].includes(method)) throw new Error(`--method: expected ddim, ddpm or heun, got "${method}"`);
  await writeSamples(values.checkpoint!, {
    n: h.number(values.n, 64, '--n'), device: values.device ?? defaultDevice(), out: values.out ?? 'samples.png', method,
    steps: h.number(values.steps, 50, '--steps'), seed: h.number(values.seed, 0, '--seed'),
  });
}
