// The help text of `kintsugi transfer`, apart from the command so that lib/cli.ts can show it without
// loading the transfer modules (each command loads its code only when it runs).
export const TRANSFER_HELP = `usage: kintsugi transfer <pretrain | finetune | eval> [options]

Transfer learning of a conditional diffusion model through a shared condition encoder h (docs/transfer.md).

kintsugi transfer pretrain --data SOURCES --out PRE.safetensors
  SOURCES           langevin (β = 1..10) | mnist (digits 1..9) | npy:DIR (DIR/x-<k>.npy, DIR/y-<k>.npy)
  --n N             pairs per source task (default 1000)
  --steps N         default 2000;  --batch B  default 256;  --lr X  default 1e-3 (cosine decay)
  --hidden H        width of h and of the heads (default 128);  --encoder-depth D  default 3
  --head-depth D    default 2 (langevin, npy), 3 (mnist);  --rep-dim d  default 10 (langevin), 64 (mnist)
  --gaussian-skip yes|no  heads learn the rest of a Gaussian fit's noise (default yes for mnist, else no)
  --seed S          default 0;  --resume  continue from --out

kintsugi transfer finetune --from PRE.safetensors --data TARGET --m M --out FT.safetensors
  TARGET            langevin:beta=B | mnist:digit=D | npy:X.npy,Y.npy (the first M pairs)
  --scratch         the baseline: train h and the head from scratch on the same pairs (--from gives the sizes)
  --init I          f_0's start: random (default; the baseline's start too) | best-source (the source head
                    with the lowest loss on the M pairs) | source:K (source head K)
  --steps N         default 1000, at batch M;  --lr X  default 1e-3;  --seed S  default 0;  --resume

kintsugi transfer eval --model FT.safetensors --data TARGET
  --test N          held-out conditions (default 100);  --samples S  posterior samples each (default 16)
  --sample-steps N  ancestral sampler steps (default 50);  --mala  langevin only: score the posterior mean
                    against MALA's (the paper's metric) instead of the true x

example:
  kintsugi transfer pretrain --data langevin --out pre.safetensors
  kintsugi transfer finetune --from pre.safetensors --data langevin:beta=5.5 --m 10 --out ft.safetensors
  kintsugi transfer eval --model ft.safetensors --data langevin:beta=5.5 --mala`;
