// What the posterior samplers need from a prior: the denoised estimate x̂0(x_t) = E[x0 | x_t] on the DDPM
// process x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, and, for the guided methods (DPS, ΠGDM, MMPS), products of the
// transposed Jacobian Jᵀu with J = ∂x̂0/∂x_t (vector–Jacobian products). Asynchronous, so an exact
// prior can compute on the host (lib/restore/gaussian.ts) while a UNet stays on its device.
import { combine, NoiseSchedule, type Prediction } from '../schedule.ts';
import { tensor, type Tensor } from '../tensor.ts';
import type { UNet } from '../unet.ts';

/** x̂0 at one x_t, holding what its VJPs need until disposed. */
export interface Denoised extends Disposable {
  /** x̂0 [n, ...]; owned by this object (clone it to keep it past dispose()). */
  readonly x0: Tensor;
  /** Jᵀu for u shaped like x̂0 (a new tensor); only when denoise() was asked for VJPs. */
  vjp(u: Tensor): Promise<Tensor>;
  dispose(): void;
}

export interface PriorDenoiser {
  readonly device: string;
  readonly schedule: NoiseSchedule;
  /** [C, H, W] of the signals it denoises. */
  readonly signalShape: readonly number[];
  /** x̂0 for the batch x at integer step t of the schedule; `vjp` keeps what Jᵀu needs. */
  denoise(x: Tensor, t: number, options?: { vjp?: boolean }): Promise<Denoised>;
}

/**
 * Coefficients (a, b) of x̂0 = a x_t + b net(x_t) for each prediction target, so that Jᵀu = a u + b J_netᵀu:
 * eps: x̂0 = (x_t − √(1−ᾱ) ε̂) / √ᾱ; x0: x̂0 = net; v: x̂0 = √ᾱ x_t − √(1−ᾱ) v̂.
 */
export function x0Coefficients(prediction: Prediction, alphaBar: number): [number, number] {
  const s = Math.sqrt(alphaBar),
    r = Math.sqrt(1 - alphaBar);
  if (prediction === 'eps') return [1 / s, -r / s];
  if (prediction === 'x0') return [0, 1];
  if (prediction === 'v') return [s, -r];
  throw new TypeError(`prediction: expected "eps", "x0" or "v", got ${JSON.stringify(prediction)}`);
}

/**
 * A trained UNet as the prior, for any prediction target. The VJP runs the network's backward pass with
 * the input gradient on the forward pass's tape; that pass also adds parameter gradients into
 * `net.grads`, which are zeroed when the Denoised is disposed (do not sample while a training step holds
 * gradients in the same network). The network's own weights are used: load an EMA into it first.
 */
export function unetPrior(net: UNet, schedule: NoiseSchedule, prediction: Prediction): PriorDenoiser {
  x0Coefficients(prediction, 0.5); // validates the target now
  const { inChannels, outChannels, resolution } = net.config;
  if (inChannels !== outChannels)
    throw new RangeError(`unetPrior: expected an unconditional UNet (inChannels = outChannels), got ${inChannels} in, ${outChannels} out`);
  return {
    device: net.device,
    schedule,
    signalShape: Object.freeze([inChannels, resolution, resolution]),
    async denoise(x, t, options = {}) {
      const ab = alphaBarAt(schedule, t);
      const n = x.shape[0]!;
      const same = (v: number) => new Array<number>(n).fill(v);
      const [a, b] = x0Coefficients(prediction, ab);
      // The network's output as an x0 estimate: x0 = a x + b out (the output itself for x0-prediction).
      const toX0 = (out: Tensor): Tensor => {
        if (a === 0) return out;
        const x0 = combine([
          [x, same(a)],
          [out, same(b)],
        ]);
        out.dispose();
        return x0;
      };
      const tt = tensor(new Float32Array(n).fill(t), [n], { device: net.device });
      try {
        if (!options.vjp) {
          const x0 = toX0(net.predict(x, tt));
          return { x0, vjp: noVjp, dispose: () => x0.dispose(), [Symbol.dispose]: () => x0.dispose() };
        }
        const { out, tape } = net.forward(x, tt);
        const x0 = toX0(out);
        let used = false;
        const dispose = () => {
          x0.dispose();
          tape.release();
          if (used) net.zeroGrad();
          used = false;
        };
        return {
          x0,
          async vjp(u: Tensor) {
            used = true;
            const g = net.backward(tape, u, { inputGrad: true })!;
            if (a === 0 && b === 1) return g;
            const out = combine([
              [u, same(a)],
              [g, same(b)],
            ]);
            g.dispose();
            return out;
          },
          dispose,
          [Symbol.dispose]: dispose,
        };
      } finally {
        tt.dispose();
      }
    },
  };
}

async function noVjp(): Promise<Tensor> {
  throw new TypeError('vjp: this estimate was made without vector-Jacobian products (denoise(x, t, { vjp: true }))');
}

/** ᾱ_t for an integer step t of the schedule, with a clear error otherwise. */
export function alphaBarAt(schedule: NoiseSchedule, t: number): number {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.steps)
    throw new RangeError(`t: expected an integer step in [0, ${schedule.steps}), got ${t}`);
  return schedule.alphaBars[t]!;
}
