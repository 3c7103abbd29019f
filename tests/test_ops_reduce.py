"""Reductions beyond the op table: ties, indices, zeros, corrections, infinities, error messages.

Numbers are written out by hand (or derived in numpy) so each test states the convention it checks;
the conventions are PyTorch's.
"""
import math

import numpy as np
import pytest

import gpuad
from gpuad import backend


def _t(values, device="cpu", dtype=np.float64, requires_grad=True):
    return gpuad.tensor(np.asarray(values, dtype=dtype), device=device, requires_grad=requires_grad)


def _np(t):
    return backend.asnumpy(t.array)


def _grad(fn, x, weights=None):
    y = fn(x)
    (y if weights is None else y * weights).sum().backward()
    return _np(x.grad)


# ---- ties: amax/amin and max(x)/min(x) share the gradient evenly --------------------------------
def test_amax_splits_ties_evenly(device):
    x = _t([1.0, 3.0, 3.0, 2.0], device)
    np.testing.assert_array_equal(_grad(gpuad.amax, x), [0, 0.5, 0.5, 0])
    x = _t([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], device)
    np.testing.assert_allclose(_grad(lambda t: gpuad.amax(t, dim=1), x),
                               [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_full_max_and_min_split_ties_like_torch(device):
    x = _t([[4.0, -1.0], [4.0, -1.0]], device)
    np.testing.assert_array_equal(_grad(gpuad.max, x), [[0.5, 0], [0.5, 0]])
    x = _t([[4.0, -1.0], [4.0, -1.0]], device)
    np.testing.assert_array_equal(_grad(lambda t: t.min(), x), [[0, 0.5], [0, 0.5]])
    x = _t([5.0, 1.0, 1.0, 1.0], device)
    np.testing.assert_allclose(_grad(lambda t: gpuad.amin(t, 0, True), x), [0, 1 / 3, 1 / 3, 1 / 3])


# ---- max(x, dim) and min(x, dim): (values, indices), the gradient goes to the index --------------
def test_max_with_dim_returns_values_and_indices(device):
    x = _t([[1.0, 7.0, 7.0], [9.0, 2.0, 3.0]], device)
    out = gpuad.max(x, 1)
    assert isinstance(out, tuple) and out._fields == ("values", "indices")
    values, indices = out
    np.testing.assert_array_equal(_np(values), [7.0, 9.0])
    np.testing.assert_array_equal(_np(indices), [1, 0])  # the first of tied maxima, like torch
    assert indices.dtype == gpuad.int64 and not indices.requires_grad
    kept = x.max(dim=1, keepdim=True)
    assert kept.values.shape == (2, 1) and kept.indices.shape == (2, 1)
    assert x.max(axis=0, keepdims=True).indices.shape == (1, 3)
    (values * _t([10.0, 100.0], device, requires_grad=False)).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [[0, 10, 0], [100, 0, 0]])  # one index, not split


def test_min_with_dim_and_negative_dim(device):
    x = _t([[1.0, -7.0, -7.0], [9.0, 2.0, 3.0]], device)
    values, indices = gpuad.min(x, -1)
    np.testing.assert_array_equal(_np(values), [-7.0, 2.0])
    np.testing.assert_array_equal(_np(indices), [1, 1])
    values.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [[0, 1, 0], [0, 1, 0]])


def test_max_of_two_tensors_is_maximum(device):
    a, b = _t([1.0, 5.0, 2.0], device), _t([3.0, 5.0, 0.0], device)
    y = gpuad.max(a, b)
    np.testing.assert_array_equal(_np(y), [3.0, 5.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(_np(a.grad), [0, 0.5, 1])
    np.testing.assert_array_equal(_np(b.grad), [1, 0.5, 0])
    np.testing.assert_array_equal(_np(a.min(b)), [1.0, 5.0, 0.0])


def test_max_min_of_a_0d_tensor():
    x = _t(2.5)
    values, indices = x.max(0)
    assert values.shape == () and float(values) == 2.5 and int(indices) == 0
    values.backward()
    assert float(x.grad) == 1.0


def test_max_rejects_several_dims():
    with pytest.raises(TypeError, match=r"max: dim must be a single int.*amax"):
        gpuad.max(_t(np.ones((2, 3))), (0, 1))


# ---- prod with zeros --------------------------------------------------------------------------
def test_prod_gradient_with_one_zero(device):
    x = _t([2.0, 0.0, 3.0, 4.0], device)
    assert float(gpuad.prod(x)) == 0.0
    np.testing.assert_array_equal(_grad(gpuad.prod, x), [0, 24, 0, 0])  # only the zero's entry


def test_prod_gradient_with_two_zeros(device):
    x = _t([2.0, 0.0, 3.0, 0.0], device)
    np.testing.assert_array_equal(_grad(gpuad.prod, x), [0, 0, 0, 0])


def test_prod_gradient_per_slice(device):
    x = _t([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]], device)
    np.testing.assert_array_equal(_grad(lambda t: t.prod(1), x),
                                  [[0, 6, 0], [0, 0, 0], [6, 3, 2]])
    x = _t([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]], device)
    np.testing.assert_array_equal(_grad(lambda t: t.prod(0, keepdim=True), x),
                                  [[0, 0, 15], [2, 0, 9], [0, 0, 15]])


def test_prod_second_order_with_one_and_two_zeros():
    x = _t([[2.0, 0.0, 3.0, 1.5], [0.0, -2.0, 0.5, 0.0], [1.0, 2.0, -1.0, 0.5]])
    v = gpuad.tensor(np.array([0.7, -1.3, 2.0]))

    def first_order(t):
        return gpuad.grad((gpuad.prod(t, 1) * v).sum(), t, create_graph=True)[0]
    assert gpuad.gradcheck(first_order, [x])
    # d2 prod / dx_a dx_b for the two zeros of row 1 is the product of the rest, -2 * 0.5
    h = gpuad.grad(first_order(x)[1, 0], x)[0]
    assert float(h[1, 3]) == pytest.approx(-1.3 * -1.0)


def test_prod_with_zeros_stays_float32():
    x = _t([2.0, 0.0, 3.0], dtype=np.float32)
    gpuad.prod(x).backward()
    assert x.grad.dtype == gpuad.float32
    np.testing.assert_array_equal(_np(x.grad), [0, 6, 0])


# ---- var and std: correction, unbiased, ddof ---------------------------------------------------
DATA = np.array([[1.0, 2.0, 4.0, 7.0], [0.5, -1.0, 3.0, 2.0]])


def test_var_std_corrections(device):
    x = _t(DATA, device)
    cases = [(gpuad.var(x), np.var(DATA, ddof=1)),
             (gpuad.var(x, correction=0), np.var(DATA)),
             (gpuad.var(x, 1, correction=0), np.var(DATA, axis=1)),
             (gpuad.var(x, 1, True), np.var(DATA, axis=1, ddof=1)),  # torch: var(x, dim, unbiased)
             (gpuad.var(x, 1, False, True), np.var(DATA, axis=1, keepdims=True)),
             (gpuad.var(x, False), np.var(DATA)),  # torch: var(x, unbiased)
             (gpuad.var(x, dim=0, unbiased=False), np.var(DATA, axis=0)),
             (gpuad.var(x, axis=-1, ddof=2), np.var(DATA, axis=-1, ddof=2)),
             (x.var(dim=(0, 1), keepdim=True), np.var(DATA, keepdims=True, ddof=1)),
             (gpuad.std(x), np.std(DATA, ddof=1)),
             (gpuad.std(x, 0, correction=0), np.std(DATA, axis=0)),
             (x.std(1, unbiased=True, keepdim=True), np.std(DATA, axis=1, ddof=1, keepdims=True)),
             (gpuad.std(x, axis=1, ddof=0), np.std(DATA, axis=1))]
    for got, want in cases:
        assert got.shape == np.shape(want)
        np.testing.assert_allclose(_np(got), want, rtol=1e-12)


def test_var_gradient_and_std_of_a_constant(device):
    x = _t(DATA[0], device)
    mean = DATA[0].mean()
    np.testing.assert_allclose(_grad(gpuad.var, x), 2 * (DATA[0] - mean) / 3)
    x = _t([3.0, 3.0, 3.0], device)
    y = gpuad.std(x)
    assert float(y) == 0.0
    y.backward()
    np.testing.assert_array_equal(_np(x.grad), [0, 0, 0])  # torch gives 0 here, not NaN


def test_var_rejects_two_corrections():
    with pytest.raises(TypeError, match="var: pass only one of correction, unbiased and ddof"):
        gpuad.var(_t(DATA), 1, True, correction=0)
    with pytest.raises(TypeError, match="std: pass only one"):
        gpuad.std(_t(DATA), ddof=1, correction=1)


def test_var_float32_stays_float32():
    x = _t(DATA, dtype=np.float32)
    y = gpuad.std(x, 1)
    assert y.dtype == gpuad.float32
    y.sum().backward()
    assert x.grad.dtype == gpuad.float32


# ---- logsumexp: infinities and large values ------------------------------------------------------
def test_logsumexp_rows_of_minus_inf(device):
    inf = math.inf
    x = _t([[-inf, -inf, -inf], [0.0, -inf, 0.0], [1.0, 2.0, 3.0]], device)
    y = gpuad.logsumexp(x, 1)
    ref = [-inf, math.log(2.0), np.log(np.exp([1.0, 2.0, 3.0]).sum())]
    np.testing.assert_allclose(_np(y), ref)
    y.sum().backward()
    softmax = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(_np(x.grad), [[0, 0, 0], [0.5, 0, 0.5], softmax])  # no NaN
    assert float(gpuad.logsumexp(_t([inf, 1.0], device), 0)) == inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_large_values_do_not_overflow(device, dtype):
    x = _t([[1000.0, 1000.0], [-1000.0, -1000.0]], device, dtype=dtype)
    y = gpuad.logsumexp(x, dim=-1, keepdim=True)
    assert y.dtype == dtype and y.shape == (2, 1)
    np.testing.assert_allclose(_np(y), [[1000 + math.log(2)], [-1000 + math.log(2)]], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.full((2, 2), 0.5), rtol=1e-4)
    assert x.grad.dtype == dtype


# ---- norm ----------------------------------------------------------------------------------------
NORM_DATA = np.array([[3.0, -4.0, 0.0], [1.0, 2.0, -2.0]])


@pytest.mark.parametrize("p,ref", [("fro", lambda a: np.sqrt((a * a).sum())),
                                   (2, lambda a: np.sqrt((a * a).sum())),
                                   (1, lambda a: np.abs(a).sum()),
                                   (math.inf, lambda a: np.abs(a).max()),
                                   (-math.inf, lambda a: np.abs(a).min()),
                                   (0, lambda a: float((a != 0).sum())),
                                   (3, lambda a: (np.abs(a) ** 3).sum() ** (1 / 3)),
                                   (0.5, lambda a: (np.abs(a) ** 0.5).sum() ** 2)])
def test_norm_values_and_zero_gradient_at_zero(device, p, ref):
    x = _t(NORM_DATA, device)
    np.testing.assert_allclose(_np(gpuad.norm(x, p)), ref(NORM_DATA), rtol=1e-12)
    np.testing.assert_allclose(_np(x.norm(p, dim=1)), [ref(row) for row in NORM_DATA], rtol=1e-12)
    zeros = _t(np.zeros((2, 3)), device)
    y = gpuad.norm(zeros, p)
    assert float(y) == 0.0
    y.backward()
    np.testing.assert_array_equal(_np(zeros.grad), np.zeros((2, 3)))  # 0, not NaN, like torch


def test_norm_gradient_with_a_zero_row(device):
    x = _t([[0.0, 0.0], [3.0, 4.0]], device)
    np.testing.assert_allclose(_grad(lambda t: t.norm(dim=1), x), [[0, 0], [0.6, 0.8]])
    x = _t([[0.0, 2.0], [3.0, -4.0]], device)  # p < 1: a zero entry gets 0, not inf * 0
    np.testing.assert_allclose(_grad(lambda t: t.norm(0.5, 1), x),
                               [[0, 1], [(3 ** 0.5 + 2) / 3 ** 0.5, -(3 ** 0.5 + 2) / 2]])


def test_norm_rejects_matrix_norms():
    with pytest.raises(ValueError, match="norm: p='nuc' is not supported"):
        gpuad.norm(_t(NORM_DATA), "nuc")


def test_norm_dtype_argument():
    y = gpuad.norm(_t(NORM_DATA, dtype=np.float32), dtype=gpuad.float64)
    assert y.dtype == gpuad.float64


# ---- argmax / argmin -----------------------------------------------------------------------------
def test_argmax_argmin(device):
    data = np.array([[1.0, 9.0, 9.0], [8.0, -2.0, 8.0]])
    x = _t(data, device)
    assert int(gpuad.argmax(x)) == 1 and int(x.argmin()) == 4  # of the flattened tensor
    assert gpuad.argmax(x).dtype == gpuad.int64 and not gpuad.argmax(x).requires_grad
    np.testing.assert_array_equal(_np(gpuad.argmax(x, 1)), [1, 0])  # first of ties
    np.testing.assert_array_equal(_np(gpuad.argmin(x, dim=0, keepdim=True)), [[0, 1, 1]])
    assert gpuad.argmax(x, keepdim=True).shape == (1, 1)  # dim=None, keepdim: like torch 2.x
    assert _np(x.argmax(axis=-1, keepdims=True)).tolist() == [[1], [0]]
    assert gpuad.argmax(_t(3.0), 0).shape == ()


def test_any_all(device):
    x = gpuad.tensor(np.array([[0.0, 1.0], [0.0, 0.0]]), device=device)
    assert bool(x.any()) and not bool(gpuad.all(x))
    np.testing.assert_array_equal(_np(gpuad.any(x, 1)), [True, False])
    assert gpuad.all(x != 5, dim=(0, 1), keepdim=True).shape == (1, 1)
    assert gpuad.any(x, 0).dtype == gpuad.bool


# ---- sum, mean, cumsum details -------------------------------------------------------------------
def test_empty_dim_tuple_reduces_everything_like_torch(device):
    x = _t(np.arange(6.0).reshape(2, 3), device)
    assert float(gpuad.sum(x, dim=())) == 15.0 and gpuad.amax(x, ()).shape == ()
    assert gpuad.mean(x, [], keepdim=True).shape == (1, 1)


def test_reductions_of_a_0d_tensor(device):
    x = _t(2.0, device)
    for y in (x.sum(0), x.sum(-1, True), gpuad.mean(x, 0), x.prod(0), x.amax(0), x.logsumexp(0),
              gpuad.cumsum(x, 0), x.norm(dim=0)):
        assert y.shape == () and float(y) == 2.0


def test_sum_positional_and_dtype(device):
    x = _t(np.arange(24.0).reshape(2, 3, 4), device)
    assert x.sum(1, True).shape == (2, 1, 4)
    assert gpuad.sum(x, (0, 2)).shape == (3,)
    b = gpuad.tensor(np.array([True, True, False]), device=device)
    assert b.sum().dtype == gpuad.int64 and int(b.sum()) == 2
    assert gpuad.sum(x, dtype=gpuad.float32).dtype == gpuad.float32
    assert gpuad.mean(x, 1, dtype=gpuad.float32).dtype == gpuad.float32


def test_cumsum_gradient_is_a_reversed_cumsum(device):
    x = _t([1.0, 2.0, 3.0, 4.0], device)
    y = gpuad.cumsum(x, 0)
    np.testing.assert_array_equal(_np(y), [1, 3, 6, 10])
    (y * _t([1.0, 10.0, 100.0, 1000.0], device, requires_grad=False)).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [1111, 1110, 1100, 1000])


def test_sum_to_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"sum_to: shape \(3,\) does not broadcast to \(2, 4\)"):
        gpuad.ops.sum_to(_t(np.ones((2, 4))), shape=(3,))


# ---- error messages for bad dims -----------------------------------------------------------------
OPS_WITH_DIM = [("sum", gpuad.sum), ("mean", gpuad.mean), ("prod", gpuad.prod),
                ("amax", gpuad.amax), ("amin", gpuad.amin), ("max", gpuad.max), ("min", gpuad.min),
                ("var", gpuad.var), ("std", gpuad.std), ("logsumexp", gpuad.logsumexp),
                ("norm", None), ("argmax", gpuad.argmax), ("argmin", gpuad.argmin),
                ("any", gpuad.any), ("all", gpuad.all), ("cumsum", gpuad.cumsum)]


@pytest.mark.parametrize("name,op", OPS_WITH_DIM, ids=[n for n, _ in OPS_WITH_DIM])
def test_out_of_range_dim_names_the_op_dim_and_shape(name, op):
    x = _t(np.ones((2, 3, 4)))
    call = (lambda d: gpuad.norm(x, 2, d)) if op is None else (lambda d: op(x, d))
    for bad in (3, -4):
        with pytest.raises(IndexError) as info:
            call(bad)
        assert str(info.value) == (f"{name}: dim {bad} is out of range for a tensor of shape "
                                   f"(2, 3, 4) (expected a dim in [-3, 2])")


NEW_OPS_WITH_DIM = {
    "nansum": gpuad.nansum, "nanmean": gpuad.nanmean, "count_nonzero": gpuad.count_nonzero,
    "var_mean": gpuad.var_mean, "std_mean": gpuad.std_mean,
    "aminmax": lambda x, d: gpuad.aminmax(x, dim=d), "cumprod": gpuad.cumprod,
    "cummax": gpuad.cummax, "cummin": gpuad.cummin, "logcumsumexp": gpuad.logcumsumexp,
    "sort": gpuad.sort, "argsort": gpuad.argsort, "topk": lambda x, d: gpuad.topk(x, 1, d),
    "kthvalue": lambda x, d: gpuad.kthvalue(x, 1, d), "median": gpuad.median,
    "nanmedian": gpuad.nanmedian, "quantile": lambda x, d: gpuad.quantile(x, 0.5, d),
    "nanquantile": lambda x, d: gpuad.nanquantile(x, 0.5, d),
    "unique": lambda x, d: gpuad.unique(x, dim=d),
    "unique_consecutive": lambda x, d: gpuad.unique_consecutive(x, dim=d)}


@pytest.mark.parametrize("name", sorted(NEW_OPS_WITH_DIM))
def test_out_of_range_dim_of_the_breadth_ops(name):
    x = _t(np.ones((2, 3, 4)))
    with pytest.raises(IndexError) as info:
        NEW_OPS_WITH_DIM[name](x, -4)
    assert str(info.value).startswith(f"{name}: dim -4 is out of range for a tensor of shape "
                                      f"(2, 3, 4)")


def test_dim_errors_for_repeated_and_non_integer_dims():
    x = _t(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sum: dim=\(1, -1\) names a dim more than once "
                                         r"\(tensor of shape \(2, 3\)\)"):
        gpuad.sum(x, (1, -1))
    with pytest.raises(TypeError, match=r"amax: dim must be an int or a tuple of ints, got 1.5"):
        gpuad.amax(x, 1.5)
    with pytest.raises(IndexError, match=r"sum: dim 1 is out of range for a tensor of shape \(\) "
                                         r"\(expected a dim in \[-1, 0\]\)"):
        gpuad.sum(_t(1.0), 1)


# ---- var with non-positive degrees of freedom (torch's inf / NaN and its warning) ---------------
def test_var_warns_and_divides_by_max_zero_like_torch(device):
    x = _t([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]], device)
    with pytest.warns(UserWarning, match=r"var: degrees of freedom is <= 0 \(correction=3"):
        y = gpuad.var(x, 1, correction=3)
    assert np.isposinf(_np(y)[0]) and np.isnan(_np(y)[1])  # 0 / 0 for the constant row
    with pytest.warns(UserWarning, match="degrees of freedom"):
        empty = gpuad.std(_t(np.zeros((2, 0)), device), dim=1)
    assert empty.shape == (2,) and np.isnan(_np(empty)).all()


def test_var_of_integers_raises_like_torch():
    with pytest.raises(RuntimeError, match=r"var: expected a floating point .* got int64.*float"):
        gpuad.var(gpuad.tensor([1, 2, 3]))
    with pytest.raises(RuntimeError, match=r"mean: .* int64, not floating point.*dtype="):
        gpuad.tensor([1, 2, 3]).mean()
    assert gpuad.tensor([1, 2]).mean(dtype=gpuad.float32).dtype == gpuad.float32


# ---- order statistics: no host sync; data-dependent sizes do sync -------------------------------
def test_sorting_scans_and_quantiles_never_wait_for_the_device():
    from gpuad.testing.strict import forbid_host_sync
    x = gpuad.tensor(np.arange(12.0).reshape(3, 4)[::-1].copy(), device="strict",
                     requires_grad=True)
    q = gpuad.tensor([0.25, 0.5], dtype=gpuad.float64, device="strict")
    with forbid_host_sync():
        outs = [x.sort(1).values, x.topk(2).values, x.kthvalue(2, 0).values, x.median(),
                x.median(1).values, x.nanmedian(0).values, x.quantile(q, 1), x.nanquantile(0.3),
                x.cumprod(1), x.cummax(0).values, x.cummin(1).values, x.logcumsumexp(1),
                x.nansum(), x.nanmean(0), x.aminmax(dim=1).max, x.argsort(0).double(),
                x.count_nonzero().double(), gpuad.histc(x, 4, 0, 12)]
        sum(o.sum() for o in outs).backward()


@pytest.mark.parametrize("call", [lambda x: x.unique(), lambda x: x.unique_consecutive(),
                                  lambda x: x.long().flatten().bincount(), lambda x: x.histc(3)],
                         ids=["unique", "unique_consecutive", "bincount", "histc_default_range"])
def test_data_dependent_sizes_are_host_syncs(call):
    from gpuad.testing.strict import forbid_host_sync
    x = gpuad.tensor(np.array([[1.0, 1.0, 2.0], [0.0, 2.0, 2.0]]), device="strict")
    with forbid_host_sync(), pytest.raises(RuntimeError, match="synchronise the GPU"):
        call(x)
    call(x)  # fine outside


# ---- argument errors name the op and the fix -----------------------------------------------------
def test_order_statistic_argument_errors():
    x = _t(np.arange(6.0).reshape(2, 3))
    with pytest.raises(RuntimeError, match=r"topk: k=4 is out of range for dim 1 of size 3"):
        x.topk(4)
    with pytest.raises(RuntimeError, match=r"kthvalue: k=0 is out of range"):
        x.kthvalue(0)
    with pytest.raises(IndexError, match=r"median: expected reduction dim 1 to have non-zero"):
        gpuad.median(_t(np.zeros((2, 0))), 1)
    with pytest.raises(RuntimeError, match=r"quantile: q must be a number in \[0, 1\]"):
        x.quantile(1.5)
    with pytest.raises(RuntimeError, match=r"quantile: q values must be in the range \[0, 1\]"):
        x.quantile(gpuad.tensor([0.5, -0.1], dtype=gpuad.float64))
    with pytest.raises(RuntimeError, match=r"quantile: q \(float32\) must have the input's"):
        x.quantile(gpuad.tensor([0.5]))
    with pytest.raises(RuntimeError, match=r"nanquantile: interpolation must be one of linear"):
        x.nanquantile(0.5, interpolation="cubic")
    with pytest.raises(RuntimeError, match=r"quantile: the input must be a float tensor"):
        gpuad.quantile(gpuad.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match=r"logcumsumexp: expected a floating point"):
        gpuad.logcumsumexp(gpuad.tensor([1, 2]), 0)
    with pytest.raises(RuntimeError, match=r"bincount: only supports 1-d non-negative integral"):
        gpuad.bincount(gpuad.tensor([[1, 2]]))
    with pytest.raises(RuntimeError, match=r"histc: max \(0.0\) must be larger than min"):
        gpuad.histc(x, 3, 1, 0)
    with pytest.raises(TypeError, match=r"aminmax: dim must be an int or None"):
        x.aminmax(dim=(0, 1))
    with pytest.raises(RuntimeError, match=r"amax: an empty input .* needs a reduction dim"):
        gpuad.amax(_t(np.zeros((0, 2))))


def test_results_are_torch_named_tuples():
    x = _t(np.array([[3.0, 1.0, 2.0]]))
    for name, fields in [("sort", ("values", "indices")), ("topk", ("values", "indices")),
                         ("kthvalue", ("values", "indices")), ("median", ("values", "indices")),
                         ("nanmedian", ("values", "indices")), ("cummax", ("values", "indices")),
                         ("cummin", ("values", "indices")), ("aminmax", ("min", "max"))]:
        args = {"sort": (), "topk": (2,), "kthvalue": (1,), "aminmax": ()}.get(name, (1,))
        out = getattr(x, name)(*args)
        assert type(out).__name__ == name and out._fields == fields
    assert type(gpuad.var_mean(x)) is tuple and type(x.unique(return_counts=True)) is tuple
