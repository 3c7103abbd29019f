"""gpuad.fused: every fused function's reference against its plain formula (CPU), the dispatch to
the reference for numpy and strict arrays, and on a GPU every CuPy kernel against its reference on
the same inputs, plus training steps on cuda against the same steps on the cpu."""
import math
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import backend
from gpuad.backend import kernels
from gpuad.testing import strict

_erf = np.vectorize(math.erf, otypes=[float])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _numeric_derivative(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


# ---- cases: one input maker per registry entry, each with its variants -------------------------
# A maker takes (rng, shape, dtype, variant) and returns (args, kwargs) as numpy arrays; runs copy
# them onto the device under test. Shapes are for elementwise cases; the row cases map them to
# (N, C) logits.
def _x(rng, shape, dtype, scale=3.0):
    x = rng.normal(0, scale, shape)
    if x.size > 2:
        x.flat[0], x.flat[-1] = 40.0, -40.0  # far tails: stability of exp/sigmoid
    return x.astype(dtype)


def _g(rng, shape, dtype):
    return rng.normal(0, 1, shape).astype(dtype)


def _unary(rng, shape, dtype, variant):
    return (_x(rng, shape, dtype),), dict(variant)


def _from_output(forward):
    def make(rng, shape, dtype, variant):
        return (_g(rng, shape, dtype), forward(_x(rng, shape, dtype)).astype(dtype)), {}
    return make


def _from_input(rng, shape, dtype, variant):
    return (_g(rng, shape, dtype), _x(rng, shape, dtype)), dict(variant)


def _rows(shape):
    size = math.prod(shape)
    return (size, 1) if len(shape) <= 1 else (shape[0], math.prod(shape[1:]))


def _softmax_rows(rng, shape, dtype, variant):
    n, c = _rows(shape)
    x = rng.normal(0, 4, (n, c)).astype(dtype)
    target = rng.integers(0, c, n)
    w = rng.uniform(0.5, 2, n).astype(dtype)
    w[::3] = 0  # ignored targets have weight 0
    return (x, target, w), {}


_SGD_VARIANTS = [
    {"momentum": 0.0},
    {"momentum": 0.0, "weight_decay": 0.05, "maximize": True},
    {"momentum": 0.9},
    {"momentum": 0.9, "first": True},
    {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    {"momentum": 0.5, "maximize": True},
    {"momentum": 0.5, "maximize": True, "first": True, "weight_decay": 0.1},
]
_ADAM_VARIANTS = [
    {},
    {"weight_decay": 0.1, "amsgrad": True},
    {"weight_decay": 0.1, "decoupled": True},
    {"maximize": True, "amsgrad": True, "betas": (0.3, 0.5)},
]


def _sgd(rng, shape, dtype, variant):
    v = {"lr": 0.1, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
         "maximize": False, "first": False, **variant}
    buf = _g(rng, shape, dtype) if v["momentum"] else None
    return (_g(rng, shape, dtype), _g(rng, shape, dtype), buf), v


def _adam(rng, shape, dtype, variant):
    v = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "decoupled": False,
         "maximize": False, "amsgrad": False, "step": 3, **variant}
    (beta1, beta2), step = v.pop("betas"), v.pop("step")
    kwargs = {"lr": v["lr"], "beta1": beta1, "beta2": beta2, "eps": v["eps"],
              "weight_decay": v["weight_decay"], "decoupled": v["decoupled"],
              "maximize": v["maximize"], "step_size": v["lr"] / (1 - beta1 ** step),
              "bias_correction2_sqrt": math.sqrt(1 - beta2 ** step)}
    m = _g(rng, shape, dtype) * 0.1
    v2 = (_g(rng, shape, dtype) ** 2 * 0.01).astype(dtype)
    vmax = (v2 * rng.uniform(0.5, 1.5, shape)).astype(dtype) if v["amsgrad"] else None
    return (_g(rng, shape, dtype), _g(rng, shape, dtype), m, v2, vmax), kwargs


GELU = [{"approximate": "none"}, {"approximate": "tanh"}]
CASES = {  # name: (maker, variants, whether results involve a row reduction)
    "sigmoid": (_unary, [{}], False),
    "relu_backward": (_from_output(lambda x: np.maximum(x, 0)), [{}], False),
    "tanh_backward": (_from_output(np.tanh), [{}], False),
    "sigmoid_backward": (_from_output(_sigmoid), [{}], False),
    "silu": (_unary, [{}], False),
    "silu_backward": (_from_input, [{}], False),
    "gelu": (_unary, GELU, False),
    "gelu_backward": (_from_input, GELU, False),
    "softmax_nll": (_softmax_rows, [{}], True),
    "softmax_nll_grad": (_softmax_rows, [{}], True),
    "sgd_step": (_sgd, _SGD_VARIANTS, False),
    "adam_step": (_adam, _ADAM_VARIANTS, False),
}
SHAPES = [(), (1,), (7,), (3, 5), (33, 257), (2, 3, 4)]
PARAMS = [(name, i) for name, (_, variants, _) in CASES.items() for i in range(len(variants))]


def _ids(param):
    name, i = param
    return f"{name}-{i}"


def _make(name, i, shape, dtype, seed=0):
    maker, variants, _ = CASES[name]
    return maker(np.random.default_rng(seed), shape, np.dtype(dtype), variants[i])


def _to(args, move):
    """The array arguments moved (numpy makes 0-d results scalars: those too)."""
    return tuple(move(np.asarray(a)) if isinstance(a, (np.ndarray, np.generic)) else a
                 for a in args)


def _run(fn, args, kwargs):
    """Call fn on copies of args; return every array it produced or updated (return value first,
    then each array argument, so in-place updates and untouched inputs are both compared)."""
    args = tuple(a.copy() if hasattr(a, "copy") and not isinstance(a, (int, float)) else a
                 for a in args)
    out = fn(*args, **kwargs)
    return [out] + [a for a in args if a is not None]


def _host(values):
    return [None if v is None else backend.asnumpy(v) for v in values]


def test_every_registry_entry_has_a_case():
    # matmul's kernel runs only while a CUDA graph records: tests/test_cuda_graph.py covers it
    # (a fused function without a kernel runs its reference everywhere: nothing to compare)
    with_kernels = {name for name, (_, kernel) in kernels.REGISTRY.items() if kernel is not None}
    assert with_kernels - {"matmul"} == set(CASES), (
        "add cases to tests/test_fused.py for new kernels")


# ---- CPU: the references are the formulas ------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_relu_backward_reference_is_torch_threshold_backward_bit_for_bit(dtype):
    # where(y <= 0, 0, g): +0 where it stops (also for a negative or NaN g), g where y > 0 or NaN
    y = np.array([0.0, -0.0, 1.0, np.nan, np.inf, 2.5, 0.0, 0.0, 3.0], dtype)
    g = np.array([-1.0, np.nan, np.inf, -3.0, np.nan, -0.0, -np.inf, np.nan, -0.0], dtype)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    out = kernels.DISPATCHERS["relu_backward"](g, y)
    assert out.dtype == dtype and out.shape == g.shape
    np.testing.assert_array_equal(out.view(bits), np.where(y <= 0, 0, g).astype(dtype).view(bits))
    # a transposed layout (a convolution's output) is kept, so both passes run in memory order
    y2, g2 = np.maximum(np.arange(-6.0, 6.0).reshape(3, 4), 0).astype(dtype).T, g[:4, None] + y
    out2 = kernels.DISPATCHERS["relu_backward"](np.asfortranarray(g2[:, :3]), y2)
    assert out2.flags.f_contiguous and not out2.flags.c_contiguous
    np.testing.assert_array_equal(out2.view(bits), np.where(y2 <= 0, 0, g2[:, :3]).view(bits))
    torch = pytest.importorskip("torch")
    expected = torch.ops.aten.threshold_backward(torch.from_numpy(g), torch.from_numpy(y), 0)
    np.testing.assert_array_equal(out.view(bits), expected.numpy().view(bits))


@pytest.mark.parametrize("shape", [(7,), (3, 5)])
def test_activation_references_match_their_formulas(shape):
    rng = np.random.default_rng(1)
    x, g = _x(rng, shape, np.float64), _g(rng, shape, np.float64)
    s = _sigmoid(x)
    ref = kernels.DISPATCHERS
    np.testing.assert_allclose(ref["sigmoid"](x), s, rtol=1e-14)
    np.testing.assert_array_equal(ref["relu_backward"](g, np.maximum(x, 0)), np.where(x > 0, g, 0))
    np.testing.assert_allclose(ref["tanh_backward"](g, np.tanh(x)), g / np.cosh(x) ** 2,
                               rtol=1e-12, atol=1e-15)  # from the output: tanh(40) == 1
    np.testing.assert_allclose(ref["sigmoid_backward"](g, s), g * np.exp(-x) * s * s, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(ref["silu"](x), x * s, rtol=1e-14)
    for approximate in ("none", "tanh"):
        np.testing.assert_allclose(ref["gelu"](x, approximate=approximate), _gelu(x, approximate),
                                   rtol=1e-13, atol=1e-300)
    small = x / 10  # finite differences, away from the flat tails
    np.testing.assert_allclose(ref["silu_backward"](g, small),
                               g * _numeric_derivative(lambda a: a * _sigmoid(a), small),
                               rtol=1e-7, atol=1e-9)
    for approximate in ("none", "tanh"):
        np.testing.assert_allclose(
            ref["gelu_backward"](g, small, approximate=approximate),
            g * _numeric_derivative(lambda a, form=approximate: _gelu(a, form), small), rtol=1e-7,
            atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (9,), (64, 48)])
def test_tanh_gelu_references_in_place_keep_the_formulas_bits(dtype, shape):
    """The tanh form runs its formula's steps in place (fewer fresh arrays): every step, and so
    every bit, must be the plain expression's, NaN and infinities included, 0-d inputs too."""
    k, c = math.sqrt(2 / math.pi), 0.044715
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if x.size >= 9:
        x.reshape(-1)[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 300.0]
    with np.errstate(all="ignore"):
        t = np.tanh(k * (x + c * x * x * x))
        forward = 0.5 * x * (1 + t)
        backward = g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (k * (1 + 3 * c * x * x)))
        got = kernels.DISPATCHERS["gelu"](x, approximate="tanh")
        got_backward = kernels.DISPATCHERS["gelu_backward"](g, x, approximate="tanh")
    for mine, plain in ((got, forward), (got_backward, backward)):
        assert np.asarray(mine).dtype == dtype and np.shape(mine) == shape
        assert np.asarray(mine).tobytes() == np.asarray(plain).tobytes()
    assert not np.shares_memory(got, x) and not np.shares_memory(got_backward, g)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (9,), (128, 80)])
def test_sigmoid_and_silu_references_in_place_keep_the_formulas_bits(dtype, shape):
    """sigmoid, silu and silu's backward run their formulas' steps in place and select with
    backend.where: the numbers must be the plain expressions' with numpy's where, bit for bit."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 8).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if x.size >= 9:
        x.reshape(-1)[:7] = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 100.0]
    with np.errstate(all="ignore"):
        z = np.exp(-np.abs(x))
        s = np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(dtype, copy=False)
        plain = {"sigmoid": s, "silu": x * s, "silu_backward": g * (s * (1 + x * (1 - s)))}
        ref = kernels.DISPATCHERS
        mine = {"sigmoid": ref["sigmoid"](x), "silu": ref["silu"](x),
                "silu_backward": ref["silu_backward"](g, x)}
    for name, want in plain.items():
        got = mine[name]
        assert np.asarray(got).dtype == dtype and np.shape(got) == shape, name
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), name


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.01, 0.2, 1.0, 1e-7, 0.0, -0.5, 3.0])
def test_leaky_relu_reference_is_where_bit_for_bit(dtype, slope):
    # slopes in (0, 1] take the larger of x and x * slope: the same bits as where(x > 0, x,
    # x * slope), NaN of either sign, both zeros and the infinities included; others take where
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(50_000) * 5).astype(dtype)
    x[:8] = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30, -1e-30]
    with np.errstate(all="ignore"):
        want = np.where(x > 0, x, x * slope)
        got = kernels.DISPATCHERS["leaky_relu"](x, negative_slope=slope)
        zero_d = kernels.DISPATCHERS["leaky_relu"](np.array(-2.0, dtype), negative_slope=slope)
    assert got.dtype == dtype and got.tobytes() == want.tobytes()
    assert np.shape(zero_d) == () and zero_d == np.array(-2.0, dtype) * slope


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_relu_backward_reference_is_where_bit_for_bit(dtype):
    """It masks g's bits instead of calling numpy's where (slow on irregular masks): NaN,
    infinities and signed zeros in g and y must come out as where's, in any memory order."""
    rng = np.random.default_rng(3)
    y = np.maximum(rng.standard_normal((6, 4, 8)), 0).astype(dtype)
    g = rng.standard_normal((6, 4, 8)).astype(dtype)
    y[0, 0, :4] = [np.nan, 0.0, -0.0, np.inf]
    g[:, :, :6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -1.0]
    for a, b in ((g, y), (g.transpose(2, 0, 1), y.transpose(2, 0, 1))):  # batch-last views too
        out = kernels.DISPATCHERS["relu_backward"](a, b)
        assert out.dtype == dtype and out.shape == a.shape
        assert out.tobytes() == np.where(b <= 0, 0, a).astype(dtype).tobytes()


def test_gelu_refuses_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        kernels.DISPATCHERS["gelu"](np.ones(2), approximate="erf")


# (N, C) and (N, C, d1), with few classes (computed class-major) and many (row by row); N = 1
# makes the class-major view contiguous already, where only an explicit copy keeps x intact
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2), (1, 5), (4, 70), (3, 70, 2), (1, 70)])
def test_softmax_nll_references_match_log_softmax_and_one_hot(shape):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3, shape)
    x_before = x.copy()
    classes = shape[1]
    target = rng.integers(0, classes, (shape[0],) + shape[2:])
    w = rng.uniform(0, 2, target.shape)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    one_hot = np.moveaxis(np.eye(classes)[target], -1, 1)
    picked = (logp * one_hot).sum(axis=1)
    np.testing.assert_allclose(kernels.DISPATCHERS["softmax_nll"](x, target, w), -picked * w,
                               rtol=1e-13)
    np.testing.assert_allclose(kernels.DISPATCHERS["softmax_nll_grad"](x, target, w),
                               (np.exp(logp) - one_hot) * np.expand_dims(w, 1), rtol=1e-12,
                               atol=1e-15)
    assert np.array_equal(x, x_before)  # the logits are an input: never written


def _sgd_formula(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    d = (-g if maximize else g) + weight_decay * p
    if momentum:
        buf = d.copy() if first else momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


@pytest.mark.parametrize("variant", range(len(_SGD_VARIANTS)))
def test_sgd_reference_matches_torch_update_rule(variant):
    (p, g, buf), kwargs = _make("sgd_step", variant, (3, 5), np.float64)
    want_p, want_buf = _sgd_formula(p, g, buf, **kwargs)
    kernels.DISPATCHERS["sgd_step"](p, g, buf, **kwargs)
    np.testing.assert_allclose(p, want_p, rtol=1e-14)
    if buf is not None:
        np.testing.assert_allclose(buf, want_buf, rtol=1e-14)


@pytest.mark.parametrize("variant", range(len(_ADAM_VARIANTS)))
def test_adam_reference_matches_torch_update_rule(variant):
    (p, g, m, v, vmax), k = _make("adam_step", variant, (3, 5), np.float64)
    g_used = -g if k["maximize"] else g
    p_want = p * (1 - k["lr"] * k["weight_decay"]) if k["decoupled"] else p
    if not k["decoupled"]:
        g_used = g_used + k["weight_decay"] * p
    m_want = k["beta1"] * m + (1 - k["beta1"]) * g_used
    v_want = k["beta2"] * v + (1 - k["beta2"]) * g_used ** 2
    vmax_want = None if vmax is None else np.maximum(vmax, v_want)
    v_used = v_want if vmax is None else vmax_want
    p_want = p_want - k["step_size"] * m_want / (np.sqrt(v_used) / k["bias_correction2_sqrt"]
                                                 + k["eps"])
    kernels.DISPATCHERS["adam_step"](p, g, m, v, vmax, **k)
    for got, want in ((p, p_want), (m, m_want), (v, v_want), (vmax, vmax_want)):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-13)


ELU = [{"alpha": 1.0, "scale": 1.0, "input_scale": 1.0},
       {"alpha": 1.6732632423543772, "scale": 1.0507009873554805, "input_scale": 1.0},  # selu
       {"alpha": 0.5, "scale": 1.0, "input_scale": 2.0}]  # celu
LEAKY = [{"negative_slope": 0.01}, {"negative_slope": 2.0}]  # the max and the where forms
BLOCKED_CASES = {**CASES,  # and the blocked fused functions without a CUDA kernel
                 "elu": (_unary, ELU, False), "elu_backward": (_from_input, ELU, False),
                 "leaky_relu": (_unary, LEAKY, False),
                 "leaky_relu_backward": (_from_input, LEAKY, False)}
_BLOCKED_PARAMS = [(name, i) for name in sorted(kernels.BLOCKED)
                   for i in range(len(BLOCKED_CASES[name][1]))]


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("param", _BLOCKED_PARAMS, ids=_ids)
def test_blocked_functions_run_block_by_block_with_the_same_bits(param, dtype, monkeypatch):
    """Over big numpy arrays a blocked fused function (an activation, its backward, an optimizer
    update) runs block by block (kernels.run_blocked), which must give every element the bits of
    one call over the whole arrays, the last, shorter block included."""
    name, i = param
    reference = kernels.REGISTRY[name][0]
    monkeypatch.setattr(kernels, "BLOCK_BYTES", 64 * np.dtype(dtype).itemsize)  # 64 entries
    maker, variants, _ = BLOCKED_CASES[name]  # (7, 43): 301 entries, four whole blocks and 45
    args, kwargs = maker(np.random.default_rng(0), (7, 43), np.dtype(dtype), variants[i])
    whole = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    want_result = reference(*whole, **kwargs)
    calls = []
    monkeypatch.setitem(kernels.REGISTRY, name, (
        lambda *a, **k: calls.append(a[0].shape) or reference(*a, **k), None))
    result = kernels.DISPATCHERS[name](*args, **kwargs)
    assert calls == [(64,)] * 4 + [(45,)]
    for got, want in zip((result, *args), (want_result, *whole)):  # the result, updated inputs
        assert type(got) is type(want)
        if isinstance(want, np.ndarray):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(_bits(got), _bits(want))
    calls.clear()  # a transposed parameter's flat view would be a copy: one call over it all
    args, kwargs = maker(np.random.default_rng(0), (43, 7), np.dtype(dtype), variants[i])
    args = [a.T if isinstance(a, np.ndarray) else a for a in args]
    whole = [a.copy(order="F") if isinstance(a, np.ndarray) else a for a in args]
    want_result = reference(*whole, **kwargs)
    result = kernels.implementation(name, args)(*args, **kwargs)  # what a compiled replay binds
    assert calls == [(7, 43)]
    for got, want in zip((result, *args), (want_result, *whole)):
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(_bits(got), _bits(want))


def test_only_elementwise_functions_may_be_blocked():
    with pytest.raises(ValueError, match="only an elementwise function runs block by block"):
        kernels.fused("not_elementwise", blocked=True)
    assert kernels.BLOCKED <= kernels.ELEMENTWISE and "not_elementwise" not in kernels.REGISTRY
    assert {"sgd_step", "adam_step", "gelu", "gelu_backward"} <= kernels.BLOCKED
    assert "relu_backward" not in kernels.BLOCKED  # two passes: blocks would cost it


def test_blocked_results_are_put_together_in_the_arrays_shape(monkeypatch):
    monkeypatch.setattr(kernels, "BLOCK_BYTES", 64 * 8)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 31)), rng.normal(size=(5, 31))
    seen = []

    def pair(x, y, *, scale):
        seen.append(x.shape)
        return x + scale * y, x * y

    total, product = kernels.run_blocked(pair, (a, b), {"scale": 3.0})
    assert seen == [(64,), (64,), (27,)]
    np.testing.assert_array_equal(total, a + 3.0 * b)
    np.testing.assert_array_equal(product, a * b)
    single = kernels.run_blocked(lambda x, y, *, scale: x - y * scale, (a, b), {"scale": 2.0})
    np.testing.assert_array_equal(single, a - b * 2.0)


@pytest.mark.parametrize("shape", [(3, 5), ()], ids=str)
@pytest.mark.parametrize("backend_name", ["cpu", "strict"])
@pytest.mark.parametrize("param", PARAMS, ids=_ids)
def test_numpy_and_strict_arrays_take_the_reference_path(param, backend_name, shape, monkeypatch):
    name, i = param
    reference, _ = kernels.REGISTRY[name]

    def kernel(*args, **kwargs):
        raise AssertionError(f"fused.{name} ran its CuPy kernel on {backend_name} arrays")

    monkeypatch.setitem(kernels.REGISTRY, name, (reference, kernel))
    args, kwargs = _make(name, i, shape, np.float32)
    move = (lambda a: backend.to_device(a, "strict")) if backend_name == "strict" else np.copy
    sync_guard = getattr(strict, "forbid_host_sync", None)
    if backend_name == "strict" and sync_guard is not None:
        with sync_guard():  # the references never read a device value either
            got = _run(kernels.DISPATCHERS[name], _to(args, move), kwargs)
    else:
        got = _run(kernels.DISPATCHERS[name], _to(args, move), kwargs)
    want = _run(reference, _to(args, np.copy), kwargs)
    for a, b in zip(_host(got), _host(want)):
        np.testing.assert_array_equal(a, b)


RULES = [(gpuad.relu, "relu_backward"), (gpuad.tanh, "tanh_backward"),
         (gpuad.sigmoid, "sigmoid_backward"), (gpuad.silu, "silu_backward"),
         (gpuad.gelu, "gelu_backward"), (lambda t: gpuad.gelu(t, "tanh"), "gelu_backward")]


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("op,name", RULES, ids=[name for _, name in RULES])
def test_a_plain_backward_runs_the_fused_rule_and_create_graph_does_not(op, name, device,
                                                                         monkeypatch):
    reference, kernel = kernels.REGISTRY[name]
    calls = []
    monkeypatch.setitem(kernels.REGISTRY, name,
                        (lambda *a, **k: calls.append(1) or reference(*a, **k), kernel))
    x = gpuad.tensor([[-1.5, 0.5, 2.0], [0.3, -0.1, 1.0]], device=device, requires_grad=True)
    (op(x) * x).sum().backward()  # an upstream gradient that itself depends on x
    assert calls == [1], f"a plain backward through {name[:-9]} did not use fused.{name}"
    want = backend.asnumpy(x.grad.array).copy()
    (gx,) = gpuad.grad((op(x) * x).sum(), x, create_graph=True)
    assert calls == [1] and gx.requires_grad, "create_graph must use the differentiable rule"
    np.testing.assert_allclose(backend.asnumpy(gx.detach().array), want, rtol=1e-6)


def test_rules_use_the_composite_under_create_graph():
    """A plain backward runs the fused rule; create_graph keeps it differentiable (second
    derivative of each activation against the formula's)."""
    x = gpuad.tensor([-1.3, -0.2, 0.4, 1.1], dtype=gpuad.float64, requires_grad=True)
    xs = x.detach().numpy()
    for op, d2 in [(gpuad.tanh, lambda a: -2 * np.tanh(a) / np.cosh(a) ** 2),
                   (gpuad.sigmoid,
                    lambda a: _sigmoid(a) * (1 - _sigmoid(a)) * (1 - 2 * _sigmoid(a))),
                   (gpuad.silu, lambda a: _numeric_derivative(
                       lambda b: _numeric_derivative(lambda c: c * _sigmoid(c), b, 1e-4), a, 1e-4)),
                   (gpuad.gelu, lambda a: _numeric_derivative(
                       lambda b: _numeric_derivative(_gelu, b, 1e-4), a, 1e-4))]:
        (gx,) = gpuad.grad(op(x).sum(), x, create_graph=True)
        (gxx,) = gpuad.grad(gx.sum(), x)
        np.testing.assert_allclose(gxx.numpy(), d2(xs), rtol=1e-5, atol=1e-8, err_msg=op.__name__)


# ---- GPU: every kernel against its reference, on the same device arrays -----------------------
def _cupy():
    return backend.cupy


def _compare(label, got, want, dtype, rows):
    """Kernel outputs against reference outputs, with a report naming the worst element."""
    eps = np.finfo(dtype).eps
    # elementwise kernels repeat the reference's operations in the same order (--fmad=false, the
    # same CUDA math functions), so a few ulps; row kernels sum in another order
    ulps = (64 if dtype == np.float32 else 256) if rows else 4
    for k, (a, b) in enumerate(zip(_host(got), _host(want))):
        where = "return value" if k == 0 else f"array argument {k - 1}"
        if a is None or b is None:
            assert a is None and b is None, f"{label}: {where}: one path returned None"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, (
            f"{label}: {where}: kernel gave {a.dtype}{a.shape}, reference {b.dtype}{b.shape}")
        same_nan = np.isnan(a) == np.isnan(b)
        assert same_nan.all(), f"{label}: {where}: NaN at {np.argwhere(~same_nan)[:5].tolist()}"
        a64, b64 = np.nan_to_num(a.astype(np.float64)), np.nan_to_num(b.astype(np.float64))
        scale = max(1.0, float(np.abs(b64).max(initial=0)))
        err = np.abs(a64 - b64)
        if err.size and err.max() > ulps * eps * scale:
            i = np.unravel_index(np.argmax(err), err.shape)
            pytest.fail(f"{label}: {where}: max |kernel - reference| = {err.max():.3g} "
                        f"({err.max() / (eps * scale):.1f} ulps of {scale:.3g}, allowed {ulps}) at "
                        f"index {tuple(map(int, i))}: kernel {a[i]!r}, reference {b[i]!r}; "
                        f"{int((err > ulps * eps * scale).sum())} of {err.size} elements off")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("param", PARAMS, ids=_ids)
def test_kernel_matches_reference_on_gpu(param, shape, dtype, monkeypatch):
    name, i = param
    cupy = _cupy()
    reference, kernel = kernels.REGISTRY[name]
    calls = []
    monkeypatch.setitem(kernels.REGISTRY, name,
                        (reference, lambda *a, **k: calls.append(1) or kernel(*a, **k)))
    args, kwargs = _make(name, i, shape, dtype)
    on_gpu = _to(args, cupy.asarray)
    got = _run(kernels.DISPATCHERS[name], on_gpu, kwargs)  # through the dispatcher
    assert calls, f"fused.{name} did not pick its kernel for contiguous {dtype} CuPy arrays"
    want = _run(reference, on_gpu, kwargs)
    _compare(f"{name}[variant {i}] {dtype} {shape}", got, want, np.dtype(dtype), CASES[name][2])


@pytest.mark.gpu
@pytest.mark.parametrize("param", [p for p in PARAMS if not CASES[p[0]][2]], ids=_ids)
def test_elementwise_kernels_take_strided_arrays(param):
    """Transposed, sliced views: elementwise kernels index by strides (in-place updates too, and
    they leave the elements between the slices alone)."""
    name, i = param
    cupy = _cupy()
    reference, kernel = kernels.REGISTRY[name]
    args, kwargs = _make(name, i, (9, 14), "float32", seed=3)

    def views(a):
        base = cupy.full((a.shape[1] * 2, a.shape[0]), 7, a.dtype)
        view = base[::2].T  # (9, 14), non-contiguous
        view[...] = cupy.asarray(a)
        return base, view

    results = []
    for fn in (kernel, reference):
        pairs = [None if a is None else views(a) if isinstance(a, np.ndarray) else a for a in args]
        call_args = [p[1] if isinstance(p, tuple) else p for p in pairs]
        assert not call_args[0].flags.c_contiguous
        out = fn(*call_args, **kwargs)
        results.append([out] + [p[0] for p in pairs if isinstance(p, tuple)])
    _compare(f"{name}[variant {i}] strided", results[0], results[1], np.dtype("float32"), False)
    for base in results[0][1:]:
        gaps = backend.asnumpy(base[1::2])
        assert (gaps == 7).all(), f"{name}: a kernel wrote between the elements of a strided view"


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["softmax_nll", "softmax_nll_grad"])
def test_row_kernels_refuse_what_they_do_not_cover(name, monkeypatch):
    """3-D logits, non-contiguous logits, float16 and empty batches go to the reference, and still
    match the cpu."""
    cupy = _cupy()
    reference, _ = kernels.REGISTRY[name]

    def refuse(*args, **kwargs):
        raise AssertionError(f"fused.{name} ran its kernel on a case it does not cover")
    monkeypatch.setitem(kernels.REGISTRY, name, (reference, refuse))
    rng = np.random.default_rng(4)
    x3, t3, w3 = rng.normal(0, 2, (4, 5, 3)), rng.integers(0, 5, (4, 3)), rng.uniform(0, 1, (4, 3))
    x2, t2, w2 = rng.normal(0, 2, (6, 5)), rng.integers(0, 5, 6), rng.uniform(0, 1, 6)
    cases = {  # what: (logits on the GPU, the same on the host, targets, weights, tolerance)
        "3-D": (cupy.asarray(x3), x3, t3, w3, 1e-12),
        "transposed view": (cupy.asarray(x2.T.copy()).T, x2, t2, w2, 1e-12),
        "float16": (cupy.asarray(x2.astype(np.float16)), x2.astype(np.float16), t2,
                    w2.astype(np.float16), 1e-2),
        "empty batch": (cupy.zeros((0, 5)), np.zeros((0, 5)), t2[:0], w2[:0], 0),
    }
    for what, (x_gpu, x, t, w, tol) in cases.items():
        got = kernels.DISPATCHERS[name](x_gpu, cupy.asarray(t), cupy.asarray(w))
        want = kernels.DISPATCHERS[name](x, t, w)
        np.testing.assert_allclose(backend.asnumpy(got), want, rtol=tol, atol=tol,
                                   err_msg=f"{name}, {what}")


@pytest.mark.gpu
def test_float16_and_mixed_dtypes_use_the_reference():
    cupy = _cupy()
    x = cupy.asarray(np.linspace(-3, 3, 11, dtype=np.float16))
    silu = kernels.DISPATCHERS["silu"]
    np.testing.assert_allclose(backend.asnumpy(silu(x)), silu(backend.asnumpy(x)), rtol=4e-3,
                               atol=1e-3)
    g = cupy.ones(11, dtype=cupy.float64)
    y = cupy.asarray(np.linspace(-1, 1, 11, dtype=np.float32))
    # different dtypes: the reference promotes, like numpy
    out = kernels.DISPATCHERS["relu_backward"](g, y)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(backend.asnumpy(out), (backend.asnumpy(y) > 0).astype(float))


def _train(device, make_optimizer, steps=3, activation=gpuad.nn.ReLU):
    gpuad.manual_seed(0)
    nn = gpuad.nn
    model = nn.Sequential(nn.Linear(12, 16), activation(), nn.Linear(16, 16), activation(),
                          nn.Linear(16, 5)).double().to(device)
    opt = make_optimizer(model.parameters())
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(steps):
        x = gpuad.tensor(rng.normal(0, 1, (8, 12)), device=device)
        y = gpuad.tensor(rng.integers(0, 5, 8), device=device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return [p.detach().cpu().numpy() for p in model.parameters()], losses, opt


OPTIMIZERS = {
    "sgd": lambda p: gpuad.optim.SGD(p, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda p: gpuad.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                                          weight_decay=1e-2),
    "sgd_dampening_maximize": lambda p: gpuad.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.2,
                                                        maximize=True),
    "adam": lambda p: gpuad.optim.Adam(p, lr=1e-2),
    "adam_amsgrad_l2": lambda p: gpuad.optim.Adam(p, lr=1e-2, amsgrad=True, weight_decay=0.1),
    "adamw_maximize": lambda p: gpuad.optim.AdamW(p, lr=1e-2, maximize=True),
}


@pytest.mark.gpu
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_training_steps_on_cuda_match_the_cpu(optimizer):
    gpu_params, gpu_losses, gpu_opt = _train("cuda", OPTIMIZERS[optimizer])
    cpu_params, cpu_losses, cpu_opt = _train("cpu", OPTIMIZERS[optimizer])
    # float64: cuBLAS and the host BLAS sum in other orders, so not bit-equal; a wrong rule is off
    # by far more than this
    for k, (a, b) in enumerate(zip(gpu_params, cpu_params)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10, err_msg=f"parameter {k}")
    for k, (a, b) in enumerate(zip(gpu_losses, cpu_losses)):
        np.testing.assert_allclose(a.cpu().numpy(), b.numpy(), rtol=1e-8, err_msg=f"loss {k}")
    gpu_state, cpu_state = gpu_opt.state_dict()["state"], cpu_opt.state_dict()["state"]
    for i, entry in cpu_state.items():
        for key, value in entry.items():
            if isinstance(value, gpuad.Tensor):
                np.testing.assert_allclose(gpu_state[i][key].cpu().numpy(), value.numpy(),
                                           rtol=1e-7, atol=1e-10, err_msg=f"state {i} {key}")


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["ReLU", "Tanh", "Sigmoid", "SiLU", "GELU"])
def test_activation_kernels_train_like_the_cpu(activation):
    make, layer = OPTIMIZERS["sgd_momentum_nesterov_wd"], getattr(gpuad.nn, activation)
    gpu_params, _, _ = _train("cuda", make, activation=layer)
    cpu_params, _, _ = _train("cpu", make, activation=layer)
    for k, (a, b) in enumerate(zip(gpu_params, cpu_params)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10, err_msg=f"{activation} param {k}")


@pytest.mark.gpu
@pytest.mark.parametrize("optimizer", ["sgd_momentum_nesterov_wd", "adam_amsgrad_l2"])
def test_a_cuda_training_step_never_synchronises(optimizer):
    """cupyx.allow_synchronize(False) raises on a host wait that CuPy sees: the forward, the fused
    backward rules, the fused cross entropy and the fused optimizer only queue work."""
    cupyx = pytest.importorskip("cupyx")
    allow = getattr(cupyx, "allow_synchronize", None)
    if allow is None:
        pytest.skip("this CuPy has no cupyx.allow_synchronize")
    gpuad.manual_seed(0)
    nn = gpuad.nn
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(),
                          nn.Linear(16, 5)).to("cuda")
    opt = OPTIMIZERS[optimizer](model.parameters())
    x = gpuad.randn(8, 12, device="cuda")
    y = gpuad.randint(0, 5, (8,), device="cuda")

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()  # compiles the kernels first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # allow_synchronize is deprecated (and best effort)
        with allow(False):
            step()
