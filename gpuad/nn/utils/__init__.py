"""gpuad.nn.utils, laid out like torch.nn.utils: clip_grad (gradient clipping over a model's
parameters), rnn (packed sequences), convert_parameters, parametrize and parametrizations
(weight_norm, spectral_norm), and the old-style weight_norm."""
from . import parametrizations, parametrize, rnn  # noqa: F401
from .clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401
