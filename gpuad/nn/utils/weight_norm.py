"""The old-style weight normalisation, torch.nn.utils.weight_norm: parameters <name>_g and
<name>_v on the module itself (state_dict keys weight_g, weight_v), <name> recomputed from them
(torch recomputes it in a forward pre-hook; here it is a property, the same value at each use).
"""
from ..module import Parameter
from . import parametrize
from .parametrizations import norm_except_dim


def weight_norm(module, name="weight", dim=0):
    """Replace module.<name> by g * v / ||v|| with parameters <name>_g and <name>_v, like
    torch.nn.utils.weight_norm (deprecated there in favour of parametrizations.weight_norm)."""
    dim = -1 if dim is None else dim
    if getattr(type(module), f"_gpuad_weight_norm_{name}", False):
        raise RuntimeError(f"weight_norm: cannot register two weight_norm hooks on the same "
                           f"parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"weight_norm: module {type(module).__name__} has no parameter named "
                         f"{name!r}")
    del module._parameters[name]
    module.register_parameter(f"{name}_g", Parameter(norm_except_dim(weight, dim).detach()))
    module.register_parameter(f"{name}_v", Parameter(weight.detach()))
    parametrize.add_property(
        module, name,
        lambda self: getattr(self, f"{name}_v") * (
            getattr(self, f"{name}_g") / norm_except_dim(getattr(self, f"{name}_v"), dim)))
    setattr(type(module), f"_gpuad_weight_norm_{name}", dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: <name> becomes a plain parameter holding its current value."""
    cls = type(module)
    if f"_gpuad_weight_norm_{name}" not in cls.__dict__:
        raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in "
                         f"{type(module).__name__}")
    weight = getattr(module, name).detach()
    delattr(cls, name)
    delattr(cls, f"_gpuad_weight_norm_{name}")
    del module._parameters[f"{name}_g"], module._parameters[f"{name}_v"]
    module.register_parameter(name, Parameter(weight))
    if not parametrize.is_parametrized(module) and not any(
            k.startswith("_gpuad_weight_norm_") for k in cls.__dict__):
        module.__class__ = parametrize.type_before_parametrizations(module)
    return module
