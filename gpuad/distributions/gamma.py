"""Gamma(concentration, rate), with the standard gamma sampler that Dirichlet and Beta share.

Samples are drawn by Marsaglia and Tsang's method; rsample's gradient with respect to the
concentration is the implicit reparameterisation gradient dx/dalpha = -(dF/dalpha) / (dF/dx) of
the gamma CDF F, computed with the approximations torch uses (_standard_gamma_grad), so the
gradients of a given sample are torch's.
"""
import numpy

from .. import backend, creation, ops
from ..autograd import is_grad_enabled, no_grad
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_params


def _draw(alpha):
    """Standard gamma samples, one per entry of alpha (Marsaglia-Tsang, without gradient)."""
    boost = alpha < 1  # Gamma(a) = Gamma(a + 1) * U^(1/a)
    a = ops.where(boost, alpha + 1, alpha)
    d = a - 1 / 3
    c = 1 / ops.sqrt(9 * d)
    out, todo = creation.zeros_like(a), creation.ones_like(a, dtype=backend.bool_)
    while bool(ops.any(todo)):
        x = creation.randn_like(a)
        v = (1 + c * x) ** 3
        u = 1 - creation.rand_like(a)  # in (0, 1]
        positive = v > 0
        accept = todo & positive & (ops.log(u) < 0.5 * x * x + d - d * v +
                                    d * ops.log(ops.where(positive, v, 1)))
        out, todo = ops.where(accept, d * v, out), todo & ~accept
    u = 1 - creation.rand_like(a)
    out = ops.where(boost, out * u ** (1 / alpha), out)
    return ops.clamp(out, min=float(numpy.finfo(out.dtype).tiny))


_RATIONAL = ((0.16009398, -0.094634809, 0.025146376, -0.0030648343,
              1, 0.32668115, 0.10406089, 0.0014179084),
             (0.53487893, 0.1298071, 0.065735949, -0.0015649758,
              0.16639465, 0.020070113, -0.0035938915, -0.00058392623),
             (0.040121004, -0.0065914022, -0.0026286047, -0.0013441777,
              0.017050642, -0.0021309326, 0.00085092367, -1.5247877e-07))


def standard_gamma_grad(alpha, x):
    """dx/dalpha for x ~ Gamma(alpha, 1) held at its CDF value, as torch's
    _standard_gamma_grad: a series for x < 0.8, Rice's saddle point expansion for alpha > 8,
    and a bivariate rational approximation between (computed in float64)."""
    alpha, x = ops.cast(alpha, dtype=backend.float64), ops.cast(x, dtype=backend.float64)
    small, large = x < 0.8, alpha > 8
    # series in x (each branch sees safe stand-ins outside its region: no NaN, no warnings)
    xs = ops.where(small, x, 0.5)
    numer, denom = creation.ones_like(alpha), alpha
    series1, series2 = numer / denom, numer / denom ** 2
    for i in range(1, 6):
        numer = numer * -xs / i
        denom = denom + 1
        series1, series2 = series1 + numer / denom, series2 + numer / denom ** 2
    pow_x_alpha = xs ** alpha
    pdf = xs ** (alpha - 1) * ops.exp(-xs)
    cdf = pow_x_alpha * series1
    cdf_alpha = (ops.log(xs) - ops.digamma(alpha)) * cdf - pow_x_alpha * series2
    by_series = -cdf_alpha / pdf
    by_series = ops.where(ops.isnan(by_series), 0, by_series)
    # Rice's expansion for large alpha: one formula near x = alpha, another away from it
    al = ops.where(large, alpha, 9.0)
    near = (0.9 * al <= x) & (x <= 1.1 * al)
    numer_1 = 1 + 24 * al * (1 + 12 * al)
    numer_2 = (1440 * al * al + 6 * x * (53 - 120 * x) - 65 * x * x / al +
               al * (107 + 3600 * x))
    by_near = numer_1 * numer_2 / (1244160 * al ** 4)
    xa = ops.where(near, 0.5 * al, x)
    root = ops.sqrt(8 * al)
    term3 = (xa - al - al * ops.log(xa / al)) ** -1.5
    term23 = ops.where(xa < al, root / (al - xa) - term3, root / (al - xa) + term3)
    term1 = ops.log(xa / al) * term23 - ops.sqrt(2 / al) * (al + xa) / (al - xa) ** 2
    stirling = 1 + 1 / (12 * al) * (1 + 1 / (24 * al))
    by_rice = ops.where(near, by_near, -stirling * xa * term1 / root)
    # the rational approximation in u = log(x / alpha), v = log(alpha)
    u, v = ops.log(x / alpha), ops.log(alpha)
    coef = [c0 + u * (c1 + u * c2) for c0, c1, c2 in zip(*_RATIONAL)]
    p = coef[0] + v * (coef[1] + v * (coef[2] + v * coef[3]))
    q = coef[4] + v * (coef[5] + v * (coef[6] + v * coef[7]))
    by_rational = ops.exp(ops.where(small | large, 0, p / q))
    return ops.where(small, by_series, ops.where(large, by_rice, by_rational))


def standard_gamma(alpha):
    """Gamma(alpha, 1) samples whose gradient with respect to alpha is the implicit
    reparameterisation gradient (torch._standard_gamma's)."""
    with no_grad():
        x = _draw(alpha.detach())
    if not (alpha.requires_grad and is_grad_enabled()):
        return x
    with no_grad():
        dx = ops.cast(standard_gamma_grad(alpha, x), dtype=x.dtype)
    return x + (alpha - alpha.detach()) * dx  # x's value, with gradient dx per unit of alpha


def clamped_tiny(value):
    """value clamped below at its dtype's smallest normal number, gradient passing through."""
    tiny = float(numpy.finfo(value.dtype).tiny)
    return value + (ops.clamp(value.detach(), min=tiny) - value.detach())


class Gamma(Distribution):
    """The gamma distribution with shape concentration and inverse scale rate, like
    torch.distributions.Gamma; rsample is reparameterised (implicit gradients)."""
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        (self.concentration, self.rate), batch_shape = broadcast_params(concentration, rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Gamma, batch_shape, _instance, "concentration", "rate")

    mean = property(lambda self: self.concentration / self.rate)
    mode = property(lambda self: ops.clamp((self.concentration - 1) / self.rate, min=0))
    variance = property(lambda self: self.concentration / self.rate ** 2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = standard_gamma(ops.expand(self.concentration, shape)) / ops.expand(self.rate,
                                                                                   shape)
        return clamped_tiny(value)

    def log_prob(self, value):
        if not isinstance(value, Tensor):
            value = creation.tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        if self._validate_args:
            self._validate_sample(value)
        return (ops.xlogy(self.concentration, self.rate) +
                ops.xlogy(self.concentration - 1, value) - self.rate * value -
                ops.lgamma(self.concentration))

    def entropy(self):
        return (self.concentration - ops.log(self.rate) + ops.lgamma(self.concentration) +
                (1.0 - self.concentration) * ops.digamma(self.concentration))


