"""Distribution: the base of gpuad.distributions, as torch.distributions.Distribution, and the
helpers the distributions share (broadcast_all, logits and probabilities, lazy_property).

A distribution holds Tensors of parameters; its densities and statistics are gpuad ops on them,
so gradients flow to the parameters, and rsample's draws are functions of the parameters and of
noise drawn without grad (the reparameterisation trick).
"""
import numbers

import numpy

from .. import backend, creation, ops
from ..autograd import no_grad
from ..func import unwrapped
from ..tensor import Tensor
from . import constraints


def broadcast_all(*values):
    """Tensors and numbers as Tensors of one broadcast shape; numbers take the dtype and device
    of the first Tensor (the default float dtype without one), like torch's broadcast_all."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of Number or gpuad.Tensor.")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    options = ({"dtype": backend.DEFAULT_FLOAT} if first is None else
               {"dtype": first.dtype, "device": first.device})
    tensors = [v if isinstance(v, Tensor) else creation.tensor(v, **options) for v in values]
    try:
        shape = numpy.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise RuntimeError(f"broadcast_all: shapes {shapes} do not broadcast") from None
    return tuple(t if t.shape == shape else ops.expand(t, shape) for t in tensors)


def broadcast_params(*values):
    """broadcast_all(*values) and the batch shape they give: () when every value is a Python
    number (torch's rule for scalar parameters), else the broadcast shape."""
    tensors = broadcast_all(*values)
    scalars = all(isinstance(v, numbers.Number) for v in values)
    return tensors, () if scalars else tensors[0].shape


def clamp_probs(probs):
    """probs clamped to [eps, 1 - eps] for its dtype's eps."""
    eps = float(numpy.finfo(probs.dtype).eps)
    return ops.clamp(probs, min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary=False):
    """Log-odds (is_binary) or log-probabilities of probabilities, clamped away from 0 and 1."""
    clamped = clamp_probs(probs)
    if is_binary:
        return ops.log(clamped) - ops.log1p(-clamped)
    return ops.log(clamped)


def logits_to_probs(logits, is_binary=False):
    """sigmoid of log-odds (is_binary) or softmax over the last dim."""
    if is_binary:
        return ops.sigmoid(logits)
    return ops.exp(logits - ops.logsumexp(logits, dim=-1, keepdim=True))


def sum_rightmost(value, dim):
    """value summed over its rightmost `dim` dims."""
    return ops.sum(value, dim=tuple(range(-dim, 0))) if dim > 0 else value


def standard_normal(shape, dtype, device):
    return creation.randn(*shape, dtype=dtype, device=device)


class lazy_property:
    """A property computed on first use and then stored on the instance (torch's)."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


def _all_true(valid):
    """Whether every check passed; inside vmap, for every example (as torch's _is_all_true)."""
    return bool(ops.all(unwrapped(valid))) if isinstance(valid, Tensor) else bool(valid)


class Distribution:
    """A probability distribution with torch.distributions' interface: batch_shape (independent
    distributions side by side) and event_shape (one draw), sample/rsample, log_prob, cdf/icdf,
    entropy, mean/mode/variance/stddev and expand. With validate_args (on by default, as in
    torch) parameters and scored values are checked against the constraints, raising torch's
    ValueError that names the parameter and the constraint."""
    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value):
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = tuple(batch_shape), tuple(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if not self._validate_args:
            return
        for param, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if param not in self.__dict__ and isinstance(getattr(type(self), param, None),
                                                         lazy_property):
                continue  # computed from the given parameter, checked there
            value = getattr(self, param)
            if not _all_true(constraint.check(value)):
                raise ValueError(f"Expected parameter {param} ({type(value).__name__} of shape "
                                 f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                                 f"constraint {constraint!r}, but found invalid values:\n{value}")

    def expand(self, batch_shape, _instance=None):
        """A distribution with batch_shape expanded (a view of the parameters, no checks)."""
        raise NotImplementedError

    batch_shape = property(lambda self: self._batch_shape)
    event_shape = property(lambda self: self._event_shape)

    @property
    def arg_constraints(self):
        raise NotImplementedError

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError

    @property
    def mode(self):
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError

    @property
    def stddev(self):
        return ops.sqrt(self.variance)

    def sample(self, sample_shape=()):
        """A sample of shape sample_shape + batch_shape + event_shape, without gradient."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """A sample through which gradients flow to the parameters (reparameterised)."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sampler "
                                  f"(has_rsample is False); use sample()")

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def perplexity(self):
        return ops.exp(self.entropy())

    def _extended_shape(self, sample_shape=()):
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def _validate_sample(self, value):
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        start = value.ndim - len(self._event_shape)
        if tuple(value.shape[start:]) != self._event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{tuple(value.shape)} vs {self._event_shape}.")
        expected = self._batch_shape + self._event_shape
        for i, j in zip(reversed(value.shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{tuple(value.shape)} vs {expected}.")
        support = self.support
        if not _all_true(support.check(value)):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape "
                             f"{tuple(value.shape)}) to be within the support ({support!r}) of "
                             f"the distribution {self!r}, but found invalid values:\n{value}")

    def _expand_params(self, cls, batch_shape, _instance, *names):
        """expand() for distributions whose parameters all have the batch shape: each named
        parameter expanded (a view), no checks, the validate_args setting kept."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = tuple(batch_shape)
        for name in names:
            setattr(new, name, ops.expand(getattr(self, name), batch_shape))
        return self._expanded(new, batch_shape)

    def _expanded(self, new, batch_shape, event_shape=()):
        """expand()'s last step: new's shapes set without checks, self's validate_args kept."""
        Distribution.__init__(new, tuple(batch_shape), event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(f"Subclass {self.__class__.__name__} of {cls.__name__} that "
                                      f"defines a custom __init__ method must also define a "
                                      f"custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self):
        def shown(t):
            return t if t.numel() == 1 else tuple(t.shape)
        args = ", ".join(f"{k}: {shown(self.__dict__[k])}" for k in self.arg_constraints
                         if k in self.__dict__)
        return f"{type(self).__name__}({args})"
