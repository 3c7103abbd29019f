"""gpuad.optim: optimizers over parameter Tensors, after nn in the data flow (torch.optim's API).

Re-exports only; each optimizer is one `_update` rule over the base class in optimizer.py.
"""
from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
