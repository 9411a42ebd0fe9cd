#!/usr/bin/env python3
# PyTorch's time per stage of the same UNet (test/interop/unet_torch.py), for bench/gpu.mjs's per-stage
# table beside kintsugi's (UNet.profileStages): one forward (out = net(x, t)) and its backward
# (out.backward(gout)), eager, float32 or bf16 autocast, each stage timed by CUDA events recorded from
# hooks (perf_counter on the CPU, where PyTorch runs synchronously). Prints one JSON line. Developer tool
# only: torch is never a dependency.
#   torch_blocks.py PRESET BATCH REPS [DEVICE] [PRECISIONS]   DEVICE cpu (default) | cuda; PRECISIONS a
#   comma-separated list of fp32 | bf16 (default fp32), one process for all (CUDA starts once). The JSON
#   line: { by_precision: { fp32: { stages: [{ stage, fwd_ms, bwd_ms }], total_ms } | { error }, ... } }.
#
# Stages and their names are kintsugi's (the checkpoint keys, which are this module's paths): "time",
# "conv_in", "down.k", "mid.k", "up.k", "out". What an interval holds:
#   forward: a module's forward pre-hook to its forward hook. "time" is from the start of the network's
#     forward to conv_in's pre-hook (embedding, linear1, SiLU, linear2); "out" from out.norm's pre-hook to
#     out.conv's hook (with the SiLU between). The decoder's torch.cat sits between two stages and
#     counts in none (kintsugi counts its concat, gathered or written, in the ResBlock that reads it).
#   backward: from the moment the gradient of the stage's output is complete (a hook on that tensor) to
#     the moment the gradient of its input is (a hook on the input; for conv_in, whose input needs no
#     gradient, on its weight). "time" runs from the completion of temb's gradient (summed over every
#     ResBlock) to the end of backward(). Hooks only record events: PyTorch's kernels and their order are
#     those of a plain forward + backward.
import json, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test', 'interop'))
import torch
from unet_torch import UNet, PRESETS

preset, batch, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
device = sys.argv[4] if len(sys.argv) > 4 else 'cpu'
precisions = (sys.argv[5] if len(sys.argv) > 5 else 'fp32').split(',')
cuda = device == 'cuda'
torch.manual_seed(0)
cfg = PRESETS[preset]
model = UNet(cfg).to(device)
r = cfg['resolution']
x = torch.randn(batch, cfg['inChannels'], r, r, device=device)
gout = torch.randn(batch, cfg.get('outChannels', cfg['inChannels']), r, r, device=device)
t = torch.randint(0, 1000, (batch,), device=device).float()


def now():
    if cuda:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e
    return time.perf_counter()


def ms(a, b):
    return a.elapsed_time(b) if cuda else (b - a) * 1000


stages = ['time', 'conv_in'] + [f'down.{k}' for k in range(len(model.down))] + \
    [f'mid.{k}' for k in range(len(model.mid))] + [f'up.{k}' for k in range(len(model.up))] + ['out']
marks = {}  # stage -> {'fb', 'fe', 'bb', 'be'}: forward / backward begin / end


def put(stage, key):
    marks.setdefault(stage, {})[key] = now()


def on_tensor(tensor, stage, key):
    if torch.is_tensor(tensor) and tensor.requires_grad:
        tensor.register_hook(lambda g: put(stage, key))


def hook_stage(module, stage, first=None, last=None):
    """first / last: the submodules whose pre-hook and hook bound the stage (the module itself by default)."""
    first, last = first or module, last or module

    def pre(_, args):
        put(stage, 'fb')
        on_tensor(args[0], stage, 'be')  # its gradient complete: the stage's backward is done

    def post(_, args, out):
        put(stage, 'fe')
        on_tensor(out, stage, 'bb')  # its gradient complete: the stage's backward starts

    first.register_forward_pre_hook(pre)
    last.register_forward_hook(post)


model.register_forward_pre_hook(lambda m, a: put('time', 'fb'))
model.conv_in.register_forward_pre_hook(lambda m, a: put('time', 'fe'))
model.time['linear2'].register_forward_hook(lambda m, a, out: on_tensor(out, 'time', 'bb'))
hook_stage(model.conv_in, 'conv_in')
model.conv_in.weight.register_hook(lambda g: put('conv_in', 'be'))
for section in ('down', 'mid', 'up'):
    for k, m in enumerate(getattr(model, section)):
        hook_stage(m, f'{section}.{k}')
hook_stage(model.out, 'out', first=model.out['norm'], last=model.out['conv'])


def one_pass(precision):
    marks.clear()
    model.zero_grad(set_to_none=True)
    start = now()
    with torch.autocast(device_type='cuda' if cuda else 'cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
        out = model(x, t)
    out.backward(gout.to(out.dtype))
    put('time', 'be')
    if cuda:
        torch.cuda.synchronize()
    row = {}
    for s in stages:
        m = marks.get(s, {})
        missing = [k for k in ('fb', 'fe', 'bb', 'be') if k not in m]
        if missing:
            raise RuntimeError(f'stage {s}: no {missing} mark (a hook did not fire)')
        row[s] = (ms(m['fb'], m['fe']), ms(m['bb'], m['be']))
    return row, ms(start, marks['time']['be'])


def measure(precision):
    for _ in range(2):
        one_pass(precision)
    runs = [one_pass(precision) for _ in range(reps)]
    result = [{'stage': s, 'fwd_ms': statistics.median(r[0][s][0] for r in runs),
               'bwd_ms': statistics.median(r[0][s][1] for r in runs)} for s in stages]
    return {'precision': precision, 'stages': result, 'total_ms': statistics.median(r[1] for r in runs)}


by_precision = {}
for precision in precisions:
    try:
        by_precision[precision] = measure(precision)
    except Exception as e:  # e.g. bf16 autocast on an old CPU build: reported, the other precision still runs
        by_precision[precision] = {'error': f'{type(e).__name__}: {e}'.split('\n')[0]}
print(json.dumps({'impl': 'pytorch', 'version': torch.__version__, 'device': device, 'mode': 'eager', 'batch': batch,
                  'reps': reps, 'by_precision': by_precision}))
