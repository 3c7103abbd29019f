"""gpuad: reverse-mode automatic differentiation on numpy (CPU) and CuPy (CUDA) arrays.

Re-exports only. The data flow, bottom up: backend (arrays, devices) -> tensor + autograd (Tensor,
tape, backward) -> ops (forward + vjp) -> nn -> optim -> data -> training (+ models/, scripts/).
"""
from . import autograd, backend, cuda, ops  # noqa: F401
from .autograd import (  # noqa: F401
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .autograd import detect_anomaly, set_debug, set_detect_anomaly  # noqa: F401
from .backend import Device, device  # noqa: F401
from .backend.cuda import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: F401
from .backend import bool_ as bool  # noqa: F401,A001  (gpuad.bool, like torch.bool)
from .backend import float16, float32, float64, int8, int16, int32, int64  # noqa: F401
from .backend import complex64, complex128, uint8, uint16, uint32, uint64  # noqa: F401
from numpy import dtype  # noqa: F401  (gpuad's dtypes are numpy's)
# torch's other names for them
float, double, half = float32, float64, float16  # noqa: A001
long, int, short = int64, int32, int16  # noqa: A001
cfloat, cdouble = complex64, complex128
from .backend import bfloat16  # noqa: F401  (a dtype only with ml_dtypes; autocast explains)
from .creation import from_dlpack  # noqa: F401
from .creation import as_tensor, is_tensor, tril_indices, triu_indices  # noqa: F401
from .creation import empty_like, logspace, numel  # noqa: F401
from .creation import (arange, empty, eye, from_numpy, full, full_like, get_rng_state,  # noqa: F401
                       linspace, manual_seed, ones, ones_like, rand, randint, randn, set_rng_state,
                       tensor, zeros, zeros_like)
from .creation import (Generator, bernoulli, multinomial, normal, poisson, rand_like,  # noqa: F401
                       randint_like, randn_like, randperm)
from .tensor import Tensor, set_printoptions  # noqa: F401
from math import e, inf, nan, pi  # noqa: F401  (gpuad.pi & co, like torch's constants)
from .serialization import load, save  # noqa: F401
from . import data, distributed, func, linalg, nn, optim, tape, training, utils  # noqa: F401
from . import amp  # noqa: F401
from . import distributions  # noqa: F401
from . import preemption  # noqa: F401
from .deprecation import missing_name
from .amp import autocast  # noqa: F401
from .testing import GradcheckError, gradcheck  # noqa: F401
from .compiler import compile  # noqa: F401,A001  (gpuad.compile, like torch.compile)
from . import accelerator  # noqa: F401
from .dtypes import (can_cast, finfo, get_default_dtype, iinfo, is_complex,  # noqa: F401
                     is_floating_point, promote_types, result_type, set_default_dtype)

# gpuad.add, ...; torch.linalg's functions (registered as torch names them natively, linalg_svd)
# are gpuad.linalg.svd, not gpuad.linalg_svd
globals().update({k: v for k, v in ops.REGISTRY.items() if not k.startswith(("_", "linalg_"))})


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """d(outputs)/d(inputs) as a tuple, without touching any .grad (torch.autograd.grad)."""
    return autograd.grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)


__version__ = "0.1.0"


def __getattr__(name):
    if name == "checkpoint":  # renamed gpuad.serialization; importing the alias warns
        import importlib
        return importlib.import_module("gpuad.checkpoint")
    raise missing_name("gpuad", name)
