#!/usr/bin/python3
"""Tiny checkpoints for tests/convert/test_checkpoint_errors.c (run with
/usr/bin/python3: torch 1.13, torchvision 0.14, h5py).

A seeded torchvision SwinTransformer (img 8, patch 2, embed 8, depths [2, 1],
heads [1, 2], window 2, mlp 2.0, 3 classes; every parameter random so that a
round trip that loses or swaps a tensor shows) is written in the layout of
shared/models/README.md as fixtures/good.h5, written here with h5py directly
(not by tools/convert_checkpoint.py, so that the loader's tests do not lean
on the converter).  Every other fixture is good.h5 with one thing broken; its
name says what.  Truncated files are cut from good.h5 by the C test itself,
at many lengths.

Rerunning rewrites identical files (fixed seed, no HDF5 timestamps).
"""
import json
import os

import h5py
import numpy as np
import torch
from torchvision.models.swin_transformer import SwinTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'fixtures')

CONFIG = {
    'img_size': 8, 'patch_size': 2, 'in_chans': 3, 'embed_dim': 8,
    'depths': [2, 1], 'num_heads': [1, 2], 'window_size': 2, 'mlp_ratio': 2.0,
    'num_classes': 3, 'name': 'tiny-bad-fixtures',
    'mean': [0.5, 0.25, 0.125], 'std': [0.25, 0.5, 2.0],
    'classes': ['ant', 'bee', 'cat'],
}


def tiny_state_dict():
    torch.manual_seed(20240605)
    model = SwinTransformer(
        patch_size=[2, 2], embed_dim=8, depths=[2, 1], num_heads=[1, 2],
        window_size=[2, 2], mlp_ratio=2.0, num_classes=3)
    sd = model.state_dict()
    g = torch.Generator().manual_seed(7)
    for name, t in sd.items():
        if t.is_floating_point():
            t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return sd


def write(name, sd, config=None, attrs=None, edit=None):
    """Write sd (name -> tensor or ndarray) with the given root attributes;
    edit(f) may change the open file before it is closed."""
    path = os.path.join(OUT, name)
    if os.path.exists(path):
        os.unlink(path)
    with h5py.File(path, 'w', track_order=False) as f:
        if config is not None:
            f.attrs['config'] = config if isinstance(config, str) else json.dumps(config)
        for k, v in (attrs if attrs is not None else {'input_folded': 'false'}).items():
            f.attrs[k] = v
        for k, v in sd.items():
            arr = v.numpy() if isinstance(v, torch.Tensor) else v
            f.create_dataset(k, data=arr, track_times=False)
        if edit:
            edit(f)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = tiny_state_dict()
    write('good.h5', sd, CONFIG)

    def without(key):
        d = dict(sd)
        del d[key]
        return d

    def replaced(key, value):
        d = dict(sd)
        d[key] = value
        return d

    def config_with(**kw):
        c = dict(CONFIG)
        c.update(kw)
        return c

    write('missing_tensor.h5', without('features.1.1.attn.proj.weight'), CONFIG)
    # The stage-1 MLP's first weight stored transposed: (16, 32) for (32, 16).
    write('wrong_shape.h5', replaced('features.3.0.mlp.0.weight',
                                     sd['features.3.0.mlp.0.weight'].t().contiguous()), CONFIG)
    write('dtype_float64.h5', replaced('features.1.0.norm1.weight',
                                       sd['features.1.0.norm1.weight'].double()), CONFIG)
    write('dtype_int.h5', replaced('head.bias', torch.tensor([1, 2, 3], dtype=torch.int64)),
          CONFIG)
    extra = dict(sd)
    extra['features.1.0.attn.logit_scale'] = torch.zeros(1, 1, 1)
    write('extra_tensor.h5', extra, CONFIG)
    # 3 heads cannot split stage 0's 8 channels.
    write('config_heads_not_dividing.h5', sd, config_with(num_heads=[3, 2]))
    # A valid config whose embed_dim the tensors do not have.
    write('config_embed_mismatch.h5', sd, config_with(embed_dim=16))
    # A valid config whose heads the relative position tables do not have.
    write('config_heads_mismatch.h5', sd, config_with(num_heads=[2, 2]))
    write('config_missing.h5', sd, None)
    write('config_not_json.h5', sd, 'img_size: 8\npatch_size: 2\n')
    write('config_unknown_key.h5', sd, config_with(drop_path_rate=0.1))
    # 2^32 + 2 blocks: must not wrap around to 2.
    write('config_depths_overflow.h5', sd, config_with(depths=[2, 4294967298]))
    index = sd['features.1.0.attn.relative_position_index'].clone()
    index[5] = 7
    write('relpos_index_bad.h5', replaced('features.1.0.attn.relative_position_index', index),
          CONFIG)
    write('relpos_index_short.h5',
          replaced('features.3.0.attn.relative_position_index',
                   sd['features.3.0.attn.relative_position_index'][:9].clone()), CONFIG)
    write('input_folded_bad.h5', sd, CONFIG, attrs={'input_folded': 'yes'})
    write('input_folded_not_string.h5', sd, CONFIG, attrs={'input_folded': np.bool_(True)})
    # Non-finite parameters: refused at load, naming the first bad element.
    w = sd['features.1.0.mlp.0.weight'].clone()
    w[3, 5] = float('nan')
    w[7, 1] = float('nan')
    write('nan_weight.h5', replaced('features.1.0.mlp.0.weight', w), CONFIG)
    b = sd['head.bias'].clone()
    b[2] = float('-inf')
    write('inf_bias.h5', replaced('head.bias', b), CONFIG)
    with open(os.path.join(OUT, 'not_hdf5.h5'), 'w') as f:
        f.write('{"this": "is a JSON text file, not an HDF5 checkpoint"}\n')

    for name in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(os.path.join(OUT, name)):7d}  fixtures/{name}')


if __name__ == '__main__':
    main()
