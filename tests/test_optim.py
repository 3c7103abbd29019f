"""gpuad.optim: each update rule against its documented formula (numpy, float64) and against its
torch.optim twin when torch is installed; param groups, state dicts, devices; the schedulers."""
import numpy as np
import pytest

import gpuad
from gpuad import backend
from gpuad.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from gpuad.optim import lr_scheduler as S
from gpuad.testing import strict


# ---- references: the documented update rules, written step by step in numpy ---------------------
def ref_sgd(p, grads, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    buf = None
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = d if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def ref_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled=False):
    (b1, b2), m, v, v_max = betas, 0.0, 0.0, 0.0
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v) if amsgrad else v  # torch keeps the max of the raw v
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v_max / (1 - b2 ** t)) + eps)
    return p


def ref_adamw(p, grads, weight_decay=1e-2, **kwargs):
    return ref_adam(p, grads, weight_decay=weight_decay, decoupled=True, **kwargs)


def ref_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                centered=False, maximize=False):
    v, g_avg, buf = 0.0, 0.0, 0.0
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
        step = g / (np.sqrt(v - g_avg * g_avg) + eps)
        buf = momentum * buf + step
        p = p - lr * (buf if momentum else step)
    return p


def ref_adagrad(p, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                eps=1e-10, maximize=False):
    total = initial_accumulator_value
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * p
        total = total + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


REFS = {SGD: ref_sgd, Adam: ref_adam, AdamW: ref_adamw, RMSprop: ref_rmsprop, Adagrad: ref_adagrad}
CASES = [
    ("sgd", SGD, {"lr": 0.1}),
    ("sgd_momentum", SGD, {"lr": 0.1, "momentum": 0.9}),
    ("sgd_dampening_wd", SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3,
                               "weight_decay": 0.05}),
    ("sgd_nesterov", SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd_maximize", SGD, {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    ("adam", Adam, {"lr": 0.01}),
    ("adam_wd_amsgrad", Adam, {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1,
                               "amsgrad": True}),
    ("adam_maximize", Adam, {"lr": 0.01, "eps": 1e-3, "maximize": True}),
    ("adamw", AdamW, {"lr": 0.01}),
    ("adamw_amsgrad_maximize", AdamW, {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True,
                                       "maximize": True}),
    ("rmsprop", RMSprop, {"lr": 0.01}),
    ("rmsprop_centered_momentum", RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-4,
                                            "weight_decay": 0.1, "momentum": 0.8,
                                            "centered": True}),
    ("rmsprop_maximize", RMSprop, {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("adagrad", Adagrad, {"lr": 0.1}),
    ("adagrad_decay", Adagrad, {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1,
                                "initial_accumulator_value": 0.2, "eps": 1e-6, "maximize": True}),
]
IDS = [c[0] for c in CASES]
# Large then small gradients, so amsgrad's running max differs from v.
GRADS = [np.array(g) for g in ([3.0, -2.0], [0.1, 0.5], [-1.0, 0.05], [0.2, -0.3])]


def _param(values, device="cpu", dtype=gpuad.float64):
    return gpuad.tensor(values, dtype=dtype, device=device, requires_grad=True)


def _set_grad(p, g):
    p.grad = gpuad.tensor(g, dtype=p.dtype, device=p.device)


def _host(t):
    return backend.asnumpy(t.array)


# ---- (1) the formulas, no torch needed ----------------------------------------------------------
@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
def test_update_matches_documented_formula(name, cls, kwargs):
    p0 = np.array([1.0, -2.0])
    p = _param(p0)
    opt = cls([p], **kwargs)
    for n, g in enumerate(GRADS, 1):
        _set_grad(p, g)
        opt.step()
        np.testing.assert_allclose(_host(p), REFS[cls](p0, GRADS[:n], **kwargs), rtol=1e-12)


def test_sgd_momentum_by_hand():
    p = _param([1.0, 2.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    _set_grad(p, [1.0, -1.0])
    opt.step()  # buf = g (no dampening on the first step): p = [0.9, 2.1]
    np.testing.assert_allclose(_host(p), [0.9, 2.1])
    _set_grad(p, [1.0, -1.0])
    opt.step()  # buf = 0.9 * 1 + 1 = 1.9: p = [0.9 - 0.19, 2.1 + 0.19]
    np.testing.assert_allclose(_host(p), [0.71, 2.29])


def test_adam_first_step_moves_each_entry_by_lr():
    p = _param([1.0, 2.0, 3.0])
    opt = Adam([p], lr=0.1, eps=0.0)
    _set_grad(p, [5.0, -0.01, 300.0])
    opt.step()  # m_hat = g, v_hat = g^2: the step is lr * sign(g)
    np.testing.assert_allclose(_host(p), [0.9, 2.1, 2.9], rtol=1e-12)


def test_adamw_decay_is_decoupled():
    p = _param([2.0])
    opt = AdamW([p], lr=0.1, weight_decay=0.5, eps=0.0)
    _set_grad(p, [4.0])
    opt.step()  # p * (1 - 0.05) then - lr * sign(g)
    np.testing.assert_allclose(_host(p), [2.0 * 0.95 - 0.1], rtol=1e-12)


# ---- (2) torch twins ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
def test_matches_torch(name, cls, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [_param(a) for a in starts]
    theirs = [torch.tensor(a, requires_grad=True) for a in starts]

    def groups(ps):  # two groups: the second with half the learning rate
        return [{"params": [ps[0]]}, {"params": [ps[1]], "lr": kwargs["lr"] / 2}]
    opt, topt = cls(groups(ours), **kwargs), getattr(torch.optim, cls.__name__)(groups(theirs),
                                                                               **kwargs)
    for _ in range(5):
        for p, tp in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            _set_grad(p, g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(_host(p), tp.detach().numpy(), rtol=1e-10, atol=1e-13)


SCHEDULES = {
    "step": lambda L, o: L.StepLR(o, step_size=4, gamma=0.5),
    "multistep": lambda L, o: L.MultiStepLR(o, milestones=[7, 3, 7, 20], gamma=0.3),
    "exponential": lambda L, o: L.ExponentialLR(o, gamma=0.9),
    "cosine": lambda L, o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "lambda": lambda L, o: L.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1 / (e + 1)]),
    "linear": lambda L, o: L.LinearLR(o),
    "linear_custom": lambda L, o: L.LinearLR(o, start_factor=0.1, end_factor=0.5, total_iters=8),
    "onecycle": lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=30),
    "onecycle_three_phase_linear": lambda L, o: L.OneCycleLR(
        o, max_lr=0.8, epochs=3, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0),
    "onecycle_no_momentum": lambda L, o: L.OneCycleLR(o, 1.0, total_steps=30,
                                                      cycle_momentum=False),
    "sequential": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "sequential3": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.5, total_iters=3), L.ExponentialLR(o, gamma=0.8),
            L.StepLR(o, step_size=3)], milestones=[4, 12]),
}


@pytest.mark.parametrize("adam", [False, True], ids=["sgd", "adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_scheduler_matches_torch(name, adam):
    torch = pytest.importorskip("torch")
    ours = [_param([1.0]), _param([2.0])]
    theirs = [torch.tensor([1.0], requires_grad=True), torch.tensor([2.0], requires_grad=True)]

    def make(lib, ps):
        groups = [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}]
        opt = lib.Adam(groups, lr=0.1) if adam else lib.SGD(groups, lr=0.1, momentum=0.9)
        return opt, SCHEDULES[name](lib.lr_scheduler, opt)
    (opt, sched), (topt, tsched) = make(gpuad.optim, ours), make(torch.optim, theirs)
    for _ in range(30):
        for group, tgroup in zip(opt.param_groups, topt.param_groups):
            for key in ("lr", "momentum", "betas"):
                np.testing.assert_allclose(group.get(key, 0), tgroup.get(key, 0), rtol=1e-12,
                                           atol=1e-15, err_msg=key)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12,
                                   atol=1e-15)
        opt.step()
        topt.step()  # before the scheduler, or torch warns
        sched.step()
        tsched.step()


# ---- (3) groups, zero_grad, state dicts, devices, dtypes ----------------------------------------
def test_param_groups_have_their_own_hyperparameters():
    a, b = _param([1.0, 1.0]), _param([1.0])
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.01}], lr=0.1, momentum=0.5)
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["lr"] == 0.01
    for p in (a, b):
        _set_grad(p, np.ones(p.shape))
    opt.step()
    np.testing.assert_allclose(_host(a), [0.9, 0.9])
    np.testing.assert_allclose(_host(b), [0.99])
    c = _param([0.0])
    opt.add_param_group({"params": [c], "momentum": 0.0})
    _set_grad(c, [2.0])
    opt.step()
    assert opt.param_groups[2]["lr"] == 0.1
    np.testing.assert_allclose(_host(c), [-0.2])


def test_lr_can_change_between_steps():
    p = _param([0.0])
    opt = SGD([p], lr=1.0)
    for lr, expected in ((1.0, -1.0), (0.25, -1.25)):
        opt.param_groups[0]["lr"] = lr
        _set_grad(p, [1.0])
        opt.step()
        np.testing.assert_allclose(_host(p), [expected])


def test_zero_grad_both_ways():
    p = _param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    _set_grad(p, [3.0, 4.0])
    grad_array = p.grad.array
    opt.zero_grad(set_to_none=False)
    assert p.grad.array is grad_array and _host(p.grad).tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad()  # nothing to do, no error
    (p * p).sum().backward(create_graph=True)  # a gradient that itself requires grad
    opt.zero_grad(set_to_none=False)
    assert not p.grad.requires_grad and _host(p.grad).tolist() == [0.0, 0.0]


def test_step_only_touches_parameters_with_a_grad():
    a, b = _param([1.0]), _param([2.0])
    opt = Adam([a, b], lr=0.1, weight_decay=0.1)
    _set_grad(a, [1.0])
    opt.step()
    assert _host(b).tolist() == [2.0] and b not in opt.state and a in opt.state


def test_step_closure_runs_with_grad_enabled():
    p = _param([3.0])
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with gpuad.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(_host(p), [3.0 - 0.1 * 6.0])


def test_retained_graph_refuses_backward_after_a_step():
    p = _param([1.0, 2.0])
    loss = (p * p).sum()
    loss.backward(retain_graph=True)
    SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
def test_float32_stays_float32_and_updates_in_place(name, cls, kwargs, device):
    p = _param([1.0, -2.0], device=device, dtype=gpuad.float32)
    data = p.array
    opt = cls([p], **kwargs)
    for g in GRADS:
        _set_grad(p, g)
        opt.step()
    assert p.array is data and p.dtype == gpuad.float32 and p.device == gpuad.device(device)
    for key, value in opt.state[p].items():
        assert key == "step" and type(value) is int or value.dtype == gpuad.float32, key
    expected = REFS[cls](np.array([1.0, -2.0]), GRADS, **kwargs)
    np.testing.assert_allclose(_host(p), expected, rtol=1e-5, atol=1e-6)


def test_optimizers_only_call_functions_that_cupy_has():
    cupy = pytest.importorskip("cupy")
    used_before = set(strict.USED)
    strict.USED.clear()
    try:
        for _, cls, kwargs in CASES:
            p = _param([1.0, -2.0], device="strict")
            opt = cls([p], **kwargs)
            for g in GRADS:
                _set_grad(p, g)
                opt.step()
            opt.zero_grad(set_to_none=False)
        used = set(strict.USED)
    finally:
        strict.USED.update(used_before)
    missing = strict.missing_from(cupy, used)
    assert used and not missing, f"CuPy lacks {missing}"


def _run(opt, params, steps, start):
    for t in range(start, start + steps):
        for i, p in enumerate(params):
            _set_grad(p, np.sin(np.arange(p.numel()) + 3 * t + i).reshape(p.shape))
        opt.step()


def _checkpointed(sd):
    """What a save/load round trip gives back: fresh CPU Tensors, string state keys, lists."""
    state = {str(i): {k: gpuad.tensor(_host(v)) if isinstance(v, gpuad.Tensor) else v
                      for k, v in s.items()} for i, s in sd["state"].items()}
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
              for g in sd["param_groups"]]
    return {"state": state, "param_groups": groups}


@pytest.mark.parametrize("checkpoint", [False, True], ids=["direct", "checkpoint"])
@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
def test_state_dict_round_trip_resumes_exactly(name, cls, kwargs, checkpoint):
    params = [_param(np.linspace(-1, 1, 6).reshape(2, 3)), _param([0.5, 0.25])]
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], **kwargs)
    _run(opt, params, 3, 0)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1] and [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert all(isinstance(v, (gpuad.Tensor, int)) for s in sd["state"].values() for v in s.values())
    copies = [_param(_host(p)) for p in params]
    resumed = cls([{"params": copies[:1]}, {"params": copies[1:], "lr": 5.0}],
                  **{**kwargs, "lr": 7.0})
    resumed.load_state_dict(_checkpointed(sd) if checkpoint else sd)
    assert [g["lr"] for g in resumed.param_groups] == [kwargs["lr"], 0.03]
    for p, q in zip(params, copies):  # loading copies: the two optimizers share no arrays
        assert all(v is not resumed.state[q].get(k) for k, v in opt.state[p].items()
                   if k != "step")
    _run(opt, params, 3, 3)
    _run(resumed, copies, 3, 3)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(_host(p), _host(q))


def test_load_state_dict_restores_device_and_dtype(device):
    p = _param([1.0, 2.0])
    opt = Adam([p], lr=0.1, amsgrad=True)
    _set_grad(p, [0.5, -0.5])
    opt.step()
    q = _param([1.0, 2.0], device=device, dtype=gpuad.float32)
    other = Adam([q])
    sd = opt.state_dict()
    del sd["param_groups"][0]["decoupled_weight_decay"]  # a checkpoint from before that option
    other.load_state_dict(sd)
    assert other.param_groups[0]["decoupled_weight_decay"] is False
    for key, value in other.state[q].items():
        if key != "step":
            assert backend.device_of(value) == q.device and value.dtype == gpuad.float32, key
    _set_grad(q, [0.5, -0.5])
    other.step()
    assert other.state[q]["step"] == 2 and other.param_groups[0]["amsgrad"]


def test_load_state_dict_errors():
    a, b = _param([1.0]), _param([1.0, 2.0])
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    _set_grad(a, [1.0])
    _set_grad(b, [1.0, 1.0])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match=r"1 parameter group\(s\) but this optimizer has 2"):
        SGD([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict but 1"):
        SGD([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match="has shape"):
        SGD([b, a]).load_state_dict(sd)


def test_constructor_errors():
    p = _param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        SGD(p)
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        SGD([p, np.ones(2)])
    frozen = gpuad.ones(2)  # accepted like torch (fine-tuning freezes layers); it gets no grad
    SGD([frozen, p], lr=0.1).step()
    assert frozen.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="not a leaf"):
        SGD([p * 2])
    with pytest.raises(ValueError, match="appears twice"):
        SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="appears twice"):
        SGD([p, p])
    with pytest.raises(TypeError, match="not a set"):
        SGD([{"params": {p}}])
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="invalid lr"):
        Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="invalid betas"):
        AdamW([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="invalid eps"):
        RMSprop([p], eps=float("nan"))
    with pytest.raises(ValueError, match="invalid initial_accumulator_value"):
        Adagrad([p], initial_accumulator_value=-1)
    p.grad = gpuad.ones(1, dtype=gpuad.float64)
    with pytest.raises(NotImplementedError, match="must define _update"):
        Optimizer([p], {}).step()


def test_repr_lists_groups():
    text = repr(SGD([_param([1.0])], lr=0.5))
    assert text.startswith("SGD (") and "lr: 0.5" in text


# ---- schedulers, by hand ------------------------------------------------------------------------
def _lrs(sched, steps):
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_schedulers_by_hand():
    def opt(lr=1.0):
        return SGD([_param([1.0])], lr=lr, momentum=0.9)
    np.testing.assert_allclose(_lrs(S.StepLR(opt(), 2, gamma=0.5), 5), [1, 1, .5, .5, .25, .25])
    np.testing.assert_allclose(_lrs(S.MultiStepLR(opt(), [1, 3, 3]), 4),
                               [1, .1, .1, .001, .001])
    np.testing.assert_allclose(_lrs(S.ExponentialLR(opt(), 0.5), 3), [1, .5, .25, .125])
    np.testing.assert_allclose(_lrs(S.CosineAnnealingLR(opt(), 2, eta_min=0.2), 4),
                               [1, .6, .2, .6, 1])
    np.testing.assert_allclose(_lrs(S.LinearLR(opt(), 0.25, 0.75, total_iters=2), 3),
                               [.25, .5, .75, .75])
    np.testing.assert_allclose(_lrs(S.LambdaLR(opt(2.0), lambda e: e + 1), 2), [2, 4, 6])
    one = _lrs(S.OneCycleLR(opt(), 1.0, total_steps=10, anneal_strategy="linear"), 9)
    np.testing.assert_allclose(one[:3], [0.04, 0.52, 1.0])  # up over pct_start * 10 - 1 = 2 steps
    np.testing.assert_allclose(one[-2:], [(1 - 4e-6) / 7 + 4e-6, 4e-6])  # down to 0.04 / 1e4
    o = opt()
    seq = S.SequentialLR(o, [S.LinearLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.5)], [3])
    np.testing.assert_allclose(_lrs(seq, 5), [.5, .75, 1, 1, .5, .25])


def test_scheduler_sets_lr_that_the_optimizer_uses():
    p = _param([0.0])
    opt = SGD([p], lr=1.0)
    sched = S.StepLR(opt, 1, gamma=0.5)
    for expected in (-1.0, -1.5, -1.75):
        _set_grad(p, [1.0])
        opt.step()
        sched.step()
        np.testing.assert_allclose(_host(p), [expected])


def test_onecycle_cycles_momentum_and_beta1():
    sgd = SGD([_param([1.0])], lr=0.1)
    S.OneCycleLR(sgd, 1.0, total_steps=10)
    assert sgd.param_groups[0]["momentum"] == 0.95
    adam = Adam([_param([1.0])], betas=(0.5, 0.9))
    sched = S.OneCycleLR(adam, 1.0, total_steps=10, base_momentum=0.8, max_momentum=0.9)
    for _ in range(2):
        sched.step()
    assert adam.param_groups[0]["betas"] == (0.8, 0.9)  # at the peak lr: base_momentum
    with pytest.raises(ValueError, match="cycle_momentum"):
        S.OneCycleLR(Adagrad([_param([1.0])]), 1.0, total_steps=10)
    for _ in range(8):
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 10"):
        sched.step()
    with pytest.raises(ValueError, match="total_steps or both"):
        S.OneCycleLR(sgd, 1.0)


def test_rmsprop_momentum_switched_on_later():
    p = _param([1.0])
    opt = RMSprop([p], lr=0.1)
    S.OneCycleLR(opt, 1.0, total_steps=10)  # sets momentum 0.95 after the state was planned
    _set_grad(p, [1.0])
    opt.step()
    assert "momentum_buffer" in opt.state[p]


def test_scheduler_state_dict_round_trip():
    def build():
        opt = SGD([_param([1.0])], lr=1.0)
        return opt, S.SequentialLR(opt, [S.LambdaLR(opt, lambda e: 0.5 ** e),
                                         S.CosineAnnealingLR(opt, 6)], milestones=[3])
    opt, sched = build()
    for _ in range(4):
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd and "lr_lambdas" not in sd["_schedulers"][0]
    opt2, sched2 = build()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sd)
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_scheduler_errors_and_resume():
    opt = SGD([_param([1.0])], lr=1.0)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 1)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(opt, 1, last_epoch=3)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="one milestone fewer"):
        S.SequentialLR(opt, [S.StepLR(opt, 1)], milestones=[2])
    # resuming: the optimizer's state dict brings initial_lr and epoch 3's lr; the scheduler goes
    # on from that lr (torch's chainable form), to epoch 4
    opt.param_groups[0].update(initial_lr=1.0, lr=0.5)
    assert S.StepLR(opt, 2, gamma=0.5, last_epoch=3).get_last_lr() == [0.25]

