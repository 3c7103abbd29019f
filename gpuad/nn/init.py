"""nn.init: in-place initialisers with torch.nn.init's names, arguments and formulas.

They write into a tensor's array on its own device (no grad is recorded; the tensor's version is
bumped so a graph recorded before cannot silently use the new values), drawing from gpuad's seeded
per-device generators (gpuad.manual_seed). Used by layers.py; knows nothing of Modules.
"""
import math
import numbers
import warnings

import numpy

from .. import backend
from ..backend import xp_of


def _write(tensor, values):
    tensor._bump_version()
    tensor.array[...] = values
    return tensor


def _draw(kind, tensor, shape=None, generator=None):
    dtype = tensor.dtype if tensor.dtype in (backend.float32, backend.float64) else backend.float32
    return backend.random.draw(kind, tensor.shape if shape is None else shape, dtype,
                               tensor.device, generator=generator)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b), drawn from `generator` (a gpuad.Generator) or the seeded default."""
    return _write(tensor, _draw("uniform", tensor, generator=generator) * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std^2), drawn from `generator` or the seeded default."""
    return _write(tensor, _draw("normal", tensor, generator=generator) * std + mean)


def constant_(tensor, val):
    tensor._bump_version()
    tensor.array.fill(val)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity, like torch.nn.init.calculate_gain: 1 for linear,
    conv and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu
    (slope `param`, default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) = (size(1), size(0)) times the receptive field (the product of the
    remaining dims), as in torch."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 "
                         f"dimensions (shape {tuple(tensor.shape)})")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out  # torch's (private) spelling


def _calculate_correct_fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of 'fan_in', 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al., 2015); `a` is the leaky_relu slope.
    Linear and Conv2d use a=sqrt(5), which gives b = 1 / sqrt(fan_in), as in torch."""
    if 0 in tensor.shape:
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan) (He et al., 2015)."""
    if 0 in tensor.shape:
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) truncated to [a, b] (absolute bounds, as torch's), by torch's method: uniform
    draws between the bounds' normal CDFs, mapped back through erfinv, clamped against rounding."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)

    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0
    low, high = cdf((a - mean) / std), cdf((b - mean) / std)
    values = _draw("uniform", tensor, generator=generator) * (2 * high - 2 * low) + (2 * low - 1)
    values = backend.special.erfinv(values) * (std * math.sqrt(2.0)) + mean
    return _write(tensor, xp_of(values).clip(values, a, b))


def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix times `gain` (Saxe et al., 2013), as torch's: the Q of a normal
    draw's QR, its columns' signs set by R's diagonal; dims after the first are flattened."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported "
                         f"(shape {tuple(tensor.shape)})")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _draw("normal", tensor, (rows, cols), generator)
    if rows < cols:
        flat = flat.T
    xp = xp_of(flat)
    q, r = xp.linalg.qr(flat)
    q *= xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return _write(tensor, (q * gain).reshape(tensor.shape))


def eye_(tensor):
    """The identity matrix (a 2-D tensor), as torch's eye_."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported (shape {tuple(tensor.shape)})")
    return _write(tensor, xp_of(tensor.array).eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor, groups=1):
    """The Dirac delta of a 3-, 4- or 5-D convolution weight, as torch's: each of the first
    min(out_channels / groups, in_channels) channels of a group passes its input channel through
    at the kernel's centre, so the convolution keeps as many channels as it can."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported (shape "
                         f"{tuple(tensor.shape)})")
    out_channels, in_channels, *kernel = tensor.shape
    if out_channels % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({out_channels}) must be divisible by groups ({groups})")
    per_group = out_channels // groups
    values = numpy.zeros(tensor.shape, dtype=tensor.dtype)
    centre = tuple(k // 2 for k in kernel)
    for g in range(groups):
        for d in range(min(per_group, in_channels)):
            values[(g * per_group + d, d) + centre] = 1
    return _write(tensor, backend.to_device(values, tensor.device))


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A 2-D tensor of N(0, std^2) with ceil(sparsity * rows) zeros at random rows of every column
    (Martens, 2010), as torch's sparse_."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only 2-D tensors are supported (shape {tuple(tensor.shape)})")
    rows, cols = tensor.shape
    zeros = math.ceil(sparsity * rows)
    values = _draw("normal", tensor, generator=generator) * std
    xp = xp_of(values)
    # each column's rows in a random order (the ranks of uniform draws); its first `zeros` go
    ranks = xp.argsort(xp.argsort(_draw("uniform", tensor, generator=generator), axis=0), axis=0)
    return _write(tensor, xp.where(ranks < zeros, 0, values).astype(values.dtype, copy=False))
