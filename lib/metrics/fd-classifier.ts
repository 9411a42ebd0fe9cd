// The FD-FMNIST classifier: a small convolutional network that kintsugi trains on clean Fashion-MNIST
// (scripts/train-fd-fmnist.ts) and whose 128-d penultimate layer is the feature space of FD-FMNIST and
// of precision/recall. It runs on the library's own network ops (native.nnOp), so it runs on any device:
//
//   x [N, 1, 32, 32] in [-1, 1]
//   conv3x3 stride 2, 1 -> 32   GroupNorm(8)  SiLU   [N, 32, 16, 16]
//   conv3x3 stride 2, 32 -> 64  GroupNorm(8)  SiLU   [N, 64, 8, 8]
//   conv3x3 stride 2, 64 -> 64  GroupNorm(8)  SiLU   [N, 64, 4, 4]
//   flatten 1024 -> linear 128  SiLU                 [N, 128]  <- the features
//   linear 128 -> 10                                  [N, 10]   class logits
//
// Each forward keeps what its backward needs (a tape); gradients add into `grads`, as every native
// backward op does, so a training step zeroes them first.
import { native } from '../native.ts';
import { empty, Tensor, tensor, zeros } from '../tensor.ts';
import { seededNormals } from './normals.ts';

export const FD_FMNIST_FEATURES = 128;
export const FD_FMNIST_CLASSES = 10;
const GROUPS = 8;
/** [cin, cout, input size] of each stride-2 convolution block. */
const BLOCKS = [
  [1, 32, 32],
  [32, 64, 16],
  [64, 64, 8],
] as const;
const FLAT = 64 * 4 * 4;

/** Parameter names and shapes in file order (the safetensors keys). */
export const FD_FMNIST_PARAMS: ReadonlyArray<readonly [string, readonly number[]]> = Object.freeze([
  ...BLOCKS.flatMap(
    ([cin, cout], i) =>
      [
        [`conv${i + 1}.weight`, [cout, cin, 3, 3]],
        [`conv${i + 1}.bias`, [cout]],
        [`norm${i + 1}.weight`, [cout]],
        [`norm${i + 1}.bias`, [cout]],
      ] as const,
  ),
  ['fc1.weight', [FD_FMNIST_FEATURES, FLAT]],
  ['fc1.bias', [FD_FMNIST_FEATURES]],
  ['fc2.weight', [FD_FMNIST_CLASSES, FD_FMNIST_FEATURES]],
  ['fc2.bias', [FD_FMNIST_CLASSES]],
] as const);

/** A one-line description stored in the weights' metadata. */
export const FD_FMNIST_ARCHITECTURE =
  'conv3x3/2 1->32, GN8, SiLU; conv3x3/2 32->64, GN8, SiLU; conv3x3/2 64->64, GN8, SiLU; linear 1024->128, SiLU (features); linear 128->10';

/** What one forward pass keeps for backward. */
export interface ClassifierTape {
  n: number;
  x: Tensor;
  /** Per block: conv output, GroupNorm output, its mean and rstd, SiLU output. */
  blocks: { conv: Tensor; norm: Tensor; mean: Tensor; rstd: Tensor; act: Tensor }[];
  fc1: Tensor;
  features: Tensor;
  logits: Tensor;
}

export class FdClassifier {
  readonly device: string;
  readonly params: ReadonlyMap<string, Tensor>;
  #grads: Map<string, Tensor> | undefined;

  /** `values`: every parameter of FD_FMNIST_PARAMS by name (float32, row-major). */
  constructor(values: ReadonlyMap<string, Float32Array>, device: string) {
    const params = new Map<string, Tensor>();
    for (const [name, shape] of FD_FMNIST_PARAMS) {
      const v = values.get(name);
      const numel = shape.reduce((a, b) => a * b, 1);
      if (v === undefined) throw new Error(`FD-FMNIST classifier: parameter ${name} is missing`);
      if (v.length !== numel)
        throw new Error(`FD-FMNIST classifier: parameter ${name} needs ${numel} values (shape ${JSON.stringify(shape)}), got ${v.length}`);
      params.set(name, tensor(v, shape, { device }));
    }
    this.params = params;
    this.device = device;
  }

  /** A fresh network: He-normal convolutions and linears (GroupNorm follows), zero biases, unit norms. */
  static init(seed: bigint, device: string): FdClassifier {
    const values = new Map<string, Float32Array>();
    for (const [k, [name, shape]] of FD_FMNIST_PARAMS.entries()) {
      const numel = shape.reduce((a, b) => a * b, 1);
      if (name.endsWith('.bias')) values.set(name, new Float32Array(numel));
      else if (name.startsWith('norm')) values.set(name, new Float32Array(numel).fill(1));
      else {
        const fanIn = numel / shape[0]!;
        // fc2 feeds softmax directly: a smaller scale starts the logits near uniform.
        const gain = name === 'fc2.weight' ? 1 / Math.sqrt(fanIn) : Math.sqrt(2 / fanIn);
        values.set(
          name,
          Float32Array.from(seededNormals(numel, seed, BigInt(k)), (z) => gain * z),
        );
      }
    }
    return new FdClassifier(values, device);
  }

  /** Gradient tensors, one per parameter (created on first use, zeroed by zeroGrad). */
  get grads(): ReadonlyMap<string, Tensor> {
    this.#grads ??= new Map([...this.params].map(([name, p]) => [name, zeros(p.shape, { device: this.device })]));
    return this.#grads;
  }

  zeroGrad(): void {
    for (const g of this.grads.values()) g.fill_(0);
  }

  #p(name: string): Tensor {
    return this.params.get(name)!;
  }

  /** The forward pass of x [N, 1, 32, 32]: features [N, 128] and logits [N, 10], with the tape for backward. */
  forward(x: Tensor): ClassifierTape {
    const [n, c, h, w] = x.shape;
    if (x.shape.length !== 4 || c !== 1 || h !== 32 || w !== 32)
      throw new TypeError(`FD-FMNIST classifier: expected images [N, 1, 32, 32], got ${JSON.stringify(x.shape)}`);
    if (x.device !== this.device) throw new TypeError(`FD-FMNIST classifier: the images are on ${x.device}, the network on ${this.device}`);
    const d = { device: this.device };
    const blocks: ClassifierTape['blocks'] = [];
    let input = x;
    for (const [i, [cin, cout, size]] of BLOCKS.entries()) {
      const out = size / 2;
      const b = {
        conv: empty([n!, cout, out, out], d),
        norm: empty([n!, cout, out, out], d),
        mean: empty([n! * GROUPS], d),
        rstd: empty([n! * GROUPS], d),
        act: empty([n!, cout, out, out], d),
      };
      native.nnOp(
        'conv2d_forward',
        { n: n!, cin, h: size, w: size, cout, k: 3, stride: 2 },
        [input.handle(), this.#p(`conv${i + 1}.weight`).handle(), this.#p(`conv${i + 1}.bias`).handle()],
        [b.conv.handle()],
      );
      native.nnOp(
        'groupnorm_forward',
        { n: n!, c: cout, hw: out * out, groups: GROUPS },
        [b.conv.handle(), this.#p(`norm${i + 1}.weight`).handle(), this.#p(`norm${i + 1}.bias`).handle()],
        [b.norm.handle(), b.mean.handle(), b.rstd.handle()],
      );
      native.nnOp('silu_forward', { n: b.norm.numel }, [b.norm.handle()], [b.act.handle()]);
      blocks.push(b);
      input = b.act;
    }
    const fc1 = empty([n!, FD_FMNIST_FEATURES], d);
    const features = empty([n!, FD_FMNIST_FEATURES], d);
    const logits = empty([n!, FD_FMNIST_CLASSES], d);
    // The last activation [N, 64, 4, 4] is already the flattened [N, 1024] in memory (NCHW, row-major).
    native.nnOp(
      'linear_forward',
      { n: n!, in: FLAT, out: FD_FMNIST_FEATURES },
      [input.handle(), this.#p('fc1.weight').handle(), this.#p('fc1.bias').handle()],
      [fc1.handle()],
    );
    native.nnOp('silu_forward', { n: fc1.numel }, [fc1.handle()], [features.handle()]);
    native.nnOp(
      'linear_forward',
      { n: n!, in: FD_FMNIST_FEATURES, out: FD_FMNIST_CLASSES },
      [features.handle(), this.#p('fc2.weight').handle(), this.#p('fc2.bias').handle()],
      [logits.handle()],
    );
    return { n: n!, x, blocks, fc1, features, logits };
  }

  /** Adds the gradients of the loss whose gradient with respect to the logits is `gLogits` [N, 10] into `grads`. */
  backward(tape: ClassifierTape, gLogits: Tensor): void {
    const { n } = tape;
    const d = { device: this.device };
    const g = this.grads;
    const gp = (name: string) => g.get(name)!.handle();
    using gFeatures = empty([n, FD_FMNIST_FEATURES], d);
    native.nnOp(
      'linear_backward',
      { n, in: FD_FMNIST_FEATURES, out: FD_FMNIST_CLASSES },
      [tape.features.handle(), this.#p('fc2.weight').handle(), gLogits.handle()],
      [gFeatures.handle(), gp('fc2.weight'), gp('fc2.bias')],
    );
    using gFc1 = empty([n, FD_FMNIST_FEATURES], d);
    native.nnOp('silu_backward', { n: gFc1.numel }, [tape.fc1.handle(), gFeatures.handle()], [gFc1.handle()]);
    let gAct = empty(tape.blocks[2]!.act.shape, d);
    native.nnOp(
      'linear_backward',
      { n, in: FLAT, out: FD_FMNIST_FEATURES },
      [tape.blocks[2]!.act.handle(), this.#p('fc1.weight').handle(), gFc1.handle()],
      [gAct.handle(), gp('fc1.weight'), gp('fc1.bias')],
    );
    for (let i = BLOCKS.length - 1; i >= 0; i--) {
      const [cin, cout, size] = BLOCKS[i]!;
      const b = tape.blocks[i]!;
      const out = size / 2;
      using gNorm = empty(b.norm.shape, d);
      native.nnOp('silu_backward', { n: gNorm.numel }, [b.norm.handle(), gAct.handle()], [gNorm.handle()]);
      using gConv = empty(b.conv.shape, d);
      native.nnOp(
        'groupnorm_backward',
        { n, c: cout, hw: out * out, groups: GROUPS },
        [b.conv.handle(), this.#p(`norm${i + 1}.weight`).handle(), b.mean.handle(), b.rstd.handle(), gNorm.handle()],
        [gConv.handle(), gp(`norm${i + 1}.weight`), gp(`norm${i + 1}.bias`)],
      );
      gAct.dispose();
      // The first block's input gradient (the images') is not needed.
      const input = i > 0 ? tape.blocks[i - 1]!.act : tape.x;
      const gInput = i > 0 ? empty(input.shape, d) : null;
      native.nnOp(
        'conv2d_backward',
        { n, cin, h: size, w: size, cout, k: 3, stride: 2 },
        [input.handle(), this.#p(`conv${i + 1}.weight`).handle(), gConv.handle()],
        [gInput?.handle() ?? null, gp(`conv${i + 1}.weight`), gp(`conv${i + 1}.bias`)],
      );
      gAct = gInput ?? gAct;
    }
  }

  /** Frees a tape (not its input images). */
  static release(tape: ClassifierTape): void {
    for (const b of tape.blocks) for (const t of Object.values(b)) t.dispose();
    for (const t of [tape.fc1, tape.features, tape.logits]) t.dispose();
  }

  /** Every parameter's values, by name, in file order. */
  async values(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, p] of this.params) out.set(name, await p.toArray());
    return out;
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    for (const t of this.#grads?.values() ?? []) t.dispose();
  }
}
