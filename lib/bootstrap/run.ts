// A whole bootstrapping run (docs/bootstrap.md): the view models trained on each view's own data, the
// residual f0 on the few full-resolution images only, three checkpoints and a manifest (bootstrap.json)
// that loadBootstrap turns back into a Denoiser. The data come as the paper has them, separate sets (many
// low-resolution images, many crops, few full images: `sets`), or as one clean set whose views are
// derived (`data` and `full`, for experiments). The CLI's `kintsugi train --method bootstrap` and the
// data-efficiency experiment both run this.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { loadUNet } from '../checkpoint.ts';
import { unetDenoiser, type Denoiser } from '../sample.ts';
import { NoiseSchedule, type Prediction, type ScheduleConfig } from '../schedule.ts';
import { train, type Dataset, type TrainProgress } from '../train.ts';
import type { AdamWOptions } from '../optim.ts';
import { resizedConfig, UNet, type UNetConfig } from '../unet.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import { cropDataset, lowresDataset, type CropDataset } from './data.ts';
import { checkManifest } from './manifest.ts';
import { bootstrapDenoiser, type BootstrapViews, type ResidualModel } from './denoiser.ts';
import { trainResidual, type ResidualPenalty } from './train.ts';
import { trainPatchModel } from './train-patches.ts';
import type { PatchWindow } from './views.ts';

// The view models predict v: their x0 = √ᾱ x_t − √(1−ᾱ) v has no 1/√ᾱ, which from an eps model
// blows any error up ~100-fold at the noisy end and hands f0 an aggregate of that size.
const VIEW_PREDICTION: Prediction = 'v';

export interface ViewSpec {
  lowres?: { factor: number };
  patch?: { size: number; stride: number; window: PatchWindow; positions: boolean };
}

/**
 * "lowres:4,patch:16" and the like: `lowres:R`, `patch:P` (stride P/2), `patch:P/S`, with `+pos` for
 * position channels and `@uniform|triangle|hann` for the window (default hann): "patch:16/8+pos@triangle".
 */
export function parseViews(text: string): ViewSpec {
  const spec: ViewSpec = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const low = /^lowres:(\d+)$/.exec(part);
    const pat = /^patch:(\d+)(?:\/(\d+))?(\+pos)?(?:@(uniform|triangle|hann))?$/.exec(part);
    if (low && !spec.lowres) spec.lowres = { factor: Number(low[1]) };
    else if (pat && !spec.patch) {
      const size = Number(pat[1]);
      spec.patch = {
        size,
        stride: pat[2] ? Number(pat[2]) : Math.max(1, size / 2),
        window: (pat[4] ?? 'hann') as PatchWindow,
        positions: !!pat[3],
      };
    } else
      throw new TypeError(`--views: expected lowres:R and/or patch:P[/S][+pos][@window], each at most once, got "${part}" in "${text}"`);
  }
  if (!spec.lowres && !spec.patch) throw new TypeError(`--views: expected lowres:R and/or patch:P[/S][+pos][@window], got "${text}"`);
  return spec;
}

export interface BootstrapManifest {
  format: 'kintsugi-bootstrap-1';
  schedule: ScheduleConfig;
  /** Full-resolution images the residual saw. */
  full: number;
  lowres?: { factor: number; prediction: Prediction; checkpoint: string };
  patch?: { size: number; stride: number; window: PatchWindow; positions: boolean; prediction: Prediction; checkpoint: string };
  /** conditioned: f0 sees concat(x_t, x̂_agg); false: f0(x_t) alone, the paper's form. */
  residual: { checkpoint: string; conditioned: boolean; lambda: number; penalty: ResidualPenalty };
}

/**
 * The data of a run as they exist in the paper's setting: separate sets per view. A view in `views`
 * without its set here takes its data from `full` (pooled copies, or crops of the full images).
 */
export interface BootstrapSets {
  /** The few full-resolution images [N, C, H, W] the residual is trained on. */
  full: Dataset;
  /** Low-resolution images [N', C, H/r, W/r], r the lowres view's factor. */
  lowres?: Dataset;
  /** Crops [N'', C, P, P], P the patch view's size; with position channels they need their offsets (a CropDataset). */
  patches?: Dataset | CropDataset;
}

/** f0's form: 'unconditioned' f0(x_t) (default, the paper's) or 'conditioned' f0(x_t, x̂_agg). */
export type ResidualMode = 'unconditioned' | 'conditioned';

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Checks a Dataset argument: [N, C, H, W] of positive integers with as many finite values. */
function checkDataset(d: unknown, what: string): Dataset {
  const set = d as Dataset;
  if (set === null || typeof set !== 'object' || !(set.images instanceof Float32Array) || !Array.isArray(set.shape))
    throw new TypeError(
      `${what}: expected a data set {images: Float32Array, shape: [N, C, H, W]}, got ${set === null ? 'null' : typeof set}`,
    );
  if (set.shape.length !== 4 || !set.shape.every((v) => Number.isSafeInteger(v) && v >= 1))
    throw new TypeError(`${what}.shape: expected [N, C, H, W] of positive integers, got ${JSON.stringify(set.shape)}`);
  const n = set.shape.reduce((a, b) => a * b, 1);
  if (set.images.length !== n)
    throw new RangeError(`${what}.images: shape ${shapeText(set.shape)} needs ${n} values, got ${set.images.length}`);
  const bad = set.images.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${what}.images: value ${bad} is ${set.images[bad]} (training needs finite values)`);
  return set;
}

/** The full set and every view's data, shapes checked against each other and the views (errors name the set). */
export function checkBootstrapData(o: BootstrapRunOptions): {
  full: Dataset;
  lowres?: Dataset;
  patches?: CropDataset | Dataset;
  derived: string[];
} {
  if ((o.data === undefined) === (o.sets === undefined))
    throw new TypeError(
      'trainBootstrap: give either data (one clean set, views derived) and full, or sets (separate view data sets), not both and not neither',
    );
  if (o.data) {
    const data = checkDataset(o.data, 'data');
    const N = data.shape[0]!;
    if (!Number.isInteger(o.full) || o.full! < 1 || o.full! > N)
      throw new RangeError(`full: expected an integer in [1, ${N}] (images of the data set), got ${o.full}`);
    const [, C, H, W] = data.shape;
    return {
      full: { images: data.images.subarray(0, o.full! * C * H * W), shape: [o.full!, C, H, W] },
      lowres: data,
      patches: data,
      derived: ['lowres', 'patch'],
    };
  }
  const sets = o.sets!;
  if (sets === null || typeof sets !== 'object') throw new TypeError(`sets: expected {full, lowres?, patches?}, got ${String(sets)}`);
  const full = checkDataset(sets.full, 'sets.full');
  const [, C, H, W] = full.shape as [number, number, number, number];
  const derived: string[] = [];
  let lowres: Dataset | undefined;
  let patches: Dataset | undefined;
  if (sets.lowres !== undefined && !o.views.lowres) throw new TypeError('sets.lowres: given, but views has no lowres view (add lowres:R)');
  if (sets.patches !== undefined && !o.views.patch) throw new TypeError('sets.patches: given, but views has no patch view (add patch:P)');
  if (o.views.lowres) {
    const r = o.views.lowres.factor;
    if (!Number.isInteger(r) || r < 1 || H % r || W % r)
      throw new RangeError(`views.lowres.factor: expected a positive integer dividing the full images' ${H}x${W}, got ${r}`);
    if (sets.lowres === undefined) ((lowres = full), derived.push('lowres'));
    else {
      lowres = checkDataset(sets.lowres, 'sets.lowres');
      const want = [C, H / r, W / r];
      if (lowres.shape.slice(1).some((v, i) => v !== want[i]))
        throw new RangeError(
          `sets.lowres: expected images [N, ${want.join(', ')}] (the full images' [${C}, ${H}, ${W}] pooled by lowres:${r}), got ${shapeText(lowres.shape)}`,
        );
    }
  }
  if (o.views.patch) {
    const P = o.views.patch.size;
    if (sets.patches === undefined) ((patches = full), derived.push('patch'));
    else {
      patches = checkDataset(sets.patches, 'sets.patches');
      if (patches.shape[1] !== C || patches.shape[2] !== P || patches.shape[3] !== P)
        throw new RangeError(
          `sets.patches: expected crops [N, ${C}, ${P}, ${P}] (patch:${P} of [${C}, ${H}, ${W}] images), got ${shapeText(patches.shape)}`,
        );
      const crops = patches as CropDataset;
      if (o.views.patch.positions) {
        if (!(crops.offsets instanceof Int32Array) || crops.offsets.length !== 2 * patches.shape[0]!)
          throw new TypeError(
            `sets.patches: the patch view has position channels (+pos), which need each crop's offsets (a CropDataset with offsets [row, column] per crop); these crops have none`,
          );
        const [ih, iw] = crops.imageSize ?? [];
        if (ih !== H || iw !== W)
          throw new RangeError(`sets.patches.imageSize: expected [${H}, ${W}] (the full images), got ${JSON.stringify(crops.imageSize)}`);
        for (let k = 0; k < patches.shape[0]!; k++)
          if (
            !(
              crops.offsets[2 * k]! >= 0 &&
              crops.offsets[2 * k]! <= H - P &&
              crops.offsets[2 * k + 1]! >= 0 &&
              crops.offsets[2 * k + 1]! <= W - P
            )
          )
            throw new RangeError(
              `sets.patches.offsets: crop ${k} at (${crops.offsets[2 * k]}, ${crops.offsets[2 * k + 1]}) does not fit a ${P}x${P} crop inside ${H}x${W}`,
            );
      }
    }
  }
  return { full, lowres, patches, derived };
}

export interface BootstrapRunOptions {
  /** One clean data set: every image gives views; the first `full` are the full-resolution set. */
  data?: Dataset;
  full?: number;
  /** Or separate sets (the paper's setting): the few full images and each view's own data. */
  sets?: BootstrapSets;
  views: ViewSpec;
  /** f0's form (default 'unconditioned', the paper's f0(x_t)). */
  residual?: ResidualMode;
  /** Width, levels and attention of every model (resolution and channels are set per model). */
  config: UNetConfig;
  /** Steps of the residual; the view models take `viewSteps` (default: the same). */
  steps: number;
  viewSteps?: number;
  batchSize: number;
  optimizer?: AdamWOptions;
  lambda?: number;
  penalty?: ResidualPenalty;
  /** Crops per image for the patch model's data when they are cut from images (default 8). */
  cropsPerImage?: number;
  seed?: number;
  device?: string;
  outDir: string;
  /** A bootstrap.json whose view models to reuse instead of training them (e.g. for several `full`). */
  viewsFrom?: string;
  signal?: AbortSignal;
  onProgress?: (stage: string, p: TrainProgress) => void;
}

/** Trains the views, then the residual; writes DIR/{lowres,patch,residual}.safetensors and DIR/bootstrap.json. */
export async function trainBootstrap(o: BootstrapRunOptions): Promise<{ manifest: BootstrapManifest; path: string; aborted: boolean }> {
  const sets = checkBootstrapData(o);
  const [Nf, C, H, W] = sets.full.shape as [number, number, number, number];
  const mode = o.residual ?? 'unconditioned';
  if (mode !== 'unconditioned' && mode !== 'conditioned')
    throw new TypeError(`residual: expected "unconditioned" or "conditioned", got ${JSON.stringify(mode)}`);
  if (H !== W) throw new TypeError(`bootstrap: square images needed, got ${H}x${W}`);
  await mkdir(o.outDir, { recursive: true });
  const schedule = new NoiseSchedule({ kind: 'linear' });
  const seed = o.seed ?? 0;
  const common = {
    batchSize: o.batchSize,
    optimizer: o.optimizer,
    signal: o.signal,
    seed,
    emaDecay: Math.max(o.steps, o.viewSteps ?? 0) < 2000 ? 0.99 : 0.999,
  };
  const viewSteps = o.viewSteps ?? o.steps;
  const progress = (stage: string) => ({
    onProgress: (p: TrainProgress) => o.onProgress?.(stage, p),
    progressEvery: Math.max(1, Math.floor(viewSteps / 100)),
  });
  const views: BootstrapViews = { schedule };
  const manifest: BootstrapManifest = {
    format: 'kintsugi-bootstrap-1',
    schedule: schedule.toJSON(),
    full: Nf,
    residual: {
      checkpoint: 'residual.safetensors',
      conditioned: mode === 'conditioned',
      lambda: o.lambda ?? 0.1,
      penalty: o.penalty ?? 'l2',
    },
  };
  const models: UNet[] = [];
  let aborted = false;
  try {
    if (o.viewsFrom) {
      const reused = await loadViews(o.viewsFrom, { device: o.device });
      models.push(...reused.nets);
      Object.assign(views, reused.views);
      const rel = (file: string) => relative(o.outDir, join(dirname(o.viewsFrom!), file));
      if (reused.manifest.lowres) manifest.lowres = { ...reused.manifest.lowres, checkpoint: rel(reused.manifest.lowres.checkpoint) };
      if (reused.manifest.patch) manifest.patch = { ...reused.manifest.patch, checkpoint: rel(reused.manifest.patch.checkpoint) };
    }
    if (o.views.lowres && !o.viewsFrom) {
      const r = o.views.lowres.factor;
      const model = new UNet(resizedConfig(o.config, H / r, C, C), { device: o.device, seed: BigInt(seed) + 1n });
      models.push(model);
      const path = join(o.outDir, 'lowres.safetensors');
      const res = await train({
        ...common,
        ...progress('lowres view'),
        model,
        data: sets.derived.includes('lowres') ? await lowresDataset(sets.lowres!, r, { device: o.device }) : sets.lowres!,
        steps: viewSteps,
        schedule,
        prediction: VIEW_PREDICTION,
        checkpoint: { path, every: viewSteps },
      });
      aborted ||= res.aborted;
      views.lowres = { denoiser: unetDenoiser(model, res.ema?.params), prediction: VIEW_PREDICTION, factor: r };
      manifest.lowres = { factor: r, prediction: VIEW_PREDICTION, checkpoint: 'lowres.safetensors' };
    }
    if (o.views.patch && !o.viewsFrom && !aborted) {
      const p = o.views.patch;
      const source = sets.patches!;
      const crops = sets.derived.includes('patch')
        ? cropDataset(source, { size: p.size, count: source.shape[0]! * (o.cropsPerImage ?? 8), seed })
        : (source as CropDataset);
      const model = new UNet(resizedConfig(o.config, p.size, p.positions ? C + 2 : C, C), { device: o.device, seed: BigInt(seed) + 2n });
      models.push(model);
      const path = join(o.outDir, 'patch.safetensors');
      const run = { ...common, ...progress('patch view'), model, steps: viewSteps, schedule, checkpoint: { path, every: viewSteps } };
      const res = p.positions
        ? await trainPatchModel({ ...run, crops, prediction: VIEW_PREDICTION })
        : await train({ ...run, data: crops, prediction: VIEW_PREDICTION });
      aborted ||= res.aborted;
      views.patch = { denoiser: unetDenoiser(model, res.ema?.params), prediction: VIEW_PREDICTION, ...p };
      manifest.patch = { ...p, prediction: VIEW_PREDICTION, checkpoint: 'patch.safetensors' };
    }
    if (!aborted) {
      const conditioned = mode === 'conditioned';
      const f0 = new UNet(resizedConfig(o.config, H, conditioned ? 2 * C : C, C), { device: o.device, seed: BigInt(seed) + 3n });
      models.push(f0);
      const res = await trainResidual({
        ...common,
        ...progress('residual'),
        progressEvery: Math.max(1, Math.floor(o.steps / 100)),
        model: f0,
        views,
        data: sets.full,
        steps: o.steps,
        conditioned,
        lambda: manifest.residual.lambda,
        penalty: manifest.residual.penalty,
        checkpoint: { path: join(o.outDir, manifest.residual.checkpoint), every: o.steps },
      });
      aborted ||= res.aborted;
    }
  } finally {
    for (const m of models) m.dispose();
  }
  const path = join(o.outDir, 'bootstrap.json');
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return { manifest, path, aborted };
}

export interface LoadedBootstrap {
  manifest: BootstrapManifest;
  views: BootstrapViews;
  residual: ResidualModel;
  /** D = x̂_agg + f0, predicting x0. */
  denoiser: Denoiser;
  /** [C, H, W] of the full-resolution images. */
  imageShape: [number, number, number];
  dispose(): void;
}

async function readManifest(path: string): Promise<BootstrapManifest> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new TypeError(`${path}: not a bootstrap manifest: ${(e as Error).message}`, { cause: e });
  }
  return checkManifest(value, path);
}

/** A checkpoint's UNet, with its EMA weights when it has them and `useEma` is not false. */
async function loadNet(path: string, options: { device?: string; useEma?: boolean }): Promise<UNet> {
  const useEma = options.useEma ?? true;
  try {
    return await loadUNet(path, { device: options.device, useEma });
  } catch (e) {
    if (!useEma || !/no EMA weights/.test((e as Error).message)) throw e;
    return loadUNet(path, { device: options.device });
  }
}

/** The view models of a manifest (checkpoint paths relative to the manifest's folder). */
async function loadViews(
  manifestPath: string,
  options: { device?: string; useEma?: boolean },
): Promise<{ manifest: BootstrapManifest; views: BootstrapViews; nets: UNet[] }> {
  const manifest = await readManifest(manifestPath);
  const dir = dirname(manifestPath);
  const nets: UNet[] = [];
  try {
    const views: BootstrapViews = { schedule: new NoiseSchedule(manifest.schedule) };
    if (manifest.lowres) {
      const net = await loadNet(join(dir, manifest.lowres.checkpoint), options);
      nets.push(net);
      views.lowres = { denoiser: unetDenoiser(net), prediction: manifest.lowres.prediction, factor: manifest.lowres.factor };
    }
    if (manifest.patch) {
      const { checkpoint, ...p } = manifest.patch;
      const net = await loadNet(join(dir, checkpoint), options);
      nets.push(net);
      views.patch = { ...p, denoiser: unetDenoiser(net) };
    }
    return { manifest, views, nets };
  } catch (e) {
    nets.forEach((n) => n.dispose());
    throw e;
  }
}

/** The bootstrapped denoiser of a manifest written by trainBootstrap (EMA weights where the checkpoints have them). */
export async function loadBootstrap(manifestPath: string, options: { device?: string; useEma?: boolean } = {}): Promise<LoadedBootstrap> {
  const { manifest, views, nets } = await loadViews(manifestPath, options);
  try {
    const f0 = await loadNet(join(dirname(manifestPath), manifest.residual.checkpoint), options);
    nets.push(f0);
    const { outChannels: c, resolution: r, inChannels } = f0.config;
    const conditioned = manifest.residual.conditioned;
    if (inChannels !== (conditioned ? 2 * c : c))
      throw new TypeError(
        `${manifestPath}: residual.conditioned is ${conditioned}, so ${manifest.residual.checkpoint} should take ${conditioned ? `2C = ${2 * c} channels (x_t and x̂_agg)` : `C = ${c} channels (x_t)`}, but it takes ${inChannels}`,
      );
    const residual: ResidualModel = { denoiser: unetDenoiser(f0), conditioned };
    return {
      manifest,
      views,
      residual,
      denoiser: bootstrapDenoiser(views, residual),
      imageShape: [c, r, r],
      dispose: () => nets.forEach((n) => n.dispose()),
    };
  } catch (e) {
    nets.forEach((n) => n.dispose());
    throw e;
  }
}
