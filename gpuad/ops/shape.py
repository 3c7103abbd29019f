"""Shape ops."""
from ..backend import xp_of
from . import primitive, public


@primitive(vjp=lambda g, y, x, *, shape: (sum_to(g, shape=x.shape),))
def expand(x, *, shape):
    return xp_of(x).broadcast_to(x, shape)


@primitive(vjp=lambda g, y, x, *, shape: (g.reshape(x.shape),))
def reshape(x, *, shape):
    return x.reshape(shape)


from .reduce import sum_to  # noqa: E402
