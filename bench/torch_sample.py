#!/usr/bin/env python3
# PyTorch's sampling throughput on the same UNet: DDIM (eta = 0) with STEPS network evaluations at
# batch BATCH, eager or torch.compile, float32 or bf16 autocast, timed with CUDA events after a warm-up
# run (host clock on the CPU) of WARMUP_STEPS (default STEPS). Prints one JSON line. Developer tool only.
#   torch_sample.py PRESET BATCH STEPS [MODE] [PRECISION] [DEVICE] [THREADS] [WARMUP_STEPS]     DEVICE cuda (default) | cpu
import json, math, os, resource, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test', 'interop'))
import torch
from unet_torch import UNet, PRESETS
# small32 is a CPU-sized preset of lib/unet.ts that the interop module does not list.
PRESETS.setdefault('small32', {'inChannels': 1, 'outChannels': 1, 'channels': 32, 'mult': [1, 2, 2], 'resBlocks': 1,
                               'attnResolutions': [8], 'resolution': 32})

preset, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else 'eager'
precision = sys.argv[5] if len(sys.argv) > 5 else 'fp32'
device = sys.argv[6] if len(sys.argv) > 6 else 'cuda'
cuda = device == 'cuda'
if len(sys.argv) > 7 and sys.argv[7] != '':
    torch.set_num_threads(int(sys.argv[7]))
warmup_steps = int(sys.argv[8]) if len(sys.argv) > 8 else steps
rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
torch.manual_seed(0)
cfg = PRESETS[preset]
model = UNet(cfg).to(device).eval()
net = torch.compile(model) if mode == 'compile' else model
r = cfg['resolution']
betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
abar = torch.cumprod(1 - betas, 0)
def timesteps(n):
    return [round(i * 999 / (n - 1)) for i in range(n)][::-1] if n > 1 else [999]

@torch.no_grad()
def run(n):
    ts = timesteps(n)
    x = torch.randn(batch, cfg['inChannels'], r, r, device=device)
    for i, t in enumerate(ts):
        a = abar[t].item()
        ap = abar[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == 'bf16'):
            eps = net(x, torch.full((batch,), float(t), device=device)).float()
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        x = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
    return x

run(warmup_steps)
if cuda:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run(steps)
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
else:
    t0, c0 = time.perf_counter(), time.process_time()
    run(steps)
    ms = (time.perf_counter() - t0) * 1000
    cpu_ms = (time.process_time() - c0) * 1000
print(json.dumps({'impl': 'pytorch', 'version': torch.__version__, 'device': device, 'mode': mode, 'precision': precision,
                  'warmup_steps': warmup_steps, 'ms': ms, 'img_per_s': 1000 * batch / ms, 'peak_bytes': torch.cuda.max_memory_allocated() if cuda else None,
                  'threads': torch.get_num_threads(), 'cpu_ms': None if cuda else cpu_ms, 'rss_base_bytes': rss_base,
                  'rss_peak_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
