// The FD-FMNIST classifier's backward pass (which trained the shipped weights) against central finite
// differences of its forward pass, for entries of every parameter tensor.
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { tensor } from '../../lib/tensor.ts';
import { FD_FMNIST_CLASSES, FD_FMNIST_PARAMS, FdClassifier } from '../../lib/metrics/fd-classifier.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

describe('FD-FMNIST classifier', () => {
  it('backward matches finite differences of L = sum(logits * R) for entries of every parameter', async () => {
    const n = 2;
    const net = FdClassifier.init(7n, 'cpu');
    // Nudge GroupNorm and biases off their initial 1 / 0 so their gradients are generic.
    for (const [name, p] of net.params)
      if (!name.includes('weight') || name.startsWith('norm')) {
        const v = await p.toArray();
        const z = seededNormals(v.length, 3n, BigInt(name.length));
        native.write(
          p.handle(),
          v.map((x, i) => x + 0.3 * z[i]!),
        );
      }
    using x = tensor(
      Float32Array.from(seededNormals(n * 1024, 1n, 0n), (v) => Math.tanh(v)),
      [n, 1, 32, 32],
    );
    const r = Float32Array.from(seededNormals(n * FD_FMNIST_CLASSES, 2n, 0n));
    using gLogits = tensor(r, [n, FD_FMNIST_CLASSES]);
    const loss = async () => {
      const tape = net.forward(x);
      const logits = await tape.logits.toArray();
      FdClassifier.release(tape);
      return logits.reduce((s, v, i) => s + v * r[i]!, 0);
    };
    net.zeroGrad();
    const tape = net.forward(x);
    net.backward(tape, gLogits);
    FdClassifier.release(tape);
    let checked = 0;
    for (const [name] of FD_FMNIST_PARAMS) {
      const p = net.params.get(name)!;
      const grad = await net.grads.get(name)!.toArray();
      const values = await p.toArray();
      // Three entries per tensor, spread over it.
      for (const i of [0, Math.floor(values.length / 2), values.length - 1]) {
        const eps = 1e-2;
        const at = (delta: number) => {
          const v = Float32Array.from(values);
          v[i]! += delta;
          native.write(p.handle(), v);
          return loss();
        };
        const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
        native.write(p.handle(), values);
        expect(Math.abs(grad[i]! - fd), `${name}[${i}]: backward ${grad[i]}, finite difference ${fd}`).toBeLessThan(
          2e-3 + 2e-2 * Math.abs(fd),
        );
        checked++;
      }
    }
    expect(checked).toBe(3 * FD_FMNIST_PARAMS.length);
    net.dispose();
  });
});
