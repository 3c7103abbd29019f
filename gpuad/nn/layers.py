"""Layers: thin Modules that own parameters and buffers (created and initialised as torch does)
and whose forward is one call into nn.functional, where the maths lives and is gradchecked.
"""
import math
import numbers

from .. import creation, ops
from . import functional as F
from . import init
from .checks import check_dtypes
from .conv import Conv2d, ConvTranspose2d  # noqa: F401  (with the other convolution layers)
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d  # noqa: F401  (with the other norms)
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: F401  (with the other pools)
from .sparse import Embedding  # noqa: F401  (with EmbeddingBag)
from .upsampling import Upsample  # noqa: F401  (with the other resampling layers)


def _empty(*shape, device=None, dtype=None):
    return Parameter(creation.empty(*shape, dtype=dtype, device=device))


def _reset_like_torch(weight, bias):
    """kaiming_uniform_(a=sqrt(5)) weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias: torch's
    default for Linear and Conv2d (both bounds come out as 1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input (a placeholder layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x @ weight.T + bias with weight (out_features, in_features), like torch.nn.Linear."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty(out_features, in_features, device=device, dtype=dtype)
        self.register_parameter("bias", _empty(out_features, device=device, dtype=dtype)
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_like_torch(self.weight, self.bias)

    def forward(self, input):
        weight, bias = self.weight, self.bias  # once each: a parametrization computes them
        check_dtypes(self, input, weight, bias)
        try:
            return ops._linear(input, weight, bias)  # F.linear, less the dtype check made above
        except ValueError:  # checked only on failure: the common path pays nothing
            shape = tuple(getattr(input, "shape", ()))
            if shape[-1:] == (self.in_features,):
                raise
            raise ValueError(f"Linear(in_features={self.in_features}, out_features="
                             f"{self.out_features}): expected input with {self.in_features} "
                             f"features in its last dim, got shape {shape}") from None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LayerNorm(Module):
    """Normalise over the trailing normalized_shape dims, with elementwise weight (ones) and bias
    (zeros), like torch.nn.LayerNorm."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        kw = {"device": device, "dtype": dtype}
        affine = elementwise_affine
        self.register_parameter("weight", Parameter(creation.ones(*self.normalized_shape, **kw))
                                if affine else None)
        self.register_parameter("bias", Parameter(creation.zeros(*self.normalized_shape, **kw))
                                if affine and bias else None)

    def forward(self, input):
        check_dtypes(self, input, self.weight, self.bias, kind="norm", what="parameters")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class Dropout(Module):
    """Inverted dropout with probability p while training; the identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`, like torch.nn.Unflatten."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return ops.unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"




class Unfold(Module):
    """Sliding blocks as columns, like torch.nn.Unfold (F.unfold)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Columns summed back into an image, like torch.nn.Fold (F.fold)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")
