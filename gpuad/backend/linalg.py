"""Linear algebra where numpy and CuPy differ: numpy.linalg raises on a singular (or not positive-
definite) input, CuPy by default returns garbage unless cupyx.errstate(linalg="raise") asks it to
check (a device synchronisation, as torch.linalg makes on CUDA too). Both raise LinAlgError here.
"""
import contextlib

import numpy

from . import cupy, xp_of


class LinAlgError(numpy.linalg.LinAlgError, RuntimeError):
    """A matrix the operation cannot handle (singular, not positive-definite): a RuntimeError like
    torch.linalg.LinAlgError, and numpy's LinAlgError too."""


def _checking(a):
    """Make CuPy check cuSOLVER's status as numpy checks LAPACK's."""
    if cupy is not None and type(a) is cupy.ndarray:
        import cupyx
        return cupyx.errstate(linalg="raise")
    return contextlib.nullcontext()


def _checked(a, call, why):
    try:
        with _checking(a):
            return call()
    except numpy.linalg.LinAlgError as error:  # cupy.linalg.LinAlgError is numpy's
        raise LinAlgError(why) from error


def inv(a):
    """The inverse of each matrix in a (..., n, n) stack; LinAlgError if one is singular."""
    return _checked(a, lambda: xp_of(a).linalg.inv(a),
                    "the inversion could not be completed because the input matrix is singular")


def solve(a, b):
    """X with a @ X = b for a (..., n, n) and b (..., n, k) with the same batch dims."""
    return _checked(a, lambda: xp_of(a).linalg.solve(a, b),
                    "the solver failed because the input matrix is singular")


def cholesky(a):
    """The lower Cholesky factor of each matrix in a (..., n, n) stack."""
    return _checked(a, lambda: xp_of(a).linalg.cholesky(a),
                    "the factorization could not be completed because the input is not "
                    "positive-definite")


# OpenBLAS multiplies small matrices (m*n*k up to about 10^6) with a kernel that packs nothing,
# and bigger ones through its packing GEMM, which is slow when the result is tiny and the shared
# dimension long: a conv's weight gradient for a few input channels, (9, 50176) @ (50176, 16) on
# LeNet's first layer, runs at 20 GFLOP/s. Split along k into products the small kernel takes,
# it runs 2.5-4.5x faster (680 -> 210 us there; float32 and float64, every transpose layout).
_SMALL_RESULT = 256  # m*n at most: from 512 on (16 x 32) the split gained too little, or lost
_SMALL_PRODUCT = 1 << 19  # m*n*k of one piece, under the small kernel's limit
_PIECE_STEP = 512  # pieces start at multiples of this many k


def matmul(a, b):
    """a @ b; on numpy, a 2-D product with a small result and a long shared dimension is summed
    from pieces of k in order (see above), otherwise one call."""
    if type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or a.ndim != 2 or b.ndim != 2:
        return a @ b
    (m, k), n = a.shape, b.shape[-1]
    piece = _SMALL_PRODUCT // max(m * n, 1) // _PIECE_STEP * _PIECE_STEP
    if (m < 2 or n < 2 or m * n > _SMALL_RESULT or k < 2 * piece or a.dtype != b.dtype
            or a.dtype.char not in "fd" or b.shape[0] != k):
        return a @ b
    out = a[:, :piece] @ b[:piece]
    for start in range(piece, k, piece):
        out += a[:, start:start + piece] @ b[start:start + piece]
    return out
