"""Higher-order derivatives through the engine: backward(create_graph=True) and
gpuad.grad(..., create_graph=True) record the backward pass itself, so gradients differentiate
again.
Closed forms for second and third derivatives, Hessians against finite differences of the gradient,
and a gradient-penalty training step against the same step derived by hand."""
import numpy as np
import pytest

import gpuad
from gpuad import backend

F64 = gpuad.float64


def host(t):
    return backend.asnumpy(t.array)


def leaf(values, device):
    return gpuad.tensor(values, dtype=F64, device=device, requires_grad=True)


def derivatives(f, x, order):
    """[f(x), f'(x), ..., f^(order)(x)] elementwise, each by one more create_graph grad."""
    out = [f(x)]
    for _ in range(order):
        (g,) = gpuad.grad(out[-1].sum(), x, create_graph=True)
        out.append(g)
    return out


def _tanh(x):
    t = np.tanh(x)
    return [t, 1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2)]


def _sin_exp(x):
    e, s, c = np.exp(x), np.sin(x), np.cos(x)
    return [e * s, e * (s + c), 2 * e * c, 2 * e * (c - s)]


def _power(x, p=2.5):
    return [x ** p, p * x ** (p - 1), p * (p - 1) * x ** (p - 2),
            p * (p - 1) * (p - 2) * x ** (p - 3)]


CLOSED_FORMS = {
    "tanh": (gpuad.tanh, _tanh, [-1.3, -0.2, 0.4, 1.1]),
    "sin_exp": (lambda x: gpuad.sin(x) * gpuad.exp(x), _sin_exp, [-1.0, 0.3, 0.9, 2.0]),
    "x_pow_p": (lambda x: x ** 2.5, _power, [0.4, 1.0, 1.7, 3.0]),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_second_and_third_derivatives_match_closed_forms(name, device):
    fn, closed, points = CLOSED_FORMS[name]
    x = leaf(points, device)
    got = derivatives(fn, x, 3)
    for k, (g, want) in enumerate(zip(got, closed(np.array(points)))):
        np.testing.assert_allclose(host(g), want, rtol=1e-10, atol=1e-12, err_msg=f"order {k}")
        assert g.device == gpuad.device(device)
    assert x.grad is None  # gpuad.grad fills no .grad


def test_backward_create_graph_gives_a_differentiable_grad(device):
    x = leaf([0.5, -0.7], device)
    (x ** 4).sum().backward(create_graph=True)  # x.grad = 4 x^3, itself on the tape
    assert x.grad.requires_grad
    first = x.grad
    x.grad = None
    first.sum().backward(create_graph=True)  # 12 x^2
    np.testing.assert_allclose(host(x.grad), 12 * host(x) ** 2)
    second = x.grad
    x.grad = None
    second.sum().backward()  # 24 x
    np.testing.assert_allclose(host(x.grad), 24 * host(x))


def test_log_sum_exp_gradient_hessian_and_third_derivative(device):
    """lse(x): gradient softmax s, Hessian diag(s) - s s^T, third derivative
    T_ijk = s_i(d_ij - s_j)(d_ik - s_k) - s_i s_j (d_jk - s_k), contracted with v, w."""
    rng = np.random.default_rng(0)
    xs, v, w = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    x = leaf(xs, device)
    (g,) = gpuad.grad(gpuad.logsumexp(x, dim=0), x, create_graph=True)
    s = np.exp(xs - xs.max())
    s /= s.sum()
    np.testing.assert_allclose(host(g), s, rtol=1e-12)
    hess_rows = [gpuad.grad(g[i], x, retain_graph=True)[0] for i in range(5)]
    hess = np.stack([host(r) for r in hess_rows])
    np.testing.assert_allclose(hess, np.diag(s) - np.outer(s, s), atol=1e-12)
    tv = gpuad.tensor(v, dtype=F64, device=device)
    tw = gpuad.tensor(w, dtype=F64, device=device)
    (hv,) = gpuad.grad((g * tv).sum(), x, create_graph=True)  # H v
    (third,) = gpuad.grad((hv * tw).sum(), x)  # sum_ij w_i v_j T_ijk
    eye = np.eye(5)
    tensor = (np.einsum("i,ij,ik->ijk", s, eye - s, eye - s)
              - np.einsum("i,j,jk->ijk", s, s, eye - s))
    np.testing.assert_allclose(host(third), np.einsum("i,j,ijk->k", w, v, tensor), atol=1e-12)


# ---- Hessians against finite differences of the gradient --------------------------------------
def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _softmax_xent(x):
    logits = x.reshape(2, 3) @ gpuad.tensor([[0.3, -1.0], [0.7, 0.2], [-0.5, 0.4]], dtype=F64,
                                            device=x.device)
    return (gpuad.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def _batch_mlp(x):
    w = x[:6].reshape(3, 2)
    batch = gpuad.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=F64, device=x.device)
    return (gpuad.tanh(batch @ w) ** 2).sum() + (x[6:] * x[:2]).prod()


HESSIAN_FUNCTIONS = {"rosenbrock": (_rosenbrock, 4), "softmax_xent": (_softmax_xent, 6),
                     "batch_mlp": (_batch_mlp, 8)}


def _gradient(f, x_host, device):
    x = leaf(x_host, device)
    return host(gpuad.grad(f(x), x)[0])


@pytest.mark.parametrize("name", sorted(HESSIAN_FUNCTIONS))
def test_hessian_from_double_backward_matches_finite_differences_of_the_gradient(name, device):
    f, n = HESSIAN_FUNCTIONS[name]
    xs = np.random.default_rng(1).uniform(-1, 1, n)
    x = leaf(xs, device)
    (g,) = gpuad.grad(f(x), x, create_graph=True)
    hess = np.stack([host(gpuad.grad(g[i], x, retain_graph=True)[0]) for i in range(n)])
    eps = 1e-6
    numeric = np.stack([(_gradient(f, xs + eps * e, device) - _gradient(f, xs - eps * e, device))
                        / (2 * eps) for e in np.eye(n)], axis=1)
    np.testing.assert_allclose(hess, numeric, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess, hess.T, atol=1e-10)


# ---- a gradient-penalty training step ------------------------------------------------------------
def _penalty_step_by_hand(w, x, lam, lr):
    """D(x_b) = tanh(x_b . w), so dD/dx_b = a_b w with a_b = 1 - t_b^2 > 0 and the penalty is
    mean_b (a_b |w| - 1)^2. Loss = mean_b t_b + lam * penalty; its gradient in w by hand."""
    t = np.tanh(x @ w)
    a = 1 - t ** 2
    n = np.linalg.norm(w)
    r = a * n - 1
    loss = t.mean() + lam * (r ** 2).mean()
    d_mean = (a[:, None] * x).mean(0)
    d_penalty = (2 * r[:, None] * (n * (-2 * t * a)[:, None] * x + a[:, None] * w / n)).mean(0)
    grad = d_mean + lam * d_penalty
    return loss, grad, w - lr * grad


def test_gradient_penalty_training_step_matches_the_hand_derivation(device):
    rng = np.random.default_rng(2)
    xs, w0 = rng.standard_normal((6, 3)), rng.standard_normal(3)
    lam, lr = 10.0, 0.05
    w = gpuad.nn.Parameter(gpuad.tensor(w0, dtype=F64, device=device))
    opt = gpuad.optim.SGD([w], lr=lr)
    w_hand = w0
    for _ in range(3):
        x = gpuad.tensor(xs, dtype=F64, device=device, requires_grad=True)
        d = gpuad.tanh(x @ w)
        (dx,) = gpuad.grad(d.sum(), x, create_graph=True)  # per-sample input gradients (B, 3)
        penalty = ((gpuad.norm(dx, dim=1) - 1) ** 2).mean()
        loss = d.mean() + lam * penalty
        opt.zero_grad()
        loss.backward()
        want_loss, want_grad, w_hand = _penalty_step_by_hand(w_hand, xs, lam, lr)
        assert loss.item() == pytest.approx(want_loss, rel=1e-12)
        np.testing.assert_allclose(host(w.grad), want_grad, rtol=1e-10)
        opt.step()
        np.testing.assert_allclose(host(w), w_hand, rtol=1e-10)


def test_gradient_penalty_in_a_two_layer_model_matches_finite_differences():
    """The same penalty through a hidden layer, checked by gradcheck: the function gradchecked
    itself contains a create_graph gradient."""
    rng = np.random.default_rng(3)
    x = gpuad.tensor(rng.standard_normal((4, 3)), dtype=F64)
    w1 = leaf(rng.standard_normal((3, 5)) * 0.7, "cpu")
    w2 = leaf(rng.standard_normal(5), "cpu")

    def penalised(w1, w2):
        xi = x.detach().requires_grad_()
        d = gpuad.tanh(xi @ w1) @ w2
        (dx,) = gpuad.grad(d.sum(), xi, create_graph=True)
        return d.mean() + 3.0 * ((gpuad.norm(dx, dim=1) - 1) ** 2).mean()
    assert gpuad.gradcheck(penalised, [w1, w2])


def test_double_backward_through_a_custom_function_raises():
    """A custom Function's backward works on raw arrays, so it is differentiable once (PyTorch's
    once_differentiable): going through it a second time must raise, never give a wrong answer."""
    class Cube(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g
    x = leaf([1.0, 2.0], "cpu")
    (g,) = gpuad.grad(Cube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])  # the first order is right
    with pytest.raises(RuntimeError, match="Cube: the backward of a custom Function.*cannot be "
                                           "differentiated again"):
        gpuad.grad((g * x).sum(), x)


def test_create_graph_keeps_a_recorded_contribution_after_two_constant_ones():
    """x feeds three constant-gradient uses and one curved one: the walk owns the sum of the first
    two, and adding the recorded third into it in place used to drop its graph (a zero second
    derivative)."""
    x = leaf([-1.0, 0.5], "cpu")
    y = gpuad.exp(x) + gpuad.where(x > 0, x, 0.0) + 2 * x  # the reverse walk meets exp last
    (g,) = gpuad.grad(y.sum(), x, create_graph=True)
    (gg,) = gpuad.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp([-1.0, 0.5]))
