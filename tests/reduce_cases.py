"""Rows of the op table for gpuad/ops/reduce.py, scan.py and sort.py (merged into op_cases)."""
import math
import warnings

import numpy as np
from op_cases import (  # noqa: F401
    AWAY_FROM_ZERO,
    BINARY_SHAPES,
    DISTINCT,
    POSITIVE,
    REAL,
    REDUCE_KWARGS,
    UNARY_SHAPES,
    UNIT,
    Case,
)

import gpuad

CUBE = [((2, 3, 4),)]
ONE_DIM_KWARGS = [{}, {"dim": 0}, {"dim": -1}, {"dim": 1, "keepdim": True},
                  {"axis": 1, "keepdims": True}]  # ops that take a single dim (max, argmax, ...)


def _sum_to_ref(x, shape):
    x = x.sum(axis=tuple(range(x.ndim - len(shape))))
    return x.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1),
                 keepdims=True).reshape(shape)


def _with_zeros(rng, shapes):  # slices with one zero and with two: prod's gradient special cases
    x = REAL(rng, shapes[0])
    x[0, 0, 0] = x[0, 1, 0] = x[1, 2, 3] = 0.0
    return [x]


def _max_ref(np_whole, np_arg):
    def ref(x, axis=None, keepdims=False):
        if axis is None:
            return np_whole(x)
        return np_whole(x, axis=axis, keepdims=keepdims), np_arg(x, axis=axis, keepdims=keepdims)
    return ref


def _correction(correction=None, unbiased=None, ddof=None):
    return next((c for c in (correction, ddof, None if unbiased is None else int(unbiased))
                 if c is not None), 1)


def _var_ref(x, axis=None, keepdims=False, **kw):
    # torch divides by max(0, n - correction): inf, or NaN for 0 / 0
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis)
    n = int(np.prod([x.shape[a] for a in axes]))
    mean = x.sum(axis=tuple(axes), keepdims=True) / max(n, 1)
    squares = ((x - mean) ** 2).sum(axis=axis, keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        return squares / max(0, n - _correction(**kw))


def _paired_with_mean(ref):
    def paired(x, axis=None, keepdims=False, **kw):
        return ref(x, axis, keepdims, **kw), np.mean(x, axis, keepdims=keepdims)
    return paired


def _quiet(fn):  # torch warns when the degrees of freedom are <= 0; so do we (tested elsewhere)
    def call(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "var: degrees of freedom")
            return fn(*args, **kwargs)
    return call


def _std_ref(x, axis=None, keepdims=False, **kw):
    return np.sqrt(_var_ref(x, axis, keepdims, **kw))


def _logsumexp_ref(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _norm_ref(x, p="fro", axis=None, keepdims=False):
    a = np.abs(x)
    if p in ("fro", 2):
        return np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims))
    if p == math.inf:
        return np.max(a, axis=axis, keepdims=keepdims)
    if p == -math.inf:
        return np.min(a, axis=axis, keepdims=keepdims)
    if p == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    return np.sum(a ** p, axis=axis, keepdims=keepdims) ** (1 / p)


NORM_KWARGS = [{}, {"p": 2, "dim": 1}, {"p": 1, "dim": -1}, {"p": math.inf, "dim": 0},
               {"p": -math.inf, "dim": (0, 2)}, {"p": 3, "dim": 1, "keepdim": True},
               {"p": 0.5}, {"dim": (1, 2), "keepdim": True}, {"p": 0, "dim": 1},
               {"p": "fro", "axis": -1, "keepdims": True}]
VAR_KWARGS = REDUCE_KWARGS + [{"dim": 1, "correction": 0}, {"dim": -1, "unbiased": False,
                                                             "keepdim": True}, {"ddof": 2}]


def _pick_inputs(rng, shapes):
    x_shape, index_shape = shapes
    d = next(i for i, (a, b) in enumerate(zip(x_shape, index_shape)) if a != b)
    return [REAL(rng, x_shape), rng.integers(0, x_shape[d], index_shape)]


def _bools(rng, shapes):
    return [rng.random(s) > 0.3 for s in shapes]


def _sparse_floats(rng, shapes):
    return [np.where(rng.random(s) > 0.6, REAL(rng, s), 0.0) for s in shapes]


# ---- references for the NaN-ignoring reductions, scans and order statistics ----------------------
def _with_nans(rng, shapes):  # a few NaNs, never a whole slice of them
    x = REAL(rng, shapes[0])
    x[0, 0, 0] = x[1, 2, 1] = x[0, 1, 3] = np.nan
    return [x]


def _distinct_with_nans(rng, shapes):
    x = DISTINCT(rng, shapes[0])
    x[0, 0, 0] = x[1, 2, 1] = x[0, 1, 3] = x[1, 2, 3] = np.nan
    return [x]


def _ties(rng, shapes):  # few distinct values: ties everywhere (forward-only rows)
    return [rng.integers(0, 3, s).astype(float) for s in shapes]


def _ints(rng, shapes):
    return [rng.integers(0, 4, s) for s in shapes]


def _moved(fn):
    """fn(x along the last axis) applied along `axis` of x: references for ops along one dim."""
    def ref(x, axis, **kwargs):
        out = fn(np.moveaxis(x, axis, -1), **kwargs)
        return tuple(np.moveaxis(o, -1, axis) for o in out) if isinstance(out, tuple) else \
            np.moveaxis(out, -1, axis)
    return ref


def _running_extremum(x, largest):
    values, indices = np.empty_like(x), np.zeros(x.shape, dtype=np.int64)
    best, at = x[..., 0], np.zeros(x.shape[:-1], dtype=np.int64)
    for i in range(x.shape[-1]):
        new = x[..., i] >= best if largest else x[..., i] <= best  # ties: the latest, like torch
        best, at = np.where(new, x[..., i], best), np.where(new, i, at)
        values[..., i], indices[..., i] = best, at
    return values, indices


def _stable_order(x, descending=False):
    if not descending:
        return np.argsort(x, axis=-1, kind="stable")
    n = x.shape[-1]
    return n - 1 - np.flip(np.argsort(np.flip(x, -1), axis=-1, kind="stable"), -1)


def _sort_ref(x, descending=False, stable=False):
    order = _stable_order(x, descending)
    return np.take_along_axis(x, order, -1), order


def _topk_ref(x, k, largest=True):
    order = _stable_order(x, largest)[..., :k]
    return np.take_along_axis(x, order, -1), order


def _picked_ref(fn):
    """(values, indices) for an index picked per slice along axis, like kthvalue and median."""
    def ref(x, axis=-1, keepdims=False, **kwargs):
        index = np.expand_dims(fn(np.moveaxis(x, axis, -1), **kwargs), -1)
        index = np.moveaxis(index, -1, axis)
        values = np.take_along_axis(x, index, axis)
        if not keepdims:
            values, index = values.squeeze(axis), index.squeeze(axis)
        return values, index
    return ref


def _lower_median_index(x):
    return np.argsort(x, axis=-1, kind="stable")[..., (x.shape[-1] - 1) // 2]


def _median_ref(x, axis=None, keepdims=False):
    if axis is None:
        return np.sort(x.ravel())[(x.size - 1) // 2]
    return _picked_ref(_lower_median_index)(x, axis, keepdims)


def _nanmedian_index(x):
    order = np.argsort(x, axis=-1, kind="stable")
    count = (~np.isnan(x)).sum(-1, keepdims=True)
    return np.take_along_axis(order, np.maximum(count - 1, 0) // 2, -1)[..., 0]


def _nanmedian_ref(x, axis=None, keepdims=False):
    if axis is None:
        numbers = np.sort(x[~np.isnan(x)])
        return numbers[(numbers.size - 1) // 2]
    return _picked_ref(_nanmedian_index)(x, axis, keepdims)


def _quantile_ref(nan_aware):
    def ref(x, q, axis=None, keepdims=False, interpolation="linear"):
        fn = np.nanquantile if nan_aware else np.quantile
        return fn(x, q, axis=axis, keepdims=keepdims, method=interpolation)
    return ref


def _quantile_inputs(rng, shapes):
    return [DISTINCT(rng, shapes[0]), np.sort(rng.uniform(0.05, 0.95, shapes[1]))]


def _unique_ref(x, sorted=True, return_inverse=False, return_counts=False, axis=None):
    out = np.unique(x, return_inverse=return_inverse, return_counts=return_counts, axis=axis,
                    equal_nan=False)
    if return_inverse and axis is None:
        out = (out[0], out[1].reshape(x.shape)) + out[2:]
    return out


def _unique_consecutive_ref(x, return_inverse=False, return_counts=False, axis=None):
    rows = x.ravel() if axis is None else np.moveaxis(x, axis, 0)
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = (rows[1:] != rows[:-1]).reshape(len(rows) - 1, -1).any(axis=1)
    values = rows[starts] if axis is None else np.moveaxis(rows[starts], 0, axis)
    out = (values,)
    if return_inverse:
        out += ((np.cumsum(starts) - 1).reshape(x.shape if axis is None else -1),)
    if return_counts:
        out += (np.diff(np.append(np.flatnonzero(starts), len(rows))),)
    return out if len(out) > 1 else values


def _bincount_inputs(rng, shapes):
    return [rng.integers(0, 5, shapes[0])] + [rng.uniform(0, 1, s) for s in shapes[1:]]


def _histc_ref(x, bins=100, min=0, max=0):
    low, high = (x.min(), x.max()) if min == max else (min, max)
    return np.histogram(x, bins, range=(low, high))[0].astype(x.dtype)


REDUCE_CASES = [
    Case("sum", gpuad.sum, np.sum, CUBE + [((),)], kwargs=REDUCE_KWARGS[:1]),
    Case("sum", gpuad.sum, np.sum, CUBE, kwargs=REDUCE_KWARGS[1:] + [{"dim": (2, -3)}]),
    Case("sum_to", lambda x, shape: gpuad.ops.sum_to(x, shape=shape), _sum_to_ref, CUBE,
         kwargs=[{"shape": s} for s in [(2, 3, 4), (3, 4), (4,), (1, 3, 1), (2, 1, 4), (1, 1, 1),
                                        ()]]),
    Case("mean", gpuad.mean, np.mean, CUBE, kwargs=REDUCE_KWARGS),
    Case("prod", gpuad.prod, np.prod, CUBE, kwargs=REDUCE_KWARGS),
    Case("prod", gpuad.prod, np.prod, CUBE, kwargs=REDUCE_KWARGS, make=_with_zeros),
    Case("cumsum", gpuad.cumsum, np.cumsum, CUBE, kwargs=[{"dim": 0}, {"dim": -1}, {"axis": 1}]),
    Case("cumprod", gpuad.cumprod, lambda x, axis: np.cumprod(x, axis) if x.ndim else x,
         CUBE + [((),)], kwargs=[{"dim": 0}, {"dim": -1}]),
    Case("cumprod", gpuad.cumprod, np.cumprod, [((3, 5),)], kwargs=[{"dim": 1}, {"axis": 0}],
         make=lambda rng, shapes: [np.array([[2.0, 0.0, 1.5, 0.0, -1.2], [0.7, 1.3, 0.0, 0.9, 2.0],
                                             [1.1, -0.5, 0.8, 1.4, 0.6]])]),
    Case("cummax", gpuad.cummax, _moved(lambda x: _running_extremum(x, True)), CUBE,
         kwargs=[{"dim": 0}, {"dim": -1}, {"dim": 1}], domain=DISTINCT),
    Case("cummin", gpuad.cummin, _moved(lambda x: _running_extremum(x, False)), CUBE,
         kwargs=[{"dim": 0}, {"dim": -1}], domain=DISTINCT),
    Case("_cumextremum_index", gpuad.ops._cumextremum_index,
         _moved(lambda x, largest: _running_extremum(x, largest)[1]), CUBE,
         kwargs=[{"dim": 2, "largest": True}, {"dim": 0, "largest": False}], make=_ties,
         grad=False),
    Case("logcumsumexp", gpuad.logcumsumexp,
         lambda x, axis: np.logaddexp.accumulate(x, axis) if x.ndim else x,
         CUBE + [((),)], kwargs=[{"dim": 0}, {"dim": -1}]),
    Case("logcumsumexp", gpuad.logcumsumexp, lambda x, axis: np.logaddexp.accumulate(x, axis),
         [((2, 9),)], kwargs=[{"dim": 1}],
         make=lambda rng, shapes: [rng.uniform(-30, 30, shapes[0])]),
    Case("_cumsum_reverse", gpuad.ops._cumsum_reverse,
         lambda x, axis: np.flip(np.cumsum(np.flip(x, axis), axis), axis), CUBE,
         kwargs=[{"dim": 0}, {"dim": -1}, {"dim": 1}]),
    Case("amax", gpuad.amax, np.amax, CUBE, kwargs=REDUCE_KWARGS, domain=DISTINCT),
    Case("amin", gpuad.amin, np.amin, CUBE, kwargs=REDUCE_KWARGS, domain=DISTINCT),
    Case("_tied_extremum", gpuad.ops._tied_extremum,
         lambda x, axis=None, keepdims=False, largest=True, masked=False:
         (np.amax if largest else np.amin)(x, axis=axis, keepdims=keepdims), CUBE,
         kwargs=[{}, {"dim": (0, 2), "largest": False},
                 {"dim": 1, "keepdim": True, "masked": True}],
         domain=DISTINCT),
    Case("max", gpuad.max, _max_ref(np.max, np.argmax), CUBE, kwargs=ONE_DIM_KWARGS,
         domain=DISTINCT),
    Case("max", gpuad.max, np.maximum, BINARY_SHAPES[:4], domain=DISTINCT),
    Case("min", gpuad.min, _max_ref(np.min, np.argmin), CUBE, kwargs=ONE_DIM_KWARGS,
         domain=DISTINCT),
    Case("min", gpuad.min, np.minimum, BINARY_SHAPES[:4], domain=DISTINCT),
    Case("_pick", gpuad.ops._pick, lambda x, index, axis: np.take_along_axis(x, index, axis),
         [((2, 3, 4), (1, 3, 4))], kwargs=[{"dim": 0}], make=_pick_inputs),
    Case("_pick", gpuad.ops._pick, lambda x, index, axis: np.take_along_axis(x, index, axis),
         [((2, 3, 4), (2, 3, 1))], kwargs=[{"dim": 2}], make=_pick_inputs),
    Case("argmax", gpuad.argmax, np.argmax, CUBE, kwargs=ONE_DIM_KWARGS + [{"keepdim": True}],
         domain=DISTINCT, grad=False),
    Case("argmin", gpuad.argmin, np.argmin, CUBE, kwargs=ONE_DIM_KWARGS + [{"keepdim": True}],
         domain=DISTINCT, grad=False),
    Case("var", gpuad.var, _var_ref, CUBE, kwargs=VAR_KWARGS),
    Case("std", gpuad.std, _std_ref, CUBE, kwargs=VAR_KWARGS),
    # regression: a correction at least the number of reduced elements divides by max(0, n - c)
    Case("var", gpuad.var, _var_ref, CUBE, kwargs=[{"dim": 1, "correction": 2.5}]),
    Case("var", _quiet(gpuad.var), _var_ref, CUBE + [((2, 0),), ((0, 3),)],
         kwargs=[{"dim": 1, "correction": 3}, {"correction": 30}, {"dim": 0, "correction": 5},
                 {"dim": -1}, {}], grad=False),
    Case("std", _quiet(gpuad.std), _std_ref, CUBE + [((2, 0),)],
         kwargs=[{"dim": 1, "correction": 3}, {"correction": 25}, {"dim": -1}], grad=False),
    Case("var_mean", gpuad.var_mean, _paired_with_mean(_var_ref), CUBE,
         kwargs=[{}, {"dim": 1, "correction": 0}, {"dim": (0, 2), "keepdim": True}]),
    Case("std_mean", gpuad.std_mean, _paired_with_mean(_std_ref), CUBE,
         kwargs=[{}, {"dim": -1, "unbiased": False}, {"dim": 1, "keepdim": True}]),
    Case("nansum", gpuad.nansum, np.nansum, CUBE, kwargs=REDUCE_KWARGS, make=_with_nans),
    Case("nansum", gpuad.nansum, np.sum, [((),)]),
    Case("nanmean", gpuad.nanmean, np.nanmean, CUBE, kwargs=REDUCE_KWARGS, make=_with_nans),
    Case("count_nonzero", gpuad.count_nonzero, np.count_nonzero, CUBE,
         kwargs=[{}, {"dim": 1}, {"dim": (0, 2)}, {"axis": -1}], make=_sparse_floats, grad=False),
    Case("aminmax", gpuad.aminmax, lambda x, axis=None, keepdims=False: (
        np.amin(x, axis, keepdims=keepdims), np.amax(x, axis, keepdims=keepdims)), CUBE,
         kwargs=[{}, {"dim": 1}, {"dim": -1, "keepdim": True}], domain=DISTINCT),
    Case("logsumexp", gpuad.logsumexp, _logsumexp_ref, CUBE + [((),)], kwargs=REDUCE_KWARGS[:1]),
    Case("logsumexp", gpuad.logsumexp, _logsumexp_ref, CUBE, kwargs=REDUCE_KWARGS[1:]),
    Case("norm", gpuad.norm, _norm_ref, CUBE, kwargs=NORM_KWARGS, domain=AWAY_FROM_ZERO),
    Case("_norm2", gpuad.ops._norm2, _norm_ref, CUBE + [((),)], kwargs=REDUCE_KWARGS[:1]),
    Case("_norm2", gpuad.ops._norm2, _norm_ref, CUBE, kwargs=REDUCE_KWARGS[1:]),
    Case("_norm_p", gpuad.ops._norm_p, _norm_ref, CUBE,
         kwargs=[{"p": 3.0}, {"p": 1.5, "dim": 1}, {"p": 0.5, "dim": (0, 2), "keepdim": True},
                 {"p": -1.5, "dim": -1}], domain=AWAY_FROM_ZERO),
    # ---- order statistics ----
    Case("sort", gpuad.sort, _moved(_sort_ref), CUBE,
         kwargs=[{"dim": -1}, {"dim": 0, "descending": True}, {"dim": 1, "stable": True}],
         domain=DISTINCT),
    Case("sort", gpuad.sort, _moved(_sort_ref), CUBE, kwargs=[{"dim": 1}, {"dim": 2,
                                                                "descending": True}],
         make=_distinct_with_nans, grad=False),
    Case("argsort", gpuad.argsort, _moved(_stable_order), CUBE,
         kwargs=[{"dim": -1}, {"dim": 0, "descending": True}], make=_ties, grad=False),
    Case("topk", gpuad.topk, _moved(_topk_ref), CUBE,
         kwargs=[{"k": 2, "dim": -1}, {"k": 1, "dim": 0, "largest": False}, {"k": 3, "dim": 1}],
         domain=DISTINCT),
    Case("_topk_index", gpuad.ops._topk_index, _moved(lambda x, k, largest: _stable_order(
        x, largest)[..., :k]), CUBE, kwargs=[{"k": 2, "dim": 2, "largest": True}], make=_ties,
         grad=False),
    Case("kthvalue", gpuad.kthvalue, _picked_ref(lambda x, k: _stable_order(x)[..., k - 1]),
         CUBE, kwargs=[{"k": 2}, {"k": 1, "dim": 0, "keepdim": True}, {"k": 3, "dim": 1}],
         domain=DISTINCT),
    Case("_kth_index", gpuad.ops._kth_index, _moved(lambda x, k: _stable_order(x)[..., k - 1:k]),
         CUBE, kwargs=[{"k": 3, "dim": 2}], make=_ties, grad=False),
    Case("median", gpuad.median, _median_ref, CUBE + [((3, 5),)],
         kwargs=[{}, {"dim": 1}, {"dim": -1, "keepdim": True}], domain=DISTINCT),
    Case("median", gpuad.median, _median_ref, CUBE, kwargs=[{"dim": 0}], make=_ties, grad=False),
    Case("_median_index", gpuad.ops._median_index, _moved(
        lambda x, ignore_nan: _lower_median_index(x)[..., None]), CUBE,
         kwargs=[{"dim": 1, "ignore_nan": False}], make=_ties, grad=False),
    Case("_median_all", gpuad.ops._median_all, lambda x, ignore_nan: _median_ref(x),
         CUBE, kwargs=[{"ignore_nan": False}], domain=DISTINCT),
    Case("nanmedian", gpuad.nanmedian, _nanmedian_ref, CUBE,
         kwargs=[{}, {"dim": 1}, {"dim": -1, "keepdim": True}], make=_distinct_with_nans),
    Case("quantile", gpuad.quantile, _quantile_ref(False), CUBE,
         kwargs=[{"q": 0.3}, {"q": 0.75, "dim": 1}, {"q": 0.4, "dim": -1, "keepdim": True},
                 {"q": 0.6, "dim": 0, "interpolation": "lower"},
                 {"q": 0.6, "dim": 2, "interpolation": "higher"},
                 {"q": 0.3, "interpolation": "midpoint"},
                 {"q": 0.7, "dim": 1, "interpolation": "nearest"}], domain=DISTINCT),
    Case("quantile", gpuad.quantile, _quantile_ref(False), [((2, 3, 4), (3,))],
         kwargs=[{}, {"dim": 1, "keepdim": True}], make=_quantile_inputs),
    Case("quantile", gpuad.quantile, _quantile_ref(False), [((2, 3, 4), (2,))],
         kwargs=[{"dim": 2, "interpolation": "midpoint"}], make=_quantile_inputs, diff=(0,)),
    Case("nanquantile", gpuad.nanquantile, _quantile_ref(True), CUBE,
         kwargs=[{"q": 0.3}, {"q": 0.75, "dim": 1}, {"q": 0.5, "dim": -1, "keepdim": True,
                                                      "interpolation": "nearest"}],
         make=_distinct_with_nans),
    Case("unique", gpuad.unique, _unique_ref, CUBE + [((5, 2),)],
         kwargs=[{}, {"return_inverse": True}, {"return_counts": True, "return_inverse": True},
                 {"dim": 0, "return_counts": True}], make=_ints, grad=False),
    Case("_unique", gpuad.ops._unique, lambda x, axis, part: _unique_ref(
        x, return_counts=part == "counts", axis=axis)[-1], CUBE,
         kwargs=[{"dim": None, "part": "counts"}], make=_ints, grad=False),
    Case("unique_consecutive", gpuad.unique_consecutive, _unique_consecutive_ref,
         CUBE + [((6, 2),)], kwargs=[{}, {"return_inverse": True, "return_counts": True},
                                     {"dim": 0, "return_counts": True}],
         make=lambda rng, shapes: [rng.integers(0, 2, s) for s in shapes], grad=False),
    Case("_unique_consecutive", gpuad.ops._unique_consecutive,
         lambda x, axis, part: _unique_consecutive_ref(x, return_inverse=True, axis=axis)[1],
         [((4, 5),)], kwargs=[{"dim": None, "part": "inverse"}],
         make=lambda rng, shapes: [rng.integers(0, 2, s) for s in shapes], grad=False),
    Case("bincount", gpuad.bincount, np.bincount, [((7,),), ((7,), (7,))],
         kwargs=[{}, {"minlength": 9}], make=_bincount_inputs, grad=False),
    Case("histc", gpuad.histc, _histc_ref, CUBE,
         kwargs=[{"bins": 5}, {"bins": 4, "min": -1.0, "max": 1.0}], grad=False),
    Case("any", gpuad.any, np.any, CUBE, kwargs=REDUCE_KWARGS, make=_bools, grad=False),
    Case("any", gpuad.any, np.any, CUBE, kwargs=[{}, {"dim": 1}], make=_sparse_floats, grad=False),
    Case("all", gpuad.all, np.all, CUBE, kwargs=REDUCE_KWARGS, make=_bools, grad=False),
    Case("all", gpuad.all, np.all, CUBE, kwargs=[{}, {"dim": (0, 1)}], make=_sparse_floats,
         grad=False),
]
