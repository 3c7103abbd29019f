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
