// Does the demo's prior overfit its 2,000 training images? (docs/demo.md, "What would close the gap")
// The denoising error of the prior's x0 prediction, E|D(x_t, t) - x0|^2, on the 2,000 images the prior
// was trained on (as corrupted measurements: the first 2,000 training images) against 2,000 it never saw
// (training images 2,000-3,999 from Debian's dataset-fashion-mnist), same noise, same times. The clean
// images are used only to measure; a ratio near 1 says more data of the same kind would not help.
//   node --import ./test/support/register-ts.mjs scripts/eval-demo-prior-gap.ts [--prior FILE] [--dir DIR]
import { parseArgs } from 'node:util';
import { readCheckpoint } from '../lib/checkpoint.ts';
import { DEBIAN_FASHION_MNIST_DIR, loadFashionMnist } from '../lib/data/fashion-mnist.ts';
import { demoMeasurements, DEMO_RESOLUTION, halve } from '../lib/demo/recipe.ts';
import { gsureSchedule, svdStatistics } from '../lib/gsure/train.ts';
import { Generator } from '../lib/random.ts';
import { randn, tensor } from '../lib/tensor.ts';
import { UNet } from '../lib/unet.ts';

const { values: args } = parseArgs({
  options: {
    prior: { type: 'string', default: 'lib/assets/demo-prior.safetensors' },
    dir: { type: 'string', default: DEBIAN_FASHION_MNIST_DIR },
  },
});
const ckpt = await readCheckpoint(args.prior);
const model = new UNet(ckpt.config, { device: 'cpu' });
model.setParams(ckpt.ema ?? ckpt.params);
// The schedule the prior was trained with (the demo's measurement noise fixes it).
const schedule = gsureSchedule((await svdStatistics(await demoMeasurements(1))).vMax);
const data = await loadFashionMnist({ source: args.dir, limit: 4000 });
const r = DEMO_RESOLUTION;
const images = halve(data.images, 4000);
const batch = 250;
const per = r * r;
for (const t of [20, 100, 250, 500, 750]) {
  const a = Math.sqrt(schedule.alphaBars[t]!);
  const s = Math.sqrt(1 - schedule.alphaBars[t]!);
  const mse: number[] = [];
  for (const offset of [0, 2000]) {
    const generator = new Generator(t); // the same noise for both halves
    let sum = 0;
    for (let b = 0; b < 2000; b += batch) {
      const x0 = images.subarray((offset + b) * per, (offset + b + batch) * per);
      const noise = randn([batch, 1, r, r], { device: 'cpu', generator });
      const e = await noise.toArray();
      noise.dispose();
      const xt = new Float32Array(x0.length);
      for (let i = 0; i < xt.length; i++) xt[i] = a * x0[i]! + s * e[i]!;
      const x = tensor(xt, [batch, 1, r, r], { device: 'cpu' });
      const tt = tensor(new Float32Array(batch).fill(t), [batch], { device: 'cpu' });
      const out = model.predict(x, tt);
      const y = await out.toArray();
      for (const v of [x, tt, out]) v.dispose();
      for (let i = 0; i < y.length; i++) sum += (y[i]! - x0[i]!) ** 2;
    }
    mse.push(sum / (2000 * per));
  }
  console.log(
    `t ${t} (alpha-bar ${schedule.alphaBars[t]!.toFixed(3)}): trained-on ${mse[0]!.toFixed(5)}, unseen ${mse[1]!.toFixed(5)}, ratio ${(mse[1]! / mse[0]!).toFixed(3)}`,
  );
}
model.dispose();
