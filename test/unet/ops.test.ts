// The CPU reference ops in double precision, forward and backward, against PyTorch's float64 autograd
// (test/fixtures/unet/ops.safetensors).
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { get, readFixture, relErr } from '../reference/fixtures.ts';

const ops = readFixture(new URL('../fixtures/unet/ops.safetensors', import.meta.url).pathname);
const TOL = 1e-12;

type Args = Record<string, number | Float64Array>;

/** The fixture's inputs and output gradient for prefix p, under the names referenceOp expects. */
function fx(p: string, names: Record<string, string>, extra: Record<string, number>): Args {
  const args: Args = { ...extra };
  for (const [ours, theirs] of Object.entries(names)) args[ours] = get(ops, `${p}.${theirs}`);
  args.gout = get(ops, `${p}.gout`);
  return args;
}

const cases: { name: string; op: string; args: () => Args; grads: Record<string, string> }[] = [
  {
    name: 'conv3x3_s1',
    op: 'conv2d',
    args: () => fx('conv3x3_s1', { x: 'x', weight: 'weight', bias: 'bias' }, { n: 2, cin: 3, h: 5, w: 5, cout: 4, k: 3, stride: 1 }),
    grads: { 'grad.x': 'grad.x', 'grad.weight': 'grad.weight', 'grad.bias': 'grad.bias' },
  },
  {
    name: 'conv3x3_s2',
    op: 'conv2d',
    args: () => fx('conv3x3_s2', { x: 'x', weight: 'weight', bias: 'bias' }, { n: 2, cin: 3, h: 6, w: 6, cout: 4, k: 3, stride: 2 }),
    grads: { 'grad.x': 'grad.x', 'grad.weight': 'grad.weight', 'grad.bias': 'grad.bias' },
  },
  {
    name: 'conv1x1',
    op: 'conv2d',
    args: () => fx('conv1x1', { x: 'x', weight: 'weight', bias: 'bias' }, { n: 2, cin: 3, h: 4, w: 4, cout: 5, k: 1, stride: 1 }),
    grads: { 'grad.x': 'grad.x', 'grad.weight': 'grad.weight', 'grad.bias': 'grad.bias' },
  },
  {
    name: 'groupnorm',
    op: 'groupnorm',
    args: () => fx('groupnorm', { x: 'x', weight: 'weight', bias: 'bias' }, { n: 2, c: 8, hw: 9, groups: 4 }),
    grads: { 'grad.x': 'grad.x', 'grad.weight': 'grad.weight', 'grad.bias': 'grad.bias' },
  },
  { name: 'silu', op: 'silu', args: () => fx('silu', { x: 'x' }, {}), grads: { 'grad.x': 'grad.x' } },
  {
    name: 'linear',
    op: 'linear',
    args: () => fx('linear', { x: 'x', weight: 'weight', bias: 'bias' }, { n: 3, in: 5, out: 4 }),
    grads: { 'grad.x': 'grad.x', 'grad.weight': 'grad.weight', 'grad.bias': 'grad.bias' },
  },
  { name: 'upsample', op: 'upsample2', args: () => fx('upsample', { x: 'x' }, { planes: 2, h: 3, w: 3 }), grads: { 'grad.x': 'grad.x' } },
];

describe('reference ops (double) vs PyTorch float64 autograd', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const r = await native.referenceOp(c.op, c.args());
      expect(relErr(r.out!, get(ops, `${c.name}.out`))).toBeLessThan(TOL);
      for (const [ours, theirs] of Object.entries(c.grads))
        expect(relErr(r[ours]!, get(ops, `${c.name}.${theirs}`)), ours).toBeLessThan(TOL);
    });
  }

  it('time embedding (t = 0, 1.5, 999)', async () => {
    const r = await native.referenceOp('time_embedding', { c: 8, t: get(ops, 'timeemb.t') });
    expect(relErr(r.out!, get(ops, 'timeemb.out'))).toBeLessThan(TOL);
  });
});

// The finite-difference checks of these ops are the "fd" mode of the golden table (test/golden/ops.json,
// test/golden/fd.test.ts).
