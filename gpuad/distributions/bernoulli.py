"""Bernoulli(probs | logits): one coin flip per batch entry."""
import math
import numbers

from .. import creation, ops
from ..autograd import no_grad
from ..nn import functional
from . import constraints
from .distribution import (
    Distribution,
    broadcast_all,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)


def parameters(probs, logits):
    """The one given of probs and logits, or torch's ValueError."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    return ("probs", probs) if probs is not None else ("logits", logits)


class Bernoulli(Distribution):
    """1 with probability probs (or sigmoid(logits)), 0 otherwise, like
    torch.distributions.Bernoulli; log_prob and entropy are computed from the logits."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        name, value = parameters(probs, logits)
        (param,) = broadcast_all(value)
        setattr(self, name, param)
        self._param = param
        batch_shape = () if isinstance(value, numbers.Number) else param.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Bernoulli, _instance)
        batch_shape = tuple(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, ops.expand(self.__dict__[name], batch_shape))
                new._param = getattr(new, name)
        return self._expanded(new, batch_shape)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    param_shape = property(lambda self: self._param.shape)
    mean = property(lambda self: self.probs)
    variance = property(lambda self: self.probs * (1 - self.probs))

    @property
    def mode(self):
        mode = ops.cast(self.probs >= 0.5, dtype=self.probs.dtype)
        return ops.where(self.probs == 0.5, math.nan, mode)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with no_grad():  # u < p, as torch.bernoulli draws (and vmap can batch the draw)
            probs = ops.expand(self.probs, shape)
            return ops.cast(creation.rand_like(probs) < probs, dtype=probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -functional.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return functional.binary_cross_entropy_with_logits(self.logits, self.probs,
                                                           reduction="none")

    def enumerate_support(self, expand=True):
        values = creation.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = ops.reshape(values, (-1,) + (1,) * len(self._batch_shape))
        return ops.expand(values, (-1,) + self._batch_shape) if expand else values


