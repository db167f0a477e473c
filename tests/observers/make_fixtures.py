#!/usr/bin/python3
"""Fixtures for tests/observers: torch.ao observers' results on seeded data.

Writes tests/observers/fixtures/observers.h5 (run with /usr/bin/python3,
torch 1.13):

  cases/<case>/batches/<k>          float32 batches, fed in order
  cases/<case>/minmax/<cfg>         [scale, zero_point, min_val, max_val]
  cases/<case>/moving_average/<cfg> same, MovingAverageMinMaxObserver(0.01)
  cases/<case>/histogram/<cfg>/...  HistogramObserver: hist, summary (range,
                                    clip, qparams; fixed and unpatched torch),
                                    L2 errors at a few bin pairs
  cases/<case>/histogram1/<cfg>/... the same for the first batch alone
  cases/<case>/entropy/<levels>     reference TensorRT KL search on the
                                    dyadic |x| histogram: hist, exp, best i
  perchannel/w0, w1, perchannel/<cfg>/{scales,zero_points}

Every <cfg> names a dtype and scheme; its attributes say which qcal dtype
it is (the 16/4-bit cases use torch's custom quant_min/quant_max).

torch 1.13's HistogramObserver calls torch.histc(x, min=int(min_val),
max=int(max_val)): the integer truncation drops values and misplaces bins
whenever the range is not within (-1, 1).  qcal follows the observer with
the exact float range.  The reference here is torch's own observer with
just that changed - the observer module's global name `int` is shadowed
for 0-dim float tensors only - and the unpatched observer's results are
stored beside it, flagged where the two agree.
"""
import builtins
import math
import os

import h5py
import numpy as np
import torch
import torch.ao.quantization.observer as obsmod
from torch.ao.quantization.observer import (HistogramObserver, MinMaxObserver,
                                            MovingAverageMinMaxObserver,
                                            PerChannelMinMaxObserver)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'fixtures', 'observers.h5')

# name: (torch dtype, symmetric, quant_min, quant_max, qcal dtype)
CONFIGS = {
    'qint8_sym': (torch.qint8, True, None, None, 'int8'),
    'qint8_aff': (torch.qint8, False, None, None, 'int8'),
    'quint8_sym': (torch.quint8, True, None, None, 'uint8'),
    'quint8_aff': (torch.quint8, False, None, None, 'uint8'),
    'int16_sym': (torch.qint32, True, -32768, 32767, 'int16'),
    'int16_aff': (torch.qint32, False, -32768, 32767, 'int16'),
    'uint16_aff': (torch.quint8, False, 0, 65535, 'uint16'),
    'int4_sym': (torch.qint8, True, -8, 7, 'int4'),
    'uint4_aff': (torch.quint8, False, 0, 15, 'uint4'),
    'int32_sym': (torch.qint32, True, None, None, 'int32'),
}
HIST_CONFIGS = ['quint8_aff', 'qint8_sym', 'qint8_aff', 'quint8_sym']
ENTROPY_BINS = 4096
# qcal's enum qcal_dtype values (core/dtype.h)
DTYPE_CODES = {'int4': 1, 'uint4': 2, 'int8': 3, 'uint8': 4, 'int16': 5,
               'uint16': 6, 'int32': 7}


def put(grp, name, data):
    """A compressed dataset (the file is committed; keep it small)."""
    data = np.asarray(data)
    if data.size > 1024:
        return grp.create_dataset(name, data=data, compression='gzip',
                                  compression_opts=9, shuffle=True)
    return grp.create_dataset(name, data=data)


def kwargs(cfg, per_channel=False):
    dtype, sym, qmin, qmax, _ = CONFIGS[cfg]
    if per_channel:
        scheme = torch.per_channel_symmetric if sym else torch.per_channel_affine
    else:
        scheme = torch.per_tensor_symmetric if sym else torch.per_tensor_affine
    kw = dict(dtype=dtype, qscheme=scheme)
    if qmin is not None:
        kw.update(quant_min=qmin, quant_max=qmax)
    return kw


def cfg_attrs(node, cfg):
    _, sym, _, _, qdtype = CONFIGS[cfg]
    node.attrs['dtype'] = qdtype
    node.attrs['symmetric'] = int(sym)


def make_cases():
    g = torch.Generator().manual_seed(20240601)
    sizes = [3000, 4001, 3503]
    cases = {}

    def rn(n, *, scale=1.0):
        return torch.randn(n, generator=g) * scale

    cases['normal'] = [rn(n, scale=s) for n, s in zip(sizes, [1.0, 1.5, 2.5])]
    # heavy tails: Student t with 2 degrees of freedom
    def student(n):
        z = torch.randn(n, generator=g)
        chi2 = (torch.randn(n, 2, generator=g) ** 2).sum(1)
        return z / torch.sqrt(chi2 / 2)
    cases['heavy'] = [student(n) * 0.7 for n in sizes]
    # one-sided, most values tiny: softmax over rows of 49 (window attention)
    def softmax(n):
        rows = (n + 48) // 49
        p = torch.softmax(torch.randn(rows, 49, generator=g) * 2.5, dim=1)
        return p.flatten()[:n]
    cases['softmax'] = [softmax(n) for n in sizes]
    # a bulk with a handful of large outliers in the middle batch
    out = [rn(n) for n in sizes]
    out[1][::997] = torch.tensor([40.0, -35.0, 55.0, -60.0, 38.0, 47.0, -41.0])[: out[1][::997].numel()]
    cases['outliers'] = out
    # GELU outputs: a small negative dip, a long positive tail
    cases['gelu'] = [torch.nn.functional.gelu(rn(n, scale=2.0)) for n in sizes]
    # inside (-1, 1): torch 1.13's int() truncation of the range is harmless
    cases['small'] = [torch.tanh(rn(n, scale=0.8)) * 0.9 for n in sizes]
    # all positive, far from zero
    cases['shifted'] = [rn(n, scale=0.5) + 5.0 for n in sizes]
    return {k: [b.float().contiguous() for b in v] for k, v in cases.items()}


def run_observer(obs, batches):
    for b in batches:
        obs(b)
    scale, zp = obs.calculate_qparams()
    return scale, zp


def minmax_records(grp, batches):
    """One table per kind: a row [scale, zero_point, min_val, max_val] per
    config, in CONFIGS order (the 'configs' attribute)."""
    for kind, cls in (('minmax', MinMaxObserver),
                      ('moving_average', MovingAverageMinMaxObserver)):
        rows = []
        for cfg in CONFIGS:
            obs = cls(**kwargs(cfg))
            scale, zp = run_observer(obs, batches)
            rows.append([float(scale[0]), float(zp[0]), float(obs.min_val), float(obs.max_val)])
        put(grp, kind, np.array(rows, np.float64))


def exact_int(v):
    """int() for the fixed observer: the exact float of a 0-dim float tensor."""
    if torch.is_tensor(v) and v.is_floating_point() and v.dim() == 0:
        return float(v)
    return builtins.int(v)


def histogram_run(cfg, batches, patched):
    if patched:
        obsmod.int = exact_int
    try:
        obs = HistogramObserver(**kwargs(cfg))
        for b in batches:
            obs(b)
        scale, zp = obs.calculate_qparams()
        new_min, new_max = obs._non_linear_param_search()
        bins = obs.bins
        pairs = [(0, bins - 1), (100, 1900), (700, 1300), (0, 1000)]
        errors = [[s, e, obs._compute_quantization_error(s, e)] for s, e in pairs]
        # range (2), clip (2), scale, zero point
        summary = [float(obs.min_val), float(obs.max_val), float(new_min),
                   float(new_max), float(scale[0]), float(zp[0])]
        return obs.histogram.numpy().astype(np.float32), summary, errors
    finally:
        if patched:
            del obsmod.int


def histogram_records(grp, batches, name='histogram'):
    """Per config: hist (the fixed observer's), summary rows [fixed, stock]
    of [min_val, max_val, clip_min, clip_max, scale, zero_point], and L2
    errors [start, end, error] of the fixed observer."""
    sub = grp.create_group(name)
    for cfg in HIST_CONFIGS:
        hist, fixed, errors = histogram_run(cfg, batches, True)
        stock_hist, stock, _ = histogram_run(cfg, batches, False)
        c = sub.create_group(cfg)
        cfg_attrs(c, cfg)
        put(c, 'hist', hist)
        put(c, 'summary', np.array([fixed, stock], np.float64))
        put(c, 'errors', np.array(errors, np.float64))
        c.attrs['stock_equals_fixed'] = int(np.array_equal(hist, stock_hist) and fixed == stock)


# ---- reference entropy calibration, straight from the definition ----

def dyadic_abs_hist(batches, bins):
    """qcal's histogram of |x|: cells [k 2^e, (k+1) 2^e), e the smallest
    exponent >= ilogb(max|x|) - 23 (and >= -172) with max|x| in the first
    `bins` cells.  Exact: float32 * 2^-e and floor are exact in float64."""
    a = np.abs(np.concatenate([b.numpy() for b in batches]).astype(np.float64))
    amax = float(a.max())
    e = (math.frexp(amax)[1] - 1 - 23) if amax > 0 else -172
    e = max(e, -172)
    while math.floor(amax * 2.0 ** -e) >= bins:
        e += 1
    k = np.floor(a * 2.0 ** -e).astype(np.int64)
    return np.bincount(k, minlength=bins)[:bins].astype(np.float64), e, amax


def kl_reference(hist, levels):
    """TensorRT's entropy calibration (Migacz, GTC 2017) over thresholds
    i = levels..used: returns (best i, its KL, all KLs)."""
    used = int(np.nonzero(hist)[0][-1]) + 1
    b = hist[:used]
    total = b.sum()
    best_i, best_kl, kls = used, math.inf, {}
    if levels >= used:
        return used, 0.0, kls
    for i in range(levels, used + 1):
        p = b[:i].copy()
        p[i - 1] += b[i:].sum()
        group = (np.arange(i) * levels) // i
        q = np.zeros(i)
        for gidx in range(levels):
            m = group == gidx
            nz = m & (b[:i] > 0)
            if nz.any():
                q[nz] = b[:i][m].sum() / nz.sum()
        pn = p / total
        if q.sum() == 0:
            kls[i] = math.inf
            continue
        qn = q / q.sum()
        if np.any((pn > 0) & (qn == 0)):
            kl = math.inf
        else:
            nzp = pn > 0
            kl = float(np.sum(pn[nzp] * np.log(pn[nzp] / qn[nzp])))
        kls[i] = kl
        if kl <= best_kl:
            best_i, best_kl = i, kl
    return best_i, best_kl, kls


def entropy_records(grp, batches):
    sub = grp.create_group('entropy')
    hist, e, amax = dyadic_abs_hist(batches, ENTROPY_BINS)
    put(sub, 'hist', hist.astype(np.int64))
    sub.attrs['exp'] = e
    sub.attrs['bins'] = ENTROPY_BINS
    lo = min(float(b.min()) for b in batches)
    hi = max(float(b.max()) for b in batches)
    one_sided = lo >= 0 or hi <= 0
    # int8 symmetric (128 levels), int4 symmetric (8), and for one-signed
    # data uint8 asymmetric (256 levels over |x|)
    runs = [('int8_sym', 'int8', 1, 128), ('int4_sym', 'int4', 1, 8)]
    if one_sided:
        runs.append(('uint8_aff', 'uint8', 0, 256))
    table, probes = [], []
    for name, dtype, sym, levels in runs:
        best, kl, kls = kl_reference(hist, levels)
        table.append([DTYPE_CODES[dtype], sym, levels, best, kl])
        # the divergence at a few thresholds, to check the fast formula
        for i in sorted(kls)[:: max(1, len(kls) // 7)]:
            probes.append([levels, i, kls[i]])
    # rows [dtype code, symmetric, levels, best i, its KL]
    put(sub, 'runs', np.array(table, np.float64))
    put(sub, 'probes', np.array(probes, np.float64).reshape(-1, 3))


def perchannel_records(f):
    g = torch.Generator().manual_seed(77)
    C, K = 64, 75
    scales = torch.logspace(-3, 0.5, C)
    w0 = torch.randn(C, K, generator=g) * scales[:, None]
    w0[3] = w0[3].abs() + 0.01       # all positive
    w0[5] = -w0[5].abs() - 0.02      # all negative
    w0[7] = 0.25                     # constant
    w0[9] = 0.0                      # all zero
    w1 = w0 * 0.8
    w1[::4] *= 1.6                   # some rows grow in the second update
    w0, w1 = w0.float().contiguous(), w1.float().contiguous()
    grp = f.create_group('perchannel')
    put(grp, 'w0', w0.numpy())
    put(grp, 'w1', w1.numpy())
    for cfg in ['qint8_sym', 'qint8_aff', 'quint8_aff', 'quint8_sym', 'int16_sym', 'int16_aff']:
        obs = PerChannelMinMaxObserver(ch_axis=0, **kwargs(cfg, per_channel=True))
        obs(w0)
        obs(w1)
        s, z = obs.calculate_qparams()
        c = grp.create_group(cfg)
        cfg_attrs(c, cfg)
        put(c, 'scales', s.numpy().astype(np.float32))
        put(c, 'zero_points', z.numpy().astype(np.int64))


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    cases = make_cases()
    with h5py.File(OUT + '.tmp', 'w', libver='latest') as f:
        f.attrs['torch_version'] = str(torch.__version__)
        f.attrs['configs'] = ','.join(CONFIGS)
        f.attrs['config_dtypes'] = np.array([DTYPE_CODES[c[4]] for c in CONFIGS.values()], np.int64)
        f.attrs['config_symmetric'] = np.array([int(c[1]) for c in CONFIGS.values()], np.int64)
        for name, batches in cases.items():
            grp = f.create_group('cases/' + name)
            for k, b in enumerate(batches):
                put(grp, 'batches/%d' % k, b.numpy())
            grp.attrs['num_batches'] = len(batches)
            minmax_records(grp, batches)
            histogram_records(grp, batches)
            # the first batch alone: where it lies within (-1, 1), unpatched
            # torch 1.13 agrees (histc(min=0, max=0) falls back to the data's
            # own range); later batches never do, the combined range differs
            histogram_records(grp, batches[:1], 'histogram1')
            entropy_records(grp, batches)
            print(name, 'done', flush=True)
        perchannel_records(f)
    os.replace(OUT + '.tmp', OUT)
    print('wrote', OUT)


if __name__ == '__main__':
    main()
