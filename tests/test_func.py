"""gpuad.func (JAX / torch.func-style transforms): every transform on functions of several inputs
with batch-leading shapes, against central-difference Jacobians in float64, on every backend;
nesting, has_aux, argnums, the caller's tensors left alone, jacobian's cost rule, torch.func as
oracle."""
import numpy as np
import pytest

import gpuad
import gpuad.func as F
from gpuad import backend

F64 = gpuad.float64


def host(t):
    return backend.asnumpy(t.array)


def sample(device, *shape, seed=0, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed + len(shape) + sum(shape))
    return gpuad.tensor(rng.uniform(low, high, shape), dtype=F64, device=device)


def numeric_jacobian(f, args, i, eps=1e-6):
    """d f(*args) / d args[i] by central differences, as a numpy array of shape out + in."""
    x = args[i]
    base = host(x)

    def at(values):
        shifted = list(args)
        shifted[i] = gpuad.tensor(values, dtype=F64, device=x.device)
        return host(f(*shifted)).astype(np.float64)
    jac = np.zeros(at(base).shape + base.shape)
    for idx in np.ndindex(*base.shape):
        step = np.zeros_like(base)
        step[idx] = eps
        jac[(Ellipsis,) + idx] = (at(base + step) - at(base - step)) / (2 * eps)
    return jac


def close(got, want, tol=1e-6):
    np.testing.assert_allclose(host(got), want, rtol=tol, atol=tol)


# Functions of several inputs; x has a leading batch dimension.
def layer(x, w, b):  # (B, 4), (4, 3), (3,) -> (B, 3)
    return gpuad.tanh(x @ w + b) * gpuad.sigmoid(x[:, :3])


def loss(x, w, b):  # scalar
    lse = gpuad.logsumexp(layer(x, w, b), dim=-1)
    return lse.mean() + (w ** 2).sum() * 0.1 + gpuad.sin(b).sum()


def inputs(device):
    return sample(device, 2, 4, seed=1), sample(device, 4, 3, seed=2), sample(device, 3, seed=3)


# ---- grad, value_and_grad ------------------------------------------------------------------------
def test_grad_matches_finite_differences_for_every_argnum(device):
    args = inputs(device)
    grads = F.grad(loss, argnums=(0, 1, 2))(*args)
    assert isinstance(grads, tuple) and len(grads) == 3
    for i, g in enumerate(grads):
        assert g.shape == args[i].shape and g.device == gpuad.device(device)
        close(g, numeric_jacobian(loss, args, i))
    g1 = F.grad(loss, argnums=1)(*args)  # an int argnums gives the gradient itself
    assert isinstance(g1, gpuad.Tensor)
    close(g1, host(grads[1]), 0)
    close(F.grad(loss, argnums=-1)(*args), host(grads[2]), 0)


def test_value_and_grad_and_keyword_arguments(device):
    x, w, b = inputs(device)

    def scaled(x, w, b, *, scale):
        return loss(x, w, b) * scale
    value, (gx, gb) = F.value_and_grad(scaled, argnums=(0, 2))(x, w, b, scale=3.0)
    close(value, 3.0 * loss(x, w, b).item())
    close(gx, 3.0 * numeric_jacobian(loss, (x, w, b), 0))
    close(gb, 3.0 * numeric_jacobian(loss, (x, w, b), 2))


def test_has_aux_returns_aux_untouched_by_differentiation(device):
    x, w, b = inputs(device)

    def with_aux(x, w):
        h = layer(x, w, b)
        return h.sum(), {"h": h, "label": "hidden"}
    g, aux = F.grad(with_aux, argnums=1, has_aux=True)(x, w)
    close(g, numeric_jacobian(lambda x, w: layer(x, w, b).sum(), (x, w), 1))
    assert aux["label"] == "hidden" and not aux["h"].requires_grad
    close(aux["h"], host(layer(x, w, b)), 0)
    (value, aux), g2 = F.value_and_grad(with_aux, argnums=1, has_aux=True)(x, w)
    close(value, host(layer(x, w, b)).sum())
    close(g2, host(g), 0)
    jac, aux = F.jacrev(lambda x: (layer(x, w, b), x.sum()), has_aux=True)(x)
    assert jac.shape == (2, 3, 2, 4) and aux.item() == pytest.approx(host(x).sum())
    out, vjp_fn, aux = F.vjp(lambda x: (layer(x, w, b), 7), x, has_aux=True)
    assert aux == 7 and vjp_fn(gpuad.ones_like(out))[0].shape == x.shape
    out, pushed, aux = F.jvp(lambda x: (layer(x, w, b), 7), (x,), (gpuad.ones_like(x),),
                             has_aux=True)
    assert aux == 7 and pushed.shape == out.shape


def test_grad_requires_a_scalar_and_float_inputs():
    x = gpuad.ones(3, dtype=F64)
    with pytest.raises(RuntimeError, match="scalar.*jacrev"):
        F.grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match="int64.*floating point"):
        F.grad(lambda x: x.sum())(gpuad.arange(3))
    with pytest.raises(ValueError, match="argnums"):
        F.grad(lambda x: x.sum(), argnums=1)(x)
    with pytest.raises(TypeError, match="pair"):
        F.grad(lambda x: x.sum(), has_aux=True)(x)


def test_unused_input_gets_a_zero_gradient(device):
    x, w, _ = inputs(device)
    gx, gw = F.grad(lambda x, w: (x ** 2).sum(), argnums=(0, 1))(x, w)
    close(gw, np.zeros(w.shape), 0)
    close(gx, 2 * host(x))


# ---- nesting and the caller's tensors ------------------------------------------------------------
def test_grad_of_grad_of_sin_and_cube(device):
    x = sample(device, 5, seed=4)
    d2_sin = F.grad(lambda x: F.grad(lambda y: gpuad.sin(y).sum())(x).sum())(x)
    close(d2_sin, -np.sin(host(x)))
    s = gpuad.tensor(1.7, dtype=F64, device=device)

    def cube(x):
        return x ** 3
    assert F.grad(cube)(s).item() == pytest.approx(3 * 1.7 ** 2)
    assert F.grad(F.grad(cube))(s).item() == pytest.approx(6 * 1.7)
    assert F.grad(F.grad(F.grad(cube)))(s).item() == pytest.approx(6.0)
    assert F.grad(F.grad(F.grad(F.grad(cube))))(s).item() == 0.0


def test_inner_transform_sees_the_outer_input_through_a_closure(device):
    """f(x) = sum_i d/dy sin(x_i y)|_{y=y0} = sum_i x_i cos(x_i y0); its gradient differentiates the
    inner gradient with respect to a tensor the inner transform only captured."""
    x, y0 = sample(device, 4, seed=5), gpuad.tensor(0.8, dtype=F64, device=device)

    def f(x):
        return F.grad(lambda y: gpuad.sin(x * y).sum())(y0)
    xs = host(x)
    close(f(x), (xs * np.cos(xs * 0.8)).sum())
    close(F.grad(f)(x), np.cos(xs * 0.8) - xs * 0.8 * np.sin(xs * 0.8))


def test_callers_tensors_are_untouched(device):
    x, w, b = inputs(device)
    before = [host(t).copy() for t in (x, w, b)]
    results = [F.grad(loss, (0, 1, 2))(x, w, b), F.vjp(layer, x, w, b)[0],
               F.jvp(layer, (x, w, b), (x, w, b))[1], F.jacrev(layer)(x, w, b),
               F.jacfwd(layer, 1)(x, w, b), F.hessian(loss, 2)(x, w, b),
               F.hvp(lambda b: loss(x, w, b), b, b)[1], F.jacobian(layer, (x, w, b))]
    for t, old in zip((x, w, b), before):
        assert not t.requires_grad and t.grad is None and t.is_leaf
        np.testing.assert_array_equal(host(t), old)
    flat = [r for item in results for r in (item if isinstance(item, tuple) else (item,))]
    assert not any(r.requires_grad for r in flat)  # nothing outside was recording


def test_inputs_that_require_grad_get_differentiable_results():
    """As in torch.func, the caller's own autograd sees through a transform: grad(f)(x) with x
    requiring grad is differentiable (gradcheck of x -> grad f(x) checks the Hessian)."""
    x, w, b = (t.requires_grad_() for t in inputs("cpu"))
    g = F.grad(loss, (0, 1))(x, w, b)
    assert all(t.requires_grad for t in g)
    assert gpuad.gradcheck(lambda x, w, b: F.grad(loss, (0, 1))(x, w, b), [x, w, b])
    assert gpuad.gradcheck(lambda x, w, b: F.jacrev(layer, 1)(x, w, b), [x, w, b])
    assert x.grad is None


def test_closed_over_parameters_stay_differentiable():
    """A parameter the function only captures (not an argnum) keeps the gradient on the tape."""
    w = gpuad.tensor([0.5, -1.0], dtype=F64, requires_grad=True)
    x = gpuad.tensor([1.0, 2.0], dtype=F64)
    gx = F.grad(lambda x: gpuad.sin(w * x).sum())(x)  # w cos(w x)
    gx.sum().backward()
    ws, xs = host(w), host(x)
    np.testing.assert_allclose(host(w.grad), np.cos(ws * xs) - ws * xs * np.sin(ws * xs))


def test_transforms_work_under_no_grad():
    x, w, b = inputs("cpu")
    with gpuad.no_grad():
        g = F.grad(loss, 1)(x, w, b)
        h = F.hessian(lambda b: loss(x, w, b))(b)
    assert not g.requires_grad and not h.requires_grad
    close(g, numeric_jacobian(loss, (x, w, b), 1))
    close(h, host(F.hessian(loss, 2)(x, w, b)), 0)


# ---- vjp, jvp ----------------------------------------------------------------------------------
def test_vjp_is_u_times_the_jacobian(device):
    args = inputs(device)
    out, vjp_fn = F.vjp(layer, *args)
    close(out, host(layer(*args)), 0)
    assert not out.requires_grad
    for seed in (6, 7):  # vjp_fn can be called again
        u = sample(device, *out.shape, seed=seed)
        grads = vjp_fn(u)
        assert len(grads) == 3
        for i, g in enumerate(grads):
            jac = numeric_jacobian(layer, args, i)
            close(g, np.tensordot(host(u), jac, axes=u.ndim))


def test_vjp_of_several_outputs(device):
    x, w, b = inputs(device)

    def two(x, w):
        return layer(x, w, b), (x * w[:, 0]).sum(-1)
    (h, s), vjp_fn = F.vjp(two, x, w)
    u, v = sample(device, *h.shape, seed=8), sample(device, *s.shape, seed=9)
    gx, gw = vjp_fn((u, v))
    for i, g in ((0, gx), (1, gw)):
        want = (np.tensordot(host(u), numeric_jacobian(lambda *a: two(*a)[0], (x, w), i), 2)
                + np.tensordot(host(v), numeric_jacobian(lambda *a: two(*a)[1], (x, w), i), 1))
        close(g, want)
    with pytest.raises(ValueError, match="expected a tuple of 2 cotangent"):
        vjp_fn(u)


def test_jvp_is_the_jacobian_times_t(device):
    args = inputs(device)
    tangents = tuple(sample(device, *a.shape, seed=10 + i) for i, a in enumerate(args))
    out, pushed = F.jvp(layer, args, tangents)
    close(out, host(layer(*args)), 0)
    want = sum(np.tensordot(numeric_jacobian(layer, args, i), host(t), axes=t.ndim)
               for i, t in enumerate(tangents))
    close(pushed, want)
    x = sample(device, 3, seed=11)  # a single tensor may stand for the one-element tuple
    _, pushed = F.jvp(gpuad.exp, x, gpuad.ones_like(x))
    close(pushed, np.exp(host(x)))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        F.jvp(gpuad.exp, (x,), (gpuad.ones(2, dtype=F64, device=device),))


def test_jvp_of_several_outputs_and_an_integer_output(device):
    x = sample(device, 3, 4, seed=12)
    t = sample(device, 3, 4, seed=13)
    (_, indices), (dv, di) = F.jvp(lambda x: gpuad.max(x, dim=1), (x,), (t,))
    rows = np.arange(3)
    close(dv, host(t)[rows, host(indices)])
    assert host(di).tolist() == [0, 0, 0]
    _, (da, db) = F.jvp(lambda x: (x.sum(0), gpuad.exp(x)), (x,), (t,))
    close(da, host(t).sum(0))
    close(db, np.exp(host(x)) * host(t))


# ---- Jacobians ---------------------------------------------------------------------------------
def test_jacrev_jacfwd_and_jacobian_agree_with_finite_differences(device):
    args = inputs(device)
    numeric = [numeric_jacobian(layer, args, i) for i in range(3)]
    rev = F.jacrev(layer, argnums=(0, 1, 2))(*args)
    fwd = F.jacfwd(layer, argnums=(0, 1, 2))(*args)
    both = [F.jacobian(layer, args, mode=m) for m in ("reverse", "forward", "auto")]
    for i, a in enumerate(args):
        assert rev[i].shape == (2, 3) + a.shape
        for jac in (rev[i], fwd[i]) + tuple(j[i] for j in both):
            assert jac.shape == (2, 3) + a.shape and jac.device == gpuad.device(device)
            close(jac, numeric[i])
    single = F.jacrev(layer, argnums=1)(*args)
    assert isinstance(single, gpuad.Tensor)
    close(single, host(rev[1]), 0)
    close(F.jacobian(lambda w: layer(args[0], w, args[2]), args[1]), host(rev[1]), 1e-12)
    with pytest.raises(ValueError, match="mode"):
        F.jacobian(gpuad.exp, args[0], mode="sideways")


def test_jacobians_of_scalar_and_tuple_outputs(device):
    x, w, b = inputs(device)
    for jac in (F.jacrev, F.jacfwd):
        g = jac(loss)(x, w, b)  # scalar output: the gradient
        close(g, numeric_jacobian(loss, (x, w, b), 0))
        (j1, j2) = jac(lambda w: (layer(x, w, b), w.sum()))(w)
        assert j1.shape == (2, 3, 4, 3) and j2.shape == (4, 3)
        close(j1, numeric_jacobian(layer, (x, w, b), 1))
        close(j2, np.ones((4, 3)))


def _count_pullbacks(monkeypatch):
    calls = []
    real = F.run_backward

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(F, "run_backward", counting)
    return calls


@pytest.mark.parametrize("n_in,n_out,mode,passes", [(12, 2, "reverse", 2), (2, 12, "forward", 3)])
def test_jacobian_auto_follows_the_cost_rule(monkeypatch, n_in, n_out, mode, passes):
    """Reverse costs one backward per output element, forward (double vjp) one to record the
    pullback plus one per input element; auto picks reverse exactly when n_out < n_in."""
    assert F._choose_mode(n_in, n_out) == mode
    assert F._choose_mode(5, 5) == "forward"
    x = sample("cpu", n_in, seed=14)
    a = sample("cpu", n_out, n_in, seed=15)

    def f(x):
        return gpuad.tanh(a @ x)
    expected = F.jacobian(f, x, mode=mode)
    calls = _count_pullbacks(monkeypatch)
    jac = F.jacobian(f, x)
    assert len(calls) == passes
    close(jac, host(expected), 1e-12)
    close(jac, numeric_jacobian(f, (x,), 0))


# ---- Hessians ----------------------------------------------------------------------------------
def test_hessian_matches_finite_differences_of_the_gradient(device):
    x, w, b = inputs(device)
    for i, a in enumerate((x, w, b)):
        hess = F.hessian(loss, argnums=i)(x, w, b)
        assert hess.shape == a.shape + a.shape
        numeric = numeric_jacobian(F.grad(loss, argnums=i), (x, w, b), i)
        close(hess, numeric, 1e-5)
        flat = host(hess).reshape(a.numel(), a.numel())
        np.testing.assert_allclose(flat, flat.T, atol=1e-12)


def test_hessian_blocks_for_a_tuple_of_argnums(device):
    x, w, b = inputs(device)
    blocks = F.hessian(loss, argnums=(1, 2))(x, w, b)
    assert len(blocks) == 2 and all(len(row) == 2 for row in blocks)
    for r, ar in enumerate((w, b)):
        for c, ac in enumerate((w, b)):
            assert blocks[r][c].shape == ar.shape + ac.shape
            numeric = numeric_jacobian(F.grad(loss, argnums=1 + r), (x, w, b), 1 + c)
            close(blocks[r][c], numeric, 1e-5)


def test_hvp_is_the_hessian_times_v(device):
    x, w, b = inputs(device)
    v = sample(device, *w.shape, seed=16)
    value, hv = F.hvp(lambda w: loss(x, w, b), w, v)
    close(value, loss(x, w, b).item())
    hess = host(F.hessian(loss, 1)(x, w, b)).reshape(12, 12)
    close(hv, (hess @ host(v).reshape(12)).reshape(4, 3), 1e-10)
    vs = (sample(device, *x.shape, seed=17), v)
    value, (hx, hw) = F.hvp(lambda x, w: loss(x, w, b), (x, w), vs)
    (hxx, hxw), (hwx, hww) = F.hessian(loss, (0, 1))(x, w, b)
    vx, vw = host(vs[0]), host(vs[1])
    close(hx, np.tensordot(host(hxx), vx, 2) + np.tensordot(host(hxw), vw, 2), 1e-10)
    close(hw, np.tensordot(host(hwx), vx, 2) + np.tensordot(host(hww), vw, 2), 1e-10)


def test_jacrev_of_jacrev_equals_hessian(device):
    x, w, b = inputs(device)
    close(F.jacrev(F.jacrev(loss, 2), 2)(x, w, b), host(F.hessian(loss, 2)(x, w, b)), 1e-12)
    close(F.jacfwd(F.jacfwd(loss, 2), 2)(x, w, b), host(F.hessian(loss, 2)(x, w, b)), 1e-12)


# ---- PyTorch as oracle ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # torch's
def test_matches_torch_func():
    torch = pytest.importorskip("torch")
    tf = torch.func
    x, w, b = inputs("cpu")
    tx, tw, tb = (torch.tensor(host(t)) for t in (x, w, b))

    def t_layer(x, w, b):
        return torch.tanh(x @ w + b) * torch.sigmoid(x[:, :3])

    def t_loss(x, w, b):
        return (torch.logsumexp(t_layer(x, w, b), dim=-1).mean() + (w ** 2).sum() * 0.1
                + torch.sin(b).sum())
    for ours, theirs in zip(F.jacrev(layer, (0, 1, 2))(x, w, b),
                            tf.jacrev(t_layer, (0, 1, 2))(tx, tw, tb)):
        close(ours, theirs.numpy(), 1e-12)
    for a in range(3):
        close(F.hessian(loss, a)(x, w, b), tf.hessian(t_loss, a)(tx, tw, tb).numpy(), 1e-12)
    ts = tuple(sample("cpu", *t.shape, seed=20 + i) for i, t in enumerate((x, w, b)))
    out, pushed = F.jvp(layer, (x, w, b), ts)
    t_out, t_pushed = tf.jvp(t_layer, (tx, tw, tb), tuple(torch.tensor(host(t)) for t in ts))
    close(out, t_out.numpy(), 1e-12)
    close(pushed, t_pushed.numpy(), 1e-12)
    u = sample("cpu", 2, 3, seed=23)
    _, vjp_fn = F.vjp(layer, x, w, b)
    _, t_vjp_fn = tf.vjp(t_layer, tx, tw, tb)
    for ours, theirs in zip(vjp_fn(u), t_vjp_fn(torch.tensor(host(u)))):
        close(ours, theirs.numpy(), 1e-12)
    value, grads = F.value_and_grad(loss, (0, 2))(x, w, b)
    t_grads, t_value = tf.grad_and_value(t_loss, (0, 2))(tx, tw, tb)
    close(value, t_value.item(), 1e-12)
    for ours, theirs in zip(grads, t_grads):
        close(ours, theirs.numpy(), 1e-12)


# ---- grad_and_value, grad over dicts of tensors, functional_call ---------------------------------
def test_grad_and_value_and_gradients_of_a_dict_of_tensors():
    params = {"w": sample("cpu", 3, 2), "b": [sample("cpu", 2, seed=1)]}
    x = sample("cpu", 4, 3, seed=2)

    def loss(p, x):
        return ((x @ p["w"] + p["b"][0]) ** 2).sum()
    grads, value = F.grad_and_value(loss)(params, x)
    assert set(grads) == {"w", "b"} and isinstance(grads["b"], list)
    w, b = (params["w"].detach().requires_grad_(), params["b"][0].detach().requires_grad_())
    expected = loss({"w": w, "b": [b]}, x)
    expected.backward()
    close(value, host(expected), 1e-12)
    close(grads["w"], host(w.grad), 1e-12)
    close(grads["b"][0], host(b.grad), 1e-12)
    (g, (v, aux)) = F.grad_and_value(lambda p: (loss(p, x), 7), has_aux=True)(params)
    assert aux == 7 and v.item() == value.item()


def _net(nn):
    net = nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 1))
    return net.double() if hasattr(net, "double") else net


def test_functional_call_runs_replacements_and_leaves_the_module_alone():
    net = _net(gpuad.nn)
    before = {k: (p, host(p).copy()) for k, p in net.named_parameters()}
    new = {k: gpuad.zeros_like(p) + 0.5 for k, p in net.named_parameters()}
    x = sample("cpu", 3, 1)
    out = F.functional_call(net, new, x)
    h = np.tanh(host(x) * 0.5 + 0.5)
    close(out, 6 * h * 0.5 + 0.5, 1e-12)
    for k, p in net.named_parameters():
        assert p is before[k][0] and np.array_equal(host(p), before[k][1])
    with pytest.raises(ValueError):  # the module is put back when the call raises, too
        F.functional_call(net, new, (sample("cpu", 3, 2),))
    assert all(p is before[k][0] for k, p in net.named_parameters())
    partial = F.functional_call(net, {"2.bias": gpuad.tensor([10.0], dtype=F64)}, (x,))
    close(partial - net(x), np.full((3, 1), 10.0 - host(net[2].bias)[0]), 1e-12)


def test_functional_call_maml_step_matches_torch():
    torch = pytest.importorskip("torch")
    net = _net(gpuad.nn)
    tnet = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Tanh(),
                               torch.nn.Linear(6, 1)).double()
    with torch.no_grad():
        for (_, tp), p in zip(tnet.named_parameters(), net.parameters()):
            tp.copy_(torch.tensor(host(p)))
    x = sample("cpu", 8, 1, seed=3)
    y = gpuad.sin(x)

    def maml(functional_call, params, grad, mse, x, y):
        inner = mse(functional_call(net_or_t[0], params, (x,)), y)
        grads = grad(inner, list(params.values()), create_graph=True)
        fast = {k: p - 0.1 * g for (k, p), g in zip(params.items(), grads)}
        return mse(functional_call(net_or_t[0], fast, (x,)), y)
    net_or_t = [net]
    params = dict(net.named_parameters())
    maml(F.functional_call, params, gpuad.grad, gpuad.nn.functional.mse_loss, x, y).backward()
    net_or_t[0] = tnet
    tparams = dict(tnet.named_parameters())
    tx = torch.tensor(host(x))
    maml(torch.func.functional_call, tparams, torch.autograd.grad,
         torch.nn.functional.mse_loss, tx, torch.sin(tx)).backward()
    for (k, p), tp in zip(net.named_parameters(), tnet.parameters()):
        close(p.grad, tp.grad.numpy(), 1e-10)


def test_functional_call_ties_strictness_and_errors_like_torch():
    torch = pytest.importorskip("torch")

    def tied(nn):
        m = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
        m[1].weight = m[0].weight
        return m
    g, t = tied(gpuad.nn), tied(torch.nn)
    x, tx = gpuad.ones(1, 2), torch.ones(1, 2)
    eye, teye = gpuad.eye(2), torch.eye(2)
    close(F.functional_call(g, {"0.weight": eye * 2}, x), [[4.0, 4.0]], 0)  # both layers
    close(F.functional_call(g, {"0.weight": eye * 2}, x, tie_weights=False),
          host(x @ (eye * 2) @ g[1].weight.mT), 1e-6)
    cases = [lambda f, m, e, a: f(m, {"0.weight": e, "1.weight": e * 2}, a),
             lambda f, m, e, a: f(m, ({"0.weight": e}, {"0.weight": e}), a),
             lambda f, m, e, a: f(m, [{"0.weight": e}, 3], a),
             lambda f, m, e, a: f(m, 3, a)]
    for case in cases:
        with pytest.raises(ValueError) as expected:
            case(torch.func.functional_call, t, teye, tx)
        with pytest.raises(ValueError) as got:
            case(F.functional_call, g, eye, x)
        assert str(got.value).split("[")[0][:20] == str(expected.value).split("[")[0][:20]
    with pytest.raises(RuntimeError) as expected:
        torch.func.functional_call(t, {"0.weight": teye, "x": teye}, tx, strict=True)
    with pytest.raises(RuntimeError) as got:
        F.functional_call(g, {"0.weight": eye, "x": eye}, x, strict=True)
    assert str(got.value).split("\n")[1:] == str(expected.value).split("\n")[1:]
    close(F.functional_call(g, {"0.weight": eye, "1.weight": eye}, x, strict=True), [[1, 1]], 0)
