"""Reductions: sum, mean, max/min, var/std, logsumexp, norm, ... over dim=None | int | tuple.

PyTorch's names (dim, keepdim) with numpy's (axis, keepdims) accepted; negative dims count from the
end. sum_to is the engine's unbroadcast.
"""
from ..backend import xp_of
from . import primitive, public


def _dims(dim, ndim):
    """dim=None | int | tuple -> a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % ndim if ndim else 0 for d in dims))


def _keep(g, shape, dim, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if keepdim or not shape:
        return g
    dims = _dims(dim, len(shape))
    return g.reshape(tuple(1 if i in dims else n for i, n in enumerate(shape)))


@primitive(vjp=lambda g, y, x, *, dim=None, keepdim=False: (_keep(g, x.shape, dim, keepdim).expand(x.shape),))
def sum(x, *, dim=None, keepdim=False):
    """Sum over dim (all by default), like torch.sum."""
    return x.sum(axis=_dims(dim, x.ndim) if dim is not None else None, keepdims=keepdim)


@primitive(vjp=lambda g, y, x, *, shape: (g.expand(x.shape),))
def sum_to(x, *, shape):
    """Sum x down to `shape` (the inverse of broadcasting): the engine's unbroadcast."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    out = x.sum(axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)
