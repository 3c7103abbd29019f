"""A tensor of a Module computed from other tensors, like torch.nn.utils.parametrize.

register_parametrization(module, "weight", p) moves the module's `weight` into
`module.parametrizations.weight.original` (or original0, original1, ... when p.right_inverse
returns several tensors) and turns `weight` into a property that evaluates p(original) at each
access, so state_dict keys, parameter shapes and gradients are torch's. As in torch, the
module's class is swapped for a subclass that holds the property, and restored once the last
parametrization is removed. Inside `cached()` each parametrized tensor is computed once.
"""
import contextlib

from ...autograd import no_grad
from ...tensor import Tensor
from ..module import ModuleDict, ModuleList, Parameter

_cache_depth = [0]
_cache = {}


@contextlib.contextmanager
def cached():
    """Compute each parametrized tensor once inside this block (torch's cached())."""
    _cache_depth[0] += 1
    try:
        yield
    finally:
        _cache_depth[0] -= 1
        if not _cache_depth[0]:
            _cache.clear()


def _register(module, name, tensor):
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def _set(target, value):
    """target takes value's data (shares it, like torch's set_), staying the same object: an
    optimizer may hold it."""
    if value.array is not target.array:
        target._bump_version()
        target.data = value


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to the original(s) it holds."""

    def __init__(self, modules, original, unsafe=False):
        super().__init__(modules)
        self.unsafe = unsafe
        with no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if isinstance(original, Parameter):
                _set(original, new)
                self.original = original
            else:
                self.register_buffer("original", new)
        else:
            for i, t in enumerate(new):
                _register(self, f"original{i}", Parameter(t, original.requires_grad)
                          if isinstance(original, Parameter) else t)

    def right_inverse(self, value):
        """Assigning module.<name> = value: the originals take right_inverse(value)."""
        with no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
            if self.is_tensor:
                _set(self.original, value)
            else:
                for i, t in enumerate(value):
                    _set(getattr(self, f"original{i}"), t)

    def forward(self):
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def is_parametrized(module, tensor_name=None):
    """Whether module has any parametrization (or one for tensor_name)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def type_before_parametrizations(module):
    """The module's class as it was before any parametrization."""
    cls = type(module)
    return cls.__bases__[0] if getattr(cls, "_gpuad_parametrized", False) else cls


def _inject_new_class(module):
    """A subclass of module's class, for this module alone, to hold the properties."""
    cls = type(module)

    def __setattr__(self, name, value):
        if isinstance(type(self).__dict__.get(name), property):
            object.__setattr__(self, name, value)  # the property's setter
        else:
            cls.__setattr__(self, name, value)
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,),
                            {"__setattr__": __setattr__, "_gpuad_parametrized": True,
                             "__doc__": cls.__doc__})


def add_property(module, tensor_name, compute, assign=None):
    """Make module.<tensor_name> a property computed by compute(module) (cached inside cached();
    assign(module, value) runs on assignment), on a class of this module's own: the mechanism
    under register_parametrization and the old-style weight_norm."""
    if not getattr(type(module), "_gpuad_parametrized", False):
        _inject_new_class(module)

    def get(self):
        if _cache_depth[0]:
            key = (id(self), tensor_name)
            if key not in _cache:
                _cache[key] = compute(self)
            return _cache[key]
        return compute(self)
    setattr(type(module), tensor_name, property(get, assign))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make module.<tensor_name> parametrization(original), like torch's: a second call for the
    same name appends to the chain."""
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"register_parametrization: module {type(module).__name__} has no "
                         f"parameter, buffer or parametrized tensor named {tensor_name!r}")
    original = getattr(module, tensor_name)
    if original is None:
        raise ValueError(f"register_parametrization: {type(module).__name__}.{tensor_name} is "
                         f"None; there is nothing to parametrize")
    chain = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        module.parametrizations = ModuleDict()
    add_property(module, tensor_name, lambda self: self.parametrizations[tensor_name](),
                 lambda self, value: self.parametrizations[tensor_name].right_inverse(value))
    module.parametrizations[tensor_name] = chain
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Undo register_parametrization: module.<tensor_name> becomes a plain parameter (or buffer)
    again, holding the parametrized value if leave_parametrized, else the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: module {type(module).__name__} has no "
                         f"parametrization on {tensor_name!r}")
    chain = module.parametrizations[tensor_name]
    if chain.is_tensor:
        original = chain.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            _set(original, value)
    elif leave_parametrized:
        value = getattr(module, tensor_name)
        original = (Parameter(value.detach(), True) if value.requires_grad else value.detach())
    else:
        raise ValueError("remove_parametrizations: cannot leave unparametrized "
                         "(leave_parametrized=False) a tensor that is parametrized in terms of "
                         "several tensors")
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type_before_parametrizations(module)
    return module
