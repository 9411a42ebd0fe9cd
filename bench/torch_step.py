#!/usr/bin/env python3
# PyTorch's training step on the same UNet (test/interop/unet_torch.py), for bench/train-step.mjs:
# forward, MSE against a noise target, backward, AdamW, in float32 eager mode. Prints one JSON line.
# Developer tool only: torch is never a dependency of kintsugi.
#   torch_step.py PRESET BATCH STEPS THREADS [DEVICE]     (DEVICE: cpu (default) or cuda)
import json, statistics, sys, time
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', 'test', 'interop'))
import torch
from unet_torch import UNet, PRESETS

preset, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
device = sys.argv[5] if len(sys.argv) > 5 else 'cpu'
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = PRESETS[preset]
model = UNet(cfg).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
r = cfg['resolution']
x = torch.randn(batch, cfg['inChannels'], r, r, device=device)
eps = torch.randn(batch, cfg.get('outChannels', cfg['inChannels']), r, r, device=device)
t = torch.randint(0, 1000, (batch,), device=device).float()
sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x, t), eps)
    loss.backward()
    opt.step()
    sync()

for _ in range(3):
    step()
if device == 'cuda':
    torch.cuda.reset_peak_memory_stats()
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
peak = torch.cuda.max_memory_allocated() if device == 'cuda' else None
print(json.dumps({'impl': 'pytorch', 'version': torch.__version__, 'device': device, 'threads': threads,
                  'median_ms': statistics.median(times), 'times_ms': times, 'peak_bytes': peak}))
