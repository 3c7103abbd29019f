"""Order statistics and counting: sort, argsort, topk, kthvalue, median, quantile, unique, bincount
and histc, with PyTorch's names, tie orders and NaN conventions (NaN sorts as the largest value).

One output per primitive: an order (an index array) is a non-differentiable primitive and the values
are gathered with it, so their gradient is a scatter-add to the chosen entries. Sorts are stable.
unique, unique_consecutive and bincount return sizes that depend on the data: on CUDA they make the
host wait for the GPU, as they do in torch.
"""
import collections
import math
import numbers
import operator

from .. import backend
from ..backend import xp_of
from ..tensor import Tensor
from . import elementwise as _ew
from . import indexing as _indexing
from . import pointwise as _pointwise
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape
from .reduce import checked_dim, require_floating

_SortResult = collections.namedtuple("sort", ("values", "indices"))  # like torch.return_types
_TopkResult = collections.namedtuple("topk", ("values", "indices"))
_KthvalueResult = collections.namedtuple("kthvalue", ("values", "indices"))
_MedianResult = collections.namedtuple("median", ("values", "indices"))
_NanmedianResult = collections.namedtuple("nanmedian", ("values", "indices"))


def _order(x, axis, descending=False):
    """A stable argsort of a raw array along axis: NaN last, or first when descending."""
    xp = xp_of(x)
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable")
    # sort the reversed array and reverse the result: equal values keep their original order
    order = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return (x.shape[axis] - 1) - xp.flip(order, axis)


def _first(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _zero_index(x):
    return Tensor(xp_of(x.array).zeros((), dtype=backend.int64))


# ---- sorting -------------------------------------------------------------------------------------
@primitive()
def argsort(x, *, dim=-1, descending=False, stable=False):
    """The int64 indices that sort x along dim, like torch.argsort: always stable here (equal
    values keep their order, which torch promises only with stable=True); NaN sorts last."""
    d = checked_dim("argsort", dim, x.shape)
    if x.ndim == 0:
        return xp_of(x).zeros((), dtype=backend.int64)
    return _order(x, d, descending).astype(backend.int64, copy=False)


@public
def sort(x, dim=-1, descending=False, *, stable=False):
    """The namedtuple (values, indices) of x sorted along dim, like torch.sort: NaN sorts last
    (first when descending), equal values keep their order, and the gradient follows each value."""
    d = checked_dim("sort", dim, x.shape)
    indices = argsort(x, dim=d, descending=descending)
    return _SortResult(_indexing._gather(x, indices, dim=d) if x.ndim else _ew.clone(x), indices)


@primitive()
def _topk_index(x, *, k, dim, largest):
    return _first(_order(x, dim, largest), dim, 0, k).astype(backend.int64, copy=False)


@public
def topk(x, k, dim=None, largest=True, sorted=True):
    """The namedtuple (values, indices) of the k largest (or smallest) entries along dim (the last
    by default), like torch.topk: NaN counts as the largest value, equal values come in their
    order, and the result is always sorted (torch leaves the order open with sorted=False)."""
    d = checked_dim("topk", -1 if dim is None else dim, x.shape)
    k, n = operator.index(k), x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k={k} is out of range for dim {d} of size {n} (tensor of shape "
                           f"{tuple(x.shape)})")
    if x.ndim == 0:
        return _TopkResult(_ew.clone(x), _zero_index(x)) if k else topk(x.reshape(1), 0)
    indices = _topk_index(x, k=k, dim=d, largest=largest)
    return _TopkResult(_indexing._gather(x, indices, dim=d), indices)


def _picked(result, x, index, d, keepdim):
    """result(values, indices) for an index of size 1 along d: x's values there, like max(dim)."""
    if x.ndim == 0:
        return result(_ew.clone(x), _zero_index(x))
    values = _reduce._pick(x, index, dim=d)
    if not keepdim:
        shape = x.shape[:d] + x.shape[d + 1:]
        values, index = values.reshape(shape), index.reshape(shape)
    return result(values, index)


def _reduced_dim(op, x, dim):
    d = checked_dim(op, -1 if dim is None else dim, x.shape)
    if x.ndim and not x.shape[d]:
        raise IndexError(f"{op}: expected reduction dim {d} to have non-zero size (tensor of shape "
                         f"{tuple(x.shape)})")
    return d


@primitive()
def _kth_index(x, *, k, dim):
    return _first(_order(x, dim), dim, k - 1, k).astype(backend.int64, copy=False)


@public
def kthvalue(x, k, dim=None, keepdim=False):
    """The namedtuple (values, indices) of the k-th smallest entry (k from 1) along dim (the last by
    default), like torch.kthvalue; NaN counts as the largest value, and the gradient goes to the
    index (for equal values, the first of them in sorted order)."""
    d = _reduced_dim("kthvalue", x, dim)
    k, n = operator.index(k), x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k={k} is out of range for dim {d} of size {n} (tensor of "
                           f"shape {tuple(x.shape)})")
    index = _kth_index(x, k=k, dim=d) if x.ndim else None
    return _picked(_KthvalueResult, x, index, d, keepdim)


# ---- medians -------------------------------------------------------------------------------------
def _median_index_raw(x, axis, ignore_nan):
    """The index of the lower median along axis (kept, size 1): a slice holding a NaN has its
    first NaN as median, unless ignore_nan leaves NaNs out (an all-NaN slice: its first NaN)."""
    xp, n = xp_of(x), x.shape[axis]
    if x.dtype.kind in "fc":
        counted = n - xp.isnan(x).sum(axis=axis, keepdims=True)
    else:
        counted = xp.full(x.shape[:axis] + (1,) + x.shape[axis + 1:], n, dtype=backend.int64)
    if ignore_nan:
        position = xp.maximum(counted - 1, 0) // 2
    else:  # sorted, a slice's first NaN sits right after its numbers
        position = xp.where(counted < n, counted, (n - 1) // 2)
    order = _order(x, axis)
    return xp.take_along_axis(order, position.astype(backend.int64), axis=axis)


@primitive()
def _median_index(x, *, dim, ignore_nan):
    return _median_index_raw(x, dim, ignore_nan).astype(backend.int64, copy=False)


def _evenly_vjp(g, y, x, *, ignore_nan):
    if not x.numel():
        return (x * 0,)
    return (_reduce.spread_to_ties(g, y, x, tuple(range(x.ndim)), False, masked=True),)


@primitive(vjp=_evenly_vjp)
def _median_all(x, *, ignore_nan):
    """The lower median of all of x's entries (NaN for an empty x)."""
    xp = xp_of(x)
    if not x.size:
        if x.dtype.kind not in "fc":
            raise RuntimeError("median: an empty integer tensor has no median (NaN is not an "
                               "integer); convert it with .float() first")
        return xp.full((), math.nan, dtype=x.dtype)
    flat = x.reshape(-1)
    return flat[_median_index_raw(flat, 0, ignore_nan)].reshape(())


def _median(op, x, dim, keepdim, ignore_nan, result):
    if dim is None:
        return _median_all(x, ignore_nan=ignore_nan)
    d = _reduced_dim(op, x, dim)
    index = _median_index(x, dim=d, ignore_nan=ignore_nan) if x.ndim else None
    return _picked(result, x, index, d, keepdim)


@public
def median(x, dim=None, keepdim=False):
    """torch.median: the lower of the two middle values. median(x) is a value (NaN if x holds one;
    ties share the gradient evenly); median(x, dim) is the namedtuple (values, indices), the first
    NaN of a slice that holds one, the gradient going to the index."""
    return _median("median", x, dim, keepdim, False, _MedianResult)


@public
def nanmedian(x, dim=None, keepdim=False):
    """torch.nanmedian: median leaving NaNs out (NaN only where a slice is all NaN)."""
    return _median("nanmedian", x, dim, keepdim, True, _NanmedianResult)


# ---- quantiles -----------------------------------------------------------------------------------
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _q_tensor(op, q, x):
    """q as a 1-D Tensor of x's dtype, checked to lie in [0, 1] (a tensor q on a device only when
    backend.CHECK_DEVICE_INDICES is set: the check would wait for the GPU)."""
    xp = xp_of(x.array)
    if not isinstance(q, Tensor):
        if not isinstance(q, numbers.Real) or not 0 <= q <= 1:
            raise RuntimeError(f"{op}: q must be a number in [0, 1] or a tensor, got {q!r}")
        return Tensor(xp.asarray([q], dtype=x.dtype))
    if q.ndim > 1:
        raise RuntimeError(f"{op}: q must be a scalar or a 1-D tensor, got shape {tuple(q.shape)}")
    if q.dtype != x.dtype:
        raise RuntimeError(f"{op}: q ({q.dtype}) must have the input's dtype ({x.dtype})")
    # min(q, 1 - q) < 0 exactly where q is outside [0, 1]
    backend.check_indices(xp.minimum(q.array, 1 - q.array), 0, math.inf,
                          lambda _: RuntimeError(f"{op}: q values must be in the range [0, 1]"))
    return q.reshape(-1)


def _lerp(low, high, weight):
    """torch.lerp's formula (from whichever end is nearer), so the values match torch's bits."""
    if isinstance(weight, float):
        diff = high - low
        return low + weight * diff if weight < 0.5 else high - diff * (1 - weight)
    return _pointwise.lerp(low, high, weight)  # one rule: no 0 * inf from an unused branch


def _quantile(op, x, q, dim, keepdim, interpolation, ignore_nan):
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: the input must be a float tensor, got {x.dtype} (as in torch)")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{op}: interpolation must be one of {', '.join(_INTERPOLATIONS)}, got "
                           f"{interpolation!r}")
    scalar_q = not isinstance(q, Tensor) or q.ndim == 0
    q = _q_tensor(op, q, x)
    if not x.numel():
        raise RuntimeError(f"{op}: the input tensor must be non-empty (got shape "
                           f"{tuple(x.shape)})")
    shape = x.shape
    d = 0 if dim is None else checked_dim(op, dim, shape)
    x = x.reshape(-1) if dim is None or not x.ndim else x
    xp, n = xp_of(x.array), x.shape[d]
    ranked = sort(x, d).values  # NaN last; the gradient goes back through the order
    nans = xp.isnan(ranked.array)
    q = q.reshape((-1,) + (1,) * x.ndim)
    if ignore_nan:  # ranks among the numbers; an all-NaN slice gets rank 0, a NaN
        count = Tensor((n - nans.sum(axis=d, keepdims=True)).astype(x.dtype))
        ranks = q * (count - 1)
        ranks = _ew.where(ranks < 0, 0, ranks)
    else:  # a slice holding a NaN gets the last rank, a NaN
        ranks = _ew.where(Tensor(nans.any(axis=d, keepdims=True)), n - 1, q * (n - 1))
    raw = ranks.array
    if interpolation in ("lower", "higher", "nearest"):  # round is half to even, as torch's
        raw = {"lower": xp.floor, "higher": xp.ceil, "nearest": xp.round}[interpolation](raw)
    below = Tensor(xp.floor(raw).astype(backend.int64))
    values = _shape.expand(_shape.unsqueeze(ranked, 0), shape=(q.shape[0],) + ranked.shape)
    out = _indexing._gather(values, below, dim=d + 1)
    if interpolation in ("linear", "midpoint"):
        above = _indexing._gather(values, Tensor(xp.ceil(raw).astype(backend.int64)), dim=d + 1)
        weight = 0.5 if interpolation == "midpoint" else ranks - _ew.cast(below, dtype=x.dtype)
        out = _lerp(out, above, weight)
    if dim is None:
        out = out.reshape((-1,) + ((1,) * len(shape) if keepdim else ()))
    elif not keepdim or not len(shape):
        out = out.reshape((-1,) + shape[:d] + shape[d + 1:])
    return out.reshape(out.shape[1:]) if scalar_q else out


@public
def quantile(x, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles (q a number or 1-D tensor in [0, 1]) over dim or of the flattened x, like
    torch.quantile: interpolation linear, lower, higher, midpoint or nearest; a 1-D q adds a
    leading dim; NaN where a slice holds one. The gradient follows the interpolated entries (and
    reaches a tensor q through the linear weights)."""
    return _quantile("quantile", x, q, dim, keepdim, interpolation, ignore_nan=False)


@public
def nanquantile(x, q, dim=None, keepdim=False, *, interpolation="linear"):
    """torch.nanquantile: quantile leaving NaNs out (NaN only where a slice is all NaN)."""
    return _quantile("nanquantile", x, q, dim, keepdim, interpolation, ignore_nan=True)


# ---- distinct values and counts (sizes depend on the data: the host waits for the GPU) ---------
def _unique_dim(op, x, dim):
    if dim is None:
        return None
    d = checked_dim(op, dim, x.shape)
    if any(n == 0 for i, n in enumerate(x.shape) if i != d):  # no slices to compare, as in torch
        raise RuntimeError(f"{op}: the tensor of shape {tuple(x.shape)} has an empty dim other "
                           f"than dim={dim}: there are no slices to compare")
    return d


@primitive()
def _unique(x, *, dim, part):
    """One of numpy's unique outputs ("values", "inverse" or "counts"); NaNs stay distinct."""
    xp = xp_of(x)
    out = xp.unique(x.reshape(-1) if dim is None else x, return_inverse=part == "inverse",
                    return_counts=part == "counts", axis=dim, equal_nan=False)
    if part == "values":
        return out
    out = out[1].reshape(x.shape if dim is None else -1) if part == "inverse" else out[1]
    return out.astype(backend.int64, copy=False)


@public
def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The sorted distinct values of x (of the flattened x, or distinct slices along dim), like
    torch.unique; with return_inverse/return_counts a tuple (values, inverse, counts). NaNs stay
    distinct, as in torch. No gradient. On CUDA the host waits for the GPU (the size depends on
    the data)."""
    d = _unique_dim("unique", x, dim)
    parts = ["values"] + ["inverse"] * bool(return_inverse) + ["counts"] * bool(return_counts)
    outs = tuple(_unique(x, dim=d, part=part) for part in parts)
    return outs if len(outs) > 1 else outs[0]


@primitive()
def _unique_consecutive(x, *, dim, part):
    xp = xp_of(x)
    rows = x.reshape(-1) if dim is None else xp.moveaxis(x, dim, 0)
    n = rows.shape[0]
    changed = rows[1:] != rows[:-1]  # NaN != NaN: each NaN starts a run, as in torch
    if changed.ndim > 1:
        changed = changed.any(axis=tuple(range(1, changed.ndim)))
    starts = xp.concatenate([xp.ones(min(n, 1), dtype=bool), changed])
    if part == "inverse":
        out = (starts.cumsum() - 1).reshape(x.shape if dim is None else -1)
        return out.astype(backend.int64, copy=False)
    first = xp.flatnonzero(starts)  # the host waits here
    if part == "counts":
        return xp.diff(first, append=n).astype(backend.int64, copy=False)
    return rows[first] if dim is None else xp.moveaxis(rows[first], 0, dim)


@public
def unique_consecutive(x, return_inverse=False, return_counts=False, dim=None):
    """x with each run of equal consecutive values (or slices along dim) kept once, like
    torch.unique_consecutive, with the inverse indices and run lengths when asked. No gradient.
    On CUDA the host waits for the GPU."""
    d = _unique_dim("unique_consecutive", x, dim)
    parts = ["values"] + ["inverse"] * bool(return_inverse) + ["counts"] * bool(return_counts)
    outs = tuple(_unique_consecutive(x, dim=d, part=part) for part in parts)
    return outs if len(outs) > 1 else outs[0]


@primitive()
def bincount(x, weights=None, *, minlength=0):
    """How often each non-negative integer occurs in the 1-D x (or the sum of its weights), at
    least minlength long, like torch.bincount: int64 counts; float32 weights give float32, other
    weights float64. No gradient. On CUDA the host waits for the GPU (for the largest entry)."""
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs, got a "
                           f"{x.dtype} tensor of shape {tuple(x.shape)}")
    try:
        out = xp_of(x).bincount(x, weights=weights, minlength=minlength)
    except ValueError as error:  # a negative entry or mismatched weights: torch's RuntimeError
        raise RuntimeError(f"bincount: {error} (input shape {tuple(x.shape)}, weights shape "
                           f"{None if weights is None else tuple(weights.shape)})") from None
    if weights is None:
        return out.astype(backend.int64, copy=False)
    return out.astype(backend.float32 if weights.dtype == backend.float32 else backend.float64)


@primitive()
def histc(x, *, bins=100, min=0, max=0):
    """A histogram of x's entries in `bins` equal-width bins over [min, max] (the data's range
    when min == max), like torch.histc: entries outside and NaNs are left out, the result has x's
    dtype. No gradient. With min == max the range is read on the host (a GPU sync, as in torch)."""
    require_floating("histc", x)
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, got {bins}")
    low, high = float(min), float(max)
    if low == high and x.size:
        low, high = float(x.min()), float(x.max())
    if low == high:
        low, high = low - 1, high + 1
    if not (math.isfinite(low) and math.isfinite(high)):
        raise RuntimeError(f"histc: range of [{low}, {high}] is not finite")
    if low > high:
        raise RuntimeError(f"histc: max ({high}) must be larger than min ({low})")
    xp = xp_of(x)
    low, high = x.dtype.type(low), x.dtype.type(high)  # torch computes in x's dtype
    inside = (x >= low) & (x <= high)
    position = xp.where(inside, (x - low) * bins / (high - low), 0).astype(backend.int64)
    index = xp.minimum(position, bins - 1).reshape(-1)  # max itself goes in the last bin
    counts = xp.zeros(bins, dtype=x.dtype)
    return backend.scatter_add(counts, index, inside.reshape(-1).astype(x.dtype))
