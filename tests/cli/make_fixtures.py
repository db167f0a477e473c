#!/usr/bin/python3
"""Inputs for tests/cli/test_cli.sh (run with /usr/bin/python3: numpy, h5py).

fixtures/nan_input.h5: an 'input' tensor (2, 3, 32, 32) for qcal infer on
swin-micro-cifar10, seeded normal values with one NaN at [1, 2, 3, 4].
Rerunning rewrites an identical file (fixed seed, no HDF5 timestamps).
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    os.makedirs(os.path.join(HERE, 'fixtures'), exist_ok=True)
    x = np.random.RandomState(11).randn(2, 3, 32, 32).astype(np.float32)
    x[1, 2, 3, 4] = np.nan
    with h5py.File(os.path.join(HERE, 'fixtures', 'nan_input.h5'), 'w', track_order=False) as f:
        f.create_dataset('input', data=x, track_times=False)


if __name__ == '__main__':
    main()
