"""OneHotCategorical(probs | logits): a Categorical whose samples are one-hot vectors."""
from .. import creation, ops
from . import constraints
from .categorical import Categorical
from .distribution import Distribution


class OneHotCategorical(Distribution):
    """One-hot vectors of K entries drawn with probabilities probs (or softmax(logits)), like
    torch.distributions.OneHotCategorical: a Categorical with event_shape (K,)."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OneHotCategorical, _instance)
        new._categorical = self._categorical.expand(batch_shape)
        return self._expanded(new, batch_shape, self.event_shape)

    _param = property(lambda self: self._categorical._param)
    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)
    param_shape = property(lambda self: self._categorical.param_shape)
    mean = property(lambda self: self._categorical.probs)
    variance = property(lambda self: self.probs * (1 - self.probs))

    @property
    def mode(self):
        index = ops.argmax(self.probs, dim=-1)
        return ops.cast(ops.one_hot(index, num_classes=self.probs.shape[-1]),
                        dtype=self.probs.dtype)

    def sample(self, sample_shape=()):
        index = self._categorical.sample(sample_shape)
        return ops.cast(ops.one_hot(index, num_classes=self._categorical._num_events),
                        dtype=self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(ops.argmax(value, dim=-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        n = self.event_shape[0]
        values = creation.eye(n, dtype=self._param.dtype, device=self._param.device)
        values = ops.reshape(values, (n,) + (1,) * len(self.batch_shape) + (n,))
        return ops.expand(values, (n,) + self.batch_shape + (n,)) if expand else values
