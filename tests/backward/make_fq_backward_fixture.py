#!/usr/bin/python3
"""Fixture for tests/backward/test_fq_backward.c: PyTorch's LSQ backward
(torch._fake_quantize_learnable_per_tensor_affine / _per_channel_affine: the
gradients of x and of the scale, with a grad_factor) on seeded inputs with
ties at .5, values on both clamp boundaries and far outside, for several
dtypes; and the two training losses with their logit gradients
(F.cross_entropy with label smoothing, and T^2 * KL(teacher || student) at
temperature T).  Writes tests/backward/fixtures/fq_backward.h5."""
import os
import h5py
import numpy as np
import torch
import torch.nn.functional as F

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'fq_backward.h5')
g = torch.Generator().manual_seed(4321)
cases = [  # name, scale, zero_point, qmin, qmax, grad_factor
    ('int8_sym', 0.0371, 0, -128, 127, 1.0 / (1000 * 127) ** 0.5),
    ('uint8_aff', 0.0123, 118, 0, 255, 0.25),
    ('int16_sym', 1.3e-4, 0, -32768, 32767, 1.0),
    ('int4_sym', 0.21, 0, -8, 7, 0.5),
    ('int8_aff_pos', 0.05, 36, -128, 127, 1.0),
    # PyTorch's backward departs from its own forward in these two (see
    # test_fq_backward.c); 'consistent_*' below holds the forward-consistent
    # LSQ values qcal computes
    ('uint8_odd_zp', 0.0123, 117, 0, 255, 0.25),
    ('int8_neg_zp', 0.05, -37, -128, 127, 1.0),
]


def lsq_consistent(x, dy, s, z, lo, hi, gf):
    """LSQ backward with q = round(x * (1/s)) + z, as the forward quantizes
    (float32 element terms, summed in double)."""
    s = np.float32(s)
    inv = np.float32(1) / s
    q = np.rint(x * inv).astype(np.float32) + np.float32(z)
    below, above = q < lo, q > hi
    t = np.where(below, np.float32(lo - z), np.where(
        above, np.float32(hi - z), ((q - np.float32(z)) * s - x) * inv)).astype(np.float32)
    dx = np.where(below | above, np.float32(0), dy).astype(np.float32)
    return dx, np.array([(dy.astype(np.float64) * t).sum() * gf])


with h5py.File(out + '.tmp', 'w') as f:
    for name, s, z, lo, hi, gf in cases:
        x = torch.randn(1000, generator=g) * (hi - lo) * s * 0.4
        extra = [(k + 0.5) * s for k in range(-8, 8)]           # ties
        extra += [(lo - z) * s, (hi - z) * s,                   # on the bounds
                  (lo - z - 0.5) * s, (hi - z + 0.5) * s,       # ties at the bounds
                  (lo - z - 0.51) * s, (hi - z + 0.51) * s,     # just outside
                  (lo - z) * s * 50, (hi - z) * s * 50, 0.0, -0.0]
        x = torch.cat([x, torch.tensor(extra, dtype=torch.float32)]).float()
        dy = torch.randn(x.numel(), generator=g)
        xr = x.clone().requires_grad_(True)
        sc = torch.tensor([s], dtype=torch.float32, requires_grad=True)
        zp = torch.tensor([float(z)], dtype=torch.float32, requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(xr, sc, zp, lo, hi, gf)
        y.backward(dy)
        grp = f.create_group(name)
        grp['x'] = x.numpy()
        grp['dy'] = dy.numpy()
        grp['y'] = y.detach().numpy()
        grp['dx'] = xr.grad.numpy()
        grp['dscale'] = sc.grad.numpy()
        grp['params'] = np.array([np.float32(s), z, lo, hi, gf], dtype=np.float64)
        cdx, cds = lsq_consistent(x.numpy(), dy.numpy(), s, z, lo, hi, gf)
        grp['consistent_dx'] = cdx
        grp['consistent_dscale'] = cds
    # per channel along axis 0 of a (12, 50) weight, asymmetric int8
    C, inner = 12, 50
    w = torch.randn(C, inner, generator=g) * torch.linspace(0.02, 1.5, C)[:, None]
    scales = (w.abs().amax(dim=1) / 127 * torch.linspace(0.6, 1.1, C)).float()
    zps = torch.arange(C, dtype=torch.float32) - 6
    dy = torch.randn(C, inner, generator=g)
    gf = 1.0 / (inner * 127) ** 0.5
    wr = w.clone().requires_grad_(True)
    sr = scales.clone().requires_grad_(True)
    zr = zps.clone().requires_grad_(True)
    y = torch._fake_quantize_learnable_per_channel_affine(wr, sr, zr, 0, -128, 127, gf)
    y.backward(dy)
    grp = f.create_group('per_channel')
    grp['w'] = w.numpy()
    grp['scales'] = scales.numpy()
    grp['zero_points'] = zps.numpy().astype(np.int32)
    grp['dy'] = dy.numpy()
    grp['y'] = y.detach().numpy()
    grp['dw'] = wr.grad.numpy()
    grp['dscales'] = sr.grad.numpy()
    grp['params'] = np.array([-128, 127, gf], dtype=np.float64)
    # losses
    B, K = 6, 7
    logits = torch.randn(B, K, generator=g) * 3
    labels = torch.randint(0, K, (B,), generator=g)
    teacher = torch.randn(B, K, generator=g) * 2
    grp = f.create_group('loss')
    grp['logits'] = logits.numpy()
    grp['labels'] = labels.numpy()
    grp['teacher'] = teacher.numpy()
    for eps in (0.0, 0.1):
        lr = logits.clone().requires_grad_(True)
        loss = F.cross_entropy(lr, labels, label_smoothing=eps)
        loss.backward()
        grp[f'ce_{eps:g}'] = np.array([loss.item()])
        grp[f'ce_{eps:g}_grad'] = lr.grad.numpy()
    T = 4.0
    lr = logits.clone().requires_grad_(True)
    loss = F.kl_div(F.log_softmax(lr / T, dim=1), F.softmax(teacher / T, dim=1),
                    reduction='batchmean') * T * T
    loss.backward()
    grp['kd_T4'] = np.array([loss.item()])
    grp['kd_T4_grad'] = lr.grad.numpy()
os.replace(out + '.tmp', out)
print('wrote', out)
