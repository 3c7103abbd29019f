"""Indexing ops: getitem, gather and scatter, the index_* and masked_* ops, nonzero (torch's names).

Every index becomes raw arrays on the tensor's device once, in `raw_index`, and is put in torch's
order (a Python int among index arrays selects first, see `_Split`). One primitive writes:
`_index_put`, x with values put (or added) at a raw index; its gradient is a getitem and a put of
zeros, and getitem's is a scatter-add, so repeated indices accumulate, to every order.
Ops whose result size depends on the data (nonzero, masked_select, masked_scatter, tensor
repeats) read it on the host: on CUDA that synchronises the device with the host, as in torch.
"""
import numbers

import numpy

from .. import backend
from ..backend import xp_of
from ..tensor import Tensor
from . import elementwise as _elementwise
from . import primitive, public
from . import shape as _shape
from .shape import check_not_0d, expand, is_int_array, reshape, wrap_dim


# ---- raw indices in torch's order ---------------------------------------------------------------
def raw_index(index, data, op="indexing", host_tensors=False):
    """`index` (ints, slices, None, Ellipsis, Tensors, lists, arrays, or a tuple of them) in the raw
    form that indexes `data` on its device: Tensors give their arrays, lists and host arrays are
    copied to the device. A Tensor on another device is an error, as in PyTorch, except, with
    `host_tensors`, one on the CPU, which is copied too: torch's indexing and index_put take
    indices on the CPU or on the indexed tensor's device (`x[torch.arange(n), y]` on CUDA)."""
    if type(index) is tuple:
        return tuple(_raw_item(item, data, op, host_tensors) for item in index)
    return _raw_item(index, data, op, host_tensors)


def _raw_item(item, data, op, host_tensors=False):
    if isinstance(item, Tensor):
        device = backend.device_of(data)
        if item.device != device and host_tensors and item.device == backend.CPU:
            return backend.to_device(item.array, device)
        if item.device != device:
            raise RuntimeError(f"{op}: indices are on {item.device} but the indexed tensor is on "
                               f"{device}; move them with .to('{device}') first")
        return item.array
    if isinstance(item, (list, tuple)):
        array = backend.asarray(item, dev=backend.device_of(data))
        return array if array.size else array.astype(backend.int64)  # [] indexes nothing
    if backend.is_array(item) and (type(item) is not type(data)
                                   or backend.device_of(item) != backend.device_of(data)):
        return backend.to_device(item, backend.device_of(data))
    return item


def _width(item):
    """How many dims of the indexed array an index item consumes (None for Ellipsis)."""
    if item is Ellipsis:
        return None
    if item is None or isinstance(item, (bool, numpy.bool_)):
        return 0
    if backend.is_array(item) and item.dtype.kind == "b":
        return item.ndim
    return 1


def _is_int(item):
    """A Python or numpy integer, or a 0-d integer array: torch selects with it (a basic index)."""
    if isinstance(item, numbers.Integral):
        return not isinstance(item, (bool, numpy.bool_))
    return backend.is_array(item) and item.ndim == 0 and item.dtype.kind in "iu"


def _is_advanced(item):
    return isinstance(item, (bool, numpy.bool_)) or (backend.is_array(item) and (
        item.ndim > 0 or item.dtype.kind == "b"))


class _Split(tuple):
    """(ints, rest): an index mixing ints with index arrays, in torch's order. torch selects with
    the ints first and indexes what is left with the rest, where numpy would broadcast the ints
    with the arrays (and, when a slice separates them, move the result's dims to the front)."""
    __slots__ = ()


def torch_order(index):
    """A raw index that numpy reads as torch does: unchanged, or a _Split."""
    if type(index) is not tuple or not (any(map(_is_advanced, index)) and any(map(_is_int, index))):
        return index
    first, rest = [], []
    for item in index:
        if _is_int(item):
            first.append(int(item))  # a 0-d index tensor is read on the host, as torch reads it
        else:
            width = _width(item)
            first.extend([Ellipsis] if width is None else [slice(None)] * width)
            rest.append(item)
    return _Split((tuple(first), tuple(rest)))


def _check_indices(index, shape, op="getitem"):
    """The IndexError for an int or integer array outside its dim (CuPy would wrap), or a boolean
    mask that does not match the dims it covers."""
    items = index if type(index) is tuple else (index,)
    axis = 0
    for k, item in enumerate(items):
        if type(item) is slice:
            axis += 1
        elif item is Ellipsis:
            axis = len(shape) - sum(w for w in map(_width, items[k + 1:]) if w is not None)
        elif type(item) is int or is_int_array(item) or (isinstance(item, numbers.Integral)
                                                         and not isinstance(item, bool)):
            if axis < len(shape):
                _check_range(op, item, shape[axis], axis, shape)
            axis += 1
        else:
            width = _width(item)
            if (width and backend.is_array(item) and item.dtype.kind == "b"
                    and tuple(item.shape) != tuple(shape[axis:axis + width])):
                dims = f"dim {axis}" if width == 1 else f"dims {axis}..{axis + width - 1}"
                raise IndexError(f"{op}: boolean mask of shape {tuple(item.shape)} does not "
                                 f"match {dims} of the indexed tensor (tensor shape "
                                 f"{tuple(shape)})")
            axis += width


def _take(x, index):
    """x[index] for a raw index in torch's order."""
    if type(index) is _Split:
        return _shape._getitem(_shape._getitem(x, index=index[0]), index=index[1])
    return _shape._getitem(x, index=index)


def _target(array, index):
    """(where to write, the index there): a _Split's ints select a view to write through."""
    if type(index) is _Split:
        return array[index[0]], index[1]
    return array, index


@public
def getitem(x, index):
    """x[index] with PyTorch's rules: ints, slices with any step, None, Ellipsis, integer and
    boolean Tensors, arrays or lists, and tuples mixing them (an int among index arrays selects
    first, as in torch, not as in numpy). Basic indexing gives a view; repeated integer indices
    accumulate in the gradient."""
    index = raw_index(index, x.array, "getitem", host_tensors=True)
    _check_indices(index, x.shape)
    try:
        return _take(x, torch_order(index))
    except IndexError as e:  # the array library's words, without _with_context's own framing
        message = str(e).removeprefix("getitem: ")
        message = message.rpartition(" (inputs of shapes ")[0] or message
        raise IndexError(f"getitem: {message} (tensor shape {x.shape})") from None


# ---- writing at an index: _index_put, and Tensor.__setitem__ ------------------------------------
def _index_put_vjp(g, y, x, values, *, index, accumulate=False):
    gx = g if accumulate else _index_put(g, 0, index=index)
    if not getattr(values, "requires_grad", False):
        return gx, None
    gv = _take(g, index)
    lead = len(values.shape) - gv.ndim  # values may carry extra leading 1s, as numpy allows
    return gx, reshape(gv, shape=(1,) * lead + tuple(gv.shape)) if lead > 0 else gv


@primitive(vjp=_index_put_vjp, name="_index_put")
def _index_put(x, values, *, index, accumulate=False):
    """A copy of x with values (broadcast) written at the raw index, or added there with repeats
    accumulating when `accumulate`."""
    out = x.copy()
    target, index = _target(out, index)
    if accumulate:
        _shape.scatter_add_arrays(target, index, values)
    else:
        target[index] = values
    return out


def _dtype_error(op, x, values):
    return RuntimeError(f"{op}: index put requires the source and destination dtypes to match, "
                        f"got {x.dtype} for the destination and {values.dtype} for the source; "
                        f"convert the values first with .to({x.dtype})")


def setitem_index(x, index, value):
    """Tensor.__setitem__'s index: raw, checked like getitem's, in torch's order."""
    index = raw_index(index, x.array, "__setitem__", host_tensors=True)
    _check_indices(index, x.shape, "__setitem__")
    items = index if type(index) is tuple else (index,)
    if isinstance(value, Tensor) and value.dtype != x.dtype and any(map(_is_advanced, items)):
        raise _dtype_error("__setitem__", x, value)  # torch casts only for basic indices
    return torch_order(index)


def assign(array, index, value):
    """array[index] = value in place, for an index from setitem_index."""
    target, index = _target(array, index)
    target[index] = value


def _source(op, x, source, name="source"):
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(source).__name__}")
    if source.dtype != x.dtype:
        raise RuntimeError(f"{op}: self ({x.dtype}) and {name} ({source.dtype}) must have the "
                           f"same dtype; convert {name} with .to({x.dtype})")
    return source


@public
def index_put(input, indices, values, accumulate=False):
    """A copy of input with input[indices] = values (added, repeats accumulating, when
    `accumulate`), like torch.index_put: indices is a tuple of integer or boolean tensors."""
    if not isinstance(indices, (tuple, list)) or any(i is None for i in indices):
        raise TypeError(f"index_put: indices must be a tuple of tensors, got {indices!r:.60}")
    index = raw_index(tuple(indices), input.array, "index_put", host_tensors=True)
    for item in index:
        if not backend.is_array(item) or item.dtype.kind not in "iub":
            raise TypeError(f"index_put: indices must be integer or boolean tensors, got "
                            f"{getattr(item, 'dtype', type(item).__name__)}")
    _check_indices(index, input.shape, "index_put")
    return _index_put(input, _source("index_put", input, values, "values"), index=index,
                      accumulate=bool(accumulate))


# ---- integer indices along a dim: gather, index_select, index_add/copy/fill ---------------------
def _check_range(op, index, n, dim, shape, negative=True, error=IndexError):
    """Raise torch's error (an IndexError, or what `error` says) for indices outside [-n, n)
    ([0, n) without `negative`): CuPy would wrap them silently (see backend.indices_outside for
    what this costs on CUDA)."""
    lo = -n if negative else 0

    def out_of_range(index):
        return error(f"{op}: index {index} is out of range for dim {dim} with size {n} "
                     f"(tensor shape {tuple(shape)})")
    if not isinstance(index, numbers.Integral):
        backend.check_indices(index, lo, n, out_of_range)
    elif not lo <= index < n:
        raise out_of_range(index)


def _index_array(op, index, data, error=TypeError):
    index = raw_index(index, data, op)
    if not is_int_array(index):
        raise error(f"{op}: expected an integer index tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    return index


def _along(index, dim):
    """torch.gather's full index: `index` in dim, broadcast aranges in the other dims."""
    xp, n = xp_of(index), index.ndim
    return tuple(index if d == dim else xp.arange(s).reshape((s,) + (1,) * (n - d - 1))
                 for d, s in enumerate(index.shape))


@primitive(vjp=lambda g, y, x, index, *, dim: (_scatter_add(g, index, dim=dim, shape=x.shape),
                                               None), name="_gather")
def _gather(x, index, *, dim):
    return x[_along(index, dim)]


@primitive(vjp=lambda g, y, src, index, *, dim, shape: (_gather(g, index, dim=dim), None),
           name="_scatter_add")
def _scatter_add(src, index, *, dim, shape):
    """zeros(shape) with src (shaped like index) added at index along dim, repeats accumulating."""
    return backend.scatter_add(xp_of(src).zeros(shape, dtype=src.dtype), _along(index, dim), src)


@public
def gather(x, dim, index):
    """out[i][j] = x[index[i][j]][j] for dim=0 (and so on), like torch.gather: index has x's number
    of dims and is no larger than x outside dim; repeated indices accumulate in the gradient."""
    check_not_0d("gather", x)
    index = _index_array("gather", index, x.array)
    d = wrap_dim("gather", dim, x.shape)
    if index.ndim != x.ndim or any(i > n for k, (i, n) in enumerate(zip(index.shape, x.shape))
                                   if k != d):
        raise RuntimeError(f"gather: index of shape {index.shape} must have the dims of the input "
                           f"(shape {x.shape}) and be no larger outside dim {d}")
    _check_range("gather", index, x.shape[d], d, x.shape, negative=False)
    return _gather(x, index, dim=d)


@public
def take_along_dim(input, indices, dim=None):
    """input's entries at `indices` along dim (numpy's take_along_axis), like torch.take_along_dim:
    input and indices broadcast outside dim; dim=None indexes the flattened input. Unlike torch's
    CPU kernel, indices outside [0, size) raise instead of wrapping."""
    index = _index_array("take_along_dim", indices, input.array, RuntimeError)
    if dim is None:
        _check_range("take_along_dim", index, input.numel(), 0, (input.numel(),), False,
                     RuntimeError)
        return gather(reshape(input, shape=(-1,)), 0, index.reshape(-1))
    if index.dtype != backend.int64:
        raise RuntimeError(f"take_along_dim: dtype of indices should be int64, got {index.dtype}; "
                           f"convert them with indices.long()")
    d = wrap_dim("take_along_dim", dim, input.shape)
    _check_range("take_along_dim", index, input.shape[d], d, input.shape, False, RuntimeError)
    if index.ndim != input.ndim:
        raise RuntimeError(f"take_along_dim: input (shape {input.shape}) and indices (shape "
                           f"{index.shape}) should have the same number of dims")
    try:
        shape = numpy.broadcast_shapes(*((s[:d] + (1,) + s[d + 1:]) for s in
                                         (tuple(input.shape), tuple(index.shape))))
    except ValueError:
        raise RuntimeError(f"take_along_dim: input (shape {input.shape}) and indices (shape "
                           f"{index.shape}) must broadcast outside dim {d}") from None
    x = expand(input, shape=shape[:d] + (input.shape[d],) + shape[d + 1:])
    index = xp_of(index).broadcast_to(index, shape[:d] + (index.shape[d],) + shape[d + 1:])
    return gather(x, d, index)


# torch checks the index_* ops each its own way: (negative indices allowed, int32 indices allowed,
# and the errors for an index out of range, of more than 1 dim, not of integers, a source's shape)
_INDEX_RULES = {"index_add": (False, True, RuntimeError, IndexError, RuntimeError, RuntimeError),
                "index_copy": (False, False, IndexError, IndexError, RuntimeError, IndexError),
                "index_fill": (True, False, IndexError, RuntimeError, IndexError, None)}


def _dim_index(op, x, dim, index):
    """(dim, 1-D raw index) for the index_* ops: a 0-d or 1-d integer index, in range."""
    negative, int32, range_error, dims_error, dtype_error, _ = _INDEX_RULES[op]
    check_not_0d(op, x)
    index = _index_array(op, index, x.array, dtype_error)
    if not int32 and index.dtype != backend.int64:
        raise dtype_error(f"{op}: expected an int64 index, got {index.dtype}; convert it with "
                          f"index.long()")
    if index.ndim > 1:
        raise dims_error(f"{op}: index must be a 0-d or 1-d integer tensor, got shape "
                         f"{index.shape}")
    d = wrap_dim(op, dim, x.shape)
    _check_range(op, index, x.shape[d], d, x.shape, negative, range_error)
    return d, index.reshape(-1)


def _check_source(op, x, d, index, source):
    _source(op, x, source)
    want = tuple(x.shape[:d]) + (index.size,) + tuple(x.shape[d + 1:])
    if tuple(source.shape) != want:
        raise _INDEX_RULES[op][5](f"{op}: source of shape {tuple(source.shape)} must have shape "
                                  f"{want}: the tensor's (shape {tuple(x.shape)}) with dim {d} "
                                  f"of the index's size {index.size}")


@public
def index_select(x, dim, index):
    """The entries of x at the 1-D integer `index` along dim, like torch.index_select."""
    check_not_0d("index_select", x)
    index = _index_array("index_select", index, x.array)
    if index.ndim > 1:
        raise RuntimeError(f"index_select: index must be 1-D, got shape {index.shape}")
    d = wrap_dim("index_select", dim, x.shape)
    _check_range("index_select", index, x.shape[d], d, x.shape, negative=False)
    return _shape._getitem(x, index=(slice(None),) * d + (index.reshape(-1),))


@public
def index_add(input, dim, index, source, *, alpha=1):
    """A copy of input with alpha * source added at `index` along dim, repeats accumulating, like
    torch.index_add."""
    d, index = _dim_index("index_add", input, dim, index)
    _check_source("index_add", input, d, index, source)
    source = source if alpha == 1 else source * alpha
    return _index_put(input, source, index=(slice(None),) * d + (index,), accumulate=True)


@public
def index_copy(input, dim, index, source):
    """A copy of input with source's slices written at `index` along dim, like torch.index_copy
    (with a repeated index, one of the slices wins)."""
    d, index = _dim_index("index_copy", input, dim, index)
    _check_source("index_copy", input, d, index, source)
    return _index_put(input, source, index=(slice(None),) * d + (index,))


@public
def index_fill(input, dim, index, value):
    """A copy of input with `value` (a number or a 0-d tensor) at `index` along dim, like
    torch.index_fill; a tensor value gets the gradient of every filled entry once."""
    d, index = _dim_index("index_fill", input, dim, index)
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                           f"{value.shape}")
    mask = backend.create(input.device, "zeros", input.shape[d], dtype=backend.bool_)
    mask[index] = True
    mask = Tensor(mask.reshape((-1,) + (1,) * (input.ndim - d - 1)))
    out = _elementwise.where(mask, value, input)
    return out if out.dtype == input.dtype else out.to(input.dtype)


@primitive()
def one_hot(x, *, num_classes=-1):
    """int64 one-hot encoding of class indices in a new last dim, like
    torch.nn.functional.one_hot; num_classes=-1 means max(x) + 1, which the host must read. With
    num_classes given, the values are checked as indices are (backend.check_indices): on the CPU
    always, and gpuad.compile replays the check; on a device, as in torch's CUDA one_hot, only
    with backend.CHECK_DEVICE_INDICES (a value outside the classes gives a row of zeros). No
    gradient."""
    if x.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got {x.dtype}")
    n = num_classes

    def outside(value):
        return RuntimeError(f"one_hot: class value {value} is outside [0, {n}) "
                            f"(num_classes={num_classes}); class values must be non-negative "
                            f"and smaller than num_classes")
    if num_classes == -1:
        if not x.size:
            raise RuntimeError("one_hot: can not infer the number of classes from an empty "
                               "tensor; pass num_classes= (as torch requires)")
        n, least = int(x.max()) + 1, int(x.min())  # read on the host anyway: check everywhere
        if least < 0:
            raise outside(least)
    else:
        backend.check_indices(x, 0, n, outside)
    return (x[..., None] == xp_of(x).arange(n, dtype=x.dtype)).astype(backend.int64)


# ---- scatter, scatter_add, scatter_reduce -------------------------------------------------------
def _scatter_index(op, x, dim, index, src):
    """(dim, raw index) for the scatter ops, checked as torch checks them."""
    index = _index_array(op, index, x.array, RuntimeError)
    d = wrap_dim(op, dim, x.shape)
    shapes = [tuple(x.shape)] + ([] if src is None else [tuple(src.shape)])
    if (any(len(s) != index.ndim for s in shapes)
            or any(i > n for k, (i, n) in enumerate(zip(index.shape, x.shape)) if k != d)
            or (src is not None and any(i > n for i, n in zip(index.shape, src.shape)))):
        raise RuntimeError(f"{op}: index of shape {index.shape} must have the dims of self (shape "
                           f"{tuple(x.shape)})" + ("" if src is None else f" and src (shape "
                                                   f"{tuple(src.shape)})") +
                           f", be no larger than self outside dim {d}"
                           + ("" if src is None else " and no larger than src"))
    _check_range(op, index, x.shape[d], d, x.shape, False, RuntimeError)
    return d, index


def _leading(src, index):
    """src's leading block shaped like index: all that torch's scatters read of src."""
    if tuple(src.shape) == tuple(index.shape):
        return src
    return _shape._getitem(src, index=tuple(slice(0, n) for n in index.shape))


@public
def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of input with src[i][j] written at [index[i][j]][j] for dim=0 (and so on), or the
    number `value` at every index, like torch.scatter (with a repeated index, one write wins).
    reduce='add' or 'multiply' (torch's deprecated form) combines instead and, as in torch, has
    no gradient."""
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src  # scatter(input, dim, index, 1.5): torch's value overload
    if src is None and value is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    d, index = _scatter_index("scatter", input, dim, index, src)
    if src is not None:
        src = _leading(_source("scatter", input, src, "src"), index)
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}; "
                               f"scatter_reduce has 'sum', 'prod', 'mean', 'amax' and 'amin'")
        if src is None:
            src = Tensor(backend.create(input.device, "full", index.shape, value,
                                        dtype=input.dtype))
        return _scatter_reduce(input, src, index=index, dim=d, reduce=reduce)
    return _index_put(input, value if src is None else src, index=_along(index, d))


@public
def scatter_add(input, dim, index, src):
    """A copy of input with src[i][j] added at [index[i][j]][j] for dim=0 (and so on), repeats
    accumulating, like torch.scatter_add."""
    d, index = _scatter_index("scatter_add", input, dim, index, src)
    src = _leading(_source("scatter_add", input, src, "src"), index)
    return _index_put(input, src, index=_along(index, d), accumulate=True)


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


@public
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """A copy of input where each entry at [index[i][j]][j] (dim=0, and so on) is reduced with the
    src entries scattered to it: 'sum', 'prod', 'mean', 'amax' or 'amin', counting input's own
    entry unless include_self=False, like torch.scatter_reduce (with its gradients: amax/amin
    share the gradient evenly among ties; integer means round down)."""
    if reduce not in _REDUCTIONS:
        raise RuntimeError(f"scatter_reduce: reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    d, index = _scatter_index("scatter_reduce", input, dim, index, src)
    src = _leading(_source("scatter_reduce", input, src, "src"), index)
    return _scatter_reduce(input, src, index=index, dim=d, reduce=reduce,
                           include_self=bool(include_self))


def _counts(x, along, include_self):
    """How many values each entry of a mean reduces (at least 1): a constant."""
    n = backend.create(x.device, "full", x.shape, int(include_self), dtype=x.dtype)
    return Tensor(xp_of(n).maximum(backend.scatter_add(n, along, 1), 1))


def _scatter_reduce_vjp(g, y, x, src, *, index, dim, reduce, include_self=True):
    """torch's scatter_reduce_backward, written in gpuad ops."""
    if reduce in ("add", "multiply"):
        raise RuntimeError("scatter: the gradient of scatter with reduce='add' or 'multiply' is "
                           "not implemented (torch has none either); use scatter_add or "
                           "scatter_reduce(..., reduce='sum' or 'prod') instead")
    along = _along(index, dim)

    def take(t):
        return _shape._getitem(t, index=along)

    def spread(base, t):
        return _index_put(base, t, index=along, accumulate=True)

    if reduce == "sum":
        gx, gs = g, take(g)
    elif reduce == "mean":
        gx = g / _counts(x, along, include_self)
        gs = take(gx)
    elif reduce in ("amax", "amin"):  # ties (self's entry among them) share the gradient evenly
        self_is = (x.detach() == y.detach()).to(g.dtype)
        src_is = (src.detach() == take(y.detach())).to(g.dtype)
        shared = g / spread(self_is, src_is)
        gx, gs = shared * self_is, take(shared) * src_is
    else:  # prod: products of the other factors, with zeros handled exactly
        where = _elementwise.where
        safe_self = where(x == 0, 1.0, x)
        gx = g * _scatter_reduce(safe_self, src, index=index, dim=dim, reduce="prod",
                                 include_self=include_self) / safe_self
        zero = src == 0
        zeros = take(spread(Tensor(xp_of(x.array).zeros_like(x.array)), zero.to(x.dtype)))
        lone = zero & (zeros == 1)
        without = _scatter_reduce(x, where(lone, 1.0, src), index=index, dim=dim, reduce="prod",
                                  include_self=include_self)
        gs = where(lone, take(g * without), take(g * y) / where(zero, 1.0, src))
    if not include_self:
        gx = _index_put(gx, 0, index=along)
    return gx, gs


@primitive(vjp=_scatter_reduce_vjp, name="_scatter_reduce")
def _scatter_reduce(x, src, *, index, dim, reduce, include_self=True):
    """x with src (shaped like the raw index) reduced into it along dim; reduce 'add' and
    'multiply' are scatter's sum and prod without a gradient."""
    reduce = {"add": "sum", "multiply": "prod"}.get(reduce, reduce)
    along = _along(index, dim)
    out = x.copy()
    if not include_self:  # start each reduced entry from src itself, or the reduction's identity
        out[along] = src if reduce in ("amax", "amin") else int(reduce == "prod")
    backend.scatter_reduce(out, along, src, "sum" if reduce == "mean" else reduce)
    if reduce != "mean":
        return out
    count = xp_of(out).full(out.shape, int(include_self), dtype=out.dtype)
    count = xp_of(out).maximum(backend.scatter_add(count, along, 1), 1)
    return out // count if out.dtype.kind in "iub" else out / count  # torch floors integer means


# ---- boolean masks and the indices of nonzeros (sizes that depend on the data) ------------------
def _mask(op, mask, x):
    mask = raw_index(mask, x.array, op)
    if not backend.is_array(mask) or mask.dtype != backend.bool_:
        raise RuntimeError(f"{op}: expected a boolean mask, got "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        shape = numpy.broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the mask of shape {tuple(mask.shape)} does not broadcast with "
                           f"the tensor of shape {tuple(x.shape)}") from None
    return xp_of(mask).broadcast_to(mask, shape), shape


@public
def masked_select(input, mask):
    """The entries of input where the boolean mask is true, as a 1-D tensor (input and mask
    broadcast), like torch.masked_select. Its size depends on the mask: on CUDA the host waits
    for the device."""
    mask, shape = _mask("masked_select", mask, input)
    return _shape._getitem(expand(input, shape=shape), index=mask)


@public
def masked_scatter(input, mask, source):
    """A copy of input (broadcast with mask) whose entries where mask is true take source's first
    entries in order, like torch.masked_scatter. Counting the mask waits for the device on CUDA."""
    mask, shape = _mask("masked_scatter", mask, input)
    _source("masked_scatter", input, source)
    count = int(mask.sum())
    if count > source.numel():
        raise RuntimeError(f"masked_scatter: the mask selects {count} entries but source (shape "
                           f"{tuple(source.shape)}) has only {source.numel()}")
    values = _shape._getitem(reshape(source, shape=(-1,)), index=slice(0, count))
    return _index_put(expand(input, shape=shape), values, index=mask)


@primitive()
def argwhere(input):
    """The indices of input's nonzero entries, one row each (int64, shape (n, ndim)), like
    torch.argwhere. n depends on the data: on CUDA the host waits for the device."""
    xp = xp_of(input)
    if input.ndim == 0:
        return xp.argwhere(input.reshape(1))[:, :0].astype(backend.int64)
    return xp.argwhere(input).astype(backend.int64, copy=False)


@public
def nonzero(input, *, as_tuple=False):
    """torch.nonzero: argwhere(input), or with as_tuple=True one 1-D index tensor per dim (a 0-d
    input counts as 1-d). Its size depends on the data: on CUDA the host waits for the device."""
    if not as_tuple:
        return argwhere(input)
    found = argwhere(reshape(input, shape=(1,)) if input.ndim == 0 else input)
    return tuple(_shape._getitem(found, index=(slice(None), d)) for d in range(found.shape[1]))


@public
def where(condition, input=None, other=None):
    """torch.where: input where condition is true, else other (all three broadcast); with the
    condition alone, nonzero(condition, as_tuple=True), whose size depends on the data (on CUDA
    the host waits for the device). The three-argument form is elementwise's primitive."""
    if input is None and other is None:
        return nonzero(condition if isinstance(condition, Tensor) else Tensor(
            backend.asarray(condition)), as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (where(condition) is "
                        "nonzero(condition, as_tuple=True))")
    return _elementwise.where(condition, input, other)
