"""Pooling layers in 1, 2 and 3 spatial dims, like torch.nn's MaxPool1d/2d/3d, AvgPool1d/2d/3d,
AdaptiveAvgPool1d/2d/3d and AdaptiveMaxPool1d/2d/3d: one Nd base per kind. No parameters; the
maths is gpuad.ops.pool.
"""
from .. import ops
from .module import Module


def _single(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class _MaxPoolNd(Module):
    _d = 1

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return getattr(ops, f"max_pool{self._d}d")(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L) or (C, L), like torch.nn.MaxPool1d."""
    _d = 1


class MaxPool2d(_MaxPoolNd):
    """Max over windows of (N, C, H, W) or (C, H, W), like torch.nn.MaxPool2d."""
    _d = 2


class MaxPool3d(_MaxPoolNd):
    """Max over windows of (N, C, D, H, W) or (C, D, H, W), like torch.nn.MaxPool3d."""
    _d = 3


class _AvgPoolNd(Module):
    _d = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad
        if self._d > 1:  # torch's AvgPool1d has no divisor_override
            self.divisor_override = divisor_override

    def forward(self, input):
        divisor = () if self._d == 1 else (self.divisor_override,)
        return getattr(ops, f"avg_pool{self._d}d")(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, *divisor)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of (N, C, L) or (C, L), like torch.nn.AvgPool1d (which keeps its sizes
    as 1-tuples)."""
    _d = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(_single(kernel_size), _single(kernel_size if stride is None else stride),
                         _single(padding), ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of (N, C, H, W) or (C, H, W), like torch.nn.AvgPool2d."""
    _d = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over windows of (N, C, D, H, W) or (C, D, H, W), like torch.nn.AvgPool3d."""
    _d = 3


class _AdaptiveAvgPoolNd(Module):
    _d = 1

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return getattr(ops, f"adaptive_avg_pool{self._d}d")(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average over torch's adaptive windows of (N, C, L) or (C, L), like
    torch.nn.AdaptiveAvgPool1d."""
    _d = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average over torch's adaptive windows of (N, C, H, W) or (C, H, W), like
    torch.nn.AdaptiveAvgPool2d."""
    _d = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average over torch's adaptive windows of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.AdaptiveAvgPool3d."""
    _d = 3


class _AdaptiveMaxPoolNd(Module):
    _d = 1

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return getattr(ops, f"adaptive_max_pool{self._d}d")(input, self.output_size,
                                                            self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max over torch's adaptive windows of (N, C, L) or (C, L), like torch.nn.AdaptiveMaxPool1d;
    return_indices=True also returns the int64 position of each maximum."""
    _d = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max over torch's adaptive windows of (N, C, H, W) or (C, H, W), like
    torch.nn.AdaptiveMaxPool2d (indices flat over H * W)."""
    _d = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max over torch's adaptive windows of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.AdaptiveMaxPool3d."""
    _d = 3
