"""gpuad.linalg and the matrix products against PyTorch as an oracle (skipped without torch):
values, result dtypes, gradients (first and, where it matters, second order), batched and empty
inputs, and what happens at singular matrices and repeated eigenvalues. Where torch's answer is
not unique (signs of singular vectors and eigenvectors), gauge-free quantities are compared."""
import math

import numpy as np
import pytest

import gpuad
from gpuad import backend

L = gpuad.linalg
# torch.cholesky, torch.qr and torch.svd still work in torch but warn that they are deprecated
pytestmark = pytest.mark.filterwarnings("ignore:torch.(cholesky|qr|svd) is deprecated")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _np(x):
    return backend.asnumpy(x.array)


def _pair(torch, arrays, device="cpu"):
    ours = [gpuad.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check(torch, ours_fn, torch_fn, arrays, device="cpu", rtol=1e-9, atol=1e-10, grad=True,
           second=False):
    """Values, dtypes and vector-Jacobian products (random cotangents) of both functions agree."""
    ours, theirs = _pair(torch, arrays, device)
    outs, refs = _outputs(ours_fn(*ours)), _outputs(torch_fn(*theirs))
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        assert o.shape == tuple(r.shape) and str(o.dtype) == str(r.dtype).replace("torch.", "")
        np.testing.assert_allclose(_np(o), r.detach().numpy(), rtol=rtol, atol=atol)
    if not grad:
        return
    rng = np.random.default_rng(7)
    vs = [rng.standard_normal(r.shape) for r in refs]
    pairs = [(o, r, v) for o, r, v in zip(outs, refs, vs) if r.requires_grad and r.numel()]
    total = sum((o * gpuad.tensor(v, device=device)).sum() for o, _, v in pairs)
    ref_total = sum((r * torch.tensor(v)).sum() for _, r, v in pairs)
    grads = gpuad.grad(total, ours, create_graph=second, allow_unused=True)
    ref_grads = torch.autograd.grad(ref_total, theirs, create_graph=second, allow_unused=True)
    for g, r in zip(grads, ref_grads):
        if r is None:  # torch's undefined gradient is a zero one
            assert g is None or not _np(g).any()
            continue
        np.testing.assert_allclose(_np(g), r.detach().numpy(), rtol=1e-7, atol=1e-9)
    if second:  # the gradient's own gradient, along another random direction
        w = [rng.standard_normal(a.shape) for a in arrays]
        gg = gpuad.grad(sum((g * gpuad.tensor(x)).sum() for g, x in zip(grads, w)), ours,
                        allow_unused=True)
        ref_gg = torch.autograd.grad(sum((g * torch.tensor(x)).sum() for g, x in
                                         zip(ref_grads, w)), theirs, allow_unused=True)
        for g, r in zip(gg, ref_gg):
            np.testing.assert_allclose(_np(g), r.numpy(), rtol=1e-6, atol=1e-8)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _well(shape, seed=0):
    return 0.4 * _rng(seed).standard_normal(shape) + 2 * np.eye(shape[-1])


def _spd(shape, seed=0):
    a = _rng(seed).standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) / shape[-1] + np.eye(shape[-1])


def _sym(a):
    return (a + a.mT) * 0.5


def _fixed_svd(mod, full_matrices=False):
    """svd with each singular pair's sign fixed (u's first entry positive): gauge-free outputs."""
    def fn(a):
        u, s, vh = mod.linalg.svd(a, full_matrices=full_matrices)
        k = s.shape[-1]
        sign = mod.sign(u[..., :1, :k])
        return u[..., :k] * sign, s, vh[..., :k, :] * sign.mT
    return fn


def _fixed_eigh(mod, UPLO="L"):
    def fn(a):
        w, v = mod.linalg.eigh(_sym(a), UPLO=UPLO)
        return w, v * mod.sign(v[..., :1, :])
    return fn


# ---- values and gradients ------------------------------------------------------------------------
SQUARE_SHAPES = [(3, 3), (2, 4, 4)]


@pytest.mark.parametrize("shape", SQUARE_SHAPES, ids=str)
@pytest.mark.parametrize("name", ["inv", "det", "matrix_exp"])
def test_square_functions_match_torch_to_second_order(torch, name, shape):
    _check(torch, getattr(L, name), getattr(torch.linalg, name), [_well(shape)], second=True)


@pytest.mark.parametrize("shape", SQUARE_SHAPES, ids=str)
def test_slogdet_logdet_and_the_top_level_names(torch, shape):
    a = _well(shape) * np.array([-1.0] + [1.0] * (shape[-1] - 1))  # det < 0: sign -1
    _check(torch, lambda x: tuple(L.slogdet(x)), lambda x: tuple(torch.linalg.slogdet(x)), [a],
           second=True)
    _check(torch, gpuad.logdet, torch.logdet, [a])  # nan where det < 0
    _check(torch, gpuad.logdet, torch.logdet, [_spd(shape)], second=True)
    for ours, theirs in [(gpuad.det, torch.det), (gpuad.inverse, torch.inverse),
                         (lambda x: tuple(gpuad.slogdet(x)), lambda x: tuple(torch.slogdet(x))),
                         (gpuad.matrix_exp, torch.matrix_exp)]:
        _check(torch, ours, theirs, [_well(shape)])


def test_matrix_exp_of_large_norms_and_float32(torch):
    a = 6 * _rng(1).standard_normal((2, 4, 4))  # needs several squarings
    _check(torch, L.matrix_exp, torch.linalg.matrix_exp, [a], rtol=1e-9, atol=1e-6)
    x = gpuad.tensor(a.astype(np.float32))
    out, ref = L.matrix_exp(x), torch.linalg.matrix_exp(torch.tensor(a.astype(np.float32)))
    assert out.dtype == gpuad.float32
    np.testing.assert_allclose(_np(out), ref.numpy(), rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize("n", [0, 1, 2, 5, -1, -3])
def test_matrix_power(torch, n):
    _check(torch, lambda x: L.matrix_power(x, n), lambda x: torch.linalg.matrix_power(x, n),
           [_well((2, 3, 3))], rtol=1e-8)
    _check(torch, lambda x: x.matrix_power(n), lambda x: x.matrix_power(n), [_well((3, 3))])


@pytest.mark.parametrize("a_shape,b_shape,left", [
    ((3, 3), (3, 2), True), ((3, 3), (3,), True), ((2, 3, 3), (2, 3), True),  # vectors
    ((2, 1, 3, 3), (4, 3, 2), True), ((3, 3), (2, 3), False), ((2, 3, 3), (4, 1, 2, 3), False),
])
def test_solve_broadcasts_and_takes_vectors_like_torch(torch, a_shape, b_shape, left):
    b = _rng(2).standard_normal(b_shape)
    _check(torch, lambda a, b: L.solve(a, b, left=left),
           lambda a, b: torch.linalg.solve(a, b, left=left), [_well(a_shape), b], second=True)


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unitriangular", [False, True])
def test_solve_triangular(torch, upper, left, unitriangular):
    a, b = _well((2, 3, 3)), _rng(3).standard_normal((3, 3))
    _check(torch, lambda a, b: L.solve_triangular(a, b, upper=upper, left=left,
                                                  unitriangular=unitriangular),
           lambda a, b: torch.linalg.solve_triangular(a, b, upper=upper, left=left,
                                                      unitriangular=unitriangular), [a, b],
           second=True)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(torch, upper):
    _check(torch, lambda a: L.cholesky(_sym(a), upper=upper),
           lambda a: torch.linalg.cholesky(_sym(a), upper=upper), [_spd((2, 3, 3))], second=True)
    _check(torch, lambda a: a.cholesky(upper), lambda a: a.cholesky(upper), [_spd((3, 3))])


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 5, 2)], ids=str)
def test_qr_reduced(torch, shape):
    a = _rng(4).standard_normal(shape)
    _check(torch, lambda x: tuple(L.qr(x)), lambda x: tuple(torch.linalg.qr(x)), [a], second=True)
    q, r = L.qr(gpuad.tensor(a))  # and whatever the signs, a factorisation of A
    np.testing.assert_allclose(_np(q @ r), a, atol=1e-12)
    np.testing.assert_allclose(_np(q.mT @ q), np.broadcast_to(np.eye(q.shape[-1]),
                                                               q.mT.shape[:-1] + (q.shape[-1],)),
                               atol=1e-12)


def test_qr_modes_and_their_backward_errors(torch):
    a = _rng(5).standard_normal((4, 3))
    _check(torch, lambda x: tuple(L.qr(x, mode="complete")),
           lambda x: tuple(torch.linalg.qr(x, mode="complete")), [a.T.copy()])
    _check(torch, lambda x: tuple(L.qr(x, "complete")),
           lambda x: tuple(torch.linalg.qr(x, "complete")), [a], grad=False)
    _check(torch, lambda x: tuple(L.qr(x, mode="r")),
           lambda x: tuple(torch.linalg.qr(x, mode="r")), [a], grad=False)
    _check(torch, lambda x: tuple(gpuad.qr(x, some=False)),
           lambda x: tuple(torch.qr(x, some=False)), [a.T.copy()])
    x = gpuad.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > "
                                           "ncols"):
        L.qr(x, mode="complete").Q.sum().backward()
    with pytest.raises(RuntimeError, match="mode='r'"):
        L.qr(x, mode="r").R.sum().backward()
    with pytest.raises(ValueError, match="linalg.qr: qr received unrecognized mode 'full'"):
        L.qr(x, mode="full")


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 3, 5)], ids=str)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_gauge_free_values_and_gradients(torch, shape, full_matrices):
    a = _rng(6).standard_normal(shape)
    _check(torch, _fixed_svd(gpuad, full_matrices), _fixed_svd(torch, full_matrices), [a],
           rtol=1e-8, atol=1e-9, second=not full_matrices)
    u, s, vh = L.svd(gpuad.tensor(a), full_matrices=full_matrices)
    k = s.shape[-1]
    np.testing.assert_allclose(_np((u[..., :k] * s[..., None, :]) @ vh[..., :k, :]), a,
                               atol=1e-12)
    assert u.shape[-1] == (shape[-2] if full_matrices else k)


def test_svd_full_matrices_ignores_the_completing_columns_as_torch_does(torch):
    a = _rng(7).standard_normal((4, 2))
    _check(torch, lambda x: tuple(L.svd(x)[0].abs()), lambda x: tuple(torch.linalg.svd(x)[0].abs()),
           [a], grad=True, rtol=1e-8)


def test_torch_svd_returns_v_and_reduced_by_default(torch):
    a = _rng(8).standard_normal((2, 4, 3))
    for some in (True, False):
        u, s, v = gpuad.svd(gpuad.tensor(a), some=some)
        ru, rs, rv = torch.svd(torch.tensor(a), some=some)
        assert (u.shape, s.shape, v.shape) == (tuple(ru.shape), tuple(rs.shape), tuple(rv.shape))
        np.testing.assert_allclose(_np((u[..., :3] * s[..., None, :]) @ v[..., :3].mT), a,
                                   atol=1e-12)
    u, s, v = gpuad.tensor(a).svd(compute_uv=False)
    ru, rs, rv = torch.tensor(a).svd(compute_uv=False)
    assert u.shape == tuple(ru.shape) and not _np(u).any() and not _np(v).any()
    np.testing.assert_allclose(_np(s), rs.numpy())


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3)], ids=str)
def test_svdvals_and_pinv(torch, shape):
    a = _rng(9).standard_normal(shape)
    _check(torch, L.svdvals, torch.linalg.svdvals, [a], second=True)
    _check(torch, L.pinv, torch.linalg.pinv, [a], second=True)
    _check(torch, gpuad.pinverse, torch.pinverse, [a])
    _check(torch, lambda x: L.pinv(x, rtol=0.5), lambda x: torch.linalg.pinv(x, rtol=0.5), [a])
    _check(torch, lambda x: L.pinv(x, atol=0.8), lambda x: torch.linalg.pinv(x, atol=0.8), [a])


def test_pinv_hermitian_and_tensor_tolerances(torch):
    a = _spd((2, 3, 3)) - 1.5 * np.eye(3)  # eigenvalues of both signs
    _check(torch, lambda x: L.pinv(_sym(x), hermitian=True),
           lambda x: torch.linalg.pinv(_sym(x), hermitian=True), [a])
    atol = np.array([0.0, 10.0])  # per matrix: the second loses every singular value
    out = L.pinv(gpuad.tensor(a), atol=gpuad.tensor(atol))
    ref = torch.linalg.pinv(torch.tensor(a), atol=torch.tensor(atol))
    np.testing.assert_allclose(_np(out), ref.numpy(), atol=1e-12)


@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_gauge_free_and_eigvalsh(torch, UPLO):
    a = _rng(10).standard_normal((2, 4, 4))
    _check(torch, _fixed_eigh(gpuad, UPLO), _fixed_eigh(torch, UPLO), [a], rtol=1e-8,
           second=True)
    _check(torch, lambda x: L.eigvalsh(_sym(x), UPLO), lambda x: torch.linalg.eigvalsh(
        _sym(x), UPLO), [a], second=True)
    # only the named triangle is read, as in torch
    _check(torch, lambda x: L.eigvalsh(x, UPLO=UPLO), lambda x: torch.linalg.eigvalsh(
        x, UPLO=UPLO), [a], grad=False)


@pytest.mark.parametrize("a_shape,b_shape", [((5, 3), (5, 2)), ((3, 5), (3, 2)),
                                             ((2, 5, 3), (2, 5)), ((2, 5, 3), (2, 5, 1))])
def test_lstsq_solution_and_gradients(torch, a_shape, b_shape):
    a, b = _rng(11).standard_normal(a_shape), _rng(12).standard_normal(b_shape)
    _check(torch, lambda a, b: L.lstsq(a, b).solution,
           lambda a, b: torch.linalg.lstsq(a, b).solution, [a, b], rtol=1e-8, second=True)


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("a_shape,b_shape", [((5, 3), (5, 2)), ((2, 5, 3), (2, 5)),
                                             ((3, 5), (3, 2))])
def test_lstsq_fills_its_fields_as_torch_does_for_the_driver(torch, driver, a_shape, b_shape):
    a, b = _rng(13).standard_normal(a_shape), _rng(14).standard_normal(b_shape)
    if driver == "gels" and a_shape[-2] < a_shape[-1]:
        pytest.skip("torch's gels assumes full column rank (m >= n)")
    ours = L.lstsq(gpuad.tensor(a, requires_grad=True), gpuad.tensor(b), driver=driver)
    ref = torch.linalg.lstsq(torch.tensor(a, requires_grad=True), torch.tensor(b), driver=driver)
    fields = ("solution", "residuals", "rank", "singular_values")
    assert type(ours).__name__ == type(ref).__name__ == "linalg_lstsq" and ours._fields == fields
    for field in fields:
        o, r = getattr(ours, field), getattr(ref, field)
        assert o.shape == tuple(r.shape), field
        assert str(o.dtype) == str(r.dtype).replace("torch.", ""), field
        np.testing.assert_allclose(_np(o), r.detach().numpy(), rtol=1e-8, atol=1e-10)
    assert ours.rank.requires_grad is False and ours.singular_values.requires_grad is False
    if ours.residuals.numel():  # residuals are differentiable in torch too
        x = gpuad.tensor(a, requires_grad=True)
        ta = torch.tensor(a, requires_grad=True)
        (g,) = gpuad.grad(L.lstsq(x, gpuad.tensor(b), driver=driver).residuals.sum(), [x])
        (tg,) = torch.autograd.grad(torch.linalg.lstsq(ta, torch.tensor(b), driver=driver)
                                    .residuals.sum(), [ta])
        np.testing.assert_allclose(_np(g), tg.numpy(), rtol=1e-7, atol=1e-9)


def test_lstsq_of_a_rank_deficient_matrix(torch):
    a = _rng(15).standard_normal((5, 3))
    a[:, 2] = a[:, 1]
    b = _rng(16).standard_normal((5, 2))
    ours, ref = L.lstsq(gpuad.tensor(a), gpuad.tensor(b), driver="gelsd"), \
        torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    np.testing.assert_allclose(_np(ours.solution), ref.solution.numpy(), atol=1e-10)
    assert int(ours.rank.item()) == int(ref.rank) == 2
    assert ours.residuals.shape == tuple(ref.residuals.shape) == (0,)


# ---- norms ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"ord": 1}, {"ord": math.inf, "dim": 1},
                                    {"ord": -math.inf, "dim": (0, 2), "keepdim": True},
                                    {"ord": 0}, {"ord": 3.5, "dim": -1}, {"ord": -2},
                                    {"dtype": gpuad.float64}], ids=str)
def test_vector_norm(torch, kwargs):
    x = _rng(17).standard_normal((2, 3, 4))
    theirs = dict(kwargs)
    if "dtype" in kwargs:  # float32 in, float64 out (torch refuses to narrow)
        x, theirs["dtype"] = x.astype(np.float32), torch.float64
    _check(torch, lambda x: L.vector_norm(x, **kwargs),
           lambda x: torch.linalg.vector_norm(x, **theirs), [x], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
@pytest.mark.parametrize("dim,keepdim", [((-2, -1), False), ((2, 0), True)])
def test_matrix_norm(torch, ord, dim, keepdim):
    x = _rng(18).standard_normal((2, 3, 4))
    _check(torch, lambda x: L.matrix_norm(x, ord, dim, keepdim),
           lambda x: torch.linalg.matrix_norm(x, ord, dim, keepdim), [x])


@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 4), {}), ((3, 4), {"ord": "nuc"}), ((3, 4), {"ord": -1}), ((4,), {"ord": 3}),
    ((2, 3, 4), {"dim": 1, "ord": 1}), ((2, 3, 4), {"dim": (2, 0), "ord": 2}),
    ((2, 3), {"keepdim": True})], ids=str)
def test_norm(torch, shape, kwargs):
    _check(torch, lambda x: L.norm(x, **kwargs), lambda x: torch.linalg.norm(x, **kwargs),
           [_rng(19).standard_normal(shape)])


def test_norm_errors_like_torch():
    with pytest.raises(ValueError, match="linalg.norm: If dim is not specified but ord is, the "
                                         "input must be 1D or 2D. Got 3D."):
        L.norm(gpuad.zeros(2, 2, 2), ord=2)
    with pytest.raises(TypeError, match="linalg.vector_norm: Expected a floating point or complex "
                                        "tensor as input. Got int64"):
        L.vector_norm(gpuad.arange(3))
    with pytest.raises(ValueError, match="linalg.vector_norm cannot compute the inf norm on an "
                                         "empty tensor"):
        L.vector_norm(gpuad.zeros(0), ord=math.inf)
    with pytest.raises(ValueError, match="linalg.matrix_norm: Order 3 not supported"):
        L.matrix_norm(gpuad.zeros(2, 2), ord=3)


# ---- products ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shapes,kwargs", [
    ("addmm", [(2, 4), (2, 3), (3, 4)], {}), ("addmm", [(4,), (2, 3), (3, 4)],
                                            {"beta": 0.5, "alpha": 2}),
    ("addmv", [(2,), (2, 3), (3,)], {"beta": -1}), ("baddbmm", [(3, 1), (2, 3, 2), (2, 2, 4)], {}),
    ("addbmm", [(3, 4), (2, 3, 2), (2, 2, 4)], {"alpha": 3}),
    ("kron", [(2, 3), (3, 2)], {}), ("kron", [(2,), (2, 1, 3)], {}),
    ("tensordot", [(3, 4, 2), (4, 2, 5)], {}), ("tensordot", [(3, 4, 2), (2, 5)], {"dims": 1}),
    ("tensordot", [(3, 4, 2), (4, 2, 5)], {"dims": ([2, 1], [1, 0])}),
    ("tensordot", [(3, 4, 2), (4, 2, 5)], {"dims": [[1], [0]]}),
    ("cdist", [(3, 2), (4, 2)], {}), ("cdist", [(2, 3, 2), (1, 4, 2)], {"p": 1.0}),
    ("cdist", [(3, 2), (4, 2)], {"p": math.inf}), ("cdist", [(3, 2), (4, 2)], {"p": 0.0}),
    ("cross", [(4, 3), (4, 3)], {"dim": 1}), ("linalg.vecdot", [(2, 3), (3,)], {}),
    ("linalg.vecdot", [(3, 2), (3, 1)], {"dim": 0}),
], ids=str)
def test_products_match_torch(torch, name, shapes, kwargs):
    arrays = [_rng(20 + i).standard_normal(s) for i, s in enumerate(shapes)]
    ours, theirs = gpuad, torch
    if name.startswith("linalg."):
        ours, theirs, name = L, torch.linalg, name[len("linalg."):]
    _check(torch, lambda *xs: getattr(ours, name)(*xs, **kwargs),
           lambda *xs: getattr(theirs, name)(*xs, **kwargs), arrays)


@pytest.mark.parametrize("shapes", [[(3,), (3, 4), (4, 2)], [(2, 3), (3, 4), (4, 5), (5,)],
                                    [(2, 3), (3, 2)]], ids=str)
def test_multi_dot(torch, shapes):
    arrays = [_rng(25 + i).standard_normal(s) for i, s in enumerate(shapes)]
    _check(torch, lambda *xs: L.multi_dot(xs), lambda *xs: torch.linalg.multi_dot(xs), arrays)


@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond(torch, p):
    # torch's own backward fails for the norm-based p (it writes into a saved inverse)
    _check(torch, lambda x: L.cond(x, p), lambda x: torch.linalg.cond(x, p), [_well((2, 3, 3))],
           grad=p in (None, 2, -2))


@pytest.mark.parametrize("kwargs", [{}, {"atol": 0.5}, {"rtol": 0.3}, {"hermitian": True}],
                         ids=str)
def test_matrix_rank(torch, kwargs):
    a = _rng(26).standard_normal((2, 4, 4))
    a[..., 3] = a[..., 2]
    a = a @ np.swapaxes(a, -1, -2)  # symmetric, rank 3
    _check(torch, lambda x: L.matrix_rank(x, **kwargs),
           lambda x: torch.linalg.matrix_rank(x, **kwargs), [a], grad=False)


def test_tensor_methods_match_torch(torch):
    a, b, c = _well((3, 3)), _rng(30).standard_normal((3, 3)), _rng(31).standard_normal((2, 3, 3))
    for method, args in [("t", ()), ("mm", (b,)), ("mv", (b[0],)), ("det", ()), ("logdet", ()),
                         ("inverse", ()), ("pinverse", ()), ("matrix_exp", ()), ("kron", (b,)),
                         ("addmm", (b, b))]:
        _check(torch, lambda x, *ys: getattr(x, method)(*ys),
               lambda x, *ys: getattr(x, method)(*ys), [a, *args])
    _check(torch, lambda x, y: x.cross(y, 0), lambda x, y: x.cross(y, 0), [a, b])
    _check(torch, lambda x, m: x.addmv(m, x, beta=2), lambda x, m: x.addmv(m, x, beta=2),
           [a[0], b])
    _check(torch, lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), [c, c])
    _check(torch, lambda x, y: x[0].baddbmm(y, y, beta=0.5), lambda x, y: x[0].baddbmm(
        y, y, beta=0.5), [c, c])
    _check(torch, lambda x, y: x[0].addbmm(y, y, alpha=2), lambda x, y: x[0].addbmm(
        y, y, alpha=2), [c, c])
    _check(torch, lambda x: tuple(x.slogdet()), lambda x: tuple(x.slogdet()), [a])
    for x in (gpuad.tensor(3.0), gpuad.tensor([1.0, 2.0])):
        assert x.t().shape == x.shape
    with pytest.raises(ValueError, match="t: expects a tensor with <= 2 dimensions, but self is "
                                         "3D"):
        gpuad.zeros(2, 2, 2).t()


def test_beta_zero_ignores_the_input_as_torch_does(torch):
    c = np.full((2, 4), np.nan)
    x, y = _rng(32).standard_normal((2, 3)), _rng(33).standard_normal((3, 4))
    _check(torch, lambda c, x, y: gpuad.addmm(c, x, y, beta=0),
           lambda c, x, y: torch.addmm(c, x, y, beta=0), [c, x, y])


def test_cdist_gradient_at_zero_distance_is_zero_as_in_torch(torch):
    x = _rng(34).standard_normal((3, 2))
    _check(torch, gpuad.cdist, torch.cdist, [x, x[:2].copy()])


def test_cross_without_dim_takes_the_first_size_3_dim_and_warns(torch):
    a, b = _rng(35).standard_normal((3, 4, 3)), _rng(36).standard_normal((3, 4, 3))
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        out = gpuad.cross(gpuad.tensor(a), gpuad.tensor(b))
    with pytest.warns(UserWarning):
        ref = torch.cross(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(_np(out), ref.numpy())
    _check(torch, L.cross, torch.linalg.cross, [a, b])  # linalg.cross: dim=-1
    with pytest.raises(ValueError, match=r"linalg.cross: inputs dimension -1 must have length 3"):
        L.cross(gpuad.zeros(2, 2), gpuad.zeros(2, 2))


@pytest.mark.parametrize("equation,shapes", [
    ("...ii->...i", [(2, 3, 3)]), ("i...i->...", [(3, 2, 3)]), ("ii...->i...", [(3, 3, 2)]),
    ("a...b,b...c->...ac", [(2, 3, 4), (4, 1, 5)]), ("...ij,...ji->...", [(2, 1, 3, 4), (5, 4, 3)]),
    ("iji->j", [(3, 2, 3)]), ("bij,bkj->bik", [(2, 3, 4), (1, 5, 4)]), ("jii", [(2, 3, 3)])])
def test_einsum_ellipsis_anywhere_and_repeated_labels(torch, equation, shapes):
    arrays = [_rng(37 + i).standard_normal(s) for i, s in enumerate(shapes)]
    _check(torch, lambda *xs: gpuad.einsum(equation, *xs),
           lambda *xs: torch.einsum(equation, *xs), arrays)
    _check(torch, lambda *xs: gpuad.einsum(equation, list(xs)),
           lambda *xs: torch.einsum(equation, list(xs)), arrays, grad=False)


# ---- dtypes, devices, empty inputs ---------------------------------------------------------------
_FLOAT32_CALLS = [
    ("inv", lambda m, a: m.linalg.inv(a)), ("det", lambda m, a: m.linalg.det(a)),
    ("slogdet", lambda m, a: tuple(m.linalg.slogdet(a))), ("cholesky", lambda m, a: m.linalg
                                                            .cholesky(a @ a.mT + 3 * a[0, 0] ** 0)),
    ("qr", lambda m, a: tuple(m.linalg.qr(a))), ("svdvals", lambda m, a: m.linalg.svdvals(a)),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a)), ("pinv", lambda m, a: m.linalg.pinv(a)),
    ("matrix_exp", lambda m, a: m.linalg.matrix_exp(a)),
    ("solve", lambda m, a: m.linalg.solve(a, a[0])), ("lstsq", lambda m, a: tuple(
        m.linalg.lstsq(a, a, driver="gelsd"))),
    ("matrix_norm", lambda m, a: m.linalg.matrix_norm(a, "nuc")),
]


@pytest.mark.parametrize("name,call", _FLOAT32_CALLS, ids=[n for n, _ in _FLOAT32_CALLS])
def test_float32_results_keep_torch_dtypes(torch, name, call):
    a = _well((3, 3)).astype(np.float32)
    outs = _outputs(call(gpuad, gpuad.tensor(a)))
    refs = _outputs(call(torch, torch.tensor(a)))
    for o, r in zip(outs, refs):
        assert str(o.dtype) == str(r.dtype).replace("torch.", "")
        np.testing.assert_allclose(_np(o), r.numpy(), rtol=1e-4, atol=1e-4)


_EMPTY_CALLS = [
    ("det", lambda m, a: m.linalg.det(a)), ("inv", lambda m, a: m.linalg.inv(a)),
    ("slogdet", lambda m, a: tuple(m.linalg.slogdet(a))),
    ("cholesky", lambda m, a: m.linalg.cholesky(a)), ("eigh", lambda m, a: tuple(m.linalg.eigh(a))),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a)), ("svd", lambda m, a: tuple(m.linalg.svd(a))),
    ("svdvals", lambda m, a: m.linalg.svdvals(a)), ("qr", lambda m, a: tuple(m.linalg.qr(a))),
    ("pinv", lambda m, a: m.linalg.pinv(a)), ("matrix_exp", lambda m, a: m.linalg.matrix_exp(a)),
    ("matrix_power", lambda m, a: m.linalg.matrix_power(a, 2)),
    ("solve", lambda m, a: m.linalg.solve(a, a)),
]


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3, 3)], ids=str)
@pytest.mark.parametrize("name,call", _EMPTY_CALLS, ids=[n for n, _ in _EMPTY_CALLS])
def test_empty_inputs_like_torch(torch, device, name, call, shape):
    a = np.zeros(shape)
    outs = _outputs(call(gpuad, gpuad.tensor(a, device=device, requires_grad=True)))
    refs = _outputs(call(torch, torch.tensor(a, requires_grad=True)))
    for o, r in zip(outs, refs):
        assert o.shape == tuple(r.shape) and o.device == gpuad.device(device)
        np.testing.assert_allclose(_np(o), r.detach().numpy())
    total = sum(o.sum() for o in outs if o.requires_grad)
    total.backward()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3)], ids=str)
def test_empty_rectangular_inputs_like_torch(torch, shape):
    for call in (lambda m, a: tuple(m.linalg.svd(a, full_matrices=False)),
                 lambda m, a: tuple(m.linalg.qr(a)), lambda m, a: m.linalg.pinv(a),
                 lambda m, a: m.linalg.svdvals(a)):
        outs = _outputs(call(gpuad, gpuad.tensor(np.zeros(shape))))
        refs = _outputs(call(torch, torch.zeros(shape, dtype=torch.float64)))
        assert [o.shape for o in outs] == [tuple(r.shape) for r in refs]


def test_batched_matrices_on_the_strict_backend_match_the_cpu(torch):
    a = _well((2, 3, 3))
    for fn in (L.inv, L.det, L.matrix_exp, lambda x: L.solve(x, x[..., 0]),
               lambda x: L.solve_triangular(x, x, upper=True), L.svdvals,
               lambda x: L.cholesky(_sym(x)), lambda x: L.eigvalsh(x), L.pinv):
        cpu = fn(gpuad.tensor(a, requires_grad=True))
        strict = fn(gpuad.tensor(a, device="strict", requires_grad=True))
        assert strict.device == gpuad.device("strict")
        np.testing.assert_allclose(_np(strict), _np(cpu), rtol=1e-12, atol=1e-12)


# ---- singular matrices, repeated eigenvalues, errors ---------------------------------------------
SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize("name,call", [
    ("inv", lambda m, a: m.linalg.inv(a)), ("solve", lambda m, a: m.linalg.solve(a, a[0])),
    ("cholesky", lambda m, a: m.linalg.cholesky(a)),
    ("batched inv", lambda m, a: m.linalg.inv(m.stack([m.eye(2, dtype=a.dtype, device=a.device),
                                                       a])))])
def test_singular_matrices_raise_linalg_errors_like_torch(torch, device, name, call):
    with pytest.raises(torch.linalg.LinAlgError):
        call(torch, torch.tensor(SINGULAR))
    with pytest.raises(L.LinAlgError) as caught:
        call(gpuad, gpuad.tensor(SINGULAR, device=device))
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value,
                                                                 np.linalg.LinAlgError)
    assert "singular" in str(caught.value) or "positive-definite" in str(caught.value)


def test_a_zero_on_the_triangle_gives_inf_not_an_error_like_torch(torch):
    b = np.ones((2, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = L.solve_triangular(gpuad.zeros(2, 2, dtype=gpuad.float64), gpuad.tensor(b),
                                 upper=True)
    ref = torch.linalg.solve_triangular(torch.zeros(2, 2, dtype=torch.float64),
                                        torch.tensor(b), upper=True)
    np.testing.assert_array_equal(np.isfinite(_np(out)), np.isfinite(ref.numpy()))


def test_det_gradient_at_singular_matrices_is_the_adjugate_like_torch_under_create_graph(torch):
    # torch's first-order path perturbs the LU factors and gives 0 at an exactly singular matrix;
    # under create_graph it computes the adjugate from the SVD, as gpuad always does
    for a in (SINGULAR, np.stack([2 * np.eye(2), SINGULAR]), np.diag([1.0, 0.0, 0.0]),
              np.diag([1.0, 2.0, 0.0])):
        x, tx = gpuad.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        (g,) = gpuad.grad(L.det(x).sum(), [x])
        (tg,) = torch.autograd.grad(torch.linalg.det(tx).sum(), [tx], create_graph=True)
        np.testing.assert_allclose(_np(g), tg.detach().numpy(), atol=1e-12)


def test_spectral_gradients_at_repeated_values_follow_torch(torch):
    eye = np.eye(3)
    # the values alone: finite, U diag(g) V^T
    _check(torch, L.eigvalsh, torch.linalg.eigvalsh, [eye])
    _check(torch, L.svdvals, torch.linalg.svdvals, [eye])
    _check(torch, lambda x: L.eigh(x).eigenvalues, lambda x: torch.linalg.eigh(x).eigenvalues,
           [eye])
    _check(torch, lambda x: L.svd(x).S, lambda x: torch.linalg.svd(x).S, [eye])
    # a loss of the vectors is ill-defined there: not finite in torch, nor here
    w = _rng(40).standard_normal((3, 3))
    for ours, theirs in [(lambda x: L.eigh(x).eigenvectors, lambda x: torch.linalg.eigh(x)[1]),
                         (lambda x: L.svd(x).U, lambda x: torch.linalg.svd(x)[0])]:
        x, tx = gpuad.tensor(eye, requires_grad=True), torch.tensor(eye, requires_grad=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            (g,) = gpuad.grad((ours(x) * gpuad.tensor(w)).sum(), [x])
        (tg,) = torch.autograd.grad((theirs(tx) * torch.tensor(w)).sum(), [tx])
        assert not np.isfinite(tg.numpy()).all() and not np.isfinite(_np(g)).all()


@pytest.mark.parametrize("call,error,message", [
    (lambda: L.det(gpuad.ones(3, 3, dtype=gpuad.int64)), TypeError,
     "linalg.det: Expected a floating point tensor as input. Got int64"),
    (lambda: L.det(gpuad.ones(2, 3)), ValueError,
     "linalg.det: A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda: L.inv(gpuad.ones(3)), ValueError,
     "linalg.inv: The input tensor A must have at least 2 dimensions"),
    (lambda: L.inv(gpuad.ones(2, 2, dtype=gpuad.float16)), TypeError,
     "linalg.inv: Low precision dtypes not supported. Got float16"),
    (lambda: L.solve(gpuad.eye(3), gpuad.ones(3, dtype=gpuad.float64)), TypeError,
     "linalg.solve: Expected A and B to have the same dtype, but found A of type float32 and B "
     "of type float64"),
    (lambda: L.solve(gpuad.eye(3), gpuad.ones(4, 1)), ValueError,
     "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 4x1)"),
    (lambda: L.solve_triangular(gpuad.eye(3), gpuad.ones(3), upper=True), ValueError,
     "linalg.solve_triangular: The input tensor B must have at least 2 dimensions"),
    (lambda: L.eigh(gpuad.eye(3), UPLO="X"), ValueError,
     "linalg.eigh: Expected UPLO argument to be 'L' or 'U', but got 'X'"),
    (lambda: L.lstsq(gpuad.eye(3), gpuad.eye(3), driver="magic"), ValueError,
     "linalg.lstsq: parameter `driver` should be one of"),
    (lambda: L.matrix_power(gpuad.eye(3), 1.5), TypeError,
     "linalg.matrix_power: n must be an int, got float"),
    (lambda: gpuad.tensordot(gpuad.ones(3, 4), gpuad.ones(3, 4), dims=([0], [1])), ValueError,
     "tensordot: contracted dimensions need to match, but first has size 3 in dim 0 and second "
     "has size 4 in dim 1"),
    (lambda: gpuad.addmm(gpuad.ones(3, 3), gpuad.ones(2, 3), gpuad.ones(3, 4)), ValueError,
     "addmm: input of shape (3, 3) does not broadcast to the product's shape (2, 4)"),
    (lambda: gpuad.cdist(gpuad.ones(3), gpuad.ones(3, 3)), ValueError,
     "cdist only supports at least 2D tensors, X1 got: 1D"),
    (lambda: gpuad.cdist(gpuad.ones(2, 3), gpuad.ones(3, 4)), ValueError,
     "cdist: X1 and X2 must have the same number of columns. X1: 3 X2: 4"),
    (lambda: L.det(gpuad.tensor(np.ones((2, 2), dtype=np.complex128))), TypeError,
     "linalg.det: complex inputs are not supported by gpuad's linear algebra yet"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_errors_name_the_op_like_torch(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        call()


def test_missing_linalg_names_say_so():
    with pytest.raises(AttributeError, match="gpuad.linalg has no 'eig'.*use eigh"):
        L.eig
    assert not hasattr(gpuad, "linalg_svd")  # registry names stay out of the top level
    assert gpuad.linalg.inv is gpuad.inverse and gpuad.linalg.det is gpuad.det
