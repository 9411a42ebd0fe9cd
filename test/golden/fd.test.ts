// The gradient-check mode of the golden table (ops.json "fd"): the double-precision reference of each
// op's backward against central finite differences of its own forward, along a random direction per
// input: d/de Σ gout ⊙ f(x + e v) at e = 0 must equal <grad.x, v> (relative 1e-7).
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { testValues } from '../helpers.ts';
import { opRows } from './table.ts';

type Args = Record<string, number | Float64Array>;

/** The sizes of each reference op's arrays (inputs and gout) for its attributes. */
const sizes: Record<string, (a: Record<string, number>) => Record<string, number>> = {
  conv2d: ({ n, cin, h, w, cout, k, stride }) => {
    const ho = Math.floor((h! + 2 * Math.floor(k! / 2) - k!) / stride!) + 1;
    const wo = Math.floor((w! + 2 * Math.floor(k! / 2) - k!) / stride!) + 1;
    return { x: n! * cin! * h! * w!, weight: cout! * cin! * k! * k!, bias: cout!, gout: n! * cout! * ho * wo };
  },
  groupnorm: ({ n, c, hw }) => ({ x: n! * c! * hw!, weight: c!, bias: c!, gout: n! * c! * hw! }),
  groupnorm_silu: ({ n, c, hw }) => ({ x: n! * c! * hw!, weight: c!, bias: c!, gout: n! * c! * hw! }),
  silu: ({ n }) => ({ x: n!, gout: n! }),
  linear: ({ n, in: i, out: o }) => ({ x: n! * i!, weight: o! * i!, bias: o!, gout: n! * o! }),
  upsample2: ({ planes, h, w }) => ({ x: planes! * h! * w!, gout: 4 * planes! * h! * w! }),
  attention: ({ n, c, p }) => ({ qkv: n! * 3 * c! * p!, gout: n! * c! * p! }),
};

const checks = Object.entries(opRows).flatMap(([op, row]) => (row.fd ?? []).map((c) => ({ op, ...c })));

describe('golden fd: reference backward vs central finite differences of its forward (double)', () => {
  it('the table has gradient checks', () => expect(checks.length).toBeGreaterThan(0));
  for (const c of checks) {
    it(`${c.op} ${JSON.stringify(c.attrs)}`, async () => {
      const arrays = sizes[c.ref]!(c.attrs);
      const args: Args = { ...c.attrs };
      // silu's reference takes its length from x, not from an attribute.
      if (c.ref === 'silu') delete args.n;
      Object.entries(arrays).forEach(([name, size], k) => (args[name] = Float64Array.from(testValues(size, 1201 + k))));
      const r = await native.referenceOp(c.ref, args);
      const gout = args.gout as Float64Array;
      const loss = async (a: Args) => (await native.referenceOp(c.ref, a)).out!.reduce((s, v, i) => s + v * gout[i]!, 0);
      const inputs = Object.keys(r)
        .filter((k) => k.startsWith('grad.'))
        .map((k) => k.slice(5));
      expect(inputs.length).toBeGreaterThan(0);
      for (const [k, input] of inputs.entries()) {
        const base = args[input] as Float64Array;
        const v = Float64Array.from(testValues(base.length, 1301 + k));
        const eps = 1e-5;
        const plus = await loss({ ...args, [input]: base.map((x, i) => x + eps * v[i]!) });
        const minus = await loss({ ...args, [input]: base.map((x, i) => x - eps * v[i]!) });
        const fd = (plus - minus) / (2 * eps);
        const analytic = r[`grad.${input}`]!.reduce((s, g, i) => s + g * v[i]!, 0);
        expect(Math.abs(fd - analytic) / Math.max(1, Math.abs(analytic)), `d/d${input}`).toBeLessThan(1e-7);
      }
    });
  }
});
