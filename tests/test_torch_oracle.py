"""PyTorch as an optional oracle: forward values and gradients of the elementwise ops, including at
their kinks (0 for relu/abs, clamp bounds, ties for maximum), where conventions differ most.
Skipped when torch is not importable; torch is never a dependency."""
import numpy as np
import pytest

import gpuad

EDGES = np.array([-2.0, -0.5, 0.0, 0.5, 1.0, 2.5, -1e-3, 30.0])

UNARY = {
    "exp": ("exp", {}), "tanh": ("tanh", {}), "sigmoid": ("sigmoid", {}),
    "relu": ("relu", {}), "abs": ("abs", {}), "sin": ("sin", {}), "erf": ("erf", {}),
    "leaky_relu": ("nn.functional.leaky_relu", {"negative_slope": 0.2}),
    "elu": ("nn.functional.elu", {"alpha": 0.7}), "gelu": ("nn.functional.gelu", {}),
    "gelu_tanh": ("nn.functional.gelu", {"approximate": "tanh"}),
    "silu": ("nn.functional.silu", {}),
    "softplus": ("nn.functional.softplus", {"beta": 2.0, "threshold": 5.0}),
    "clamp": ("clamp", {"min": -0.5, "max": 1.0}), "expm1": ("expm1", {}),
}


def _torch_fn(torch, path):
    fn = torch
    for part in path.split("."):
        fn = getattr(fn, part)
    return fn


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(name):
    torch = pytest.importorskip("torch")
    path, kwargs = UNARY[name]
    ours = getattr(gpuad, name.replace("_tanh", ""))
    x = gpuad.tensor(EDGES, requires_grad=True)
    tx = torch.tensor(EDGES, requires_grad=True)
    y, ty = ours(x, **kwargs), _torch_fn(torch, path)(tx, **kwargs)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    v = np.linspace(-1, 1, EDGES.size)
    (y * gpuad.tensor(v)).sum().backward()
    (ty * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["maximum", "minimum", "pow", "div", "where"])
def test_binary_matches_torch_including_ties(name):
    torch = pytest.importorskip("torch")
    a_np = np.array([1.0, 2.0, 3.0, 0.5, 2.0])
    b_np = np.array([1.0, 3.0, 2.0, 0.5, -1.0])
    a, b = gpuad.tensor(a_np, requires_grad=True), gpuad.tensor(b_np, requires_grad=True)
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    if name == "where":
        y, ty = gpuad.where(a > b, a, b), torch.where(ta > tb, ta, tb)
    else:
        y, ty = getattr(gpuad, name)(a, b), getattr(torch, name)(ta, tb)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


def test_type_promotion_matches_torch():
    torch = pytest.importorskip("torch")
    pairs = [(np.float32, np.float64, True, True), (np.float32, np.int64, True, True),
             (np.float32, np.float64, True, False), (np.int64, np.int32, True, True),
             (np.int64, np.bool_, True, True), (np.float16, np.float32, False, True)]
    for da, db, a_dims, b_dims in pairs:
        a = np.ones((2,) if a_dims else (), dtype=da)
        b = np.ones((2,) if b_dims else (), dtype=db)
        ours = (gpuad.tensor(a) + gpuad.tensor(b)).dtype
        theirs = (torch.from_numpy(a) + torch.from_numpy(b)).dtype
        assert str(theirs) == f"torch.{ours}", (da, db, a_dims, b_dims)
    for scalar in (2, 2.5, True):
        for dt in (np.float32, np.int64, np.bool_):
            ours = (gpuad.tensor(np.ones(2, dtype=dt)) * scalar).dtype
            torch_dtype = getattr(torch, np.dtype(dt).name if dt is not np.bool_ else "bool")
            theirs = (torch.ones(2, dtype=torch_dtype) * scalar).dtype
            assert str(theirs) == f"torch.{ours}", (dt, scalar)
