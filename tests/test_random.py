"""Random functions and gpuad.Generator: values cannot equal torch's (other bit generators), so the
distributions are checked statistically, and seeds, shapes, dtypes, devices, gradients and
argument errors against torch's."""
import numpy as np
import pytest

import gpuad
from gpuad import backend
from gpuad.testing import strict

N = 200_000  # samples for the moment checks: standard errors ~0.2% of a unit scale


def _np(t):
    return backend.asnumpy(t.array).astype(np.float64)


# ---- Generator objects ---------------------------------------------------------------------------
def test_generator_api_like_torch():
    torch = pytest.importorskip("torch")
    g, tg = gpuad.Generator(), torch.Generator()
    assert g.initial_seed() == tg.initial_seed() == 67280421310721
    assert g.device == gpuad.device("cpu") and str(g.device) == str(tg.device)
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert g.manual_seed(-1).initial_seed() == tg.manual_seed(-1).initial_seed()
    for bad in (2 ** 64, -2 ** 63 - 1):
        with pytest.raises(ValueError):
            g.manual_seed(bad)
        with pytest.raises(ValueError):
            tg.manual_seed(bad)
    for bad in (1.5, "a"):
        with pytest.raises(RuntimeError, match="expected a long"):
            g.manual_seed(bad)
    seed = g.seed()
    assert isinstance(seed, int) and g.initial_seed() == seed
    state = g.get_state()
    assert isinstance(state, gpuad.Tensor) and state.dtype == gpuad.uint8 and state.ndim == 1
    with pytest.raises(TypeError, match="uint8"):
        g.set_state(gpuad.zeros(3))
    with pytest.raises(RuntimeError, match="get_state"):
        g.set_state(gpuad.tensor([1, 2, 3], dtype=gpuad.uint8))
    with pytest.raises(RuntimeError, match="strict generator"):
        g.set_state(gpuad.Generator("strict").get_state())


def test_state_round_trip_replays_the_stream():
    g = gpuad.Generator().manual_seed(11)
    gpuad.randn(5, generator=g)
    state = g.get_state()
    first = [gpuad.randn(4, generator=g), gpuad.randperm(7, generator=g)]
    other = gpuad.Generator().set_state(state)
    assert other.initial_seed() == 11
    again = [gpuad.randn(4, generator=other), gpuad.randperm(7, generator=other)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_generator_draws_leave_the_global_stream_alone():
    gpuad.manual_seed(3)
    expected = gpuad.randn(6).numpy()
    gpuad.manual_seed(3)
    g = gpuad.Generator().manual_seed(3)
    gpuad.randn(100, generator=g)
    gpuad.rand(4, 4, generator=g)
    np.testing.assert_array_equal(gpuad.randn(6).numpy(), expected)


def _calls(device):
    """Every random function torch lets take a generator, as (name, call(generator))."""
    x = gpuad.full((40,), 0.3, device=device)
    probs = gpuad.tensor([[0.2, 0.5, 0.3], [1.0, 1.0, 2.0]], device=device)
    kw = {"device": device}
    return [
        ("rand", lambda g: gpuad.rand(3, 4, generator=g, **kw)),
        ("randn", lambda g: gpuad.randn(3, 4, generator=g, **kw)),
        ("randint", lambda g: gpuad.randint(0, 100, (20,), generator=g, **kw)),
        ("rand_like", lambda g: gpuad.rand_like(x, generator=g)),
        ("randn_like", lambda g: gpuad.randn_like(x, generator=g)),
        ("randint_like", lambda g: gpuad.randint_like(x, 3, 90, generator=g)),
        ("randperm", lambda g: gpuad.randperm(30, generator=g, **kw)),
        ("multinomial", lambda g: gpuad.multinomial(probs, 20, True, generator=g)),
        ("multinomial_no_replacement", lambda g: gpuad.multinomial(probs, 3, generator=g)),
        ("normal", lambda g: gpuad.normal(x, 2.0, generator=g)),
        ("normal_floats", lambda g: gpuad.normal(1.0, 2.0, (10,), generator=g, **kw)),
        ("bernoulli", lambda g: gpuad.bernoulli(x, generator=g)),
        ("bernoulli_p", lambda g: gpuad.bernoulli(x, 0.7, generator=g)),
        ("poisson", lambda g: gpuad.poisson(x * 10, generator=g)),
        ("normal_", lambda g: gpuad.zeros(30, **kw).normal_(generator=g)),
        ("uniform_", lambda g: gpuad.zeros(30, **kw).uniform_(-1, 1, generator=g)),
        ("bernoulli_", lambda g: gpuad.zeros(30, **kw).bernoulli_(0.4, generator=g)),
        ("exponential_", lambda g: gpuad.zeros(30, **kw).exponential_(generator=g)),
        ("cauchy_", lambda g: gpuad.zeros(30, **kw).cauchy_(generator=g)),
        ("log_normal_", lambda g: gpuad.zeros(30, **kw).log_normal_(generator=g)),
        ("geometric_", lambda g: gpuad.zeros(30, **kw).geometric_(0.3, generator=g)),
        ("random_", lambda g: gpuad.zeros(30, **kw).random_(0, 1000, generator=g)),
    ]


def test_every_random_function_takes_a_generator(device):
    for name, call in _calls(device):
        a = call(gpuad.Generator(device).manual_seed(7))
        b = call(gpuad.Generator(device).manual_seed(7))
        c = call(gpuad.Generator(device).manual_seed(8))
        assert a.device == gpuad.device(device), name
        np.testing.assert_array_equal(_np(a), _np(b), err_msg=name)
        assert not np.array_equal(_np(a), _np(c)), name
        gpuad.manual_seed(1)
        d = call(None)
        gpuad.manual_seed(1)
        np.testing.assert_array_equal(_np(call(None)), _np(d), err_msg=name)  # global seed too


def test_generator_device_must_match():
    g = gpuad.Generator("strict")
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but "
                                           "found 'strict'"):
        gpuad.randn(3, generator=g)
    with pytest.raises(TypeError, match="gpuad.Generator"):
        gpuad.rand(3, generator=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="Expected a 'strict' device type"):
        gpuad.zeros(3, device="strict").normal_(generator=gpuad.Generator())


# ---- shapes and dtypes, as torch's --------------------------------------------------------------
def _shape_cases(lib):
    f32, f64, i32 = lib.zeros(2, 3), lib.zeros(2, 3, dtype=lib.float64), lib.zeros(
        4, dtype=lib.int32)
    return [
        lib.rand(2, 3), lib.randn((4,), dtype=lib.float64), lib.randint(5, (2, 2)),
        lib.randint(1, 5, (3,), dtype=lib.int32),
        lib.rand_like(f64), lib.randn_like(f32), lib.randn_like(i32, dtype=lib.float32),
        lib.randint_like(f32, 5), lib.randint_like(i32, 2, 9), lib.randperm(5),
        lib.randperm(4, dtype=lib.float32),
        lib.multinomial(lib.tensor([0.2, 0.8]), 3, True),
        lib.multinomial(lib.tensor([[0.2, 0.8], [1.0, 0.0]], dtype=lib.float64), 2),
        lib.normal(f32, 1.0), lib.normal(0.0, f64), lib.normal(f64, f32),
        lib.normal(lib.zeros(3), lib.ones(2, 1)), lib.normal(0.0, 1.0, (2, 2)),
        lib.normal(0.0, 1.0, size=(3,), dtype=lib.float64),
        lib.bernoulli(f64), lib.bernoulli(f32, 0.3), lib.poisson(f32),
        lib.zeros(3, dtype=lib.int32).random_(0, 9), lib.zeros(3, dtype=lib.int32).bernoulli_(),
        f64.clone().exponential_(), f32.clone().geometric_(0.5), f32.clone().bernoulli_(f32),
    ]


def test_shapes_and_dtypes_match_torch():
    torch = pytest.importorskip("torch")
    for i, (ours, theirs) in enumerate(zip(_shape_cases(gpuad), _shape_cases(torch))):
        assert tuple(ours.shape) == tuple(theirs.shape), i
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), i


def test_random_functions_on_the_strict_backend_only_call_what_cupy_has():
    cupy = pytest.importorskip("cupy")
    before = set(strict.USED)
    strict.USED.clear()
    try:
        for _, call in _calls("strict"):
            call(None)
        used = set(strict.USED)
    finally:
        strict.USED.update(before)
    missing = strict.missing_from(cupy, used)
    assert used and not missing, f"CuPy lacks {missing}"


# ---- distributions -------------------------------------------------------------------------------
def _moments(t, mean, var, tol=0.02):
    a = _np(t).ravel()
    assert abs(a.mean() - mean) < tol * max(1.0, np.sqrt(var)), (a.mean(), mean)
    assert abs(a.var() - var) < 3 * tol * max(1.0, var), (a.var(), var)


def test_continuous_distributions_have_their_moments():
    g = gpuad.Generator().manual_seed(0)
    _moments(gpuad.rand(N, generator=g), 0.5, 1 / 12)
    _moments(gpuad.randn(N, dtype=gpuad.float64, generator=g), 0.0, 1.0)
    _moments(gpuad.normal(gpuad.full((N,), 3.0), 2.0, generator=g), 3.0, 4.0)
    _moments(gpuad.normal(-1.0, gpuad.full((N,), 0.5), generator=g), -1.0, 0.25)
    _moments(gpuad.normal(2.0, 3.0, (N,), generator=g), 2.0, 9.0)
    _moments(gpuad.empty(N).uniform_(-2, 4, generator=g), 1.0, 3.0)
    _moments(gpuad.empty(N).normal_(5, 0.5, generator=g), 5.0, 0.25)
    _moments(gpuad.empty(N).exponential_(4.0, generator=g), 0.25, 1 / 16)
    _moments(gpuad.empty(N).log_normal_(0.5, 0.3, generator=g).log(), 0.5, 0.09)
    cauchy = _np(gpuad.empty(N).cauchy_(1.0, 2.0, generator=g))
    assert abs(np.median(cauchy) - 1.0) < 0.05
    assert abs(np.percentile(cauchy, 75) - 3.0) < 0.1  # median + sigma
    half = gpuad.empty(N, dtype=gpuad.float16).normal_(generator=g)
    assert half.dtype == gpuad.float16
    _moments(half, 0.0, 1.0)


def test_discrete_distributions_have_their_moments():
    g = gpuad.Generator().manual_seed(1)
    p = gpuad.tensor([0.1, 0.5, 0.9]).repeat(N // 3)
    draws = _np(gpuad.bernoulli(p, generator=g)).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(draws, [0.1, 0.5, 0.9], atol=0.01)
    assert abs(_np(gpuad.bernoulli(gpuad.zeros(N), 0.25, generator=g)).mean() - 0.25) < 0.01
    assert abs(_np(gpuad.zeros(N, dtype=gpuad.int64).bernoulli_(0.6, generator=g)).mean()
               - 0.6) < 0.01
    per = gpuad.zeros(N, 2).bernoulli_(gpuad.tensor([0.2, 0.7]), generator=g)
    np.testing.assert_allclose(_np(per).mean(0), [0.2, 0.7], atol=0.01)
    _moments(gpuad.poisson(gpuad.full((N,), 4.0), generator=g), 4.0, 4.0)
    _moments(gpuad.empty(N).geometric_(0.25, generator=g), 4.0, 12.0, tol=0.03)
    ints = _np(gpuad.randint(3, 9, (N,), generator=g))
    assert ints.min() == 3 and ints.max() == 8
    np.testing.assert_allclose(np.bincount(ints.astype(int))[3:] / N, 1 / 6, atol=0.01)
    assert _np(gpuad.randint_like(gpuad.zeros(N), 4, generator=g)).max() == 3
    r = _np(gpuad.zeros(N).random_(generator=g))
    assert r.min() >= 0 and r.max() <= 2 ** 24 and r.max() > 2 ** 23
    assert set(_np(gpuad.zeros(1000, dtype=gpuad.bool).random_(generator=g))) == {0.0, 1.0}
    assert _np(gpuad.zeros(1000, dtype=gpuad.uint8).random_(generator=g)).max() > 200
    perm = _np(gpuad.randperm(1000, generator=g))
    assert sorted(perm) == list(range(1000)) and not np.array_equal(perm, np.arange(1000))


def test_multinomial_frequencies():
    g = gpuad.Generator().manual_seed(2)
    weights = np.array([[1.0, 0.0, 3.0, 6.0], [0.0, 0.0, 5.0, 5.0]])
    draws = _np(gpuad.multinomial(gpuad.tensor(weights), N // 4, True, generator=g))
    for row, w in zip(draws, weights):
        np.testing.assert_allclose(np.bincount(row.astype(int), minlength=4) / len(row),
                                   w / w.sum(), atol=0.01)
    one = _np(gpuad.multinomial(gpuad.tensor([0.0, 0.0, 1.0]), 1000, True, generator=g))
    assert set(one) == {2.0}
    # without replacement: distinct indices per row; the first draw follows the weights and the
    # zero-weight categories come last
    rows = gpuad.tensor(np.tile([1.0, 2.0, 0.0, 7.0], (20_000, 1)))
    picks = _np(gpuad.multinomial(rows, 4, generator=g)).astype(int)
    assert all(len(set(r)) == 4 for r in picks[:100]) and (picks[:, 3] == 2).all()
    np.testing.assert_allclose(np.bincount(picks[:, 0], minlength=4) / len(picks),
                               [0.1, 0.2, 0.0, 0.7], atol=0.01)


# ---- gradients and in-place rules, as torch's --------------------------------------------------
def test_random_draws_record_zero_gradients_like_torch():
    torch = pytest.importorskip("torch")
    for name, call in (("normal", lambda lib, m, s: lib.normal(m, s)),
                       ("bernoulli", lambda lib, m, s: lib.bernoulli(s.sigmoid())),
                       ("poisson", lambda lib, m, s: lib.poisson(s.exp()))):
        ours = [gpuad.tensor([0.5, 1.0, 2.0], requires_grad=True) for _ in range(2)]
        theirs = [torch.tensor([0.5, 1.0, 2.0], requires_grad=True) for _ in range(2)]
        y, ty = call(gpuad, *ours), call(torch, *theirs)
        assert y.requires_grad == ty.requires_grad, name
        (y * 2).sum().backward()
        (ty * 2).sum().backward()
        for p, tp in zip(ours, theirs):
            got = None if p.grad is None else p.grad.numpy()
            want = None if tp.grad is None else tp.grad.numpy()
            assert (got is None) == (want is None), name
            if got is not None:
                np.testing.assert_array_equal(got, want)
    with gpuad.no_grad():
        assert not gpuad.normal(gpuad.zeros(2, requires_grad=True), 1.0).requires_grad


def test_in_place_fills_follow_the_in_place_rules():
    w = gpuad.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w.normal_()
    w.data.normal_(0, 0.02)  # the PyTorch idiom: through .data, which shares the array
    assert w.requires_grad and np.abs(w.detach().numpy()).max() > 0
    t = gpuad.zeros(4)
    version = t._version
    assert t.uniform_() is t and t._version != version
    with gpuad.no_grad():
        w.uniform_(2, 3)
    assert (w.detach().numpy() >= 2).all()


# ---- argument errors, as torch's ----------------------------------------------------------------
ERRORS = [
    (lambda L: L.randn_like(L.zeros(3, dtype=L.int64)), NotImplementedError, "normal_kernel"),
    (lambda L: L.rand_like(L.zeros(3, dtype=L.int64)), NotImplementedError, "uniform_bounds"),
    (lambda L: L.rand(3, dtype=L.int64), NotImplementedError, "uniform_bounds"),
    (lambda L: L.randint_like(L.zeros(3), 5, 2), RuntimeError, "from=5 >= to=2"),
    (lambda L: L.randint(3, 3, (2,)), RuntimeError, "from=3 >= to=3"),
    (lambda L: L.randperm(-1), RuntimeError, "negative dimension -1"),
    (lambda L: L.multinomial(L.tensor([0.0, 0.0]), 1), RuntimeError, "sum of probabilities"),
    (lambda L: L.multinomial(L.tensor([1.0, -1.0]), 1), RuntimeError, "element < 0"),
    (lambda L: L.multinomial(L.tensor([1.0, float("nan")]), 1), RuntimeError, "nan"),
    (lambda L: L.multinomial(L.tensor([1.0, 1.0]), 3), RuntimeError, "without replacement"),
    (lambda L: L.multinomial(L.tensor([1.0, 1.0]), 0), RuntimeError, "n_sample <= 0"),
    (lambda L: L.multinomial(L.ones(2, 2, 2), 1), RuntimeError, "1 or 2 dim"),
    (lambda L: L.multinomial(L.tensor([1, 1]), 1), RuntimeError, "floating-point"),
    (lambda L: L.normal(L.zeros(3), -1.0), RuntimeError, "std >= 0.0"),
    (lambda L: L.normal(L.zeros(3), -L.ones(3)), RuntimeError, "std >= 0.0"),
    (lambda L: L.normal(0.0, 1.0), TypeError, ""),
    (lambda L: L.normal(L.zeros(3), L.ones(2)), RuntimeError, ""),
    (lambda L: L.bernoulli(L.tensor([2.0])), RuntimeError, "p_in >= 0 && p_in <= 1"),
    (lambda L: L.bernoulli(L.zeros(3), 2.0), RuntimeError, "p to be in [0, 1]"),
    (lambda L: L.bernoulli(L.tensor([1, 0])), NotImplementedError, "bernoulli"),
    (lambda L: L.poisson(L.tensor([-1.0])), RuntimeError, "non-negative"),
    (lambda L: L.poisson(L.tensor([1, 2])), NotImplementedError, "poisson"),
    (lambda L: L.zeros(3).normal_(0, -1), RuntimeError, "std >= 0.0"),
    (lambda L: L.zeros(3, dtype=L.int64).normal_(), NotImplementedError, "normal_kernel"),
    (lambda L: L.zeros(3).uniform_(2, 1), RuntimeError, "from=2 > to=1"),
    (lambda L: L.zeros(3).exponential_(0), RuntimeError, "lambda > 0.0"),
    (lambda L: L.zeros(3, dtype=L.int64).exponential_(), RuntimeError, "floating point"),
    (lambda L: L.zeros(3).bernoulli_(2), RuntimeError, "p to be in [0, 1]"),
    (lambda L: L.zeros(3).geometric_(0), RuntimeError, "p to be in (0, 1)"),
    (lambda L: L.zeros(3).cauchy_(0, -1), RuntimeError, "sigma > 0.0"),
    (lambda L: L.zeros(3).log_normal_(0, -1), RuntimeError, "std > 0.0"),
    (lambda L: L.zeros(3).random_(5, 2), RuntimeError, "from=5 >= to=2"),
]


@pytest.mark.parametrize("call,kind,message", ERRORS, ids=range(len(ERRORS)))
def test_argument_errors_like_torch(call, kind, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(kind) as ours:
        call(gpuad)
    with pytest.raises(kind) as theirs:
        call(torch)
    assert message in str(ours.value) and message in str(theirs.value)


def test_a_refused_fill_changes_nothing():
    g = gpuad.Generator().manual_seed(4)
    state = g.get_state().numpy().copy()
    t = gpuad.ones(3)
    version = t._version
    with pytest.raises(RuntimeError):
        t.normal_(0, -1, generator=g)
    assert t._version == version and (t.numpy() == 1).all()
    np.testing.assert_array_equal(g.get_state().numpy(), state)
