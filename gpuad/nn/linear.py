"""Bilinear and F.bilinear, like torch: y = x1^T A x2 + b for each output feature, with torch's
parameter layout (weight (out, in1, in2), bias (out)) and initialisation (both uniform in
+-1/sqrt(in1)). (Identity and Linear live in layers.py.)
"""
import math

from .. import creation, ops
from . import init
from .module import Module, Parameter


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o], like
    torch.nn.functional.bilinear; one GEMM and one reduction."""
    out, in1, in2 = (tuple(weight.shape) + (None, None, None))[:3]
    shapes = (tuple(input1.shape), tuple(input2.shape), tuple(weight.shape))
    if (weight.ndim != 3 or shapes[0][:-1] != shapes[1][:-1] or shapes[0][-1:] != (in1,)
            or shapes[1][-1:] != (in2,)):
        raise ValueError(f"bilinear: input1 {shapes[0]} and input2 {shapes[1]} do not fit weight "
                         f"{shapes[2]}: expected (*, in1), (*, in2) with the same leading dims "
                         f"and a weight (out, in1, in2)")
    if bias is not None and tuple(bias.shape) != (out,):
        raise ValueError(f"bilinear: bias of shape {tuple(bias.shape)} must be ({out},) for a "
                         f"weight of shape {shapes[2]}")
    matrix = weight.permute(1, 0, 2).reshape((in1, out * in2))
    mixed = ops.matmul(input1, matrix).reshape(shapes[0][:-1] + (out, in2))
    y = ops.sum(mixed * input2.unsqueeze(-2), -1)
    return y if bias is None else y + bias


class Bilinear(Module):
    """y = x1^T A x2 + b with weight (out_features, in1_features, in2_features), like
    torch.nn.Bilinear."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        kw = {"device": device, "dtype": dtype}
        self.weight = Parameter(creation.empty(out_features, in1_features, in2_features, **kw))
        self.register_parameter("bias", Parameter(creation.empty(out_features, **kw))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
