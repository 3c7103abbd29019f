"""PyTorch as the oracle for the activations, losses, softmax names, nn.utils (convert_parameters,
weight_norm, spectral_norm) and the layers' dtype checks: forward values, gradients (at the kinks
torch defines, second order where torch has it), reductions, NaN and empty inputs, result dtypes,
reprs and state_dict keys. Skipped without torch; torch is never a dependency."""
import math
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import nn


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _np(t):
    if isinstance(t, gpuad.Tensor):
        return gpuad.backend.asnumpy(t.detach().array)
    return t.detach().cpu().numpy(force=True)  # force: torch's ZeroTensor gradients too


def _close(ours, theirs, rtol=1e-10, atol=1e-12):
    ours, theirs = _np(ours), _np(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


def _both(torch, arrays, grad=True):
    """The same float64 arrays as gpuad and torch leaves."""
    ours = [gpuad.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    return ours, theirs


def _compare(torch, ours_fn, torch_fn, arrays, second_order=True, rtol=1e-10, atol=1e-12):
    """Forward, first-order gradients (random upstream) and, where torch has it, second-order
    gradients of every float input."""
    xs, txs = _both(torch, arrays)
    y = ours_fn(*xs)
    try:
        ty = torch_fn(*txs)
    except RuntimeError as error:  # torch refuses a gradient for some targets: compare the rest
        if "is not differentiable with respect to argument" not in str(error):
            raise
        frozen = [i for i, t in enumerate(txs) if t.requires_grad][1:]
        for i in frozen:
            xs[i].requires_grad, txs[i].requires_grad = False, False
        arrays = [a.astype(np.int64) if i in frozen else a for i, a in enumerate(arrays)]
        y, ty = ours_fn(*xs), torch_fn(*txs)
    _close(y, ty, rtol, atol)
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "")
    diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not ty.requires_grad or not diff:
        return
    v = np.random.default_rng(3).standard_normal(tuple(ty.shape))
    with np.errstate(invalid="ignore"):  # inf - inf when a loss is infinite, as in torch
        gs = gpuad.grad((y * gpuad.tensor(v)).sum(), [xs[i] for i in diff], create_graph=True,
                        allow_unused=True)
    tgs = torch.autograd.grad((ty * torch.tensor(v)).sum(), [txs[i] for i in diff],
                              create_graph=True, allow_unused=True)
    for g, tg, i in zip(gs, tgs, diff):
        if tg is None:
            assert g is None or not np.any(_np(g)), f"input {i}: torch has no gradient"
            continue
        _close(g, tg, rtol, atol)
    if not second_order:
        return
    w = [np.random.default_rng(4 + i).standard_normal(arrays[i].shape) for i in diff]
    pairs = [(g, tg, k) for k, (g, tg) in enumerate(zip(gs, tgs))
             if tg is not None and tg.requires_grad and g is not None and g.requires_grad]
    if not pairs:
        return
    total = sum((g * gpuad.tensor(w[k])).sum() for g, _, k in pairs)
    ttotal = sum((tg * torch.tensor(w[k])).sum() for _, tg, k in pairs)
    try:
        tgg = torch.autograd.grad(ttotal, [txs[i] for i in diff], allow_unused=True)
    except RuntimeError:  # torch has no double backward here
        return
    gg = gpuad.grad(total, [xs[i] for i in diff], allow_unused=True)
    for g, tg in zip(gg, tgg):
        if tg is not None:
            _close(g if g is not None else gpuad.zeros(tuple(tg.shape), dtype=gpuad.float64),
                   tg, rtol, atol)


# ---- activations -------------------------------------------------------------------------------
EDGES = np.array([-800.0, -40.0, -6.0, -3.0, -2.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.0,
                  3.0, 6.0, 7.0, 40.0, 800.0])
# name, kwargs variants; torch.nn.functional.<name> is the oracle
ACTIVATIONS = [
    ("relu", [{}]), ("relu6", [{}]), ("hardtanh", [{}, {"min_val": -0.5, "max_val": 2.0}]),
    ("hardsigmoid", [{}]), ("hardswish", [{}]), ("selu", [{}]), ("celu", [{}, {"alpha": 0.5}]),
    ("elu", [{}, {"alpha": 0.3}]), ("mish", [{}]), ("softsign", [{}]),
    ("softshrink", [{}, {"lambd": 1.0}]), ("hardshrink", [{}, {"lambd": 2.0}]),
    ("tanhshrink", [{}]), ("threshold", [{"threshold": 0.5, "value": -2.0},
                                         {"threshold": -1.0, "value": 7.0}]),
    ("logsigmoid", [{}]), ("leaky_relu", [{}, {"negative_slope": 0.2}]),
    ("rrelu", [{}, {"lower": 0.1, "upper": 0.4}]), ("silu", [{}]),
    ("gelu", [{}, {"approximate": "tanh"}]), ("softplus", [{}, {"beta": 2.0, "threshold": 6.0}]),
    ("sigmoid", [{}]), ("tanh", [{}]),
]
ACT_PARAMS = [(n, kw) for n, kws in ACTIVATIONS for kw in kws]


@pytest.mark.parametrize("name,kwargs", ACT_PARAMS,
                         ids=[f"{n}-{kw}" for n, kw in ACT_PARAMS])
def test_activation_values_and_gradients_at_kinks(torch, name, kwargs):
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    rtol = 1e-7 if name == "hardsigmoid" else 1e-10  # torch's backward uses a float32 1/6
    edges = EDGES[1:-1] if name == "mish" else EDGES  # torch's double backward: NaN at 800
    _compare(torch, lambda x: ours(x, **kwargs), lambda x: theirs(x, **kwargs), [edges], rtol=rtol)
    for special in (np.array([np.nan, np.inf, -np.inf]), np.zeros((0, 3))):
        with np.errstate(all="ignore"):  # inf / inf: numpy warns, torch does not
            _close(ours(gpuad.tensor(special), **kwargs), theirs(torch.tensor(special), **kwargs))
    y, ty = ours(gpuad.tensor(EDGES, dtype=gpuad.float32), **kwargs), theirs(
        torch.tensor(EDGES, dtype=torch.float32), **kwargs)
    assert y.dtype == gpuad.float32 and ty.dtype == torch.float32
    _close(y, ty, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", [n for n, _ in ACTIVATIONS])
def test_activation_integer_inputs_like_torch(torch, name):
    kwargs = dict(ACTIVATIONS[[n for n, _ in ACTIVATIONS].index(name)][1][0])
    ints = np.array([-4, -1, 0, 1, 7])
    try:
        expected = getattr(torch.nn.functional, name)(torch.tensor(ints), **kwargs)
    except (NotImplementedError, RuntimeError):
        expected = None
    if name in ("sigmoid", "tanh", "softplus", "gelu", "silu", "relu6") and expected is None:
        pytest.skip("gpuad's existing ops compute integers in float32 here")
    if expected is None:
        with pytest.raises(NotImplementedError, match=f"{name}: not implemented for integer"):
            getattr(F, name)(gpuad.tensor(ints), **kwargs)
    else:
        y = getattr(F, name)(gpuad.tensor(ints), **kwargs)
        assert str(y.dtype) == str(expected.dtype).replace("torch.", "")
        _close(y, expected, rtol=1e-6)


def test_rrelu_training_draws_slopes_from_the_seeded_generator():
    x = gpuad.tensor(-np.linspace(0.0, 2.0, 200), requires_grad=True)
    gpuad.manual_seed(7)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    gpuad.manual_seed(7)
    np.testing.assert_array_equal(y.detach().numpy(), F.rrelu(x, 0.1, 0.3, True).detach().numpy())
    y.sum().backward()
    slopes = x.grad.numpy()  # the gradient is each element's slope, also at 0
    assert (slopes >= 0.1).all() and (slopes <= 0.3).all() and np.std(slopes) > 0.03
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() * slopes)
    positive = gpuad.tensor([0.5, 2.0])
    np.testing.assert_array_equal(F.rrelu(positive, training=True).numpy(), [0.5, 2.0])
    module = nn.RReLU(0.1, 0.3).eval()
    np.testing.assert_allclose(module(gpuad.tensor([-1.0])).numpy(), [-0.2])


@pytest.mark.parametrize("dim", [0, -1])
def test_gumbel_softmax_samples_the_categorical_with_a_straight_through_gradient(dim):
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    rows = np.log(np.tile(probs, (20000, 1)))
    logits = gpuad.tensor(rows if dim == -1 else rows.T.copy(), requires_grad=True)
    gpuad.manual_seed(3)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True, dim=dim)
    picked = hard.detach().numpy()
    assert set(np.unique(picked)) == {0.0, 1.0} and (picked.sum(axis=dim) == 1).all()
    # the Gumbel-max trick: each class is the argmax as often as its probability
    np.testing.assert_allclose(picked.mean(axis=1 + dim), probs, atol=0.015)
    gpuad.manual_seed(3)  # the same draws, soft: the hard sample is its argmax
    soft = F.gumbel_softmax(logits, tau=0.5, dim=dim)
    np.testing.assert_allclose(soft.detach().numpy().sum(axis=dim), 1, rtol=1e-12)
    np.testing.assert_array_equal(picked.argmax(axis=dim), soft.detach().numpy().argmax(axis=dim))
    weights = gpuad.tensor(np.arange(1.0, 5.0) if dim == -1 else np.arange(1.0, 5.0)[:, None])
    (hard * weights).sum().backward()  # straight through: the soft sample's gradient
    straight = logits.grad.numpy().copy()
    logits.grad = None
    (soft * weights).sum().backward()
    np.testing.assert_allclose(straight, logits.grad.numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="gumbel_softmax: not implemented for integer"):
        F.gumbel_softmax(gpuad.tensor([1, 2]))


@pytest.mark.parametrize("dims", [(0,), (1,), (-1,)])
def test_glu_softmin_softmax_names(torch, dims):
    x = np.random.default_rng(0).standard_normal((4, 6))
    dim = dims[0]
    _compare(torch, lambda t: F.glu(t, dim) if x.shape[dim] % 2 == 0 else F.glu(t),
             lambda t: torch.nn.functional.glu(t, dim) if x.shape[dim] % 2 == 0
             else torch.nn.functional.glu(t), [x])
    _compare(torch, lambda t: F.softmin(t, dim), lambda t: torch.nn.functional.softmin(t, dim), [x])
    _compare(torch, lambda t: gpuad.softmax(t, dim), lambda t: torch.softmax(t, dim), [x])
    _compare(torch, lambda t: gpuad.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim), [x])
    _compare(torch, lambda t: t.softmax(dim), lambda t: t.softmax(dim), [x])
    _compare(torch, lambda t: t.log_softmax(dim, dtype=gpuad.float32),
             lambda t: t.log_softmax(dim, dtype=torch.float32), [x], rtol=1e-5, atol=1e-6)


def test_softmax_names_edges(torch):
    with pytest.raises(TypeError):
        gpuad.softmax(gpuad.ones(3))  # dim is required at the top level, as torch.softmax's
    with pytest.warns(UserWarning, match="implicit dimension"):
        F.softmin(gpuad.ones(2, 3))
    for special in (np.array([[np.nan, 1.0], [np.inf, 1.0], [-np.inf, 0.0]]), np.zeros((0, 3))):
        with np.errstate(all="ignore"):  # inf - inf: numpy warns, torch does not
            for name in ("softmax", "log_softmax"):
                _close(getattr(gpuad, name)(gpuad.tensor(special), -1),
                       getattr(torch, name)(torch.tensor(special), -1))
            _close(F.softmin(gpuad.tensor(special), -1),
                   torch.nn.functional.softmin(torch.tensor(special), -1))
    with pytest.raises(ValueError, match="dim 1 of input of shape \\(4, 3\\) has size 3"):
        F.glu(gpuad.ones(4, 3), 1)


@pytest.mark.parametrize("shape,count", [((4, 3), 3), ((4, 3), 1), ((2, 3, 5), 3), ((5,), 1),
                                         ((), 1)])
def test_prelu_matches_torch(torch, shape, count):
    x = np.random.default_rng(1).uniform(-2, 2, shape)
    if x.ndim:
        x.reshape(-1)[::3] = 0.0  # the kink: torch's gradient is the slope there
    w = np.random.default_rng(2).uniform(0.1, 0.5, (count,))
    _compare(torch, F.prelu, torch.nn.functional.prelu, [x, w])
    assert gpuad.prelu is not None


def test_prelu_errors(torch):
    with pytest.raises(ValueError, match="3 channels"):
        F.prelu(gpuad.ones(2, 3), gpuad.ones(4))
    with pytest.raises(RuntimeError, match="PReLU\\(num_parameters=1\\): the input has dtype "
                                           "float64, the weight float32"):
        nn.PReLU()(gpuad.ones(2, 3, dtype=gpuad.float64))
    with pytest.raises(RuntimeError, match="prelu: the input has dtype int64"):
        F.prelu(gpuad.ones(2, 3, dtype=gpuad.int64), gpuad.ones(1))
    with pytest.raises(RuntimeError):
        torch.nn.PReLU()(torch.ones(2, 3, dtype=torch.float64))


MODULES = [("ReLU", {}), ("ReLU", {"inplace": True}), ("ReLU6", {"inplace": True}),
           ("Hardtanh", {"min_val": -2.0, "max_val": 3.0}), ("Hardtanh", {"inplace": True}),
           ("Hardsigmoid", {"inplace": True}), ("Hardswish", {}), ("SELU", {}),
           ("CELU", {"alpha": 0.5}), ("ELU", {"inplace": True}), ("Mish", {}), ("SiLU", {}),
           ("Softsign", {}), ("Softshrink", {"lambd": 0.3}), ("Hardshrink", {}),
           ("Tanhshrink", {}), ("Threshold", {"threshold": 0.1, "value": 20.0}),
           ("LogSigmoid", {}), ("Softmin", {"dim": 1}), ("Softmax", {"dim": 1}),
           ("LogSoftmax", {"dim": -1}), ("Softmax2d", {}), ("GLU", {}), ("GLU", {"dim": 0}),
           ("PReLU", {}), ("PReLU", {"num_parameters": 4, "init": 0.1}), ("RReLU", {}),
           ("GELU", {"approximate": "tanh"}), ("LeakyReLU", {"negative_slope": 0.2}),
           ("Softplus", {"beta": 2.0}), ("Sigmoid", {}), ("Tanh", {})]


@pytest.mark.parametrize("name,kwargs", MODULES, ids=[f"{n}-{kw}" for n, kw in MODULES])
def test_activation_modules_match_torch(torch, name, kwargs):
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    state, tstate = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(tstate)
    assert [tuple(v.shape) for v in state.values()] == [tuple(v.shape) for v in tstate.values()]
    ours.load_state_dict({k: v.numpy() for k, v in tstate.items()})
    ours.double().eval(), theirs.double().eval()
    x = np.random.default_rng(0).uniform(-4, 4, (2, 4, 3, 2))
    if name == "PReLU" and kwargs:  # one slope per channel
        x = x.reshape(2, 4, 6)
    y, ty = ours(gpuad.tensor(x)), theirs(torch.tensor(x))
    _close(y, ty)
    if kwargs.get("inplace"):  # no autograd: the input itself is overwritten, as in torch
        xs, txs = gpuad.tensor(x), torch.tensor(x)
        out, tout = ours(xs), theirs(txs)
        assert out is xs and tout is txs
        _close(xs, txs)


def test_inplace_with_autograd_returns_a_new_tensor():
    x = gpuad.tensor([-1.0, 2.0], requires_grad=True)
    y = F.relu(x, inplace=True)
    assert y is not x and x.detach().numpy()[0] == -1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0])
    with gpuad.no_grad():
        assert F.hardtanh(x, inplace=True) is x
    np.testing.assert_array_equal(x.detach().numpy(), [-1.0, 1.0])


# ---- losses ------------------------------------------------------------------------------------
def _pm1(rng, shape):
    return rng.choice([-1.0, 1.0], shape)


def _loss_inputs(name, rng):
    """Arrays for each loss, away from kinks unless the kink is the point."""
    u = rng.uniform
    if name in ("smooth_l1_loss", "huber_loss"):
        x = u(-3, 3, (3, 4))
        t = x + np.array([0.0, 1.0, -1.0, 0.5] * 3).reshape(3, 4) + u(-2, 2, (3, 4)) * (
            np.arange(12).reshape(3, 4) % 3 == 0)
        return [x, t]  # differences of exactly 0, +-1 (= beta, delta) included
    if name == "kl_div":
        t = u(0, 1, (3, 4))
        t[0, 0] = 0.0
        return [np.log(u(0.1, 1, (3, 4))), t]
    if name == "poisson_nll_loss":
        return [u(0.2, 2, (3, 4)), rng.integers(0, 5, (3, 4)).astype(float)]
    if name == "gaussian_nll_loss":
        return [u(-2, 2, (3, 4)), u(-2, 2, (3, 4)), u(0.2, 2, (3, 4))]
    if name == "cosine_embedding_loss":
        return [u(-2, 2, (5, 3)), u(-2, 2, (5, 3)), _pm1(rng, (5,))]
    if name == "margin_ranking_loss":
        return [u(-2, 2, (6,)), u(-2, 2, (6,)), _pm1(rng, (6,))]
    if name == "hinge_embedding_loss":
        return [u(-2, 2, (3, 4)), _pm1(rng, (3, 4))]
    if name == "soft_margin_loss":
        return [u(-2, 2, (3, 4)), _pm1(rng, (3, 4))]
    if name == "multilabel_soft_margin_loss":
        return [u(-3, 3, (3, 4)), rng.integers(0, 2, (3, 4)).astype(float)]
    if name == "multi_margin_loss":
        return [u(-2, 2, (4, 5)), rng.integers(0, 5, (4,))]
    if name == "triplet_margin_loss":
        return [u(-2, 2, (4, 3)), u(-2, 2, (4, 3)), u(-2, 2, (4, 3))]
    raise KeyError(name)


LOSSES = [
    ("smooth_l1_loss", [{}, {"beta": 0.5}, {"beta": 0.0}]),
    ("huber_loss", [{}, {"delta": 0.5}]),
    ("kl_div", [{"reduction": "batchmean"}, {"log_target": True}, {"reduction": "none"}]),
    ("poisson_nll_loss", [{}, {"log_input": False}, {"full": True}, {"log_input": False,
                                                                       "full": True}]),
    ("gaussian_nll_loss", [{}, {"full": True}, {"eps": 0.5}]),
    ("cosine_embedding_loss", [{}, {"margin": 0.2}]),
    ("margin_ranking_loss", [{}, {"margin": 0.3}]),
    ("hinge_embedding_loss", [{}, {"margin": 0.5}]),
    ("soft_margin_loss", [{}]),
    ("multilabel_soft_margin_loss", [{}]),
    ("multi_margin_loss", [{}, {"p": 2}, {"margin": 0.5}]),
    ("triplet_margin_loss", [{}, {"p": 1}, {"swap": True}, {"margin": 0.3, "eps": 0.0}]),
]
LOSS_PARAMS = [(n, dict(kw, **r)) for n, kws in LOSSES for i, kw in enumerate(kws)
               for r in ([{}] if "reduction" in kw or i else
                         [{}, {"reduction": "sum"}, {"reduction": "none"}])]


@pytest.mark.parametrize("name,kwargs", LOSS_PARAMS, ids=[f"{n}-{kw}" for n, kw in LOSS_PARAMS])
def test_loss_values_and_gradients(torch, name, kwargs):
    arrays = _loss_inputs(name, np.random.default_rng(0))
    if name == "kl_div" and kwargs.get("log_target"):
        arrays[1] = np.log(arrays[1] + 0.05)
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warns in both
        _compare(torch, lambda *a: ours(*a, **kwargs), lambda *a: theirs(*a, **kwargs), arrays)


@pytest.mark.parametrize("name", [n for n, _ in LOSSES])
def test_losses_with_nan_empty_and_float32(torch, name):
    arrays = _loss_inputs(name, np.random.default_rng(1))
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    with_nan = [a.copy() for a in arrays]
    with_nan[0].reshape(-1)[1] = np.nan
    for reduction in ("mean", "none", "sum"):
        kw = {"reduction": reduction}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _close(ours(*[gpuad.tensor(a) for a in with_nan], **kw),
                   theirs(*[torch.tensor(a) for a in with_nan], **kw))
    if name not in ("multi_margin_loss",):  # torch refuses empty inputs there (so do we)
        empty = [a.reshape(-1)[:0].reshape((0,) + a.shape[1:]) for a in arrays]
        for reduction in ("mean", "none", "sum"):
            kw = {"reduction": reduction}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    expected = theirs(*[torch.tensor(a) for a in empty], **kw)
                except (RuntimeError, ValueError, IndexError):
                    continue
                _close(ours(*[gpuad.tensor(a) for a in empty], **kw), expected)
    f32 = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
    xs = [gpuad.tensor(a, requires_grad=a.dtype.kind == "f") for a in f32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = ours(*xs)
    assert y.dtype == gpuad.float32
    y.backward()
    assert all(x.grad.dtype == gpuad.float32 for x in xs if x.grad is not None)


def test_loss_extremes_and_legacy_flags(torch):
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    t = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    with np.errstate(over="ignore"):  # overflows to inf in both
        _close(F.soft_margin_loss(gpuad.tensor(x), gpuad.tensor(t), reduction="none"),
               torch.nn.functional.soft_margin_loss(torch.tensor(x), torch.tensor(t),
                                                    reduction="none"))
    m = np.array([-40.0, 0.0, 40.0, 800.0, -800.0])
    targets = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    _compare(torch, lambda a, b: F.multilabel_soft_margin_loss(a, b),
             lambda a, b: torch.nn.functional.multilabel_soft_margin_loss(a, b), [m, targets])
    a, b = np.random.default_rng(0).standard_normal((2, 3, 4))
    for flags in ({"size_average": False}, {"reduce": False}, {"size_average": True,
                                                               "reduce": True}):
        with pytest.warns(UserWarning):
            y = F.smooth_l1_loss(gpuad.tensor(a), gpuad.tensor(b), **flags)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _close(y, torch.nn.functional.smooth_l1_loss(torch.tensor(a), torch.tensor(b),
                                                         **flags))
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(gpuad.tensor(a), gpuad.tensor(np.abs(b)))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(gpuad.tensor(a), gpuad.tensor(b), gpuad.tensor(-np.ones((3, 4))))
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        F.multi_margin_loss(gpuad.tensor(a), gpuad.tensor([0, 1, 2]), p=3)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_loss(*[gpuad.tensor(a)] * 3, margin=0)


@pytest.mark.parametrize("var_shape", [(3, 4), (3, 1), (3,), "float"])
def test_gaussian_nll_variance_shapes_and_clamp(torch, var_shape):
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((2, 3, 4))
    if var_shape == "float":
        _close(F.gaussian_nll_loss(gpuad.tensor(x), gpuad.tensor(t), 0.7),
               torch.nn.functional.gaussian_nll_loss(torch.tensor(x), torch.tensor(t), 0.7))
        return
    var = rng.uniform(0.0, 1.0, var_shape)
    var.reshape(-1)[0] = 1e-9  # below eps: clamped, and the gradient passes anyway
    _compare(torch, lambda a, b, v: F.gaussian_nll_loss(a, b, v, eps=1e-3),
             lambda a, b, v: torch.nn.functional.gaussian_nll_loss(a, b, v, eps=1e-3),
             [x, t, var])


def test_single_sample_loss_shapes(torch):
    rng = np.random.default_rng(3)
    x, target = rng.standard_normal(5), np.array(2)
    for reduction in ("none", "mean"):
        _compare(torch, lambda a, b, r=reduction: F.multi_margin_loss(a, b, reduction=r),
                 lambda a, b, r=reduction: torch.nn.functional.multi_margin_loss(a, b, reduction=r),
                 [x, target])
    a, b = rng.standard_normal((2, 4))
    _compare(torch, lambda p, q, y: F.cosine_embedding_loss(p, q, y, reduction="none"),
             lambda p, q, y: torch.nn.functional.cosine_embedding_loss(p, q, y,
                                                                       reduction="none"),
             [a, b, np.array(-1.0)])
    anchor, pos, neg = rng.standard_normal((3, 4))
    _compare(torch, lambda p, q, r: F.triplet_margin_loss(p, q, r, reduction="none"),
             lambda p, q, r: torch.nn.functional.triplet_margin_loss(p, q, r, reduction="none"),
             [anchor, pos, neg])


# ---- ctc ---------------------------------------------------------------------------------------
def _ctc_case(rng, steps=6, batch=3, classes=5, lengths=(6, 4, 5), targets=((1, 2, 2), (3,),
                                                                             (4, 1))):
    logits = rng.standard_normal((steps, batch, classes))
    padded = np.zeros((batch, max(len(t) for t in targets) + 1), dtype=np.int64)
    for i, t in enumerate(targets):
        padded[i, :len(t)] = t
    return logits, padded, np.array(lengths), np.array([len(t) for t in targets])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_ctc_loss_matches_torch(torch, reduction, layout):
    logits, padded, in_len, tg_len = _ctc_case(np.random.default_rng(0))
    targets = padded if layout == "padded" else np.concatenate(
        [p[:n] for p, n in zip(padded, tg_len)])

    def ours(x):  # log_softmax inside: torch's gradient assumes log-probabilities
        return F.ctc_loss(F.log_softmax(x, 2), gpuad.tensor(targets), gpuad.tensor(in_len),
                          gpuad.tensor(tg_len), reduction=reduction)

    def theirs(x):
        return torch.nn.functional.ctc_loss(x.log_softmax(2), torch.tensor(targets),
                                            torch.tensor(in_len), torch.tensor(tg_len),
                                            reduction=reduction)
    _compare(torch, ours, theirs, [logits], second_order=False)
    # gradient straight into log_probs: torch's extra exp(log_probs) term included
    lp = torch.tensor(logits).log_softmax(2).numpy()
    _compare(torch, lambda x: F.ctc_loss(x, targets.tolist(), in_len.tolist(), tg_len.tolist(),
                                         reduction=reduction),
             lambda x: torch.nn.functional.ctc_loss(x, torch.tensor(targets),
                                                    torch.tensor(in_len), torch.tensor(tg_len),
                                                    reduction=reduction), [lp],
             second_order=False)


def test_ctc_loss_blank_empty_targets_unbatched_and_impossible(torch):
    rng = np.random.default_rng(1)
    lp = torch.tensor(rng.standard_normal((5, 2, 4))).log_softmax(2).numpy()
    cases = [  # targets, input lengths, target lengths, kwargs
        (np.array([[3, 3], [0, 0]]), [5, 3], [2, 0], {"blank": 1}),    # repeat needs a blank
        (np.array([[2, 2, 2], [1, 2, 3]]), [4, 2], [3, 3], {"reduction": "none"}),  # impossible
        (np.array([[2, 2, 2], [1, 2, 3]]), [4, 2], [3, 3], {"zero_infinity": True}),
        (np.array([[2, 2, 2], [1, 2, 3]]), [4, 2], [3, 3],
         {"zero_infinity": True, "reduction": "none"}),
    ]
    for case in cases:
        def ours(x, targets=case[0], in_len=case[1], tg_len=case[2], kw=case[3]):
            return F.ctc_loss(x, gpuad.tensor(targets), in_len, tg_len, **kw)

        def theirs(x, targets=case[0], in_len=case[1], tg_len=case[2], kw=case[3]):
            return torch.nn.functional.ctc_loss(x, torch.tensor(targets), torch.tensor(in_len),
                                                torch.tensor(tg_len), **kw)
        _compare(torch, ours, theirs, [lp], second_order=False)
    single = lp[:, 0]  # unbatched (T, C) with a 1-D target
    _compare(torch, lambda x: F.ctc_loss(x, gpuad.tensor([1, 3]), 5, 2, reduction="none"),
             lambda x: torch.nn.functional.ctc_loss(x, torch.tensor([1, 3]), torch.tensor(5),
                                                    torch.tensor(2), reduction="none"), [single],
             second_order=False)
    loss = nn.CTCLoss(blank=0)(gpuad.tensor(lp, dtype=gpuad.float32), gpuad.tensor([[1, 2]] * 2),
                               [5, 5], [2, 2])
    assert loss.dtype == gpuad.float32 and repr(nn.CTCLoss()) == repr(torch.nn.CTCLoss())
    with pytest.raises(ValueError, match="blank 4"):
        F.ctc_loss(gpuad.tensor(lp), gpuad.tensor([[1]] * 2), [5, 5], [1, 1], blank=4)
    with pytest.raises(ValueError, match="input_lengths"):
        F.ctc_loss(gpuad.tensor(lp), gpuad.tensor([[1]] * 2), [6, 5], [1, 1])


def test_ctc_loss_runs_on_the_strict_backend():
    lp = F.log_softmax(gpuad.randn(4, 2, 3, device="strict", dtype=gpuad.float64), 2)
    lp.requires_grad_() if hasattr(lp, "requires_grad_") else None
    x = gpuad.randn(4, 2, 3, device="strict", dtype=gpuad.float64, requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x, 2), gpuad.tensor([1, 2, 1], device="strict"),
                      gpuad.tensor([4, 3]), gpuad.tensor([2, 1]))
    loss.backward()
    assert x.grad.device == gpuad.device("strict") and np.isfinite(loss.item())


LOSS_MODULES = [("SmoothL1Loss", {"beta": 0.5}), ("HuberLoss", {"delta": 2.0}),
                ("KLDivLoss", {"reduction": "batchmean", "log_target": True}),
                ("PoissonNLLLoss", {"log_input": False, "full": True}),
                ("GaussianNLLLoss", {"full": True}), ("CosineEmbeddingLoss", {"margin": 0.1}),
                ("MarginRankingLoss", {}), ("HingeEmbeddingLoss", {}), ("SoftMarginLoss", {}),
                ("MultiLabelSoftMarginLoss", {"weight": np.arange(1.0, 5.0)}),
                ("MultiMarginLoss", {"p": 2, "weight": np.linspace(0.5, 1, 5)}),
                ("TripletMarginLoss", {"swap": True}), ("CTCLoss", {"zero_infinity": True}),
                ("MSELoss", {"reduction": "sum"}), ("L1Loss", {}), ("NLLLoss", {}),
                ("CrossEntropyLoss", {"label_smoothing": 0.1}), ("BCELoss", {}),
                ("BCEWithLogitsLoss", {"pos_weight": np.ones(3)})]
_MODULE_FUNCTIONS = {"SmoothL1Loss": "smooth_l1_loss", "HuberLoss": "huber_loss",
                     "KLDivLoss": "kl_div", "PoissonNLLLoss": "poisson_nll_loss",
                     "GaussianNLLLoss": "gaussian_nll_loss",
                     "CosineEmbeddingLoss": "cosine_embedding_loss",
                     "MarginRankingLoss": "margin_ranking_loss",
                     "HingeEmbeddingLoss": "hinge_embedding_loss",
                     "SoftMarginLoss": "soft_margin_loss",
                     "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
                     "MultiMarginLoss": "multi_margin_loss",
                     "TripletMarginLoss": "triplet_margin_loss"}


@pytest.mark.parametrize("name,kwargs", LOSS_MODULES, ids=[n for n, _ in LOSS_MODULES])
def test_loss_modules_match_torch(torch, name, kwargs):
    ours = getattr(nn, name)(**{k: gpuad.tensor(v) if isinstance(v, np.ndarray) else v
                                for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                        for k, v in kwargs.items()})
    assert repr(ours) == repr(theirs)
    state, tstate = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(tstate)
    assert [tuple(v.shape) for v in state.values()] == [tuple(v.shape) for v in tstate.values()]
    assert ours.reduction == theirs.reduction
    if name in _MODULE_FUNCTIONS:
        arrays = _loss_inputs(_MODULE_FUNCTIONS[name], np.random.default_rng(5))
        if name == "KLDivLoss":
            arrays[1] = np.log(arrays[1] + 0.05)
        _close(ours(*[gpuad.tensor(a) for a in arrays]),
               theirs(*[torch.tensor(a) for a in arrays]))


def test_loss_modules_take_torchs_legacy_positional_arguments(torch):
    with pytest.warns(UserWarning):
        ours = nn.MSELoss(None, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours.reduction == torch.nn.MSELoss(None, False).reduction == "none"
        assert nn.CrossEntropyLoss(None, None, 3).ignore_index == 3


# ---- nn.utils ----------------------------------------------------------------------------------
def _twins(torch, make_ours, make_theirs):
    ours, theirs = make_ours(), make_theirs()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_parameters_to_vector_and_back(torch):
    ours, theirs = _twins(torch, lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)),
                          lambda: torch.nn.Sequential(torch.nn.Linear(3, 4),
                                                      torch.nn.Linear(4, 2)))
    v = nn.utils.parameters_to_vector(ours.parameters())
    tv = torch.nn.utils.parameters_to_vector(theirs.parameters())
    _close(v, tv)
    (v * gpuad.tensor(np.arange(26.0))).sum().backward()
    np.testing.assert_array_equal(ours[0].weight.grad.numpy().ravel(), np.arange(12.0))
    new = np.linspace(-1, 1, 26)
    shared = gpuad.tensor(new)
    nn.utils.vector_to_parameters(shared, ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        _close(p, tp)
        assert isinstance(p, nn.Parameter) and p.requires_grad
    with gpuad.no_grad():
        shared.mul_(2)  # the parameters now view the vector, as in torch
    np.testing.assert_allclose(ours[1].bias.detach().numpy(), 2 * new[-2:])
    with pytest.raises(TypeError, match="expected a gpuad.Tensor"):
        nn.utils.vector_to_parameters(new, ours.parameters())


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_parametrization_matches_torch(torch, dim):
    gpuad.manual_seed(0)
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4), dim=dim)
    ours = nn.utils.parametrizations.weight_norm(nn.Linear(3, 4), dim=dim)
    assert type(ours).__name__ == type(theirs).__name__ == "ParametrizedLinear"
    tstate = theirs.state_dict()
    assert list(ours.state_dict()) == list(tstate)
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [
        tuple(v.shape) for v in tstate.values()]
    ours.load_state_dict({k: v.numpy() * 1.5 for k, v in tstate.items()})
    with torch.no_grad():
        for v in theirs.parameters():
            v.mul_(1.5)
    x = np.random.default_rng(0).standard_normal((2, 3))
    y, ty = ours(gpuad.tensor(x, dtype=gpuad.float32)), theirs(torch.tensor(x, dtype=torch.float32))
    _close(y, ty, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        _close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)
    nn.utils.parametrize.remove_parametrizations(ours, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight")
    assert type(ours) is nn.Linear and list(ours.state_dict()) == list(theirs.state_dict())
    _close(ours.weight, theirs.weight, rtol=1e-5, atol=1e-6)


def test_spectral_norm_power_iteration_matches_torch(torch):
    theirs = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(5, 4).double())
    ours = nn.utils.parametrizations.spectral_norm(nn.Linear(5, 4).double())
    tstate = theirs.state_dict()
    assert list(ours.state_dict()) == list(tstate) == [
        "bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
        "parametrizations.weight.0._v"]
    ours.load_state_dict({k: v.numpy() for k, v in tstate.items()})  # torch's u, v
    x = np.random.default_rng(0).standard_normal((3, 5))
    for _ in range(2):  # training: u and v move one step per forward
        y, ty = ours(gpuad.tensor(x)), theirs(torch.tensor(x))
        _close(y, ty)
        y.sum().backward()
        ty.sum().backward()
    _close(ours.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad)
    for key in ("parametrizations.weight.0._u", "parametrizations.weight.0._v"):
        _close(ours.state_dict()[key], theirs.state_dict()[key])
    ours.eval(), theirs.eval()
    u = ours.state_dict()["parametrizations.weight.0._u"].numpy().copy()
    _close(ours(gpuad.tensor(x)), theirs(torch.tensor(x)))
    np.testing.assert_array_equal(ours.state_dict()["parametrizations.weight.0._u"].numpy(), u)
    sigma = np.linalg.svd(ours.parametrizations.weight.original.detach().numpy())[1][0]
    fresh = nn.utils.parametrizations.spectral_norm(nn.Linear(5, 4).double())
    with gpuad.no_grad():
        fresh.parametrizations.weight.original.copy_(ours.parametrizations.weight.original)
        for _ in range(30):
            fresh(gpuad.tensor(x))
    assert abs(np.linalg.svd(fresh.weight.detach().numpy())[1][0] - 1) < 1e-6 and sigma > 0


def test_spectral_norm_of_a_transposed_conv_uses_dim_1(torch):
    ours = nn.utils.parametrizations.spectral_norm(nn.ConvTranspose2d(2, 3, 3))
    theirs = torch.nn.utils.parametrizations.spectral_norm(torch.nn.ConvTranspose2d(2, 3, 3))
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [
        tuple(v.shape) for v in theirs.state_dict().values()]


def test_old_style_weight_norm_matches_torch(torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in torch, in favour of parametrizations
        theirs = torch.nn.utils.weight_norm(torch.nn.Linear(3, 4).double(), dim=1)
    ours = nn.utils.weight_norm(nn.Linear(3, 4).double(), dim=1)
    tstate = theirs.state_dict()
    assert list(ours.state_dict()) == list(tstate) == ["bias", "weight_g", "weight_v"]
    ours.load_state_dict({k: v.numpy() for k, v in tstate.items()})
    _close(ours.weight, theirs.weight)
    x = np.random.default_rng(0).standard_normal((2, 3))
    ours(gpuad.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    _close(ours.weight_g.grad, theirs.weight_g.grad)
    _close(ours.weight_v.grad, theirs.weight_v.grad)
    nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert type(ours) is nn.Linear and list(ours.state_dict()) == list(theirs.state_dict())
    _close(ours.weight, theirs.weight)


def test_parametrize_register_cached_and_assign():
    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(0, 1)

    layer = nn.Linear(3, 3)
    original = layer.weight
    nn.utils.parametrize.register_parametrization(layer, "weight", Symmetric())
    assert layer.parametrizations.weight.original is original  # optimizers keep working
    w = layer.weight.detach().numpy()
    np.testing.assert_array_equal(w, w.T)
    with nn.utils.parametrize.cached():
        assert layer.weight is layer.weight
    assert layer.weight is not layer.weight
    layer.weight = gpuad.eye(3)  # through right_inverse (none here: the original is set)
    np.testing.assert_array_equal(original.detach().numpy(), np.eye(3))
    assert nn.utils.parametrize.is_parametrized(layer, "weight")
    assert nn.utils.parametrize.type_before_parametrizations(layer) is nn.Linear
    with pytest.raises(ValueError, match="no parameter, buffer"):
        nn.utils.parametrize.register_parametrization(layer, "nothing", Symmetric())


# ---- dtype checks ------------------------------------------------------------------------------
def _layers(lib):
    return [
        ("Linear", lambda: lib.Linear(3, 4), (2, 3)),
        ("Conv2d", lambda: lib.Conv2d(2, 3, 3), (1, 2, 5, 5)),
        ("ConvTranspose2d", lambda: lib.ConvTranspose2d(2, 3, 3), (1, 2, 4, 4)),
        ("BatchNorm1d", lambda: lib.BatchNorm1d(3), (4, 3)),
        ("BatchNorm1d-eval", lambda: lib.BatchNorm1d(3).eval(), (4, 3)),
        ("BatchNorm2d", lambda: lib.BatchNorm2d(3), (2, 3, 2, 2)),
        ("BatchNorm1d-bare", lambda: lib.BatchNorm1d(3, affine=False,
                                                     track_running_stats=False), (4, 3)),
        ("LayerNorm", lambda: lib.LayerNorm(3), (4, 3)),
        ("LayerNorm-bare", lambda: lib.LayerNorm(3, elementwise_affine=False), (4, 3)),
        ("GroupNorm", lambda: lib.GroupNorm(2, 4), (2, 4, 3)),
        ("RMSNorm", lambda: lib.RMSNorm(3), (4, 3)),
        ("RNN", lambda: lib.RNN(3, 4), (2, 1, 3)), ("LSTM", lambda: lib.LSTM(3, 4), (2, 1, 3)),
        ("GRU", lambda: lib.GRU(3, 4), (2, 1, 3)), ("GRUCell", lambda: lib.GRUCell(3, 4), (2, 3)),
        ("LSTMCell", lambda: lib.LSTMCell(3, 4), (2, 3)),
        ("MultiheadAttention", lambda: lib.MultiheadAttention(4, 2), (2, 1, 4)),
        ("PReLU", lambda: lib.PReLU(), (2, 3)),
    ]


def _call(name, layer, x):
    out = layer(x, x, x) if name == "MultiheadAttention" else layer(x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("dtype", ["float64", "float16", "int64"])
@pytest.mark.parametrize("index", range(18), ids=[n for n, _, _ in _layers(nn)])
def test_layers_refuse_mixed_dtypes_like_torch(torch, index, dtype):
    name, make, shape = _layers(nn)[index]
    _, make_torch, _ = _layers(torch.nn)[index]
    data = np.random.default_rng(0).uniform(0, 3, shape).astype(dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's RMSNorm warns about the mix, then runs
            expected = _call(name, make_torch(), torch.tensor(data))
    except (RuntimeError, ValueError, NotImplementedError) as error:
        expected = error
    if isinstance(expected, Exception):
        if isinstance(expected, NotImplementedError):
            pytest.skip(f"torch has no {dtype} kernel here: {expected}")
        kind = ValueError if name in ("RNN", "LSTM", "GRU") else RuntimeError
        with pytest.raises(kind, match=f"{name.split('-')[0]}.*has dtype {dtype}.*"
                                       f"convert it with .to\\(gpuad.float32\\)"):
            _call(name, make(), gpuad.tensor(data))
    else:
        out = _call(name, make(), gpuad.tensor(data))
        assert str(out.dtype) == str(expected.dtype).replace("torch.", "")


def test_dtype_checks_under_autocast_and_for_states(torch):
    layer = nn.Linear(3, 4)
    with gpuad.autocast("cpu"):
        assert layer(gpuad.randn(2, 3)).dtype == gpuad.float16
        assert layer(gpuad.randn(2, 3).half()).dtype == gpuad.float16
        assert nn.LayerNorm(3)(gpuad.randn(2, 3).half()).dtype == gpuad.float32
        with pytest.raises(RuntimeError, match="float64"):
            layer(gpuad.randn(2, 3, dtype=gpuad.float64))  # never cast: torch raises too
    rnn = nn.RNN(3, 4).double()
    with pytest.raises(RuntimeError, match="initial state hx has dtype float32, the input "
                                           "float64"):
        rnn(gpuad.randn(2, 1, 3, dtype=gpuad.float64), gpuad.zeros(1, 1, 4))
    with pytest.raises(RuntimeError, match="linear: the input has dtype float64"):
        F.linear(gpuad.randn(2, 3, dtype=gpuad.float64), gpuad.randn(4, 3))
    mixed = nn.BatchNorm1d(3)
    mixed(gpuad.randn(4, 3).half())  # torch's mixed precision: float32 statistics
    assert mixed.running_mean.dtype == gpuad.float32 and math.isfinite(
        mixed.running_var.sum().item())


def test_binary_cross_entropy_signatures_are_torchs():
    torch = pytest.importorskip("torch")
    import inspect

    import gpuad.nn.functional as F
    for name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        ours = list(inspect.signature(getattr(F, name)).parameters)
        theirs = list(inspect.signature(getattr(torch.nn.functional, name)).parameters)
        assert ours == theirs, name


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "mse_loss", "l1_loss"])
def test_loss_signatures_are_torchs(torch, name):
    import inspect

    def params(f):
        return [(k, p.kind, p.default) for k, p in inspect.signature(f).parameters.items()]
    assert params(getattr(F, name)) == params(getattr(torch.nn.functional, name))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_regression_losses_match_torch(torch, name, reduction):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    w = np.abs(rng.standard_normal((3, 4))) + 0.1
    ours = getattr(F, name)(gpuad.tensor(x), gpuad.tensor(y), reduction=reduction,
                            weight=gpuad.tensor(w))
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(y),
                                                 reduction=reduction, weight=torch.tensor(w))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert gpuad.testing.gradcheck(
        lambda a, v: getattr(F, name)(a, gpuad.tensor(y), reduction=reduction, weight=v),
        (gpuad.tensor(x, requires_grad=True), gpuad.tensor(w, requires_grad=True)))
    with pytest.raises(ValueError, match=f"{name}: weight of shape \\(4,\\) must have the input's"):
        getattr(F, name)(gpuad.tensor(x), gpuad.tensor(y), weight=gpuad.ones(4))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        legacy = getattr(F, name)(gpuad.tensor(x), gpuad.tensor(y), size_average=False)
    assert legacy.item() == getattr(F, name)(gpuad.tensor(x), gpuad.tensor(y),
                                             reduction="sum").item()
