"""Scans: running sums, products, extrema and log-sum-exps along one dim (cumsum, cumprod, cummax,
cummin, logcumsumexp), with PyTorch's names, result dtypes, tie and NaN conventions.

Forwards run on raw arrays. CuPy's ufuncs accumulate only add and multiply, so the other scans run
as ceil(log2 n) whole-array steps (_scan). cummax and cummin are composites: a non-differentiable
index scan, then a gather whose gradient is a scatter-add to those indices.
"""
import collections
import math

from .. import backend
from ..autograd import is_grad_enabled
from ..backend import xp_of
from ..tensor import Tensor
from . import elementwise as _ew
from . import indexing as _indexing
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape
from .reduce import accumulator_dtype, checked_dim, require_floating


def _scan(op, x, axis):
    """The inclusive scan of the associative, commutative ufunc `op` along axis, in doubling steps
    (Hillis and Steele): after the step with shift s, entry i combines entries i - 2s + 1 .. i."""
    xp, n, shift = xp_of(x), x.shape[axis], 1
    lead = (slice(None),) * axis
    while shift < n:
        done = x[lead + (slice(None, shift),)]
        rest = op(x[lead + (slice(shift, None),)], x[lead + (slice(None, n - shift),)])
        x = xp.concatenate([done, rest], axis=axis)
        shift *= 2
    return x


# ---- sums ----------------------------------------------------------------------------------------
def _cumsum_vjp(g, y, x, *, dim, dtype):
    return (_cumsum_reverse(g, dim=dim),)


@primitive(vjp=_cumsum_vjp, autocast="float32")
def cumsum(x, *, dim, dtype=None):
    """Running sum along dim, like torch.cumsum; bool and int inputs sum to int64."""
    d = checked_dim("cumsum", dim, x.shape)
    dtype = accumulator_dtype(x, dtype)
    return x.cumsum(axis=d, dtype=dtype) if x.ndim else x.astype(dtype or x.dtype, copy=True)


@primitive(vjp=lambda g, y, x, *, dim: (cumsum(g, dim=dim),), autocast="float32")
def _cumsum_reverse(x, *, dim):
    """Running sum from the end along dim: cumsum's gradient (and cumsum is its gradient)."""
    d = checked_dim("cumsum", dim, x.shape)
    xp = xp_of(x)
    return xp.flip(xp.flip(x, d).cumsum(axis=d), d) if x.ndim else x.copy()


# ---- products ------------------------------------------------------------------------------------
def _cumprod_vjp(g, y, x, *, dim, dtype):
    # d y_j / d x_m = y_j / x_m before a slice's first zero; at the first zero k it is the product
    # of the other entries up to j (which the zero itself is not among); after k every y_j holds x_k
    d = checked_dim("cumprod", dim, x.shape)
    if x.ndim == 0:
        return (g,)
    if is_grad_enabled():  # create_graph: the quadratic form, exact to every order at zeros too
        return (_cumprod_grad_exact(g, x, d),)
    zero = x == 0
    zeros_so_far = cumsum(zero, dim=d)
    first = _ew.logical_and(zero, zeros_so_far == 1)
    before = _cumsum_reverse(g * y, dim=d) / _ew.where(zero, 1, x)
    at_first = _cumsum_reverse(g * cumprod(_ew.where(first, 1, x), dim=d), dim=d)
    return (_ew.where(zeros_so_far == 0, before, _ew.where(first, at_first, 0)),)


def _cumprod_grad_exact(g, x, d):
    # grad_m = sum over j >= m of g_j * prod_{i <= j, i != m} x_i, for every m at once: the running
    # products of x with x_m set to 1 (n^2 memory, only under create_graph, as torch does)
    x, g = _shape.swapaxes(x, d, -1), _shape.swapaxes(g, d, -1)
    xp, n = xp_of(x.array), x.shape[-1]
    own = Tensor(xp.eye(n, dtype=bool))
    from_m_on = Tensor(xp.triu(xp.ones((n, n), dtype=bool)))  # [m, j]: j >= m
    products = cumprod(_ew.where(own, 1, _shape.unsqueeze(x, -2)), dim=-1)
    grad = _reduce.sum(_ew.where(from_m_on, products * _shape.unsqueeze(g, -2), 0), dim=-1)
    return _shape.swapaxes(grad, d, -1)


@primitive(vjp=_cumprod_vjp, autocast="float32")
def cumprod(x, *, dim, dtype=None):
    """Running product along dim, like torch.cumprod: bool and int inputs multiply in int64, and
    the gradient is exact with zeros in the input."""
    d = checked_dim("cumprod", dim, x.shape)
    dtype = accumulator_dtype(x, dtype)
    return x.cumprod(axis=d, dtype=dtype) if x.ndim else x.astype(dtype or x.dtype, copy=True)


# ---- extrema -------------------------------------------------------------------------------------
@primitive()
def _cumextremum_index(x, *, dim, largest):
    """Where each running maximum (largest) or minimum along dim was last attained: ties and NaNs
    (which stay the extremum once met) take the latest index, as torch's cummax and cummin do."""
    xp = xp_of(x)
    if x.ndim == 0:
        return xp.zeros((), dtype=backend.int64)
    best = _scan(xp.maximum if largest else xp.minimum, x, dim)  # NaN propagates, as in torch
    hit = (x == best) | xp.isnan(x) if x.dtype.kind in "fc" else x == best
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    iota = xp.arange(x.shape[dim], dtype=backend.int64).reshape(shape)
    return _scan(xp.maximum, xp.where(hit, iota, 0), dim)


_CummaxResult = collections.namedtuple("cummax", ("values", "indices"))  # torch.return_types
_CumminResult = collections.namedtuple("cummin", ("values", "indices"))


def _cumextremum(op, x, dim, largest, result):
    d = checked_dim(op, dim, x.shape)
    index = _cumextremum_index(x, dim=d, largest=largest)
    return result(_indexing._gather(x, index, dim=d) if x.ndim else _ew.clone(x), index)


@public
def cummax(x, dim):
    """The namedtuple (values, indices) of running maxima along dim, like torch.cummax: ties and
    NaN take the latest index, and each value's gradient goes to its index."""
    return _cumextremum("cummax", x, dim, True, _CummaxResult)


@public
def cummin(x, dim):
    """The namedtuple (values, indices) of running minima along dim, like torch.cummin."""
    return _cumextremum("cummin", x, dim, False, _CumminResult)


# ---- log-sum-exp ---------------------------------------------------------------------------------
def _logcumsumexp_vjp(g, y, x, *, dim):
    # d y_j / d x_i = exp(x_i - y_j) for i <= j. As torch does, the sum over j runs in log space
    # (a reversed logcumsumexp) with g's positive and negative parts apart, so nothing overflows.
    d = checked_dim("logcumsumexp", dim, x.shape)
    if x.ndim == 0:
        return (g,)

    def part(mask, size):  # exp(x_i + log sum over j >= i of size_j exp(-y_j)), over the mask
        terms = _ew.where(mask, _ew.log(_ew.where(mask, size, 1)) - y, -math.inf)
        return _ew.exp(_shape.flip(logcumsumexp(_shape.flip(terms, d), dim=d), d) + x)
    return (part(g > 0, g) - part(g < 0, -g),)


@primitive(vjp=_logcumsumexp_vjp, autocast="float32")
def logcumsumexp(x, *, dim):
    """log(cumsum(exp(x))) along dim without overflow (running logaddexp), like
    torch.logcumsumexp; floating point inputs only, as in torch."""
    d = checked_dim("logcumsumexp", dim, x.shape)
    require_floating("logcumsumexp", x)
    return _scan(xp_of(x).logaddexp, x, d) if x.ndim else x.copy()
