"""RMSNorm, GroupNorm, BatchNorm1d/2d, InstanceNorm1d/2d/3d and LocalResponseNorm (functional
rms_norm, group_norm, instance_norm and local_response_norm, and their Modules), with torch.nn's
names, defaults, parameter layouts and formulas, so state_dicts map one to one.

Kept out of layers.py and functional.py, which are near their size budget; nn.functional
re-exports the functions. All are composites of gpuad ops, so they run on either backend
and are differentiable to any order.
"""
import math
import numbers
import warnings

import numpy

from .. import backend, creation, ops
from ..autograd import no_grad
from . import functional as F
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


# ---- instance norm and local response norm -----------------------------------------------------
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) of (N, C, *) over its spatial dims (biased variance), then
    scale and shift per channel, like torch.nn.functional.instance_norm. With use_input_stats and
    running buffers, the buffers move in place by `momentum` toward the batch average of the
    per-instance means and UNBIASED variances; without use_input_stats the running ones
    normalise."""
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected an input of shape (N, C, *) with at least one "
                         f"spatial dim, got {tuple(input.shape)}")
    n, channels = input.shape[:2]
    for what, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_affine("instance_norm", what, t, (channels,), input)
    per_channel = (1, channels) + (1,) * (input.ndim - 2)
    if use_input_stats:
        dims = tuple(range(2, input.ndim))
        count = math.prod(input.shape[2:])
        if count <= 1:
            raise ValueError(f"instance_norm: expected more than 1 spatial element when "
                             f"training, got input of shape {tuple(input.shape)}")
        mean = ops.mean(input, dims, keepdim=True)
        var = ops.var(input, dim=dims, keepdim=True, correction=0)
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(ops.mean(mean.reshape((n, channels)), 0)
                                                     * momentum)
            if running_var is not None:
                unbiased = ops.mean(var.reshape((n, channels)), 0) * (count / (count - 1))
                running_var.mul_(1 - momentum).add_(unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are required when "
                             "use_input_stats=False")
        mean, var = running_mean.reshape(per_channel), running_var.reshape(per_channel)
    out = (input - mean) * ops.rsqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    return out if bias is None else out + bias.reshape(per_channel)


class _NormBase(Module):
    """Shared by the batch and instance norms: optional affine weight (ones) and bias (zeros) and
    optional running statistics (running_mean zeros, running_var ones, num_batches_tracked), as
    torch's _NormBase."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device, dtype,
                 bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = {"device": device, "dtype": dtype}
        self.register_parameter("weight", Parameter(creation.ones(num_features, **kw))
                                if affine else None)
        self.register_parameter("bias", Parameter(creation.zeros(num_features, **kw))
                                if affine and bias else None)
        tracked = track_running_stats
        self.register_buffer("running_mean", creation.zeros(num_features, **kw) if tracked
                             else None)
        self.register_buffer("running_var", creation.ones(num_features, **kw) if tracked
                             else None)
        self.register_buffer("num_batches_tracked", creation.tensor(0, device=device)
                             if tracked else None)

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean), init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)


class _BatchNorm(_NormBase):
    """Shared by BatchNorm1d/2d: affine and tracking running statistics by default;
    momentum=None means a cumulative average of all batches seen, as in torch."""
    _input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, input):
        if input.ndim not in self._input_dims:
            dims = " or ".join(map(str, self._input_dims))
            raise ValueError(f"{type(self).__name__}: expected a {dims}-D input, got shape "
                             f"{tuple(input.shape)}")
        if input.shape[1] != self.num_features:  # before the running statistics move
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input with "
                             f"{self.num_features} channels in dim 1, got shape "
                             f"{tuple(input.shape)}")
        check_dtypes(self, input, self.running_mean, self.running_var, self.weight,
                     self.bias, kind="norm", what="parameters")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average: needs the count on the host
                factor = 1.0 / self.num_batches_tracked.item()
        use_batch_stats = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, like torch.nn.BatchNorm1d."""
    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, like torch.nn.BatchNorm2d."""
    _input_dims = (4,)


class _InstanceNorm(_NormBase):
    """Shared by InstanceNorm1d/2d/3d: no affine parameters and no running statistics by
    default, as in torch."""
    _d = 1

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, input):
        d, name = self._d, type(self).__name__
        if input.ndim not in (d + 1, d + 2):
            raise ValueError(f"{name}: expected a {d + 1}-D (C, *) or {d + 2}-D (N, C, *) input, "
                             f"got shape {tuple(input.shape)}")
        channel_dim = input.ndim - d - 1
        if input.shape[channel_dim] != self.num_features:
            message = (f"{name}({self.num_features}): expected input with {self.num_features} "
                       f"channels in dim {channel_dim}, got shape {tuple(input.shape)}")
            if self.affine:  # before any running statistic moves
                raise ValueError(message)
            warnings.warn(message + "; num_features is unused because affine=False (torch warns "
                          "too)", UserWarning, stacklevel=2)
        unbatched = input.ndim == d + 1
        x = input.unsqueeze(0) if unbatched else input
        out = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats,
                            0.0 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L), like torch.nn.InstanceNorm1d (affine=False
    and track_running_stats=False by default)."""
    _d = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W), like torch.nn.InstanceNorm2d."""
    _d = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W), like torch.nn.InstanceNorm3d."""
    _d = 3


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta, the window zero-padded
    by size // 2 before and (size - 1) // 2 after (dividing by size throughout), like
    torch.nn.functional.local_response_norm."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected a 3-D or higher input (N, C, *), got "
                         f"shape {tuple(input.shape)}")
    if input.numel() == 0:
        return input
    channels = input.shape[1]
    squares = ops.pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    total = squares[:, 0:channels]
    for i in range(1, size):
        total = total + squares[:, i:i + channels]
    return input / (total * (alpha / size) + k) ** beta


class LocalResponseNorm(Module):
    """Local response normalisation across channels, like torch.nn.LocalResponseNorm."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
