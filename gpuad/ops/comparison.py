"""Comparisons, NaN-aware extrema and bit operations, with torch's result dtypes: comparisons give
bool, bitwise ops keep the promoted integer dtype (bool only for bool inputs), fmax/fmin are the
only differentiable ones here. The basic comparisons (eq, lt, ...) and logical ops live in
elementwise.py; this file adds torch's other names for them.
"""
from .. import backend
from ..backend import xp_of
from ..tensor import Tensor
from . import primitive, public
from .elementwise import eq, ge, gt, le, logical_or, lt, ne, where


def _needs(x):
    return getattr(x, "requires_grad", False)


def _xp(a, b):
    return xp_of(a if hasattr(a, "dtype") else b)


# ---- closeness and equality ----------------------------------------------------------------------
@primitive()
def isclose(a, b, *, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|a - b| <= atol + rtol |b| (or a == b, which covers infinities), like torch.isclose; the
    two tensors must share a dtype, as torch requires."""
    if getattr(a, "dtype", None) is not None and getattr(b, "dtype", a.dtype) != a.dtype:
        raise TypeError(f"isclose: {a.dtype} did not match {b.dtype} (as in PyTorch, both tensors "
                        f"need the same dtype); cast one with .to(other.dtype)")
    xp = _xp(a, b)
    close = a == b
    if equal_nan:
        close = close | (xp.isnan(a) & xp.isnan(b))
    if getattr(a, "dtype", getattr(b, "dtype", None)).kind == "b":
        return close
    difference = xp.abs(a - b)
    return close | (xp.isfinite(difference) & (difference <= atol + xp.abs(rtol * b)))


@public
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether isclose holds everywhere: a Python bool, like torch.allclose."""
    return bool(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan).all())


@public
def equal(a, b):
    """Whether a and b have the same shape and the same values (a Python bool, like torch.equal;
    NaN is never equal)."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        raise TypeError(f"equal: expected two tensors, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    return tuple(a.shape) == tuple(b.shape) and bool(eq(a, b).all())


# ---- extrema that ignore NaN: torch's gradient goes to a on ties, not half to each -------------
def _fmax_vjp(g, y, a, b):
    to_a = logical_or(a >= b, b != b)  # b != b: b is NaN
    return where(to_a, g, 0) if _needs(a) else None, where(to_a, 0, g) if _needs(b) else None


@primitive(vjp=_fmax_vjp, promote=True)
def fmax(a, b):
    """Elementwise max that ignores a NaN (NaN only where both are), like torch.fmax."""
    return _xp(a, b).fmax(a, b)


def _fmin_vjp(g, y, a, b):
    to_a = logical_or(a <= b, b != b)
    return where(to_a, g, 0) if _needs(a) else None, where(to_a, 0, g) if _needs(b) else None


@primitive(vjp=_fmin_vjp, promote=True)
def fmin(a, b):
    """Elementwise min that ignores a NaN, like torch.fmin."""
    return _xp(a, b).fmin(a, b)


# ---- logic and bits ------------------------------------------------------------------------------
@primitive()
def logical_xor(a, b):
    """Exactly one of a, b is nonzero (bool result, inputs of any dtype)."""
    return _xp(a, b).logical_xor(a, b)


def _integral(name, *operands):
    for x in operands:
        if hasattr(x, "dtype") and x.dtype.kind not in "biu":
            raise TypeError(f"{name}: only integer and bool tensors have bits, got {x.dtype} (as "
                            f"in PyTorch); the logical_* ops take truth values of any dtype")


@primitive(promote=True)
def bitwise_and(a, b):
    """a & b: integers stay integers (bool for bool inputs), like torch."""
    _integral("bitwise_and", a, b)
    return _xp(a, b).bitwise_and(a, b)


@primitive(promote=True)
def bitwise_or(a, b):
    """a | b: integers stay integers (bool for bool inputs)."""
    _integral("bitwise_or", a, b)
    return _xp(a, b).bitwise_or(a, b)


@primitive(promote=True)
def bitwise_xor(a, b):
    """a ^ b: integers stay integers (bool for bool inputs)."""
    _integral("bitwise_xor", a, b)
    return _xp(a, b).bitwise_xor(a, b)


@primitive()
def bitwise_not(x):
    """~x: the bits flipped for integers, logical not for bool."""
    _integral("bitwise_not", x)
    return xp_of(x).invert(x)


def _shift_operands(name, a, b):
    _integral(name, a, b)
    dtype = (a if hasattr(a, "dtype") else b).dtype
    if dtype.kind == "b":
        if all(type(x) is bool or getattr(x, "dtype", None) == backend.bool_ for x in (a, b)):
            raise TypeError(f"{name}: not implemented for bool tensors (as in PyTorch); convert "
                            f"with .long() first")
        dtype = backend.int64  # a bool tensor and an int: int64, as torch promotes
        a, b = (x.astype(dtype) if hasattr(x, "dtype") else x for x in (a, b))
    bits = dtype.itemsize * 8
    # torch defines what C leaves undefined: shifting by a negative amount or by the width or more
    # fills with 0 (left) or with the sign (right); the clipped shift keeps every backend defined
    xp = _xp(a, b)
    return xp, a, (b < 0) | (b >= bits), xp.clip(b, 0, bits - 1), dtype


@primitive(promote=True)
def bitwise_left_shift(a, b):
    """a << b, like torch (0 where b is negative or at least the width)."""
    xp, a, out_of_range, b, dtype = _shift_operands("bitwise_left_shift", a, b)
    return xp.where(out_of_range, 0, xp.left_shift(a, b)).astype(dtype, copy=False)


@primitive(promote=True)
def bitwise_right_shift(a, b):
    """a >> b (arithmetic for signed integers), like torch."""
    xp, a, out_of_range, b, dtype = _shift_operands("bitwise_right_shift", a, b)
    sign_fill = xp.where(a < 0, -1, 0) if dtype.kind == "i" else 0
    return xp.where(out_of_range, sign_fill, xp.right_shift(a, b)).astype(dtype, copy=False)


# ---- torch's alternative names -------------------------------------------------------------------
@public
def greater(a, b):
    """torch's alias of gt."""
    return gt(a, b)


@public
def greater_equal(a, b):
    """torch's alias of ge."""
    return ge(a, b)


@public
def less(a, b):
    """torch's alias of lt."""
    return lt(a, b)


@public
def less_equal(a, b):
    """torch's alias of le."""
    return le(a, b)


@public
def not_equal(a, b):
    """torch's alias of ne."""
    return ne(a, b)
