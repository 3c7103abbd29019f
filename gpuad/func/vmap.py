"""gpuad.func.vmap: a function of one example made a function of a batch, as torch.func.vmap.

While a vmap runs, every op called with a BatchedTensor reaches this module's dispatcher first
(ops.set_batching). It runs the op once on the whole batch by the op's batching rule
(batching.py); a composite without a rule runs its body on the batched tensors, its ops batched
one by one; anything else (no rule, or a body that reads raw arrays) runs once per example and
the results are stacked: the fallback, correct but slow. record_fallbacks() counts which ops took
it, and gpuad.set_debug(True) warns once per op. Gradients never see a BatchedTensor: grad inside
vmap differentiates the batched computation (gpuad.func lifts its inputs to the whole batch), so
per-example gradients are the gradients of a batch in which every example has its own copy of
the parameters.
"""
import collections
import contextlib
import functools
import inspect
import threading
import warnings

from .. import autograd, creation, ops
from ..ops.function import Function
from ..tensor import Tensor
from . import batching
from .batching import BatchedTensor


class _Level:
    """One running vmap: its batch size, its randomness= and its depth among this thread's."""
    __slots__ = ("size", "randomness", "depth")

    def __init__(self, size, randomness, depth):
        self.size, self.randomness, self.depth = size, randomness, depth


_local = threading.local()
_install_lock = threading.Lock()
_running = [0]  # vmaps running in all threads: the dispatcher is installed while any runs


def active_levels():
    """This thread's running vmaps, outermost first."""
    return tuple(getattr(_local, "levels", ()))


@contextlib.contextmanager
def _entered(size, randomness):
    levels = getattr(_local, "levels", None)
    if levels is None:
        levels = _local.levels = []
    level = _Level(size, randomness, len(levels))
    levels.append(level)
    with _install_lock:
        _running[0] += 1
        if _running[0] == 1:
            ops.set_batching(_dispatch)
            creation.VMAP_RANDOMNESS[0] = _randomness
    try:
        yield level
    finally:
        levels.pop()
        with _install_lock:
            _running[0] -= 1
            if not _running[0]:
                ops.set_batching(None)
                creation.VMAP_RANDOMNESS[0] = None


# ---- the dispatcher ------------------------------------------------------------------------------
def _top_level(values, top=None):
    for v in values:
        if isinstance(v, BatchedTensor):
            if top is None or v._vlevel.depth > top.depth:
                top = v._vlevel
        elif type(v) in (list, tuple):
            top = _top_level(v, top)
    return top


_rules = {}  # (op name, its forward) -> its rule (None: no rule), filled as ops are first met


def rule_for(name, forward=None):
    """The batching rule of op `name` (a primitive when its `forward` is given): its row in
    batching.RULES (with the op's default dim for dim-taking rules), the pointwise rule for the
    primitives of batching.POINTWISE_MODULES, or None."""
    key = name, forward
    if key not in _rules:
        rule = batching.RULES.get(name)
        if rule is None and forward is not None and (
                forward.__module__ in batching.POINTWISE_MODULES):
            rule = batching.pointwise
        if rule is batching.along_dim and forward is not None:
            dim = inspect.signature(forward).parameters.get("dim")
            if dim is None:
                rule = None
            elif dim.default is not dim.empty:
                rule = functools.partial(batching.along_dim, default=dim.default)
        _rules[key] = rule
    return _rules[key]


def _dispatch(name, args, kwargs, call, composite=None, forward=None):
    level = _top_level(kwargs.values(), _top_level(args))
    if level is None:
        return NotImplemented
    levels = active_levels()
    if level.depth >= len(levels) or levels[level.depth] is not level:
        raise RuntimeError(f"{name.lstrip('_')}: got a tensor batched by a vmap that has already "
                           f"returned (it escaped through a closure or a global); return it from "
                           f"the vmapped function instead")
    rule = rule_for(name, forward)
    if rule is not None:
        out = rule(call, level, args, kwargs)
        if out is not NotImplemented:
            return _wrap(out, level)
    if composite is not None:
        try:
            return composite(*args, **kwargs)
        except batching.BatchedArrayAccess:
            pass  # the body reads raw values: run it per example
    if isinstance(kwargs.get("function"), type) and issubclass(kwargs["function"], Function):
        raise NotImplementedError(f"vmap: {name} is a custom gpuad.autograd.Function, which has "
                                  f"no batching rule; call it outside vmap, or write it with "
                                  f"gpuad ops")
    return _per_example(name, call, level, args, kwargs)


def _wrap(out, level):
    if isinstance(out, Tensor):
        return BatchedTensor(out, level)
    if isinstance(out, tuple):
        return type(out)(*(_wrap(o, level) for o in out)) if hasattr(out, "_fields") else \
            tuple(_wrap(o, level) for o in out)
    return out


# ---- the fallback: once per example ----------------------------------------------------------
_fallbacks = []  # the Counters of record_fallbacks() blocks now open
_warned = set()


@contextlib.contextmanager
def record_fallbacks():
    """Count the op calls vmap ran once per example (no batching rule) in this block:
    `with gpuad.func.record_fallbacks() as counts: ...`, then counts["op"] is how often."""
    counts = collections.Counter()
    _fallbacks.append(counts)
    try:
        yield counts
    finally:
        _fallbacks.remove(counts)


def _note_fallback(name, size):
    for counts in _fallbacks:
        counts[name] += 1
    if autograd.is_debug_enabled() and name not in _warned:
        _warned.add(name)
        warnings.warn(f"vmap: {name.lstrip('_')} has no batching rule, so it ran once per "
                      f"example ({size} calls) and the results were stacked; this is correct "
                      f"but slow", stacklevel=4)


def _example(value, level, i):
    if isinstance(value, BatchedTensor) and value._vlevel is level:
        return value._phys[i]
    if type(value) in (list, tuple):
        return type(value)(_example(v, level, i) for v in value)
    return value


def _per_example(name, call, level, args, kwargs):
    _note_fallback(name, level.size)
    if not level.size:
        raise RuntimeError(f"vmap: {name.lstrip('_')} has no batching rule, and vmap runs such "
                           f"ops once per example, which an empty batch cannot do")
    results = [call(*_example(args, level, i), **{k: _example(v, level, i)
                                                   for k, v in kwargs.items()})
               for i in range(level.size)]
    return _wrap(_stacked(results, name), level)


def _stacked(results, name):
    first = results[0]
    if isinstance(first, Tensor):
        return ops.stack(results)
    if isinstance(first, tuple):
        fields = [_stacked(list(field), name) for field in zip(*results)]
        return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)
    raise TypeError(f"vmap: {name.lstrip('_')} returned {type(first).__name__}, not a Tensor, "
                    f"when run per example")


# ---- randomness --------------------------------------------------------------------------------
def _randomness(name, shape, draw, requires_grad):
    levels = active_levels()
    if not levels:
        return None  # another thread's vmap
    if any(level.randomness == "error" for level in levels):
        raise RuntimeError("vmap: called random operation while in randomness error mode. Please "
                           "either use the 'same' or 'different' randomness flags on vmap or "
                           "perform the randomness operation out of vmap")
    different = [level for level in levels if level.randomness == "different"]
    if not different:
        return None  # 'same': one draw that every example sees
    if draw is None:
        raise NotImplementedError(f"vmap: {name} cannot draw different values per example; with "
                                  f"randomness='different' draw with rand, randn, randint or "
                                  f"their _like forms (e.g. mean + std * gpuad.randn_like(mean))")
    out = Tensor(draw(tuple(level.size for level in different) + tuple(shape)),
                 requires_grad=requires_grad)
    for level in different:
        out = BatchedTensor(out, level)
    return out


# ---- between the batch and the examples --------------------------------------------------------
def _moved(x, source, target):
    """x with dim `source` moved to `target` (both non-negative)."""
    if source == target:
        return x
    dims = [d for d in range(x.ndim) if d != source]
    dims.insert(target, source)
    return ops.permute(x, tuple(dims))


def to_levels(x, levels):
    """x as a plain Tensor batched at each of `levels` (outermost first): shape (sizes...,
    *x.shape); a tensor that does not differ along some level is expanded along it."""
    present, t = [], x
    while isinstance(t, BatchedTensor):
        present.append(t._vlevel)
        t = t._phys
    present.reverse()  # the batch dims of the plain tensor, outermost first
    for k, level in enumerate(levels):
        if k >= len(present) or present[k] is not level:
            t = ops.unsqueeze(t, k)
            t = ops.expand(t, tuple(t.shape[:k]) + (level.size,) + tuple(t.shape[k + 1:]))
            present.insert(k, level)
    return t


def wrap_levels(t, levels):
    """The inverse of to_levels: a plain tensor batched at `levels` seen as one example."""
    for level in levels:
        t = BatchedTensor(t, level)
    return t


def unwrapped(x):
    """The plain tensor under any BatchedTensor wrappers."""
    while isinstance(x, BatchedTensor):
        x = x._phys
    return x


# ---- pytrees of tuples, lists and dicts ------------------------------------------------------
def tree_leaves(tree):
    """The leaves of a tree of tuples, lists and dicts, in order."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in tree_leaves(item)]
    return [tree]


def tree_rebuild(tree, leaves):
    """tree with its leaves replaced, in order, from the iterator `leaves`."""
    if isinstance(tree, tuple):
        items = [tree_rebuild(item, leaves) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    if isinstance(tree, list):
        return [tree_rebuild(item, leaves) for item in tree]
    if isinstance(tree, dict):
        return {k: tree_rebuild(v, leaves) for k, v in tree.items()}
    return next(leaves)


def _broadcast(dims, tree):
    """One dim per leaf of tree, an int or None broadcasting over a whole subtree; None when
    the structures differ."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(tree_leaves(tree))
    if isinstance(dims, (tuple, list)) and isinstance(tree, (tuple, list)) and \
            len(dims) == len(tree):
        parts = [_broadcast(d, t) for d, t in zip(dims, tree)]
    elif isinstance(dims, dict) and isinstance(tree, dict) and dims.keys() == tree.keys():
        parts = [_broadcast(dims[k], tree[k]) for k in tree]
    else:
        return None
    return None if None in parts else [d for part in parts for d in part]


def _structure(tree):
    if isinstance(tree, (tuple, list)):
        inner = ", ".join(_structure(t) for t in tree)
        return f"({inner},)" if isinstance(tree, tuple) else f"[{inner}]"
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_structure(v)}" for k, v in tree.items()) + "}"
    return "*"


def _name(func):
    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func)}, ...)"
    return repr(func)


def _inputs(func, in_dims, args):
    """(batch size, one in_dim per leaf of args (non-negative or None), the leaves)."""
    head = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"{head}: expected `in_dims` to be int or a (potentially nested) tuple "
                         f"matching the structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add "
                         f"inputs, or you are trying to vmap over a function with no inputs. The "
                         f"latter is unsupported.")
    leaves, dims = tree_leaves(args), _broadcast(in_dims, args)
    if dims is None:
        raise ValueError(f"{head}: in_dims is not compatible with the structure of `inputs`. "
                         f"in_dims has structure {_structure(in_dims)} but inputs has structure "
                         f"{_structure(args)}.")
    for k, (arg, dim) in enumerate(zip(leaves, dims)):
        if dim is None:
            continue
        if not isinstance(dim, int):
            raise ValueError(f"{head}: Got in_dim={dim} for an input but in_dim must be either "
                             f"an integer dimension or None.")
        if not isinstance(arg, Tensor):
            raise ValueError(f"{head}: Got in_dim={dim} for an input but the input is of type "
                             f"{type(arg)}. We cannot vmap over non-Tensor arguments, please use "
                             f"None as the respective in_dim")
        if not -arg.ndim <= dim < arg.ndim:
            raise ValueError(f"{head}: Got in_dim={dim} for some input, but that input is a "
                             f"Tensor of dimensionality {arg.ndim} so expected in_dim to satisfy "
                             f"-{arg.ndim} <= in_dim < {arg.ndim}.")
        dims[k] = dim % arg.ndim
    sizes = [arg.shape[dim] for arg, dim in zip(leaves, dims) if dim is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0], dims, leaves


def _out_dims(out, out_dims):
    """One out_dim per output leaf (a lone Tensor also takes a 1-tuple, as torch's), or None."""
    if isinstance(out, Tensor):
        return ([out_dims] if out_dims is None or isinstance(out_dims, int) else
                list(out_dims) if isinstance(out_dims, tuple) and len(out_dims) == 1 else None)
    return _broadcast(out_dims, out)


def _outputs(func, out, out_dims, level):
    leaves, dims = tree_leaves(out), _out_dims(out, out_dims)
    if dims is None:
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                         f"not compatible with the structure of `outputs`. out_dims has structure "
                         f"{_structure(out_dims)} but outputs has structure {_structure(out)}.")
    name = _name(func)
    results = []
    for o, dim in zip(leaves, dims):
        mine = isinstance(o, BatchedTensor) and o._vlevel is level
        if dim is None:
            if mine:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                                 f"when out_dim is None")
            results.append(o)
            continue
        if not isinstance(o, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(o)}. Did you mean to set out_dims= to None for output?")
        batch = batching.front(o, level)
        n = batch.ndim
        if not -n <= dim < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, "
                             f"{n - 1}], but got {dim})")
        results.append(_moved(batch, 0, dim % n))
    return tree_rebuild(out, iter(results))


def _check_out_dims(out_dims, func):
    for dim in tree_leaves(out_dims):
        if dim is not None and not isinstance(dim, int):
            raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be "
                             f"an int, None or a python collection of ints representing where in "
                             f"the outputs the vmapped dimension should appear.")


def _run(func, size, dims, leaves, args, kwargs, out_dims, randomness):
    with _entered(size, randomness) as level:
        batched = [x if d is None else BatchedTensor(_moved(x, d, 0), level)
                   for x, d in zip(leaves, dims)]
        out = func(*tree_rebuild(args, iter(batched)), **kwargs)
        return _outputs(func, out, out_dims, level)


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """func of one example as a function of a batch, like torch.func.vmap: in_dims says which dim
    of each input (an int for all, or a tuple mirroring the arguments, None for inputs shared by
    every example) is the batch, out_dims where the batch dim goes in each output. Inside func
    every tensor looks like one example; ops run once on the whole batch by their batching
    rules, and ops without one once per example (record_fallbacks() tells which). randomness:
    'error' (random draws raise), 'same' (every example sees one draw) or 'different' (rand,
    randn, randint and their _like forms draw per example). chunk_size runs the batch that many
    examples at a time. Nests, and composes with grad, vjp, jacrev and functional_call."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    _check_out_dims(out_dims, func)

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        size, dims, leaves = _inputs(func, in_dims, args)
        if chunk_size is None or chunk_size >= size:
            return _run(func, size, dims, leaves, args, kwargs, out_dims, randomness)
        pieces = []
        for start in range(0, size, chunk_size):
            n = min(chunk_size, size - start)
            chunk = [x if d is None else ops.getitem(x, (slice(None),) * d +
                                                     (slice(start, start + n),))
                     for x, d in zip(leaves, dims)]
            pieces.append(_run(func, n, dims, chunk, args, kwargs, out_dims, randomness))
        flat = [tree_leaves(p) for p in pieces]
        joined = [part[0] if d is None else ops.cat(list(part), d)
                  for part, d in zip(zip(*flat), _out_dims(pieces[0], out_dims))]
        return tree_rebuild(pieces[0], iter(joined))
    return wrapped
