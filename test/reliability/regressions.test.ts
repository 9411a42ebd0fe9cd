// Regression tests for what the fuzzing found (docs/reliability.md), and checks that the fuzz harness
// itself fails when it should: a property that cannot fail proves nothing.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBootstrap } from '../../lib/bootstrap/run.ts';
import { readCheckpoint, saveCheckpoint } from '../../lib/checkpoint.ts';
import { readIdx } from '../../lib/data/idx.ts';
import { encodeNpy, readNpy } from '../../lib/data/npy.ts';
import { readMeasurementNpy } from '../../lib/data/measurements.ts';
import { readPng } from '../../lib/data/png.ts';
import { readDiffemState } from '../../lib/diffem/em.ts';
import { decodeSafetensors, encodeSafetensors, readSafetensors } from '../../lib/safetensors.ts';
import { UNet } from '../../lib/unet.ts';
import { fuzz, type FuzzTarget } from '../fuzz/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-regress-'));
const writeNpyBytes = (path: string, bytes: Uint8Array) => writeFileSync(path, bytes);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('found by fuzzing', () => {
  it('a checkpoint config with more residual blocks than the file has tensors is refused before its layout is built', async () => {
    const path = join(dir, 'blocks.safetensors');
    const net = new UNet({ inChannels: 1, channels: 4, mult: [1], resBlocks: 1, attnResolutions: [], resolution: 4 }, { device: 'cpu' });
    await saveCheckpoint(path, net);
    net.dispose();
    const file = decodeSafetensors(readFileSync(path));
    const config = JSON.parse(file.metadata['kintsugi.config']!);
    config.resBlocks = 65536;
    const tensors = new Map([...file.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
    writeFileSync(path, encodeSafetensors(tensors, { ...file.metadata, 'kintsugi.config': JSON.stringify(config) }));
    await expect(readCheckpoint(path)).rejects.toMatchObject({
      code: 'KINTSUGI_INVALID_CHECKPOINT',
      message: `${path}: "kintsugi.config" is not a valid UNet config: 1 levels of 65536 residual blocks need more tensors than the ${tensors.size} in the file`,
    });
  });

  it('a DiffEM state.json that is not an object, or whose shape is not an array, is refused with the file named', async () => {
    const d = join(dir, 'diffem');
    mkdirSync(d);
    const state = join(d, 'state.json');
    for (const text of ['null', '[]', '"x"', '{"format":"kintsugi-diffem-1","round":1.5}']) {
      writeFileSync(state, text);
      await expect(readDiffemState(d, [1, 1, 2, 2])).rejects.toThrow(
        `diffem: ${state} is not a DiffEM state file of format kintsugi-diffem-1 with a round number; remove it to start over`,
      );
    }
    writeFileSync(state, '{"format":"kintsugi-diffem-1","round":1,"shape":"x"}');
    await expect(readDiffemState(d, [1, 1, 2, 2])).rejects.toThrow(
      `diffem: ${state} belongs to a run on data of shape "x", these observations are [1, 1, 2, 2]`,
    );
  });

  it('a bootstrap manifest is checked field by field, with the file named', async () => {
    const path = join(dir, 'bootstrap.json');
    const valid = {
      format: 'kintsugi-bootstrap-1',
      schedule: { kind: 'linear' },
      full: 2,
      lowres: { factor: 2, prediction: 'v', checkpoint: 'lowres.safetensors' },
      residual: { checkpoint: 'residual.safetensors', conditioned: true, lambda: 0.1, penalty: 'l2' },
    };
    const cases: [unknown, string][] = [
      [undefined, `${path}: not a bootstrap manifest: `],
      [
        { ...valid, residual: undefined },
        `${path}: residual: expected an object {checkpoint, conditioned, lambda, penalty}, got undefined`,
      ],
      [
        { ...valid, schedule: { kind: 'linear', steps: 1e12 } },
        `${path}: schedule.steps: expected an integer up to 100000, got 1000000000000`,
      ],
      [
        { ...valid, lowres: { ...valid.lowres, checkpoint: 7 } },
        `${path}: lowres.checkpoint: expected a file name relative to the manifest, got 7`,
      ],
      [{ ...valid, lowres: undefined }, `${path}: the manifest has neither a "lowres" nor a "patch" view`],
    ];
    for (const [value, message] of cases) {
      writeFileSync(path, value === undefined ? '{"format": ' : JSON.stringify(value));
      await expect(loadBootstrap(path, { device: 'cpu' })).rejects.toThrow(message);
    }
  });

  it('.npy measurements with a zero-sized dimension are refused with the file named', async () => {
    const y = join(dir, 'zero-y.npy');
    const m = join(dir, 'zero-mask.npy');
    writeNpyBytes(y, encodeNpy({ shape: [0, 0, 0, 1], data: new Float32Array(0) }));
    writeNpyBytes(m, encodeNpy({ shape: [0, 1], data: new Float32Array(0) }));
    await expect(readMeasurementNpy(y, m, { sigma0: 0.1 })).rejects.toThrow(
      `${y}: measurements must be [N, C, H, W] with every size at least 1, got shape [0,0,0,1]`,
    );
  });

  it('a directory given as a file is refused with its path, by every reader', async () => {
    const d = join(dir, 'a-directory.bin');
    mkdirSync(d);
    for (const read of [readSafetensors, readPng, readNpy, readIdx] as ((p: string) => Promise<unknown>)[])
      await expect(read(d)).rejects.toMatchObject({ code: 'EISDIR', message: `${d}: cannot read: is a directory, not a file` });
  });
});

describe('the fuzz harness fails when it should', () => {
  const base = { arbitrary: fc.uint8Array({ maxLength: 16 }), bytesOf: (b: Uint8Array) => b, source: () => 'x.bin', codes: ['OK'] };
  it('on an internal JavaScript error', async () => {
    const target: FuzzTarget<Uint8Array> = {
      ...base,
      name: 'broken',
      allocationRatio: 8,
      run: (b) => (b as unknown as { x: { y: number } }).x.y,
    };
    await expect(fuzz(target, { runs: 50, seed: 1 })).rejects.toThrow(
      /an internal error escaped: TypeError: Cannot read properties of undefined/,
    );
  });
  it('on an error that does not name the file or carries the wrong code', async () => {
    const unnamed: FuzzTarget<Uint8Array> = {
      ...base,
      name: 'unnamed',
      allocationRatio: 8,
      run: () => {
        throw Object.assign(new Error('bad header'), { code: 'OK' });
      },
    };
    await expect(fuzz(unnamed, { runs: 20, seed: 1 })).rejects.toThrow(/does not name the file "x.bin"/);
    const uncoded: FuzzTarget<Uint8Array> = {
      ...base,
      name: 'uncoded',
      allocationRatio: 8,
      run: () => {
        throw new Error('x.bin: bad header');
      },
    };
    await expect(fuzz(uncoded, { runs: 20, seed: 1 })).rejects.toThrow(/error code undefined, expected one of OK/);
  });
  it('on an allocation out of proportion to the input', async () => {
    const greedy: FuzzTarget<Uint8Array> = { ...base, name: 'greedy', allocationRatio: 8, run: () => new Float64Array(1 << 20) };
    await expect(fuzz(greedy, { runs: 20, seed: 1 })).rejects.toThrow(/allocated 8388608 bytes for a \d+-byte input/);
  });
});
