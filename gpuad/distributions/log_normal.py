"""LogNormal(loc, scale): exp of a Normal, reparameterised through it."""
from .. import ops
from . import constraints
from .distribution import Distribution
from .normal import Normal


class LogNormal(Distribution):
    """exp(X) for X ~ Normal(loc, scale), like torch.distributions.LogNormal (a transformed
    Normal there: base_dist is that Normal here too)."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogNormal, _instance)
        new.base_dist = self.base_dist.expand(batch_shape)
        return self._expanded(new, batch_shape)

    loc = property(lambda self: self.base_dist.loc)
    scale = property(lambda self: self.base_dist.scale)
    mean = property(lambda self: ops.exp(self.loc + self.scale ** 2 / 2))
    mode = property(lambda self: ops.exp(self.loc - self.scale ** 2))

    @property
    def variance(self):
        scale2 = self.scale ** 2
        return ops.expm1(scale2) * ops.exp(2 * self.loc + scale2)

    def sample(self, sample_shape=()):
        return ops.exp(self.base_dist.sample(sample_shape))

    def rsample(self, sample_shape=()):
        return ops.exp(self.base_dist.rsample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        x = ops.log(value)
        return self.base_dist.log_prob(x) - x

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.base_dist.cdf(ops.log(value))

    def icdf(self, value):
        return ops.exp(self.base_dist.icdf(value))

    def entropy(self):
        return self.base_dist.entropy() + self.loc
