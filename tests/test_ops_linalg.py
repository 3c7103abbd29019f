"""What the op table cannot say about gpuad/ops/linalg.py: error messages, operators and methods,
that rules skip inputs that need no gradient, einsum's calling forms, and PyTorch as an oracle."""
import re

import numpy as np
import op_cases  # noqa: F401  (import the table first: it imports linalg_cases itself)
import pytest
from linalg_cases import EINSUM_EQUATIONS, MATMUL_SHAPES  # noqa: E402

import gpuad
from gpuad import backend
from gpuad.ops import linalg


def _t(shape, device="cpu", requires_grad=False, seed=0, dtype=np.float64):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return gpuad.tensor(data, device=device, requires_grad=requires_grad)


def _np(x):
    return backend.asnumpy(x.array)


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb,message", [
    ((2, 3), (4, 5),
     "matmul: shapes (2, 3) and (4, 5) are not aligned: 3 (dim -1 of a) != 4 (dim -2 of b)"),
    ((2, 3), (4,),
     "matmul: shapes (2, 3) and (4,) are not aligned: 3 (dim -1 of a) != 4 (dim 0 of b)"),
    ((3,), (2,),
     "matmul: shapes (3,) and (2,) are not aligned: 3 (dim -1 of a) != 2 (dim 0 of b)"),
    ((2, 3, 4), (5, 4, 2), "matmul: shapes (2, 3, 4) and (5, 4, 2) have batch dims (2,) and (5,) "
                           "that do not broadcast"),
    ((), (3,), "matmul: both arguments need to be at least 1-D, but got shapes () and (3,)"),
])
def test_matmul_shape_errors_name_the_op_and_both_shapes(sa, sb, message, device):
    with pytest.raises(ValueError, match=re.escape(message)):
        gpuad.matmul(_t(sa, device), _t(sb, device))


@pytest.mark.parametrize("call,message", [
    (lambda: gpuad.mm(_t((2, 3, 4)), _t((4, 2))),
     "mm: expected two 2-D matrices, but got shapes (2, 3, 4) and (4, 2)"),
    (lambda: gpuad.mm(_t((2, 3)), _t((4, 2))),
     "mm: shapes (2, 3) and (4, 2) are not aligned: 3 (dim -1 of a) != 4 (dim -2 of b)"),
    (lambda: gpuad.bmm(_t((2, 3, 4)), _t((4, 2))),
     "bmm: expected two 3-D batches of matrices, but got shapes (2, 3, 4) and (4, 2)"),
    (lambda: gpuad.bmm(_t((2, 3, 4)), _t((1, 4, 2))),
     "bmm: batch sizes differ: 2 and 1"),
    (lambda: gpuad.mv(_t((2, 3)), _t((3, 1))),
     "mv: expected a 2-D matrix and a 1-D vector, but got shapes (2, 3) and (3, 1)"),
    (lambda: gpuad.dot(_t((2, 3)), _t((3,))),
     "dot: expected two 1-D tensors, but got shapes (2, 3) and (3,)"),
    (lambda: gpuad.dot(_t((3,)), _t((4,))),
     "dot: shapes (3,) and (4,) are not aligned"),
    (lambda: gpuad.outer(_t((3,)), _t((2, 2))),
     "outer: expected two 1-D tensors, but got shapes (3,) and (2, 2)"),
    (lambda: gpuad.einsum("ij,jk->ik", _t((2, 3))),
     "einsum: the equation 'ij,jk->ik' has 2 operand(s) but 1 tensor(s) were given"),
    (lambda: gpuad.einsum("ij->i", _t((2, 3, 4))),
     "einsum: operand 0 has shape (2, 3, 4), which its subscripts 'ij' do not describe"),
    (lambda: gpuad.einsum("ij,jk->ik", _t((2, 3)), _t((4, 5))),
     "einsum: label 'j' has size 3 elsewhere but 4 in operand 1 (shape (4, 5))"),
    (lambda: gpuad.einsum("ij->k", _t((2, 3))),
     "einsum: output label 'k' in 'ij->k' must appear exactly once in the output"),
    (lambda: gpuad.einsum("ij->ii", _t((2, 3))),
     "einsum: output label 'i' in 'ij->ii'"),
    (lambda: gpuad.einsum("i1->i", _t((2, 3))),
     "einsum: invalid equation 'i1->i'"),
    (lambda: gpuad.einsum("ij"),
     "einsum: at least one operand is required"),
    (lambda: gpuad.einsum("ij,jk->ik", _t((2, 3)), _t((1, 4)), _t((3,))),
     "einsum: the equation 'ij,jk->ik' has 2 operand(s) but 3 tensor(s) were given"),
])
def test_strict_variants_and_einsum_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---- operators, methods, calling forms ----------------------------------------------------------
def test_operator_reflected_forms_and_methods(device):
    a, b = _t((2, 3), device, seed=1), _t((3, 4), device, seed=2)
    want = _np(a) @ _np(b)
    for out in (a @ b, a.matmul(b), gpuad.matmul(a, b), gpuad.mm(a, b)):
        assert out.device == gpuad.device(device)
        np.testing.assert_allclose(_np(out), want)
    assert (a.mT @ a).shape == (3, 3)
    v, w = _t((3,), device, seed=3), _t((3,), device, seed=4)
    assert v.dot(w).shape == () and v.outer(w).shape == (3, 3)
    np.testing.assert_allclose(_np(v @ w), _np(v) @ _np(w))


def test_numpy_operands_on_either_side_of_at():
    a, b = _t((2, 3), seed=1), np.random.default_rng(2).standard_normal((3, 4))
    np.testing.assert_allclose(_np(a @ b), _np(a) @ b)
    out = b.T @ a.mT  # ndarray @ Tensor defers to Tensor.__rmatmul__
    assert isinstance(out, gpuad.Tensor)
    np.testing.assert_allclose(_np(out), b.T @ _np(a).T)


def test_einsum_accepts_a_list_or_tuple_of_operands(device):
    a, b = _t((2, 3), device, seed=1), _t((3, 4), device, seed=2)
    want = _np(a) @ _np(b)
    for out in (gpuad.einsum("ij,jk->ik", [a, b]), gpuad.einsum("ij,jk", (a, b)),
                gpuad.einsum("ij,jk->ik", a, b)):
        np.testing.assert_allclose(_np(out), want)


def test_einsum_sublist_form_is_refused_clearly():
    a = _t((2, 3))
    with pytest.raises(TypeError, match="the sublist form"):
        gpuad.einsum(a, [0, 1], [1])


@pytest.mark.parametrize("call,shape", [
    (lambda: gpuad.einsum("ij,jk->ik", _t((2, 0)), _t((0, 3))), (2, 3)),
    (lambda: gpuad.einsum("ij,jk->ik", _t((2, 1)), _t((0, 3))), (2, 3)),  # 1 broadcasts to 0
    (lambda: gpuad.matmul(_t((2, 0, 3)), _t((3, 4))), (2, 0, 4)),
    (lambda: gpuad.matmul(_t((2, 3, 0)), _t((0,))), (2, 3)),
])
def test_empty_dims(call, shape):
    out = call()
    assert out.shape == shape and not _np(out).any()


def test_mixed_dtypes_promote_like_torch_and_gradients_keep_the_input_dtype():
    a = gpuad.tensor(np.arange(6).reshape(2, 3))  # int64, needs no grad
    w = _t((3, 2), requires_grad=True, dtype=np.float32)
    out = a @ w
    assert out.dtype == gpuad.float32
    out.sum().backward()
    assert w.grad.dtype == gpuad.float32
    want = np.arange(6).reshape(2, 3).sum(0)[:, None].repeat(2, 1)
    np.testing.assert_allclose(_np(w.grad), want)


# ---- rules do only the work that is needed ------------------------------------------------------
class _Spy:
    def __init__(self, monkeypatch, name):
        self.calls, self.fn = [], getattr(linalg, name)
        monkeypatch.setattr(linalg, name, self)

    def __call__(self, *args, **kwargs):
        self.calls.append(tuple(tuple(x.shape) for x in args))
        return self.fn(*args, **kwargs)


def test_matmul_rule_skips_inputs_that_need_no_grad(monkeypatch):
    x, w = _t((4, 3)), _t((3, 2), requires_grad=True)
    y = x @ w  # the first layer: x is data, its gradient would be a wasted GEMM
    spy = _Spy(monkeypatch, "matmul")  # the rule looks matmul up in linalg's globals
    y.sum().backward()
    assert spy.calls == [((3, 4), (4, 2))]
    assert x.grad is None and w.grad.shape == (3, 2)


def test_matmul_rule_folds_the_batch_for_a_shared_matrix(monkeypatch):
    x, w = _t((5, 4, 3), requires_grad=True), _t((3, 2), requires_grad=True)
    y = x @ w
    spy = _Spy(monkeypatch, "matmul")
    y.sum().backward()
    # d/dw is one (3, 20) @ (20, 2) GEMM, not a (5, 3, 2) stack summed afterwards
    assert sorted(spy.calls) == [((3, 20), (20, 2)), ((5, 4, 2), (2, 3))]
    np.testing.assert_allclose(_np(w.grad), _np(x).reshape(20, 3).T @ np.ones((20, 2)))


def test_einsum_rule_skips_inputs_that_need_no_grad(monkeypatch):
    x, w = _t((4, 3)), _t((3, 2), requires_grad=True)
    y = gpuad.einsum("ij,jk->ik", x, w)
    spy = _Spy(monkeypatch, "_einsum")
    y.sum().backward()
    assert spy.calls == [((4, 2), (4, 3))]
    assert x.grad is None and w.grad.shape == (3, 2)


def test_second_derivative_of_a_quadratic_form():
    a = _t((3, 3), seed=5)
    x = _t((3,), requires_grad=True, seed=6)
    (g,) = gpuad.grad(x @ a @ x, x, create_graph=True)  # (A + A^T) x
    np.testing.assert_allclose(_np(g), (_np(a) + _np(a).T) @ _np(x))
    e0 = gpuad.tensor([1.0, 0.0, 0.0], dtype=gpuad.float64)
    (h0,) = gpuad.grad(g, x, grad_outputs=e0)
    np.testing.assert_allclose(_np(h0), (_np(a) + _np(a).T)[0])


# ---- PyTorch as an oracle (skipped without torch) -----------------------------------------------
def _against_torch(gpuad_fn, torch_fn, shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [gpuad.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = gpuad_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(out.shape)
    grads = gpuad.grad((out * gpuad.tensor(v)).sum(), ours)
    ref_grads = torch.autograd.grad((ref * torch.tensor(v)).sum(), theirs)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(_np(g), r.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch(shapes):
    torch = pytest.importorskip("torch")
    _against_torch(gpuad.matmul, torch.matmul, shapes)


@pytest.mark.parametrize("equation,shapes", [(e, s) for e, *s in EINSUM_EQUATIONS],
                         ids=[e for e, *_ in EINSUM_EQUATIONS])
def test_einsum_matches_torch(equation, shapes):
    torch = pytest.importorskip("torch")
    _against_torch(lambda *xs: gpuad.einsum(equation, *xs),
                   lambda *xs: torch.einsum(equation, *xs), shapes)
