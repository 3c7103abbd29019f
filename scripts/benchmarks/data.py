"""The benchmarks' data and initial weights: drawn or loaded once, shared by every framework."""
import math

import numpy

import gpuad
from gpuad import backend

SYNTHETIC_SIZES = (2048, 512)  # train, test images of random --synthetic data
_DATA = {}  # (device, source) -> arrays: loaded once per process, shared by mlp and cnn


def load_mnist(args):
    """(train x, train y, test x, test y) on the device: all of MNIST (or --synthetic random data
    of its shapes), images normalised float32 (N, 1, 28, 28), labels int64. Loaded once."""
    dev = gpuad.device(args.device)
    key = (dev, "synthetic" if args.synthetic else args.data)
    if key not in _DATA:
        if args.synthetic:
            rng = numpy.random.default_rng([args.seed, 7])
            arrays = []
            for n in SYNTHETIC_SIZES:
                arrays += [rng.standard_normal((n, 1, 28, 28), numpy.float32),
                           rng.integers(0, 10, n)]
        else:
            from gpuad.data.datasets import MNIST
            try:
                sets = [MNIST(args.data, train=train) for train in (True, False)]
            except FileNotFoundError as e:
                raise SystemExit(f"bench: MNIST not found ({e}).\nSet GPUAD_DATA to a folder whose "
                                 f"mnist/ holds the four IDX files, pass --data FOLDER, or run "
                                 f"with --synthetic (random data, labelled so).") from None
            arrays = [t.array for s in sets for t in s.tensors]
        _DATA[key] = [backend.to_device(a, dev) for a in arrays]
    return _DATA[key]


def torch_init(shapes, seed):
    """Weights and biases for (out, in, ...) weight shapes, drawn once with numpy like torch's
    default Linear/Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both. float32, torch's
    layout, [W1, b1, W2, b2, ...]."""
    rng = numpy.random.default_rng(seed)
    params = []
    for shape in shapes:
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        params += [rng.uniform(-bound, bound, shape).astype(numpy.float32),
                   rng.uniform(-bound, bound, shape[0]).astype(numpy.float32)]
    return params


def shuffled(arrays, seed):
    """The epoch's order: one permutation, applied once on the device, shared by every framework
    (each step then takes a contiguous slice: no gather inside the timed loop)."""
    order = numpy.random.default_rng([seed, 1]).permutation(len(arrays[0]))
    order = backend.to_device(order, backend.device_of(arrays[0]))
    return [a[order] for a in arrays]
