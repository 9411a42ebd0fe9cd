// The CPU kernels' instruction-set variants (native/cpu/isa/, docs/cpu.md): every variant this
// processor supports against the double reference, the fallback forced by KINTSUGI_CPU_ISA, the
// refusal of a bad value, and results independent of the thread pool's size. The variant and the pool
// are fixed when the addon loads, so each case runs in a child process (cpu-variant.child.ts): about
// 5 s of CPU time each, mostly start-up; the generous timeouts are for heavily loaded machines.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildInfo } from '../../lib/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const supported = buildInfo().cpuIsaSupported.split(',');

function child(mode: string, env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  const args = [
    '--import',
    pathToFileURL(join(root, 'test/support/register-ts.mjs')).href,
    join(root, 'test/unet/cpu-variant.child.ts'),
    mode,
  ];
  const clean = { ...process.env };
  delete clean.KINTSUGI_CPU_ISA;
  delete clean.KINTSUGI_CPU_THREADS;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...env } });
    let out = '',
      err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}
const json = (r: { code: number | null; out: string; err: string }) => {
  if (r.code !== 0) throw new Error(`child failed (${r.code}): ${r.err}`);
  return JSON.parse(r.out.trim().split('\n').at(-1)!);
};

describe('CPU kernel variants', () => {
  it('x86-64 always has the baseline; the default is the best variant supported', async () => {
    expect(supported[0]).toBe('sse');
    const r = json(await child('bits', {}));
    expect(r.isa).toBe(supported.at(-1));
  }, 300_000);

  for (const isa of ['sse', 'avx2', 'avx512']) {
    it.runIf(supported.includes(isa))(
      `${isa}: the float tiny16 network, the fused ops and AdamW against double computations`,
      async () => {
        const r = json(await child('nmse', { KINTSUGI_CPU_ISA: isa }));
        expect(r.isa).toBe(isa); // the forced variant is the one that ran
        // The tolerances of the float-vs-double UNet test (unet.test.ts).
        expect(r.out).toBeLessThan(1e-10);
        expect(r.gx).toBeLessThan(1e-10);
        expect(r.grads).toBeLessThan(1e-10);
        // AdamW: m within float rounding of its terms, v within float's 1 - beta2 (1.3e-5 off 0.001), p absolute.
        expect(r.adamw.m).toBeLessThan(1e-6);
        expect(r.adamw.v).toBeLessThan(3e-5);
        expect(r.adamw.p).toBeLessThan(1e-6);
        // The fused ops (GroupNorm + SiLU, the convolution's epilogue) against unfused double references:
        // each op's worst NMSE over its golden cases as a fraction of the golden table's bound (ops.json).
        expect(Object.keys(r.fused).sort()).toEqual(['groupnorm_silu backward', 'groupnorm_silu forward', 'time bias + residual']);
        for (const [op, ratio] of Object.entries(r.fused as Record<string, number>)) expect(ratio, op).toBeLessThan(1);
      },
      300_000,
    );
  }

  it('a bad KINTSUGI_CPU_ISA or KINTSUGI_CPU_THREADS: the addon refuses to load, naming the variable', async () => {
    const [a, b] = await Promise.all([child('bits', { KINTSUGI_CPU_ISA: 'avx3' }), child('bits', { KINTSUGI_CPU_THREADS: '0' })]);
    expect(a.code).not.toBe(0);
    expect(a.err).toContain('KINTSUGI_CPU_ISA: expected sse, avx2 or avx512, got "avx3"');
    expect(b.code).not.toBe(0);
    expect(b.err).toContain('KINTSUGI_CPU_THREADS: expected an integer from 1 to 64, got "0"');
  }, 300_000);

  it.runIf(!supported.includes('avx512'))(
    'a variant this processor lacks is refused, not silently replaced',
    async () => {
      const r = await child('bits', { KINTSUGI_CPU_ISA: 'avx512' });
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('KINTSUGI_CPU_ISA: this processor cannot run "avx512"');
    },
    300_000,
  );

  it('training steps give the same bits with 1, 2 and 3 threads (docs/cpu.md)', async () => {
    const runs = await Promise.all(['1', '2', '3'].map((n) => child('bits', { KINTSUGI_CPU_THREADS: n })));
    const rs = runs.map(json);
    expect(rs.map((r) => r.threads)).toEqual([1, 2, 3]);
    expect(rs[1].hash).toBe(rs[0].hash);
    expect(rs[2].hash).toBe(rs[0].hash);
  }, 300_000);
});
