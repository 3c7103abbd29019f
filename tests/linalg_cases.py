"""Rows of the op table for gpuad/ops/linalg.py (merged into op_cases.CASES)."""
import math

import numpy as np
from op_cases import DISTINCT, REAL, UNIT, Case

import gpuad
from gpuad.ops.decomposition import _qr_cores, _svd_cores

MATMUL_SHAPES = [
    ((3,), (3,)),                 # dot: a 0-d result
    ((3,), (3, 4)),               # vector @ matrix
    ((2, 3), (3,)),               # matrix @ vector
    ((2, 3), (3, 4)),
    ((3, 3), (3, 3)),             # square: a forgotten transpose would still have the right shape
    ((2, 3, 4), (2, 4, 2)),       # batched
    ((2, 3, 4), (4, 2)),          # batch @ matrix (folded into one GEMM)
    ((3, 4), (2, 4, 5)),          # matrix @ batch
    ((2, 1, 3, 4), (5, 4, 2)),    # broadcast batch dims on both sides
    ((2, 3, 4), (4,)),            # batch @ vector
    ((3,), (2, 3, 4)),            # vector @ batch
]

# (equation, operand shapes): each becomes an einsum row (and the reference is numpy's einsum)
EINSUM_EQUATIONS = [
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("bij,bjk->bik", (2, 3, 4), (2, 4, 2)),
    ("bij,jk->bik", (2, 3, 4), (4, 2)),
    ("ij,j->i", (2, 3), (3,)),
    ("i,j->ij", (3,), (4,)),
    ("i,i->", (4,), (4,)),
    ("ij->j", (2, 3)),
    ("ij->", (2, 3)),
    ("ij->ji", (2, 3)),
    ("ij,kl->jk", (2, 3), (4, 2)),          # i and l are each summed out of one operand only
    ("ij,jk,kl->il", (2, 3), (3, 4), (4, 2)),
    ("i,i,i->", (3,), (3,), (3,)),
    ("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2)),  # ellipsis with broadcast batch dims
    ("...i->...", (2, 3, 4)),
    ("i...->...", (3, 2, 2)),
    ("ij,jk", (2, 3), (3, 4)),              # implicit output: labels used once, sorted
    ("ba,ca", (2, 3), (4, 3)),
    ("i,i", (4,), (4,)),
    ("...ij,...jk", (2, 3, 4), (4, 2)),
    ("ij,ij->ij", (1, 3), (2, 3)),          # a size-1 dim broadcasts against the same label
    (" Ab , bC -> AC ", (2, 3), (3, 2)),     # upper case and spaces
    ("ii->i", (3, 3)),                      # diagonal
    ("ii", (3, 3)),                         # trace
    ("iij,i->j", (2, 2, 3), (2,)),
]

PRIMITIVE_EQUATIONS = [
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("ij,kl->jk", (2, 3), (4, 2)),
    ("ij->", (2, 3)),
    ("ii->i", (3, 3)),
    ("ij,ij,j->i", (2, 3), (2, 3), (3,)),
]


def _einsum_rows(name, fn, equations):
    return [Case(name, fn, lambda *xs, equation: np.einsum(equation, *xs), [shapes],
                 kwargs=[{"equation": equation}]) for equation, *shapes in equations]


LINALG_CASES = [
    Case("matmul", gpuad.matmul, np.matmul, MATMUL_SHAPES),
    Case("mm", gpuad.mm, np.matmul, [((2, 3), (3, 4)), ((3, 3), (3, 3))]),
    Case("bmm", gpuad.bmm, np.matmul, [((2, 3, 4), (2, 4, 2))]),
    Case("mv", gpuad.mv, np.matmul, [((2, 3), (3,))]),
    Case("dot", gpuad.dot, np.dot, [((4,), (4,))]),
    Case("outer", gpuad.outer, np.outer, [((3,), (4,)), ((1,), (2,))]),
    *_einsum_rows("einsum", lambda *xs, equation: gpuad.einsum(equation, *xs), EINSUM_EQUATIONS),
    *_einsum_rows("_einsum", lambda *xs, equation: gpuad.ops._einsum(*xs, equation=equation),
                  PRIMITIVE_EQUATIONS),
]


# ---- torch.linalg and the products built on matmul ----------------------------------------------
# Inputs are built to keep finite differences away from the places where these functions are not
# differentiable: well-conditioned or symmetric positive-definite matrices, singular values and
# eigenvalues well apart. Functions that read one triangle of a symmetric input (cholesky, eigh)
# see it symmetrised, so every element moves them; outputs defined up to a sign (singular and
# eigenvectors) have their signs fixed before comparison.
def _swap(a):
    return np.swapaxes(a, -1, -2)


def _well(rng, shape):  # well-conditioned: the identity, scaled, plus a perturbation
    return 0.4 * rng.standard_normal(shape) + 2 * np.eye(shape[-1])


def _spd(rng, shape):  # symmetric positive-definite
    a = rng.standard_normal(shape)
    return a @ _swap(a) / shape[-1] + np.eye(shape[-1])


def _orthogonal(rng, batch, n):
    return np.linalg.qr(rng.standard_normal(batch + (n, n)))[0]


def _distinct_svd(rng, shape):  # singular values 3, 2, 1, ...: well apart
    batch, (m, n) = tuple(shape[:-2]), shape[-2:]
    k = min(m, n)
    s = np.linspace(3, 1, k)
    return (_orthogonal(rng, batch, m)[..., :k] * s) @ _orthogonal(rng, batch, n)[..., :k, :]


def _distinct_eigh(rng, shape):  # eigenvalues -1.5, ..., 2.5: well apart
    q = _orthogonal(rng, tuple(shape[:-2]), shape[-1])
    return (q * np.linspace(-1.5, 2.5, shape[-1])) @ _swap(q)


def _made(*samplers):
    return lambda rng, shapes: [f(rng, s) for f, s in zip(samplers, shapes)]


def _sym_np(a):
    return (a + _swap(a)) / 2


def _sym(a):
    return (a + a.mT) * 0.5


def _fix_signs(u, vh, sign):
    """u's columns with a positive first entry, vh's rows flipped alongside: a gauge-free pair."""
    s = sign(u[..., :1, :])
    return u * s, vh * (s.mT if hasattr(s, "mT") else _swap(s))


def _svd_fixed(a, full_matrices=False):
    u, s, vh = gpuad.linalg.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]  # the completing columns are arbitrary and carry no gradient (as in torch)
    u, vh = _fix_signs(u[..., :k], vh[..., :k, :], gpuad.sign)
    return u, s, vh


def _svd_fixed_ref(a, full_matrices=False):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    u, vh = _fix_signs(u[..., :k], vh[..., :k, :], np.sign)
    return u, s, vh


def _eigh_fixed(a, UPLO="L"):
    w, v = gpuad.linalg.eigh(_sym(a), UPLO=UPLO)
    return w, v * gpuad.sign(v[..., :1, :])


def _eigh_fixed_ref(a, UPLO="L"):
    w, v = np.linalg.eigh(_sym_np(a), UPLO=UPLO)
    return w, v * np.sign(v[..., :1, :])


def _unpacked(op, cores_of, a, **kwargs):
    """A packing primitive's factors, sliced apart as the public function does."""
    from gpuad.ops.decomposition import _unpack
    return _unpack(op(a, **kwargs), tuple(a.shape[:-2]), cores_of(a.shape, **kwargs))


def _expm_ref(a, terms=40):  # the Taylor series: exact enough for the small norms sampled here
    out = term = np.broadcast_to(np.eye(a.shape[-1]), a.shape).copy()
    for k in range(1, terms):
        term = term @ a / k
        out = out + term
    return out


def _matrix_power_ref(a, n):
    return np.linalg.matrix_power(a, n)


def _pinv_ref(a, atol=None, rtol=None, hermitian=False, rcond=None):
    return np.linalg.pinv(a, rcond=1e-15 if rtol is None else rtol, hermitian=hermitian)


def _norm_ref(x, ord=2, axis=None, keepdims=False):
    x = np.abs(x)
    if ord == math.inf or ord == -math.inf:
        return (np.max if ord > 0 else np.min)(x, axis=axis, keepdims=keepdims)
    if ord == 0:
        return np.sum(x != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    return np.sum(x ** ord, axis=axis, keepdims=keepdims) ** (1 / ord)


def _matrix_norm_ref(a, ord="fro", axis=(-2, -1), keepdims=False):
    return np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims)


def _linalg_norm_ref(a, ord=None, axis=None, keepdims=False):
    if axis is None and ord is None:
        return np.linalg.norm(a.ravel(), keepdims=keepdims).reshape((1,) * a.ndim if keepdims
                                                                     else ())
    return np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims)


def _lstsq_ref(a, b):  # torch's rule for a batch of vectors
    vector = b.ndim == 1 or b.shape == a.shape[:-1]
    x = np.linalg.pinv(a) @ (b[..., None] if vector else b)
    return x[..., 0] if vector else x


def _cross_ref(a, b, axis=-1):
    return np.cross(a, b, axis=axis)


def _tensordot_ref(a, b, dims=2):
    return np.tensordot(a, b, axes=dims)


def _add_product_ref(product):
    def ref(c, x, y, beta=1, alpha=1):
        return (0 if beta == 0 else beta * c) + alpha * product(x, y)
    return ref


def _cdist_ref(x1, x2, p=2.0):
    return _norm_ref(x1[..., :, None, :] - x2[..., None, :, :], p, axis=-1)


SQUARE = [((3, 3),), ((2, 3, 3),)]
SQUARE1 = [((3, 3),)]
RECT = [((4, 3),), ((2, 3, 4),)]
L = gpuad.linalg

LINALG_CASES += [
    # solvers and matrix functions (ops/solve.py)
    Case("_inv", gpuad.ops._inv, np.linalg.inv, SQUARE1, make=_made(_well)),
    Case("inverse", gpuad.inverse, np.linalg.inv, SQUARE, make=_made(_well)),
    Case("_solve", gpuad.ops._solve, np.linalg.solve, [((3, 3), (3, 2))], make=_made(_well, REAL)),
    Case("linalg_solve", L.solve, lambda a, b: np.linalg.solve(a, b),
         [((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 1, 3, 3), (4, 3, 1))],
         make=_made(_well, REAL)),
    Case("_solve_triangular", gpuad.ops._solve_triangular,
         lambda a, b, upper, unitriangular=False: np.linalg.solve(
             (np.triu if upper else np.tril)(a, (1 if upper else -1) if unitriangular else 0)
             + (np.eye(a.shape[-1]) if unitriangular else 0), b),
         [((3, 3), (3, 2))], kwargs=[{"upper": True}, {"upper": False, "unitriangular": True}],
         make=_made(_well, REAL)),
    Case("linalg_solve_triangular", L.solve_triangular,
         lambda a, b, upper, left=True: (np.linalg.solve((np.triu if upper else np.tril)(a), b)
                                         if left else _swap(np.linalg.solve(
                                             _swap((np.triu if upper else np.tril)(a)),
                                             _swap(b)))),
         [((2, 3, 3), (3, 3))], kwargs=[{"upper": False}, {"upper": True, "left": False}],
         make=_made(_well, REAL)),
    Case("matrix_power", L.matrix_power, _matrix_power_ref, SQUARE1,
         kwargs=[{"n": 0}, {"n": 1}, {"n": 3}, {"n": -2}], make=_made(_well)),
    Case("_matrix_exp", gpuad.ops._matrix_exp, _expm_ref, SQUARE1, make=_made(UNIT)),
    Case("matrix_exp", gpuad.matrix_exp, _expm_ref, SQUARE, make=_made(UNIT)),
    # decompositions and what is built on them (ops/decomposition.py)
    Case("_det", gpuad.ops._det, np.linalg.det, SQUARE1, make=_made(_well)),
    Case("det", gpuad.det, np.linalg.det, SQUARE + [((1, 1),)], make=_made(_well)),
    Case("_slogdet", gpuad.ops._slogdet, lambda a: np.stack(np.linalg.slogdet(a)), SQUARE1,
         make=lambda rng, shapes: [-_well(rng, shapes[0])]),  # det < 0: sign -1
    Case("slogdet", lambda a: tuple(gpuad.slogdet(a)), np.linalg.slogdet, SQUARE,
         make=_made(_well)),
    Case("logdet", gpuad.logdet, lambda a: np.log(np.linalg.det(a)), SQUARE, make=_made(_spd)),
    Case("_cholesky", lambda a, upper=False: gpuad.ops._cholesky(_sym(a), upper=upper),
         lambda a, upper=False: np.linalg.cholesky(_sym_np(a), upper=upper), SQUARE1,
         kwargs=[{}, {"upper": True}], make=_made(_spd)),
    Case("cholesky", lambda a, **kw: gpuad.cholesky(_sym(a), **kw),
         lambda a, upper=False: np.linalg.cholesky(_sym_np(a), upper=upper), SQUARE,
         kwargs=[{}, {"upper": True}], make=_made(_spd)),
    Case("_qr", lambda a, mode: tuple(_unpacked(gpuad.ops._qr, _qr_cores, a, mode=mode)),
         lambda a, mode: np.linalg.qr(a, mode=mode), [((4, 3),), ((3, 4),)],
         kwargs=[{"mode": "reduced"}]),
    Case("linalg_qr", lambda a, **kw: tuple(L.qr(a, **kw)),
         lambda a, mode="reduced": np.linalg.qr(a, mode=mode), RECT + [((3, 3),)]),
    Case("linalg_qr", lambda a, **kw: tuple(L.qr(a, **kw)),  # complete: not tall (torch raises)
         lambda a, mode="reduced": np.linalg.qr(a, mode=mode), [((3, 4),), ((3, 3),)],
         kwargs=[{"mode": "complete"}]),
    Case("qr", lambda a, **kw: tuple(gpuad.qr(a, **kw)), lambda a, some=True: np.linalg.qr(
        a, mode="reduced" if some else "complete"), [((4, 3),)], kwargs=[{}]),
    Case("_svd", lambda a, full_matrices: tuple(_unpacked(gpuad.ops._svd, _svd_cores, a,
                                                          full_matrices=full_matrices)),
         lambda a, full_matrices: np.linalg.svd(a, full_matrices=full_matrices),
         [((4, 3),), ((3, 3),)], kwargs=[{"full_matrices": False}], make=_made(_distinct_svd)),
    Case("linalg_svd", _svd_fixed, _svd_fixed_ref, [((4, 3),), ((2, 3, 4),), ((3, 3),)],
         kwargs=[{}, {"full_matrices": True}], make=_made(_distinct_svd)),
    Case("svd", lambda a, some=True: tuple(gpuad.svd(a, some)),
         lambda a, some=True: (lambda u, s, vh: (u, s, _swap(vh)))(
             *np.linalg.svd(a, full_matrices=not some)), [((3, 3),)], make=_made(_distinct_svd)),
    Case("_svdvals", gpuad.ops._svdvals, lambda a: np.linalg.svd(a, compute_uv=False), RECT,
         make=_made(_distinct_svd)),
    Case("linalg_svdvals", L.svdvals, lambda a: np.linalg.svd(a, compute_uv=False), RECT,
         make=_made(_distinct_svd)),
    Case("_eigh", lambda a: tuple(_unpacked(lambda x: gpuad.ops._eigh(_sym(x)),
                                            lambda s: [s[-1:], s[-2:]], a)),
         lambda a: np.linalg.eigh(_sym_np(a)), SQUARE1, make=_made(_distinct_eigh)),
    Case("linalg_eigh", _eigh_fixed, _eigh_fixed_ref, SQUARE, kwargs=[{}, {"UPLO": "U"}],
         make=_made(_distinct_eigh)),
    Case("_eigvalsh", lambda a, **kw: gpuad.ops._eigvalsh(_sym(a), **kw),
         lambda a, UPLO="L": np.linalg.eigvalsh(_sym_np(a), UPLO=UPLO), SQUARE1,
         kwargs=[{"UPLO": "U"}], make=_made(_distinct_eigh)),
    Case("linalg_eigvalsh", lambda a, **kw: L.eigvalsh(_sym(a), **kw),
         lambda a, UPLO="L": np.linalg.eigvalsh(_sym_np(a), UPLO=UPLO), SQUARE,
         make=_made(_distinct_eigh)),
    Case("_pinv", lambda a, hermitian: gpuad.ops._pinv(_sym(a), 0.0, 1e-15, hermitian=hermitian),
         lambda a, hermitian: np.linalg.pinv(_sym_np(a), hermitian=hermitian), [((3, 3),)],
         kwargs=[{"hermitian": True}], make=_made(_distinct_eigh)),
    # truncation (rtol above a singular value) is compared with torch in test_torch_linalg.py:
    # torch's gradient there is the constant-rank formula, which finite differences do not see
    Case("linalg_pinv", L.pinv, _pinv_ref, RECT, kwargs=[{}, {"atol": 0.5}],
         make=_made(_distinct_svd)),
    Case("pinverse", gpuad.pinverse, lambda a, rcond=1e-15: np.linalg.pinv(a, rcond=rcond),
         [((4, 3),)], make=_made(_distinct_svd)),
    Case("linalg_lstsq", lambda a, b, **kw: L.lstsq(a, b, **kw).solution, _lstsq_ref,
         [((4, 3), (4, 2)), ((2, 3, 4), (2, 3)), ((2, 4, 3), (4, 2))],
         make=lambda rng, shapes: [_distinct_svd(rng, shapes[0]), REAL(rng, shapes[1])]),
    # norms (ops/norm.py)
    Case("linalg_vector_norm", L.vector_norm, _norm_ref, [((2, 3, 4),)],
         kwargs=[{}, {"ord": 1, "dim": -1}, {"ord": math.inf, "dim": (0, 2)}, {"ord": -math.inf},
                 {"ord": 3, "dim": 1, "keepdim": True}, {"ord": 0.5}, {"ord": -1.5}, {"ord": 0}],
         make=lambda rng, shapes: [DISTINCT(rng, shapes[0]) + 0.05]),
    Case("linalg_matrix_norm", L.matrix_norm, _matrix_norm_ref, [((2, 3, 4),)],
         kwargs=[{}, {"ord": "nuc"}, {"ord": 2}, {"ord": -2, "keepdim": True}, {"ord": 1},
                 {"ord": -1, "dim": (0, 2)}, {"ord": math.inf, "dim": (2, 1)},
                 {"ord": 2, "dim": (2, 0)},
                 {"ord": -math.inf, "keepdim": True}],
         make=lambda rng, shapes: [DISTINCT(rng, shapes[0]) + 0.05]),
    Case("linalg_norm", L.norm, _linalg_norm_ref, [((3, 4),)],
         kwargs=[{}, {"keepdim": True}, {"ord": "nuc"}, {"ord": 1, "dim": 0}, {"dim": (1, 0)}],
         make=lambda rng, shapes: [DISTINCT(rng, shapes[0]) + 0.05]),
    Case("linalg_matrix_rank", L.matrix_rank, lambda a, hermitian=False: np.linalg.matrix_rank(
        a, hermitian=hermitian).astype(np.int64), [((2, 3, 3),)],
         kwargs=[{}, {"hermitian": True}], grad=False, make=_made(_spd)),
    Case("linalg_matrix_rank", L.matrix_rank, lambda a: np.linalg.matrix_rank(a).astype(np.int64),
         [((4, 3),)], grad=False,
         make=lambda rng, shapes: [_distinct_svd(rng, shapes[0]) * np.array([1, 1, 0])]),
    Case("linalg_cond", L.cond, lambda a, p=None: np.linalg.cond(a, p), [((3, 3),)],
         kwargs=[{}, {"p": -2}, {"p": "fro"}, {"p": 1}], make=_made(_well)),
    # products (ops/linalg.py)
    Case("linalg_vecdot", L.vecdot, lambda x, y, axis=-1: (x * y).sum(axis),
         [((2, 3), (3,)), ((3, 2), (3, 1))], kwargs=[{}, {"dim": 0}]),
    Case("linalg_multi_dot", lambda *xs: L.multi_dot(xs), lambda *xs: np.linalg.multi_dot(xs),
         [((3,), (3, 4), (4, 2)), ((2, 3), (3, 4), (4,)), ((2, 3), (3, 2))]),
    Case("t", gpuad.t, lambda x: x.T, [((2, 3),), ((3,),), ((),)]),
    Case("addmm", gpuad.addmm, _add_product_ref(np.matmul), [((2, 4), (2, 3), (3, 4)),
                                                              ((4,), (2, 3), (3, 4))],
         kwargs=[{}, {"beta": 0.5, "alpha": -2.0}, {"beta": 0}]),
    Case("addmv", gpuad.addmv, _add_product_ref(np.matmul), [((2,), (2, 3), (3,))],
         kwargs=[{}, {"beta": 2, "alpha": 0.5}]),
    Case("baddbmm", gpuad.baddbmm, _add_product_ref(np.matmul),
         [((2, 3, 4), (2, 3, 2), (2, 2, 4)), ((3, 1), (2, 3, 2), (2, 2, 4))],
         kwargs=[{}, {"beta": -1, "alpha": 3}]),
    Case("addbmm", gpuad.addbmm, _add_product_ref(lambda x, y: (x @ y).sum(0)),
         [((3, 4), (2, 3, 2), (2, 2, 4))], kwargs=[{}, {"beta": 0.5, "alpha": 2}]),
    Case("kron", gpuad.kron, np.kron, [((2, 3), (3, 2)), ((2,), (2, 3)), ((2, 1, 2), (3,)),
                                       ((), (2,))]),
    Case("tensordot", gpuad.tensordot, _tensordot_ref, [((3, 4, 2), (4, 2, 5))],
         kwargs=[{}, {"dims": 0}, {"dims": ([2, 1], [1, 0])}]),
    Case("linalg_cross", L.cross, _cross_ref, [((4, 3), (4, 3)), ((3,), (2, 3))]),
    Case("cross", lambda a, b, dim: gpuad.cross(a, b, dim), _cross_ref, [((3, 2), (3, 2))],
         kwargs=[{"dim": 0}]),
    Case("cdist", gpuad.cdist, _cdist_ref, [((3, 2), (4, 2)), ((2, 3, 2), (1, 4, 2))],
         kwargs=[{}, {"p": 1.0}, {"p": math.inf}, {"p": 3.0}]),
    *_einsum_rows("einsum", lambda *xs, equation: gpuad.einsum(equation, *xs), [
        ("...ii->...i", (2, 3, 3)), ("i...i->...", (3, 2, 3)), ("a...b,b...c->...ac", (2, 3, 4),
                                                                 (4, 1, 5))]),
]
