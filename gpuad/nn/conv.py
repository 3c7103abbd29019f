"""Convolution layers in 1, 2 and 3 spatial dims, like torch.nn.Conv1d/2d/3d and
ConvTranspose1d/2d/3d: the same parameters (names, layouts, initialisation), padding modes and
output_size, so state_dicts map one to one. The maths is gpuad.conv*d / conv_transpose*d.
"""
import math
import numbers

from .. import creation, ops
from . import init
from .checks import check_dtypes
from .module import Module, Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, d):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * d


class _ConvNd(Module):
    """What every convolution layer shares: checks, parameters, torch's initialisation (kaiming
    uniform weight with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)) and the repr."""
    _d = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        name, d = type(self).__name__, self._d
        if not isinstance(groups, numbers.Integral) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got '
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = (_tuple(v, d) for v in
                                                        (kernel_size, stride, dilation))
        self.output_padding = _tuple(output_padding, d)
        self.transposed, self.padding_mode = self._transposed, padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                                 f"('same', 'valid')")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride {self.stride}); pad explicitly instead")
            self.padding = padding
            totals = [dl * (k - 1) if padding == "same" else 0
                      for dl, k in zip(self.dilation, self.kernel_size)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            self.padding = _tuple(padding, d)
            pairs = [(p, p) for p in self.padding]
        # F.pad's order for padding_mode != 'zeros': (before, after) pairs from the last dim
        self._reversed_padding_repeated_twice = tuple(q for pair in reversed(pairs) for q in pair)
        kw = {"device": device, "dtype": dtype}
        shape = ((in_channels, out_channels // groups) if self._transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(creation.empty(*shape, **kw))
        self.register_parameter("bias", Parameter(creation.empty(out_channels, **kw))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, input):
        shape, d = tuple(getattr(input, "shape", ())), self._d
        if len(shape) not in (d + 1, d + 2) or shape[-d - 1] != self.in_channels:
            spatial = ", ".join(("D", "H", "W")[3 - d:]) if d > 1 else "L"
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): expected input with "
                             f"{self.in_channels} input channels, of shape (N, "
                             f"{self.in_channels}, {spatial}) or ({self.in_channels}, {spatial}), "
                             f"got shape {shape}")

    def extra_repr(self):
        d = self._d
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * d:
            s += f", padding={self.padding}"  # torch prints 'same' unquoted
        if self.dilation != (1,) * d:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * d:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        self._check_input(input)
        weight = self.weight  # read once: it may be a parametrization (spectral_norm, ...)
        check_dtypes(self, input, weight, self.bias)
        conv = getattr(ops, f"conv{self._d}d")
        if self.padding_mode != "zeros":
            padded = ops.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, self.bias, self.stride, self.padding, self.dilation,
                    self.groups)


class Conv1d(_Conv):
    """1-D convolution with weight (out_channels, in_channels / groups, kW), like torch.nn.Conv1d;
    padding_mode 'zeros', 'reflect', 'replicate' or 'circular'."""
    _d = 1


class Conv2d(_Conv):
    """2-D convolution with weight (out_channels, in_channels / groups, kH, kW), like
    torch.nn.Conv2d; padding_mode 'zeros', 'reflect', 'replicate' or 'circular'."""
    _d = 2


class Conv3d(_Conv):
    """3-D convolution with weight (out_channels, in_channels / groups, kD, kH, kW), like
    torch.nn.Conv3d; padding_mode 'zeros', 'reflect', 'replicate' or 'circular'."""
    _d = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of ints, "
                             f"got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """torch's: the output_padding that gives output_size (its last d entries)."""
        if output_size is None:
            return self.output_padding
        d, shape = self._d, tuple(input.shape)
        size = tuple(output_size)[-d:]
        low = tuple((n - 1) * s - 2 * p + dl * (k - 1) + 1 for n, s, p, dl, k in zip(
            shape[-d:], self.stride, self.padding, self.dilation, self.kernel_size))
        high = tuple(m + s - 1 for m, s in zip(low, self.stride))
        if len(size) != d or not all(a <= n <= b for a, n, b in zip(low, size, high)):
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): requested an output "
                             f"size of {tuple(output_size)}, but valid sizes range from {low} to "
                             f"{high} (for an input of shape {shape})")
        return tuple(n - a for n, a in zip(size, low))

    def forward(self, input, output_size=None):
        self._check_input(input)
        weight = self.weight  # read once: it may be a parametrization (spectral_norm, ...)
        check_dtypes(self, input, weight, self.bias)
        conv = getattr(ops, f"conv_transpose{self._d}d")
        return conv(input, weight, self.bias, self.stride, self.padding,
                    self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution with weight (in_channels, out_channels / groups, kW), like
    torch.nn.ConvTranspose1d; forward takes an optional output_size."""
    _d = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution with weight (in_channels, out_channels / groups, kH, kW), like
    torch.nn.ConvTranspose2d; torch's initialisation, whose fan_in comes from the weight's dim 1,
    out_channels / groups."""
    _d = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution with weight (in_channels, out_channels / groups, kD, kH, kW),
    like torch.nn.ConvTranspose3d."""
    _d = 3
