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
    missing = strict.missing_from(cupy, used)
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


# ---- schedulers ----------------------------------------------------------------------------------
SCHEDULES = {
    "constant": lambda L, o: L.ConstantLR(o, factor=0.25, total_iters=4),
    "polynomial": lambda L, o: L.PolynomialLR(o, total_iters=12, power=2.0),
    "polynomial_linear": lambda L, o: L.PolynomialLR(o),
    "warm_restarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=5, eta_min=0.01),
    "warm_restarts_mult": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "cyclic": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=4,
                                      cycle_momentum=False),
    "cyclic_triangular2": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5,
                                                  mode="triangular2"),
    "cyclic_exp_range": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="exp_range",
                                                gamma=0.95, base_momentum=0.7),
    "cyclic_custom": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                             scale_fn=lambda x: 0.9 ** x,
                                             scale_mode="iterations"),
    "multiplicative": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.95),
    "chained": lambda L, o: L.ChainedScheduler([L.ConstantLR(o, factor=0.1, total_iters=2),
                                                L.ExponentialLR(o, gamma=0.9)]),
    "chained_cosine_step": lambda L, o: L.ChainedScheduler(
        [L.CosineAnnealingLR(o, T_max=7, eta_min=0.001), L.StepLR(o, 5, gamma=0.5),
         L.LinearLR(o, start_factor=0.2, total_iters=6)], optimizer=o),
    "sequential_constant_poly": lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.5, total_iters=3), L.PolynomialLR(o, total_iters=10)],
        milestones=[6]),
    "sequential_chained": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=4),
            L.MultiStepLR(o, milestones=[3, 6, 6], gamma=0.5)], milestones=[5]),
    "swalr_cos": lambda L, o: _swa(L).SWALR(o, swa_lr=0.02, anneal_epochs=5),
    "swalr_linear": lambda L, o: _swa(L).SWALR(o, swa_lr=[0.02, 0.03], anneal_epochs=0,
                                               anneal_strategy="linear"),
}


def _swa(L):
    import importlib
    return importlib.import_module(L.__name__.rsplit(".", 1)[0] + ".swa_utils")


def _compare_groups(opt, topt):
    for group, tgroup in zip(opt.param_groups, topt.param_groups):
        for key in ("lr", "momentum", "betas"):
            np.testing.assert_allclose(group.get(key, 0), tgroup.get(key, 0), rtol=1e-12,
                                       atol=1e-15, err_msg=key)


def _scheduled(lib, ps, adam):
    groups = [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}]
    return lib.Adam(groups, lr=0.1) if adam else lib.SGD(groups, lr=0.1, momentum=0.9)


@pytest.mark.parametrize("adam", [False, True], ids=["sgd", "adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_scheduler_matches_torch(name, adam):
    torch = pytest.importorskip("torch")
    opt = _scheduled(optim, [gpuad.tensor([1.0], requires_grad=True) for _ in range(2)], adam)
    topt = _scheduled(torch.optim, [torch.tensor([1.0], requires_grad=True) for _ in range(2)],
                      adam)
    sched = SCHEDULES[name](optim.lr_scheduler, opt)
    tsched = SCHEDULES[name](torch.optim.lr_scheduler, topt)
    for _ in range(40):
        _compare_groups(opt, topt)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12,
                                   atol=1e-15)
        topt.step()  # before the scheduler, or torch warns
        sched.step()
        tsched.step()


def test_warm_restarts_fractional_epochs_match_torch():
    torch = pytest.importorskip("torch")
    for t_mult in (1, 2):
        opt = optim.SGD([gpuad.tensor([1.0], requires_grad=True)], lr=0.1)
        topt = torch.optim.SGD([torch.tensor([1.0], requires_grad=True)], lr=0.1)
        sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 4, T_mult=t_mult,
                                                               eta_min=1e-3)
        tsched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, 4, T_mult=t_mult,
                                                                      eta_min=1e-3)
        for epoch in range(14):
            for i in range(5):  # the documented per-batch use: step(epoch + i / iters)
                topt.step()
                sched.step(epoch + i / 5)
                tsched.step(epoch + i / 5)
                _compare_groups(opt, topt)
                assert sched.last_epoch == tsched.last_epoch
        with pytest.raises(ValueError, match="non-negative epoch"):
            sched.step(-1)


def test_step_with_epoch_uses_the_closed_form_and_warns():
    torch = pytest.importorskip("torch")
    opt = optim.SGD([gpuad.tensor([1.0], requires_grad=True)], lr=1.0)
    topt = torch.optim.SGD([torch.tensor([1.0], requires_grad=True)], lr=1.0)
    sched = optim.lr_scheduler.PolynomialLR(opt, total_iters=8, power=0.5)
    tsched = torch.optim.lr_scheduler.PolynomialLR(topt, total_iters=8, power=0.5)
    topt.step()
    for epoch in (3, 7, 2, 11):
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(epoch)
        with pytest.warns(UserWarning):
            tsched.step(epoch)
        _compare_groups(opt, topt)


PLATEAUS = [
    {},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "abs"},
    {"patience": 2, "cooldown": 2, "min_lr": [0.02, 0.004], "eps": 1e-3},
    {"factor": 0.3, "patience": 0, "threshold_mode": "abs", "min_lr": 1e-3},
]


@pytest.mark.parametrize("kwargs", PLATEAUS, ids=range(len(PLATEAUS)))
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    opt = _scheduled(optim, [gpuad.tensor([1.0], requires_grad=True) for _ in range(2)], False)
    topt = _scheduled(torch.optim, [torch.tensor([1.0], requires_grad=True) for _ in range(2)],
                      False)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    rng = np.random.default_rng(1)
    metrics = np.concatenate([np.linspace(3, 1, 8), 1 + 0.05 * rng.standard_normal(30),
                              np.linspace(1, 0.2, 6), np.full(20, 0.2)])
    for i, metric in enumerate(metrics):
        value = gpuad.tensor(metric) if i % 2 else float(metric)  # a 0-d tensor works too
        sched.step(value)
        tsched.step(float(metric))
        _compare_groups(opt, topt)
        assert sched.get_last_lr() == tsched.get_last_lr()
        assert (sched.num_bad_epochs, sched.cooldown_counter, sched.best) == (
            tsched.num_bad_epochs, tsched.cooldown_counter, tsched.best)


def test_new_scheduler_errors():
    S = optim.lr_scheduler
    opt = optim.SGD([gpuad.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode 'up' is unknown"):
        S.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold mode"):
        S.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="factor must be in"):
        S.ConstantLR(opt, factor=2)
    with pytest.raises(ValueError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="T_mult >= 1"):
        S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(ValueError, match="scale_fn"):
        S.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="cycle_momentum"):
        S.CyclicLR(optim.Adagrad([gpuad.tensor([1.0], requires_grad=True)]), 0.01, 0.1)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ReduceLROnPlateau(opt)])
    other = optim.SGD([gpuad.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="same optimizer|given optimizer"):
        S.ChainedScheduler([S.StepLR(opt, 2), S.StepLR(other, 2)])


def test_new_schedulers_state_dict_round_trip(tmp_path):
    S = optim.lr_scheduler

    def build():
        opt = optim.SGD([gpuad.tensor([1.0], requires_grad=True)], lr=1.0, momentum=0.9)
        return opt, [S.CyclicLR(opt, 0.1, 1.0, step_size_up=3, mode="triangular2"),
                     S.ChainedScheduler([S.ConstantLR(opt, 0.5, 3), S.ExponentialLR(opt, 0.9)]),
                     S.ReduceLROnPlateau(opt, patience=1)]
    opt, scheds = build()
    for i in range(5):
        for s in scheds:
            s.step(1.0) if isinstance(s, S.ReduceLROnPlateau) else s.step()
    gpuad.save({"opt": opt.state_dict(), "scheds": [s.state_dict() for s in scheds]},
               tmp_path / "s.ckpt")
    saved = gpuad.load(tmp_path / "s.ckpt")
    opt2, scheds2 = build()
    opt2.load_state_dict(saved["opt"])
    for s, sd in zip(scheds2, saved["scheds"]):
        s.load_state_dict(sd)
    for i in range(6):
        for a, b in zip(scheds, scheds2):
            for s in (a, b):
                s.step(1.0) if isinstance(s, S.ReduceLROnPlateau) else s.step()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
        assert opt.param_groups[0]["momentum"] == opt2.param_groups[0]["momentum"]


# ---- swa_utils -----------------------------------------------------------------------------------
def _twin_models(torch):
    rng = np.random.default_rng(3)
    ours = gpuad.nn.Sequential(gpuad.nn.Linear(3, 4), gpuad.nn.BatchNorm1d(4),
                               gpuad.nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                 torch.nn.Linear(4, 2)).double()
    ours.to(gpuad.float64)
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        values = rng.standard_normal(p.shape)
        p.data.copy_(gpuad.tensor(values))
        with torch.no_grad():
            tp.copy_(torch.tensor(values))
    return ours, theirs


def _perturb(torch, ours, theirs, step):
    rng = np.random.default_rng(50 + step)
    x = rng.standard_normal((5, 3))
    ours(gpuad.tensor(x))  # moves the batch-norm buffers
    theirs(torch.tensor(x))
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        delta = rng.standard_normal(p.shape)
        with gpuad.no_grad():
            p.add_(gpuad.tensor(delta))
        with torch.no_grad():
            tp.add_(torch.tensor(delta))


AVERAGES = {
    "swa": lambda s: {},
    "swa_buffers": lambda s: {"use_buffers": True},
    "ema_multi": lambda s: {"multi_avg_fn": s.get_ema_multi_avg_fn(0.9)},
    "ema_multi_buffers": lambda s: {"multi_avg_fn": s.get_ema_multi_avg_fn(0.7),
                                    "use_buffers": True},
    "ema": lambda s: {"avg_fn": s.get_ema_avg_fn(0.8)},
    "swa_multi": lambda s: {"multi_avg_fn": s.get_swa_multi_avg_fn()},
    "swa_fn_buffers": lambda s: {"avg_fn": s.get_swa_avg_fn(), "use_buffers": True},
}


@pytest.mark.parametrize("kind", list(AVERAGES))
def test_averaged_model_matches_torch(kind):
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils as tswa
    ours, theirs = _twin_models(torch)
    avg = optim.swa_utils.AveragedModel(ours, **AVERAGES[kind](optim.swa_utils))
    tavg = tswa.AveragedModel(theirs, **AVERAGES[kind](tswa))
    with _torch_float64(torch):  # torch's SWA weight 1 / (n + 1) is a default-dtype tensor
        for step in range(4):
            _perturb(torch, ours, theirs, step)
            avg.update_parameters(ours)
            tavg.update_parameters(theirs)
    assert int(avg.n_averaged.item()) == int(tavg.n_averaged) == 4
    ours_sd, theirs_sd = avg.state_dict(), tavg.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        np.testing.assert_allclose(ours_sd[key].numpy(), theirs_sd[key].numpy(), rtol=1e-12,
                                   atol=1e-14, err_msg=key)
    x = np.random.default_rng(9).standard_normal((2, 3))
    avg.eval()
    tavg.eval()
    np.testing.assert_allclose(avg(gpuad.tensor(x)).detach().numpy(),
                               tavg(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_update_bn_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils as tswa
    ours, theirs = _twin_models(torch)
    ours[1].momentum = theirs[1].momentum = 0.3
    xs = [np.random.default_rng(i).standard_normal((4, 3)) for i in range(3)]
    optim.swa_utils.update_bn([(gpuad.tensor(x), 0) for x in xs], ours.eval())
    tswa.update_bn([(torch.tensor(x), 0) for x in xs], theirs.eval())
    assert not ours.training and ours[1].momentum == 0.3
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(ours[1], name).numpy(),
                                   getattr(theirs[1], name).numpy(), rtol=1e-12)


def test_averaged_model_errors():
    model = gpuad.nn.Linear(2, 2)
    swa = optim.swa_utils
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa.AveragedModel(model, avg_fn=swa.get_swa_avg_fn(),
                          multi_avg_fn=swa.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="decay"):
        swa.get_ema_multi_avg_fn(1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        swa.SWALR(optim.SGD(model.parameters(), lr=0.1), 0.05, anneal_strategy="step")


# ---- signatures ----------------------------------------------------------------------------------
_OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
               "ASGD", "LBFGS"]


@pytest.mark.parametrize("name", _OPTIMIZERS)
def test_optimizer_signatures_are_torchs(name):
    # scripts pass torch's kernel switches (AdamW(..., fused=True), foreach=...) and probe for
    # them with inspect.signature, as nanoGPT does: the same names, kinds and defaults
    import inspect
    torch = pytest.importorskip("torch")

    def params(cls):
        return [(k, p.kind, p.default) for k, p in inspect.signature(cls).parameters.items()
                if k != "params"]
    assert params(getattr(optim, name)) == params(getattr(torch.optim, name))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_kernel_switches_change_nothing_and_unsupported_ones_raise(name):
    def train(**switches):
        w = gpuad.tensor([1.0, -2.0, 3.0], requires_grad=True)
        opt = getattr(optim, name)([w], lr=0.1, **switches)
        for _ in range(3):
            opt.zero_grad()
            ((w - 0.5) ** 2).sum().backward()
            opt.step()
        return w.tolist()
    plain = train()
    assert train(foreach=True) == plain
    if name != "RMSprop":  # (torch's RMSprop has no fused kernel)
        assert train(fused=True) == plain
    with pytest.raises(ValueError, match=f"{name}: differentiable=True is not supported"):
        train(differentiable=True)
    if name in ("Adam", "AdamW", "RMSprop"):
        with pytest.raises(ValueError, match=f"{name}: capturable=True is not supported"):
            train(capturable=True)


def test_clip_grad_functions_take_torchs_foreach():
    w = gpuad.tensor([3.0, 4.0], requires_grad=True)
    w.grad = gpuad.tensor([3.0, 4.0])
    total = gpuad.nn.utils.clip_grad_norm_([w], 1.0, foreach=True)
    assert total.item() == 5.0 and np.allclose(w.grad.tolist(), [0.6, 0.8], rtol=1e-6)
    gpuad.nn.utils.clip_grad_value_([w], 0.7, foreach=None)
    assert w.grad.tolist() == pytest.approx([0.6, 0.7])
