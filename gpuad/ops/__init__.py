"""Differentiable ops: `primitive` turns a forward on raw arrays plus a vjp on Tensors into an op.

The decorator does once, for every op, what would otherwise be repeated per op: unwrap Tensors,
accept numpy spellings (axis/keepdims), apply PyTorch's type promotion, check that all inputs share
a device, and record a Node when grad mode is on and an input requires grad. Forwards see only raw
arrays and `xp_of`; rules see Tensors, so they are differentiable again under create_graph.

Positional parameters of a forward are its tensor inputs; keyword-only ones are attributes (the
caller may still pass those positionally, after the inputs, as PyTorch allows).
"""
import builtins
import inspect
import numbers
import threading

import numpy

from .. import backend
from ..autograd import ANOMALY, DEBUG, Node, check_finite, describe_shapes, grad_mode, user_site
from ..tensor import Tensor, rebuilt

REGISTRY = {}  # op name -> op; gpuad exports names without a leading _, the tests check them all
AUTOCAST_POLICIES = (None, "lower", "float32")

# Hooks that see every op's inputs before it runs: autocast casts them, activation checkpointing
# notes which require grad. A hook is registered while some thread needs it (a count per hook, so
# nested regions call it once); with none registered apply's only cost is one global check.
INTERCEPTORS = ()
_interceptor_counts = {}
_interceptor_lock = threading.Lock()


def add_interceptor(hook):
    """Call hook(name, autocast, args) -> args before every op until remove_interceptor(hook)
    (each add needs one remove)."""
    global INTERCEPTORS
    with _interceptor_lock:
        _interceptor_counts[hook] = _interceptor_counts.get(hook, 0) + 1
        INTERCEPTORS = tuple(_interceptor_counts)


def remove_interceptor(hook):
    global INTERCEPTORS
    with _interceptor_lock:
        _interceptor_counts[hook] -= 1
        if not _interceptor_counts[hook]:
            del _interceptor_counts[hook]
        INTERCEPTORS = tuple(_interceptor_counts)


# gpuad.func.vmap's dispatcher while some vmap runs (None otherwise): it answers for every op
# called with a batched tensor, so the only cost outside vmap is one global check per op.
BATCHING = None


def set_batching(dispatcher):
    """Install (or, with None, remove) the function that sees every op first:
    dispatcher(name, args, kwargs, call, composite=None, forward=None) returns the op's result,
    or NotImplemented to let the op run as usual; call(*args, **kwargs) runs the op on other
    arguments; a composite's own body (not dispatched again) comes as `composite`, a
    primitive's forward as `forward`."""
    global BATCHING
    BATCHING = dispatcher


def plain_backward():
    """Whether rules now run in a plain backward: nothing records (no create_graph) and no vmap
    batches, so a rule may compute its gradient on raw arrays instead of through ops."""
    return not grad_mode.enabled and BATCHING is None


_ALIASES = {"axis": "dim", "keepdims": "keepdim"}
CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def scalar_kind(a):
    """A Python scalar's category: 2 float, 1 int (bool is not an int here), 0 bool."""
    return 2 if isinstance(a, float) else 1 if isinstance(a, int) and not isinstance(a, bool) else 0


def promoted_dtype(raw):
    """PyTorch's promotion: the highest kind wins; within it, dimensioned tensors beat 0-d ones and
    Python scalars, so a float32 tensor stays float32 next to an int64 array or a float64 scalar."""
    arrays = [a for a in raw if hasattr(a, "dtype")]
    first = arrays[0].dtype
    scalars = builtins.max((scalar_kind(a) for a in raw if isinstance(a, numbers.Number)),
                           default=-1)
    if builtins.all(a.dtype == first for a in arrays) and scalars <= CATEGORY[first.kind]:
        return None
    top = builtins.max(builtins.max(CATEGORY[a.dtype.kind] for a in arrays), scalars)
    best = [a for a in arrays if CATEGORY[a.dtype.kind] == top]
    if not best:
        return backend.DEFAULT_FLOAT if top == 2 else backend.int64
    dimensioned = [a.dtype for a in best if a.ndim > 0] or [a.dtype for a in best]
    return numpy.result_type(*dimensioned)


def _device_error(name, a, b):
    op, da, db = name.lstrip('_'), backend.device_of(a), backend.device_of(b)
    if da == db:  # one device, two kinds of array (a test backend's, a tracing array left over)
        return RuntimeError(
            f"{op}: expected all tensors to hold the same kind of array, but found "
            f"{type(a).__module__}.{type(a).__name__} and {type(b).__module__}."
            f"{type(b).__name__} (both on {da}); make both with the same backend")
    return RuntimeError(
        f"{op}: expected all tensors to be on the same device, but found at least two devices, "
        f"{da} and {db}; move them with .to(device) first")


def _cpu_scalars_moved(args):
    """args with each 0-d CPU tensor copied (differentiably) to the one device its other tensors
    share, or None where they share none: torch lets a CPU scalar tensor join an op on a device
    (`x_cuda * torch.tensor(2.0)`, `where(mask, x_cuda, torch.tensor(0.0))`)."""
    def cpu_scalar(a):
        return isinstance(a, Tensor) and a.ndim == 0 and a.device == backend.CPU
    devices = {a.device for a in args if isinstance(a, Tensor) and not cpu_scalar(a)}
    if len(devices) != 1 or backend.CPU in devices:
        return None
    device = devices.pop()
    return tuple(a.to(device) if cpu_scalar(a) else a for a in args)


_SCALARS = (float, int, bool)


def as_input(a, name):
    """A non-Tensor argument as an op input: Python scalars and None as they are, numpy scalars as
    Python ones (weak, like PyTorch's), arrays and lists as constant Tensors."""
    if a is None or type(a) in _SCALARS:
        return a
    if isinstance(a, numpy.generic) and a.dtype.kind in CATEGORY:
        return a.item()
    if isinstance(a, numbers.Number):
        return a
    array = a if backend.is_array(a) else backend.asarray(a)
    if array.dtype.kind not in CATEGORY:
        raise TypeError(f"{name.lstrip('_')}: expected a tensor, an array or a number, got "
                        f"{type(a).__name__} {a!r:.40} (dtype {array.dtype})")
    return Tensor(array)


class Saving:
    """What a forward returns to keep arrays for its rule: `Saving(out, saved)`. The op's result
    is `out`; the rule gets `saved` as its keyword `saved` (torch's save_for_backward for what
    the inputs do not hold, such as a softmax the gradient reuses). Nothing is kept when no Node
    is recorded, and a backward frees it with the node's inputs."""
    __slots__ = ("out", "saved")

    def __init__(self, out, saved):
        self.out, self.saved = out, saved


def apply(name, forward, vjp, args, kwargs, promote=False, defaults=None, floating=False,
          autocast=None):
    """Run `forward` on the raw arrays of `args` and record a Node for `vjp` if needed.
    This is the per-op hot path: keep it to one pass over the inputs and no work when nothing
    needs a gradient."""
    if BATCHING is not None:
        out = BATCHING(name, args, kwargs, lambda *a, **k: apply(
            name, forward, vjp, a, k, promote, defaults, floating, autocast), None, forward)
        if out is not NotImplemented:
            return out
    if INTERCEPTORS:
        for hook in INTERCEPTORS:
            args = hook(name, autocast, args)
    raw = []
    needs_grad = mixed = has_float = has_int = False
    first = first_dtype = None
    for a in args:
        if type(a) is not Tensor and not isinstance(a, Tensor):
            if type(a) is float:
                has_float = True
                raw.append(a)
                continue
            converted = as_input(a, name)
            if not isinstance(converted, Tensor):
                has_float = has_float or type(converted) is float
                has_int = has_int or type(converted) is int
                raw.append(converted)
                continue
            # record the Tensor, not the list
            args = tuple(converted if b is a else b for b in args)
            a = converted
        data = a.array
        if first is None:
            first, first_dtype = data, data.dtype
        else:
            if type(data) is not type(first) or (type(data) is not numpy.ndarray
                                                 and not backend.same_device(data, first)):
                moved = _cpu_scalars_moved(args)
                if moved is None:
                    raise _device_error(name, first, data)
                return apply(name, forward, vjp, moved, kwargs, promote, defaults, floating,
                             autocast)
            if data.dtype is not first_dtype:
                mixed = True
        if a._requires_grad:
            needs_grad = True
        raw.append(data)
    if floating and first_dtype is not None and first_dtype.kind not in "fc":
        raw = [a.astype(backend.DEFAULT_FLOAT) if hasattr(a, "dtype") else a for a in raw]
    elif promote and first_dtype is not None and (
            mixed or (has_float and first_dtype.kind not in "fc") or
            (has_int and first_dtype.kind == "b")):  # bool tensor * 2 is int64, as in torch
        dtype = promoted_dtype(raw)
        if dtype is not None:
            raw = [a.astype(dtype, copy=False) if hasattr(a, "dtype") else a for a in raw]
    # NaN and Inf without numpy's warnings, as in torch (setting numpy's error state is cheaper
    # than asking whether a backward walk has set it already)
    quiet = backend.silence_float_errors()
    try:
        if type(first) is numpy.ndarray or first is None:
            out = forward(*raw, **kwargs)
        else:
            scope = backend.gpu_scope(first)  # several GPUs: compute where the inputs live
            if scope is None:
                out = forward(*raw, **kwargs)
            else:
                with scope:
                    out = forward(*raw, **kwargs)
    except (ValueError, IndexError, TypeError, RuntimeError) as error:
        raise _with_context(error, name, raw) from None
    finally:
        backend.restore_float_errors(quiet)
    saved = None
    if type(out) not in backend.ARRAY_TYPES:
        if type(out) is Saving:
            out, saved = out.out, out.saved
        if type(out) not in backend.ARRAY_TYPES:
            out = backend.xp_of(first).asarray(out)  # numpy reductions return scalars
    if ANOMALY[0] and not grad_mode.in_backward:
        check_finite("forward", name, user_site(), out, raw)
    result = Tensor(out)
    if needs_grad and vjp is not None and grad_mode.enabled:
        inputs = tuple(args)
        attrs = {**defaults, **kwargs} if defaults else kwargs
        if saved is not None:
            attrs = {**attrs, "saved": saved}
        result._node = Node(name, vjp, inputs, attrs)
        if ANOMALY[0] or DEBUG[0]:
            result._node.site = user_site()  # where the user created it, for backward's errors
        result._requires_grad = True
    return result


def _with_context(error, name, raw):
    """The array library's error, prefixed with the op and the input shapes unless ours already
    names the op."""
    message = str(error)
    public_name = name.lstrip("_")
    refused = isinstance(error, backend.RefusedByBackend)  # the backend's own words: as they are
    if refused or message.startswith((f"{public_name}:", f"{name}:")):
        return error
    shapes = describe_shapes(raw)
    if DEBUG[0]:
        shapes += "; dtypes " + ", ".join(str(getattr(a, "dtype", type(a).__name__)) for a in raw)
        shapes += "; devices " + ", ".join(str(backend.device_of(a)) for a in raw
                                           if backend.is_array(a))
        shapes += f"; called at {user_site()}"
    return rebuilt(error, f"{public_name}: {message} (inputs of shapes {shapes})")


def primitive(vjp=None, name=None, promote=False, floating=False, autocast=None):
    """Declare an op: forward on raw arrays below, `vjp(g, y, *inputs, **attrs)` on Tensors
    returning one gradient (or None) per input. `vjp=None` makes the op non-differentiable.
    `promote`: PyTorch's type promotion between inputs; `floating`: integer and bool inputs are
    computed in the default float dtype (exp of an int tensor is float32, as in torch).
    `autocast`: what gpuad.autocast does with the op's float inputs, as in torch's op lists:
    "lower" runs it in the low dtype (matrix products), "float32" in float32 (ops that lose
    range or accuracy in half precision), None follows type promotion."""
    if autocast not in AUTOCAST_POLICIES:
        raise ValueError(f"primitive: autocast must be one of {AUTOCAST_POLICIES}, got "
                         f"{autocast!r}")

    def decorate(forward):
        op_name = name or forward.__name__
        params = inspect.signature(forward).parameters.values()
        variadic = builtins.any(p.kind is p.VAR_POSITIONAL for p in params)
        n_inputs = builtins.sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                                for p in params)
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
            return apply(op_name, forward, vjp, args, kwargs, promote, defaults, floating, autocast)

        op.__name__ = op.__qualname__ = op_name
        op.__doc__ = forward.__doc__
        op.forward, op.vjp, op.autocast = forward, vjp, autocast
        REGISTRY[op_name] = op
        return op
    return decorate


def batchable(fn):
    """Let gpuad.func.vmap answer for the function fn (with its batching rule, or by a loop over
    the examples when fn reads raw arrays) without making it an op: for composites outside ops,
    such as nn.functional's losses over class indices. Accepts numpy's axis/keepdims."""
    name = fn.__name__

    def op(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            kwargs = {_ALIASES.get(k, k): v for k, v in kwargs.items()}
        if BATCHING is not None:
            out = BATCHING(name, args, kwargs, op, fn)
            if out is not NotImplemented:
                return out
        return fn(*args, **kwargs)
    op.__name__ = op.__qualname__ = name
    op.__doc__, op.__wrapped__ = fn.__doc__, fn
    return op


def public(fn):
    """Register a composite (an op built from primitives) so gpuad exports and tests it; it accepts
    numpy's axis/keepdims for dim/keepdim like primitives do."""
    op = batchable(fn)
    REGISTRY[fn.__name__] = op
    return op


from . import (  # noqa: E402,F401  (each family registers its ops)
    comparison,
    conv,
    decomposition,
    elementwise,
    indexing,
    linalg,
    norm,
    pointwise,
    pool,
    rearrange,
    reduce,
    scan,
    shape,
    solve,
    sort,
)

globals().update(REGISTRY)  # gpuad.ops.add, gpuad.ops.sum, ... for tensor.py and the rules
