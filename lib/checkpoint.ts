// Checkpoints: one safetensors file holding the model weights (keys exactly as in docs/unet.md, so
// PyTorch's load_state_dict(strict=True) takes them once the "ema." and "optim." keys are filtered out),
// optionally the EMA weights ("ema.<name>") and the AdamW moments ("optim.m.<name>", "optim.v.<name>"),
// and what resuming needs in __metadata__ (all values strings, JSON where structured):
//
//   kintsugi.format      "1"
//   kintsugi.config      the full UNet config, camelCase as in UNetConfig (zeroInit included)
//   kintsugi.step        the training step (decimal)
//   kintsugi.prediction  "eps", "x0" or "v"
//   kintsugi.schedule    the noise schedule, JSON (null when none was given)
//   kintsugi.optim       {step, lr, betas, eps, weightDecay, warmupSteps, maxGradNorm}, with optimizer state only
//   kintsugi.generator   {seed, offset, stream} (decimal strings), with a generator only
//
// Any other metadata key is the user's and must not start with "kintsugi.". Tensors are written in the
// model's layout order, then ema.*, then optim.m.*, then optim.v.*. Model and EMA weights are F32 or BF16;
// moments are always F32. Reading accepts any float dtype the safetensors reader does (F32, BF16, F16,
// F64) and any tensor order, so a file written by PyTorch with the same keys loads too (a file without
// "kintsugi.format" is taken as format 1). The file is independent of the device it was saved from.
import type { Prediction } from './schedule.ts';
import { readSafetensors, writeSafetensors, float32ToBf16Bits, type SafetensorsEntry, type SafetensorsInput } from './safetensors.ts';
import { resolveConfig, UNet, unetLayout, type ParamInfo, type UNetConfig } from './unet.ts';
import type { AdamW, AdamWOptions, EMA } from './optim.ts';
import { Generator } from './random.ts';

export const CHECKPOINT_FORMAT = '1';

export type { Prediction } from './schedule.ts';
const PREDICTIONS: readonly string[] = ['eps', 'x0', 'v'];

export interface SaveOptions {
  /** Saves its moments ("optim.m.*", "optim.v.*", always F32) and its step and options ("kintsugi.optim"). */
  optimizer?: AdamW;
  /** Saves its weights under "ema.<param name>" (in `dtype`). */
  ema?: EMA;
  /** Saves its state in "kintsugi.generator". */
  generator?: Generator;
  /** The training step, "kintsugi.step" (default: optimizer.stepCount, else 0). */
  step?: number;
  /** What the network predicts, "kintsugi.prediction" (default 'eps'). */
  prediction?: Prediction;
  /** The noise schedule, any JSON-serialisable value, "kintsugi.schedule" (default null). */
  schedule?: unknown;
  /** Storage of the model and EMA weights (default F32). BF16 rounds to nearest even and halves the file. */
  dtype?: 'F32' | 'BF16';
  /** Extra string metadata; keys must not start with "kintsugi.". */
  metadata?: Record<string, string>;
}

export interface CheckpointOptimizerState {
  /** AdamW steps taken (bias correction and warm-up continue from here). */
  step: number;
  m: Float32Array;
  v: Float32Array;
  /** The AdamW options the state was saved with (those present in "kintsugi.optim"). */
  options: AdamWOptions;
}

export interface Checkpoint {
  config: Required<UNetConfig>;
  /** All model weights, flat, in layout order (as UNet.setParams takes them). */
  params: Float32Array;
  /** The EMA weights, same layout, when the file has them. */
  ema?: Float32Array;
  optimizer?: CheckpointOptimizerState;
  /** Restore with Generator.fromState(checkpoint.generator). */
  generator?: { seed: string; offset: string; stream: string };
  step: number;
  prediction: Prediction;
  schedule: unknown;
  /** The user metadata: every key that does not start with "kintsugi.". */
  metadata: Record<string, string>;
}

const KEY = {
  format: 'kintsugi.format',
  config: 'kintsugi.config',
  step: 'kintsugi.step',
  prediction: 'kintsugi.prediction',
  schedule: 'kintsugi.schedule',
  optim: 'kintsugi.optim',
  generator: 'kintsugi.generator',
} as const;

const EMA_PREFIX = 'ema.';
const OPTIM_PREFIX = 'optim.';
const M_PREFIX = 'optim.m.';
const V_PREFIX = 'optim.v.';

// ---------------------------------------------------------------------------------------------- helpers

function invalid(path: string, message: string): Error {
  return Object.assign(new Error(`${path}: ${message}`), { code: 'KINTSUGI_INVALID_CHECKPOINT' });
}

/** `"a", "b", "c" (and 7 more)`: a few names of a possibly long list. */
function some(names: readonly string[], n = 5): string {
  const shown = names
    .slice(0, n)
    .map((s) => JSON.stringify(s))
    .join(', ');
  return names.length > n ? `${shown} (and ${names.length - n} more)` : shown;
}

function brief(s: string, n = 100): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Values that are NaN or +-Infinity. */
function countNonFinite(data: Float32Array): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) n++;
  return n;
}

function countNegative(data: Float32Array): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! < 0) n++;
  return n;
}

/** Values that are finite in float32 but become infinite in bfloat16 (|x| >= 2^128 - 2^119, rounded up). */
function countBf16Overflow(data: Float32Array): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (Number.isFinite(x) && Math.abs(x) > 3.3e38 && (float32ToBf16Bits(x) & 0x7f80) === 0x7f80) n++;
  }
  return n;
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The configuration fields that define the architecture (zeroInit only chooses the initial weights). */
const ARCH_KEYS = ['inChannels', 'outChannels', 'channels', 'mult', 'resBlocks', 'attnResolutions', 'resolution'] as const;

/**
 * Checks what resolveConfig takes on trust (a JSON value can be anything), then resolves it. A config
 * is only a few bytes but its layout grows with levels x resBlocks, so one asking for more blocks than
 * the file has tensors (each block has several) is refused before the layout is built: a forged
 * "resBlocks": 1e6 would otherwise cost seconds and hundreds of MB before any tensor is compared.
 */
function configFrom(value: unknown, path: string, tensorCount: number): Required<UNetConfig> {
  const bad = (why: string) => invalid(path, `"${KEY.config}" is not a valid UNet config: ${why}`);
  if (!isPlainObject(value)) throw bad(`expected a JSON object, got ${brief(JSON.stringify(value))}`);
  for (const k of ['inChannels', 'channels', 'resBlocks', 'resolution', 'mult'] as const)
    if (!Object.hasOwn(value, k)) throw bad(`missing "${k}"`);
  for (const k of ['mult', 'attnResolutions'] as const)
    if (value[k] !== undefined && !Array.isArray(value[k])) throw bad(`${k} must be an array, got ${brief(JSON.stringify(value[k]))}`);
  if (value.zeroInit !== undefined && typeof value.zeroInit !== 'boolean')
    throw bad(`zeroInit must be a boolean, got ${brief(JSON.stringify(value.zeroInit))}`);
  const levels = (value.mult as unknown[]).length;
  const blocks = typeof value.resBlocks === 'number' ? levels * value.resBlocks : 0;
  if (levels > tensorCount || blocks > tensorCount)
    throw bad(
      `${levels} levels of ${brief(JSON.stringify(value.resBlocks))} residual blocks need more tensors than the ${tensorCount} in the file`,
    );
  try {
    return resolveConfig(value as unknown as UNetConfig);
  } catch (e) {
    throw Object.assign(bad((e as Error).message), { cause: e });
  }
}

function parseJson(path: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key]!);
  } catch (e) {
    throw invalid(path, `"${key}" is not valid JSON (${(e as Error).message}): ${brief(metadata[key]!)}`);
  }
}

// ---------------------------------------------------------------------------------------------- saving

/**
 * Writes a checkpoint of `net` (and, as asked, its optimizer, EMA and generator state) to `path`. Waits
 * for the device work queued on the tensors it saves, checks everything before touching the disk (a
 * model with NaN or Inf weights is refused, as reading would refuse the file), and writes atomically:
 * on any failure an existing file at `path` is left as it was and no partial file remains.
 */
export async function saveCheckpoint(path: string, net: UNet, options: SaveOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`saveCheckpoint: path must be a file name, got ${JSON.stringify(path)}`);
  if (!(net instanceof UNet)) throw new TypeError('saveCheckpoint: net must be a UNet');
  if (typeof options !== 'object' || options === null) throw new TypeError('saveCheckpoint: options must be an object');
  const { optimizer, ema, generator } = options;
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16')
    throw new TypeError(`saveCheckpoint: dtype must be "F32" or "BF16", got ${JSON.stringify(dtype)}`);
  const prediction = options.prediction ?? 'eps';
  if (!PREDICTIONS.includes(prediction))
    throw new TypeError(`saveCheckpoint: prediction must be "eps", "x0" or "v", got ${JSON.stringify(prediction)}`);
  const step = options.step ?? optimizer?.stepCount ?? 0;
  if (!isNonNegativeInteger(step)) throw new TypeError(`saveCheckpoint: step must be a non-negative integer, got ${step}`);
  let schedule: string | undefined;
  try {
    schedule = JSON.stringify(options.schedule ?? null);
  } catch (e) {
    throw new TypeError(`saveCheckpoint: schedule must be JSON-serialisable: ${(e as Error).message}`, { cause: e });
  }
  if (schedule === undefined) throw new TypeError('saveCheckpoint: schedule must be JSON-serialisable (a function or symbol is not)');
  const user = options.metadata ?? {};
  if (!isPlainObject(user)) throw new TypeError('saveCheckpoint: metadata must be an object of strings');
  for (const [k, v] of Object.entries(user)) {
    if (k.startsWith('kintsugi.')) throw new TypeError(`saveCheckpoint: metadata key "${k}": the "kintsugi." prefix is reserved`);
    if (typeof v !== 'string') throw new TypeError(`saveCheckpoint: metadata["${k}"] must be a string, got ${typeof v}`);
  }
  if (optimizer !== undefined && optimizer.m.numel !== net.paramCount)
    throw new TypeError(
      `saveCheckpoint: the optimizer holds ${optimizer.m.numel} values per moment, the model ${net.paramCount} parameters`,
    );
  if (ema !== undefined && ema.params.numel !== net.paramCount)
    throw new TypeError(`saveCheckpoint: the EMA holds ${ema.params.numel} values, the model ${net.paramCount} parameters`);

  // Read everything first: toArray waits for the work queued on each tensor (a training step in flight).
  const [params, emaValues, m, v] = await Promise.all([
    net.params.toArray(),
    ema?.params.toArray(),
    optimizer?.m.toArray(),
    optimizer?.v.toArray(),
  ]);

  const tensors = new Map<string, SafetensorsInput>();
  const add = (prefix: string, values: Float32Array, stored: 'F32' | 'BF16', what: string) => {
    for (const p of net.layout) {
      const data = values.subarray(p.offset, p.offset + p.numel);
      const name = prefix + p.name;
      const bad = countNonFinite(data);
      if (bad > 0)
        throw new RangeError(
          `saveCheckpoint: ${what} "${name}" has ${bad} NaN or infinite values; refusing to write a checkpoint that cannot be loaded`,
        );
      if (stored === 'BF16' && countBf16Overflow(data) > 0)
        throw new RangeError(`saveCheckpoint: ${what} "${name}" has values beyond the bfloat16 range; save it as F32`);
      tensors.set(name, { shape: p.shape, data, dtype: stored });
    }
  };
  add('', params, dtype, 'parameter');
  if (emaValues) add(EMA_PREFIX, emaValues, dtype, 'EMA weight');
  if (m && v) {
    add(M_PREFIX, m, 'F32', 'first moment');
    add(V_PREFIX, v, 'F32', 'second moment');
  }

  const metadata: Record<string, string> = {
    [KEY.format]: CHECKPOINT_FORMAT,
    [KEY.config]: JSON.stringify(net.config),
    [KEY.step]: String(step),
    [KEY.prediction]: prediction,
    [KEY.schedule]: schedule,
  };
  if (optimizer) {
    const o = optimizer.options;
    metadata[KEY.optim] = JSON.stringify({
      step: optimizer.stepCount,
      lr: o.lr,
      betas: [...o.betas],
      eps: o.eps,
      weightDecay: o.weightDecay,
      warmupSteps: o.warmupSteps,
      maxGradNorm: o.maxGradNorm,
    });
  }
  if (generator) metadata[KEY.generator] = JSON.stringify(generator.getState());
  Object.assign(metadata, user);

  await writeSafetensors(path, tensors, metadata);
}

// ---------------------------------------------------------------------------------------------- reading

/** The tensors of one group (model, ema, m or v) by parameter name. */
type Group = Map<string, SafetensorsEntry>;

/** Copies a complete, checked group into one flat array in layout order, freeing the per-tensor arrays. */
function flatten(group: Group, layout: readonly ParamInfo[], count: number): Float32Array {
  const out = new Float32Array(count);
  for (const p of layout) {
    out.set(group.get(p.name)!.data, p.offset);
    group.delete(p.name);
  }
  return out;
}

function parseOptimOptions(path: string, value: Record<string, unknown>): { step: number; options: AdamWOptions } {
  const bad = (why: string) => invalid(path, `"${KEY.optim}": ${why}`);
  if (!isNonNegativeInteger(value.step))
    throw bad(`optimizer step must be a non-negative integer, got ${brief(JSON.stringify(value.step) ?? 'nothing')}`);
  const options: AdamWOptions = {};
  const num = (k: 'lr' | 'eps' | 'weightDecay' | 'maxGradNorm', ok: (x: number) => boolean, rule: string) => {
    if (value[k] === undefined) return;
    const x = value[k];
    if (typeof x !== 'number' || !ok(x)) throw bad(`${k} must be ${rule}, got ${brief(JSON.stringify(x))}`);
    options[k] = x;
  };
  num('lr', (x) => Number.isFinite(x) && x >= 0, 'a finite number >= 0');
  num('eps', (x) => Number.isFinite(x) && x > 0, 'a finite number > 0');
  num('weightDecay', (x) => Number.isFinite(x) && x >= 0, 'a finite number >= 0');
  num('maxGradNorm', (x) => Number.isFinite(x) && x >= 0, 'a finite number >= 0');
  if (value.warmupSteps !== undefined) {
    if (!isNonNegativeInteger(value.warmupSteps))
      throw bad(`warmupSteps must be a non-negative integer, got ${brief(JSON.stringify(value.warmupSteps))}`);
    options.warmupSteps = value.warmupSteps;
  }
  if (value.betas !== undefined) {
    const b = value.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1))
      throw bad(`betas must be two numbers in [0, 1), got ${brief(JSON.stringify(b))}`);
    options.betas = [b[0], b[1]];
  }
  return { step: value.step, options };
}

function parseGenerator(path: string, value: unknown): { seed: string; offset: string; stream: string } {
  const bad = (why: string) => invalid(path, `"${KEY.generator}": ${why}`);
  if (!isPlainObject(value)) throw bad(`expected an object {seed, offset, stream}, got ${brief(JSON.stringify(value))}`);
  const state = { seed: value.seed, offset: value.offset, stream: value.stream };
  for (const [k, s] of Object.entries(state))
    if (typeof s !== 'string' || !/^\d{1,20}$/.test(s))
      throw bad(`${k} must be a decimal string, got ${brief(JSON.stringify(s) ?? 'nothing')}`);
  const checked = state as { seed: string; offset: string; stream: string };
  try {
    Generator.fromState(checked); // range checks (each below 2^64)
  } catch (e) {
    throw bad((e as Error).message);
  }
  return checked;
}

/**
 * Reads and validates a checkpoint: the config, every model tensor (present, shaped as the config says,
 * finite), the EMA and optimizer state (all or nothing, finite, second moments >= 0) and the metadata.
 * Throws an Error naming the file and the offending key; nothing is returned for a file that fails.
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`readCheckpoint: path must be a file name, got ${JSON.stringify(path)}`);
  const file = await readSafetensors(path);
  const meta = file.metadata;

  // Format and config.
  if (meta[KEY.format] !== undefined && meta[KEY.format] !== CHECKPOINT_FORMAT)
    throw invalid(
      path,
      `unsupported checkpoint format "${brief(meta[KEY.format]!)}" in "${KEY.format}" (this version reads "${CHECKPOINT_FORMAT}")`,
    );
  if (meta[KEY.config] === undefined) throw invalid(path, `not a kintsugi checkpoint: __metadata__ has no "${KEY.config}"`);
  let rawConfig: unknown;
  try {
    rawConfig = JSON.parse(meta[KEY.config]);
  } catch (e) {
    throw invalid(path, `not a kintsugi checkpoint: "${KEY.config}" is not valid JSON (${(e as Error).message})`);
  }
  const config = configFrom(rawConfig, path, file.tensors.size);
  const { params: layout, paramCount } = unetLayout(config);
  const byName = new Map(layout.map((p) => [p.name, p]));

  // Sort the tensors into groups; anything else is an error.
  const model: Group = new Map();
  const ema: Group = new Map();
  const m: Group = new Map();
  const v: Group = new Map();
  const unexpected: string[] = [];
  const unknownPrefixed: string[] = [];
  for (const [name, entry] of file.tensors) {
    let group: Group = model;
    let param = name;
    if (name.startsWith(EMA_PREFIX)) [group, param] = [ema, name.slice(EMA_PREFIX.length)];
    else if (name.startsWith(M_PREFIX)) [group, param] = [m, name.slice(M_PREFIX.length)];
    else if (name.startsWith(V_PREFIX)) [group, param] = [v, name.slice(V_PREFIX.length)];
    else if (name.startsWith(OPTIM_PREFIX)) {
      unknownPrefixed.push(name);
      continue;
    }
    if (!byName.has(param)) {
      (group === model ? unexpected : unknownPrefixed).push(name);
      continue;
    }
    group.set(param, entry);
  }
  if (unexpected.length > 0) throw invalid(path, `${unexpected.length} unexpected tensor(s) for this config: ${some(unexpected)}`);
  if (unknownPrefixed.length > 0)
    throw invalid(
      path,
      `${unknownPrefixed.length} unknown tensor(s) under a reserved prefix (expected "ema.<param>", "optim.m.<param>" or "optim.v.<param>" for a parameter of this config): ${some(unknownPrefixed)}`,
    );

  const missingOf = (group: Group, prefix: string) => layout.filter((p) => !group.has(p.name)).map((p) => prefix + p.name);
  const missing = missingOf(model, '');
  if (missing.length > 0) throw invalid(path, `${missing.length} of ${layout.length} model tensors missing: ${some(missing)}`);
  if (ema.size > 0 && ema.size < layout.length) {
    const gone = missingOf(ema, EMA_PREFIX);
    throw invalid(path, `incomplete EMA weights: ${ema.size} of ${layout.length} "ema." tensors present, missing ${some(gone)}`);
  }
  const hasOptim = m.size > 0 || v.size > 0 || meta[KEY.optim] !== undefined;
  if (hasOptim) {
    const gone = [...missingOf(m, M_PREFIX), ...missingOf(v, V_PREFIX)];
    if (gone.length > 0)
      throw invalid(
        path,
        `incomplete optimizer state: ${m.size + v.size} of ${2 * layout.length} "optim." tensors present, missing ${some(gone)}`,
      );
    if (meta[KEY.optim] === undefined)
      throw invalid(
        path,
        `incomplete optimizer state: the moments are present but __metadata__ has no "${KEY.optim}" (the optimizer step)`,
      );
  }

  // Shapes and values.
  const check = (group: Group, prefix: string, what: 'weights' | 'm' | 'v') => {
    for (const p of layout) {
      const e = group.get(p.name)!;
      const name = prefix + p.name;
      if (!sameShape(e.shape, p.shape))
        throw invalid(path, `tensor "${name}" has shape ${JSON.stringify(e.shape)}, the config needs ${JSON.stringify(p.shape)}`);
      const bad = countNonFinite(e.data);
      if (bad > 0) throw invalid(path, `tensor "${name}" has ${bad} NaN or infinite value(s) of ${e.data.length}`);
      if (what === 'v') {
        const neg = countNegative(e.data);
        if (neg > 0) throw invalid(path, `tensor "${name}" has ${neg} negative value(s); a second moment is never negative`);
      }
    }
  };
  check(model, '', 'weights');
  if (ema.size > 0) check(ema, EMA_PREFIX, 'weights');
  if (hasOptim) {
    check(m, M_PREFIX, 'm');
    check(v, V_PREFIX, 'v');
  }

  // Metadata.
  let optimizer: CheckpointOptimizerState | undefined;
  if (hasOptim) {
    const value = parseJson(path, meta, KEY.optim);
    if (!isPlainObject(value)) throw invalid(path, `"${KEY.optim}": expected a JSON object, got ${brief(meta[KEY.optim]!)}`);
    const { step, options } = parseOptimOptions(path, value);
    optimizer = { step, options, m: flatten(m, layout, paramCount), v: flatten(v, layout, paramCount) };
  }
  let step = optimizer?.step ?? 0;
  if (meta[KEY.step] !== undefined) {
    const s = meta[KEY.step];
    if (!/^\d{1,16}$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw invalid(path, `"${KEY.step}" must be a non-negative integer, got ${JSON.stringify(brief(s))}`);
    step = Number(s);
  }
  const prediction = meta[KEY.prediction] ?? 'eps';
  if (!PREDICTIONS.includes(prediction))
    throw invalid(path, `"${KEY.prediction}" must be "eps", "x0" or "v", got ${JSON.stringify(brief(prediction))}`);
  const schedule = meta[KEY.schedule] === undefined ? null : parseJson(path, meta, KEY.schedule);
  const generator = meta[KEY.generator] === undefined ? undefined : parseGenerator(path, parseJson(path, meta, KEY.generator));
  const metadata: Record<string, string> = {};
  for (const [k, val] of Object.entries(meta)) if (!k.startsWith('kintsugi.')) metadata[k] = val;

  const result: Checkpoint = {
    config,
    params: flatten(model, layout, paramCount),
    step,
    prediction: prediction as Prediction,
    schedule,
    metadata,
  };
  if (ema.size > 0) result.ema = flatten(ema, layout, paramCount);
  if (optimizer) result.optimizer = optimizer;
  if (generator) result.generator = generator;
  return result;
}

// ---------------------------------------------------------------------------------------------- loading

/** A new UNet on `device` (default: the default device) with the checkpoint's weights, or its EMA weights. */
export async function loadUNet(path: string, options: { device?: string; useEma?: boolean } = {}): Promise<UNet> {
  const ckpt = await readCheckpoint(path);
  if (options.useEma && !ckpt.ema) throw invalid(path, 'useEma: the checkpoint has no EMA weights ("ema.*" tensors)');
  const net = new UNet(ckpt.config, { device: options.device });
  try {
    net.setParams(options.useEma ? ckpt.ema! : ckpt.params);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

/**
 * Restores training state into existing objects: the model's weights, and the optimizer's moments and
 * step and the EMA's weights when they are given (the file must then hold them). Everything is checked
 * before anything is changed, so on an error the objects are as they were. The architecture must match
 * the model's config (zeroInit, which only picks the initial weights, may differ). The optimizer keeps
 * its own options (compare with the returned `optimizer.options` to detect a change); restore the
 * generator with Generator.fromState(checkpoint.generator). Returns the checkpoint.
 */
export async function resumeTraining(path: string, target: { net: UNet; optimizer?: AdamW; ema?: EMA }): Promise<Checkpoint> {
  if (typeof target !== 'object' || target === null || !(target.net instanceof UNet))
    throw new TypeError('resumeTraining: target must be {net: UNet, optimizer?, ema?}');
  const { net, optimizer, ema } = target;
  const ckpt = await readCheckpoint(path);
  const diffs = ARCH_KEYS.filter((k) => JSON.stringify(ckpt.config[k]) !== JSON.stringify(net.config[k])).map(
    (k) => `${k} ${JSON.stringify(ckpt.config[k])} in the file, ${JSON.stringify(net.config[k])} in the model`,
  );
  if (diffs.length > 0) throw invalid(path, `the checkpoint's config differs from the model's: ${diffs.join('; ')}`);
  if (optimizer !== undefined) {
    if (!ckpt.optimizer)
      throw invalid(path, 'an optimizer was given, but the checkpoint has no optimizer state ("optim.*" tensors, "kintsugi.optim")');
    if (optimizer.m.numel !== net.paramCount)
      throw new TypeError(
        `resumeTraining: the optimizer holds ${optimizer.m.numel} values per moment, the model ${net.paramCount} parameters`,
      );
  }
  if (ema !== undefined) {
    if (!ckpt.ema) throw invalid(path, 'an EMA was given, but the checkpoint has no EMA weights ("ema.*" tensors)');
    if (ema.params.numel !== net.paramCount)
      throw new TypeError(`resumeTraining: the EMA holds ${ema.params.numel} values, the model ${net.paramCount} parameters`);
  }
  net.setParams(ckpt.params);
  if (optimizer) optimizer.loadState(ckpt.optimizer!);
  if (ema) ema.load(ckpt.ema!);
  return ckpt;
}
