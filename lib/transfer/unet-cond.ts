// An encoder h(y) (a host MLP) as the condition input of a UNet (docs/transfer.md, "The UNet hook"):
// its output, [n, 4·channels], is uploaded and added to the UNet's time embedding; the UNet's dL/dcond
// comes back to the host and flows into h's weights. So image models share one encoder across tasks
// the same way the vector models do, with the UNet on either backend.
import { tensor, type Tensor } from '../tensor.ts';
import type { UNet } from '../unet.ts';
import type { Mlp, MlpCache } from './mlp.ts';

export interface UNetCondition {
  /** h(y) on the UNet's device, for unet.forward(x, t, { cond }). */
  cond: Tensor;
  /** Adds dL/dθ_h into h.grads, given the UNet's dL/dcond (from unet.backward(..., { condGrad })). */
  backward(condGrad: Tensor): Promise<void>;
  dispose(): void;
}

/** w = h(y) for y [n, h.inputs] as a UNet condition; h's output width must be the UNet's 4·channels. */
export function unetCondition(h: Mlp, unet: UNet, y: Float32Array, n: number): UNetCondition {
  const width = 4 * unet.config.channels;
  if (h.config.outputs !== width)
    throw new RangeError(
      `unetCondition: the encoder outputs ${h.config.outputs} values, the UNet's time embedding has ${width} (4 × channels ${unet.config.channels})`,
    );
  const { out, cache }: { out: Float32Array; cache: MlpCache } = h.forward(y, n);
  const cond = tensor(out, [n, width], { device: unet.device });
  return {
    cond,
    async backward(condGrad: Tensor) {
      h.backward(cache, await condGrad.toArray());
    },
    dispose: () => cond.dispose(),
  };
}
