// The op registry (native/core/registry.h) and the golden table (ops.json) describe the same ops: every
// registered op has a row with golden cases and emulator cases (or says where it is covered), every row
// names a registered op, and supports() answers from the registry.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { supports } from '../../lib/device.ts';
import { goldenTable, makers, opRows } from './table.ts';

const registered = native.ops();
const names = registered.map((o) => o.name);
const emuSources = ['test.cpp', 'bootstrap_cases.inc']
  .map((f) => readFileSync(new URL(`../../native/dev/emu/${f}`, import.meta.url), 'utf8'))
  .join('\n');

describe('op registry and golden table', () => {
  it('every registered op has a row in ops.json, and every row is a registered op', () => {
    expect(names.length).toBeGreaterThan(40);
    expect(
      names.filter((n) => !(n in opRows)),
      'registered ops without a row in test/golden/ops.json',
    ).toEqual([]);
    expect(
      Object.keys(opRows).filter((n) => !names.includes(n)),
      'rows of ops.json that name no registered op',
    ).toEqual([]);
  });

  it('every row has golden and emulator cases, or says where it is covered', () => {
    for (const [op, row] of Object.entries(opRows)) {
      for (const mode of ['golden', 'emu'] as const) {
        const v = row[mode];
        expect(typeof v === 'string' ? v.length > 0 : Array.isArray(v) && v.length > 0, `${op}.${mode}`).toBe(true);
        // A row covered with another op's emulator calls names a row that has them.
        if (mode === 'emu' && typeof v === 'string' && v.startsWith('with '))
          expect(Array.isArray(opRows[v.slice(5)]?.emu), `${op}.emu: ${v}`).toBe(true);
      }
      if (Array.isArray(row.golden)) expect(makers[op], `${op}: golden parameters but no maker`).toBeTypeOf('function');
    }
    expect(goldenTable.length).toBeGreaterThan(100);
  });

  it('every emulator call names a test function of native/dev/emu', () => {
    const fns = new Set(Object.values(opRows).flatMap((r) => (Array.isArray(r.emu) ? r.emu.map((c) => c[0] as string) : [])));
    for (const fn of fns) expect(emuSources, fn).toMatch(new RegExp(`\\bvoid ${fn}\\(`));
  });

  it('supports(op, device) answers from the registry', () => {
    for (const op of names) expect(supports(op, 'cpu'), op).toBe(true);
    expect(supports('no_such_op', 'cpu')).toBe(false);
    const cuda = native.buildInfo().cuda;
    for (const o of registered) expect(native.supports(o.name, 'cuda:0'), o.name).toBe(cuda && o.cuda);
    expect(() => supports('add', 'tpu')).toThrow(/device/);
  });

  it('op() calls a registered op by name and refuses unknown names and bad attributes clearly', async () => {
    const x = native.empty('cpu', [4]);
    const y = native.empty('cpu', [4]);
    native.write(x, Float32Array.of(-2, -0.5, 0.5, 2));
    native.op('silu_forward', { n: 4 }, [x], [y]);
    const got = await native.read(y);
    Float32Array.of(-2, -0.5, 0.5, 2).forEach((v, i) => expect(got[i]).toBeCloseTo(v / (1 + Math.exp(-v)), 6));
    expect(() => native.op('no_such_op', {}, [x], [y])).toThrow(/unknown op "no_such_op"/);
    expect(() => native.op('silu_forward', { n: 5 }, [x], [y])).toThrow(/silu_forward: input 0 needs 5 elements, got 4/);
    expect(() => native.op('silu_forward', {}, [x], [y])).toThrow(/silu_forward: attribute n is missing/);
    x.dispose();
    y.dispose();
  });
});
