"""functional_call: run a Module with some of its parameters and buffers replaced for one call.

The module is a function of its tensors here (MAML's adapted weights, per-example gradients under
vmap): the given tensors stand in for the module's own while it runs, untouched (so gradients flow
to them, with create_graph if asked), and the module's own tensors are put back afterwards, even
if the call raises. Works on anything with nn.Module's registries, without importing nn.
"""
from ..tensor import Tensor

_MISSING = object()


def _merged(dicts):
    if isinstance(dicts, dict):
        return dicts
    if not isinstance(dicts, (tuple, list)):
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of "
                         f"dicts, but got {type(dicts)}")
    if not all(isinstance(d, dict) for d in dicts):
        raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
    seen, repeated = set(), []
    for key in (k for d in dicts for k in d):
        if key in seen and key not in repeated:
            repeated.append(key)
        seen.add(key)
    if repeated:
        raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional "
                         f"call is ambiguous")
    return {k: v for d in dicts for k, v in d.items()}


def _named_tensors(module):
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    return named


def _untied(module, given):
    """given, extended to every name that shares a tensor with a given name (torch's
    tie_weights): one value per group of tied names, or ValueError."""
    groups = {}
    for name, t in _named_tensors(module).items():
        groups.setdefault(id(t), set()).add(name)
    out = dict(given)
    for names in groups.values():
        named = [n for n in names if n in given]
        if len(names) < 2 or not named:
            continue
        if len({id(given[n]) for n in named}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, "
                             f"which are tied. Consider using tie_weights=False")
        out.update(dict.fromkeys(names, given[named[0]]))
    return out


def _swap(module, name, value):
    """Put value (or _MISSING: remove) at the dotted name; return what was there."""
    path, _, leaf = name.rpartition(".")
    owner = module
    for part in path.split(".") if path else ():
        owner = getattr(owner, part)
    if value is not _MISSING and value is not None and not isinstance(value, Tensor):
        raise TypeError(f"functional_call: the value for '{name}' is {type(value).__name__}, "
                        f"not a gpuad.Tensor")
    for registry in (owner._parameters, owner._buffers):
        if leaf in registry:
            old = registry[leaf]
            if value is _MISSING:
                del registry[leaf]
            else:
                registry[leaf] = value
            return old
    old = getattr(owner, leaf, _MISSING)
    if old is not _MISSING and not isinstance(old, Tensor):
        raise TypeError(f"functional_call: '{name}' is a {type(old).__name__} attribute of the "
                        f"module, not a parameter, buffer or tensor")
    if value is not _MISSING:
        object.__setattr__(owner, leaf, value)
    elif old is not _MISSING:
        object.__delattr__(owner, leaf)
    return old


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """module(*args, **kwargs) with the named parameters and buffers in
    parameter_and_buffer_dicts (a dict, or a tuple of dicts with distinct keys) used in place of
    the module's own, like torch.func.functional_call. The module is left as it was; tied
    tensors stay tied (tie_weights); strict requires exactly the module's names. A buffer the
    call reassigns (running statistics) is written back into a single given dict, as torch
    does."""
    given = _merged(parameter_and_buffer_dicts)
    values = _untied(module, given) if tie_weights else dict(given)
    if strict:
        valid = set(_named_tensors(module))
        missing, unexpected = sorted(valid - set(values)), sorted(set(values) - valid)
        errors = ([f"Unexpected key(s): {', '.join(map(repr, unexpected))}."] if unexpected else
                  []) + ([f"Missing key(s): {', '.join(map(repr, missing))}."] if missing else [])
        if errors:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" +
                               "\n\t".join(errors))
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    originals = {}
    try:
        for name, value in values.items():
            originals[name] = _swap(module, name, value)
        return module(*args, **(kwargs or {}))
    finally:
        for name, old in reversed(list(originals.items())):
            now = _swap(module, name, old)
            if name in given and now is not values[name] and isinstance(
                    parameter_and_buffer_dicts, dict):
                parameter_and_buffer_dicts[name] = now
