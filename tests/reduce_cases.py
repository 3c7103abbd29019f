"""Rows of the op table for gpuad/ops/reduce.py (merged into op_cases.CASES)."""
import math

import numpy as np

import gpuad
from op_cases import (AWAY_FROM_ZERO, BINARY_SHAPES, DISTINCT, POSITIVE, REAL, REDUCE_KWARGS,  # noqa: F401
                      UNARY_SHAPES, UNIT, Case)

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
    return np.var(x, axis=axis, keepdims=keepdims, ddof=_correction(**kw))


def _std_ref(x, axis=None, keepdims=False, **kw):
    return np.std(x, axis=axis, keepdims=keepdims, ddof=_correction(**kw))


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
    Case("_cumsum_reverse", gpuad.ops._cumsum_reverse,
         lambda x, axis: np.flip(np.cumsum(np.flip(x, axis), axis), axis), CUBE,
         kwargs=[{"dim": 0}, {"dim": -1}, {"dim": 1}]),
    Case("amax", gpuad.amax, np.amax, CUBE, kwargs=REDUCE_KWARGS, domain=DISTINCT),
    Case("amin", gpuad.amin, np.amin, CUBE, kwargs=REDUCE_KWARGS, domain=DISTINCT),
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
    Case("logsumexp", gpuad.logsumexp, _logsumexp_ref, CUBE + [((),)], kwargs=REDUCE_KWARGS[:1]),
    Case("logsumexp", gpuad.logsumexp, _logsumexp_ref, CUBE, kwargs=REDUCE_KWARGS[1:]),
    Case("norm", gpuad.norm, _norm_ref, CUBE, kwargs=NORM_KWARGS, domain=AWAY_FROM_ZERO),
    Case("_norm2", gpuad.ops._norm2, _norm_ref, CUBE + [((),)], kwargs=REDUCE_KWARGS[:1]),
    Case("_norm2", gpuad.ops._norm2, _norm_ref, CUBE, kwargs=REDUCE_KWARGS[1:]),
    Case("any", gpuad.any, np.any, CUBE, kwargs=REDUCE_KWARGS, make=_bools, grad=False),
    Case("any", gpuad.any, np.any, CUBE, kwargs=[{}, {"dim": 1}], make=_sparse_floats, grad=False),
    Case("all", gpuad.all, np.all, CUBE, kwargs=REDUCE_KWARGS, make=_bools, grad=False),
    Case("all", gpuad.all, np.all, CUBE, kwargs=[{}, {"dim": (0, 1)}], make=_sparse_floats,
         grad=False),
]
