"""Pointwise math beyond elementwise.py's core: inverse and hyperbolic trigonometry, rounding,
exponentials and logarithms in other bases, binary arithmetic (fmod, xlogy, lerp, ...) and the
special functions (erfc, erfinv, lgamma, digamma, polygamma), all with torch's result dtypes and
torch's gradients, including its conventions at the special points (xlogy at x = 0, atan2 at the
origin, logit at its bounds). Special functions live in backend.special; nothing here imports cupy.
"""
import math

from .. import backend
from ..backend import special, xp_of
from . import primitive, public
from .elementwise import (
    cast,
    clamp,
    cos,
    div,
    exp,
    flat,
    isfinite,
    logical_or,
    reject_bool,
    sigmoid,
    sign,
    sin,
    sqrt,
    where,
    zeros_of,
)

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _needs(x):
    return getattr(x, "requires_grad", False)


def _floats(a, b):
    """Operands of a binary math function, promoted already: integers and bools become the default
    float (torch.atan2 of two int tensors is float32)."""
    ref = a if hasattr(a, "dtype") else b
    if ref.dtype.kind in "fc":
        return a, b
    return tuple(x.astype(backend.DEFAULT_FLOAT) if hasattr(x, "dtype") else x for x in (a, b))


def _require_float(name, *arrays):
    for x in arrays:
        if hasattr(x, "dtype") and x.dtype.kind not in "fc":
            raise TypeError(f"{name}: not implemented for {x.dtype} tensors (as in PyTorch); "
                            f"convert them first, e.g. x.float()")


def _no_grad_rule(name):
    """The rule of an op PyTorch defines no derivative for: backward raises, as torch's does."""
    def rule(g, y, *inputs, **attrs):
        raise RuntimeError(f"{name}: the derivative is not implemented (as in PyTorch); detach "
                           f"its inputs (x.detach()) if no gradient should flow through it")
    return rule


# ---- inverse and hyperbolic trigonometry -------------------------------------------------------
@primitive(vjp=lambda g, y, x: (-g / sqrt(1 - x * x),), floating=True, autocast="float32")
def acos(x):
    """The inverse cosine, in [0, pi]."""
    return xp_of(x).arccos(x)


@primitive(vjp=lambda g, y, x: (g / sqrt(1 - x * x),), floating=True, autocast="float32")
def asin(x):
    """The inverse sine, in [-pi/2, pi/2]."""
    return xp_of(x).arcsin(x)


@primitive(vjp=lambda g, y, x: (g / (1 + x * x),), floating=True)
def atan(x):
    """The inverse tangent, in (-pi/2, pi/2)."""
    return xp_of(x).arctan(x)


@primitive(vjp=lambda g, y, x: (g * cosh(x),), floating=True, autocast="float32")
def sinh(x):
    """The hyperbolic sine."""
    return xp_of(x).sinh(x)


@primitive(vjp=lambda g, y, x: (g * sinh(x),), floating=True, autocast="float32")
def cosh(x):
    """The hyperbolic cosine."""
    return xp_of(x).cosh(x)


@primitive(vjp=lambda g, y, x: (g / sqrt(x * x + 1),), floating=True)
def asinh(x):
    """The inverse hyperbolic sine."""
    return xp_of(x).arcsinh(x)


@primitive(vjp=lambda g, y, x: (g / sqrt(x * x - 1),), floating=True)
def acosh(x):
    """The inverse hyperbolic cosine (NaN below 1)."""
    return xp_of(x).arccosh(x)


@primitive(vjp=lambda g, y, x: (g / (1 - x * x),), floating=True)
def atanh(x):
    """The inverse hyperbolic tangent (+-inf at +-1, NaN beyond)."""
    return xp_of(x).arctanh(x)


def _atan2_vjp(g, y, a, b):
    # torch: the gradient is 0 at the origin (where a^2 + b^2 is 0), not 0/0
    r2 = a * a + b * b
    inv = where(r2 == 0, 0, 1 / where(r2 == 0, 1, r2))
    return g * b * inv if _needs(a) else None, g * -a * inv if _needs(b) else None


@primitive(vjp=_atan2_vjp, promote=True)
def atan2(a, b):
    """The angle of the point (b, a), elementwise, like torch.atan2 (integers give floats)."""
    a, b = _floats(a, b)
    return xp_of(a if hasattr(a, "dtype") else b).arctan2(a, b)


# ---- rounding: zero gradients, integers pass through unchanged (as in torch) --------------------
def _rounding(name, x):
    if x.dtype.kind == "b":
        raise TypeError(f"{name}: not implemented for bool tensors (as in PyTorch)")
    return x.dtype.kind in "iu"


@primitive(vjp=flat)
def floor(x):
    """Round down."""
    return x.copy() if _rounding("floor", x) else xp_of(x).floor(x)


@primitive(vjp=flat)
def ceil(x):
    """Round up."""
    return x.copy() if _rounding("ceil", x) else xp_of(x).ceil(x)


@primitive(vjp=flat)
def trunc(x):
    """Round towards zero."""
    return x.copy() if _rounding("trunc", x) else xp_of(x).trunc(x)


@primitive(vjp=flat)
def round(x, *, decimals=0):
    """Round half to even, at `decimals` decimal places (negative: tens, hundreds, ...)."""
    if _rounding("round", x):
        if decimals:
            raise TypeError(f"round: decimals={decimals} is not implemented for {x.dtype} "
                            f"tensors (as in PyTorch)")
        return x.copy()
    return xp_of(x).round(x, decimals)


@primitive(vjp=lambda g, y, x: (g,))
def frac(x):
    """x - trunc(x): the fractional part, with x's sign."""
    _require_float("frac", x)
    return x - xp_of(x).trunc(x)


@public
def fix(x):
    """torch's alias of trunc."""
    return trunc(x)


@public
def sgn(x):
    """sign, for real tensors (torch.sgn also takes complex ones, which gpuad does not have)."""
    return sign(x)


# ---- exponentials and logarithms in other bases ------------------------------------------------
@primitive(vjp=lambda g, y, x: (g * y * _LN2,), floating=True)
def exp2(x):
    """2 ** x."""
    return xp_of(x).exp2(x)


@primitive(vjp=lambda g, y, x: (g / (x * _LN2),), floating=True, autocast="float32")
def log2(x):
    """The base-2 logarithm."""
    return xp_of(x).log2(x)


@primitive(vjp=lambda g, y, x: (g / (x * _LN10),), floating=True, autocast="float32")
def log10(x):
    """The base-10 logarithm."""
    return xp_of(x).log10(x)


@primitive(vjp=lambda g, y, a, b: (g * sigmoid(a - b) if _needs(a) else None,
                                   g * sigmoid(b - a) if _needs(b) else None), promote=True)
def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow; d/da = sigmoid(a - b)."""
    _require_float("logaddexp", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).logaddexp(a, b)


@primitive(vjp=lambda g, y, a, b: (g * sigmoid((a - b) * _LN2) if _needs(a) else None,
                                   g * sigmoid((b - a) * _LN2) if _needs(b) else None),
           promote=True)
def logaddexp2(a, b):
    """log2(2^a + 2^b) without overflow."""
    _require_float("logaddexp2", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).logaddexp2(a, b)


def _xlogy_vjp(g, y, a, b):
    # torch: d/da = xlogy(a != 0, b), so 0 at a = 0 even where log b is -inf (but NaN for NaN b)
    ga = g * xlogy(cast(a != 0, dtype=y.dtype), b) if _needs(a) else None
    return ga, g * a / b if _needs(b) else None


@primitive(vjp=_xlogy_vjp, promote=True)
def xlogy(a, b):
    """a * log(b), 0 where a == 0 unless b is NaN, like torch.xlogy (integers give floats)."""
    a, b = _floats(a, b)
    xp = xp_of(a if hasattr(a, "dtype") else b)
    zero = (a == 0) & ~xp.isnan(b)
    return xp.where(zero, 0, a * xp.log(xp.where(zero, 1, b))).astype(_dtype(a, b), copy=False)


def _dtype(a, b):
    return (a if hasattr(a, "dtype") else b).dtype


# ---- binary arithmetic ---------------------------------------------------------------------------
@primitive(vjp=lambda g, y, a, b: (g * a / y if _needs(a) else None,
                                   g * b / y if _needs(b) else None), promote=True)
def hypot(a, b):
    """sqrt(a^2 + b^2) without overflow."""
    _require_float("hypot", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).hypot(a, b)


def _copysign_vjp(g, y, a, b):
    # torch: y / a, masked to 0 where a == 0; b gets a zero gradient
    ratio = where(a == 0, 0, y / where(a == 0, 1, a))
    return g * ratio if _needs(a) else None, zeros_of(g) if _needs(b) else None


@primitive(vjp=_copysign_vjp, promote=True)
def copysign(a, b):
    """|a| with the sign of b (of -0.0 too); integers give floats, like torch.copysign."""
    a, b = _floats(a, b)
    return xp_of(a if hasattr(a, "dtype") else b).copysign(a, b)


@primitive(vjp=lambda g, y, a, b: (g if _needs(a) else None,
                                   -g * div(a, b, rounding_mode="trunc") if _needs(b) else None),
           promote=True)
def fmod(a, b):
    """C's fmod: the remainder of a / b rounded towards zero, with a's sign."""
    reject_bool("fmod", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).fmod(a, b)


@primitive(vjp=lambda g, y, a, b: (g if _needs(a) else None,
                                   -g * div(a, b, rounding_mode="floor") if _needs(b) else None),
           promote=True)
def remainder(a, b):
    """Python's modulo: the remainder of a / b rounded down, with b's sign (Tensor.__mod__)."""
    reject_bool("remainder", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).remainder(a, b)


@primitive(vjp=_no_grad_rule("floor_divide"), promote=True)
def floor_divide(a, b):
    """a / b rounded down (Tensor.__floordiv__); like torch, it has no derivative."""
    reject_bool("floor_divide", a, b)
    return xp_of(a if hasattr(a, "dtype") else b).floor_divide(a, b)


@public
def true_divide(a, b):
    """torch's alias of div without rounding."""
    return div(a, b)


def _lerp_vjp(g, y, start, end, weight):
    return (g * (1 - weight) if _needs(start) else None, g * weight if _needs(end) else None,
            g * (end - start) if _needs(weight) else None)


@primitive(vjp=_lerp_vjp, promote=True)
def lerp(start, end, weight):
    """start + weight * (end - start), evaluated from the nearer end as torch.lerp does (exact at
    weight 0 and 1)."""
    _require_float("lerp", start, end, weight)
    xp = xp_of(start if hasattr(start, "dtype") else end)
    near_start = xp.abs(weight) < 0.5
    diff = end - start
    return xp.where(near_start, start + weight * diff, end - diff * (1 - weight))


@public
def addcmul(input, tensor1, tensor2, value=1):
    """input + value * tensor1 * tensor2, like torch.addcmul."""
    if all(getattr(t, "dtype", None) == backend.bool_ for t in (input, tensor1, tensor2)):
        raise TypeError("addcmul: not implemented for bool tensors (as in PyTorch)")
    return input + (tensor1 if value == 1 else value * tensor1) * tensor2


@public
def addcdiv(input, tensor1, tensor2, value=1):
    """input + value * tensor1 / tensor2, like torch.addcdiv (which refuses integer division)."""
    if all(getattr(t, "dtype", backend.float32).kind in "iub" for t in (tensor1, tensor2)):
        raise TypeError("addcdiv: integer division with addcdiv is not supported (as in "
                        "PyTorch); use addcmul(input, tensor1, 1 / tensor2) or float tensors")
    return input + (tensor1 if value == 1 else value * tensor1) / tensor2


@public
def clamp_min(x, min):
    """max(x, min), like torch.clamp_min."""
    return clamp(x, min=min)


@public
def clamp_max(x, max):
    """min(x, max), like torch.clamp_max."""
    return clamp(x, max=max)


@primitive(vjp=_no_grad_rule("heaviside"))
def heaviside(x, values):
    """0 where x < 0, values where x == 0, 1 where x > 0 (and 0 for NaN, as in torch)."""
    if getattr(values, "dtype", x.dtype) != x.dtype:
        raise TypeError(f"heaviside: not implemented for tensors with different dtypes ({x.dtype} "
                        f"and {values.dtype}), as in PyTorch; cast values first")
    xp = xp_of(x)
    return xp.where(x == 0, values, x > 0).astype(x.dtype, copy=False)


@primitive(vjp=lambda g, y, x, **kw: (where(isfinite(x), g, 0),))
def nan_to_num(x, *, nan=0.0, posinf=None, neginf=None):
    """NaN to `nan`, +-inf to `posinf`/`neginf` (default: the dtype's largest finite numbers)."""
    if x.dtype.kind not in "fc":
        return x.copy()
    return xp_of(x).nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


@public
def deg2rad(x):
    """Degrees to radians (integers give floats)."""
    return x * (math.pi / 180)


@public
def rad2deg(x):
    """Radians to degrees (integers give floats)."""
    return x * (180 / math.pi)


# ---- functions of probability and signal processing ---------------------------------------------
def _logit_vjp(g, y, x, *, eps):
    # torch: 1 / (x (1 - x)), inf at 0 and 1; outside [eps, 1 - eps] 0 with eps, NaN without
    lo, hi = (0.0, 1.0) if eps is None else (eps, 1.0 - eps)
    denominator = x * (1 - x)
    edge = denominator == 0  # g / +-0: infinity with the sign of g times that of the zero
    inner = where(edge, g * copysign(where(edge, math.inf, 0), denominator),
                  g / where(edge, 1, denominator))
    return (where(logical_or(x < lo, x > hi), math.nan if eps is None else 0, inner),)


@primitive(vjp=_logit_vjp, floating=True)
def logit(x, *, eps=None):
    """log(x / (1 - x)), with x first clamped to [eps, 1 - eps] when eps is given."""
    if eps is not None:
        x = x.clip(eps, 1.0 - eps)
    return xp_of(x).log(x / (1 - x))


def _sinc_vjp(g, y, x):
    # (cos(pi x) pi x - sin(pi x)) / (pi x^2), and 0 at x = 0 as torch sets it
    zero = x == 0
    px = where(zero, 1, x) * math.pi
    return (where(zero, 0, g * (cos(px) * px - sin(px)) / (px * where(zero, 1, x))),)


@primitive(vjp=_sinc_vjp, floating=True)
def sinc(x):
    """sin(pi x) / (pi x), 1 at 0 (the normalised sinc, as in torch and numpy)."""
    return xp_of(x).sinc(x)


# ---- special functions (backend.special: the host versions, cupyx.scipy.special on CUDA) -------
@primitive(vjp=lambda g, y, x: (g * (-2 / math.sqrt(math.pi)) * exp(-x * x),), floating=True)
def erfc(x):
    """1 - erf(x), accurate where it is tiny."""
    return special.erfc(x)


@primitive(vjp=lambda g, y, x: (g * (math.sqrt(math.pi) / 2) * exp(y * y),), floating=True,
           autocast="float32")
def erfinv(x):
    """The inverse of erf on [-1, 1] (+-inf at +-1, NaN outside)."""
    return special.erfinv(x)


@primitive(vjp=lambda g, y, x: (g * digamma(x),), floating=True)
def lgamma(x):
    """log |Gamma(x)|."""
    return special.lgamma(x)


@primitive(vjp=lambda g, y, x: (g * polygamma(1, x),), floating=True)
def digamma(x):
    """d/dx lgamma(x): -inf at 0, NaN at the negative integers, like torch.digamma."""
    return special.digamma(x)


@primitive(vjp=lambda g, y, n, x: (None, g * polygamma(n + 1, x)), floating=True)
def polygamma(n, x):
    """The n-th derivative of digamma, like torch.polygamma(n, input)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    return special.polygamma(n, x)


# ---- torch's alternative names -------------------------------------------------------------------
@public
def arctan2(a, b):
    """torch's alias of atan2."""
    return atan2(a, b)


@public
def arccos(x):
    """torch's alias of acos."""
    return acos(x)


@public
def arcsin(x):
    """torch's alias of asin."""
    return asin(x)


@public
def arctan(x):
    """torch's alias of atan."""
    return atan(x)


@public
def arccosh(x):
    """torch's alias of acosh."""
    return acosh(x)


@public
def arcsinh(x):
    """torch's alias of asinh."""
    return asinh(x)


@public
def arctanh(x):
    """torch's alias of atanh."""
    return atanh(x)
