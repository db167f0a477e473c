#!/usr/bin/python3
"""Fixture for tests/model/test_fakequant.c: PyTorch's fake-quantize results
(per tensor and per channel, several dtypes, ties at .5, saturation, +-inf)
on seeded inputs.  Writes tests/model/fixtures/fakequant.h5."""
import os
import h5py
import numpy as np
import torch

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'fakequant.h5')
g = torch.Generator().manual_seed(1234)
cases = [  # name, scale, zero_point, qmin, qmax
    ('int8_sym', 0.0371, 0, -128, 127),
    ('uint8_aff', 0.0123, 117, 0, 255),
    ('int16_sym', 1.3e-4, 0, -32768, 32767),
    ('int4_sym', 0.21, 0, -8, 7),
    ('int8_aff_neg', 0.05, -37, -128, 127),
]
with h5py.File(out + '.tmp', 'w') as f:
    x = torch.randn(4000, generator=g) * 3
    # exact ties: k + 0.5 steps of every case's scale, and extremes
    extra = []
    for _, s, _, _, _ in cases:
        extra += [(k + 0.5) * s for k in range(-6, 6)]
    extra += [1e30, -1e30, float('inf'), float('-inf'), 0.0, -0.0]
    x = torch.cat([x, torch.tensor(extra, dtype=torch.float32)])
    f['x'] = x.numpy()
    for name, s, z, lo, hi in cases:
        y = torch.fake_quantize_per_tensor_affine(x, s, z, lo, hi)
        grp = f.create_group(name)
        grp['y'] = y.numpy()
        grp['params'] = np.array([np.float32(s), z, lo, hi], dtype=np.float64)
    w = torch.randn(16, 100, generator=g) * torch.linspace(0.01, 2, 16)[:, None]
    scales = (w.abs().amax(dim=1) / 127).float()
    zps = torch.zeros(16, dtype=torch.int32)
    f['w'] = w.numpy()
    f['w_scales'] = scales.numpy()
    f['w_fq'] = torch.fake_quantize_per_channel_affine(w, scales, zps, 0, -128, 127).numpy()
os.replace(out + '.tmp', out)
print('wrote', out)
