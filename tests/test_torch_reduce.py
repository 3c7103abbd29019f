"""PyTorch as the oracle for the reductions, scans and order statistics: values, indices, result
dtypes, gradients (ties included where torch defines them), NaN propagation and empty inputs.

Every case is one call written once for both libraries (`m` is gpuad or torch: the names and
signatures are the same); skipped when torch is not importable, and torch is never a dependency.
"""
import math
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import backend

nan, inf = math.nan, math.inf
TIES = np.array([[2.0, 1.0, 2.0, 3.0, 1.0], [0.0, 0.0, 5.0, -1.0, 5.0], [4.0, 4.0, 4.0, 4.0, 4.0]])
DIST = np.array([[0.3, -1.2, 2.5, 0.9, -0.4], [1.7, 0.1, -2.2, 3.1, 0.6],
                 [-0.8, 2.2, 1.1, -1.5, 0.4]])
NANS = np.array([[1.0, nan, 3.0, 0.0, 2.0], [nan, nan, nan, nan, nan], [5.0, 1.0, nan, 2.0, 2.0]])
NAN_DIST = np.array([[1.0, nan, 3.0, 0.0, 2.0], [5.0, 1.0, nan, 2.0, 4.0]])
SOME_NANS = np.array([[1.0, nan, 3.0, 0.0, 2.0], [nan, 4.0, nan, -1.0, 6.0]])
ZEROS = np.array([[2.0, 0.0, 3.0, 0.0, 4.0], [1.0, 2.0, 0.0, 3.0, 1.5], [0.0, 1.0, 2.0, 3.0, 4.0]])
INTS = np.array([[3, 1, 2, 1], [0, 5, 5, 2]], dtype=np.int32)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _tensor(m, array, requires_grad):
    if m is gpuad:
        return gpuad.tensor(array, requires_grad=requires_grad)
    return m.tensor(array, requires_grad=requires_grad)


def _numpy(t):
    return backend.asnumpy(t.array) if isinstance(t, gpuad.Tensor) else t.detach().numpy()


def _run(m, call, arrays, grad=True):
    """call(m, *tensors): (result, input gradients) or (the exception raised, None)."""
    tensors = [_tensor(m, a, grad and a.dtype.kind == "f") for a in arrays]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # torch and gpuad both warn when var's dof are <= 0
        try:
            out = call(m, *tensors)
        except Exception as error:  # noqa: BLE001 (compared with torch's below)
            return error, None
        outs = list(out) if isinstance(out, tuple) else [out]
        weights = np.random.default_rng(7)
        total = None
        for o in outs:
            w = weights.standard_normal(tuple(o.shape))
            if o.requires_grad:
                term = (o * _tensor(m, w.astype(_numpy(o).dtype), False)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    return out, tuple(t.grad for t in tensors if t.requires_grad)


def _same_error(ours, theirs, what):
    assert isinstance(ours, Exception), f"{what}: torch raised {theirs!r}, gpuad returned {ours}"
    for kind in (IndexError, TypeError, ValueError, RuntimeError):  # NotImplementedError too
        if isinstance(theirs, kind):
            assert isinstance(ours, kind), f"{what}: torch raised {theirs!r}, gpuad {ours!r}"
            return
    raise AssertionError(f"{what}: unexpected torch error {theirs!r}")


def _same(ours, theirs, what):
    if isinstance(theirs, Exception):
        return _same_error(ours, theirs, what)
    assert not isinstance(ours, Exception), f"{what}: gpuad raised {ours!r}"
    if theirs is None:
        assert ours is None, f"{what}: torch gives no gradient, gpuad gives {ours}"
        return
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), what
        if hasattr(ours, "_fields"):  # a named tuple like torch.return_types.X
            assert type(ours).__name__ == type(theirs).__name__, what
            theirs = [getattr(theirs, f) for f in ours._fields]
        for k, (a, b) in enumerate(zip(ours, theirs)):
            _same(a, b, f"{what}[{k}]")
        return
    assert str(theirs.dtype) == f"torch.{ours.dtype}", f"{what}: {ours.dtype} vs {theirs.dtype}"
    got, want = _numpy(ours), _numpy(theirs)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs torch's {want.shape}"
    if want.dtype.kind == "f":
        tight = want.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12 if tight else 1e-6,
                                   atol=1e-14 if tight else 1e-7, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _check(torch, call, arrays, grad=True):
    ours, our_grads = _run(gpuad, call, arrays, grad)
    theirs, their_grads = _run(torch, call, arrays, grad)
    _same(ours, theirs, "result")
    if their_grads is not None:
        _same(our_grads, their_grads, "gradient")


def _case(name, call, *arrays, grad=True):
    return pytest.param(call, arrays, grad, id=name)


def _no_grad(name, call, *arrays):  # torch raises in backward; gpuad's results need no grad
    return _case(name, call, *arrays, grad=False)


FLOAT_CASES = [
    # ---- sorting: NaN last (first when descending), equal values keep their order
    _case("sort-ties", lambda m, x: m.sort(x, dim=1, stable=True), TIES),
    _case("sort-ties-descending-dim0", lambda m, x: m.sort(x, dim=0, descending=True,
                                                           stable=True), TIES),
    _case("sort-nan", lambda m, x: m.sort(x, stable=True), NANS),
    _case("sort-nan-descending", lambda m, x: m.sort(x, stable=True, dim=1,
                                                                 descending=True), NANS),
    _case("sort-distinct", lambda m, x: x.sort(0), DIST),
    _case("sort-0d", lambda m, x: m.sort(x), np.array(3.0)),
    _case("argsort-ties", lambda m, x: m.argsort(x, dim=1, stable=True), TIES),
    _case("argsort-descending-nan", lambda m, x: x.argsort(descending=True, stable=True), NANS),
    _case("topk", lambda m, x: m.topk(x, 2), DIST),
    _case("topk-smallest-dim0", lambda m, x: x.topk(2, dim=0, largest=False), DIST),
    _case("topk-nan-is-largest", lambda m, x: m.topk(x, 3), NAN_DIST),
    _case("topk-nan-smallest", lambda m, x: m.topk(x, 3, largest=False), NAN_DIST),
    _case("topk-all", lambda m, x: m.topk(x, 5, 1), DIST),
    _case("topk-0d", lambda m, x: m.topk(x, 1), np.array(2.0)),
    _case("kthvalue", lambda m, x: m.kthvalue(x, 2), DIST),
    _case("kthvalue-dim0-keepdim", lambda m, x: x.kthvalue(3, 0, True), DIST),
    _case("kthvalue-nan", lambda m, x: m.kthvalue(x, 5), NAN_DIST),
    _case("kthvalue-0d", lambda m, x: m.kthvalue(x, 1), np.array(2.0)),
    # ---- medians: ties share median(x)'s gradient; median(x, dim) takes the first in order
    _case("median-ties", lambda m, x: m.median(x), TIES),
    _case("median-even", lambda m, x: m.median(x), DIST[:, :4]),
    _case("median-nan", lambda m, x: m.median(x), NANS),
    _case("median-dim-ties", lambda m, x: m.median(x, 1), TIES),
    _case("median-dim0-keepdim", lambda m, x: x.median(0, keepdim=True), TIES),
    _case("median-dim-nan", lambda m, x: m.median(x, 1), NANS),
    _case("median-0d", lambda m, x: m.median(x, 0), np.array(2.0)),
    _case("nanmedian", lambda m, x: m.nanmedian(x), NANS),
    _case("nanmedian-dim", lambda m, x: m.nanmedian(x, 1), SOME_NANS),
    _case("nanmedian-all-nan", lambda m, x: m.nanmedian(x), np.array([nan, nan])),
    # ---- quantiles: torch's lerp, rounding and NaN rules; a tensor q gets a gradient
    *[_case(f"quantile-{mode}", lambda m, x, mode=mode: m.quantile(x, 0.4, interpolation=mode),
            TIES) for mode in ("linear", "lower", "higher", "midpoint", "nearest")],
    *[_case(f"quantile-q-tensor-{mode}", lambda m, x, q, mode=mode: m.quantile(
        x, q, 1, interpolation=mode), DIST, np.array([0.0, 0.125, 0.5, 0.625, 1.0]))
      for mode in ("linear", "lower", "higher", "midpoint", "nearest")],
    _case("quantile-dim0-keepdim", lambda m, x: x.quantile(0.7, dim=0, keepdim=True), TIES),
    _case("quantile-keepdim-all", lambda m, x, q: m.quantile(x, q, keepdim=True), DIST,
          np.array([0.2, 0.9])),
    _case("quantile-0d-q", lambda m, x, q: m.quantile(x, q, 1), DIST, np.array(0.35)),
    _case("quantile-nan", lambda m, x: m.quantile(x, 0.5, 1), NANS),
    _case("quantile-0d", lambda m, x: m.quantile(x, 0.5), np.array(3.0)),
    _case("nanquantile", lambda m, x, q: m.nanquantile(x, q, 1), NANS, np.array([0.25, 0.5])),
    _case("nanquantile-nearest", lambda m, x: m.nanquantile(x, 0.5, interpolation="nearest"),
          NANS),
    # ---- scans
    _case("cumprod-zeros", lambda m, x: m.cumprod(x, 1), ZEROS),
    _case("cumprod-zeros-dim0", lambda m, x: x.cumprod(0), ZEROS.T.copy()),
    _case("cumprod-0d", lambda m, x: m.cumprod(x, 0), np.array(2.0)),
    _case("cummax-ties", lambda m, x: m.cummax(x, 1), TIES),
    _case("cummin-ties-dim0", lambda m, x: x.cummin(0), TIES),
    _case("cummax-nan", lambda m, x: m.cummax(x, 1), NANS),
    _case("cummin-nan", lambda m, x: m.cummin(x, -1), NANS),
    _case("logcumsumexp", lambda m, x: m.logcumsumexp(x, 1), DIST),
    _case("logcumsumexp-large", lambda m, x: x.logcumsumexp(0),
          np.array([1000.0, 1000.0, -1000.0, 3.0])),
    _case("logcumsumexp-inf", lambda m, x: m.logcumsumexp(x, 0),
          np.array([-inf, 0.0, -inf, 1.0, inf, 2.0])),
    _case("logcumsumexp-nan", lambda m, x: m.logcumsumexp(x, 1), NAN_DIST),
    _case("cumsum", lambda m, x: m.cumsum(x, 1), DIST),
    # ---- variance with every correction, including non-positive degrees of freedom
    *[_case(f"{op}-{name}", lambda m, x, op=op, kw=kw: getattr(m, op)(x, **kw), data)
      for op in ("var", "std")
      for name, kw, data in [
          ("default", {}, DIST), ("dim", {"dim": 1}, DIST),
          ("dof-0-dim", {"dim": 1, "correction": 5}, DIST),
          ("dof-negative-dim", {"dim": 1, "correction": 7}, DIST),
          ("dof-0-all", {"correction": 15}, DIST), ("dof-negative-all", {"correction": 20}, DIST),
          ("dof-0-dims", {"dim": (0, 1), "correction": 15}, DIST),
          ("dof-0-constant", {"dim": 1, "correction": 5}, TIES),
          ("dof-0-constant-all", {"correction": 5}, np.full(5, 4.0)),
          ("dof-half", {"dim": 0, "correction": 2.5}, DIST),
          ("one-element", {}, np.array([3.0])), ("0d", {}, np.array(3.0)),
          ("keepdim", {"dim": 0, "keepdim": True, "correction": 0}, DIST)]],
    _case("var_mean", lambda m, x: m.var_mean(x, 1), DIST),
    _case("var_mean-unbiased", lambda m, x: m.var_mean(x, 1, False, keepdim=True), DIST),
    _case("std_mean", lambda m, x: m.std_mean(x, correction=0), DIST),
    _case("std_mean-dof-0", lambda m, x: m.std_mean(x, 1, correction=5), DIST),
    # ---- NaN-ignoring reductions
    _case("nansum", lambda m, x: m.nansum(x), NANS),
    _case("nansum-dim", lambda m, x: x.nansum(1), NANS),
    _case("nanmean", lambda m, x: m.nanmean(x), NANS),
    _case("nanmean-dim-all-nan-row", lambda m, x: m.nanmean(x, 1), NANS),
    _case("nanmean-dim0-keepdim", lambda m, x: x.nanmean(0, True), NANS),
    _no_grad("count_nonzero", lambda m, x: m.count_nonzero(x), ZEROS),
    _no_grad("count_nonzero-dims", lambda m, x: x.count_nonzero((0, 1)), NANS),
    _no_grad("count_nonzero-dim", lambda m, x: m.count_nonzero(x, dim=1), ZEROS),
    # ---- extrema: ties share the gradient evenly; a NaN extremum gives NaN gradients
    _case("aminmax-ties", lambda m, x: m.aminmax(x), TIES),
    _case("aminmax-dim-keepdim", lambda m, x: x.aminmax(dim=1, keepdim=True), TIES),
    _case("aminmax-nan", lambda m, x: m.aminmax(x, dim=1), NANS),
    _case("amax-nan", lambda m, x: m.amax(x, 1), NANS),
    _case("amin-ties", lambda m, x: m.amin(x, 0), TIES),
    # ---- distinct values and counts (no gradient)
    _no_grad("unique", lambda m, x: m.unique(x, return_inverse=True, return_counts=True),
             TIES),
    _no_grad("unique-nan", lambda m, x: m.unique(x, return_inverse=True, return_counts=True),
             NANS),
    _no_grad("unique-plain", lambda m, x: x.unique(), TIES),
    _no_grad("unique-dim", lambda m, x: m.unique(x, dim=1, return_inverse=True,
                                              return_counts=True), TIES[:, [0, 2, 1, 0, 4]]),
    _no_grad("unique_consecutive", lambda m, x: m.unique_consecutive(
        x, return_inverse=True, return_counts=True), TIES),
    _no_grad("unique_consecutive-nan", lambda m, x: x.unique_consecutive(return_counts=True),
             NANS),
    _no_grad("unique_consecutive-dim", lambda m, x: m.unique_consecutive(
        x, return_inverse=True, return_counts=True, dim=1), TIES[:, [0, 0, 2, 2, 0]]),
    _no_grad("histc", lambda m, x: m.histc(x, bins=4), DIST),
    _no_grad("histc-range", lambda m, x: x.histc(6, -1.0, 2.0), DIST),
    _no_grad("histc-nan-with-range", lambda m, x: m.histc(x, bins=3, min=0, max=4), NAN_DIST),
    _no_grad("histc-constant", lambda m, x: m.histc(x, bins=3), np.full(4, 2.0)),
]


@pytest.mark.parametrize("call,arrays,grad", FLOAT_CASES)
def test_matches_torch(torch, call, arrays, grad):
    _check(torch, call, arrays, grad)


UINT8 = INTS.astype(np.uint8)
BOOLS = INTS > 1
DTYPE_CASES = [
    *[_case(f"{name}-{data.dtype}", call, data) for data in (INTS, UINT8, BOOLS)
      for name, call in [("sum", lambda m, x: m.sum(x)), ("sum-dim", lambda m, x: x.sum(1)),
                         ("prod", lambda m, x: m.prod(x, 0)),
                         ("cumsum", lambda m, x: m.cumsum(x, 1)),
                         ("cumprod", lambda m, x: m.cumprod(x, 0)),
                         ("nansum", lambda m, x: m.nansum(x)),
                         ("mean", lambda m, x: m.mean(x)), ("nanmean", lambda m, x: m.nanmean(x)),
                         ("var", lambda m, x: m.var(x)), ("std", lambda m, x: m.std(x, 1)),
                         ("var_mean", lambda m, x: m.var_mean(x)),
                         ("quantile", lambda m, x: m.quantile(x, 0.5)),
                         ("logcumsumexp", lambda m, x: m.logcumsumexp(x, 0)),
                         ("count_nonzero", lambda m, x: m.count_nonzero(x, 1)),
                         ("unique", lambda m, x: m.unique(x, return_counts=True))]],
    *[_case(f"{name}-{data.dtype}", call, data) for data in (INTS, UINT8)
      for name, call in [("sort", lambda m, x: m.sort(x, stable=True)),
                         ("argsort", lambda m, x: m.argsort(x, dim=0, stable=True)),
                         ("topk", lambda m, x: m.topk(x, 1)),
                         ("kthvalue", lambda m, x: m.kthvalue(x, 2, 0)),
                         ("median", lambda m, x: m.median(x)),
                         ("median-dim", lambda m, x: m.median(x, 1)),
                         ("cummax", lambda m, x: m.cummax(x, 1)),
                         ("cummin", lambda m, x: m.cummin(x, 0)),
                         ("aminmax", lambda m, x: m.aminmax(x)),
                         ("histc", lambda m, x: m.histc(x, 3)),
                         ("unique_consecutive", lambda m, x: m.unique_consecutive(x))]],
    _case("mean-dtype", lambda m, x: m.mean(x, dtype=m.float64), INTS),
    _case("sum-dtype", lambda m, x: m.sum(x, dtype=m.int32), INTS),
    _case("cumsum-dtype", lambda m, x: m.cumsum(x, 0, dtype=m.float64), INTS),
    _case("bincount", lambda m, x: m.bincount(x), np.array([0, 2, 2, 5])),
    _case("bincount-int32-minlength", lambda m, x: m.bincount(x, minlength=8),
          np.array([0, 2, 2, 5], dtype=np.int32)),
    *[_case(f"bincount-weights-{w.dtype}", lambda m, x, w: m.bincount(x, w),
            np.array([0, 2, 2, 5]), w) for w in (np.array([1.0, 2.0, 3.0, 4.0], np.float32),
                                                 np.array([1.0, 2.0, 3.0, 4.0]),
                                                 np.array([1, 2, 3, 4]))],
    _case("bincount-negative", lambda m, x: m.bincount(x), np.array([1, -1])),
    _case("bincount-float", lambda m, x: m.bincount(x), np.array([1.0, 2.0])),
    _case("bincount-2d", lambda m, x: m.bincount(x), INTS.astype(np.int64)),
    _case("float32-var", lambda m, x: m.var(x, 1), DIST.astype(np.float32)),
    _case("float32-sort", lambda m, x: m.sort(x), DIST.astype(np.float32)),
    _case("float32-quantile", lambda m, x: m.quantile(x, 0.3, 1), DIST.astype(np.float32)),
    _case("float32-histc", lambda m, x: m.histc(x, 5), DIST.astype(np.float32)),
]


@pytest.mark.parametrize("call,arrays,grad", DTYPE_CASES)
def test_result_dtypes_and_errors_match_torch(torch, call, arrays, grad):
    """Integer inputs: int64 sums, preserved dtypes for order statistics, and torch's errors."""
    _check(torch, call, arrays, grad=False)


EMPTY_CASES = [
    _case(f"{name}-{shape}", call, np.zeros(shape),
          grad=not name.startswith(("unique", "histc", "count_nonzero")))
    for shape in ((0,), (2, 0), (0, 3))
    for name, call in [
        ("sort", lambda m, x: m.sort(x, -1)), ("sort-dim0", lambda m, x: m.sort(x, 0)),
        ("argsort", lambda m, x: m.argsort(x, 0)), ("topk-0", lambda m, x: m.topk(x, 0)),
        ("topk-1", lambda m, x: m.topk(x, 1, 0)), ("kthvalue", lambda m, x: m.kthvalue(x, 1)),
        ("median", lambda m, x: m.median(x)), ("median-dim", lambda m, x: m.median(x, -1)),
        ("nanmedian", lambda m, x: m.nanmedian(x)),
        ("nanmedian-dim0", lambda m, x: m.nanmedian(x, 0)),
        ("quantile", lambda m, x: m.quantile(x, 0.5)),
        ("quantile-dim", lambda m, x: m.quantile(x, 0.5, -1)),
        ("nanquantile", lambda m, x: m.nanquantile(x, 0.5)),
        ("cumsum", lambda m, x: m.cumsum(x, 0)), ("cumprod", lambda m, x: m.cumprod(x, -1)),
        ("cummax", lambda m, x: m.cummax(x, 0)), ("cummin", lambda m, x: m.cummin(x, -1)),
        ("logcumsumexp", lambda m, x: m.logcumsumexp(x, 0)),
        ("var", lambda m, x: m.var(x)), ("var-dim", lambda m, x: m.var(x, -1)),
        ("var-dim0", lambda m, x: m.var(x, 0, correction=0)), ("std", lambda m, x: m.std(x, -1)),
        ("var_mean", lambda m, x: m.var_mean(x, 0)), ("std_mean", lambda m, x: m.std_mean(x)),
        ("nansum", lambda m, x: m.nansum(x)), ("nansum-dim", lambda m, x: m.nansum(x, -1)),
        ("nanmean", lambda m, x: m.nanmean(x)), ("nanmean-dim", lambda m, x: m.nanmean(x, 0)),
        ("count_nonzero", lambda m, x: m.count_nonzero(x)),
        ("count_nonzero-dim", lambda m, x: m.count_nonzero(x, -1)),
        ("aminmax", lambda m, x: m.aminmax(x)), ("aminmax-dim", lambda m, x: m.aminmax(x, dim=0)),
        ("amax", lambda m, x: m.amax(x)), ("amin-dim", lambda m, x: m.amin(x, -1)),
        ("unique", lambda m, x: m.unique(x, return_inverse=True, return_counts=True)),
        ("unique_consecutive", lambda m, x: m.unique_consecutive(x, return_inverse=True,
                                                                 return_counts=True)),
        ("histc", lambda m, x: m.histc(x, 3)), ("histc-range", lambda m, x: m.histc(x, 2, 0, 1))]
] + [_case("bincount-empty", lambda m, x: m.bincount(x), np.zeros(0, dtype=np.int64)),
     _case("bincount-empty-minlength", lambda m, x: m.bincount(x, minlength=3),
           np.zeros(0, dtype=np.int64))]


@pytest.mark.parametrize("call,arrays,grad", EMPTY_CASES)
def test_empty_inputs_match_torch(torch, call, arrays, grad):
    _check(torch, call, arrays, grad)


# ---- conventions torch leaves open: the value matches, the index is one that holds it ----------
@pytest.mark.parametrize("name", ["kthvalue", "topk"])
def test_ties_pick_one_index_holding_the_value(torch, name):
    data = np.array([[1.0, 2.0, 2.0, 2.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    x = gpuad.tensor(data, requires_grad=True)
    values, indices = x.kthvalue(2, 1) if name == "kthvalue" else x.topk(2)
    theirs = (torch.tensor(data).kthvalue(2, 1) if name == "kthvalue"
              else torch.tensor(data).topk(2))
    np.testing.assert_array_equal(_numpy(values), theirs.values.numpy())
    np.testing.assert_array_equal(np.take_along_axis(data, _numpy(indices).reshape(2, -1), 1),
                                  _numpy(values).reshape(2, -1))
    values.sum().backward()
    grad, picked = _numpy(x.grad), _numpy(values).reshape(2, -1).shape[1]
    np.testing.assert_array_equal(grad.sum(1), [picked, picked])
    assert set(np.unique(grad)) <= {0.0, 1.0}  # each value's gradient goes to one index
