"""RMSNorm and GroupNorm (functional rms_norm and group_norm, and their Modules), with torch.nn's
names, defaults, parameter layouts and formulas, so state_dicts map one to one.

Kept out of layers.py and functional.py, which are near their size budget; nn.functional
re-exports rms_norm and group_norm. Both are composites of gpuad ops, so they run on either
backend and are differentiable to any order.
"""
import numbers

import numpy

from .. import backend, creation, ops
from . import init
from .checks import REDUCED, check_dtypes
from .module import Module, Parameter


def _as_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def _check_affine(name, what, t, expected, input):
    if t is not None and tuple(t.shape) != expected:
        raise ValueError(f"{name}: {what} of shape {tuple(t.shape)} does not fit the input of "
                         f"shape {tuple(input.shape)}; expected {expected}")


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the last len(normalized_shape) dims, times weight, like
    torch.nn.functional.rms_norm. eps=None means the machine epsilon of the input's dtype
    (torch.finfo(dtype).eps), as in torch: 1.2e-7 for float32, 2.2e-16 for float64."""
    shape = _as_shape(normalized_shape)
    k = len(shape)
    if not 0 < k <= input.ndim or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(f"rms_norm: normalized_shape {shape} does not match the last dims of the "
                         f"input of shape {tuple(input.shape)}; pass the trailing sizes, e.g. "
                         f"{tuple(input.shape[-1:])}")
    if input.dtype.kind != "f":
        raise TypeError(f"rms_norm: expected a floating point input, got dtype {input.dtype}; "
                        f"convert it with .float()")
    _check_affine("rms_norm", "weight", weight, shape, input)
    if eps is None:
        eps = float(numpy.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    # like torch: float16/bfloat16 computed in float32, and the result in the input's dtype
    # whatever the weight's (torch mixes dtypes here without an error, unlike the other norms)
    x = input.to(backend.float32) if input.dtype in REDUCED else input
    out = x * ops.rsqrt(ops.mean(x * x, dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out if out.dtype == input.dtype else out.to(input.dtype)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise (N, C, *) over each group of C / num_groups consecutive channels together with
    all the trailing dims (biased variance), then scale and shift per channel, like
    torch.nn.functional.group_norm."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected an input of shape (N, C, *), got "
                         f"{tuple(input.shape)}")
    n, channels = input.shape[:2]
    if num_groups <= 0 or channels % num_groups:
        raise ValueError(f"group_norm: the {channels} channels (dim 1) of the input of shape "
                         f"{tuple(input.shape)} do not split into num_groups={num_groups} equal "
                         f"groups; use a num_groups that divides {channels}")
    _check_affine("group_norm", "weight", weight, (channels,), input)
    _check_affine("group_norm", "bias", bias, (channels,), input)
    back = check_dtypes("group_norm", input, weight, bias, kind="norm",
                            what="parameters")
    if back is not None:  # torch's mixed precision: computed in float32, the input's dtype out
        input = input.to(backend.float32)
    grouped = input.reshape((n, num_groups, -1))
    centered = grouped - ops.mean(grouped, -1, keepdim=True)
    variance = ops.mean(centered * centered, -1, keepdim=True)
    out = (centered * ops.rsqrt(variance + eps)).reshape(tuple(input.shape))
    per_channel = (1, channels) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out if back is None else out.to(back)


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing normalized_shape dims with an elementwise
    weight (ones) and no bias, like torch.nn.RMSNorm; eps=None means the input dtype's machine
    epsilon, chosen at each call as torch does."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape, self.eps = _as_shape(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter("weight", Parameter(creation.ones(
            *self.normalized_shape, device=device, dtype=dtype)) if elementwise_affine else None)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Group normalisation of (N, C, *) inputs with per-channel weight (ones) and bias (zeros;
    none with bias=False), like torch.nn.GroupNorm: no running statistics, so training and eval
    compute the same."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 *, bias=True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        kw = {"device": device, "dtype": dtype}
        self.register_parameter("weight", Parameter(creation.ones(num_channels, **kw))
                                if affine else None)
        self.register_parameter("bias", Parameter(creation.zeros(num_channels, **kw))
                                if affine and bias else None)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.extra_repr()}): expected an input of shape "
                             f"(N, {self.num_channels}, *), got {tuple(input.shape)}")
        check_dtypes(self, input, self.weight, self.bias, kind="norm", what="parameters")
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
