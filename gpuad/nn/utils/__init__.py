"""gpuad.nn.utils, laid out like torch.nn.utils: clip_grad (gradient clipping over a model's
parameters) and rnn (packed sequences)."""
from . import rnn  # noqa: F401
from .clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
