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
import { loadBootstrap, parseViews, trainBootstrap } from './run.ts';
import type { ResidualPenalty } from './train.ts';

const HELP = `  (a denoiser per view trained on views of every image, then the residual f0 on the first N
   images only; writes DIR/{lowres,patch,residual}.safetensors, DIR/bootstrap.json and DIR/samples.png)
  --views V         lowres:R and/or patch:P[/S][+pos][@uniform|triangle|hann], e.g. lowres:4,patch:16
  --full N          full-resolution images for the residual (the first N of the data)
  --lambda X        residual penalty weight (default 0.1)
  --penalty P       l2 (default) | batch-variance
  --view-steps N    steps of each view model (default: --steps, which counts the residual's)
  --out DIR         output folder (default bootstrap)
  --n N             samples in DIR/samples.png (default 16; 0: none)
  (--preset sets the width and depth of every model, default small32; --batch defaults to 16, --lr to 1e-3)`;

export const bootstrapMethod: TrainMethod = {
  summary: 'few full images plus low-res copies and crops of many: bootstrapping diffusion (docs/bootstrap.md)',
  options: {
    views: { type: 'string' }, full: { type: 'string' }, lambda: { type: 'string' }, penalty: { type: 'string' },
    'view-steps': { type: 'string' }, n: { type: 'string' },
  },
  help: HELP,
  examples: [
    'kintsugi train --method bootstrap --views lowres:4,patch:16 --full 64 --steps 3000 --out boot64',
    'kintsugi sample --checkpoint boot64/bootstrap.json --n 64 --out grid.png',
  ],
  run: bootstrapTrain,
};

async function bootstrapTrain(values: Values): Promise<void> {
  const s = (k: string) => str(values, k);
  if (!s('views')) throw new UsageError('--views is required for --method bootstrap (e.g. --views lowres:4,patch:16)');
  if (!s('full')) throw new UsageError('--full N is required for --method bootstrap (the number of full-resolution images)');
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
  const full = integer(s('full'), 0, '--full');
  const viewSteps = integer(s('view-steps'), steps, '--view-steps');
  const batchSize = integer(s('batch'), 16, '--batch');
  const lr = number(s('lr'), 1e-3, '--lr', { above: 0 });
  const lambda = number(s('lambda'), 0.1, '--lambda', { min: 0 });
  const seed = integer(s('seed'), 0, '--seed', 0);
  const n = integer(s('n'), 16, '--n', 0);
  const config = presetConfig(s('preset') ?? 'small32');
  const outDir = s('out') ?? 'bootstrap';
  prepareOutputDir(outDir, '--out');
  const data = await loadData(s('data') ?? 'subset');
  console.log(`data: ${data.shape[0]} images from ${data.file} (views of all, the first ${full} at full resolution); views ${s('views')}; on ${device}`);
  const printers = new Map<string, (p: TrainProgress) => void>();
  const controller = interruptible();
  const result = await trainBootstrap({
    data, full, views, config, steps, viewSteps, batchSize, optimizer: { lr, maxGradNorm: 1 }, lambda, penalty, seed, device, outDir,
    signal: controller.signal,
    onProgress: (stage, p) => {
      if (!printers.has(stage)) printers.set(stage, progressPrinter(stage));
      printers.get(stage)!(p);
    },
  });
  console.log(`${result.aborted ? 'stopped' : 'finished'}; manifest: ${result.path}`);
  if (n > 0 && !result.aborted) {
    const boot = await loadBootstrap(result.path, { device });
    try {
      const [c, r] = boot.imageShape;
      const x = await sample(boot.denoiser, {
        schedule: boot.views.schedule, prediction: 'x0', shape: [n, c, r, r], device, method: 'ddim', steps: 50, clip: [-1, 1], generator: new Generator(1),
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
