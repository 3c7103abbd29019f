"""Rows of the op table for gpuad/ops/pointwise.py and gpuad/ops/comparison.py (merged into
op_cases.CASES). Values, dtypes, NaN/Inf and gradients at special points against PyTorch:
test_torch_pointwise.py."""
import math

import numpy as np
from op_cases import (
    AWAY_FROM_ZERO,
    BINARY_SHAPES,
    DISTINCT,
    POSITIVE,
    REAL,
    UNARY_SHAPES,
    UNIT,
    Case,
)

import gpuad

TERNARY_SHAPES = [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)), ((), (2, 3), (1, 3))]
_lgamma = np.vectorize(math.lgamma, otypes=[float])
_erfc = np.vectorize(math.erfc, otypes=[float])


def _erfinv_ref(y):
    """Bisection on math.erf: slow and sure, for the table's few values."""
    lo, hi = np.full(np.shape(y), -6.0), np.full(np.shape(y), 6.0)
    erf = np.vectorize(math.erf, otypes=[float])
    for _ in range(80):
        mid = (lo + hi) / 2
        below = erf(mid) < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def ABOVE_ONE(rng, shape):
    return rng.uniform(1.2, 3, shape)


def GAMMA(rng, shape):  # both sides of zero, away from the poles at 0, -1, -2
    negative = -rng.integers(0, 3, shape) - rng.uniform(0.2, 0.8, shape)
    return np.where(rng.random(shape) < 0.6, rng.uniform(0.2, 5, shape), negative)


def _integers(low, high):
    return lambda rng, shapes: [rng.integers(low, high, s) for s in shapes]


def _logit_inputs(rng, shapes):  # away from the eps = 0.2 bounds, where the gradient jumps
    x = rng.uniform(0.05, 0.95, shapes[0])
    return [np.where(np.abs(np.abs(x - 0.5) - 0.3) < 0.03, x * 0.5 + 0.25, x)]


def _logit_ref(x, eps=None):
    z = x if eps is None else np.clip(x, eps, 1 - eps)
    return np.log(z / (1 - z))


def _clamp_inputs(rng, shapes):  # bounds around -0.5 and 0.5 (some crossed), x away from them
    x, low, high = (REAL(rng, s) for s in shapes)
    low, high = -0.5 + 0.3 * low, 0.5 + 0.3 * high
    low.flat[0] = 1.5  # low > high here: high wins, and gets the gradient
    for bound in (low, high, low):  # x away from both bounds (a nudge off one may near the other)
        x = np.where(np.abs(x - bound) < 0.05, x + 0.11, x)
    return [x, low, high]


def _rounding_ref(np_fn):
    return lambda a, b, rounding_mode: (np_fn(a / b) if rounding_mode == "trunc"
                                        else np.floor_divide(a, b))


def _isclose_inputs(rng, shapes):  # equal, within the default tolerances, and not
    return [rng.choice([1.0, 2.0, 3.0], shapes[0]),
            rng.choice([1.0, 1.0 + 1e-9, 1.05, 2.0, 3.0 + 1e-3], shapes[1])]


def _as_tensor(fn):  # allclose and equal return Python bools; the table wants tensors
    return lambda a, b, **k: gpuad.tensor(fn(a, b, **k), device=a.device)


def _bools(rng, shapes):
    return [rng.random(s) > 0.5 for s in shapes]


POINTWISE_CASES = [
    # ---- trigonometry ----
    Case("acos", gpuad.acos, np.arccos, UNARY_SHAPES, domain=UNIT),
    Case("asin", gpuad.asin, np.arcsin, UNARY_SHAPES, domain=UNIT),
    Case("atan", gpuad.atan, np.arctan, UNARY_SHAPES),
    Case("sinh", gpuad.sinh, np.sinh, UNARY_SHAPES),
    Case("cosh", gpuad.cosh, np.cosh, UNARY_SHAPES),
    Case("asinh", gpuad.asinh, np.arcsinh, UNARY_SHAPES),
    Case("acosh", gpuad.acosh, np.arccosh, UNARY_SHAPES, domain=ABOVE_ONE),
    Case("atanh", gpuad.atanh, np.arctanh, UNARY_SHAPES, domain=UNIT),
    Case("arccos", gpuad.arccos, np.arccos, UNARY_SHAPES[:1], domain=UNIT),
    Case("arcsin", gpuad.arcsin, np.arcsin, UNARY_SHAPES[:1], domain=UNIT),
    Case("arctan", gpuad.arctan, np.arctan, UNARY_SHAPES[:1]),
    Case("arcsinh", gpuad.arcsinh, np.arcsinh, UNARY_SHAPES[:1]),
    Case("arccosh", gpuad.arccosh, np.arccosh, UNARY_SHAPES[:1], domain=ABOVE_ONE),
    Case("arctanh", gpuad.arctanh, np.arctanh, UNARY_SHAPES[:1], domain=UNIT),
    Case("atan2", gpuad.atan2, np.arctan2, BINARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("arctan2", gpuad.arctan2, np.arctan2, BINARY_SHAPES[:2], domain=AWAY_FROM_ZERO),
    Case("sinc", gpuad.sinc, np.sinc, UNARY_SHAPES),
    Case("deg2rad", gpuad.deg2rad, np.deg2rad, UNARY_SHAPES),
    Case("rad2deg", gpuad.rad2deg, np.rad2deg, UNARY_SHAPES),
    # ---- rounding: zero gradients (random inputs are never within eps of a jump) ----
    Case("floor", gpuad.floor, np.floor, UNARY_SHAPES),
    Case("ceil", gpuad.ceil, np.ceil, UNARY_SHAPES),
    Case("trunc", gpuad.trunc, np.trunc, UNARY_SHAPES),
    Case("fix", gpuad.fix, np.trunc, UNARY_SHAPES[:1]),
    Case("round", gpuad.round, np.round, UNARY_SHAPES,
         kwargs=[{}, {"decimals": 1}, {"decimals": -1}],
         domain=lambda rng, s: rng.uniform(-30, 30, s)),
    Case("frac", gpuad.frac, lambda x: x - np.trunc(x), UNARY_SHAPES),
    Case("sgn", gpuad.sgn, np.sign, UNARY_SHAPES, domain=AWAY_FROM_ZERO),
    # ---- exponentials, logarithms ----
    Case("exp2", gpuad.exp2, np.exp2, UNARY_SHAPES),
    Case("log2", gpuad.log2, np.log2, UNARY_SHAPES, domain=POSITIVE),
    Case("log10", gpuad.log10, np.log10, UNARY_SHAPES, domain=POSITIVE),
    Case("logaddexp", gpuad.logaddexp, np.logaddexp, BINARY_SHAPES),
    Case("logaddexp2", gpuad.logaddexp2, np.logaddexp2, BINARY_SHAPES),
    Case("xlogy", gpuad.xlogy, lambda a, b: np.where(a == 0, 0, a * np.log(b)), BINARY_SHAPES,
         make=lambda rng, shapes: [REAL(rng, shapes[0]), POSITIVE(rng, shapes[1])]),
    Case("logit", gpuad.logit, _logit_ref, UNARY_SHAPES, kwargs=[{}, {"eps": 0.2}],
         make=_logit_inputs),
    # ---- binary arithmetic ----
    Case("hypot", gpuad.hypot, np.hypot, BINARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("copysign", gpuad.copysign, np.copysign, BINARY_SHAPES, domain=AWAY_FROM_ZERO),
    Case("fmod", gpuad.fmod, np.fmod, BINARY_SHAPES,
         make=lambda rng, shapes: [rng.uniform(-5, 5, shapes[0]), AWAY_FROM_ZERO(rng, shapes[1])]),
    Case("remainder", gpuad.remainder, np.remainder, BINARY_SHAPES,
         make=lambda rng, shapes: [rng.uniform(-5, 5, shapes[0]), AWAY_FROM_ZERO(rng, shapes[1])]),
    Case("floor_divide", gpuad.floor_divide, np.floor_divide, BINARY_SHAPES, grad=False,
         make=lambda rng, shapes: [rng.uniform(-5, 5, shapes[0]), AWAY_FROM_ZERO(rng, shapes[1])]),
    Case("div", gpuad.div, _rounding_ref(np.trunc), BINARY_SHAPES[:4],
         kwargs=[{"rounding_mode": "trunc"}, {"rounding_mode": "floor"}],
         make=lambda rng, shapes: [rng.uniform(-5, 5, shapes[0]), AWAY_FROM_ZERO(rng, shapes[1])]),
    Case("true_divide", gpuad.true_divide, np.divide, BINARY_SHAPES[:4], domain=AWAY_FROM_ZERO),
    Case("lerp", gpuad.lerp, lambda s, e, w: s + w * (e - s), TERNARY_SHAPES,
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   rng.uniform(-0.5, 1.5, shapes[2])]),
    Case("lerp", lambda s, e, weight: gpuad.lerp(s, e, weight),
         lambda s, e, weight: s + weight * (e - s), BINARY_SHAPES[:3],
         kwargs=[{"weight": 0.25}, {"weight": 0.75}]),
    Case("addcmul", gpuad.addcmul, lambda x, a, b, value=1: x + value * a * b, TERNARY_SHAPES,
         kwargs=[{}, {"value": -0.5}]),
    Case("addcdiv", gpuad.addcdiv, lambda x, a, b, value=1: x + value * a / b, TERNARY_SHAPES,
         kwargs=[{}, {"value": -0.5}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   AWAY_FROM_ZERO(rng, shapes[2])]),
    Case("_clamp", gpuad.clamp, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
         [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)), ((2, 3), (), (1, 3))],
         make=_clamp_inputs),
    Case("clamp_min", gpuad.clamp_min, np.maximum, BINARY_SHAPES[:4], domain=DISTINCT),
    Case("clamp_min", lambda x, min: gpuad.clamp_min(x, min), lambda x, min: np.maximum(x, min),
         UNARY_SHAPES[:1], kwargs=[{"min": 0.1}], domain=AWAY_FROM_ZERO),
    Case("clamp_max", gpuad.clamp_max, np.minimum, BINARY_SHAPES[:4], domain=DISTINCT),
    Case("heaviside", gpuad.heaviside, np.heaviside, BINARY_SHAPES[:4], grad=False,
         make=lambda rng, shapes: [rng.integers(-1, 2, shapes[0]) * 1.5, REAL(rng, shapes[1])]),
    Case("nan_to_num", gpuad.nan_to_num, np.nan_to_num, UNARY_SHAPES),
    Case("nan_to_num", gpuad.nan_to_num, np.nan_to_num, [((5,),)], grad=False,
         kwargs=[{}, {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}],
         make=lambda rng, shapes: [np.array([1.0, np.nan, np.inf, -np.inf, -2.0])]),
    # ---- special functions ----
    Case("erfc", gpuad.erfc, _erfc, UNARY_SHAPES,
         make=lambda rng, shapes: [rng.uniform(-5, 5, s) for s in shapes]),
    Case("erfinv", gpuad.erfinv, _erfinv_ref, UNARY_SHAPES[:2], domain=UNIT),
    Case("lgamma", gpuad.lgamma, _lgamma, UNARY_SHAPES, domain=GAMMA),
    Case("digamma", gpuad.digamma, None, UNARY_SHAPES, domain=GAMMA),  # values: the torch tests
    Case("polygamma", lambda x, n: gpuad.polygamma(n, x), None, UNARY_SHAPES[:2],
         kwargs=[{"n": 1}, {"n": 2}], domain=GAMMA),
    # ---- comparisons, NaN-aware extrema ----
    Case("fmax", gpuad.fmax, np.fmax, BINARY_SHAPES, domain=DISTINCT),
    Case("fmin", gpuad.fmin, np.fmin, BINARY_SHAPES, domain=DISTINCT),
    Case("isclose", gpuad.isclose, np.isclose, BINARY_SHAPES[:4], grad=False,
         kwargs=[{}, {"rtol": 0.1, "atol": 0.0}], make=_isclose_inputs),
    Case("allclose", _as_tensor(gpuad.allclose), lambda a, b, **k: np.array(np.allclose(a, b, **k)),
         [((2, 3), (2, 3)), ((2, 3), (3,))], grad=False, kwargs=[{}, {"rtol": 0.6}],
         make=_isclose_inputs),
    Case("equal", _as_tensor(gpuad.equal),
         lambda a, b: np.array(a.shape == b.shape and (a == b).all()),
         [((2, 3), (2, 3)), ((2, 3), (3,))], grad=False,
         make=lambda rng, shapes: [np.ones(s) for s in shapes]),
    Case("greater", gpuad.greater, np.greater, BINARY_SHAPES[:2], grad=False),
    Case("greater_equal", gpuad.greater_equal, np.greater_equal, BINARY_SHAPES[:2], grad=False),
    Case("less", gpuad.less, np.less, BINARY_SHAPES[:2], grad=False),
    Case("less_equal", gpuad.less_equal, np.less_equal, BINARY_SHAPES[:2], grad=False),
    Case("not_equal", gpuad.not_equal, np.not_equal, BINARY_SHAPES[:2], grad=False,
         make=lambda rng, shapes: [rng.integers(0, 2, s).astype(float) for s in shapes]),
    # ---- logic and bits (dtypes against torch: test_torch_pointwise.py) ----
    Case("logical_xor", gpuad.logical_xor, np.logical_xor, BINARY_SHAPES[:4], grad=False,
         make=_bools),
    Case("bitwise_and", gpuad.bitwise_and, np.bitwise_and, BINARY_SHAPES, grad=False,
         make=_integers(-9, 9)),
    Case("bitwise_and", gpuad.bitwise_and, np.bitwise_and, BINARY_SHAPES[:2], grad=False,
         make=_bools),
    Case("bitwise_or", gpuad.bitwise_or, np.bitwise_or, BINARY_SHAPES, grad=False,
         make=_integers(-9, 9)),
    Case("bitwise_xor", gpuad.bitwise_xor, np.bitwise_xor, BINARY_SHAPES, grad=False,
         make=_integers(-9, 9)),
    Case("bitwise_not", gpuad.bitwise_not, np.invert, UNARY_SHAPES, grad=False,
         make=_integers(-9, 9)),
    Case("bitwise_not", gpuad.bitwise_not, np.invert, UNARY_SHAPES[:1], grad=False, make=_bools),
    Case("bitwise_left_shift", gpuad.bitwise_left_shift, np.left_shift, BINARY_SHAPES,
         grad=False, make=lambda rng, shapes: [rng.integers(-50, 50, shapes[0]),
                                               rng.integers(-2, 70, shapes[1])]),
    Case("bitwise_right_shift", gpuad.bitwise_right_shift, np.right_shift, BINARY_SHAPES,
         grad=False, make=lambda rng, shapes: [rng.integers(-50, 50, shapes[0]),
                                               rng.integers(-2, 70, shapes[1])]),
]
