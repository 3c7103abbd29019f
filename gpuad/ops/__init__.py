"""Differentiable ops: `primitive` turns a forward on raw arrays plus a vjp on Tensors into an op.

The decorator does once, for every op, what would otherwise be repeated per op: unwrap Tensors,
accept numpy spellings (axis/keepdims), apply PyTorch's type promotion, check that all inputs share a
device, and record a Node when grad mode is on and an input requires grad. Forwards see only raw
arrays and `xp_of`; rules see Tensors, so they are differentiable again under create_graph.

Positional parameters of a forward are its tensor inputs; keyword-only ones are attributes (the
caller may still pass those positionally, after the inputs, as PyTorch allows).
"""
import inspect
import numbers

import numpy

from .. import backend
from ..autograd import Node, _mode
from ..tensor import Tensor

REGISTRY = {}  # op name -> op; gpuad exports names without a leading _, the tests check them all
_ALIASES = {"axis": "dim", "keepdims": "keepdim"}
_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def _promoted_dtype(raw):
    """PyTorch's promotion: the highest kind wins; within it, dimensioned tensors beat 0-d ones and
    Python scalars, so a float32 tensor stays float32 next to an int64 array or a float64 scalar."""
    arrays = [a for a in raw if hasattr(a, "dtype")]
    first = arrays[0].dtype
    scalar_kind = max((2 if isinstance(a, float) else 1 if isinstance(a, int) and not isinstance(a, bool) else 0
                       for a in raw if isinstance(a, numbers.Number)), default=-1)
    if all(a.dtype == first for a in arrays) and scalar_kind <= _CATEGORY[first.kind]:
        return None
    top = max(max(_CATEGORY[a.dtype.kind] for a in arrays), scalar_kind)
    best = [a for a in arrays if _CATEGORY[a.dtype.kind] == top]
    if not best:
        return backend.DEFAULT_FLOAT if top == 2 else backend.int64
    dimensioned = [a.dtype for a in best if a.ndim > 0] or [a.dtype for a in best]
    return numpy.result_type(*dimensioned)


def _device_error(name, a, b):
    return RuntimeError(
        f"{name}: expected all tensors to be on the same device, but found at least two devices, "
        f"{backend.device_of(a)} and {backend.device_of(b)}; move them with .to(device) first")


def apply(name, forward, vjp, args, kwargs, promote=False, defaults=None):
    """Run `forward` on the raw arrays of `args` and record a Node for `vjp` if needed."""
    inputs, raw, versions = [], [], []
    needs_grad, first = False, None
    for a in args:
        if not isinstance(a, Tensor):
            if isinstance(a, numpy.generic):
                a = a.item()  # numpy scalars are weak like Python's, not float64 tensors
            elif a is not None and not isinstance(a, numbers.Number):
                a = Tensor(backend.asarray(a) if not backend.is_array(a) else a)
        if isinstance(a, Tensor):
            data = a.data
            if first is None:
                first = data
            elif type(data) is not type(first) or (type(data) is not numpy.ndarray
                                                  and backend.device_of(data) != backend.device_of(first)):
                raise _device_error(name, first, data)
            needs_grad = needs_grad or a.requires_grad
            versions.append(a._version)
            raw.append(data)
        else:
            versions.append(0)
            raw.append(a)
        inputs.append(a)
    if promote and first is not None and len(raw) > 1:
        dtype = _promoted_dtype(raw)
        if dtype is not None:
            raw = [a.astype(dtype, copy=False) if hasattr(a, "dtype") else a for a in raw]
    out = forward(*raw, **kwargs)
    if not backend.is_array(out):
        out = backend.xp_of(first).asarray(out)  # numpy reductions return scalars; keep arrays
    result = Tensor(out)
    if needs_grad and vjp is not None and _mode.enabled:
        result._node = Node(name, vjp, tuple(inputs), {**defaults, **kwargs} if defaults else kwargs,
                            tuple(versions))
        result._requires_grad = True
    return result


def primitive(vjp=None, name=None, promote=False):
    """Declare an op: forward on raw arrays below, `vjp(g, y, *inputs, **attrs)` on Tensors
    returning one gradient (or None) per input. `vjp=None` makes the op non-differentiable."""
    def decorate(forward):
        op_name = name or forward.__name__
        params = inspect.signature(forward).parameters.values()
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        n_inputs = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        attrs = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
        defaults = {p.name: p.default for p in params
                    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}  # rules see them all

        def op(*args, **kwargs):
            if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
                kwargs = {_ALIASES.get(k, k): v for k, v in kwargs.items()}
            if not variadic and len(args) > n_inputs:
                extra = args[n_inputs:]
                if len(extra) > len(attrs):
                    raise TypeError(f"{op_name}() takes {n_inputs + len(attrs)} arguments but "
                                    f"{len(args)} were given")
                for attr, value in zip(attrs, extra):
                    if attr in kwargs:
                        raise TypeError(f"{op_name}() got multiple values for argument '{attr}'")
                    kwargs[attr] = value
                args = args[:n_inputs]
            return apply(op_name, forward, vjp, args, kwargs, promote, defaults)

        op.__name__ = op.__qualname__ = op_name
        op.__doc__ = forward.__doc__
        op.forward, op.vjp = forward, vjp
        REGISTRY[op_name] = op
        return op
    return decorate


def public(fn):
    """Register a composite (an op built from primitives) so gpuad exports and tests it; it accepts
    numpy's axis/keepdims for dim/keepdim like primitives do."""
    def op(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            kwargs = {_ALIASES.get(k, k): v for k, v in kwargs.items()}
        return fn(*args, **kwargs)
    op.__name__ = op.__qualname__ = fn.__name__
    op.__doc__, op.__wrapped__ = fn.__doc__, fn
    REGISTRY[fn.__name__] = op
    return op


from . import elementwise, linalg, reduce, shape  # noqa: E402,F401  (each registers its ops)

globals().update(REGISTRY)  # gpuad.ops.add, gpuad.ops.sum, ... for tensor.py and the rules
