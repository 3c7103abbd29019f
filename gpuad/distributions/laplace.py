"""Laplace(loc, scale): the double exponential, reparameterised through its inverse CDF."""
import numpy

from .. import creation, ops
from . import constraints
from .distribution import Distribution, broadcast_params


class Laplace(Distribution):
    """The Laplace distribution with location loc and scale scale, like
    torch.distributions.Laplace."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        (self.loc, self.scale), batch_shape = broadcast_params(loc, scale)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Laplace, batch_shape, _instance, "loc", "scale")

    mean = property(lambda self: self.loc)
    mode = property(lambda self: self.loc)
    variance = property(lambda self: 2 * self.scale ** 2)
    stddev = property(lambda self: 2 ** 0.5 * self.scale)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        low = float(numpy.finfo(self.loc.dtype).eps) - 1  # u in (-1, 1): log1p(-|u|) is finite
        u = low + creation.rand(*shape, dtype=self.loc.dtype, device=self.loc.device) * (1 - low)
        return self.loc - self.scale * ops.sign(u) * ops.log1p(-ops.abs(u))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -ops.log(2 * self.scale) - ops.abs(value - self.loc) / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 - 0.5 * ops.sign(value - self.loc) * ops.expm1(
            -ops.abs(value - self.loc) / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * ops.sign(term) * ops.log1p(-2 * ops.abs(term))

    def entropy(self):
        return 1 + ops.log(2 * self.scale)


