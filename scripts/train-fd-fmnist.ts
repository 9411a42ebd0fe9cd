// Trains the FD-FMNIST classifier (lib/metrics/fd-classifier.ts) on the 60,000 clean Fashion-MNIST
// training images and writes lib/assets/fd-fmnist.safetensors with its test accuracy in the metadata.
// Runs on the CPU in a few minutes:
//
//   node --import ./test/support/register-ts.mjs scripts/train-fd-fmnist.ts [--epochs 3] [--out FILE] [--data DIR]
//
// Softmax cross-entropy is computed on the host: the logits of a batch are 128 x 10 numbers.
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { FD_FMNIST_ARCHITECTURE, FD_FMNIST_CLASSES, FdClassifier } from '../lib/metrics/fd-classifier.ts';
import { native } from '../lib/native.ts';
import { philoxBlock } from '../lib/random.ts';
import { writeSafetensors } from '../lib/safetensors.ts';
import { empty, Tensor, zeros } from '../lib/tensor.ts';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '3e-3' },
    seed: { type: 'string', default: '0' },
    data: { type: 'string', default: 'debian' },
    out: { type: 'string', default: 'lib/assets/fd-fmnist.safetensors' },
    'max-steps': { type: 'string' },
  },
});
const epochs = Number(args.epochs);
const batch = Number(args.batch);
const peakLr = Number(args.lr);
const seed = BigInt(args.seed);
const weightDecay = 1e-4;
const warmup = 100;
const device = 'cpu';

const train = await loadFashionMnist({ source: args.data, split: 'train' });
const test = await loadFashionMnist({ source: args.data, split: 'test' });
const pixels = 32 * 32;
const stepsPerEpoch = Math.floor(train.shape[0] / batch);
const steps = Math.min(epochs * stepsPerEpoch, Number(args['max-steps'] ?? Infinity));
console.log(
  `train: ${train.shape[0]} images, test: ${test.shape[0]}; ${epochs} epochs of ${stepsPerEpoch} steps, batch ${batch}, AdamW lr ${peakLr} (warm-up ${warmup}, cosine), wd ${weightDecay}`,
);

/** A seeded permutation of 0..n-1 (Fisher-Yates on Philox words, stream = epoch). */
function permutation(n: number, epoch: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const w = philoxBlock(seed, 0n, BigInt(1000 + epoch), i)[0];
    const j = Math.floor((w / 4294967296) * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

const net = FdClassifier.init(seed, device);
const moments = new Map([...net.params].map(([name, p]) => [name, { m: zeros(p.shape, { device }), v: zeros(p.shape, { device }) }]));
const noClip = zeros([1], { device });
const x = empty([batch, 1, 32, 32], { device });
const gLogits = empty([batch, FD_FMNIST_CLASSES], { device });
const xHost = new Float32Array(batch * pixels);
const labels = new Uint8Array(batch);

/** Mean softmax cross-entropy of the batch, and its gradient with respect to the logits written to `grad`. */
function crossEntropy(logits: Float32Array, y: Uint8Array, grad: Float32Array): { loss: number; correct: number } {
  let loss = 0;
  let correct = 0;
  const n = y.length;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES);
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < FD_FMNIST_CLASSES; c++) if (row[c]! > max) [max, arg] = [row[c]!, c];
    let z = 0;
    for (let c = 0; c < FD_FMNIST_CLASSES; c++) z += Math.exp(row[c]! - max);
    loss += Math.log(z) + max - row[y[i]!]!;
    if (arg === y[i]) correct++;
    for (let c = 0; c < FD_FMNIST_CLASSES; c++) grad[i * FD_FMNIST_CLASSES + c] = (Math.exp(row[c]! - max) / z - (c === y[i] ? 1 : 0)) / n;
  }
  return { loss: loss / n, correct };
}

const started = performance.now();
const grad = new Float32Array(batch * FD_FMNIST_CLASSES);
let order = permutation(train.shape[0], 0);
let [lossSum, correctSum, seen] = [0, 0, 0];
for (let step = 1; step <= steps; step++) {
  const epoch = Math.floor((step - 1) / stepsPerEpoch);
  const k = (step - 1) % stepsPerEpoch;
  if (k === 0 && epoch > 0) order = permutation(train.shape[0], epoch);
  for (let i = 0; i < batch; i++) {
    const idx = order[k * batch + i]!;
    xHost.set(train.images.subarray(idx * pixels, (idx + 1) * pixels), i * pixels);
    labels[i] = train.labels[idx]!;
  }
  native.write(x.handle(), xHost);
  const tape = net.forward(x);
  const { loss, correct } = crossEntropy(await tape.logits.toArray(), labels, grad);
  if (!Number.isFinite(loss)) throw new Error(`step ${step}: the loss is ${loss}`);
  native.write(gLogits.handle(), grad);
  net.zeroGrad();
  net.backward(tape, gLogits);
  FdClassifier.release(tape);
  const lr =
    step <= warmup ? (peakLr * step) / warmup : 0.5 * peakLr * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, steps - warmup)));
  for (const [name, p] of net.params) {
    const { m, v } = moments.get(name)!;
    native.adamw(p.handle(), net.grads.get(name)!.handle(), m.handle(), v.handle(), noClip.handle(), {
      lr,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: name.startsWith('norm') || name.endsWith('.bias') ? 0 : weightDecay,
      step,
      maxNorm: 0,
    });
  }
  [lossSum, correctSum, seen] = [lossSum + loss * batch, correctSum + correct, seen + batch];
  if (step % 50 === 0 || step === steps) {
    const s = (performance.now() - started) / 1000;
    console.log(
      `step ${step}/${steps} epoch ${epoch + 1}  loss ${(lossSum / seen).toFixed(4)}  train acc ${(correctSum / seen).toFixed(4)}  ${s.toFixed(0)}s`,
    );
    [lossSum, correctSum, seen] = [0, 0, 0];
  }
}
const trainSeconds = (performance.now() - started) / 1000;

/** Accuracy of the network on a labelled set, in batches. */
async function accuracy(images: Float32Array, y: Uint8Array, n: number): Promise<number> {
  let correct = 0;
  const chunk = 500;
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    using xs = new Tensor(native.empty(device, [m, 1, 32, 32]));
    native.write(xs.handle(), images.subarray(s * pixels, (s + m) * pixels));
    const tape = net.forward(xs);
    const logits = await tape.logits.toArray();
    FdClassifier.release(tape);
    for (let i = 0; i < m; i++) {
      const row = logits.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES);
      if (row.indexOf(Math.max(...row)) === y[s + i]) correct++;
    }
  }
  return correct / n;
}

const testAccuracy = await accuracy(test.images, test.labels, test.shape[0]);
console.log(`test accuracy ${(100 * testAccuracy).toFixed(2)}% on ${test.shape[0]} images; trained in ${trainSeconds.toFixed(0)}s`);
const weights = await net.values();
await writeSafetensors(args.out!, new Map([...weights].map(([name, data]) => [name, { shape: [...net.params.get(name)!.shape], data }])), {
  format: 'kintsugi-fd-fmnist',
  version: '1',
  architecture: FD_FMNIST_ARCHITECTURE,
  input: '[N, 1, 32, 32] in [-1, 1]: Fashion-MNIST 28x28 zero-padded with the background value -1 (lib/data/fashion-mnist.ts)',
  features: 'the 128-d output of fc1 after SiLU',
  test_accuracy: testAccuracy.toFixed(4),
  test_images: String(test.shape[0]),
  training: JSON.stringify({
    data: 'Fashion-MNIST train (60,000 clean images)',
    epochs,
    steps,
    batch,
    optimizer: 'AdamW',
    lr: peakLr,
    warmup,
    schedule: 'cosine',
    weightDecay,
    seed: Number(seed),
    device,
    seconds: Math.round(trainSeconds),
  }),
  trained_by: 'scripts/train-fd-fmnist.ts',
});
console.log(`wrote ${args.out}`);
