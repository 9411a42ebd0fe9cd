#!/usr/bin/env python3
# PyTorch's CPU training step on the same UNet (test/interop/unet_torch.py), for bench/cpu-step.mjs:
# forward, MSE against a noise target, backward, AdamW. Prints one JSON line. Developer tool only:
# torch is never a dependency of kintsugi. Run with /usr/bin/python3 (Debian's python3-torch).
import json, statistics, sys, time
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', 'test', 'interop'))
import torch
from unet_torch import UNet, PRESETS

preset, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = PRESETS[preset]
model = UNet(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
r = cfg['resolution']
x = torch.randn(batch, cfg['inChannels'], r, r)
eps = torch.randn(batch, cfg.get('outChannels', cfg['inChannels']), r, r)
t = torch.randint(0, 1000, (batch,)).float()

def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x, t), eps)
    loss.backward()
    opt.step()

for _ in range(2):
    step()
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({'impl': 'pytorch', 'version': torch.__version__, 'threads': threads, 'median_ms': statistics.median(times), 'times_ms': times}))
