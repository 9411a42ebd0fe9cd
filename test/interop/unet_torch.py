#!/usr/bin/env python3
"""Independent PyTorch reference of the kintsugi UNet (docs/unet.md).

Developer script only: PyTorch is never a dependency of the kintsugi package.
Run it with the interpreter that has torch installed (Debian: /usr/bin/python3 with python3-torch):

    /usr/bin/python3 test/interop/unet_torch.py counts
    /usr/bin/python3 test/interop/unet_torch.py keys fmnist32
    /usr/bin/python3 test/interop/unet_torch.py check CKPT.safetensors INPUTS.safetensors EXPECTED.safetensors [--tol 1e-5]

The module's state_dict keys are exactly the checkpoint keys of unet.md, so a kintsugi checkpoint loads
with load_state_dict(strict=True). safetensors files are read and written here without the safetensors
package (8-byte little-endian header length, JSON header, raw little-endian data).
"""

import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_KEYS = ('inChannels', 'outChannels', 'channels', 'mult', 'resBlocks', 'attnResolutions', 'resolution')

PRESETS = {
    'fmnist32': {'inChannels': 1, 'outChannels': 1, 'channels': 64, 'mult': [1, 2, 2], 'resBlocks': 2,
                 'attnResolutions': [8], 'resolution': 32},
    'cifar32': {'inChannels': 3, 'outChannels': 3, 'channels': 128, 'mult': [1, 2, 2, 2], 'resBlocks': 2,
                'attnResolutions': [16], 'resolution': 32},
    'tiny16': {'inChannels': 1, 'outChannels': 1, 'channels': 32, 'mult': [1, 2], 'resBlocks': 1,
               'attnResolutions': [8], 'resolution': 16},
}

# Parameter counts stated in unet.md (ground truth).
EXPECTED_COUNTS = {'fmnist32': 6469889, 'cifar32': 35746307, 'tiny16': 701345}


# ---------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------

def group_norm(c):
    """GroupNorm(c): groups = min(32, c), eps = 1e-5, per-channel affine (biased variance)."""
    return nn.GroupNorm(min(32, c), c, eps=1e-5, affine=True)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=True)


def conv1x1(cin, cout):
    return nn.Conv2d(cin, cout, kernel_size=1, stride=1, padding=0, bias=True)


def timestep_embedding(t, dim):
    """emb = concat(sin(t f_i), cos(t f_i)), f_i = exp(-ln(10000) * i / half), half = dim / 2.

    t: float tensor [N] (per-sample time). Returns [N, dim] in t's dtype.
    """
    if dim % 2 != 0:
        raise ValueError('time embedding dimension must be even, got %d' % dim)
    half = dim // 2
    i = torch.arange(half, dtype=t.dtype, device=t.device)
    f = torch.exp(-math.log(10000.0) * i / half)
    a = t[:, None] * f[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ResBlock(nn.Module):
    """h = conv1(SiLU(norm1(x))); h += time(SiLU(temb))[:, :, None, None]; h = conv2(SiLU(norm2(h)));
    out = skip(x) + h (skip: Conv1x1 only when cin != cout, else identity)."""

    def __init__(self, cin, cout, tdim):
        super().__init__()
        # Registration order = state_dict order: norm1, conv1, time, norm2, conv2, skip.
        self.norm1 = group_norm(cin)
        self.conv1 = conv3x3(cin, cout)
        self.time = nn.Linear(tdim, cout)
        self.norm2 = group_norm(cout)
        self.conv2 = conv3x3(cout, cout)
        if cin != cout:
            self.skip = conv1x1(cin, cout)
        else:
            self.skip = None
        self.cin, self.cout = cin, cout

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        s = x if self.skip is None else self.skip(x)
        return s + h


class Attention(nn.Module):
    """Single head. n = norm(x); q, k, v = split(qkv(n)); A = softmax_keys(q^T k / sqrt(c)); o = v A^T;
    out = x + proj(o)."""

    def __init__(self, c):
        super().__init__()
        self.norm = group_norm(c)
        self.qkv = conv1x1(c, 3 * c)
        self.proj = conv1x1(c, c)
        self.c = c

    def forward(self, x):
        n, c, hh, ww = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3 * c, hh * ww)
        q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]          # each [N, c, P]
        logits = torch.bmm(q.transpose(1, 2), k) / math.sqrt(c)          # [N, P(query), P(key)]
        a = torch.softmax(logits, dim=2)                                 # softmax over keys
        o = torch.bmm(v, a.transpose(1, 2))                              # [N, c, P] = v A^T
        return x + self.proj(o.reshape(n, c, hh, ww))


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3x3(c, c, stride=2)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3x3(c, c)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


# ---------------------------------------------------------------------------------------------------
# The UNet
# ---------------------------------------------------------------------------------------------------

def normalize_config(config):
    """Accept a preset name or a dict; return a dict with exactly CONFIG_KEYS (extra keys are ignored)."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError('unknown preset %r (known: %s)' % (config, ', '.join(PRESETS)))
        config = PRESETS[config]
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError('UNet config lacks %s' % ', '.join(missing))
    cfg = {k: config[k] for k in CONFIG_KEYS}
    cfg['mult'] = [int(m) for m in cfg['mult']]
    cfg['attnResolutions'] = [int(r) for r in cfg['attnResolutions']]
    for k in ('inChannels', 'outChannels', 'channels', 'resBlocks', 'resolution'):
        cfg[k] = int(cfg[k])
    levels = len(cfg['mult'])
    if levels < 1:
        raise ValueError('mult must have at least one level')
    if cfg['resolution'] % (2 ** (levels - 1)) != 0:
        raise ValueError('resolution %d not divisible by 2^(levels-1) = %d' % (cfg['resolution'], 2 ** (levels - 1)))
    if cfg['channels'] % 2 != 0:
        raise ValueError('channels must be even (time embedding)')
    return cfg


class UNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        cfg = normalize_config(config)
        self.config = cfg
        C = cfg['channels']
        tdim = 4 * C
        mult, nres, attn = cfg['mult'], cfg['resBlocks'], set(cfg['attnResolutions'])
        levels = len(mult)

        # Registration order gives the state_dict order of unet.md:
        # time.linear1, time.linear2, conv_in, down.*, mid.*, up.*, out.norm, out.conv.
        self.time = nn.ModuleDict({'linear1': nn.Linear(C, tdim), 'linear2': nn.Linear(tdim, tdim)})
        self.conv_in = conv3x3(cfg['inChannels'], C)

        down = []
        push = []            # push[k]: h goes on the skip stack after down.k
        skips = [C]          # channel counts on the skip stack
        c, res = C, cfg['resolution']
        for i, m in enumerate(mult):
            for _ in range(nres):
                down.append(ResBlock(c, C * m, tdim))
                push.append(res not in attn)
                c = C * m
                if res in attn:
                    down.append(Attention(c))
                    push.append(True)
                skips.append(c)
            if i != levels - 1:
                down.append(Downsample(c))
                push.append(True)
                skips.append(c)
                res //= 2
        self.down = nn.ModuleList(down)
        self._push = push

        self.mid = nn.ModuleList([ResBlock(c, c, tdim), Attention(c), ResBlock(c, c, tdim)])

        up = []
        for i in reversed(range(levels)):
            m = mult[i]
            for _ in range(nres + 1):
                up.append(ResBlock(c + skips.pop(), C * m, tdim))
                c = C * m
                if res in attn:
                    up.append(Attention(c))
            if i != 0:
                up.append(Upsample(c))
                res *= 2
        assert not skips, 'skip stack not empty'
        self.up = nn.ModuleList(up)

        self.out = nn.ModuleDict({'norm': group_norm(c), 'conv': conv3x3(c, cfg['outChannels'])})

    def forward(self, x, t):
        """x: [N, inChannels, R, R]; t: float tensor [N] (per-sample time)."""
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        t = t.to(dtype=x.dtype)
        emb = timestep_embedding(t, self.config['channels'])
        temb = self.time['linear2'](F.silu(self.time['linear1'](emb)))

        h = self.conv_in(x)
        hs = [h]
        for mod, push in zip(self.down, self._push):
            h = mod(h, temb) if isinstance(mod, ResBlock) else mod(h)
            if push:      # after a ResBlock (or after its Attention when it has one), and after a Downsample
                hs.append(h)

        h = self.mid[0](h, temb)
        h = self.mid[1](h)
        h = self.mid[2](h, temb)

        for mod in self.up:
            if isinstance(mod, ResBlock):
                h = mod(torch.cat([h, hs.pop()], dim=1), temb)
            else:  # Attention or Upsample
                h = mod(h)
        assert not hs, 'skip stack not empty after the up path'

        return self.out['conv'](F.silu(self.out['norm'](h)))


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------
# safetensors without the safetensors package
# ---------------------------------------------------------------------------------------------------

_DTYPES = {
    'F64': np.dtype('<f8'), 'F32': np.dtype('<f4'), 'F16': np.dtype('<f2'),
    'I64': np.dtype('<i8'), 'I32': np.dtype('<i4'), 'I16': np.dtype('<i2'), 'I8': np.dtype('i1'),
    'U8': np.dtype('u1'), 'BOOL': np.dtype('?'),
}
_NP_TO_ST = {np.dtype('float64'): 'F64', np.dtype('float32'): 'F32', np.dtype('float16'): 'F16',
             np.dtype('int64'): 'I64', np.dtype('int32'): 'I32', np.dtype('int16'): 'I16',
             np.dtype('int8'): 'I8', np.dtype('uint8'): 'U8', np.dtype('bool'): 'BOOL'}


def read_safetensors(path):
    """Returns (ordered dict name -> numpy array, metadata dict). Tensors are in file (offset) order.
    BF16 is widened to float32."""
    with open(path, 'rb') as fh:
        raw = fh.read()
    if len(raw) < 8:
        raise ValueError('%s: too short for a safetensors file' % path)
    (n,) = struct.unpack('<Q', raw[:8])
    if 8 + n > len(raw):
        raise ValueError('%s: header length %d exceeds the file' % (path, n))
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', None) or {}
    data = memoryview(raw)[8 + n:]
    entries = sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0])
    out = {}
    for name, info in entries:
        begin, end = info['data_offsets']
        shape = tuple(int(s) for s in info['shape'])
        dt = info['dtype']
        count = int(np.prod(shape)) if shape else 1
        if dt == 'BF16':
            if end - begin != 2 * count:
                raise ValueError('%s: %s has %d bytes, expected %d' % (path, name, end - begin, 2 * count))
            u16 = np.frombuffer(data[begin:end], dtype='<u2').astype(np.uint32) << 16
            arr = u16.view(np.float32).reshape(shape)
        else:
            if dt not in _DTYPES:
                raise ValueError('%s: unsupported dtype %s for %s' % (path, dt, name))
            npdt = _DTYPES[dt]
            if end - begin != npdt.itemsize * count:
                raise ValueError('%s: %s has %d bytes, expected %d' % (path, name, end - begin, npdt.itemsize * count))
            arr = np.frombuffer(data[begin:end], dtype=npdt).reshape(shape).copy()
        out[name] = arr
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, array) or dict (insertion order kept). Arrays keep their dtype
    (float64 -> F64, float32 -> F32, ...). metadata: dict of str -> str, stored under __metadata__.
    The header is padded with spaces so the data starts at an 8-byte aligned offset."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header = {}
    if metadata:
        header['__metadata__'] = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, arr in items:
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.ascontiguousarray(arr)
        dt = _NP_TO_ST.get(arr.dtype)
        if dt is None:
            raise ValueError('unsupported numpy dtype %s for %s' % (arr.dtype, name))
        b = arr.astype(arr.dtype.newbyteorder('<'), copy=False).tobytes()
        if name in header:
            raise ValueError('duplicate tensor name %s' % name)
        header[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    pad = (8 - (8 + len(hjson)) % 8) % 8
    hjson += b' ' * pad
    with open(path, 'wb') as fh:
        fh.write(struct.pack('<Q', len(hjson)))
        fh.write(hjson)
        for b in blobs:
            fh.write(b)


# Training state that a kintsugi checkpoint may carry beside the model weights: not part of the state_dict.
IGNORED_PREFIXES = ('ema.', 'optim.')


def load_checkpoint(path):
    """Read a kintsugi checkpoint; build the UNet from metadata["kintsugi.config"]; load_state_dict(strict=True).
    Returns (model (float32), metadata dict). Tensors with the 'ema.' prefix (EMA weights) or the 'optim.'
    prefix (optimizer moments), if present, are ignored here."""
    tensors, meta = read_safetensors(path)
    if 'kintsugi.config' not in meta:
        raise ValueError('%s: __metadata__ lacks "kintsugi.config"' % path)
    cfg = json.loads(meta['kintsugi.config'])
    model = UNet(cfg)
    sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()
          if not k.startswith(IGNORED_PREFIXES)}
    model.load_state_dict(sd, strict=True)
    return model, meta


def save_checkpoint(path, model, metadata=None):
    """Write model's state_dict as F32 in state_dict order, with metadata["kintsugi.config"] set."""
    meta = dict(metadata or {})
    meta['kintsugi.config'] = json.dumps(model.config)
    tensors = [(k, v.detach().to(torch.float32).cpu().numpy()) for k, v in model.state_dict().items()]
    write_safetensors(path, tensors, meta)


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------

def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(b.ravel())
    num = np.linalg.norm((a - b).ravel())
    return num / den if den > 0 else num


def cmd_check(args):
    tol = 1e-5
    pos = []
    i = 0
    while i < len(args):
        if args[i] == '--tol':
            tol = float(args[i + 1])
            i += 2
        elif args[i].startswith('--tol='):
            tol = float(args[i].split('=', 1)[1])
            i += 1
        else:
            pos.append(args[i])
            i += 1
    if len(pos) != 3:
        print('usage: unet_torch.py check CKPT INPUTS EXPECTED [--tol 1e-5]', file=sys.stderr)
        return 2
    ckpt, inputs, expected = pos
    model, meta = load_checkpoint(ckpt)
    model = model.double().eval()
    inp, _ = read_safetensors(inputs)
    exp, _ = read_safetensors(expected)
    for name, src in (('x', inp), ('t', inp), ('out', exp)):
        if name not in src:
            print('missing tensor %r' % name, file=sys.stderr)
            return 2
    x = torch.from_numpy(np.asarray(inp['x'], dtype=np.float64))
    t = torch.from_numpy(np.asarray(inp['t'], dtype=np.float64)).reshape(-1)
    with torch.no_grad():
        out = model(x, t).numpy()
    want = exp['out']
    if tuple(out.shape) != tuple(want.shape):
        print('shape mismatch: torch %s, expected %s' % (tuple(out.shape), tuple(want.shape)), file=sys.stderr)
        return 1
    err = rel_l2(want, out)
    maxabs = float(np.max(np.abs(np.asarray(want, dtype=np.float64) - out))) if out.size else 0.0
    print('config %s' % json.dumps(model.config))
    print('params %d, x %s, t %s' % (param_count(model), tuple(x.shape), tuple(t.shape)))
    print('relative L2 error %.3e (max abs %.3e), tol %.1e: %s' % (err, maxabs, tol, 'OK' if err <= tol else 'FAIL'))
    return 0 if err <= tol else 1


def cmd_counts(_args):
    ok = True
    for name, cfg in PRESETS.items():
        n = param_count(UNet(cfg))
        good = n == EXPECTED_COUNTS[name]
        ok = ok and good
        print('%-9s %12s  expected %12s  %s' % (name, format(n, ','), format(EXPECTED_COUNTS[name], ','), 'ok' if good else 'MISMATCH'))
    return 0 if ok else 1


def cmd_keys(args):
    cfg = args[0] if args else 'fmnist32'
    if cfg.endswith('.json'):
        with open(cfg) as fh:
            cfg = json.load(fh)
    model = UNet(cfg)
    sd = model.state_dict()
    for k, v in sd.items():
        print('%s %s' % (k, list(v.shape)))
    print('# %d tensors, %d parameters' % (len(sd), param_count(model)))
    return 0


def main(argv):
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == 'check':
        return cmd_check(rest)
    if cmd == 'counts':
        return cmd_counts(rest)
    if cmd == 'keys':
        return cmd_keys(rest)
    print('unknown command %r (check, counts, keys)' % cmd, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
