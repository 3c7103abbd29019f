"""gpuad.utils, as torch.utils: `gpuad.utils.checkpoint` recomputes activations in backward
instead of keeping them (`from gpuad.utils.checkpoint import checkpoint`)."""
import sys
import types

from .. import deprecation
from . import checkpoint as _checkpoint_module

_MOVED = {"to_dot": ("gpuad.tape.to_dot", "gpuad.tape:to_dot"),
          "summary": ("gpuad.nn.summary", "gpuad.nn.summary:summary"),
          "ModelSummary": ("gpuad.nn.ModelSummary", "gpuad.nn.summary:ModelSummary"),
          "checkpoint_sequential": ("gpuad.utils.checkpoint.checkpoint_sequential",
                                    "gpuad.utils.checkpoint:checkpoint_sequential")}


def __getattr__(name):
    if name in _MOVED:
        return deprecation.moved(f"gpuad.utils.{name}", *_MOVED[name])
    raise AttributeError(f"module 'gpuad.utils' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """gpuad.utils.checkpoint is the module, as in torch; calling it as the function it used to be
    still works for one release."""

    def __call__(self, *args, **kwargs):
        return deprecation.moved("calling gpuad.utils.checkpoint(...)",
                                 "gpuad.utils.checkpoint.checkpoint(...)",
                                 "gpuad.utils.checkpoint:checkpoint")(*args, **kwargs)


_checkpoint_module.__class__ = _CallableModule
sys.modules[__name__].checkpoint = _checkpoint_module
