"""Reductions: sum, mean, prod, amax/amin, max/min, var/std, logsumexp, softmax, log_softmax, norm,
argmax, any, and the NaN-ignoring and paired forms (nansum, nanmean, count_nonzero, var_mean,
std_mean, aminmax).

PyTorch's names (dim, keepdim) with numpy's (axis, keepdims) accepted; dim is None, an int or a
tuple, negative dims count from the end, and an empty tuple means every dim, as in PyTorch.
sum_to is the engine's unbroadcast. Forwards touch raw arrays only through methods and `xp_of`.
"""
import builtins
import collections
import math
import numbers
import operator
import warnings

from .. import backend
from ..autograd import is_grad_enabled
from ..backend import xp_of
from ..tensor import Tensor
from . import elementwise as _ew
from . import primitive, public


# ---- dims ----------------------------------------------------------------------------------------
def checked_dim(op, d, shape):
    """One dim, checked against `shape` and made non-negative (0-d tensors accept 0 and -1)."""
    try:
        d = operator.index(d)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {d!r}") from None
    n = len(shape) or 1
    if not -n <= d < n:
        raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape {tuple(shape)} "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return d % n


def _dims(op, dim, shape):
    """dim=None | int | sequence -> a sorted tuple of non-negative axes (None and () mean all)."""
    if dim is None:
        return tuple(range(len(shape)))
    if isinstance(dim, (tuple, list)):
        axes = [checked_dim(op, d, shape) for d in dim]
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: dim={tuple(dim)} names a dim more than once (tensor of shape "
                             f"{tuple(shape)})")
        return tuple(sorted(axes)) if axes and shape else tuple(range(len(shape)))
    axis = checked_dim(op, dim, shape)
    return (axis,) if shape else ()


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def _keep(t, shape, dims, keepdim):
    """A reduced tensor (gradient or output) reshaped to broadcast against the input again."""
    return t if keepdim or t.ndim == len(shape) else t.reshape(_kept_shape(shape, dims))


def _iota(x, dim):
    """0, 1, ..., n-1 along `dim` of x (size 1 elsewhere), on x's device: a one-hot helper."""
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    return Tensor(xp_of(x.array).arange(x.shape[dim]).reshape(shape))


def accumulator_dtype(x, dtype):
    """torch's result dtype for sums and products: bool and integer inputs accumulate in int64
    (numpy would give uint64 for unsigned ones)."""
    return backend.int64 if dtype is None and x.dtype.kind in "biu" else dtype


def require_floating(op, x):
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"{op}: expected a floating point or complex input, got {x.dtype} (as "
                           f"torch does); convert it with .float() or .double() first")


def _sqrt_or_zero(v):
    """sqrt(v) whose gradient at v == 0 is 0 rather than inf * 0 (torch's std)."""
    zero = v == 0
    return _ew.where(zero, 0, _ew.sqrt(_ew.where(zero, 1, v)))


# ---- sums ----------------------------------------------------------------------------------------
def _sum_vjp(g, y, x, *, dim, keepdim, dtype):
    return (_keep(g, x.shape, _dims("sum", dim, x.shape), keepdim).expand(x.shape),)


@primitive(vjp=_sum_vjp, autocast="float32")
def sum(x, *, dim=None, keepdim=False, dtype=None):
    """Sum over dim (all by default), like torch.sum; bool and int inputs sum to int64."""
    dims = _dims("sum", dim, x.shape)
    return x.sum(axis=dims, keepdims=keepdim, dtype=accumulator_dtype(x, dtype))


@primitive(vjp=lambda g, y, x, *, shape: (g.expand(x.shape),))
def sum_to(x, *, shape):
    """Sum x down to `shape` (the inverse of broadcasting): the engine's unbroadcast."""
    lead = x.ndim - len(shape)
    if lead < 0 or _mismatch(x.shape[lead:], shape):
        raise ValueError(f"sum_to: shape {tuple(shape)} does not broadcast to {x.shape}, so a "
                         f"gradient of shape {x.shape} cannot be summed down to it")
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    out = x.sum(axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)


def _mismatch(have, want):
    return builtins.any(w != 1 and w != h for h, w in zip(have, want))


@public
def mean(x, dim=None, keepdim=False, *, dtype=None):
    """Average over dim (all by default), like torch.mean: integer inputs need a float dtype=."""
    if dtype is None and x.dtype.kind not in "fc":
        raise RuntimeError(f"mean: could not infer the output dtype: the input is {x.dtype}, not "
                           f"floating point or complex (as in torch); pass dtype= or use .float()")
    dims = _dims("mean", dim, x.shape)
    return sum(x, dims, keepdim, dtype=dtype) / math.prod(x.shape[d] for d in dims)


# ---- products ------------------------------------------------------------------------------------
def _prod_vjp(g, y, x, *, dim, keepdim, dtype):
    # d prod / dx_i = the product of the others: y / x_i without zeros; with one zero in a slice,
    # only the zero's entry is non-zero; with several, every entry is zero.
    dims = _dims("prod", dim, x.shape)
    g = _keep(g, x.shape, dims, keepdim)
    zero = x == 0
    zeros = sum(zero, dims, True)
    safe = _ew.where(zero, 1, x)
    rest = prod(safe, dims, True)  # the product of the non-zero entries
    at_zero, next_to_zero = _ew.where(zeros == 1, rest, 0), 0  # slice-sized, not input-sized
    if is_grad_enabled():  # create_graph: keep the zeros as factors (value 0) so that second
        zero_sum = sum(_ew.where(zero, x, 0), dims, True)  # derivatives are exact too
        next_to_zero = _ew.where(zeros == 1, zero_sum * rest, 0)
        at_zero = _ew.where(zeros == 2, (zero_sum - x) * rest, at_zero)  # the other zero
    elsewhere = _ew.where(zeros == 0, rest, next_to_zero)
    return (_ew.where(zero, g * at_zero, g * elsewhere / safe),)


@primitive(vjp=_prod_vjp, autocast="float32")
def prod(x, *, dim=None, keepdim=False, dtype=None):
    """Product over dim (all by default), like torch.prod; the gradient is exact with zeros."""
    dims = _dims("prod", dim, x.shape)
    return x.prod(axis=dims, keepdims=keepdim, dtype=accumulator_dtype(x, dtype))


# ---- extrema -------------------------------------------------------------------------------------
def _extremum_vjp(g, y, x, *, dim, keepdim):
    dims = _dims("amax", dim, x.shape)
    hit = x == _keep(y, x.shape, dims, keepdim)  # every tie gets an even share; where y is NaN no
    return (hit * (_keep(g, x.shape, dims, keepdim) / sum(hit, dims, True)),)  # entry hits: NaN


def spread_to_ties(g, y, x, dims, keepdim, masked):
    """The gradient of y, an extremum or median of x over dims, by torch's
    evenly_distribute_backward and inf-norm rules: the entries equal to y share g evenly, and where
    y is NaN its NaNs do. `masked` writes the shares into those entries only (torch.max(x) and
    torch.median(x) on the CPU); otherwise the mask multiplies them, so a NaN g reaches every
    entry (the inf-norms)."""
    y, g = _keep(y, x.shape, dims, keepdim), _keep(g, x.shape, dims, keepdim)
    hit = _ew.logical_or(x == y, _ew.logical_and(_ew.isnan(x), _ew.isnan(y)))
    share = g / sum(hit, dims, True)
    return _ew.where(hit, share, 0) if masked else hit * share


def _tied_extremum_vjp(g, y, x, *, dim, keepdim, largest, masked):
    return (spread_to_ties(g, y, x, _dims("amax", dim, x.shape), keepdim, masked),)


@primitive(vjp=_tied_extremum_vjp)
def _tied_extremum(x, *, dim=None, keepdim=False, largest=True, masked=False):
    """amax (largest) or amin whose gradient counts a NaN result's NaNs as ties (spread_to_ties):
    torch.max(x) and torch.min(x) (masked), and the inf-norms."""
    return (amax if largest else amin).forward(x, dim=dim, keepdim=keepdim)


def _nonempty(op, x, dim):
    if dim is None and not x.size:
        raise RuntimeError(f"{op}: an empty input (shape {tuple(x.shape)}) needs a reduction dim "
                           f"(dim=), as in torch: the operation has no identity")
    for d in _dims(op, dim, x.shape):
        if x.shape[d] == 0:
            raise IndexError(f"{op}: expected reduction dim {d} to have non-zero size (tensor of "
                             f"shape {tuple(x.shape)}): the operation has no identity, as in torch")


@primitive(vjp=_extremum_vjp)
def amax(x, *, dim=None, keepdim=False):
    """Maximum over dim (all by default); ties share the gradient evenly, like torch.amax."""
    _nonempty("amax", x, dim)
    return x.max(axis=_dims("amax", dim, x.shape), keepdims=keepdim)


@primitive(vjp=_extremum_vjp)
def amin(x, *, dim=None, keepdim=False):
    """Minimum over dim (all by default); ties share the gradient evenly, like torch.amin."""
    _nonempty("amin", x, dim)
    return x.min(axis=_dims("amin", dim, x.shape), keepdims=keepdim)


def _arg_extremum(op, x, dim, keepdim):
    if dim is None:  # of the flattened tensor; keepdim gives all-ones dims, like torch 2
        out = getattr(x.reshape(-1), op)(axis=0).reshape((1,) * x.ndim if keepdim else ())
    elif x.ndim == 0:
        checked_dim(op, dim, x.shape)
        out = xp_of(x).zeros((), dtype=backend.int64)
    else:
        out = getattr(x, op)(axis=checked_dim(op, dim, x.shape), keepdims=keepdim)
    return out.astype(backend.int64, copy=False)


@primitive()
def argmax(x, *, dim=None, keepdim=False):
    """Index of the first maximum along dim (of the flattened tensor for dim=None), int64, like
    torch.argmax; no gradient."""
    return _arg_extremum("argmax", x, dim, keepdim)


@primitive()
def argmin(x, *, dim=None, keepdim=False):
    """Index of the first minimum along dim (flattened for dim=None), int64, like torch.argmin."""
    return _arg_extremum("argmin", x, dim, keepdim)


@primitive(vjp=lambda g, y, x, index, *, dim: (_ew.where(_iota(x, dim) == index, g, 0), None))
def _pick(x, index, *, dim):
    """x's entries at `index` along dim, where index has size 1 along dim (max/min's values)."""
    return xp_of(x).take_along_axis(x, index, axis=dim)


def _max_all(x, keepdim):
    return _tied_extremum(x, keepdim=keepdim, largest=True, masked=True)


def _min_all(x, keepdim):
    return _tied_extremum(x, keepdim=keepdim, largest=False, masked=True)


_MaxResult = collections.namedtuple("max", ("values", "indices"))  # like torch.return_types.max
_MinResult = collections.namedtuple("min", ("values", "indices"))


def _extremum(op, x, dim, keepdim, whole, arg, pairwise, result):
    if dim is None:
        return whole(x, keepdim=keepdim)
    if not isinstance(dim, numbers.Integral):
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{op}: dim must be a single int, got {dim!r}; use a{op}() to reduce "
                            f"over several dims")
        return pairwise(x, dim)
    d = checked_dim(op, dim, x.shape)
    index = arg(x, d, keepdim=True)
    if x.ndim == 0:
        return result(_ew.clone(x), index)
    values = _pick(x, index, dim=d)
    if not keepdim:
        shape = x.shape[:d] + x.shape[d + 1:]
        values, index = values.reshape(shape), index.reshape(shape)
    return result(values, index)


@public
def max(x, dim=None, keepdim=False):
    """torch.max: max(x) is amax over everything (ties share the gradient); max(x, dim) is a
    namedtuple (values, indices) whose gradient goes to the index; max(x, other) is maximum."""
    return _extremum("max", x, dim, keepdim, _max_all, argmax, _ew.maximum, _MaxResult)


@public
def min(x, dim=None, keepdim=False):
    """torch.min: min(x), the namedtuple min(x, dim) = (values, indices), or minimum(x, other)."""
    return _extremum("min", x, dim, keepdim, _min_all, argmin, _ew.minimum, _MinResult)


# ---- statistics ----------------------------------------------------------------------------------
def _correction(op, dim, unbiased, correction, ddof):
    if isinstance(dim, bool):  # torch's var(x, unbiased) overload
        if unbiased is not None:
            raise TypeError(f"{op}: unbiased given twice")
        dim, unbiased = None, dim
    given = [c for c in (correction, ddof, None if unbiased is None else int(unbiased))
             if c is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: pass only one of correction, unbiased and ddof")
    return dim, (given[0] if given else 1)


def _var_vjp(g, y, x, *, dim, unbiased, keepdim, correction, ddof):
    # torch's var_backward, odd corners included: over every dim (dim=None or a 0-d input) with
    # n - correction <= 0 the gradient is g * inf (NaN where x equals the mean) whatever the sign
    # of x - mean; with a dim it is 2 / (n - correction) * g * (x - mean), even where that
    # denominator is negative (while the forward divides by max(0, n - correction)).
    dim, correction = _correction("var", dim, unbiased, correction, ddof)
    dims = _dims("var", dim, x.shape)
    n = math.prod(x.shape[d] for d in dims)
    g = _keep(g, x.shape, dims, keepdim)
    centered = x - mean(x, dims, True) if n else x  # an empty slice has no mean to subtract
    if (dim is None or x.ndim == 0) and n - correction <= 0:
        xp = xp_of(x.array)
        return (g * Tensor(xp.where((centered == 0).array, math.nan, math.inf).astype(x.dtype)),)
    return (centered * (g * (2 / (n - correction) if n != correction else math.inf)),)


def _warn_dof(op, n, correction):
    warnings.warn(f"{op}: degrees of freedom is <= 0 (correction={correction} for {n} reduced "
                  f"elements), so the result is inf or NaN, as in torch", UserWarning, stacklevel=5)


# primitive: the composite's backward is three times slower
@primitive(vjp=_var_vjp, autocast="float32")
def var(x, *, dim=None, unbiased=None, keepdim=False, correction=None, ddof=None):
    """Variance over dim with Bessel's correction by default (correction=1, like torch.var);
    torch's unbiased= (also var(x, dim, unbiased) and var(x, unbiased)) and numpy's ddof= work.
    Like torch it divides by max(0, n - correction): inf, or NaN for a constant or empty slice."""
    dim, correction = _correction("var", dim, unbiased, correction, ddof)
    dims = _dims("var", dim, x.shape)
    require_floating("var", x)
    n = math.prod(x.shape[d] for d in dims)
    total = x.sum(axis=dims, keepdims=True)
    centered = x - (total / n if n else total)
    squares = (centered * centered).sum(axis=dims, keepdims=keepdim)
    if n - correction > 0:
        return squares * (1 / (n - correction))
    _warn_dof("var", n, correction)
    return xp_of(x).where(squares > 0, math.inf, math.nan).astype(x.dtype)  # no 0/0 warning


@public
def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, ddof=None):
    """Standard deviation, sqrt(var(...)), like torch.std; its gradient is 0 where it is 0."""
    dim, correction = _correction("std", dim, unbiased, correction, ddof)
    _dims("std", dim, x.shape)
    require_floating("std", x)
    return _sqrt_or_zero(var(x, dim, keepdim=keepdim, correction=correction))


@public
def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over dim, like torch.var_mean (a plain tuple there too)."""
    dim, correction = _correction("var_mean", dim, unbiased, correction, None)
    _dims("var_mean", dim, x.shape)
    require_floating("var_mean", x)
    return var(x, dim, keepdim=keepdim, correction=correction), mean(x, dim, keepdim)


@public
def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over dim, like torch.std_mean."""
    dim, correction = _correction("std_mean", dim, unbiased, correction, None)
    _dims("std_mean", dim, x.shape)
    require_floating("std_mean", x)
    return std(x, dim, keepdim=keepdim, correction=correction), mean(x, dim, keepdim)


def _logsumexp_vjp(g, y, x, *, dim, keepdim):
    # d lse = softmax = exp(x - lse); as in torch, a row of -inf (lse = -inf) gets NaN, and so
    # does an inf entry (inf - inf): the row has no softmax to give
    dims = _dims("logsumexp", dim, x.shape)
    y = _keep(y, x.shape, dims, keepdim)
    return (_keep(g, x.shape, dims, keepdim) * (x - y).exp(),)


# primitive: the composite would save two input-sized arrays
@primitive(vjp=_logsumexp_vjp, autocast="float32")
def logsumexp(x, *, dim=None, keepdim=False):
    """log(sum(exp(x))) over dim without overflow (the max is subtracted first); rows of -inf and
    empty rows give -inf, like torch.logsumexp."""
    xp = xp_of(x)
    if x.dtype.kind not in "fc":
        x = x.astype(backend.DEFAULT_FLOAT)
    dims = _dims("logsumexp", dim, x.shape)
    if not x.size:  # the log of an empty sum, as in torch
        out = xp.full(_kept_shape(x.shape, dims), -math.inf, dtype=x.dtype)
        return out if keepdim else out.reshape(tuple(n for i, n in enumerate(x.shape)
                                                     if i not in dims))
    top = x.max(axis=dims, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)  # all -inf (or an inf): shift by 0 instead
    total = xp.exp(x - top).sum(axis=dims, keepdims=True)
    empty = total == 0  # every entry -inf: the answer is -inf, without log(0)'s warning
    out = xp.where(empty, -math.inf, xp.log(xp.where(empty, 1, total)) + top)
    return out if keepdim else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in dims))


# ---- softmax: primitives for speed and memory (one saved output each), like torch's -------------
def _floating(x):
    return x if x.dtype.kind in "fc" else x.astype(backend.DEFAULT_FLOAT)


@primitive(vjp=lambda g, y, x, *, dim: (y * (g - sum(g * y, dim=dim, keepdim=True)),),
           autocast="float32")
def _softmax(x, *, dim):
    """exp(x) / sum(exp(x)) along dim, with the max subtracted first (softmax's primitive)."""
    x = _floating(x)
    if not x.size:  # no max to subtract; an empty result, as in torch
        return x.copy()
    e = x - x.max(axis=dim, keepdims=True)
    xp_of(e).exp(e, out=e)
    e /= e.sum(axis=dim, keepdims=True)
    return e


@primitive(vjp=lambda g, y, x, *, dim: (g - _ew.exp(y) * sum(g, dim=dim, keepdim=True),),
           autocast="float32")
def _log_softmax(x, *, dim):
    """x - logsumexp(x) along dim, with the max subtracted first (log_softmax's primitive)."""
    xp = xp_of(x)
    if not x.size:
        return _floating(x).copy()
    s = _floating(x) - x.max(axis=dim, keepdims=True)
    s -= xp.log(xp.exp(s).sum(axis=dim, keepdims=True))
    return s


def _along(op, primitive_op, x, dim, dtype):
    if dtype is not None:
        x = _ew.cast(x, dtype=dtype)  # torch casts before the op, so it runs in that dtype
    d = checked_dim(op, dim, x.shape)
    if x.ndim == 0:
        return primitive_op(x.reshape((1,)), dim=0).reshape(())
    return primitive_op(x, dim=d)


@public
def softmax(x, dim, dtype=None):
    """exp(x) / sum(exp(x)) along dim, stable for large inputs, like torch.softmax
    (torch.nn.functional.softmax and Tensor.softmax); `dtype` casts x first."""
    return _along("softmax", _softmax, x, dim, dtype)


@public
def log_softmax(x, dim, dtype=None):
    """log(softmax(x)) along dim, computed stably, like torch.log_softmax."""
    return _along("log_softmax", _log_softmax, x, dim, dtype)


def _norm2_vjp(g, y, x, *, dim, keepdim):
    dims = _dims("norm", dim, x.shape)
    y = _keep(y, x.shape, dims, keepdim)
    zero = y == 0  # an all-zero slice: gradient 0, like torch
    scale = _ew.where(zero, 0, _keep(g, x.shape, dims, keepdim) / _ew.where(zero, 1, y))
    return (x * scale,)


# primitive: one input-sized product in backward instead of four
@primitive(vjp=_norm2_vjp, autocast="float32")
def _norm2(x, *, dim=None, keepdim=False):
    """The Euclidean norm over dim, for norm(p=2 or 'fro')."""
    if x.dtype.kind not in "fc":
        x = x.astype(backend.DEFAULT_FLOAT)
    return xp_of(x).sqrt((x * x).sum(axis=_dims("norm", dim, x.shape), keepdims=keepdim))


def _norm_p_vjp(g, y, x, *, p, dim, keepdim):
    # torch's norm_backward, term by term: its zeros (at x = 0 for p < 1, where the norm is 0 for
    # p > 1) and its NaNs (0 * inf where x or the norm is infinite) are the same here
    dims = _dims("norm", dim, x.shape)
    g, y = _keep(g, x.shape, dims, keepdim), _keep(y, x.shape, dims, keepdim)
    if p < 1:
        scaled = _ew.sign(x) * _ew.where(x == 0, 0, _ew.abs(x) ** (p - 1))
        return (scaled * g * y ** (1 - p),)
    scaled = _ew.sign(x) * _ew.abs(x) ** (p - 1) if p < 2 else x * _ew.abs(x) ** (p - 2)
    return (scaled * _ew.where(y == 0, 0, g / y ** (p - 1)),)


# primitive: the composite's gradient is NaN (inf * 0) at zeros for p < 0 and at infinities
@primitive(vjp=_norm_p_vjp, autocast="float32")
def _norm_p(x, *, p, dim=None, keepdim=False):
    """sum(|x|^p)^(1/p) over dim, for the p (other than 0, 1, 2 and inf) without a rule of their
    own; for p < 0 an entry 0 makes it 0."""
    if x.dtype.kind not in "fc":
        x = x.astype(backend.DEFAULT_FLOAT)
    dims = _dims("norm", dim, x.shape)
    return (xp_of(x).abs(x) ** p).sum(axis=dims, keepdims=keepdim) ** (1 / p)


@public
def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector norm over dim (all by default), like torch.norm: p is 'fro' (= 2), 1, 2, inf, -inf, 0
    (count of non-zeros) or any number; the gradient at an all-zero input is 0, not NaN."""
    if dtype is not None:
        x = x.to(dtype)
    dims = _dims("norm", dim, x.shape)
    if isinstance(p, str) and p != "fro":
        raise ValueError(f"norm: p={p!r} is not supported; use 'fro' or a number (matrix norms "
                         f"such as 'nuc' are not implemented)")
    if p == "fro" or p == 2:
        return _norm2(x, dim=dims, keepdim=keepdim)
    if p == 1:
        return sum(_ew.abs(x), dims, keepdim)
    if p in (math.inf, -math.inf):  # NaNs tie: d |NaN| = sign(NaN) = 0 then, as in torch
        return _tied_extremum(_ew.abs(x), dim=dims, keepdim=keepdim, largest=p > 0)
    if p == 0:  # the count of non-zeros, with a zero gradient as in torch
        zero = x == 0
        return sum(_ew.where(zero, _ew.where(zero, x, 0) * 0, 1), dims, keepdim)
    return _norm_p(x, p=float(p), dim=dims, keepdim=keepdim)


# ---- NaN-ignoring and paired reductions -------------------------------------------------------
def _nansum_vjp(g, y, x, *, dim, keepdim, dtype):
    # torch multiplies by the mask (not a where), so an infinite g gives NaN at the NaNs too
    dims = _dims("nansum", dim, x.shape)
    return (_keep(g, x.shape, dims, keepdim) * _ew.logical_not(_ew.isnan(x)),)


@primitive(vjp=_nansum_vjp, autocast="float32")
def nansum(x, *, dim=None, keepdim=False, dtype=None):
    """Sum over dim treating NaN as zero, like torch.nansum; bool and int inputs sum to int64."""
    dims = _dims("nansum", dim, x.shape)
    return xp_of(x).nansum(x, axis=dims, keepdims=keepdim, dtype=accumulator_dtype(x, dtype))


@public
def nanmean(x, dim=None, keepdim=False, *, dtype=None):
    """Mean of the non-NaN entries over dim, like torch.nanmean: NaN (and a NaN gradient) where a
    slice holds no number."""
    if dtype is not None:
        x = _ew.cast(x, dtype=dtype)
    require_floating("nanmean", x)
    dims = _dims("nanmean", dim, x.shape)
    return nansum(x, dims, keepdim) / sum(_ew.logical_not(_ew.isnan(x)), dims, keepdim)


@primitive()
def count_nonzero(x, *, dim=None):
    """The number of non-zero entries over dim (an int or a tuple; all by default), int64, like
    torch.count_nonzero (NaN counts as non-zero)."""
    return (x != 0).sum(axis=_dims("count_nonzero", dim, x.shape), dtype=backend.int64)


_AminmaxResult = collections.namedtuple("aminmax", ("min", "max"))  # torch.return_types.aminmax


@public
def aminmax(x, *, dim=None, keepdim=False):
    """The namedtuple (min, max) of amin and amax over one dim or all, like torch.aminmax; ties
    share each gradient evenly."""
    if dim is not None and not isinstance(dim, numbers.Integral):
        raise TypeError(f"aminmax: dim must be an int or None, got {dim!r}")
    if dim is None and 0 in x.shape:
        raise RuntimeError(f"aminmax: cannot reduce the empty tensor of shape {tuple(x.shape)}: "
                           f"min and max have no identity, as in torch")
    _nonempty("aminmax", x, dim)
    return _AminmaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))


# ---- logic ---------------------------------------------------------------------------------------
@primitive()
def any(x, *, dim=None, keepdim=False):
    """Whether any element over dim is non-zero (bool), like torch.any."""
    return x.any(axis=_dims("any", dim, x.shape), keepdims=keepdim)


@primitive()
def all(x, *, dim=None, keepdim=False):
    """Whether every element over dim is non-zero (bool), like torch.all."""
    return x.all(axis=_dims("all", dim, x.shape), keepdims=keepdim)
