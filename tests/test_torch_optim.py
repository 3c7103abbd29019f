"""torch.optim breadth: Adadelta, Adamax, NAdam, RAdam, ASGD and LBFGS against their torch twins
on the same problem from the same weights (float64), the schedulers' learning-rate sequences
against torch's, and optim.swa_utils."""
import contextlib

import numpy as np
import pytest

import gpuad
from gpuad import backend, optim
from gpuad.testing import strict


@contextlib.contextmanager
def _torch_float64(torch):
    # torch keeps some optimizer scalars (NAdam's mu_product, ASGD's eta) as tensors of the
    # default dtype; gpuad keeps Python floats, which match torch's under float64
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# ---- the element-wise optimizers -----------------------------------------------------------------
CASES = [
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "betas": (0.7, 0.9), "weight_decay": 0.2, "eps": 1e-3}),
    ("Adamax", {"lr": 0.05, "betas": (0.2, 0.5), "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.3, "decoupled_weight_decay": True,
               "maximize": True}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.05, "weight_decay": 0.3, "decoupled_weight_decay": True,
               "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 5, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.05, "t0": 0, "maximize": True}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


def _problem(lib, params, step):
    """A small least-squares-plus-tanh loss whose data change with the step."""
    rng = np.random.default_rng(100 + step)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    w, v = params
    to = lib.tensor
    residual = to(a) @ w - to(b)
    return (residual * residual).sum() + lib.tanh(v).sum()


def _starts():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(4), rng.standard_normal(3)]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_matches_torch_over_20_steps(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = [gpuad.tensor(a, requires_grad=True) for a in _starts()]
    theirs = [torch.tensor(a, requires_grad=True) for a in _starts()]
    # two groups, the second with its own lr, as torch allows
    opt = getattr(optim, name)([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.02}], **kwargs)
    with _torch_float64(torch):
        topt = getattr(torch.optim, name)([{"params": theirs[:1]},
                                           {"params": theirs[1:], "lr": 0.02}], **kwargs)
        for step in range(20):
            for lib, o, ps in ((gpuad, opt, ours), (torch, topt, theirs)):
                o.zero_grad()
                _problem(lib, ps, step).backward()
                o.step()
            for p, tp in zip(ours, theirs):
                np.testing.assert_allclose(p.array, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours_sd, theirs_sd = opt.state_dict(), topt.state_dict()
    assert ([sorted(s) for s in ours_sd["state"].values()]
            == [sorted(s) for s in theirs_sd["state"].values()])
    assert [sorted(g) for g in ours_sd["param_groups"]] == [
        sorted(k for k in g if k not in ("foreach", "capturable", "differentiable"))
        for g in theirs_sd["param_groups"]]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_float32_stays_float32_on_every_backend(name, kwargs, device):
    p = gpuad.tensor([1.0, -2.0, 0.5], device=device, requires_grad=True)
    array = p.array
    opt = getattr(optim, name)([p], **kwargs)
    for step in range(4):
        p.grad = gpuad.tensor([0.3, -1.0 + step, 2.0], device=device)
        opt.step()
    assert p.array is array and p.dtype == gpuad.float32 and p.device == gpuad.device(device)
    for key, value in opt.state[p].items():
        assert isinstance(value, (int, float)) or value.dtype == gpuad.float32, key


def test_new_optimizers_only_call_functions_that_cupy_has():
    cupy = pytest.importorskip("cupy")
    before = set(strict.USED)
    strict.USED.clear()
    try:
        for name, kwargs in CASES:
            p = gpuad.tensor([1.0, -2.0], dtype=gpuad.float64, device="strict",
                             requires_grad=True)
            opt = getattr(optim, name)([p], **kwargs)
            for g in ([3.0, -2.0], [0.1, 0.5]):
                p.grad = gpuad.tensor(g, dtype=gpuad.float64, device="strict")
                opt.step()
        for search in (None, "strong_wolfe"):
            p = gpuad.tensor([1.0, -2.0], dtype=gpuad.float64, device="strict",
                             requires_grad=True)
            _lbfgs_run(gpuad, [p], _rosenbrock, {"line_search_fn": search}, steps=1)
        used = set(strict.USED)
    finally:
        strict.USED.update(before)
    missing = []
    for name in sorted(used):
        target = cupy.ndarray if name.startswith("ndarray.") else cupy
        for part in name.removeprefix("ndarray.").split("."):
            target = getattr(target, part, None)
        if target is None:
            missing.append(name)
    assert used and not missing, f"CuPy lacks {missing}"


@pytest.mark.parametrize("name,kwargs", CASES[1::3], ids=IDS[1::3])
def test_state_dict_survives_save_and_load(name, kwargs, tmp_path):
    params = [gpuad.tensor(a, requires_grad=True) for a in _starts()]
    copies = [gpuad.tensor(a, requires_grad=True) for a in _starts()]
    opt = getattr(optim, name)(params, **kwargs)
    for step in range(3):
        opt.zero_grad()
        _problem(gpuad, params, step).backward()
        opt.step()
    gpuad.save(opt.state_dict(), tmp_path / "opt.ckpt")
    resumed = getattr(optim, name)(copies, **kwargs)
    for p, q in zip(params, copies):
        q.data.copy_(p.data)
    resumed.load_state_dict(gpuad.load(tmp_path / "opt.ckpt"))
    for step in range(3, 6):
        for o, ps in ((opt, params), (resumed, copies)):
            o.zero_grad()
            _problem(gpuad, ps, step).backward()
            o.step()
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.array, q.array)


def test_torch_state_dict_loads():
    """A torch optimizer's state dict (0-d tensors for step, mu_product, eta, mu), converted
    tensor by tensor, loads and continues like torch."""
    torch = pytest.importorskip("torch")
    for name, kwargs in (("NAdam", {"lr": 0.05}), ("ASGD", {"lr": 0.05, "t0": 1})):
        theirs = [torch.tensor(a, requires_grad=True) for a in _starts()]
        with _torch_float64(torch):
            topt = getattr(torch.optim, name)(theirs, **kwargs)
            for step in range(3):
                topt.zero_grad()
                _problem(torch, theirs, step).backward()
                topt.step()
        sd = topt.state_dict()
        ours = [gpuad.tensor(p.detach().numpy(), requires_grad=True) for p in theirs]
        opt = getattr(optim, name)(ours, **kwargs)
        opt.load_state_dict({"state": {i: {k: gpuad.tensor(v.numpy()) for k, v in s.items()}
                                       for i, s in sd["state"].items()},
                             "param_groups": sd["param_groups"]})
        with _torch_float64(torch):
            for lib, o, ps in ((gpuad, opt, ours), (torch, topt, theirs)):
                o.zero_grad()
                _problem(lib, ps, 3).backward()
                o.step()
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(p.array, tp.detach().numpy(), rtol=1e-10)


def test_constructor_errors_and_torch_only_switches():
    p = gpuad.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="rho"):
        optim.Adadelta([p], rho=1.5)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adamax([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="momentum_decay"):
        optim.NAdam([p], momentum_decay=-1)
    with pytest.raises(ValueError, match="lr"):
        optim.RAdam([p], lr=-1)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.ASGD([p], weight_decay=-1)
    with pytest.raises(ValueError, match="differentiable=True is not supported"):
        optim.NAdam([p], differentiable=True)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        optim.Adamax([p], capturable=True)
    optim.ASGD([p], 0.01, 1e-4, 0.75, 1e6, 0, None, False)  # torch's positional order
    optim.Adadelta([p], foreach=True)  # a speed switch: accepted


# ---- LBFGS ---------------------------------------------------------------------------------------
def _rosenbrock(lib, params):
    x = params[0]
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _least_squares(lib, params):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((8, 5)), rng.standard_normal(8)
    w, c = params
    r = lib.tensor(a) @ w + c - lib.tensor(b)
    return (r * r).sum() + 0.1 * (w * w * w * w).sum()


def _lbfgs_run(lib, params, loss_fn, kwargs, steps):
    opt = (lib.optim.LBFGS(params, **kwargs))
    losses = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(lib, params)
        loss.backward()
        return loss
    for _ in range(steps):
        losses.append(opt.step(closure).item())
    return opt, losses


LBFGS_CASES = [
    ("rosenbrock", {}),
    ("rosenbrock", {"line_search_fn": "strong_wolfe"}),
    ("rosenbrock", {"lr": 0.5, "max_iter": 7, "history_size": 3}),
    ("rosenbrock", {"line_search_fn": "strong_wolfe", "history_size": 2, "max_iter": 30,
                    "max_eval": 40}),
    ("least_squares", {"lr": 0.8}),
    ("least_squares", {"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-5,
                       "tolerance_change": 1e-6}),
]


@pytest.mark.parametrize("problem,kwargs", LBFGS_CASES,
                         ids=[f"{p}-{i}" for i, (p, _) in enumerate(LBFGS_CASES)])
def test_lbfgs_matches_torch(problem, kwargs):
    torch = pytest.importorskip("torch")
    fn = {"rosenbrock": _rosenbrock, "least_squares": _least_squares}[problem]
    starts = ([np.array([-1.5, 2.0, 0.5, -0.3])] if problem == "rosenbrock"
              else [np.linspace(-1, 1, 5), np.array(0.3)])
    ours = [gpuad.tensor(a, requires_grad=True) for a in starts]
    theirs = [torch.tensor(a, requires_grad=True) for a in starts]
    opt, losses = _lbfgs_run(gpuad, ours, fn, kwargs, steps=4)
    with _torch_float64(torch):
        topt, tlosses = _lbfgs_run(torch, theirs, fn, kwargs, steps=4)
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9, atol=1e-12)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.array, tp.detach().numpy(), rtol=1e-9, atol=1e-12)
    state, tstate = opt.state[ours[0]], topt.state[theirs[0]]
    assert sorted(state) == sorted(tstate)
    assert (state["func_evals"], state["n_iter"]) == (tstate["func_evals"], tstate["n_iter"])
    assert len(state["old_dirs"]) == len(tstate["old_dirs"])


def test_lbfgs_converges_on_rosenbrock_with_strong_wolfe(device):
    x = gpuad.tensor([-1.5, 2.0], dtype=gpuad.float64, device=device, requires_grad=True)
    _lbfgs_run(gpuad, [x], _rosenbrock, {"line_search_fn": "strong_wolfe", "max_iter": 100},
               steps=2)
    np.testing.assert_allclose(backend.asnumpy(x.array), [1.0, 1.0], atol=1e-4)


def test_lbfgs_state_dict_round_trip(tmp_path):
    starts = [np.linspace(-1, 1, 5), np.array(0.3)]
    params = [gpuad.tensor(a, requires_grad=True) for a in starts]
    opt, _ = _lbfgs_run(gpuad, params, _least_squares, {"max_iter": 3, "history_size": 4}, 2)
    gpuad.save(opt.state_dict(), tmp_path / "lbfgs.ckpt")
    copies = [gpuad.tensor(p.array, requires_grad=True) for p in params]
    resumed = optim.LBFGS(copies, max_iter=3, history_size=4)
    resumed.load_state_dict(gpuad.load(tmp_path / "lbfgs.ckpt"))
    for o, ps in ((opt, params), (resumed, copies)):
        def closure(o=o, ps=ps):
            o.zero_grad()
            loss = _least_squares(gpuad, ps)
            loss.backward()
            return loss
        o.step(closure)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.array, q.array)


def test_lbfgs_errors():
    a = gpuad.tensor([1.0], requires_grad=True)
    b = gpuad.tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match="per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS([a], line_search_fn="armijo")
    with pytest.raises(TypeError):
        optim.LBFGS([a]).step()  # the closure is required, as in torch
