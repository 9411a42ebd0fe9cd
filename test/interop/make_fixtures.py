#!/usr/bin/env python3
"""Generate golden UNet fixtures with PyTorch autograd in float64 (developer script; torch is never a
dependency of the package). Run from the repository root:

    /usr/bin/python3 test/interop/make_fixtures.py [--out test/fixtures/unet]

Writes micro.safetensors, tiny16.safetensors and ops.safetensors; see test/interop/README.md for the keys.
The output is deterministic for a given torch build (CPU, float64, fixed seeds).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torch import (PRESETS, UNet, Attention, ResBlock, param_count, read_safetensors,  # noqa: E402
                        timestep_embedding, write_safetensors)

MICRO = {'inChannels': 2, 'outChannels': 1, 'channels': 8, 'mult': [1, 2], 'resBlocks': 1,
         'attnResolutions': [4], 'resolution': 8}
SEED = 0
T_VALUES = [3.0, 517.0]
NOISE = 0.1


def np64(t):
    return t.detach().cpu().to(torch.float64).numpy()


def np32(t):
    return t.detach().cpu().to(torch.float32).numpy()


def make_model_fixture(name, config, path, param_dtype):
    """param_dtype 'F64' or 'F32'. With F32, parameters are rounded to float32 *before* the float64
    computation, so the stored F32 parameters are exactly the ones used; gradients are float64 results
    rounded to float32 on output."""
    torch.manual_seed(SEED)
    model = UNet(config).double()          # PyTorch default init (drawn in float32, widened)
    with torch.no_grad():
        for _, p in model.named_parameters():   # state_dict order
            p.add_(NOISE * torch.randn(p.shape, dtype=torch.float64))
            if param_dtype == 'F32':
                p.copy_(p.to(torch.float32).to(torch.float64))
    cfg = model.config
    n = 2
    x = torch.randn(n, cfg['inChannels'], cfg['resolution'], cfg['resolution'], dtype=torch.float64)
    t = torch.tensor(T_VALUES, dtype=torch.float64)
    x.requires_grad_(True)
    out = model(x, t)
    g = torch.randn(out.shape, dtype=torch.float64)
    loss = (out * g).sum()
    loss.backward()

    conv = np64 if param_dtype == 'F64' else np32
    tensors = []
    names = list(model.state_dict().keys())
    params = dict(model.named_parameters())
    assert names == list(params.keys()), 'state_dict has non-parameter entries'
    for k in names:
        tensors.append((k, conv(params[k])))
    tensors += [('x', np64(x)), ('t', np64(t)), ('g', np64(g)), ('out', np64(out))]
    for k in names:
        tensors.append(('grad.' + k, conv(params[k].grad)))
    tensors.append(('grad.x', np64(x.grad)))

    dead = dead_grads([(k, p.grad) for k, p in params.items()])
    with torch.no_grad():
        o_other_t = model(x, torch.tensor([100.0, 9.0], dtype=torch.float64))
    meta = {
        'structurally_zero_grads': json.dumps(['grad.' + k for k in dead]),
        'out_depends_on_t': json.dumps(bool((o_other_t - out).abs().max() > 1e-9 * out.abs().max())),
        'kintsugi.config': json.dumps(cfg),
        'kintsugi.fixture': name,
        'seed': str(SEED),
        'param_dtype': param_dtype,
        'param_count': str(param_count(model)),
        't': json.dumps(T_VALUES),
        'loss': repr(float(loss)),
        'recipe': ('torch.manual_seed(0); UNet(config).double(); every parameter += 0.1*randn (state_dict '
                   'order)%s; x = randn(2,inC,R,R); t = [3,517]; out = model(x,t); g = randn_like(out); '
                   'loss = (out*g).sum(); backward; all float64') %
                  ('; parameters rounded to float32 before the forward pass' if param_dtype == 'F32' else ''),
    }
    write_safetensors(path, tensors, meta)
    return model, len(names)


# ---------------------------------------------------------------------------------------------------
# Per-op fixtures
# ---------------------------------------------------------------------------------------------------

def dead_grads(named_grads, rel=1e-9):
    """Names whose gradient is mathematically zero (only float64 round-off, < rel * the largest gradient).
    With groups = min(32, c) and c <= 32 every GroupNorm is per-channel and cancels any per-channel
    constant added just before it (conv biases, the ResBlock time term), so those gradients vanish."""
    scale = max(float(g.abs().max()) for _, g in named_grads)
    return [k for k, g in named_grads if float(g.abs().max()) < rel * scale]


def leaf(*shape):
    return torch.randn(*shape, dtype=torch.float64).requires_grad_(True)


def op_record(prefix, inputs, out, extra=None):
    """inputs: list of (name, leaf tensor). Backprop a standard-normal gout; return tensors."""
    gout = torch.randn(out.shape, dtype=torch.float64)
    (out * gout).sum().backward()
    rec = []
    for name, v in inputs:
        rec.append(('%s.%s' % (prefix, name), np64(v)))
    for name, v in (extra or []):
        rec.append(('%s.%s' % (prefix, name), np64(v)))
    rec.append(('%s.out' % prefix, np64(out)))
    rec.append(('%s.gout' % prefix, np64(gout)))
    for name, v in inputs:
        if v.requires_grad:
            rec.append(('%s.grad.%s' % (prefix, name), np64(v.grad)))
    dead = dead_grads([(name, v.grad) for name, v in inputs if v.requires_grad])
    if dead:
        DEAD_OPS.extend('%s.grad.%s' % (prefix, name) for name in dead)
    return rec


DEAD_OPS = []


def make_ops(path):
    torch.manual_seed(1)
    rec = []
    meta = {'kintsugi.fixture': 'ops', 'seed': '1', 'dtype': 'F64'}

    # conv3x3, stride 1, padding 1, bias
    x, w, b = leaf(2, 3, 5, 5), leaf(4, 3, 3, 3), leaf(4)
    rec += op_record('conv3x3_s1', [('x', x), ('weight', w), ('bias', b)], F.conv2d(x, w, b, stride=1, padding=1))

    # conv3x3, stride 2, padding 1, bias
    x, w, b = leaf(2, 3, 6, 6), leaf(4, 3, 3, 3), leaf(4)
    rec += op_record('conv3x3_s2', [('x', x), ('weight', w), ('bias', b)], F.conv2d(x, w, b, stride=2, padding=1))

    # conv1x1, bias
    x, w, b = leaf(2, 3, 4, 4), leaf(5, 3, 1, 1), leaf(5)
    rec += op_record('conv1x1', [('x', x), ('weight', w), ('bias', b)], F.conv2d(x, w, b))

    # groupnorm: C = 8, 4 groups, eps 1e-5, affine
    x, w, b = leaf(2, 8, 3, 3), leaf(8), leaf(8)
    rec += op_record('groupnorm', [('x', x), ('weight', w), ('bias', b)], F.group_norm(x, 4, w, b, eps=1e-5))
    meta['groupnorm.groups'] = '4'
    meta['groupnorm.eps'] = '1e-5'

    # silu
    x = leaf(2, 3, 4, 5)
    rec += op_record('silu', [('x', x)], F.silu(x))

    # linear: y = x W^T + b
    x, w, b = leaf(3, 5), leaf(4, 5), leaf(4)
    rec += op_record('linear', [('x', x), ('weight', w), ('bias', b)], F.linear(x, w, b))

    # sinusoidal time embedding, C = 8
    t = torch.tensor([0.0, 1.5, 999.0], dtype=torch.float64, requires_grad=True)
    rec += op_record('timeemb', [('t', t)], timestep_embedding(t, 8))
    meta['timeemb.dim'] = '8'

    # full time module: temb = linear2(silu(linear1(emb(t)))), C = 8 -> 32 -> 32
    t = torch.tensor([0.0, 1.5, 999.0], dtype=torch.float64, requires_grad=True)
    w1, b1, w2, b2 = leaf(32, 8), leaf(32), leaf(32, 32), leaf(32)
    temb = F.linear(F.silu(F.linear(timestep_embedding(t, 8), w1, b1)), w2, b2)
    rec += op_record('time', [('t', t), ('linear1.weight', w1), ('linear1.bias', b1),
                              ('linear2.weight', w2), ('linear2.bias', b2)], temb)

    # attention block (c = 8, groups min(32, 8) = 8), residual and proj included
    att = Attention(8).double()
    x = leaf(2, 8, 3, 3)
    with torch.no_grad():
        for p in att.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    params = list(att.named_parameters())
    out = att(x)
    # independent check of the block against an explicit-loop formulation
    _check_attention(att, x, out)
    rec += op_record('attention', [('x', x)] + params, out)
    meta['attention.groups'] = '8'

    # resblock (cin 4 -> cout 8, with skip), temb dim 16, groups min(32, 4) = 4 and min(32, 8) = 8
    rb = ResBlock(4, 8, 16).double()
    with torch.no_grad():
        for p in rb.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    x, temb = leaf(2, 4, 4, 4), leaf(2, 16)
    rec += op_record('resblock', [('x', x), ('temb', temb)] + list(rb.named_parameters()), rb(x, temb))

    # nearest-neighbour upsample x2
    x = leaf(1, 2, 3, 3)
    rec += op_record('upsample', [('x', x)], F.interpolate(x, scale_factor=2, mode='nearest'))

    for k, v in rec:
        assert np.all(np.isfinite(v)), k
    meta['structurally_zero_grads'] = json.dumps(DEAD_OPS)
    write_safetensors(path, rec, meta)
    return rec


def _check_attention(att, x, out):
    with torch.no_grad():
        n, c, hh, ww = x.shape
        xn = F.group_norm(x, min(32, c), att.norm.weight, att.norm.bias, eps=1e-5)
        qkv = F.conv2d(xn, att.qkv.weight, att.qkv.bias).reshape(n, 3 * c, hh * ww)
        ref = torch.empty_like(x).reshape(n, c, hh * ww)
        for b in range(n):
            q, k, v = qkv[b, :c], qkv[b, c:2 * c], qkv[b, 2 * c:]
            for i in range(hh * ww):
                s = torch.stack([(q[:, i] * k[:, j]).sum() for j in range(hh * ww)]) / math.sqrt(c)
                a = torch.exp(s - s.max())
                a = a / a.sum()
                ref[b, :, i] = (v * a[None, :]).sum(dim=1)
        ref = x + F.conv2d(ref.reshape(n, c, hh, ww), att.proj.weight, att.proj.bias)
        err = (ref - out).abs().max().item()
        assert err < 1e-12, 'attention mismatch %g' % err


def verify(path, expect_keys=None):
    tensors, meta = read_safetensors(path)
    with open(path, 'rb') as fh:
        head = fh.read(8)
    hlen = int.from_bytes(head, 'little')
    assert (8 + hlen) % 8 == 0, 'header not 8-byte aligned'
    if expect_keys is not None:
        assert list(tensors.keys())[:len(expect_keys)] == expect_keys, 'key order differs'
    return tensors, meta


def main(argv):
    out_dir = 'test/fixtures/unet'
    if len(argv) >= 2 and argv[0] == '--out':
        out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)  # bitwise reproducibility of the reductions

    for name, cfg, dt in (('micro', MICRO, 'F64'), ('tiny16', PRESETS['tiny16'], 'F32')):
        path = os.path.join(out_dir, name + '.safetensors')
        model, ntens = make_model_fixture(name, cfg, path, dt)
        keys = list(model.state_dict().keys())
        tensors, meta = verify(path, keys)
        # Reload through our reader and recompute: the stored params reproduce "out" and "grad.x".
        m2 = UNet(json.loads(meta['kintsugi.config'])).double()
        m2.load_state_dict({k: torch.from_numpy(tensors[k].astype(np.float64)) for k in keys}, strict=True)
        x = torch.from_numpy(tensors['x']).requires_grad_(True)
        o = m2(x, torch.from_numpy(tensors['t']))
        (o * torch.from_numpy(tensors['g'])).sum().backward()
        e_out = float(np.abs(o.detach().numpy() - tensors['out']).max())
        e_gx = float(np.abs(x.grad.numpy() - tensors['grad.x']).max())
        e_gp = max(float(np.abs(p.grad.numpy() - tensors['grad.' + k]).max()) for k, p in m2.named_parameters())
        print('%-7s %s  %d param tensors, %d parameters, %d keys, %d bytes; reload max|d| out %.1e, grad.x %.1e, '
              'grad.params %.1e' % (name, dt, ntens, param_count(model), len(tensors), os.path.getsize(path),
                                    e_out, e_gx, e_gp))
        print('        out depends on t: %s; structurally zero grads: %s' %
              (meta['out_depends_on_t'], ' '.join(json.loads(meta['structurally_zero_grads'])) or '-'))
        assert e_out == 0.0 and e_gx == 0.0, 'reload does not reproduce the fixture'
        assert e_gp <= (0.0 if dt == 'F64' else 1e-6 * max(1.0, max(float(np.abs(v).max()) for k, v in tensors.items() if k.startswith('grad.')))), 'gradient reload mismatch'

    path = os.path.join(out_dir, 'ops.safetensors')
    rec = make_ops(path)
    tensors, _ = verify(path, [k for k, _ in rec])
    print('ops     F64  %d keys, %d bytes' % (len(tensors), os.path.getsize(path)))
    print('        structurally zero grads: %s' % (' '.join(DEAD_OPS) or '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
