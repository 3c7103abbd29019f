"""RMSNorm and GroupNorm (LayerNorm's rows are in nn_cases.py; its one-op rule is checked at the
end): the op-table checks (forward against numpy on every backend, float64
gradcheck of first and second order, float32 staying float32) over their own rows, then the
modules, errors, and PyTorch twins with copied weights (skipped without torch)."""
import numpy as np
import pytest
import test_ops as table
from op_cases import Case

import gpuad
import gpuad.nn.functional as F
from gpuad import nn


# ---- references (numpy, float64) ---------------------------------------------------------------
def _rms_norm_ref(x, w=None, normalized_shape=(), eps=None):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    eps = np.finfo(x.dtype).eps if eps is None else eps
    y = x / np.sqrt((x * x).mean(axes, keepdims=True) + eps)
    return y if w is None else y * w


def _group_norm_ref(x, w=None, b=None, num_groups=1, eps=1e-5):
    g = x.reshape(x.shape[0], num_groups, -1)
    y = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = y if w is None else y * w.reshape(shape)
    return y if b is None else y + b.reshape(shape)


def _rms_norm(x, w, normalized_shape, **kw):
    return F.rms_norm(x, normalized_shape, w, **kw)


def _group_norm(x, w, b, num_groups, **kw):
    return F.group_norm(x, num_groups, w, b, **kw)


CASES = [
    Case("rms_norm", _rms_norm, _rms_norm_ref, [((2, 3, 4), (4,))],
         kwargs=[{"normalized_shape": (4,)}, {"normalized_shape": (4,), "eps": 1e-3}]),
    Case("rms_norm", _rms_norm, _rms_norm_ref, [((2, 3, 4), (3, 4))],
         kwargs=[{"normalized_shape": (3, 4)}]),
    Case("rms_norm", lambda x, **kw: F.rms_norm(x, (5,), **kw),
         lambda x, **kw: _rms_norm_ref(x, normalized_shape=(5,), **kw), [((3, 5),)],
         kwargs=[{}, {"eps": 0.1}]),
    Case("group_norm", _group_norm, _group_norm_ref,
         [((2, 4, 3), (4,), (4,)), ((2, 6, 2, 2), (6,), (6,)), ((3, 4), (4,), (4,))],
         kwargs=[{"num_groups": 2}, {"num_groups": 1, "eps": 1e-3}]),
    Case("group_norm", _group_norm, _group_norm_ref, [((2, 6, 2, 2), (6,), (6,))],
         kwargs=[{"num_groups": 3}, {"num_groups": 6}]),
    Case("group_norm", lambda x, **kw: F.group_norm(x, 2, **kw),
         lambda x, **kw: _group_norm_ref(x, num_groups=2, **kw), [((2, 4, 3),)]),
]
test_forward, test_gradcheck, test_second_order_gradcheck, test_float32_stays_float32 = \
    table.table_tests(CASES)


# ---- modules ------------------------------------------------------------------------------------
def test_modules_hold_torchs_parameters_and_reprs():
    assert [(k, tuple(v.shape)) for k, v in nn.RMSNorm((2, 3)).state_dict().items()] == [
        ("weight", (2, 3))]
    assert nn.RMSNorm([2, 3], eps=1e-3, elementwise_affine=False).weight is None
    assert repr(nn.RMSNorm(4)) == "RMSNorm((4,), eps=None, elementwise_affine=True)"
    norm = nn.GroupNorm(2, 4)
    assert list(norm.state_dict()) == ["weight", "bias"]
    assert (norm.weight.detach().numpy() == 1).all() and (norm.bias.detach().numpy() == 0).all()
    assert repr(norm) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert list(nn.GroupNorm(2, 4, bias=False).state_dict()) == ["weight"]
    assert list(nn.GroupNorm(2, 4, affine=False).state_dict()) == []


@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (4, 3)), ("BatchNorm2d", (4, 3, 2, 2))])
@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"affine": False, "bias": False}])
def test_batch_norm_bias_switch_matches_torch(cls, shape, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(gpuad.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_modules_run_on_every_backend(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3))
    for module in (nn.RMSNorm(3), nn.GroupNorm(2, 4)):
        module.double()
        with gpuad.no_grad():
            for p in module.parameters():
                p.array[...] = rng.uniform(0.5, 1.5, p.shape)
        want = module(gpuad.tensor(x)).detach().numpy()
        module.to(device)
        got = module(gpuad.tensor(x, device=device))
        assert got.device == gpuad.device(device)
        np.testing.assert_allclose(gpuad.backend.asnumpy(got.array), want, rtol=1e-12)


def test_rms_norm_eps_none_is_the_dtypes_machine_epsilon():
    x = np.full((1, 4), 1e-4)  # mean(x^2) = 1e-8: eps moves the result visibly in float32
    for dtype in (np.float32, np.float64):
        got = F.rms_norm(gpuad.tensor(x.astype(dtype)), (4,)).numpy()
        want = 1e-4 / np.sqrt(1e-8 + np.finfo(dtype).eps)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        assert got.dtype == dtype


# ---- errors -------------------------------------------------------------------------------------
def test_errors_name_the_layer_the_shapes_and_the_fix():
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by "
                                         r"num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"group_norm: the 6 channels .*\(2, 6, 3\).*"
                                         r"num_groups=4.*divides 6"):
        F.group_norm(gpuad.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4.*\(N, 4, \*\), got \(2, 6, 3\)"):
        nn.GroupNorm(2, 4)(gpuad.randn(2, 6, 3))
    with pytest.raises(ValueError, match=r"group_norm: weight of shape \(3,\).*expected \(4,\)"):
        F.group_norm(gpuad.randn(2, 4), 2, gpuad.ones(3))
    with pytest.raises(ValueError, match=r"rms_norm: normalized_shape \(3,\).*\(2, 4\)"):
        nn.RMSNorm(3)(gpuad.randn(2, 4))
    with pytest.raises(TypeError, match="rms_norm: expected a floating point input"):
        F.rms_norm(gpuad.tensor([[1, 2]]), 2)


# ---- PyTorch twins ------------------------------------------------------------------------------
def _twin_check(ours, theirs, x_np, torch):
    """Copy theirs' random weights into ours; compare outputs and all gradients (float64)."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(0.5, 1.5)
    ours.double().load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x, tx = gpuad.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = np.random.default_rng(1).standard_normal(y.shape)
    (y * gpuad.tensor(v)).sum().backward()
    (ty * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("shape,normalized_shape,eps", [((2, 3, 4), (4,), None),
                                                        ((2, 3, 4), (3, 4), 1e-6),
                                                        ((5, 2), (2,), 0.1)])
def test_rms_norm_matches_torch(shape, normalized_shape, eps):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    _twin_check(nn.RMSNorm(normalized_shape, eps=eps),
                torch.nn.RMSNorm(normalized_shape, eps=eps, dtype=torch.float64), x, torch)


def test_rms_norm_float32_with_default_eps_matches_torch():
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(0).standard_normal((3, 4)) * 1e-4).astype(np.float32)
    got = F.rms_norm(gpuad.tensor(x), (4,)).numpy()
    want = torch.nn.functional.rms_norm(torch.tensor(x), (4,)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("shape,groups,kwargs", [((2, 4, 3), 2, {}), ((2, 6, 2, 3), 3, {}),
                                                 ((3, 4), 4, {"eps": 1e-3}),
                                                 ((2, 6, 5), 1, {"bias": False})])
def test_group_norm_matches_torch(shape, groups, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    _twin_check(nn.GroupNorm(groups, shape[1], **kwargs),
                torch.nn.GroupNorm(groups, shape[1], dtype=torch.float64, **kwargs), x, torch)


def test_layer_norm_one_op_rule_matches_torch_and_its_differentiable_twin():
    # layer_norm is one primitive: a plain backward runs on raw arrays with the forward's mean and
    # 1/std; create_graph runs the same formula through ops. Both must give torch's gradients.
    rng = np.random.default_rng(7)
    x0, g0 = (rng.standard_normal((64, 6, 40)).astype(np.float32) for _ in range(2))
    w0, b0 = (rng.standard_normal((6, 40)).astype(np.float32) for _ in range(2))
    grads = []
    for create_graph in (False, True):
        x, w, b = (gpuad.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = F.layer_norm(x, (6, 40), w, b)
        grads.append([t.detach().numpy() for t in gpuad.grad(
            y, [x, w, b], grad_outputs=gpuad.tensor(g0), create_graph=create_graph)])
        assert y.dtype == gpuad.float32
    for plain, twin in zip(*grads):
        np.testing.assert_allclose(plain, twin, rtol=2e-5, atol=2e-5)
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    ty = torch.nn.functional.layer_norm(tx, (6, 40), tw, tb)
    ty.backward(torch.tensor(g0))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(grads[0], (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
