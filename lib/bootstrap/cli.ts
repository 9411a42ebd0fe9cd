// `kintsugi train --method bootstrap ...` (docs/bootstrap.md): an entry of the training-method registry
// (lib/cli-train.ts). `kintsugi sample --checkpoint DIR/bootstrap.json` samples the result.
import { join } from 'node:path';
import { defaultDevice } from '../device.ts';
import { gridToPng, writePng } from '../data/png.ts';
import { writeNpy } from '../data/npy.ts';
import { integer, interruptible, number, prepareOutputDir, progressPrinter, str, UsageError, type Values } from '../cli-common.ts';
import { loadData, presetConfig, type TrainMethod } from '../cli-train.ts';
import { Generator } from '../random.ts';
import { sample } from '../sample.ts';
import type { TrainProgress } from '../train.ts';
import type { Dataset } from '../train.ts';
import { readImageSet } from './data.ts';
import {
  checkBootstrapData,
  loadBootstrap,
  parseViews,
  trainBootstrap,
  type BootstrapRunOptions,
  type BootstrapSets,
  type ResidualMode,
} from './run.ts';
import type { ResidualPenalty } from './train.ts';

const HELP = `  (a denoiser per view trained on that view's data, then the residual f0 on the few full-resolution
   images only; writes DIR/{lowres,patch,residual}.safetensors, DIR/bootstrap.json and DIR/samples.png.
   Views come from separate sets (--lowres-data, --patch-data) or, without them, from the images of
   --data: pooled copies and crops of every image)
  --views V         lowres:R and/or patch:P[/S][+pos][@uniform|triangle|hann], e.g. lowres:4,patch:16
  --full N          full-resolution images for the residual (the first N of --data, or of --full-data)
  --full-data F     the full-resolution set, a .npy [N, C, H, W] (default: the first --full images of --data)
  --lowres-data F   the low-resolution set, a .npy [N, C, H/R, W/R] (default: --data pooled by R)
  --patch-data F    the crop set, a .npy [N, C, P, P] (default: 8 random crops of each --data image; not with +pos)
  --residual M      unconditioned (default: the paper's f0(x_t)) | conditioned (f0(x_t, x̂_agg))
  --lambda X        residual penalty weight (default 0.1)
  --penalty P       l2 (default) | batch-variance
  --view-steps N    steps of each view model (default: --steps, which counts the residual's)
  --out DIR         output folder (default bootstrap)
  --n N             samples in DIR/samples.png (default 16; 0: none)
  (--preset sets the width and depth of every model, default small32; --batch defaults to 16, --lr to 1e-3)`;

export const bootstrapMethod: TrainMethod = {
  summary: 'few full images plus low-res copies and crops of many: bootstrapping diffusion (docs/bootstrap.md)',
  options: {
    views: { type: 'string' },
    full: { type: 'string' },
    lambda: { type: 'string' },
    penalty: { type: 'string' },
    'view-steps': { type: 'string' },
    n: { type: 'string' },
    'full-data': { type: 'string' },
    'lowres-data': { type: 'string' },
    'patch-data': { type: 'string' },
    residual: { type: 'string' },
  },
  help: HELP,
  examples: [
    'kintsugi train --method bootstrap --views lowres:4,patch:16 --full 64 --steps 3000 --out boot64',
    'kintsugi train --method bootstrap --views lowres:4,patch:16 --full-data few.npy --lowres-data small.npy --patch-data crops.npy --out boot',
    'kintsugi sample --checkpoint boot64/bootstrap.json --n 64 --out grid.png',
  ],
  run: bootstrapTrain,
};

async function bootstrapTrain(values: Values): Promise<void> {
  const s = (k: string) => str(values, k);
  if (!s('views')) throw new UsageError('--views is required for --method bootstrap (e.g. --views lowres:4,patch:16)');
  const separate = ['full-data', 'lowres-data', 'patch-data'].some((k) => s(k) !== undefined);
  if (!s('full') && !s('full-data'))
    throw new UsageError('--full N or --full-data FILE is required for --method bootstrap (the full-resolution images)');
  const residual = (s('residual') ?? 'unconditioned') as ResidualMode;
  if (residual !== 'unconditioned' && residual !== 'conditioned')
    throw new UsageError(`--residual: expected unconditioned or conditioned, got "${residual}"`);
  const penalty = (s('penalty') ?? 'l2') as ResidualPenalty;
  if (penalty !== 'l2' && penalty !== 'batch-variance') throw new UsageError(`--penalty: expected l2 or batch-variance, got "${penalty}"`);
  let views;
  try {
    views = parseViews(s('views')!);
  } catch (e) {
    throw new UsageError(`--views: ${(e as Error).message}`);
  }
  const device = s('device') ?? defaultDevice();
  const steps = integer(s('steps'), 2000, '--steps');
  const fullLimit = s('full') === undefined ? undefined : integer(s('full'), 0, '--full');
  const viewSteps = integer(s('view-steps'), steps, '--view-steps');
  const batchSize = integer(s('batch'), 16, '--batch');
  const lr = number(s('lr'), 1e-3, '--lr', { above: 0 });
  const lambda = number(s('lambda'), 0.1, '--lambda', { min: 0 });
  const seed = integer(s('seed'), 0, '--seed', 0);
  const n = integer(s('n'), 16, '--n', 0);
  const config = presetConfig(s('preset') ?? 'small32');
  const outDir = s('out') ?? 'bootstrap';
  prepareOutputDir(outDir, '--out');
  let source: { data: Dataset; full: number } | { sets: BootstrapSets };
  const read = async (flag: string) => {
    try {
      return await readImageSet(s(flag)!, `--${flag}`);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  const head = (d: Dataset, n: number | undefined): Dataset => {
    if (n === undefined) return d;
    const [N, C, H, W] = d.shape;
    if (n > N) throw new UsageError(`--full: expected at most the ${N} images of the full-resolution set, got ${n}`);
    return { images: d.images.subarray(0, n * C * H * W), shape: [n, C, H, W] };
  };
  if (separate) {
    const data = s('full-data') ? undefined : await loadData(s('data') ?? 'subset');
    const full = head(s('full-data') ? await read('full-data') : data!, fullLimit);
    const sets: BootstrapSets = { full };
    if (s('lowres-data')) sets.lowres = await read('lowres-data');
    if (s('patch-data')) sets.patches = await read('patch-data');
    const sizes = (['lowres', 'patches'] as const)
      .map((k) => (sets[k] ? `${sets[k].shape[0]} ${k} [${sets[k].shape.slice(1).join(', ')}]` : undefined))
      .filter(Boolean);
    console.log(
      `data: ${full.shape[0]} full-resolution images [${full.shape.slice(1).join(', ')}]${sizes.length ? `, ${sizes.join(', ')}` : ''} (views without a set of their own come from the full images); views ${s('views')}; f0 ${residual}; on ${device}`,
    );
    source = { sets };
  } else {
    const data = await loadData(s('data') ?? 'subset');
    const full = fullLimit!;
    console.log(
      `data: ${data.shape[0]} images from ${data.file} (views of all, the first ${full} at full resolution); views ${s('views')}; f0 ${residual}; on ${device}`,
    );
    source = { data, full };
  }
  const printers = new Map<string, (p: TrainProgress) => void>();
  const controller = interruptible();
  const run: BootstrapRunOptions = {
    ...source,
    residual,
    views,
    config,
    steps,
    viewSteps,
    batchSize,
    optimizer: { lr, maxGradNorm: 1 },
    lambda,
    penalty,
    seed,
    device,
    outDir,
    signal: controller.signal,
    onProgress: (stage, p) => {
      if (!printers.has(stage)) printers.set(stage, progressPrinter(stage));
      printers.get(stage)!(p);
    },
  };
  try {
    checkBootstrapData(run);
  } catch (e) {
    // A set that does not fit the views or the full images is a mistake in the command line: name its flag.
    const flags: [RegExp, string][] = [
      [/^sets\.full/, '--full-data'],
      [/^sets\.lowres/, '--lowres-data'],
      [/^sets\.patches/, '--patch-data'],
      [/^full:/, '--full:'],
    ];
    throw new UsageError(flags.reduce((m, [re, flag]) => m.replace(re, flag), (e as Error).message));
  }
  const result = await trainBootstrap(run);
  console.log(`${result.aborted ? 'stopped' : 'finished'}; manifest: ${result.path}`);
  if (n > 0 && !result.aborted) {
    const boot = await loadBootstrap(result.path, { device });
    try {
      const [c, r] = boot.imageShape;
      const x = await sample(boot.denoiser, {
        schedule: boot.views.schedule,
        prediction: 'x0',
        shape: [n, c, r, r],
        device,
        method: 'ddim',
        steps: 50,
        clip: [-1, 1],
        generator: new Generator(1),
      });
      const values32 = await x.toArray();
      x.dispose();
      await writePng(join(outDir, 'samples.png'), gridToPng(values32, [n, c, r, r]));
      await writeNpy(join(outDir, 'samples.npy'), { data: values32, shape: [n, c, r, r] });
      console.log(`wrote ${join(outDir, 'samples.png')} and samples.npy (${n} samples of the bootstrapped denoiser, DDIM 50 steps)`);
    } finally {
      boot.dispose();
    }
  }
}
