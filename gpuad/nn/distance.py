"""Vector normalisation and distances, like torch: F.normalize, F.cosine_similarity,
F.pairwise_distance and the CosineSimilarity and PairwiseDistance Modules. Composites of gpuad's
norm (whose gradient at an all-zero vector is 0), so differentiable to any order.
"""
import numpy

from .. import ops
from ..ops.reduce import checked_dim
from .module import Module


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim, like torch.nn.functional.normalize."""
    if out is not None:
        raise TypeError("normalize: out= is not supported; assign the result instead")
    dim = checked_dim("normalize", dim, tuple(input.shape))
    return input / ops.clamp(ops.norm(input, p, dim, keepdim=True), min=eps)


def _broadcast(name, x1, x2):
    try:
        shape = numpy.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise ValueError(f"{name}: x1 of shape {tuple(x1.shape)} and x2 of shape "
                         f"{tuple(x2.shape)} do not broadcast to one shape") from None
    return x1.expand(*shape), x2.expand(*shape)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along dim, after broadcasting, like
    torch.nn.functional.cosine_similarity: each input is divided by its own clamped norm first
    (the result stays in [-1, 1]), and, as in torch, the clamp passes the gradient through to the
    norm unchanged."""
    x1, x2 = _broadcast("cosine_similarity", x1, x2)
    dim = checked_dim("cosine_similarity", dim, tuple(x1.shape))

    def unit(x):
        n = ops.norm(x, 2, dim, keepdim=True)
        return x / (n + (ops.clamp(n, min=eps) - n).detach())
    return ops.sum(unit(x1) * unit(x2), dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim, like torch.nn.functional.pairwise_distance."""
    if x1.ndim == 0 and x2.ndim == 0:
        raise ValueError("pairwise_distance: expected inputs with at least one dim, got two 0-d "
                         "tensors")
    return ops.norm(x1 - x2 + eps, p, max(x1.ndim, x2.ndim) - 1, keepdim=keepdim)


class CosineSimilarity(Module):
    """Cosine similarity along dim, like torch.nn.CosineSimilarity."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """p-norm distance of x1 - x2 (+ eps) over the last dim, like torch.nn.PairwiseDistance."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
