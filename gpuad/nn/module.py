"""Module, Parameter and the containers: how a network holds its state, like torch.nn.Module.

Sits above ops/ and below optim/: attribute assignment registers Parameters, buffers and
sub-modules in ordered dicts, so parameter and state_dict order is assignment order. No maths here
(layers.py, functional.py) and no hook registries.
"""
import collections
import operator

import numpy

from .. import autograd, backend
from ..tensor import MovesWithTo, Tensor, to_arguments


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter: a leaf requiring grad by default. It shares
    memory with the tensor or array it wraps, like torch.nn.Parameter."""
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = backend.create("cpu", "empty", (0,), dtype=backend.DEFAULT_FLOAT)
        elif isinstance(data, Tensor):
            data = data.array
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _Registry(dict):
    """A module's parameters, buffers or children by name: a dict that counts every change in
    autograd.CHANGES, so a compiled step notices a parameter or layer swapped since it was traced
    with one comparison per replay. Reads are the dict's own."""
    __slots__ = ()

    def __setitem__(self, key, value):
        autograd.CHANGES[0] += 1
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        autograd.CHANGES[0] += 1
        dict.__delitem__(self, key)

    def pop(self, *args):
        autograd.CHANGES[0] += 1
        return dict.pop(self, *args)

    def popitem(self):
        autograd.CHANGES[0] += 1
        return dict.popitem(self)

    def clear(self):
        autograd.CHANGES[0] += 1
        dict.clear(self)

    def update(self, *args, **kwargs):
        autograd.CHANGES[0] += 1
        dict.update(self, *args, **kwargs)

    def setdefault(self, key, default=None):
        autograd.CHANGES[0] += 1
        return dict.setdefault(self, key, default)

    def __ior__(self, other):
        self.update(other)
        return self


def held_by(module):
    """What a module holds, by identity: its class and its own parameters, buffers and children,
    and the numbers gpuad's own forward reads (gpuad.compile compares this when autograd.CHANGES
    has moved)."""
    return (type(module), [(n, id(v)) for n, v in module._parameters.items()],
            [(n, id(v)) for n, v in module._buffers.items()],
            [(n, id(v)) for n, v in module._modules.items()],
            [(n, type(v), v) for n, v in vars(module).items() if _setting(module, n, v)])


# the plain values a layer's settings are compared by (gpuad.compile's reads use the same)
PLAIN_VALUES = (int, float, bool, str, type(None))


def _setting(module, name, value):
    """Whether module.<name> = value is a number that gpuad's own forward reads, such as
    Dropout's p or a norm's eps (a layer of the user's own class is read where gpuad.compile
    follows the user's code); its training flag is a program's choice of its own."""
    return (type(value) in PLAIN_VALUES and name != "training" and not name.startswith("_")
            and getattr(type(module).forward, "__module__", "").startswith("gpuad."))


def _check_name(module, kind, name):
    """Refuse a name a parameter, buffer or child module cannot have; ready a fast lookup for one
    that it can (see _Registered)."""
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
    # A class attribute keeps precedence, dunder names are the language's, and a bare Module()
    # leaves the base class alone (every module class would inherit its names).
    cls = type(module)
    if (cls is not Module and name.isidentifier() and not name.startswith("__")
            and not any(name in c.__dict__ for c in cls.__mro__)):
        setattr(cls, name, _Registered(name, _GROUPS[kind]))


_GROUPS = {"parameter": "_parameters", "buffer": "_buffers", "module": "_modules"}
_ABSENT = object()


class _Registered:
    """How `self.weight` finds a registered parameter, buffer or child module: a lookup on the
    class (set when a first instance registers the name) instead of Module.__getattr__. That runs
    only after the ordinary lookup has failed, and CPython 3.11 builds the AttributeError, message
    and all, before it gives up: about 2 us per `self.weight`, half a Linear's bookkeeping. A
    non-data descriptor, so an instance attribute of the same name still wins; elsewhere (another
    group in another instance, or not registered) __getattr__ answers, or says what is missing."""
    __slots__ = ("name", "group")

    def __init__(self, name, group):
        self.name, self.group = name, group

    def __get__(self, module, owner=None):
        if module is None:
            raise AttributeError(self.name)  # the class itself has no such attribute
        registry = module.__dict__.get(self.group)
        if registry is not None:
            value = registry.get(self.name, _ABSENT)
            if value is not _ABSENT:
                return value
        return module.__getattr__(self.name)


class Module(MovesWithTo):
    """Base class of layers and models: assign Parameters, Modules and (via register_buffer)
    buffers as attributes in __init__, and define forward."""

    def __init__(self):
        for name, value in (("training", True), ("_parameters", _Registry()),
                            ("_buffers", _Registry()), ("_non_persistent_buffers", set()),
                            ("_modules", _Registry())):
            object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define it in the "
                                  f"subclass")

    def __call__(self, *args, **kwargs):
        if not autograd.DEBUG[0]:
            return self.forward(*args, **kwargs)
        try:  # debug mode: say which (sub)module raised, innermost first
            return self.forward(*args, **kwargs)
        except (ValueError, TypeError, IndexError, RuntimeError) as error:
            note = f"in {type(self).__name__}.forward with inputs of shapes " + ", ".join(
                str(tuple(a.shape)) for a in args if hasattr(a, "shape"))
            error.add_note(note)
            raise

    # ---- registration ----------------------------------------------------------------------
    def _forget(self, name, keep=None):
        for group in (self.__dict__, self._parameters, self._buffers, self._modules):
            if group is not keep:  # the group being assigned keeps the name's position
                group.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            _check_name(self, "parameter", name)
            self._forget(name, self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            _check_name(self, "module", name)
            self._forget(name, self._modules)
            self._modules[name] = value
        elif name in d.get("_parameters", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                f"(gpuad.nn.Parameter or None expected)")
            self._parameters[name] = None
        elif name in d.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                f"(gpuad.nn.Module or None expected)")
            self._modules[name] = None
        elif name in d.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                f"(gpuad.Tensor or None expected)")
            self._buffers[name] = value
        else:
            if name in d and _setting(self, name, value) and (type(d[name]) is not type(value)
                                                              or d[name] != value):
                autograd.CHANGES[0] += 1  # (Dropout's p changed: a compiled step re-traces)
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only reached when normal lookup fails
        d = self.__dict__
        for group in ("_parameters", "_buffers", "_modules"):
            if name in d.get(group, ()):
                return d[group][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Add a Parameter (or None, a declared but absent one) under `name`."""
        _check_name(self, "parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: cannot assign {type(param).__name__} as "
                            f"parameter '{name}' (gpuad.nn.Parameter or None expected)")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"register_parameter: attribute '{name}' already exists")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a tensor that is state but not a parameter (running statistics); persistent buffers
        are part of state_dict."""
        _check_name(self, "buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: cannot assign {type(tensor).__name__} as buffer "
                            f"'{name}' (gpuad.Tensor or None expected)")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"register_buffer: attribute '{name}' already exists")
        self._buffers[name] = tensor
        (self._non_persistent_buffers.discard if persistent
         else self._non_persistent_buffers.add)(name)

    def add_module(self, name, module):
        """Add a child module (or None) under `name`."""
        _check_name(self, "module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        self._forget(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The module at dotted path `target` ("" is this one), as torch's get_submodule."""
        module = self
        for item in target.split(".") if target else ():
            if not hasattr(module, item):
                raise AttributeError(f"{type(module).__name__} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def get_parameter(self, target):
        """The Parameter at dotted path `target` ("blocks.0.weight")."""
        return self._get_state(target, Parameter, "nn.Parameter")

    def get_buffer(self, target):
        """The buffer at dotted path `target` ("bn.running_mean")."""
        return self._get_state(target, None, "buffer")

    def _get_state(self, target, kind, what):
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
        found = getattr(module, name)
        if not (isinstance(found, kind) if kind is not None else name in module._buffers):
            raise AttributeError(f"`{name}` is not {'an' if what[0] == 'n' else 'a'} {what}")
        return found

    # ---- traversal -------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                                remove_duplicate)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, group, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, value in getattr(module, group).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{path}.{name}" if path else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ---- modes, gradients, devices -----------------------------------------------------------
    def train(self, mode=True):
        """Set training mode here and in every descendant (dropout, batch norm); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def compile(self, *args, **kwargs):
        """Compile this module's forward in place, as torch's Module.compile: its calls then
        record and replay as gpuad.compile(module)'s (which takes the same arguments), and its
        state_dict keys stay as they are. The compiled forward sits in the instance's __dict__,
        so Module.__call__ stays as it is for every other module."""
        from .. import compiler  # lazy, upward: the compiler sits above nn (it reads modules)
        self.__dict__["forward"] = compiler.compile(type(self).forward.__get__(self), *args,
                                                    **kwargs)

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's .grad (or zero it in place with set_to_none=False)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn):
        """Call fn on every descendant, then on self (e.g. custom initialisation); returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """Move parameters, their grads and buffers to a device and/or cast the floating ones to a
        dtype, IN PLACE: the Parameter objects stay the same, so an optimizer built before keeps
        working. `module.to('cuda')`, `module.to(gpuad.float64)`, `module.to(tensor)`."""
        device, dtype, _ = to_arguments("Module.to", args, device, dtype, non_blocking)
        if dtype is not None and dtype.kind not in "fc":
            raise TypeError(f"Module.to: only floating point dtypes are allowed, got {dtype}")
        for t in [*self.parameters(), *(p.grad for p in self.parameters()), *self.buffers()]:
            if t is None:
                continue
            data = t.array
            if dtype is not None and data.dtype.kind in "fc" and data.dtype != dtype:
                data = data.astype(dtype)
            if device is not None:
                data = backend.to_device(data, device)
            if data is not t.array:
                t._bump_version()  # graphs recorded before the move must not use the new data
                t.array = data
        return self

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name ("0.weight", "bn.running_mean"), in
        registration order, as detached tensors sharing memory with the module's."""
        out = collections.OrderedDict() if destination is None else destination
        for path, module in self.named_modules(remove_duplicate=False):
            head = prefix + (path + "." if path else "")
            for name, p in module._parameters.items():
                if p is not None:
                    out[head + name] = p if keep_vars else p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    out[head + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (tensors or arrays of any device) into the existing parameters and buffers,
        keeping their device and dtype. Everything is checked first: missing and unexpected keys
        (when strict) and shape mismatches (always) raise one error naming every offending key,
        and the module is then left unchanged. Returns (missing_keys, unexpected_keys)."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, staged = [], []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.array if isinstance(value, Tensor) else value
            shape = tuple(value.shape) if hasattr(value, "shape") else numpy.shape(value)
            if shape != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape {shape} from "
                              f"checkpoint, the shape in current model is {tuple(target.shape)}")
                continue
            try:
                staged.append((target, backend.asarray(value, target.dtype, target.device)))
            except (TypeError, ValueError) as error:  # not convertible to that dtype
                errors.append(f"while copying {key!r}: {error}")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for target, data in staged:
            target._bump_version()
            target.array[...] = data
        return _IncompatibleKeys(missing, unexpected)

    # ---- repr --------------------------------------------------------------------------------
    def extra_repr(self):
        """The text inside this module's parentheses in repr (its settings)."""
        return ""

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        children = [f"({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self._modules.items()]
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({lines[0]})"
        body = "".join(f"\n  {line}" for line in lines + children)
        return f"{type(self).__name__}({body}\n)" if body else f"{type(self).__name__}()"


def _index(i, n, what, items="modules"):
    i = operator.index(i)
    if not -n <= i < n:
        raise IndexError(f"{what}: index {i} is out of range for {n} {items}")
    return i % n


class Sequential(Module):
    """Modules applied in order: Sequential(m0, m1, ...) or Sequential(OrderedDict(name=m))."""

    def __init__(self, *modules):
        super().__init__()
        items = modules[0].items() if len(modules) == 1 and isinstance(modules[0], dict) else (
            (str(i), m) for i, m in enumerate(modules))
        for name, module in items:
            self.add_module(name, module)

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return type(self)(collections.OrderedDict(items[index]))
        return items[_index(index, len(items), "Sequential")][1]

    def __setitem__(self, index, module):
        setattr(self, list(self._modules)[_index(index, len(self), "Sequential")], module)

    def __delitem__(self, index):  # renumbers the rest, as torch does
        modules = list(self._modules.values())
        if not isinstance(index, slice):
            index = _index(index, len(modules), "Sequential")
        del modules[index]
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules whose parameters the parent registers; indexing like a Python list."""

    def __init__(self, modules=None):
        super().__init__()
        self.extend(modules or ())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[str(_index(index, len(self), "ModuleList"))]

    def __setitem__(self, index, module):
        self.add_module(str(_index(index, len(self), "ModuleList")), module)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[index]
        self._modules.clear()
        self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)


class ModuleDict(Module):
    """An ordered dict of modules whose parameters the parent registers."""

    def __init__(self, modules=None):
        super().__init__()
        self.update(modules or {})

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        return self._modules.pop(key)

    def update(self, modules):
        for key, module in (modules.items() if isinstance(modules, dict) else modules):
            self.add_module(key, module)


def _as_parameter(container, value):
    """What a parameter container stores: a Parameter as it is, another tensor wrapped in one,
    as torch's containers do."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"{container}: expected a Parameter or a tensor, got {type(value).__name__}")


def _parameter_lines(items):
    return "\n".join(f"({name}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}"
                     f"{'' if p.device == backend.CPU else f' on {p.device}'}]"
                     for name, p in items)


class ParameterList(Module):
    """A list of Parameters the parent registers (named "0", "1", ...), like
    torch.nn.ParameterList; a plain tensor put in is wrapped in a Parameter."""

    def __init__(self, values=None):
        super().__init__()
        self.extend(values or ())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._parameters.values())[index])
        return self._parameters[str(_index(index, len(self), "ParameterList", "parameters"))]

    def __setitem__(self, index, value):
        i = _index(index, len(self), "ParameterList", "parameters")
        self._parameters[str(i)] = _as_parameter("ParameterList", value)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        self.register_parameter(str(len(self)), _as_parameter("ParameterList", value))
        return self

    def extend(self, values):
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return _parameter_lines(self._parameters.items())


class ParameterDict(Module):
    """An ordered dict of Parameters the parent registers under their keys, like
    torch.nn.ParameterDict; a plain tensor put in is wrapped in a Parameter."""

    def __init__(self, parameters=None):
        super().__init__()
        self.update(parameters or {})

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        _check_name(self, "parameter", key)
        self._parameters[key] = _as_parameter("ParameterDict", value)

    def __delitem__(self, key):
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def get(self, key, default=None):
        return self._parameters.get(key, default)

    def pop(self, key):
        return self._parameters.pop(key)

    def update(self, parameters):
        for key, value in (parameters.items() if hasattr(parameters, "items") else parameters):
            self[key] = value

    def extra_repr(self):
        return _parameter_lines(self._parameters.items())

