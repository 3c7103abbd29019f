"""Vector and matrix norms and what is measured with them, torch.linalg's: vector_norm,
matrix_norm, norm, matrix_rank and cond (torch.norm, the older spelling, lives in reduce.py and
carries the 2-norm's primitive that these reuse).
"""
import math

import numpy

from .. import backend
from ..tensor import Tensor
from . import decomposition as _decomposition
from . import elementwise as _ew
from . import public
from . import reduce as _reduce
from . import shape as _shape
from . import solve as _solvers
from .solve import matrix_input, tensor_input


# ---- norms ---------------------------------------------------------------------------------------
def _floating(name, x, dtype):
    """x checked as torch checks a norm's input, then cast to `dtype` if one is given."""
    x = tensor_input(x, name)
    if x.dtype.kind not in "fc":
        raise TypeError(f"{name}: Expected a floating point or complex tensor as input. Got "
                        f"{x.dtype}")
    if dtype is not None and not numpy.can_cast(x.dtype, dtype, "safe"):
        raise TypeError(f"{name}: the dtype of the input ({x.dtype}) should be convertible "
                        f"without narrowing to the specified dtype ({numpy.dtype(dtype)})")
    return x if dtype is None else x.to(dtype)


@public
def linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ord-norm over dim (all dims by default), like torch.linalg.vector_norm: ord is
    any number, inf or -inf (0 counts the non-zeros); the gradient at 0 is 0, as in torch."""
    x = _floating("linalg.vector_norm", x, dtype)
    if isinstance(ord, str) or isinstance(ord, bool):
        raise TypeError(f"linalg.vector_norm: ord must be a number, got {ord!r}; use "
                        f"linalg.matrix_norm for 'fro' and 'nuc'")
    if ord in (math.inf, -math.inf) and x.numel() == 0:
        raise ValueError(f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor "
                         f"because the operation does not have an identity")
    return _reduce.norm(x, ord, dim, keepdim)


def _matrix_dims(name, shape, dim):
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ValueError(f"{name}: dim must be a 2-tuple of ints, got {dim!r}")
    d0, d1 = (d + len(shape) if d < 0 else d for d in dim)
    if not (0 <= d0 < len(shape) and 0 <= d1 < len(shape)) or d0 == d1:
        raise ValueError(f"{name}: dims {tuple(dim)} must name two different dims of a tensor of "
                         f"shape {tuple(shape)}")
    return d0, d1


@public
def linalg_matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix norm over the two dims `dim`, like torch.linalg.matrix_norm: ord 'fro', 'nuc',
    2 and -2 (largest and smallest singular value), 1, -1, inf, -inf (max/min absolute column
    and row sums)."""
    name = "linalg.matrix_norm"
    A = _floating(name, A, dtype)
    if A.ndim < 2:
        raise ValueError(f"{name}: The input tensor A must have at least 2 dimensions.")
    d0, d1 = _matrix_dims(name, A.shape, dim)
    if ord == "fro":
        return _reduce.norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):  # singular values of the matrices moved to the last two dims
        rest = [d for d in range(A.ndim) if d not in (d0, d1)]
        moved = _shape.permute(A, dims=tuple(rest) + (d0, d1))
        s = _decomposition._svdvals(matrix_input(name, moved, square=False))
        out = (s.sum(-1) if ord == "nuc" else _reduce.amax(s, dim=-1) if ord == 2
               else _reduce.amin(s, dim=-1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = _shape.unsqueeze(out, d)
        return out
    if ord not in (1, -1, math.inf, -math.inf):
        raise ValueError(f"{name}: Order {ord} not supported; use 'fro', 'nuc', 2, -2, 1, -1, "
                         f"inf or -inf")
    summed, over = (d0, d1) if ord in (1, -1) else (d1, d0)  # 1: column sums, inf: row sums
    sums = _reduce.sum(_ew.abs(A), dim=summed, keepdim=True)
    out = (_reduce.amax if ord > 0 else _reduce.amin)(sums, dim=over, keepdim=True)
    return out if keepdim else _shape.squeeze(out, (d0, d1))


@public
def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """A vector or matrix norm, like torch.linalg.norm: an int dim (or ord with a 1-D input) means
    a vector norm, a pair of dims (or ord with a 2-D input) a matrix norm, neither the 2-norm of
    the flattened input."""
    name = "linalg.norm"
    if isinstance(dim, int) or (isinstance(dim, (tuple, list)) and len(dim) == 1):
        return linalg_vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is not None:
        return linalg_matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is None:
        return linalg_vector_norm(A, 2, None, keepdim, dtype=dtype)
    ndim = getattr(A, "ndim", None)
    if ndim not in (1, 2):
        raise ValueError(f"{name}: If dim is not specified but ord is, the input must be 1D or "
                         f"2D. Got {ndim}D.")
    if ndim == 1:
        return linalg_vector_norm(A, ord, None, keepdim, dtype=dtype)
    return linalg_matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)


@public
def linalg_matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """The number of singular values (|eigenvalues| if hermitian) above max(atol, rtol * largest),
    int64, like torch.linalg.matrix_rank (rtol defaults to eps * max(m, n))."""
    A = matrix_input("linalg.matrix_rank", A, square=hermitian).detach()
    atol, rtol = _decomposition.pinv_tolerances(A, atol, rtol)
    s = _ew.abs(_decomposition._eigvalsh(A)) if hermitian else _decomposition._svdvals(A)
    if not s.shape[-1]:
        return _reduce.sum(s, dim=-1).to(backend.int64)
    largest = _reduce.amax(s, dim=-1, keepdim=True)
    atol = _shape.unsqueeze(atol, -1) if isinstance(atol, Tensor) else atol
    rtol = _shape.unsqueeze(rtol, -1) if isinstance(rtol, Tensor) else rtol
    return _reduce.sum(s > _ew.maximum(rtol * largest, atol), dim=-1)


@public
def linalg_cond(A, p=None):
    """The condition number in the p-norm, like torch.linalg.cond: p None or 2 is the ratio of the
    largest to the smallest singular value (-2 the inverse); other p, norm(A) * norm(inv(A))."""
    name = "linalg.cond"
    if p is None or p in (2, -2):
        s = _decomposition._svdvals(matrix_input(name, A, square=False))
        ratio = s[..., 0] / s[..., -1]
        return ratio if p != -2 else 1 / ratio
    A = matrix_input(name, A)
    return linalg_matrix_norm(A, p) * linalg_matrix_norm(_solvers._inv(A), p)
