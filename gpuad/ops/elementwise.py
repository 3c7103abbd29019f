"""Elementwise ops: forward on raw arrays, vjp on Tensors, side by side (a table of derivatives).

Binary ops broadcast like numpy; the engine reduces each gradient back to its input's shape, so no
rule here unbroadcasts. Composites at the bottom need no rule of their own.
"""
import math

import numpy

from .. import backend
from ..autograd import grad_mode
from ..backend import xp_of
from ..backend.kernels import fused
from ..tensor import Tensor
from . import primitive, public

# numpy's where branches on every element; backend.where selects bits instead (6x faster on a
# mask without a pattern). One fused unit, so a compiled replay takes its fast path too.
_select = fused("where")(backend.where)


def _needs(x):
    return getattr(x, "requires_grad", False)


# Activation rules: in a plain backward (grad mode off) one fused pass over the raw arrays (a
# CuPy kernel on the GPU); under create_graph the same formula in gpuad ops, so it stays
# differentiable.
def _raw(fn, *tensors, **kwargs):
    quiet = backend.silence_float_errors()  # as apply does for forwards
    try:
        out = fn(*(t.array for t in tensors), **kwargs)
    finally:
        backend.restore_float_errors(quiet)
    return (_wrapped(out),)


def _wrapped(out):
    """A raw result as a Tensor: numpy's 0-d arithmetic gives a scalar, kept as a 0-d array."""
    return Tensor(out if type(out) in backend.ARRAY_TYPES else numpy.asarray(out))


def _from_output(backward, rule):
    """A rule for an activation whose derivative is a function of its output y."""
    return lambda g, y, x: (rule(g, y),) if grad_mode.enabled else _raw(backward, g, y)


def zeros_of(g):
    """A constant zero gradient shaped like g (zeros, not g * 0, so NaNs in g do not leak)."""
    return Tensor(xp_of(g.array).zeros_like(g.array))


def flat(g, y, x, **attrs):
    """The rule of a piecewise-constant op (sign, floor, round, ...): PyTorch's zero gradient."""
    return (zeros_of(g),)


# ---- arithmetic -------------------------------------------------------------------------------
def _alpha_times(b, alpha):
    """alpha * b, torch's `alpha` (a float alpha with integer operands is refused, as torch
    does)."""
    if isinstance(alpha, float) and getattr(b, "dtype", None) is not None and \
            b.dtype.kind in "iub":
        raise TypeError("For integral input tensors, argument alpha must not be a floating "
                        "point number.")
    return alpha * b


@primitive(vjp=lambda g, y, a, b, alpha: (g, g if alpha == 1 else g * alpha), promote=True)
def add(a, b, *, alpha=1):
    """a + alpha * b with numpy broadcasting."""
    return a + b if alpha == 1 else a + _alpha_times(b, alpha)


@primitive(vjp=lambda g, y, a, b, alpha: (g, (-g if alpha == 1 else g * -alpha) if _needs(b)
                                          else None), promote=True)
def sub(a, b, *, alpha=1):
    """a - alpha * b with numpy broadcasting."""
    return a - b if alpha == 1 else a - _alpha_times(b, alpha)


def _by_number(g, b):
    """Whether a rule may scale g by b on the raw array, without an op: b is a Python number
    (weak, so g keeps its dtype, as the op would) and nothing records (no create_graph, no
    vmap). Scaling by a constant is the commonest rule of all."""
    return (type(b) is float or type(b) is int) and type(g) is Tensor and not grad_mode.enabled


def _mul_vjp(g, y, a, b):
    if _by_number(g, b):
        return _wrapped(g.array * b), None
    if _by_number(g, a):
        return None, _wrapped(g.array * a)
    return g * b if _needs(a) else None, g * a if _needs(b) else None


@primitive(vjp=_mul_vjp, promote=True)
def mul(a, b):
    return a * b


def _div_vjp(g, y, a, b, *, rounding_mode):
    if rounding_mode is not None:  # piecewise constant: zeros, as in torch
        return zeros_of(g) if _needs(a) else None, zeros_of(g) if _needs(b) else None
    if _by_number(g, b):
        return _wrapped(g.array / b), None
    return g / b if _needs(a) else None, -g * y / b if _needs(b) else None


@primitive(vjp=_div_vjp, promote=True)
def div(a, b, *, rounding_mode=None):
    """a / b like torch.div: true division (integers give a float result), or rounded towards
    zero (rounding_mode='trunc') or down ('floor'), which keep integer dtypes."""
    if rounding_mode is None:
        out, dtype = a / b, _float_of(a, b)
        return out if out.dtype.kind != "f" or out.dtype == dtype else out.astype(dtype)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: expected rounding_mode to be one of None, 'trunc', or 'floor' "
                         f"but found {rounding_mode!r}")
    reject_bool("div", a, b)
    xp = xp_of(a if hasattr(a, "dtype") else b)
    out = xp.floor_divide(a, b)
    if rounding_mode == "floor":
        return out
    if out.dtype.kind in "fc":
        return xp.trunc(a / b)  # torch's definition (floor_divide rounds a / b differently)
    # integers, exactly: floor and trunc differ where a / b is inexact and the signs differ
    return out + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(out.dtype)


def reject_bool(name, a, b):
    """Integer arithmetic torch refuses for two bools (fmod, remainder, rounded division, pow)."""
    if all(type(x) is bool or getattr(x, "dtype", None) == backend.bool_ for x in (a, b)):
        raise TypeError(f"{name}: not implemented for bool tensors (as in PyTorch); convert with "
                        f".long() or .float() first")


def _float_of(a, b):
    dtypes = [x.dtype for x in (a, b) if hasattr(x, "dtype") and x.dtype.kind == "f"]
    return dtypes[0] if dtypes else backend.DEFAULT_FLOAT


@primitive(vjp=lambda g, y, x: (-g,))
def neg(x):
    return -x


# PyTorch's rules at zero: no gradient to the base where the exponent is 0 (even at a = 0, where
# b a^(b-1) is 0 * inf), none to the exponent where a = 0 and b >= 0 (the limit from a > 0); a
# negative base gives the exponent a NaN gradient (ln a), as in torch.
def _pow_vjp(g, y, a, b):
    return (_pow_base_grad(g, a, b) if _needs(a) else None,
            _pow_exponent_grad(g, y, a, b) if _needs(b) else None)


def _pow_base_grad(g, a, b):
    if not isinstance(b, Tensor):
        return zeros_of(g) if b == 0 else g * b * a ** (b - 1)
    return where(b == 0, 0, g * b * a ** (b - 1))


def _pow_exponent_grad(g, y, a, b):
    if not isinstance(a, Tensor):  # a Python number base: 2.0 ** x
        if a == 0:
            return where(b >= 0, 0, g * -math.inf)  # 0 ** b = inf there, times ln 0 = -inf
        return g * y * (math.log(a) if a > 0 else math.nan)
    flat_zero = (a == 0) & (b >= 0)
    return where(flat_zero, 0, g * y * log(where(flat_zero, 1, a)))


@primitive(vjp=_pow_vjp, promote=True, autocast="float32")
def pow(a, b):
    """a ** b for tensor or scalar exponents and bases."""
    if type(b) is bool and getattr(a, "dtype", None) == backend.bool_:
        return a | (not b)  # torch keeps a bool tensor ** True/False bool (x ** False is True)
    reject_bool("pow", a, b)
    return a ** b


# ---- exponentials, roots, trigonometry --------------------------------------------------------
# d exp = exp: reuse the output
@primitive(vjp=lambda g, y, x: (g * y,), floating=True, autocast="float32")
def exp(x):
    return xp_of(x).exp(x)


@primitive(vjp=lambda g, y, x: (g / x,), floating=True, autocast="float32")
def log(x):
    return xp_of(x).log(x)


@primitive(vjp=lambda g, y, x: (g / (x + 1),), floating=True, autocast="float32")
def log1p(x):
    return xp_of(x).log1p(x)


@primitive(vjp=lambda g, y, x: (g * (y + 1),), floating=True, autocast="float32")
def expm1(x):
    return xp_of(x).expm1(x)


@primitive(vjp=lambda g, y, x: (g / (2 * y),), floating=True)
def sqrt(x):
    return xp_of(x).sqrt(x)


@primitive(vjp=lambda g, y, x: (g * sign(x),))  # 0 at 0, like torch.abs
def abs(x):
    return xp_of(x).abs(x)


@primitive(vjp=lambda g, y, x: (g * cos(x),), floating=True)
def sin(x):
    return xp_of(x).sin(x)


@primitive(vjp=lambda g, y, x: (-g * sin(x),), floating=True)
def cos(x):
    return xp_of(x).cos(x)


@primitive(vjp=lambda g, y, x: (g * (1 + y * y),), floating=True, autocast="float32")
def tan(x):
    return xp_of(x).tan(x)


# Activation derivatives that are functions of the output y, written once for Tensors (the rule
# under create_graph) and raw arrays (the CPU path of the fused kernel, one pass on the GPU).
def _tanh_grad(g, y):
    return g * (1 - y * y)


def _sigmoid_grad(g, y):
    return g * y * (1 - y)


def _relu_grad(g, y):
    # torch's threshold_backward: g stops where y <= 0 and passes everywhere else, so a NaN input
    # gets g and a NaN g stops at the kink (a mask product would give 0 and NaN instead)
    if isinstance(y, Tensor):
        return where(y <= 0, 0, g)
    bits = backend.FLOAT_BITS.get(g.dtype)
    if bits is None or g.ndim == 0 or g.shape != y.shape or g.dtype != y.dtype:
        return xp_of(y).where(y <= 0, 0, g)
    # The same numbers as where(), as bits: g's bits times 1 where it passes, times 0 (+0.0) where
    # it stops. numpy's where with a scalar takes a slow branchy loop (100 us on a 128x256 float32
    # batch against 15 here). A ReLU output is >= 0, -0 or NaN, so y != 0 is the same test as
    # not y <= 0, written straight into the integer mask (one pass fewer than casting a bool).
    xp = xp_of(y)
    mask = xp.empty_like(y, dtype=bits)  # y's memory order (a conv's output may be transposed)
    xp.not_equal(y, 0, out=mask)
    xp.multiply(mask, backend.in_order_of(g, y).view(bits), out=mask)
    return mask.view(g.dtype)


_tanh_backward = fused("tanh_backward")(_tanh_grad)
_sigmoid_backward = fused("sigmoid_backward")(_sigmoid_grad)
_relu_backward = fused("relu_backward")(_relu_grad)


@primitive(vjp=_from_output(_tanh_backward, _tanh_grad), floating=True)
def tanh(x):
    return xp_of(x).tanh(x)


@fused("sigmoid", elementwise=True, blocked=True)
def _sigmoid_array(x):
    """1 / (1 + exp(-x)), computed without overflow: with z = exp(-|x|), 1 / (1 + z) where x >= 0
    and z / (1 + z) below. One division of a numerator picked on the bits by x's sign (1.0 or z)
    gives the same bits as both divisions and a select, NaN of either sign and -0.0 included, in
    9 passes instead of 12 (a million float32s 2.2 -> 1.2-1.5 ms)."""
    xp = xp_of(x)
    z = xp.abs(x, out=xp.empty_like(x))  # an array even for a 0-d x
    xp.exp(xp.negative(z, out=z), out=z)  # exp(-|x|) never overflows
    one_plus = xp.add(z, 1, out=xp.empty_like(z))  # (z + 1 is a scalar for a 0-d z)
    bits = backend.FLOAT_BITS.get(z.dtype)
    if bits is None:
        positive = xp.divide(1, one_plus)
        negative = xp.divide(z, one_plus, out=z)
        return backend.where(x >= 0, positive, negative).astype(x.dtype, copy=False)
    one = xp.asarray(1, dtype=z.dtype).view(bits)
    numerator = xp.bitwise_xor(z.view(bits), one, out=z.view(bits))
    numerator &= backend.sign_mask(x)
    numerator ^= one  # z where x's sign bit is set, else 1.0
    return xp.divide(numerator.view(z.dtype), one_plus, out=one_plus)


# kept primitive for stability, like tinygrad; computed without overflow
@primitive(vjp=_from_output(_sigmoid_backward, _sigmoid_grad), floating=True)
def sigmoid(x):
    return _sigmoid_array(x)


@primitive(vjp=lambda g, y, x: (g * (2 / math.sqrt(math.pi)) * exp(-x * x),), floating=True)
def erf(x):
    return backend.special.erf(x)


def _softplus_vjp(g, y, x, *, beta, threshold):
    # d softplus = sigmoid(beta x), and 1 above the threshold. At beta x == threshold torch's
    # second derivative is the linear side's 0: there the slope is a constant.
    bx = x * beta
    at = 1 / (1 + math.exp(-threshold)) if math.isfinite(threshold) else 1.0
    return (where(bx > threshold, g, g * where(bx >= threshold, at, sigmoid(bx))),)


@primitive(vjp=_softplus_vjp, floating=True, autocast="float32")
def softplus(x, *, beta=1.0, threshold=20.0):
    """log(1 + exp(beta*x)) / beta, linear above `threshold` like torch.nn.functional.softplus."""
    xp = xp_of(x)
    bx = x * beta
    stable = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta
    return _select(bx > threshold, x, stable).astype(x.dtype, copy=False)


# leaky_relu: one op with its rule, as torch's. Composed of where and mul it took 12.8 ms forward
# and backward on (2048, 512) float32, 2.7 ms with backend.where's select; as one op 1.9 ms.
@fused("leaky_relu", elementwise=True, blocked=True)
def _leaky_relu_array(x, *, negative_slope):
    if 0 < negative_slope <= 1:
        # x * slope is below x exactly where x > 0 and above it below 0 (inf * slope stays inf),
        # so the larger is where's pick, NaN and both zeros' signs included: 0.8 -> 0.2 ms on a
        # million float32s
        xp = xp_of(x)
        scaled = xp.multiply(x, negative_slope, out=xp.empty_like(x))  # an array even if 0-d
        return xp.maximum(x, scaled, out=scaled)
    return backend.where(x > 0, x, x * negative_slope)


@fused("leaky_relu_backward", elementwise=True, blocked=True)
def _leaky_relu_backward_array(g, x, *, negative_slope):
    return backend.where(x > 0, g, g * negative_slope)  # torch's: the slope's side at 0


def _leaky_relu_vjp(g, y, x, *, negative_slope):
    if not grad_mode.enabled:
        return _raw(_leaky_relu_backward_array, g, x, negative_slope=negative_slope)
    return (where(x > 0, g, g * negative_slope),)


@primitive(vjp=_leaky_relu_vjp, floating=True)
def _leaky_relu(x, *, negative_slope):
    """x where x > 0, else x * negative_slope (leaky_relu's primitive)."""
    return _leaky_relu_array(x, negative_slope=negative_slope)


# The elu family (elu, selu, celu): scale x above 0, scale alpha (exp(input_scale x) - 1) at and
# below it, as one op: forward and backward on (2048, 512) float32 4.3 ms, against 39 composed of
# three wheres, expm1 and products (7.9 with backend.where's select). torch's derivatives: the
# negative side's at 0, c = scale alpha input_scale, and 0 there for the second; NaN takes the
# identity's side.
@fused("elu", elementwise=True, blocked=True)
def _elu_array(x, *, alpha, scale, input_scale):
    xp = xp_of(x)
    below = xp.minimum(x, 0, out=xp.empty_like(x))  # no overflow in the side left unused
    below *= input_scale
    below = xp.expm1(below, out=below)
    below *= scale * alpha
    return backend.where(x <= 0, below, x * scale if scale != 1 else x)


@fused("elu_backward", elementwise=True, blocked=True)
def _elu_backward_array(g, x, *, alpha, scale, input_scale):
    xp = xp_of(x)
    slope = xp.minimum(x, 0, out=xp.empty_like(x))  # an array even for a 0-d x
    slope *= input_scale
    slope = xp.exp(slope, out=slope)
    slope *= scale * alpha * input_scale
    return g * backend.where(x <= 0, slope, scale)


def _elu_vjp(g, y, x, *, alpha, scale, input_scale):
    if not grad_mode.enabled:
        return _raw(_elu_backward_array, g, x, alpha=alpha, scale=scale, input_scale=input_scale)
    # at 0, exp's argument is the constant 0.0: the slope c, and no second derivative
    below = (scale * alpha * input_scale) * exp(where(x < 0, x, 0.0) * input_scale)
    return (g * where(x <= 0, below, scale),)


@primitive(vjp=_elu_vjp, floating=True)
def _elu(x, *, alpha, scale, input_scale):
    """scale x for x > 0, else scale alpha (exp(input_scale x) - 1): the elu family's primitive."""
    return _elu_array(x, alpha=alpha, scale=scale, input_scale=input_scale)


# gelu: PyTorch's two forms. erf is CUDA's in kernels and backend.special.erf's elsewhere.
_SQRT1_2, _INV_SQRT_2PI = 1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)
_K, _C = math.sqrt(2 / math.pi), 0.044715


def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@fused("gelu", elementwise=True, blocked=True)
def _gelu_array(x, *, approximate="none"):
    _check_approximate(approximate)
    if approximate == "tanh":
        half = 0.5 * x
        half *= _tanh_inner(x) + 1
        return half
    half = 0.5 * x  # 0.5 * x * (1 + erf(x / sqrt 2)), step for step in place
    half *= _erf_plus_one(x)
    return half


def _erf_plus_one(x):
    """1 + erf(x / sqrt 2) (twice the normal cdf), in one fresh array."""
    e = backend.special.erf(x * _SQRT1_2)
    e += 1
    return e


# The tanh form's arithmetic in place, each step the one `0.5 * x * (1 + tanh(k (x + c x^3)))`
# and its derivative take, so the bits are theirs: two fresh arrays instead of nine forward and
# three instead of seventeen backward (a GPT's (2048, 512) activations: 1.5 -> 1.3 ms forward,
# 3.1 -> 2.4 ms backward).
def _tanh_inner(x):
    """tanh(_K * (x + _C * x * x * x)), computed in one fresh array."""
    xp = xp_of(x)
    t = xp.multiply(x, _C, out=xp.empty_like(x))  # an array even for a 0-d x
    t *= x
    t *= x
    t += x
    t *= _K
    return xp.tanh(t, out=t)


@fused("gelu_backward", elementwise=True, blocked=True)
def _gelu_backward_array(g, x, *, approximate="none"):
    _check_approximate(approximate)
    if approximate == "tanh":  # g * (0.5 (1 + t) + 0.5 x (1 - t t) (_K (1 + 3 _C x x)))
        xp = xp_of(x)
        t = _tanh_inner(x)
        total = t + 1
        total *= 0.5
        part = 0.5 * x
        xp.multiply(t, t, out=t)
        xp.subtract(1, t, out=t)
        part *= t
        xp.multiply(x, 3 * _C, out=t)
        t *= x
        t += 1
        t *= _K
        part *= t
        total += part
        return g * total
    # g * (cdf + x * (exp(-0.5 * x * x) * _INV_SQRT_2PI)), step for step in place
    xp = xp_of(x)
    total = _erf_plus_one(x)
    total *= 0.5
    density = xp.multiply(x, -0.5, out=xp.empty_like(x))  # an array even for a 0-d x
    density *= x
    xp.exp(density, out=density)
    density *= _INV_SQRT_2PI
    density *= x
    total += density
    total *= g
    return total


def _gelu_vjp(g, y, x, *, approximate):
    if not grad_mode.enabled:
        return _raw(_gelu_backward_array, g, x, approximate=approximate)
    if approximate == "tanh":  # y = x (1 + t) / 2 with t = tanh(k (x + c x^3))
        t = tanh(_K * (x + _C * x * x * x))
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (_K * (1 + 3 * _C * x * x))),)
    # d (x Phi(x)) = Phi(x) + x phi(x)
    return (g * (0.5 * (1 + erf(x * _SQRT1_2)) + x * (exp(-0.5 * x * x) * _INV_SQRT_2PI)),)


@primitive(vjp=_gelu_vjp, floating=True)
def gelu(x, *, approximate="none"):
    """x * Phi(x) with the exact erf form; approximate='tanh' uses PyTorch's tanh formula."""
    return _gelu_array(x, approximate=approximate)


# silu's references run their formulas' steps in place (the same order, so the same bits):
# forward and backward 13.4 -> 4 ms on (2048, 512) float32 with the sigmoid above
@fused("silu", elementwise=True, blocked=True)
def _silu_array(x):
    s = _sigmoid_array(x)  # x * s
    return xp_of(x).multiply(x, s, out=s)


@fused("silu_backward", elementwise=True, blocked=True)
def _silu_backward_array(g, x):
    xp = xp_of(x)
    s = _sigmoid_array(x)  # g * (s * (1 + x * (1 - s)))
    t = xp.subtract(1, s, out=xp.empty_like(s))  # an array even for a 0-d x
    xp.multiply(x, t, out=t)
    xp.add(1, t, out=t)
    xp.multiply(s, t, out=t)
    return g * t


def _silu_vjp(g, y, x):
    if not grad_mode.enabled:
        return _raw(_silu_backward_array, g, x)
    s = sigmoid(x)
    return (g * (s * (1 + x * (1 - s))),)


@primitive(vjp=_silu_vjp, floating=True)
def silu(x):
    """x * sigmoid(x), like torch.nn.functional.silu."""
    return _silu_array(x)


# ---- piecewise ----------------------------------------------------------------------------------
# max(x, 0), NaN kept, as torch's relu: backend.relu, recorded whole by gpuad.compile, so that a
# replay takes its numpy fast path too
_relu_forward = fused("relu")(backend.relu)


@primitive(vjp=_from_output(_relu_backward, _relu_grad))
def relu(x):
    return _relu_forward(x)


def _clamp_vjp(g, y, x, low, high):
    # torch's clamp_backward_min_max: x's gradient passes inside [low, high], bounds included; a
    # bound gets it where it clamped, and where low > high all of it goes to high (which wins)
    inside = logical_and(x >= low, x <= high) if low is not None and high is not None else (
        x >= low if low is not None else x <= high)
    g_low = g_high = None
    if _needs(low):
        below = x < low
        g_low = where(below if high is None else logical_and(below, low < high), g, 0)
    if _needs(high):
        above = x > high
        g_high = where(above if low is None else logical_or(above, high < low), g, 0)
    return where(inside, g, 0), g_low, g_high


@primitive(vjp=_clamp_vjp, promote=True)
def _clamp(x, low, high):
    """min(max(x, low), high) with tensor or number bounds (one may be None)."""
    return xp_of(x).clip(x, low, high)


@public
def clamp(x, min=None, max=None):
    """Clip to [min, max] (numbers or tensors that broadcast; either may be None), like
    torch.clamp: the gradient passes where x is inside, bounds included."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return _clamp(x, min, max)


# torch's rules: g, halved at ties, cleared where the other input wins; so both inputs of a NaN
# result get g, and a NaN g stops where the other input wins
@primitive(vjp=lambda g, y, a, b: (where(a < b, 0, where(a == b, g / 2, g)),
                                   where(b < a, 0, where(a == b, g / 2, g))), promote=True)
def maximum(a, b):
    """Elementwise max; ties share the gradient evenly, like torch.maximum."""
    return xp_of(a if hasattr(a, "dtype") else b).maximum(a, b)


@primitive(vjp=lambda g, y, a, b: (where(a > b, 0, where(a == b, g / 2, g)),
                                   where(b > a, 0, where(a == b, g / 2, g))), promote=True)
def minimum(a, b):
    return xp_of(a if hasattr(a, "dtype") else b).minimum(a, b)


def _where_forward(cond, a, b):
    if cond.dtype != bool:
        cond = cond.astype(bool)
    out = _select(cond, a, b)
    dtype = _promoted(a, b)
    return out if dtype is None or out.dtype == dtype else out.astype(dtype)


def _promoted(a, b):
    from . import promoted_dtype
    return promoted_dtype([a, b]) if hasattr(a, "dtype") or hasattr(b, "dtype") else None


@primitive(vjp=lambda g, y, cond, a, b: (None, where(cond, g, 0), where(cond, 0, g)))
def where(cond, a, b):
    """a where cond is true, else b (broadcasting all three), like torch.where."""
    return _where_forward(cond, a, b)


@primitive(vjp=flat)  # differentiable with a zero gradient, as in torch
def sign(x):
    """-1, 0 or 1; 0 for NaN and bool stays bool, like torch.sign."""
    if x.dtype.kind == "b":
        return x.copy()
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


# ---- no gradient: comparisons, logic, tests ------------------------------------------------------
@primitive(promote=True)
def eq(a, b):
    return a == b


@primitive(promote=True)
def ne(a, b):
    return a != b


@primitive(promote=True)
def lt(a, b):
    return a < b


@primitive(promote=True)
def le(a, b):
    return a <= b


@primitive(promote=True)
def gt(a, b):
    return a > b


@primitive(promote=True)
def ge(a, b):
    return a >= b


@primitive()
def logical_and(a, b):
    return xp_of(a).logical_and(a, b)


@primitive()
def logical_or(a, b):
    return xp_of(a).logical_or(a, b)


@primitive()
def logical_not(x):
    return xp_of(x).logical_not(x)


@primitive()
def isnan(x):
    return xp_of(x).isnan(x)


@primitive()
def isinf(x):
    return xp_of(x).isinf(x)


@primitive()
def isfinite(x):
    return xp_of(x).isfinite(x)


# ---- dtype, device, copies ----------------------------------------------------------------------
@primitive(vjp=lambda g, y, x, *, dtype: (cast(g, dtype=x.dtype),))
def cast(x, *, dtype):
    """x converted to `dtype` (Tensor.to(dtype), .float(), .double(), ...)."""
    return x.astype(dtype)


@primitive(vjp=lambda g, y, x, *, device: (to_device(g, device=x.device),))
def to_device(x, *, device):
    """x copied to `device`; the gradient flows back to x's device (Tensor.to(device))."""
    return backend.to_device(x, device)


@primitive(vjp=lambda g, y, x: (g,))
def clone(x):
    return x.copy()


# ---- composites ---------------------------------------------------------------------------------
@public
def rsqrt(x):
    return 1 / sqrt(x)


@public
def square(x):
    return x * x


@public
def reciprocal(x):
    return 1 / x


@public
def leaky_relu(x, negative_slope=0.01):
    return _leaky_relu(x, negative_slope=negative_slope)


@public
def elu(x, alpha=1.0):
    return _elu(x, alpha=alpha, scale=1.0, input_scale=1.0)  # NaN takes the identity, as in torch




@public
def masked_fill(x, mask, value):
    """x with `value` where the boolean mask is true (mask broadcasts to x's shape), like torch."""
    shape, mask_shape = tuple(x.shape), tuple(numpy.shape(mask))
    if mask_shape != shape and _broadcast(mask_shape, shape) != shape:
        raise ValueError(f"masked_fill: mask of shape {mask_shape} does not broadcast to the "
                         f"shape {shape} of the tensor it fills")
    return where(mask, value, x)


def _broadcast(*shapes):
    try:
        return numpy.broadcast_shapes(*shapes)
    except ValueError:
        return None


@public
def clip(x, min=None, max=None):
    """numpy's name for clamp."""
    return clamp(x, min=min, max=max)
