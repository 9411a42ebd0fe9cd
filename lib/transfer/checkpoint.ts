// Transfer checkpoints: one safetensors file with the encoder under `h.` and each head under `heads.<k>.`
// (`h.0.weight`, `heads.3.1.bias`, ...), the optimiser's moments under `optimizer.<group>.m|v`, and the
// configuration, step and phase in the metadata. Written atomically (writeSafetensors), so an interrupted
// save leaves the previous checkpoint whole and training resumes from it.
import { readSafetensors, writeSafetensors, type SafetensorsInput } from '../safetensors.ts';
import type { HostAdamW } from '../optim.ts';
import type { Mlp } from './mlp.ts';
import { TransferModel, resolveTransferConfig, type TransferConfig } from './model.ts';

export const FORMAT = 'kintsugi-transfer/1';

export interface TransferMeta {
  /** 'pretrain', 'finetune' or 'scratch'. */
  phase: string;
  step: number;
  /** Steps the run was asked for (resume checks it). */
  steps: number;
  seed: string;
  /** Anything else worth keeping (data description, options), as JSON. */
  extra?: Record<string, unknown>;
}

function netTensors(prefix: string, net: Mlp, out: Map<string, SafetensorsInput>): void {
  for (const t of net.tensors()) out.set(`${prefix}${t.name}`, { shape: t.shape, data: net.params.subarray(t.offset, t.offset + t.numel) });
}

export async function saveTransfer(path: string, model: TransferModel, meta: TransferMeta, optimizer?: HostAdamW): Promise<void> {
  const tensors = new Map<string, SafetensorsInput>();
  netTensors('h.', model.encoder, tensors);
  model.heads.forEach((head, k) => netTensors(`heads.${k}.`, head, tensors));
  if (model.config.gaussianSkip) {
    tensors.set('stats.mean', { shape: [model.mean.length], data: model.mean });
    tensors.set('stats.variance', { shape: [model.variance.length], data: model.variance });
  }
  if (optimizer)
    for (const [name, { m, v }] of optimizer.moments) {
      tensors.set(`optimizer.${name}.m`, { shape: [m.length], data: m });
      tensors.set(`optimizer.${name}.v`, { shape: [v.length], data: v });
    }
  await writeSafetensors(path, tensors, {
    format: FORMAT,
    config: JSON.stringify(model.config),
    heads: String(model.heads.length),
    phase: meta.phase,
    step: String(meta.step),
    steps: String(meta.steps),
    seed: meta.seed,
    optimizerStep: String(optimizer?.stepCount ?? 0),
    extra: JSON.stringify(meta.extra ?? {}),
  });
}

export interface LoadedTransfer {
  model: TransferModel;
  meta: TransferMeta;
  optimizer: { step: number; moments: Map<string, { m: Float32Array; v: Float32Array }> };
}

/** Reads a transfer checkpoint; every missing or misshapen tensor is an error naming the file and key. */
export async function loadTransfer(path: string): Promise<LoadedTransfer> {
  const file = await readSafetensors(path);
  const md = file.metadata ?? {};
  if (md.format !== FORMAT)
    throw new TypeError(`${path}: not a transfer checkpoint (metadata format ${JSON.stringify(md.format)}, expected "${FORMAT}")`);
  let config: TransferConfig;
  try {
    config = JSON.parse(md.config ?? '');
  } catch {
    throw new TypeError(`${path}: metadata "config" is not JSON`);
  }
  const heads = Number(md.heads);
  const model = new TransferModel(resolveTransferConfig(config), { heads });
  const fill = (prefix: string, net: Mlp) => {
    for (const t of net.tensors()) {
      const key = `${prefix}${t.name}`;
      const e = file.tensors.get(key);
      if (!e) throw new TypeError(`${path}: tensor "${key}" is missing`);
      if (e.shape.join(',') !== t.shape.join(','))
        throw new TypeError(`${path}: tensor "${key}" has shape [${e.shape}], expected [${t.shape}]`);
      net.params.set(e.data, t.offset);
    }
  };
  fill('h.', model.encoder);
  model.heads.forEach((head, k) => fill(`heads.${k}.`, head));
  if (model.config.gaussianSkip)
    for (const [key, into] of [
      ['stats.mean', model.mean],
      ['stats.variance', model.variance],
    ] as const) {
      const e = file.tensors.get(key);
      if (!e || e.data.length !== into.length)
        throw new TypeError(`${path}: tensor "${key}" is missing or has the wrong size (expected ${into.length} values)`);
      into.set(e.data);
    }
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const [key, e] of file.tensors) {
    const m = /^optimizer\.(.+)\.m$/.exec(key);
    if (!m) continue;
    const v = file.tensors.get(`optimizer.${m[1]}.v`);
    if (!v) throw new TypeError(`${path}: tensor "optimizer.${m[1]}.v" is missing`);
    moments.set(m[1]!, { m: e.data, v: v.data });
  }
  return {
    model,
    meta: {
      phase: md.phase ?? '',
      step: Number(md.step ?? 0),
      steps: Number(md.steps ?? 0),
      seed: md.seed ?? '0',
      extra: JSON.parse(md.extra ?? '{}'),
    },
    optimizer: { step: Number(md.optimizerStep ?? 0), moments },
  };
}
