// Checkpoints (lib/checkpoint.ts): bit-exact round trips, BF16, resuming training bit-identically,
// loading for sampling, and every way a file is rejected, each with its message.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadUNet, readCheckpoint, resumeTraining, saveCheckpoint } from '../lib/checkpoint.ts';
import {
  AdamW,
  EMA,
  encodeSafetensors,
  Generator,
  rand,
  randn,
  readSafetensors,
  tensor,
  UNet,
  type AdamWOptions,
  type UNetConfig,
} from '../lib/index.ts';
import { bf16BitsToFloat32, float32ToBf16Bits, type SafetensorsInput } from '../lib/safetensors.ts';
import { cudaSkipReason, hasCuda } from './helpers.ts';

const CFG: UNetConfig = { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [4], resolution: 8 };
const OPT: AdamWOptions = { lr: 2e-3, betas: [0.9, 0.99], weightDecay: 0.01, warmupSteps: 4, maxGradNorm: 1 };
const DECAY = 0.9;
const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const fresh = (name = 'ckpt') => join(dir, `${name}-${counter++}.safetensors`);

interface Run {
  net: UNet;
  opt: AdamW;
  ema: EMA;
  gen: Generator;
}

function setup(seed = 7): Run {
  const net = new UNet(CFG, { device: 'cpu', seed });
  return { net, opt: new AdamW(net, OPT), ema: new EMA(net, DECAY), gen: new Generator(1234) };
}

/** `steps` training steps with x, t and the output gradient drawn from the run's generator. */
function train({ net, opt, ema, gen }: Run, steps: number): void {
  for (let i = 0; i < steps; i++) {
    const x = randn([2, 1, 8, 8], { device: 'cpu', generator: gen });
    const t = rand([2], { device: 'cpu', generator: gen, low: 0, high: 1000 });
    const gout = randn([2, 1, 8, 8], { device: 'cpu', generator: gen });
    const { out, tape } = net.forward(x, t);
    net.backward(tape, gout);
    tape.release();
    opt.step();
    ema.update();
    net.zeroGrad();
    for (const z of [x, t, gout, out]) z.dispose();
  }
}

function dispose(r: Run): void {
  r.opt.dispose();
  r.ema.dispose();
  r.net.dispose();
}

/** Bit patterns, so that equality is bit-exact (and -0 differs from 0). */
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
function expectBitEqual(actual: Float32Array, expected: Float32Array, what = ''): void {
  expect(actual.length, what).toBe(expected.length);
  expect(
    Buffer.from(bits(actual).buffer, actual.byteOffset, actual.byteLength).equals(
      Buffer.from(bits(expected).buffer, expected.byteOffset, expected.byteLength),
    ),
    what,
  ).toBe(true);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// A trained run saved once, the source of the hostile files below.
const base = setup();
train(base, 3);
const basePath = fresh('base');
await saveCheckpoint(basePath, base.net, { optimizer: base.opt, ema: base.ema, generator: base.gen });
const baseFile = await readSafetensors(basePath);

describe('saveCheckpoint / readCheckpoint round trip', () => {
  it('F32 is bit-exact: weights, EMA, moments, step, generator, prediction, schedule, user metadata', async () => {
    const r = setup(3);
    train(r, 3);
    const path = fresh();
    const schedule = { kind: 'cosine', steps: 1000, s: 0.008, nested: [1, 2.5, null] };
    await saveCheckpoint(path, r.net, {
      optimizer: r.opt,
      ema: r.ema,
      generator: r.gen,
      prediction: 'v',
      schedule,
      metadata: { run: 'abc', note: 'üñí "quoted"' },
    });
    const ck = await readCheckpoint(path);
    expectBitEqual(ck.params, await r.net.params.toArray(), 'params');
    expectBitEqual(ck.ema!, await r.ema.params.toArray(), 'ema');
    expectBitEqual(ck.optimizer!.m, await r.opt.m.toArray(), 'm');
    expectBitEqual(ck.optimizer!.v, await r.opt.v.toArray(), 'v');
    expect(ck.optimizer!.step).toBe(3);
    expect(ck.optimizer!.options).toEqual({ ...r.opt.options });
    expect(ck.step).toBe(3);
    expect(ck.generator).toEqual(r.gen.getState());
    expect(ck.generator!.offset).not.toBe('0');
    expect(ck.prediction).toBe('v');
    expect(ck.schedule).toEqual(schedule);
    expect(ck.metadata).toEqual({ run: 'abc', note: 'üñí "quoted"' });
    expect(ck.config).toEqual({ ...r.net.config });
    dispose(r);
  });

  it('writes the documented keys, order, dtypes and metadata', async () => {
    const names = base.net.layout.map((p) => p.name);
    const keys = [...baseFile.tensors.keys()];
    expect(keys).toEqual([
      ...names,
      ...names.map((n) => `ema.${n}`),
      ...names.map((n) => `optim.m.${n}`),
      ...names.map((n) => `optim.v.${n}`),
    ]);
    for (const [name, e] of baseFile.tensors) expect(e.dtype, name).toBe('F32');
    const m = baseFile.metadata;
    expect(m['kintsugi.format']).toBe('1');
    expect(JSON.parse(m['kintsugi.config']!)).toEqual({
      inChannels: 1,
      outChannels: 1,
      channels: 8,
      mult: [1, 2],
      resBlocks: 1,
      attnResolutions: [4],
      resolution: 8,
      zeroInit: true,
    });
    expect(Object.keys(JSON.parse(m['kintsugi.config']!))).toEqual([
      'inChannels',
      'outChannels',
      'channels',
      'mult',
      'resBlocks',
      'attnResolutions',
      'resolution',
      'zeroInit',
    ]);
    expect(m['kintsugi.step']).toBe('3');
    expect(m['kintsugi.prediction']).toBe('eps');
    expect(m['kintsugi.schedule']).toBe('null');
    expect(JSON.parse(m['kintsugi.optim']!)).toEqual({
      step: 3,
      lr: 2e-3,
      betas: [0.9, 0.99],
      eps: 1e-8,
      weightDecay: 0.01,
      warmupSteps: 4,
      maxGradNorm: 1,
    });
    expect(JSON.parse(m['kintsugi.generator']!)).toEqual(base.gen.getState());
  });

  it('a model alone: no ema.*/optim.* keys, step 0 (or as given), schedule null', async () => {
    const net = new UNet(CFG, { device: 'cpu', seed: 5 });
    const path = fresh();
    await saveCheckpoint(path, net);
    const file = await readSafetensors(path);
    expect(file.tensors.size).toBe(net.layout.length);
    expect(Object.keys(file.metadata).sort()).toEqual([
      'kintsugi.config',
      'kintsugi.format',
      'kintsugi.prediction',
      'kintsugi.schedule',
      'kintsugi.step',
    ]);
    const ck = await readCheckpoint(path);
    expect(ck.ema).toBeUndefined();
    expect(ck.optimizer).toBeUndefined();
    expect(ck.generator).toBeUndefined();
    expect(ck).toMatchObject({ step: 0, prediction: 'eps', schedule: null, metadata: {} });
    expectBitEqual(ck.params, await net.params.toArray());
    await saveCheckpoint(path, net, { step: 12345 });
    expect((await readCheckpoint(path)).step).toBe(12345);
    net.dispose();
  });

  it('BF16: weights and EMA rounded to nearest even (relative error <= 2^-8), moments exact F32', async () => {
    const path = fresh();
    await saveCheckpoint(path, base.net, { optimizer: base.opt, ema: base.ema, dtype: 'BF16' });
    const file = await readSafetensors(path);
    for (const [name, e] of file.tensors) expect(e.dtype, name).toBe(name.startsWith('optim.') ? 'F32' : 'BF16');
    const ck = await readCheckpoint(path);
    for (const [got, want] of [
      [ck.params, await base.net.params.toArray()],
      [ck.ema!, await base.ema.params.toArray()],
    ] as const) {
      let worst = 0;
      let notRne = 0;
      for (let i = 0; i < want.length; i++) {
        if (got[i] !== bf16BitsToFloat32(float32ToBf16Bits(want[i]!))) notRne++;
        if (want[i] !== 0) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.abs(want[i]!));
      }
      expect(notRne).toBe(0);
      expect(worst).toBeLessThanOrEqual(2 ** -8);
      expect(worst).toBeGreaterThan(0);
    }
    expectBitEqual(ck.optimizer!.m, await base.opt.m.toArray());
    expectBitEqual(ck.optimizer!.v, await base.opt.v.toArray());
    const f32Size = readFileSync(basePath).length;
    expect(readFileSync(path).length).toBeLessThan(f32Size);
  });

  it('waits for queued device work: a step queued just before saving is in the file', async () => {
    const r = setup(11);
    train(r, 2); // queued, not awaited
    const path = fresh();
    await saveCheckpoint(path, r.net, { optimizer: r.opt, ema: r.ema });
    const ck = await readCheckpoint(path);
    expect(ck.optimizer!.step).toBe(2);
    expectBitEqual(ck.params, await r.net.params.toArray());
    expectBitEqual(ck.optimizer!.v, await r.opt.v.toArray());
    dispose(r);
  });
});

describe('resumeTraining', () => {
  it('save after 3 steps, resume into fresh objects, 4 more: bit-identical to 7 uninterrupted steps', async () => {
    const whole = setup();
    train(whole, 7);

    const first = setup();
    train(first, 3);
    const path = fresh();
    await saveCheckpoint(path, first.net, { optimizer: first.opt, ema: first.ema, generator: first.gen });
    dispose(first);

    // Different initial weights and a generator at another position: everything must come from the file.
    const net = new UNet(CFG, { device: 'cpu', seed: 999 });
    const second: Run = { net, opt: new AdamW(net, OPT), ema: new EMA(net, DECAY), gen: new Generator(1) };
    const ck = await resumeTraining(path, { net: second.net, optimizer: second.opt, ema: second.ema });
    second.gen = Generator.fromState(ck.generator!);
    expect(second.opt.stepCount).toBe(3);
    expect(ck.step).toBe(3);
    train(second, 4);

    expect(second.opt.stepCount).toBe(7);
    expectBitEqual(await second.net.params.toArray(), await whole.net.params.toArray(), 'params');
    expectBitEqual(await second.ema.params.toArray(), await whole.ema.params.toArray(), 'ema');
    expectBitEqual(await second.opt.m.toArray(), await whole.opt.m.toArray(), 'm');
    expectBitEqual(await second.opt.v.toArray(), await whole.opt.v.toArray(), 'v');
    expect(second.gen.getState()).toEqual(whole.gen.getState());
    dispose(whole);
    dispose(second);
  });

  it('rejects a different architecture, or missing optimizer/EMA state, and then changes nothing', async () => {
    const other = new UNet({ ...CFG, channels: 16, mult: [1, 1] }, { device: 'cpu' });
    await expect(resumeTraining(basePath, { net: other })).rejects.toThrow(
      new RegExp(
        `^${escape(basePath)}: the checkpoint's config differs from the model's: channels 8 in the file, 16 in the model; mult \\[1,2\\] in the file, \\[1,1\\] in the model$`,
      ),
    );
    other.dispose();

    const modelOnly = fresh();
    await saveCheckpoint(modelOnly, base.net);
    const r = setup(21);
    const before = await r.net.params.toArray();
    await expect(resumeTraining(modelOnly, { net: r.net, optimizer: r.opt })).rejects.toThrow(
      /: an optimizer was given, but the checkpoint has no optimizer state/,
    );
    await expect(resumeTraining(modelOnly, { net: r.net, ema: r.ema })).rejects.toThrow(
      /: an EMA was given, but the checkpoint has no EMA weights/,
    );
    expectBitEqual(await r.net.params.toArray(), before, 'params untouched after a failed resume');
    expect(r.opt.stepCount).toBe(0);

    // zeroInit only picks initial weights: a model built with zeroInit false resumes from a zeroInit true file.
    const noZero = new UNet({ ...CFG, zeroInit: false }, { device: 'cpu' });
    await resumeTraining(modelOnly, { net: noZero });
    expectBitEqual(await noZero.params.toArray(), await base.net.params.toArray());
    noZero.dispose();
    dispose(r);
  });
});

describe('loadUNet', () => {
  it('builds the model from the file; useEma picks the EMA weights', async () => {
    const net = await loadUNet(basePath, { device: 'cpu' });
    expect(net.config).toEqual(base.net.config);
    expectBitEqual(await net.params.toArray(), await base.net.params.toArray());
    const emaNet = await loadUNet(basePath, { device: 'cpu', useEma: true });
    const emaWeights = await base.ema.params.toArray();
    expectBitEqual(await emaNet.params.toArray(), emaWeights);
    expect(Buffer.from(emaWeights.buffer).equals(Buffer.from((await base.net.params.toArray()).buffer))).toBe(false);

    // Same function as the original.
    const x = randn([2, 1, 8, 8], { device: 'cpu', generator: new Generator(5) });
    const t = tensor([5, 900], [2], { device: 'cpu' });
    const a = base.net.forward(x, t);
    const b = net.forward(x, t);
    expectBitEqual(await b.out.toArray(), await a.out.toArray());
    for (const z of [a.out, b.out]) z.dispose();
    a.tape.release();
    b.tape.release();
    net.dispose();
    emaNet.dispose();
  });

  it('useEma on a file without EMA weights is an error', async () => {
    const path = fresh();
    await saveCheckpoint(path, base.net);
    await expect(loadUNet(path, { device: 'cpu', useEma: true })).rejects.toThrow(
      new RegExp(`^${escape(path)}: useEma: the checkpoint has no EMA weights`),
    );
  });
});

describe.skipIf(!hasCuda)(`across devices: cpu <-> cuda:0 ${cudaSkipReason}`, () => {
  it('a checkpoint saved from cuda:0 loads on the CPU, and one saved on the CPU resumes on cuda:0, bit-exact', async () => {
    const net = new UNet(CFG, { device: 'cuda:0', seed: 31 });
    const opt = new AdamW(net, OPT);
    const ema = new EMA(net, DECAY);
    net.grads.fill_(0.25);
    opt.step(); // queued on the GPU; saving waits for it
    ema.update();
    const path = fresh('cuda');
    await saveCheckpoint(path, net, { optimizer: opt, ema });
    const cpuNet = await loadUNet(path, { device: 'cpu' });
    expectBitEqual(await cpuNet.params.toArray(), await net.params.toArray());
    cpuNet.dispose();

    const target = new UNet(CFG, { device: 'cuda:0', seed: 1 });
    const targetOpt = new AdamW(target, OPT);
    const targetEma = new EMA(target, DECAY);
    await resumeTraining(basePath, { net: target, optimizer: targetOpt, ema: targetEma });
    expectBitEqual(await target.params.toArray(), await base.net.params.toArray(), 'params');
    expectBitEqual(await targetEma.params.toArray(), await base.ema.params.toArray(), 'ema');
    expectBitEqual(await targetOpt.v.toArray(), await base.opt.v.toArray(), 'v');
    expect(targetOpt.stepCount).toBe(3);
    for (const o of [opt, ema, net, targetOpt, targetEma, target]) o.dispose();
  });
});

describe('readCheckpoint rejects invalid files, naming the file and the key', () => {
  /** The base checkpoint's tensors and metadata, changed by `edit`, written to a new file. */
  function hostile(edit: (tensors: Map<string, SafetensorsInput>, meta: Record<string, string>) => void): string {
    const tensors = new Map<string, SafetensorsInput>();
    for (const [k, e] of baseFile.tensors) tensors.set(k, { shape: e.shape, data: e.data.slice() });
    const meta = { ...baseFile.metadata };
    edit(tensors, meta);
    const path = fresh('hostile');
    writeFileSync(path, encodeSafetensors(tensors, meta));
    return path;
  }
  async function rejects(path: string, re: RegExp): Promise<void> {
    const err = await readCheckpoint(path).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err, 'readCheckpoint should have thrown').toBeInstanceOf(Error);
    expect(err!.message.startsWith(`${path}: `), err!.message).toBe(true);
    expect(err!.message).toMatch(re);
  }
  const set = (tensors: Map<string, SafetensorsInput>, name: string, index: number, value: number) => {
    tensors.get(name)!.data[index] = value;
  };

  it('the unedited copy is accepted (control)', async () => {
    const ck = await readCheckpoint(hostile(() => {}));
    expect(ck.step).toBe(3);
  });

  it('no or unparsable "kintsugi.config": not a kintsugi checkpoint', async () => {
    await rejects(
      hostile((_, m) => delete m['kintsugi.config']),
      /not a kintsugi checkpoint: __metadata__ has no "kintsugi\.config"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = '{"inChannels":1,')),
      /not a kintsugi checkpoint: "kintsugi\.config" is not valid JSON/,
    );
    // A plain safetensors file without metadata at all.
    const plain = fresh('plain');
    writeFileSync(plain, encodeSafetensors({ w: { shape: [2], data: new Float32Array(2) } }));
    await rejects(plain, /not a kintsugi checkpoint/);
  });

  it('a config the library rejects: its message is passed on', async () => {
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = JSON.stringify({ ...CFG, resolution: 7 }))),
      /"kintsugi\.config" is not a valid UNet config: unet config: resolution must be divisible by 2\^\(levels-1\) = 2, got 7/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = JSON.stringify({ ...CFG, channels: 8.5 }))),
      /not a valid UNet config: .*channels must be an integer/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = '"tiny16"')),
      /not a valid UNet config: expected a JSON object, got "tiny16"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = '{"inChannels":1}')),
      /not a valid UNet config: missing "channels"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = JSON.stringify({ ...CFG, mult: 2 }))),
      /not a valid UNet config: mult must be an array, got 2/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.config'] = JSON.stringify({ ...CFG, zeroInit: 'yes' }))),
      /not a valid UNet config: zeroInit must be a boolean, got "yes"/,
    );
  });

  it('an unknown format version', async () => {
    await rejects(
      hostile((_, m) => (m['kintsugi.format'] = '2')),
      /unsupported checkpoint format "2" in "kintsugi\.format" \(this version reads "1"\)/,
    );
  });

  it('a model tensor missing, misshaped or unexpected', async () => {
    await rejects(
      hostile((t) => t.delete('out.conv.bias')),
      /1 of 128 model tensors missing: "out\.conv\.bias"$/,
    );
    await rejects(
      hostile((t) => {
        for (const k of [...t.keys()].filter((k) => k.startsWith('mid.')).slice(0, 7)) t.delete(k);
      }),
      /7 of 128 model tensors missing: "mid\.0\.norm1\.weight", "mid\.0\.norm1\.bias", "mid\.0\.conv1\.weight", "mid\.0\.conv1\.bias", "mid\.0\.time\.weight" \(and 2 more\)$/,
    );
    await rejects(
      hostile((t) => (t.get('conv_in.weight')!.shape = [8, 1, 9])),
      /tensor "conv_in\.weight" has shape \[8,1,9\], the config needs \[8,1,3,3\]/,
    );
    await rejects(
      hostile((t) => (t.get('ema.out.conv.weight')!.shape = [1, 8, 9])),
      /tensor "ema\.out\.conv\.weight" has shape \[1,8,9\], the config needs \[1,8,3,3\]/,
    );
    await rejects(
      hostile((t) => t.set('foo.weight', { shape: [1], data: new Float32Array(1) })),
      /1 unexpected tensor\(s\) for this config: "foo\.weight"/,
    );
  });

  it('unknown keys under the reserved prefixes', async () => {
    await rejects(
      hostile((t) => {
        t.set('optim.s.conv_in.bias', { shape: [8], data: new Float32Array(8) });
        t.set('ema.nope', { shape: [1], data: new Float32Array(1) });
        t.set('optim.m.nope', { shape: [1], data: new Float32Array(1) });
      }),
      /3 unknown tensor\(s\) under a reserved prefix .*: "optim\.s\.conv_in\.bias", "ema\.nope", "optim\.m\.nope"$/,
    );
  });

  it('incomplete EMA or optimizer state', async () => {
    await rejects(
      hostile((t) => t.delete('ema.out.conv.bias')),
      /incomplete EMA weights: 127 of 128 "ema\." tensors present, missing "ema\.out\.conv\.bias"$/,
    );
    await rejects(
      hostile((t) => t.delete('optim.v.time.linear1.bias')),
      /incomplete optimizer state: 255 of 256 "optim\." tensors present, missing "optim\.v\.time\.linear1\.bias"$/,
    );
    await rejects(
      hostile((t) => {
        for (const k of [...t.keys()]) if (k.startsWith('optim.v.')) t.delete(k);
      }),
      /incomplete optimizer state: 128 of 256 "optim\." tensors present, missing "optim\.v\.time\.linear1\.weight"/,
    );
    await rejects(
      hostile((_, m) => delete m['kintsugi.optim']),
      /incomplete optimizer state: the moments are present but __metadata__ has no "kintsugi\.optim"/,
    );
    await rejects(
      hostile((t) => {
        for (const k of [...t.keys()]) if (k.startsWith('optim.')) t.delete(k);
      }),
      /incomplete optimizer state: 0 of 256 "optim\." tensors present/,
    );
  });

  it('NaN or Inf in the model or EMA weights (tensor and count named), or in the moments', async () => {
    await rejects(
      hostile((t) => {
        set(t, 'time.linear1.weight', 0, NaN);
        set(t, 'time.linear1.weight', 5, Infinity);
        set(t, 'time.linear1.weight', 9, -Infinity);
      }),
      /tensor "time\.linear1\.weight" has 3 NaN or infinite value\(s\) of 256$/,
    );
    await rejects(
      hostile((t) => set(t, 'ema.conv_in.bias', 2, NaN)),
      /tensor "ema\.conv_in\.bias" has 1 NaN or infinite value\(s\) of 8$/,
    );
    await rejects(
      hostile((t) => set(t, 'optim.m.out.conv.bias', 0, NaN)),
      /tensor "optim\.m\.out\.conv\.bias" has 1 NaN or infinite value\(s\) of 1$/,
    );
  });

  it('an optimizer step that is not a non-negative integer', async () => {
    const withStep = (step: unknown) => (_: unknown, m: Record<string, string>) =>
      (m['kintsugi.optim'] = JSON.stringify({ ...JSON.parse(m['kintsugi.optim']!), step }));
    await rejects(hostile(withStep(-1)), /"kintsugi\.optim": optimizer step must be a non-negative integer, got -1/);
    await rejects(hostile(withStep(1.5)), /"kintsugi\.optim": optimizer step must be a non-negative integer, got 1\.5/);
    await rejects(hostile(withStep('3')), /"kintsugi\.optim": optimizer step must be a non-negative integer, got "3"/);
    await rejects(hostile(withStep(undefined)), /"kintsugi\.optim": optimizer step must be a non-negative integer, got nothing/);
    await rejects(
      hostile((_, m) => (m['kintsugi.optim'] = 'step=3')),
      /"kintsugi\.optim" is not valid JSON/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.optim'] = JSON.stringify({ ...JSON.parse(m['kintsugi.optim']!), betas: [0.9, 1] }))),
      /"kintsugi\.optim": betas must be two numbers in \[0, 1\), got \[0\.9,1\]/,
    );
  });

  it('a negative second moment', async () => {
    await rejects(
      hostile((t) => {
        set(t, 'optim.v.conv_in.weight', 0, -1e-12);
        set(t, 'optim.v.conv_in.weight', 3, -2);
      }),
      /tensor "optim\.v\.conv_in\.weight" has 2 negative value\(s\); a second moment is never negative/,
    );
    // A negative first moment is fine.
    const ck = await readCheckpoint(hostile((t) => set(t, 'optim.m.conv_in.weight', 0, -2)));
    expect(ck.optimizer!.m[base.net.layout.find((p) => p.name === 'conv_in.weight')!.offset]).toBe(-2);
  });

  it('bad step, prediction, schedule or generator metadata', async () => {
    await rejects(
      hostile((_, m) => (m['kintsugi.step'] = '-3')),
      /"kintsugi\.step" must be a non-negative integer, got "-3"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.step'] = '1e3')),
      /"kintsugi\.step" must be a non-negative integer, got "1e3"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.prediction'] = 'score')),
      /"kintsugi\.prediction" must be "eps", "x0" or "v", got "score"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.schedule'] = '{cosine}')),
      /"kintsugi\.schedule" is not valid JSON/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.generator'] = '{"seed":"1","offset":"-4","stream":"0"}')),
      /"kintsugi\.generator": offset must be a decimal string, got "-4"/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.generator'] = '{"seed":"18446744073709551616","offset":"0","stream":"0"}')),
      /"kintsugi\.generator": .*seed/,
    );
    await rejects(
      hostile((_, m) => (m['kintsugi.generator'] = '[1]')),
      /"kintsugi\.generator": expected an object \{seed, offset, stream\}/,
    );
  });

  it('a truncated file is rejected by the safetensors reader, naming the file', async () => {
    const bytes = readFileSync(basePath);
    const path = fresh('truncated');
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    await rejects(path, /belong to no tensor|beyond|truncated/);
  });

  it('a file written by PyTorch (F64 weights, no format key, no zeroInit, no EMA) loads', async () => {
    const path = hostile((t, m) => {
      for (const k of [...t.keys()]) if (k.startsWith('ema.') || k.startsWith('optim.')) t.delete(k);
      for (const k of Object.keys(m)) delete m[k];
      const { zeroInit: _, ...config } = base.net.config;
      m['kintsugi.config'] = JSON.stringify(config);
      m.origin = 'torch';
    });
    const ck = await readCheckpoint(path);
    expectBitEqual(ck.params, await base.net.params.toArray());
    expect(ck).toMatchObject({ step: 0, prediction: 'eps', schedule: null, metadata: { origin: 'torch' } });
    expect(ck.config.zeroInit).toBe(true);
  });
});

describe('saveCheckpoint refuses bad input and never leaves a partial file', () => {
  const listing = (d: string) => readdirSync(d).sort();

  it('into a missing directory: an error, and nothing is created', async () => {
    const missing = join(dir, 'no-such-dir', 'ckpt.safetensors');
    await expect(saveCheckpoint(missing, base.net)).rejects.toThrow(/no-such-dir.*cannot create a temporary file/);
    expect(readdirSync(dir)).not.toContain('no-such-dir');
  });

  it('a failing save over an existing checkpoint leaves it intact, with no temporary file beside it', async () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const path = join(sub, 'model.safetensors');
    await saveCheckpoint(path, base.net, { optimizer: base.opt, ema: base.ema });
    const before = readFileSync(path);

    const broken = new UNet(CFG, { device: 'cpu' });
    const values = await broken.params.toArray();
    values[17] = NaN;
    broken.setParams(values);
    await expect(saveCheckpoint(path, broken)).rejects.toThrow(
      /parameter "time\.linear1\.weight" has 1 NaN or infinite values; refusing to write/,
    );
    await expect(saveCheckpoint(path, base.net, { metadata: { 'kintsugi.step': '9' } })).rejects.toThrow(/"kintsugi\." prefix is reserved/);
    await expect(saveCheckpoint(path, base.net, { prediction: 'score' as 'eps' })).rejects.toThrow(/prediction must be "eps", "x0" or "v"/);
    await expect(saveCheckpoint(path, base.net, { dtype: 'F16' as 'F32' })).rejects.toThrow(/dtype must be "F32" or "BF16"/);
    await expect(saveCheckpoint(path, base.net, { step: -1 })).rejects.toThrow(/step must be a non-negative integer/);
    await expect(saveCheckpoint(path, base.net, { schedule: { T: 10n } })).rejects.toThrow(/schedule must be JSON-serialisable/);
    await expect(saveCheckpoint(path, base.net, { metadata: { n: 3 as unknown as string } })).rejects.toThrow(
      /metadata\["n"\] must be a string/,
    );
    const small = new UNet({ ...CFG, channels: 4 }, { device: 'cpu' });
    const smallOpt = new AdamW(small);
    await expect(saveCheckpoint(path, base.net, { optimizer: smallOpt })).rejects.toThrow(
      /the optimizer holds \d+ values per moment, the model 44969 parameters/,
    );
    smallOpt.dispose();
    small.dispose();

    // A file read would reject is not written: the EMA's NaN is caught as well.
    const ema = new EMA(broken, 0.5);
    await expect(saveCheckpoint(path, base.net, { ema })).rejects.toThrow(/EMA weight "ema\.time\.linear1\.weight" has 1 NaN/);
    ema.dispose();
    broken.dispose();

    expect(readFileSync(path).equals(before)).toBe(true);
    expect(listing(sub)).toEqual(['model.safetensors']);

    // A successful overwrite replaces it and leaves no temporary file either.
    await saveCheckpoint(path, base.net, { step: 77 });
    expect((await readCheckpoint(path)).step).toBe(77);
    expect(listing(sub)).toEqual(['model.safetensors']);
  });

  const isRoot = process.getuid?.() === 0;
  it.skipIf(isRoot)(
    `an I/O failure (read-only directory) leaves the existing checkpoint intact${isRoot ? ' (skipped: running as root, permissions are not enforced)' : ''}`,
    async () => {
      const sub = join(dir, 'readonly');
      mkdirSync(sub);
      const path = join(sub, 'model.safetensors');
      await saveCheckpoint(path, base.net);
      const before = readFileSync(path);
      chmodSync(sub, 0o555);
      try {
        await expect(saveCheckpoint(path, base.net, { step: 5 })).rejects.toThrow(/cannot create a temporary file/);
      } finally {
        chmodSync(sub, 0o755);
      }
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(listing(sub)).toEqual(['model.safetensors']);
    },
  );
});
