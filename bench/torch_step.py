#!/usr/bin/env python3
# PyTorch's training step on the same UNet (test/interop/unet_torch.py), for the benchmark scripts:
# forward, MSE against a noise target, backward, AdamW (fused on CUDA), in eager mode or torch.compile,
# float32 or bf16 autocast. Prints one JSON line. Developer tool only: torch is never a dependency.
#   torch_step.py PRESET BATCH STEPS THREADS [DEVICE] [MODE] [PRECISION]
#   DEVICE cpu (default) | cuda; MODE eager (default) | compile; PRECISION fp32 (default) | bf16
import json, os, resource, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test', 'interop'))
import torch
from unet_torch import UNet, PRESETS
# small32 is a CPU-sized preset of lib/unet.ts that the interop module does not list.
PRESETS.setdefault('small32', {'inChannels': 1, 'outChannels': 1, 'channels': 32, 'mult': [1, 2, 2], 'resBlocks': 1,
                               'attnResolutions': [8], 'resolution': 32})

preset, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
device = sys.argv[5] if len(sys.argv) > 5 else 'cpu'
mode = sys.argv[6] if len(sys.argv) > 6 else 'eager'
precision = sys.argv[7] if len(sys.argv) > 7 else 'fp32'
torch.set_num_threads(threads)
rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux reports KiB)
torch.manual_seed(0)
cfg = PRESETS[preset]
model = UNet(cfg).to(device)
fused = {'fused': True} if device == 'cuda' else {}
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, **fused)
fwd = torch.compile(model) if mode == 'compile' else model
r = cfg['resolution']
x = torch.randn(batch, cfg['inChannels'], r, r, device=device)
eps = torch.randn(batch, cfg.get('outChannels', cfg['inChannels']), r, r, device=device)
t = torch.randint(0, 1000, (batch,), device=device).float()
cuda = device == 'cuda'

def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type='cuda' if cuda else 'cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
        loss = torch.nn.functional.mse_loss(fwd(x, t).float(), eps)
    loss.backward()
    opt.step()

for _ in range(5 if mode == 'compile' else 3):
    step()
if cuda:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
times = []
cpu0 = time.process_time()
for _ in range(steps):
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    else:
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
peak = torch.cuda.max_memory_allocated() if cuda else None
# CPU time of all threads per step, and the process's peak resident memory (before the model: rss_base).
cpu_ms = (time.process_time() - cpu0) * 1000 / steps
rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({'impl': 'pytorch', 'version': torch.__version__, 'device': device, 'mode': mode, 'precision': precision,
                  'threads': threads, 'median_ms': statistics.median(times), 'times_ms': times, 'peak_bytes': peak,
                  'cpu_ms_per_step': cpu_ms, 'params': sum(p.numel() for p in model.parameters()), 'rss_base_bytes': rss_base, 'rss_peak_bytes': rss_peak}))
