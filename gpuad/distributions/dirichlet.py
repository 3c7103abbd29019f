"""Dirichlet(concentration): distributions over the probability simplex (the last dim)."""
from .. import ops
from . import constraints
from .distribution import Distribution
from .gamma import clamped_tiny, standard_gamma


class Dirichlet(Distribution):
    """The Dirichlet distribution with concentration (..., K), like
    torch.distributions.Dirichlet. rsample normalises reparameterised gamma draws: its
    gradients are exact for that construction and unbiased, but per sample they differ from
    torch's, which differentiates each coordinate's marginal Beta CDF instead."""
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Dirichlet, _instance)
        batch_shape = tuple(batch_shape)
        new.concentration = ops.expand(self.concentration, batch_shape + self.event_shape)
        return self._expanded(new, batch_shape, self.event_shape)

    def rsample(self, sample_shape=()):
        gammas = standard_gamma(ops.expand(self.concentration,
                                           self._extended_shape(sample_shape)))
        return clamped_tiny(gammas / ops.sum(gammas, dim=-1, keepdim=True))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a = self.concentration
        return (ops.sum(ops.xlogy(a - 1.0, value), dim=-1) + ops.lgamma(ops.sum(a, dim=-1)) -
                ops.sum(ops.lgamma(a), dim=-1))

    @property
    def mean(self):
        return self.concentration / ops.sum(self.concentration, dim=-1, keepdim=True)

    @property
    def mode(self):
        excess = ops.clamp(self.concentration - 1, min=0.0)
        total = ops.sum(excess, dim=-1, keepdim=True)
        mode = excess / ops.where(total == 0, 1, total)
        below_one = ops.all(self.concentration < 1, dim=-1, keepdim=True)
        corner = ops.cast(ops.one_hot(ops.argmax(mode, dim=-1), num_classes=mode.shape[-1]),
                          dtype=mode.dtype)
        return ops.where(below_one, corner, mode)

    @property
    def variance(self):
        total = ops.sum(self.concentration, dim=-1, keepdim=True)
        return self.concentration * (total - self.concentration) / (total ** 2 * (total + 1))

    def entropy(self):
        a = self.concentration
        k, a0 = a.shape[-1], ops.sum(a, dim=-1)
        return (ops.sum(ops.lgamma(a), dim=-1) - ops.lgamma(a0) - (k - a0) * ops.digamma(a0) -
                ops.sum((a - 1.0) * ops.digamma(a), dim=-1))
