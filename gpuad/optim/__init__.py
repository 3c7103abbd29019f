"""gpuad.optim: optimizers over parameter Tensors, after nn in the data flow (torch.optim's API).

Re-exports only; each optimizer is one `_update` rule over the base class in optimizer.py (LBFGS,
which needs a closure and a flat view of all parameters, writes its own step).
"""
from . import lr_scheduler, swa_utils  # noqa: F401
from .adadelta import Adadelta  # noqa: F401
from .adagrad import Adagrad  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .adamax import Adamax  # noqa: F401
from .asgd import ASGD  # noqa: F401
from .lbfgs import LBFGS  # noqa: F401
from .nadam import NAdam  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .radam import RAdam  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
