#!/usr/bin/python3
"""Fixture for tests/qat/test_optim.c: parameter trajectories of
torch.optim.AdamW and torch.optim.SGD (momentum, weight decay) over a few
steps with given gradients.  Writes tests/qat/fixtures/optim.h5."""
import os
import h5py
import numpy as np
import torch

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'optim.h5')
g = torch.Generator().manual_seed(5)
n, steps = 257, 6
p0 = torch.randn(n, generator=g)
grads = torch.randn(steps, n, generator=g) * torch.logspace(-4, 1, n)
lrs = [1e-3 * (k + 1) / steps for k in range(steps)]
with h5py.File(out + '.tmp', 'w') as f:
    f['p0'] = p0.numpy()
    f['grads'] = grads.numpy()
    f['lrs'] = np.array(lrs, dtype=np.float64)
    for name, make in [
        ('adamw', lambda p: torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)),
        ('sgd', lambda p: torch.optim.SGD([p], lr=1e-3, momentum=0.9, weight_decay=1e-4)),
    ]:
        p = torch.nn.Parameter(p0.clone())
        opt = make(p)
        traj = []
        for k in range(steps):
            for grp in opt.param_groups:
                grp['lr'] = lrs[k]
            p.grad = grads[k].clone()
            opt.step()
            traj.append(p.detach().clone())
        f[name] = torch.stack(traj).numpy()
os.replace(out + '.tmp', out)
print('wrote', out)
