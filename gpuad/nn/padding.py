"""Padding layers, like torch.nn's ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad in 1, 2 and 3 dims: `padding` is an int or (before, after) pairs from the last dim, as
F.pad takes them; the maths and torch's limits are gpuad.pad's.
"""
from .. import ops
from .module import Module


def _padding(padding, d):
    return (padding,) * (2 * d) if isinstance(padding, int) else tuple(padding)


class _PadNd(Module):
    _d, _mode = 1, "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(padding, self._d)
        if len(self.padding) != 2 * self._d:
            raise ValueError(f"{type(self).__name__}: padding must be an int or {2 * self._d} "
                             f"ints (before, after pairs from the last dim), got {padding!r}")

    def forward(self, input):
        return ops.pad(input, self.padding, mode=self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return ops.pad(input, self.padding, value=self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with `value`, like torch.nn.ConstantPad1d."""
    _d = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with `value`, like torch.nn.ConstantPad2d."""
    _d = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with `value`, like torch.nn.ConstantPad3d."""
    _d = 3


class _ZeroPad:
    """Shared by ZeroPad1d/2d/3d (ahead of their ConstantPadNd base): value 0, torch's repr."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    """Pad the last dim with zeros, like torch.nn.ZeroPad1d."""


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    """Pad the last 2 dims with zeros, like torch.nn.ZeroPad2d."""


class ZeroPad3d(_ZeroPad, ConstantPad3d):
    """Pad the last 3 dims with zeros, like torch.nn.ZeroPad3d."""


class ReflectionPad1d(_PadNd):
    """Pad the last dim of (C, W) or (N, C, W) with its reflection, like torch.nn.ReflectionPad1d
    (each pad smaller than the size)."""
    _d, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Reflection padding of the last 2 dims of a 3-D or 4-D input, like
    torch.nn.ReflectionPad2d."""
    _d, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Reflection padding of the last 3 dims of a 4-D or 5-D input, like
    torch.nn.ReflectionPad3d."""
    _d, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pad the last dim of a 2-D or 3-D input with copies of its edge, like
    torch.nn.ReplicationPad1d."""
    _d, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Edge padding of the last 2 dims of a 3-D or 4-D input, like torch.nn.ReplicationPad2d."""
    _d, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Edge padding of the last 3 dims of a 4-D or 5-D input, like torch.nn.ReplicationPad3d."""
    _d, _mode = 3, "replicate"


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def forward(self, input):
        if input.ndim not in (self._d + 1, self._d + 2):
            raise ValueError(f"{type(self).__name__}: expected {self._d + 1}D or {self._d + 2}D "
                             f"input (got {input.ndim}D input of shape {tuple(input.shape)})")
        return super().forward(input)


class CircularPad1d(_CircularPadNd):
    """Pad the last dim of (C, W) or (N, C, W) by wrapping around, like torch.nn.CircularPad1d."""
    _d = 1


class CircularPad2d(_CircularPadNd):
    """Circular padding of the last 2 dims of a 3-D or 4-D input, like torch.nn.CircularPad2d."""
    _d = 2


class CircularPad3d(_CircularPadNd):
    """Circular padding of the last 3 dims of a 4-D or 5-D input, like torch.nn.CircularPad3d."""
    _d = 3
