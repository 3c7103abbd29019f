"""Inverses, linear solves and functions of a matrix: inv, solve, solve_triangular, matrix_power,
matrix_exp, with torch.linalg's signatures and gradients (FunctionsManual.cpp's formulas).

Inputs are stacks of matrices (..., m, n). The primitives take matrices whose batch dims already
agree; the public functions check the input as torch.linalg does (floating, at least 2-D,
square), broadcast batch dims and handle torch's vector right-hand sides first. A singular
matrix raises gpuad.linalg.LinAlgError (a RuntimeError, as torch's is) on numpy and CuPy alike.
decomposition.py builds det, eigh, svd, pinv and lstsq on these.
"""
import numpy

from .. import backend, creation
from ..backend import xp_of
from ..tensor import Tensor
from . import as_input, primitive, public
from . import linalg as _linalg
from . import shape as _shape


# ---- checks shared by the linear algebra ops -----------------------------------------------------
def tensor_input(x, name):
    """x as a Tensor (arrays and lists become constant ones), for the linear algebra ops."""
    return x if isinstance(x, Tensor) else as_input(x, name)


def matrix_input(name, A, square=True):
    """A as a Tensor, after torch.linalg's checks on its dtype and shape."""
    A = tensor_input(A, name)
    kind, dtype = A.dtype.kind, A.dtype
    if kind == "c":
        raise TypeError(f"{name}: complex inputs are not supported by gpuad's linear algebra yet "
                        f"(got {dtype}); split real and imaginary parts into a real problem")
    if kind != "f":
        raise TypeError(f"{name}: Expected a floating point tensor as input. Got {dtype}")
    if dtype.itemsize < 4:
        raise TypeError(f"{name}: Low precision dtypes not supported. Got {dtype}; compute in "
                        f"float32 (A.float())")
    if A.ndim < 2:
        raise ValueError(f"{name}: The input tensor A must have at least 2 dimensions, got shape "
                         f"{tuple(A.shape)}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name}: A must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    return A


def same_dtype(name, A, B):
    """B as a Tensor of A's dtype, or torch's error."""
    B = tensor_input(B, name)
    if B.dtype != A.dtype:
        raise TypeError(f"{name}: Expected A and B to have the same dtype, but found A of type "
                        f"{A.dtype} and B of type {B.dtype} instead; cast one with .to()")
    return B


def _broadcast_batch(name, A, B):
    """A and B expanded to their common batch dims (the engine sums the gradients back)."""
    try:
        batch = tuple(numpy.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2])))
    except ValueError:
        raise ValueError(f"{name}: the batch dims of A {tuple(A.shape[:-2])} and B "
                         f"{tuple(B.shape[:-2])} do not broadcast") from None
    return (_shape.expand(A, shape=batch + tuple(A.shape[-2:])),
            _shape.expand(B, shape=batch + tuple(B.shape[-2:])))


def is_vector_rhs(A, B):
    """torch's rule: B is a (batch of) vector(s) if 1-D, or if its shape is A's without the last
    dim."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def eye_like(n, like):
    """The n x n identity in like's dtype and on its device."""
    return creation.eye(n, dtype=like.dtype, device=like.device)


# ---- inverse -------------------------------------------------------------------------------------
def _inv_vjp(g, y, a):
    yt = y.mT  # d inv(A) = -A^-1 dA A^-1
    return (-_linalg.matmul(yt, _linalg.matmul(g, yt)),)


@primitive(vjp=_inv_vjp, autocast="float32")
def _inv(a):
    """The inverse of each matrix of a (..., n, n) stack."""
    return backend.linalg.inv(a)


@public
def inverse(A):
    """The inverse of a square matrix or a batch of them (torch.inverse, torch.linalg.inv);
    LinAlgError if one is singular."""
    return _inv(matrix_input("linalg.inv", A))


# ---- solve ---------------------------------------------------------------------------------------
def _solve_vjp(g, x, a, b):
    gb = _solve(a.mT, g)  # X = A^-1 B: gB = A^-T g, gA = -gB X^T
    ga = -_linalg.matmul(gb, x.mT) if getattr(a, "requires_grad", False) else None
    return ga, gb


@primitive(vjp=_solve_vjp, autocast="float32")
def _solve(a, b):
    """X with a @ X = b for a (..., n, n) and b (..., n, k) with the same batch dims."""
    return backend.linalg.solve(a, b)


def _solve_inputs(name, A, B, left, vectors=True):
    """A and B checked and expanded to the same batch dims, B as a matrix, and whether B was a
    vector (torch's rule, only for left=True solves that take vectors)."""
    A = matrix_input(name, A)
    B = same_dtype(name, A, B)
    vector = vectors and left and is_vector_rhs(A, B)
    if vector:
        B = _shape.unsqueeze(B, -1)
    if B.ndim < 2:
        raise ValueError(f"{name}: The input tensor B must have at least 2 dimensions, got shape "
                         f"{tuple(B.shape)}")
    if (B.shape[-2] if left else B.shape[-1]) != A.shape[-1]:
        raise ValueError(f"{name}: Incompatible shapes of A and B for the equation "
                         f"{'AX = B' if left else 'XA = B'} ({A.shape[-2]}x{A.shape[-1]} and "
                         f"{B.shape[-2]}x{B.shape[-1]})")
    A, B = _broadcast_batch(name, A, B)
    return A, B, vector


@public
def linalg_solve(A, B, *, left=True):
    """X with A @ X = B (or X @ A = B for left=False), like torch.linalg.solve: B is a matrix or,
    by torch's rule, a batch of vectors; batch dims broadcast."""
    A, B, vector = _solve_inputs("linalg.solve", A, B, left)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return _solve(A.mT, B.mT).mT
    X = _solve(A, B)
    return _shape.squeeze(X, -1) if vector else X


# ---- triangular solve ----------------------------------------------------------------------------
def _substitute(a, b, upper, unit):
    # Row by row, as BLAS trsm does: neither numpy nor CuPy has a batched triangular solve. Like
    # torch, a zero on the diagonal gives inf/nan rather than an error, and the other triangle is
    # never read.
    xp = xp_of(a)
    n = a.shape[-1]
    x = xp.empty(b.shape, dtype=b.dtype)
    for i in (range(n - 1, -1, -1) if upper else range(n)):
        done = slice(i + 1, n) if upper else slice(0, i)
        r = b[..., i, :] - (a[..., i:i + 1, done] @ x[..., done, :])[..., 0, :]
        x[..., i, :] = r if unit else r / a[..., i, i:i + 1]
    return x


def _solve_triangular_vjp(g, x, a, b, *, upper, unitriangular):
    gb = _solve_triangular(a.mT, g, upper=not upper, unitriangular=unitriangular)
    ga = None
    if getattr(a, "requires_grad", False):  # the gradient lives on the triangle that was read
        ga = -_linalg.matmul(gb, x.mT)
        ga = (_shape.triu(ga, diagonal=int(unitriangular)) if upper
              else _shape.tril(ga, diagonal=-int(unitriangular)))
    return ga, gb


@primitive(vjp=_solve_triangular_vjp, autocast="float32")
def _solve_triangular(a, b, *, upper, unitriangular=False):
    """X with a @ X = b for triangular a (..., n, n) and b (..., n, k), same batch dims."""
    return _substitute(a, b, upper, unitriangular)


@public
def linalg_solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    """X with A @ X = B (X @ A = B for left=False) for triangular A, like
    torch.linalg.solve_triangular: only the triangle named by `upper` is read (and not the
    diagonal if unitriangular); a zero on the diagonal gives inf/nan, not an error."""
    A, B, _ = _solve_inputs("linalg.solve_triangular", A, B, left, vectors=False)
    if left:
        return _solve_triangular(A, B, upper=upper, unitriangular=unitriangular)
    # X A = B  <=>  A^T X^T = B^T, and A^T has the other triangle
    return _solve_triangular(A.mT, B.mT, upper=not upper, unitriangular=unitriangular).mT


# ---- matrix functions ----------------------------------------------------------------------------
@public
def matrix_power(A, n):
    """A to the integer power n by repeated squaring, like torch.linalg.matrix_power: n = 0 gives
    the identity, n < 0 the power of the inverse."""
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__}")
    A = matrix_input("linalg.matrix_power", A)
    if n == 0:  # the identity, still connected to A so its gradient is zero, as in torch
        return _linalg.keep_first(eye_like(A.shape[-1], A), A)
    if n < 0:
        A, n = _inv(A), -n
    result, z = None, A
    while n:
        if n & 1:
            result = z if result is None else _linalg.matmul(result, z)
        n >>= 1
        if n:
            z = _linalg.matmul(z, z)
    return result


# Higham (2005), "The scaling and squaring method for the matrix exponential revisited": the
# [13/13] Pade approximant is accurate to double precision for 1-norms up to THETA_13.
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _expm(a):
    xp = xp_of(a)
    if a.size == 0:
        return a.copy()
    norm = xp.abs(a).sum(axis=-2).max(axis=-1)  # the 1-norm of each matrix
    s = xp.ceil(xp.log2(xp.maximum(norm / _THETA13, 1.0)))
    s = xp.where(xp.isfinite(s), s, 0).astype(a.dtype)  # nan/inf inputs give nan/inf, unscaled
    a = a * xp.exp2(-s)[..., None, None]
    b, eye = _PADE13, xp.eye(a.shape[-1], dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
             + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = backend.linalg.solve(v - u, v + u)
    for k in range(int(s.max())):  # square each matrix as often as it was scaled (one host sync)
        r = xp.where((s > k)[..., None, None], r @ r, r)
    return r


def _matrix_exp_vjp(g, y, a):
    # Mathias (1996): the adjoint of d exp at A applied to g is the top-right block of
    # exp([[A^T, g], [0, A^T]]), torch's linalg_matrix_exp_differential
    n, at = a.shape[-1], a.mT
    zero = creation.zeros(tuple(at.shape), dtype=at.dtype, device=at.device)
    block = _shape.cat([_shape.cat([at, g], -1), _shape.cat([zero, at], -1)], -2)
    return (_matrix_exp(block)[..., :n, n:],)


@primitive(vjp=_matrix_exp_vjp, autocast="float32")
def _matrix_exp(a):
    """exp of each matrix of a (..., n, n) stack: scaling and squaring with a Pade approximant."""
    return _expm(a)


@public
def matrix_exp(A):
    """The matrix exponential of a square matrix or a batch of them, like torch.linalg.matrix_exp
    (and torch.matrix_exp)."""
    return _matrix_exp(matrix_input("linalg.matrix_exp", A))

