"""Activations: the functional forms (nn.functional re-exports them) and their Modules, with
torch.nn's names, defaults, reprs and gradients, including at the kinks torch defines.

Everything is a composite of gpuad ops, so it runs on every backend and differentiates to any
order; piecewise functions are chains of `where`, whose gradient is the chosen branch's, so each
boundary goes to the side torch's backward picks (hardtanh's gradient is 0 at its bounds, elu's is
alpha at 0, ...). Stability comes from the primitives underneath: logsigmoid is -softplus(-x) on
the overflow-free softplus primitive.

`inplace=True`, as in torch, writes the result into the input, but only where no gradient can be
lost: when the input does not require grad or grad mode is off. With autograd on it returns a new
tensor instead (torch would rewrite the graph in place, or refuse for a leaf), so write
`x = F.relu(x, inplace=True)`, which means the same in both.
"""
import math
import warnings

from .. import creation, ops
from ..autograd import is_grad_enabled
from ..ops import public
from ..ops.reduce import checked_dim
from . import init
from .checks import check_dtypes
from .module import Module, Parameter

gelu, softplus, tanh, sigmoid = ops.gelu, ops.softplus, ops.tanh, ops.sigmoid
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _inplace(input, out, inplace):
    """out, written into input when torch's inplace=True can be honoured without autograd."""
    if inplace and not (input.requires_grad and is_grad_enabled()):
        return input.copy_(out)
    return out


def _floating(name, x):
    if x.dtype.kind not in "fc":  # torch has no integer kernel for these either
        raise NotImplementedError(f"{name}: not implemented for integer input (dtype {x.dtype}, "
                                  f"shape {tuple(x.shape)}), as in torch; convert it with .float()")


def _like(x, v):
    """A bound in x's kind: torch's hardtanh and threshold keep integer tensors integer."""
    return v if x.dtype.kind in "fc" else int(v)


# ---- rectifiers and their clipped forms --------------------------------------------------------
def relu(input, inplace=False):
    """max(x, 0); the gradient at 0 is 0."""
    return _inplace(input, ops.relu(input), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, else negative_slope * x (slope negative_slope at 0)."""
    _floating("leaky_relu", input)
    return _inplace(input, ops.leaky_relu(input, negative_slope), inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]; unlike clamp, the gradient is 0 at the bounds (torch's)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    lo, hi = _like(input, min_val), _like(input, max_val)
    out = ops.where(input <= lo, lo, ops.where(input >= hi, hi, input))
    return _inplace(input, out, inplace)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6), gradient 0 at 0 and at 6."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6; the gradient 1/6 strictly inside (-3, 3), 0 elsewhere."""
    _floating("hardsigmoid", input)
    inside = ops.logical_and(input > -3, input < 3)  # NaN is outside: NaN, gradient 0 (torch)
    out = ops.where(inside, input / 6 + 0.5,
                    ops.where(input <= -3, 0.0, ops.where(input >= 3, 1.0, input.detach())))
    return _inplace(input, out, inplace)


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6, with torch's gradients at the kinks: 0 at -3 and 1 at 3 (the outer
    pieces'), and second derivative 0 there."""
    _floating("hardswish", input)
    middle = ops.where(ops.logical_and(input > -3, input < 3), input, 0.0)  # keeps NaN and inf
    out = ops.where(input <= -3, input.detach() * 0.0,  # -inf gives NaN (torch's product), and
                    ops.where(input < 3, middle * (middle + 3) / 6, input))  # the gradient 0
    return _inplace(input, out, inplace)


@public  # torch.threshold too
def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value (gradient 0 at the threshold; NaN stays NaN)."""
    out = ops.where(input <= threshold, _like(input, value), input)
    return _inplace(input, out, inplace)


@public  # torch.rrelu too
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky relu: while training, each x <= 0 is scaled by its own slope drawn
    uniformly from [lower, upper] with gpuad's seeded generator (the gradient is that slope);
    otherwise leaky_relu with the mean slope (lower + upper) / 2, like torch."""
    _floating("rrelu", input)
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    slopes = creation.rand(*input.shape, dtype=input.dtype, device=input.device)
    slopes = slopes * (upper - lower) + lower
    return _inplace(input, ops.where(input > 0, input, input * slopes), inplace)


@public  # torch.prelu too
def prelu(input, weight):
    """x for x > 0, else weight * x, with a learnable weight: one slope (num_parameters=1) or one
    per channel (dim 1; inputs of fewer than 2 dims have one channel), like torch."""
    check_dtypes("prelu", input, weight)
    if weight.ndim > 1:
        raise ValueError(f"prelu: expected weight to be a scalar or 1-D tensor, got shape "
                         f"{tuple(weight.shape)}")
    count, channels = weight.numel(), (input.shape[1] if input.ndim >= 2 else 1)
    if count not in (1, channels):
        raise ValueError(f"prelu: weight of {count} parameters does not fit input of shape "
                         f"{tuple(input.shape)} with {channels} channels (dim 1); use "
                         f"num_parameters=1 or {channels}")
    slope = weight.reshape(() if count == 1 else (channels,) + (1,) * (input.ndim - 2))
    # at 0 torch's gradient is the slope's, but its double backward treats 0 as positive: a
    # middle piece with a constant slope gives both. Each piece sees x only where it is chosen
    # (NaN goes to the middle one, as torch multiplies it by the slope), so an inf x or slope
    # elsewhere adds no 0 * inf to the gradients.
    negative = ops.where(input > 0, 0.0, input)
    at_zero = slope.detach() * ops.where(input < 0, 0.0, negative)
    return ops.where(input > 0, input, ops.where(input < 0, slope * negative, at_zero))


# ---- exponential units -------------------------------------------------------------------------
def _elu(x, alpha, scale=1.0, input_scale=1.0):
    """torch's elu family: scale x for x > 0, else scale alpha (exp(input_scale x) - 1). At 0 the
    first derivative is the negative side's (scale alpha input_scale) but the second is 0, as
    torch's double backward has it (ops._elu, one op)."""
    return ops._elu(x, alpha=alpha, scale=scale, input_scale=input_scale)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, else alpha * (exp(x) - 1); the gradient at 0 is alpha, as in torch."""
    _floating("elu", input)
    return _inplace(input, _elu(input, alpha), inplace)


@public  # torch.selu too
def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    _floating("selu", input)
    return _inplace(input, _elu(input, _SELU_ALPHA, _SELU_SCALE), inplace)


@public  # torch.celu too
def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, else alpha * (exp(x / alpha) - 1) (gradient 1 at 0)."""
    _floating("celu", input)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    return _inplace(input, _elu(input, alpha, 1.0, 1.0 / alpha), inplace)


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return _inplace(input, ops.silu(input), inplace)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    _floating("mish", input)
    return _inplace(input, input * ops.tanh(ops.softplus(input)), inplace)


# ---- shrinkage and soft signs ------------------------------------------------------------------
def _check_lambd(name, lambd):
    if lambd < 0:
        raise ValueError(f"{name}: lambd must be greater or equal to 0, got {lambd}")


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between (gradient 0 at +-lambd)."""
    _floating("softshrink", input)
    _check_lambd("softshrink", lambd)
    inside = (input >= -lambd) & (input <= lambd)  # NaN is outside, and stays NaN
    return ops.where(inside, 0.0, ops.where(input > 0, input - lambd, input + lambd))


@public  # torch.hardshrink too
def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0 (gradient 0 at +-lambd)."""
    _floating("hardshrink", input)
    return ops.where((input >= -lambd) & (input <= lambd), 0.0, input)  # NaN stays NaN


def tanhshrink(input):
    """x - tanh(x)."""
    return input - ops.tanh(input)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (1 + ops.abs(input))


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), without overflow at either end."""
    _floating("logsigmoid", input)
    return -ops.softplus(-input, threshold=math.inf)


# ---- softmax and friends (gpuad.softmax's primitives live with the reductions) ------------------
def _implicit_dim(name, input, dim, stacklevel):
    if dim is None:  # torch's legacy implicit choice
        dim = 0 if input.ndim in (0, 1, 3) else 1
        warnings.warn(f"{name}: implicit dimension choice is deprecated; pass dim=", UserWarning,
                      stacklevel=stacklevel)
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """softmax along dim, like torch.nn.functional.softmax (stable for large inputs)."""
    return ops.softmax(input, _implicit_dim("softmax", input, dim, _stacklevel), dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax) along dim, computed stably, like torch.nn.functional.log_softmax."""
    return ops.log_softmax(input, _implicit_dim("log_softmax", input, dim, _stacklevel),
                           dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along dim, like torch.nn.functional.softmin."""
    _floating("softmin", input)
    return ops.softmax(-input, _implicit_dim("softmin", input, dim, _stacklevel), dtype=dtype)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) along dim, g ~ Gumbel(0, 1) drawn afresh from gpuad's
    generators (Jang et al., 2016), like torch.nn.functional.gumbel_softmax. hard=True returns
    the one-hot of each sample's argmax with the soft sample's gradient (straight-through).
    `eps` is unused, as in torch."""
    _floating("gumbel_softmax", logits)
    d = checked_dim("gumbel_softmax", dim, logits.shape)
    gumbels = -creation.empty_like(logits).exponential_().log()
    soft = ops.softmax((logits + gumbels) / tau, d)
    if not hard:
        return soft
    one_hot = creation.zeros_like(logits).scatter_(d, soft.argmax(d, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft


def glu(input, dim=-1):
    """a * sigmoid(b) for the halves a, b of input along dim (the gated linear unit)."""
    _floating("glu", input)
    if input.ndim == 0:
        raise ValueError("glu: does not support 0-d inputs, since the halving dim must be even")
    d = checked_dim("glu", dim, input.shape)
    if input.shape[d] % 2:
        raise ValueError(f"glu: the halving dim must be even, but dim {dim} of input of shape "
                         f"{tuple(input.shape)} has size {input.shape[d]}")
    a, b = ops.chunk(input, 2, d)
    return a * ops.sigmoid(b)


# ---- Modules -----------------------------------------------------------------------------------
class _Elementwise(Module):
    """An activation with torch's `inplace` flag (shown in repr when set)."""
    _show_inplace = True

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace and self._show_inplace else ""


class ReLU(_Elementwise):
    def forward(self, input):
        return relu(input, self.inplace)


class ReLU6(_Elementwise):
    def forward(self, input):
        return relu6(input, self.inplace)


class SELU(_Elementwise):
    def forward(self, input):
        return selu(input, self.inplace)


class SiLU(_Elementwise):
    def forward(self, input):
        return silu(input, self.inplace)


class Mish(_Elementwise):
    def forward(self, input):
        return mish(input, self.inplace)


class Hardsigmoid(_Elementwise):
    _show_inplace = False  # torch's repr leaves it out

    def forward(self, input):
        return hardsigmoid(input, self.inplace)


class Hardswish(_Elementwise):
    _show_inplace = False

    def forward(self, input):
        return hardswish(input, self.inplace)


class Hardtanh(_Elementwise):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__(inplace)
        self.min_val = min_val if min_value is None else min_value  # torch's deprecated names
        self.max_val = max_val if max_value is None else max_value
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh: min_val ({self.min_val}) cannot be greater than "
                             f"max_val ({self.max_val})")

    def forward(self, input):
        return hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (
            ", inplace=True" if self.inplace else "")


class Threshold(_Elementwise):
    def __init__(self, threshold, value, inplace=False):
        super().__init__(inplace)
        self.threshold, self.value = threshold, value

    def forward(self, input):
        return threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (
            ", inplace=True" if self.inplace else "")


class _WithAlpha(_Elementwise):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class ELU(_WithAlpha):
    def forward(self, input):
        return elu(input, self.alpha, self.inplace)


class CELU(_WithAlpha):
    def forward(self, input):
        return celu(input, self.alpha, self.inplace)


class LeakyReLU(_Elementwise):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, input):
        return leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class RReLU(_Elementwise):
    """Random slopes in [lower, upper] for x <= 0 while training, the mean slope in eval mode."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__(inplace)
        self.lower, self.upper = lower, upper

    def forward(self, input):
        return rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (
            ", inplace=True" if self.inplace else "")


class PReLU(Module):
    """leaky relu with a learnable slope `weight` of num_parameters entries (1, or the number of
    channels in dim 1), each initialised to `init`, like torch.nn.PReLU."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(creation.empty(num_parameters, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):
        weight = self.weight  # read once: it may be a parametrization
        check_dtypes(self, input, weight)
        return prelu(input, weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class _Stateless(Module):
    """An activation without settings; accepts and ignores arguments, like torch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()


class Sigmoid(_Stateless):
    def forward(self, input):
        return ops.sigmoid(input)


class Tanh(_Stateless):
    def forward(self, input):
        return ops.tanh(input)


class LogSigmoid(_Stateless):
    def forward(self, input):
        return logsigmoid(input)


class Softsign(_Stateless):
    def forward(self, input):
        return softsign(input)


class Tanhshrink(_Stateless):
    def forward(self, input):
        return tanhshrink(input)


class _Shrink(Module):
    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(_Shrink):
    def forward(self, input):
        return softshrink(input, self.lambd)


class Hardshrink(_Shrink):
    def forward(self, input):
        return hardshrink(input, self.lambd)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return ops.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return ops.softplus(input, beta=self.beta, threshold=self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class GLU(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input):
        return log_softmax(input, self.dim, _stacklevel=5)


class Softmin(Softmax):
    def forward(self, input):
        return softmin(input, self.dim, _stacklevel=5)


class Softmax2d(_Stateless):
    """softmax over the channels (dim -3) of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected a 3-D or 4-D input, got shape "
                             f"{tuple(input.shape)}")
        return ops.softmax(input, -3)
