"""gpuad.distributions against torch.distributions: log_prob, entropy, mean, variance, cdf/icdf
and their gradients in every parameter, reparameterised samples' gradients for the same noise,
kl_divergence of torch's registered pairs with gradients, shapes (batch, event, expand, sample)
and argument validation; samples checked statistically; one pass on the strict backend."""
import re

import numpy as np
import pytest

import gpuad
import gpuad.distributions as D

F64 = gpuad.float64


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def host(t):
    return gpuad.backend.asnumpy(t.detach().array)


def _lower(rng, *batch, n=3):
    L = np.tril(rng.uniform(-0.5, 0.5, batch + (n, n)))
    idx = np.arange(n)
    L[..., idx, idx] = rng.uniform(0.5, 1.5, batch + (n,))
    return L


def _spd(rng, *batch, n=3):
    L = _lower(rng, *batch, n=n)
    return L @ np.swapaxes(L, -1, -2) + 0.1 * np.eye(n)


def _onehot(index, n):
    return np.eye(n)[index]


# name: (class name, parameters (float64 arrays), keyword names, values to score: rng -> array)
def cases():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.2, 1.0, (2, 3, 4))
    simplex_value = rng.dirichlet(np.ones(4), (5, 2))
    return {
        "Normal": ("Normal", {"loc": rng.normal(size=(2, 3)), "scale": rng.uniform(0.5, 2, (2, 3))},
                   rng.normal(size=(4, 2, 3))),
        "LogNormal": ("LogNormal", {"loc": rng.normal(size=(2, 3)),
                                    "scale": rng.uniform(0.5, 1.5, (2, 3))},
                      rng.uniform(0.2, 3, (4, 2, 3))),
        "Laplace": ("Laplace", {"loc": rng.normal(size=(3,)), "scale": rng.uniform(0.5, 2, (3,))},
                    rng.normal(size=(4, 3)) + 0.05),
        "Uniform": ("Uniform", {"low": rng.uniform(-2, -1, (3,)), "high": rng.uniform(1, 2, (3,))},
                    rng.uniform(-0.9, 0.9, (4, 3))),
        "Bernoulli(probs)": ("Bernoulli", {"probs": rng.uniform(0.1, 0.9, (2, 3))},
                             rng.integers(0, 2, (4, 2, 3)).astype(float)),
        "Bernoulli(logits)": ("Bernoulli", {"logits": rng.normal(size=(2, 3))},
                              rng.integers(0, 2, (4, 2, 3)).astype(float)),
        "Categorical(probs)": ("Categorical", {"probs": probs}, rng.integers(0, 4, (5, 2, 3))),
        "Categorical(logits)": ("Categorical", {"logits": rng.normal(size=(2, 3, 4))},
                                rng.integers(0, 4, (5, 2, 3))),
        "OneHotCategorical": ("OneHotCategorical", {"probs": probs},
                              _onehot(rng.integers(0, 4, (5, 2, 3)), 4)),
        "MultivariateNormal(scale_tril)": (
            "MultivariateNormal", {"loc": rng.normal(size=(2, 3)), "scale_tril": _lower(rng, 2)},
            rng.normal(size=(4, 2, 3))),
        "MultivariateNormal(covariance_matrix)": (
            "MultivariateNormal", {"loc": rng.normal(size=(3,)), "covariance_matrix": _spd(rng, 2)},
            rng.normal(size=(4, 2, 3))),
        "MultivariateNormal(precision_matrix)": (
            "MultivariateNormal", {"loc": rng.normal(size=(2, 3)), "precision_matrix": _spd(rng)},
            rng.normal(size=(4, 2, 3))),
        "Beta": ("Beta", {"concentration1": rng.uniform(0.5, 3, (3,)),
                          "concentration0": rng.uniform(0.5, 3, (3,))},
                 rng.uniform(0.05, 0.95, (4, 3))),
        "Gamma": ("Gamma", {"concentration": rng.uniform(0.5, 3, (2, 3)),
                            "rate": rng.uniform(0.5, 2, (2, 3))}, rng.uniform(0.1, 4, (4, 2, 3))),
        "Dirichlet": ("Dirichlet", {"concentration": rng.uniform(0.5, 3, (2, 4))}, simplex_value),
    }


CASES = cases()
CDF = {"Normal", "LogNormal", "Laplace", "Uniform"}
ICDF = {"Normal", "LogNormal", "Laplace", "Uniform"}


def build(module, name, params, requires_grad=False, tensor=None):
    made = {k: tensor(v, requires_grad) for k, v in params.items()}
    return getattr(module, name)(**made), made


def pair(torch, case):
    name, params, value = CASES[case]
    g, gp = build(D, name, params, True,
                  lambda v, r: gpuad.tensor(v, dtype=F64, requires_grad=r))
    t, tp = build(torch.distributions, name, params, True,
                  lambda v, r: torch.tensor(v, dtype=torch.float64, requires_grad=r))
    return g, gp, t, tp, value


def close(a, b, **kw):
    np.testing.assert_allclose(host(a), b.detach().numpy(), rtol=1e-6, atol=1e-9, **kw)


def grads_agree(g_out, g_params, t_out, t_params, weights):
    """d(sum(out * weights)) / d(every parameter), gpuad against torch."""
    torch = pytest.importorskip("torch")
    names = list(g_params)
    gg = gpuad.grad((g_out * gpuad.tensor(weights, dtype=F64)).sum(),
                    [g_params[k] for k in names], allow_unused=True)
    tg = torch.autograd.grad((t_out * torch.tensor(weights)).sum(), [t_params[k] for k in names],
                             allow_unused=True)
    for k, a, b in zip(names, gg, tg):
        if b is None:
            assert a is None or np.allclose(host(a), 0), k
            continue
        np.testing.assert_allclose(host(a), b.numpy(), rtol=1e-5, atol=1e-8, err_msg=k)


@pytest.mark.parametrize("case", CASES)
def test_log_prob_and_its_gradients_match_torch(torch, case):
    g, gp, t, tp, value = pair(torch, case)
    gv = gpuad.tensor(value, dtype=F64 if value.dtype.kind == "f" else gpuad.int64)
    tv = torch.tensor(value)
    g_lp, t_lp = g.log_prob(gv), t.log_prob(tv)
    assert g_lp.shape == tuple(t_lp.shape)
    close(g_lp, t_lp)
    grads_agree(g_lp, gp, t_lp, tp, np.random.default_rng(1).normal(size=tuple(t_lp.shape)))


@pytest.mark.parametrize("case", CASES)
def test_statistics_match_torch(torch, case):
    g, gp, t, tp, _ = pair(torch, case)
    weights = np.random.default_rng(2).normal(size=tuple(t.batch_shape))
    g_h, t_h = g.entropy(), t.entropy()
    close(g_h, t_h)
    grads_agree(g_h, gp, t_h, tp, weights)
    for stat in ("mean", "variance", "stddev", "mode"):
        try:
            expected = getattr(t, stat)
        except NotImplementedError:
            continue
        close(getattr(g, stat), expected, equal_nan=True)


@pytest.mark.parametrize("case", sorted(CDF))
def test_cdf_and_icdf_match_torch(torch, case):
    g, gp, t, tp, value = pair(torch, case)
    g_c, t_c = g.cdf(gpuad.tensor(value, dtype=F64)), t.cdf(torch.tensor(value))
    close(g_c, t_c)
    grads_agree(g_c, gp, t_c, tp, np.ones(tuple(t_c.shape)))
    q = np.random.default_rng(3).uniform(0.05, 0.95, tuple(t_c.shape))
    g_q, t_q = g.icdf(gpuad.tensor(q, dtype=F64)), t.icdf(torch.tensor(q))
    close(g_q, t_q)
    grads_agree(g_q, gp, t_q, tp, np.ones(tuple(t_c.shape)))


@pytest.mark.parametrize("case", CASES)
def test_shapes_and_expand_match_torch(torch, case):
    g, _, t, _, value = pair(torch, case)
    assert (g.batch_shape, g.event_shape) == (tuple(t.batch_shape), tuple(t.event_shape))
    assert g.sample((3,)).shape == tuple(t.sample((3,)).shape)
    assert g.sample().shape == tuple(t.sample().shape)
    if t.has_rsample:
        assert g.has_rsample and g.rsample((2,)).shape == tuple(t.rsample((2,)).shape)
    ge, te = g.expand((5,) + g.batch_shape), t.expand((5,) + tuple(t.batch_shape))
    assert (ge.batch_shape, ge.event_shape) == (tuple(te.batch_shape), tuple(te.event_shape))
    gv = gpuad.tensor(value, dtype=F64 if value.dtype.kind == "f" else gpuad.int64)
    g_lp, t_lp = ge.log_prob(gv[:1]), te.log_prob(torch.tensor(value)[:1])
    assert g_lp.shape == tuple(t_lp.shape)
    close(g_lp, t_lp)
    gi, ti = D.Independent(g, 1), torch.distributions.Independent(t, 1)
    assert (gi.batch_shape, gi.event_shape) == (tuple(ti.batch_shape), tuple(ti.event_shape))
    close(gi.log_prob(gv), ti.log_prob(torch.tensor(value)))
    close(gi.entropy(), ti.entropy())


# ---- reparameterised samples: gpuad's draw, torch's transform of the same noise ------------------
def _noise_transforms(torch):
    """case -> (noise recovered from a gpuad sample x and the gpuad parameters (numpy), torch's
    sample as a function of that noise and torch's parameters)."""
    tl = torch.linalg
    return {
        "Normal": (lambda x, p: (x - p["loc"]) / p["scale"],
                   lambda e, p: p["loc"] + e * p["scale"]),
        "LogNormal": (lambda x, p: (np.log(x) - p["loc"]) / p["scale"],
                      lambda e, p: torch.exp(p["loc"] + e * p["scale"])),
        "Laplace": (lambda x, p: (x - p["loc"]) / p["scale"],
                    lambda e, p: p["loc"] + e * p["scale"]),
        "Uniform": (lambda x, p: (x - p["low"]) / (p["high"] - p["low"]),
                    lambda e, p: p["low"] + e * (p["high"] - p["low"])),
        "MultivariateNormal(scale_tril)": (
            lambda x, p: np.linalg.solve(p["scale_tril"], (x - p["loc"])[..., None])[..., 0],
            lambda e, p: p["loc"] + (p["scale_tril"] @ e[..., None])[..., 0]),
        "MultivariateNormal(covariance_matrix)": (
            lambda x, p: np.linalg.solve(np.linalg.cholesky(p["covariance_matrix"]),
                                         (x - p["loc"])[..., None])[..., 0],
            lambda e, p: p["loc"] + (tl.cholesky(p["covariance_matrix"]) @ e[..., None])[..., 0]),
    }


@pytest.mark.parametrize("case", ["Normal", "LogNormal", "Laplace", "Uniform",
                                  "MultivariateNormal(scale_tril)",
                                  "MultivariateNormal(covariance_matrix)"])
def test_rsample_gradients_are_torchs_for_the_same_noise(torch, case):
    noise_of, transform = _noise_transforms(torch)[case]
    g, gp, t, tp, _ = pair(torch, case)
    x = g.rsample((4,))
    eps = noise_of(host(x), {k: host(v) for k, v in gp.items()})
    expected = transform(torch.tensor(eps), tp)
    close(x, expected)
    grads_agree(x, gp, expected, tp, np.random.default_rng(4).normal(size=x.shape))


def test_gamma_rsample_has_torchs_implicit_gradient(torch):
    rng = np.random.default_rng(5)
    alpha = np.concatenate([rng.uniform(0.05, 30, 300), [0.3, 9.0, 20.0, 100.0]])
    rate = rng.uniform(0.5, 2, alpha.shape)
    a, r = (gpuad.tensor(v, dtype=F64, requires_grad=True) for v in (alpha, rate))
    x = D.Gamma(a, r).rsample()
    ga, gr = gpuad.grad(x.sum(), [a, r])
    standard = host(x) * rate
    expected = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(standard)).numpy()
    np.testing.assert_allclose(host(ga), expected / rate, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(host(gr), -host(x) / rate, rtol=1e-12)


@pytest.mark.parametrize("case", ["Dirichlet", "Beta"])
def test_dirichlet_and_beta_rsample_gradients_are_unbiased(case):
    # normalised gamma draws: per sample not torch's gradients, in expectation the mean's
    a = gpuad.tensor([0.7, 2.0, 4.5], dtype=F64, requires_grad=True)
    d = D.Dirichlet(a) if case == "Dirichlet" else D.Beta(a[0], a[1])
    w = gpuad.tensor([1.0, -2.0, 0.5], dtype=F64) if case == "Dirichlet" else 1.0
    estimate = gpuad.grad((d.rsample((20000,)) * w).sum() / 20000, [a], retain_graph=True,
                          allow_unused=True)[0]
    exact = gpuad.grad((d.mean * w).sum(), [a], allow_unused=True)[0]
    np.testing.assert_allclose(host(estimate), host(exact), atol=0.02)


# ---- kl_divergence -------------------------------------------------------------------------------
def _kl_cases():
    rng = np.random.default_rng(6)
    pos = lambda *s: rng.uniform(0.5, 2.5, s)  # noqa: E731
    return [
        ("Normal", {"loc": rng.normal(size=3), "scale": pos(3)}, "Normal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Normal", {"loc": rng.normal(size=3), "scale": pos(3)}, "Laplace",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Laplace", {"loc": rng.normal(size=3), "scale": pos(3)}, "Laplace",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Laplace", {"loc": rng.normal(size=3), "scale": pos(3)}, "Normal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("LogNormal", {"loc": rng.normal(size=3), "scale": pos(3)}, "LogNormal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Uniform", {"low": -pos(3), "high": pos(3)}, "Uniform",
         {"low": -pos(3) - 2, "high": pos(3) + 2}),
        ("Uniform", {"low": -pos(3), "high": pos(3)}, "Normal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Uniform", {"low": pos(3) / 10, "high": pos(3)}, "Gamma",
         {"concentration": pos(3), "rate": pos(3)}),
        ("Uniform", {"low": rng.uniform(0.1, 0.4, 3), "high": rng.uniform(0.5, 0.9, 3)}, "Beta",
         {"concentration1": pos(3), "concentration0": pos(3)}),
        ("Bernoulli", {"probs": rng.uniform(0.1, 0.9, 3)}, "Bernoulli",
         {"probs": rng.uniform(0.1, 0.9, 3)}),
        ("Categorical", {"probs": pos(2, 4)}, "Categorical", {"logits": rng.normal(size=(2, 4))}),
        ("OneHotCategorical", {"logits": rng.normal(size=(2, 4))}, "OneHotCategorical",
         {"probs": pos(2, 4)}),
        ("Beta", {"concentration1": pos(3), "concentration0": pos(3)}, "Beta",
         {"concentration1": pos(3), "concentration0": pos(3)}),
        ("Beta", {"concentration1": pos(3), "concentration0": pos(3)}, "Normal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Beta", {"concentration1": pos(3), "concentration0": pos(3)}, "Gamma",
         {"concentration": pos(3), "rate": pos(3)}),
        ("Beta", {"concentration1": pos(3), "concentration0": pos(3)}, "Uniform",
         {"low": -pos(3), "high": pos(3) + 1}),
        ("Gamma", {"concentration": pos(3), "rate": pos(3)}, "Gamma",
         {"concentration": pos(3), "rate": pos(3)}),
        ("Gamma", {"concentration": pos(3), "rate": pos(3)}, "Normal",
         {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Dirichlet", {"concentration": pos(2, 4)}, "Dirichlet", {"concentration": pos(2, 4)}),
        ("MultivariateNormal", {"loc": rng.normal(size=(2, 3)), "scale_tril": _lower(rng, 2)},
         "MultivariateNormal", {"loc": rng.normal(size=3), "covariance_matrix": _spd(rng)}),
    ]


KL_CASES = _kl_cases()


@pytest.mark.parametrize("p_name,p_params,q_name,q_params", KL_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in KL_CASES])
def test_kl_divergence_and_its_gradients_match_torch(torch, p_name, p_params, q_name, q_params):
    def make(module, tensor):
        p, pp = build(module, p_name, p_params, True, tensor)
        q, qp = build(module, q_name, q_params, True, tensor)
        named = {"p." + k: v for k, v in pp.items()}
        return p, q, {**named, **{"q." + k: v for k, v in qp.items()}}
    gp, gq, g_params = make(D, lambda v, r: gpuad.tensor(v, dtype=F64, requires_grad=r))
    tp, tq, t_params = make(torch.distributions,
                            lambda v, r: torch.tensor(v, dtype=torch.float64, requires_grad=r))
    g_kl, t_kl = D.kl_divergence(gp, gq), torch.distributions.kl_divergence(tp, tq)
    close(g_kl, t_kl)
    grads_agree(g_kl, g_params, t_kl, t_params, np.ones(tuple(t_kl.shape)))


def test_kl_infinite_pairs_independent_and_unregistered(torch):
    n, g = D.Normal(gpuad.zeros(2), 1.0), D.Gamma(gpuad.ones(2), 1.0)
    assert np.isinf(host(D.kl_divergence(n, g))).all()
    assert np.isinf(host(D.kl_divergence(D.Laplace(0.0, 1.0), D.Uniform(0.0, 1.0))))
    assert np.isinf(host(D.kl_divergence(g, D.Beta(1.0, 2.0)))).all()
    u = D.kl_divergence(D.Uniform(0.0, 2.0), D.Uniform(0.5, 3.0))  # p's support sticks out
    assert np.isinf(host(u))
    loc, scale = gpuad.zeros(2, 3), gpuad.ones(2, 3)
    ind = D.kl_divergence(D.Independent(D.Normal(loc, scale), 1),
                          D.Independent(D.Normal(loc + 1, scale), 1))
    np.testing.assert_allclose(host(ind), [1.5, 1.5], rtol=1e-6)
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Gamma(1.0, 1.0), D.Laplace(0.0, 1.0))
    b = D.kl_divergence(D.Bernoulli(gpuad.tensor([0.0, 1.0, 0.5])),
                        D.Bernoulli(gpuad.tensor([0.5, 0.5, 0.0])))
    t = torch.distributions.kl_divergence(torch.distributions.Bernoulli(torch.tensor([0., 1, .5])),
                                          torch.distributions.Bernoulli(torch.tensor([.5, .5, 0.])))
    np.testing.assert_allclose(host(b), t.numpy(), rtol=1e-6)

    class MyNormal(D.Normal):
        pass

    @D.register_kl(MyNormal, D.Normal)
    def _always_seven(p, q):
        return gpuad.tensor(7.0)
    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(0.0, 1.0)).item() == 7.0
    assert D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(0.0, 1.0)).item() == 0.0


# ---- validation ----------------------------------------------------------------------------------
def _message_parts(error):
    text = str(error)
    found = re.search(r"(Expected parameter \w+).*to satisfy the constraint (.*), but found", text,
                      re.S)
    return found.groups() if found else text


INVALID = [
    ("Normal", (0.0, -1.0)), ("Normal", (float("nan"), 1.0)), ("LogNormal", (0.0, 0.0)),
    ("Laplace", (0.0, -2.0)), ("Uniform", (1.0, 0.0)), ("Bernoulli", (1.5,)),
    ("Categorical", ([-0.1, 1.1],)), ("Beta", (1.0, -1.0)), ("Gamma", (-1.0, 1.0)),
    ("Dirichlet", ([1.0, -1.0],)), ("MultivariateNormal", ([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])),
]


@pytest.mark.parametrize("name,args", INVALID, ids=[f"{n}{a}" for n, a in INVALID])
def test_invalid_parameters_raise_torchs_value_error(torch, name, args):
    def as_tensor(module, a):
        if isinstance(a, list):
            return module.tensor(a, dtype=module.float64)
        return a if name in ("Normal", "LogNormal", "Laplace", "Uniform", "Beta", "Gamma",
                             "Bernoulli") else module.tensor(a)
    with pytest.raises(ValueError) as expected:
        getattr(torch.distributions, name)(*[as_tensor(torch, a) for a in args])
    with pytest.raises(ValueError) as got:
        getattr(D, name)(*[as_tensor(gpuad, a) for a in args])
    assert _message_parts(got.value) == _message_parts(expected.value)
    if name != "MultivariateNormal":  # whose Cholesky factorisation fails anyway
        getattr(D, name)(*[as_tensor(gpuad, a) for a in args], validate_args=False)


def test_construction_and_value_errors_match_torch(torch):
    T, G = torch.distributions, D
    for make in (lambda m, t: m.Bernoulli(), lambda m, t: m.Bernoulli(t(0.5), t(0.0)),
                 lambda m, t: m.Categorical(t(0.5)), lambda m, t: m.Dirichlet(t(1.0)),
                 lambda m, t: m.MultivariateNormal(t([0.0, 0.0])),
                 lambda m, t: m.MultivariateNormal(t(0.0), scale_tril=t([[1.0]])),
                 lambda m, t: m.Independent(m.Normal(0.0, 1.0), 1),
                 lambda m, t: m.Normal(t([0.0, 0.0]), 1.0).log_prob(t([1.0, 2.0, 3.0])),
                 lambda m, t: m.Beta(1.0, 1.0).log_prob(t(2.0)),
                 lambda m, t: m.Categorical(t([0.5, 0.5])).log_prob(t(3)),
                 lambda m, t: m.Normal(0.0, 1.0).log_prob(1.0)):
        with pytest.raises(ValueError) as expected:
            make(T, torch.tensor)
        with pytest.raises(ValueError) as got:
            make(G, gpuad.tensor)
        first = str(expected.value).split(":")[0].split("(")[0]
        assert str(got.value).startswith(first), (got.value, expected.value)


# ---- sampling, statistically ---------------------------------------------------------------------
@pytest.mark.parametrize("d", [
    D.Normal(gpuad.tensor([0.0, 3.0]), gpuad.tensor([1.0, 0.5])),
    D.LogNormal(0.2, 0.4), D.Laplace(1.0, 2.0), D.Uniform(-1.0, 3.0),
    D.Bernoulli(gpuad.tensor([0.2, 0.7])), D.Gamma(gpuad.tensor([0.3, 1.0, 4.0]), 2.0),
    D.Beta(gpuad.tensor([0.5, 2.0]), gpuad.tensor([0.5, 5.0])),
    D.Dirichlet(gpuad.tensor([0.4, 1.0, 3.0])),
    D.Categorical(gpuad.tensor([0.1, 0.2, 0.7])), D.OneHotCategorical(gpuad.tensor([0.3, 0.7])),
    D.MultivariateNormal(gpuad.tensor([1.0, -1.0]),
                         covariance_matrix=gpuad.tensor([[2.0, 0.6], [0.6, 1.0]])),
], ids=lambda d: type(d).__name__)
def test_samples_have_the_distributions_moments(d):
    x = host(d.sample((40000,))).astype(np.float64)
    if isinstance(d, D.Categorical):
        np.testing.assert_allclose(np.bincount(x.astype(int), minlength=3) / len(x),
                                   host(d.probs), atol=0.01)
        return
    np.testing.assert_allclose(x.mean(0), host(d.mean), atol=0.03, rtol=0.02)
    np.testing.assert_allclose(x.var(0), host(d.variance), atol=0.03, rtol=0.05)
    if isinstance(d, D.MultivariateNormal):
        np.testing.assert_allclose(np.cov(x.T), host(d.covariance_matrix), atol=0.05)
    assert d.support.check(gpuad.tensor(x, dtype=d.mean.dtype)).all().item()


def test_sample_has_no_gradient_and_rsample_has_one():
    loc = gpuad.tensor([0.0, 1.0], requires_grad=True)
    assert not D.Normal(loc, 1.0).sample().requires_grad
    assert D.Normal(loc, 1.0).rsample().requires_grad
    assert not D.Categorical(logits=loc).sample((3,)).requires_grad


def test_on_every_backend(device):
    loc = gpuad.tensor([[0.0, 1.0]], device=device)
    scale_tril = gpuad.tensor([[1.0, 0.0], [0.3, 0.8]], device=device)
    for d in (D.Normal(loc, 2.0), D.Categorical(logits=loc),
              D.MultivariateNormal(loc, scale_tril=scale_tril),
              D.Gamma(loc + 1.0, 1.0), D.Bernoulli(logits=loc)):
        x = d.sample((3,))
        assert x.device == loc.device
        d.log_prob(x).sum().item()
        d.entropy().sum().item()


def test_log_prob_under_vmap_and_per_example_gradients():
    mean = gpuad.tensor([0.5, -1.0], dtype=F64, requires_grad=True)
    xs = gpuad.tensor(np.random.default_rng(7).normal(size=(6, 2)), dtype=F64)
    lp = gpuad.func.vmap(lambda x: D.Normal(mean, 1.0).log_prob(x).sum())(xs)
    np.testing.assert_allclose(host(lp), host(D.Normal(mean, 1.0).log_prob(xs).sum(-1)))
    per = gpuad.func.vmap(gpuad.func.grad(lambda m, x: D.Normal(m, 1.0).log_prob(x).sum()),
                          in_dims=(None, 0))(mean.detach(), xs)
    np.testing.assert_allclose(host(per), host(xs) - host(mean))


def test_sampling_inside_vmap_follows_its_randomness():
    means = gpuad.tensor([0.0, 100.0, -100.0])
    draws = gpuad.func.vmap(lambda m: D.Normal(m, 1.0).sample((500,)), randomness="different")(
        means)
    assert draws.shape == (3, 500)
    np.testing.assert_allclose(host(draws).mean(1), host(means), atol=0.2)
    flips = gpuad.func.vmap(lambda p: D.Bernoulli(p).sample((2000,)), randomness="different")(
        gpuad.tensor([0.1, 0.9]))
    np.testing.assert_allclose(host(flips).mean(1), [0.1, 0.9], atol=0.04)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        gpuad.func.vmap(lambda m: D.Normal(m, 1.0).rsample())(means)
