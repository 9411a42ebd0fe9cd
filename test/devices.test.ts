// Devices, the default device and its override, and what the addon says about CUDA.
import { describe, expect, it } from 'vitest';
import { buildInfo, cudaStatus, defaultDevice, devices } from '../lib/index.ts';
import { runNode } from './support/node.ts';

describe('devices()', () => {
  it('lists the cpu first, then one entry per CUDA device', () => {
    const list = devices();
    expect(list[0]).toMatchObject({ device: 'cpu', type: 'cpu', computeCapability: null });
    expect(list[0]!.multiprocessors).toBeGreaterThanOrEqual(1);
    expect(list[0]!.totalMemory).toBeGreaterThan(0);
    const gpus = list.slice(1);
    expect(gpus.length).toBe(cudaStatus().deviceCount);
    gpus.forEach((g, i) => {
      expect(g.device).toBe(`cuda:${i}`);
      expect(g.computeCapability).toMatch(/^\d+\.\d$/);
      expect(g.totalMemory).toBeGreaterThan(0);
    });
  });

  it('cudaStatus explains an unavailable GPU and distinguishes no device from no/old driver', () => {
    const s = cudaStatus();
    if (s.deviceCount > 0) return expect(s.reason).toBeNull();
    expect(s.reason).toBeTruthy();
    if (!s.compiled) return expect(s.reason).toMatch(/without the CUDA backend/);
    if (s.code === 100) expect(s.reason).toMatch(/no CUDA device/);
    if (s.code === 35) expect(s.reason).toMatch(/driver/);
  });

  it('buildInfo names the loaded binary', () => {
    const info = buildInfo();
    expect(info.napiVersion).toBe(8);
    expect(info.binary).toMatch(/\.node$/);
  });
});

describe('default device', () => {
  it('is cuda:0 when a GPU is present, else cpu', () => {
    const saved = process.env.KINTSUGI_DEVICE;
    delete process.env.KINTSUGI_DEVICE;
    try {
      expect(defaultDevice()).toBe(cudaStatus().deviceCount > 0 ? 'cuda:0' : 'cpu');
    } finally {
      if (saved !== undefined) process.env.KINTSUGI_DEVICE = saved;
    }
  });

  it('KINTSUGI_DEVICE=cpu forces the CPU, and tensors are created there', () => {
    const out = runNode("import { zeros } from './lib/index.ts'; console.log(zeros([2]).device)", { KINTSUGI_DEVICE: 'cpu' });
    expect(out).toBe('cpu');
  });

  it('KINTSUGI_DEVICE with a bad value is a clear error', () => {
    expect(() => runNode("import { defaultDevice } from './lib/index.ts'; defaultDevice()", { KINTSUGI_DEVICE: 'tpu' })).toThrow(
      /KINTSUGI_DEVICE: expected "cpu", "cuda" or "cuda:N", got "tpu"/,
    );
  });

  it.skipIf(cudaStatus().deviceCount > 0)('KINTSUGI_DEVICE=cuda without a GPU says why', () => {
    expect(() => runNode("import { defaultDevice } from './lib/index.ts'; defaultDevice()", { KINTSUGI_DEVICE: 'cuda' })).toThrow(
      /KINTSUGI_DEVICE: cuda:0 is not available/,
    );
  });
});
