"""Categorical(probs | logits): one of K categories per batch entry (the last dim holds K)."""
import math

import numpy

from .. import backend, creation, ops
from ..autograd import no_grad
from . import constraints
from .bernoulli import parameters
from .distribution import Distribution, lazy_property, logits_to_probs, probs_to_logits


def broadcast_tensors(*tensors):
    shape = numpy.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if t.shape == shape else ops.expand(t, shape) for t in tensors)


class Categorical(Distribution):
    """Category indices 0..K-1 with probabilities probs (normalised along the last dim) or
    softmax(logits), like torch.distributions.Categorical."""
    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        name, value = parameters(probs, logits)
        if value.ndim < 1:
            raise ValueError(f"`{name}` parameter must be at least one-dimensional.")
        if name == "probs":
            self.probs = value / ops.sum(value, dim=-1, keepdim=True)
        else:
            self.logits = value - ops.logsumexp(value, dim=-1, keepdim=True)
        self._param = getattr(self, name)
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.shape[:-1] if self._param.ndim > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = tuple(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, ops.expand(self.__dict__[name],
                                              batch_shape + (self._num_events,)))
                new._param = getattr(new, name)
        new._num_events = self._num_events
        return self._expanded(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    param_shape = property(lambda self: self._param.shape)

    @property
    def mean(self):
        return creation.full(self._extended_shape(), math.nan, dtype=self.probs.dtype,
                             device=self.probs.device)

    variance = mean
    mode = property(lambda self: ops.argmax(self.probs, dim=-1))

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        with no_grad():
            rows = ops.reshape(self.probs, (-1, self._num_events))
            draws = creation.multinomial(rows, math.prod(sample_shape), True)
            return ops.reshape(ops.permute(draws, (1, 0)), self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = ops.unsqueeze(ops.cast(value, dtype=backend.int64), -1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        return ops.squeeze(ops.gather(log_pmf, -1, value[..., :1]), -1)

    def entropy(self):
        lowest = float(numpy.finfo(self.logits.dtype).min)
        return -ops.sum(ops.clamp(self.logits, min=lowest) * self.probs, dim=-1)

    def enumerate_support(self, expand=True):
        values = creation.arange(self._num_events, dtype=backend.int64, device=self._param.device)
        values = ops.reshape(values, (-1,) + (1,) * len(self._batch_shape))
        return ops.expand(values, (-1,) + self._batch_shape) if expand else values
