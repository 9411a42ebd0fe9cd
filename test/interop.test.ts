// Checkpoints in PyTorch: a file written by saveCheckpoint loads with load_state_dict(strict=True) in the
// independent reference of test/interop/unet_torch.py (after it drops the "ema." and "optim." keys) and
// computes the same function, F32 and BF16; and a file written by that reference loads here.
// Runs only where /usr/bin/python3 imports torch (see test/interop/README.md); skipped elsewhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadUNet, saveCheckpoint } from '../lib/checkpoint.ts';
import { AdamW, EMA, Generator, presets, rand, randn, readSafetensors, tensor, UNet, writeSafetensors, type Tensor } from '../lib/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = '/usr/bin/python3';
const SCRIPT = 'test/interop/unet_torch.py';

function python(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, args, { cwd: root, encoding: 'utf8', timeout: 600_000 });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
}

const hasTorch = python(['-c', 'import torch, numpy']).status === 0;
const skipped = hasTorch ? '' : ' (skipped: /usr/bin/python3 has no torch)';

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `unet_torch.py check` and returns the relative L2 error it reports; fails the test on a non-zero exit. */
function check(ckpt: string, inputs: string, expected: string, tol: string): number {
  const r = python([SCRIPT, 'check', ckpt, inputs, expected, '--tol', tol]);
  const report = `${r.stdout}${r.stderr}`;
  const match = /relative L2 error (\S+)/.exec(r.stdout);
  console.log(`unet_torch.py check --tol ${tol}: ${match ? match[0] : report.trim()}`);
  expect(r.status, report).toBe(0);
  expect(match, report).not.toBeNull();
  return Number(match![1]);
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

async function forward(net: UNet, x: Tensor, t: Tensor): Promise<Float32Array> {
  const { out, tape } = net.forward(x, t);
  tape.release();
  const values = await out.toArray();
  out.dispose();
  return values;
}

describe('checkpoint interop with the PyTorch reference (test/interop/unet_torch.py)', () => {
  it.skipIf(!hasTorch)(
    `F32 and BF16 checkpoints (with EMA and optimizer state) load strictly and match our forward${skipped}`,
    async () => {
      // tiny16 with PyTorch-style initialisation (no zero layers), a few AdamW steps so that EMA, moments and
      // weights all differ, then the forward pass on fixed inputs.
      const config = { ...presets.tiny16, zeroInit: false };
      const net = new UNet(config, { device: 'cpu', seed: 0x5eed });
      const opt = new AdamW(net, { lr: 1e-3 });
      const ema = new EMA(net, 0.9);
      const gen = new Generator(42);
      for (let i = 0; i < 2; i++) {
        const x = randn([4, 1, 16, 16], { device: 'cpu', generator: gen });
        const t = rand([4], { device: 'cpu', generator: gen, low: 0, high: 1000 });
        const g = randn([4, 1, 16, 16], { device: 'cpu', generator: gen });
        const { out, tape } = net.forward(x, t);
        net.backward(tape, g);
        tape.release();
        opt.step();
        ema.update();
        net.zeroGrad();
        for (const z of [x, t, g, out]) z.dispose();
      }
      const params = await net.params.toArray();
      for (const p of net.layout)
        expect(
          params.subarray(p.offset, p.offset + p.numel).some((v) => v !== 0),
          `${p.name} is all zero`,
        ).toBe(true);

      const x = randn([2, 1, 16, 16], { device: 'cpu', generator: new Generator(7) });
      const t = tensor([5, 900], [2], { device: 'cpu' });
      const inputs = join(dir, 'inputs.safetensors');
      await writeSafetensors(inputs, { x: { shape: x.shape, data: await x.toArray() }, t: { shape: [2], data: await t.toArray() } });
      const outShape = [2, 1, 16, 16];

      // F32: the file's weights are ours exactly; only float32 vs float64 arithmetic differs.
      const ckpt = join(dir, 'ckpt.safetensors');
      await saveCheckpoint(ckpt, net, { optimizer: opt, ema, generator: gen });
      const file = await readSafetensors(ckpt);
      expect([...file.tensors.keys()].some((k) => k.startsWith('ema.'))).toBe(true);
      expect([...file.tensors.keys()].some((k) => k.startsWith('optim.m.'))).toBe(true);
      const out = await forward(net, x, t);
      const expected = join(dir, 'expected.safetensors');
      await writeSafetensors(expected, { out: { shape: outShape, data: out } });
      const f32Err = check(ckpt, inputs, expected, '1e-5');
      expect(f32Err).toBeLessThan(1e-5);

      // BF16: against our forward with the same bf16-rounded weights (as tight as F32), and against the
      // F32 forward (the effect of rounding the weights, a looser bound).
      const ckptBf16 = join(dir, 'ckpt-bf16.safetensors');
      await saveCheckpoint(ckptBf16, net, { optimizer: opt, ema, dtype: 'BF16' });
      const rounded = await loadUNet(ckptBf16, { device: 'cpu' });
      const outBf16 = await forward(rounded, x, t);
      rounded.dispose();
      const expectedBf16 = join(dir, 'expected-bf16.safetensors');
      await writeSafetensors(expectedBf16, { out: { shape: outShape, data: outBf16 } });
      const bf16Err = check(ckptBf16, inputs, expectedBf16, '1e-5');
      expect(bf16Err).toBeLessThan(1e-5);
      const bf16VsF32 = check(ckptBf16, inputs, expected, '2e-2');
      expect(bf16VsF32).toBeLessThan(2e-2);
      console.log(`bf16 weights vs f32 weights, our forward: relative L2 ${relL2(outBf16, out).toExponential(3)}`);

      for (const z of [x, t]) z.dispose();
      opt.dispose();
      ema.dispose();
      net.dispose();
    },
  );

  it.skipIf(!hasTorch)(
    `a checkpoint written by the PyTorch reference loads with loadUNet and computes the same function${skipped}`,
    async () => {
      const ckpt = join(dir, 'torch-ckpt.safetensors');
      const io = join(dir, 'torch-io.safetensors');
      const code = `
import sys, torch
sys.path.insert(0, 'test/interop')
from unet_torch import UNet, PRESETS, save_checkpoint, write_safetensors
torch.manual_seed(3)
model = UNet(PRESETS['tiny16'])
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.05 * torch.randn_like(p))   # no zero biases, GroupNorm weights away from 1
save_checkpoint(sys.argv[1], model, {'kintsugi.step': '17', 'origin': 'torch'})
x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
t = torch.tensor([5.0, 900.0], dtype=torch.float64)
with torch.no_grad():
    out = model.double()(x, t)
write_safetensors(sys.argv[2], [('x', x.float()), ('t', t.float()), ('out', out)])
`;
      const r = python(['-c', code, ckpt, io]);
      expect(r.status, r.stderr).toBe(0);
      const net = await loadUNet(ckpt, { device: 'cpu' });
      const data = await readSafetensors(io);
      const x = tensor(data.tensors.get('x')!.data, [2, 1, 16, 16], { device: 'cpu' });
      const t = tensor(data.tensors.get('t')!.data, [2], { device: 'cpu' });
      const err = relL2(await forward(net, x, t), data.tensors.get('out')!.data);
      console.log(`PyTorch-written checkpoint, our forward vs PyTorch float64: relative L2 ${err.toExponential(3)}`);
      expect(err).toBeLessThan(1e-5);
      for (const z of [x, t]) z.dispose();
      net.dispose();
    },
  );
});
