"""Shape ops: views, joins, slices, pads, index ops (reshape, permute, expand, cat, getitem, ...).

A few primitives carry everything: reshape, expand and permute are views; `_getitem` and `_embed`
(write into a fresh filled array) are each other's gradient, as are `_gather` and `_scatter_add`, so
slicing, flipping, padding, splitting and integer indexing are differentiable to every order.
Indices become raw arrays on the tensor's device once, in `raw_index`; forwards never see Tensors.
"""
import math
import numbers

import numpy

from .. import backend
from ..backend import xp_of
from ..tensor import Tensor
from . import primitive, public
from . import reduce as _reduce


def _dim(op, dim, shape, extra=0):
    """A dim in [-n, n) with n = len(shape) + extra (1 for a 0-d tensor), made non-negative."""
    n = max(len(shape) + extra, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of shape {tuple(shape)} "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return dim % n


def _dims(op, dims, shape):
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    out = tuple(_dim(op, d, shape) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dims {dims} name a dim more than once (tensor shape "
                           f"{tuple(shape)})")
    return out


def _at_least_1d(op, x):
    if x.ndim == 0:
        raise RuntimeError(f"{op}: expected a tensor with at least 1 dim, got a 0-d tensor; "
                           f"reshape it to (1,) first")


def _int_array(item):
    return backend.is_array(item) and item.dtype.kind in "iu"


# ---- views: reshape, expand, permute ------------------------------------------------------------
@primitive(vjp=lambda g, y, x, *, shape: (reshape(g, shape=x.shape),))
def reshape(x, *, shape):
    """x with a new shape of the same size, one entry may be -1 (inferred), like torch.reshape: a
    view when the memory layout allows, else a copy (Tensor.view too)."""
    try:
        return x.reshape(shape)
    except (ValueError, TypeError):
        raise RuntimeError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                           f"elements) into shape {shape}") from None


def _expanded(shape, target):
    target = (target,) if isinstance(target, numbers.Integral) else tuple(target)
    lead = len(target) - len(shape)
    if lead < 0:
        raise RuntimeError(f"expand: the target shape {target} has fewer dims than the tensor's "
                           f"shape {shape}")
    out = []
    for i, n in enumerate(target):
        if i < lead:
            if n < 0:
                raise RuntimeError(f"expand: -1 (or a negative size) is not allowed in the new "
                                   f"leading dim {i} of the target shape {target}")
        elif n == -1:
            n = shape[i - lead]
        elif n != shape[i - lead] and shape[i - lead] != 1:
            raise RuntimeError(f"expand: the expanded size {n} must match the existing size "
                               f"{shape[i - lead]} at non-singleton dim {i}; target shape "
                               f"{target}, tensor shape {shape}")
        out.append(n)
    return tuple(out)


@primitive(vjp=lambda g, y, x, *, shape: (_reduce.sum_to(g, shape=x.shape),))
def expand(x, *, shape):
    """x broadcast to `shape` without copying, like torch.Tensor.expand: -1 keeps a dim's size and
    extra sizes add leading dims."""
    return xp_of(x).broadcast_to(x, _expanded(x.shape, shape))


def _permutation(dims, shape):
    perm = tuple(_dim("permute", d, shape) for d in dims)
    if len(perm) != len(shape) or len(set(perm)) != len(perm):
        raise RuntimeError(f"permute: dims {tuple(dims)} is not a permutation of the {len(shape)} "
                           f"dims of a tensor of shape {shape}")
    return perm


def _permute_vjp(g, y, x, *, dims):
    perm = _permutation(dims, x.shape)
    return (permute(g, dims=tuple(sorted(range(len(perm)), key=perm.__getitem__))),)


@primitive(vjp=_permute_vjp)
def permute(x, *, dims):
    """x with its dims reordered (a view): dim i of the result is dim dims[i] of x, like torch."""
    return x.transpose(_permutation(dims, x.shape))


@public
def swapaxes(x, dim0, dim1):
    """x with dims dim0 and dim1 swapped (a view), like torch.swapaxes."""
    dims = list(range(x.ndim))
    a, b = _dim("swapaxes", dim0, x.shape), _dim("swapaxes", dim1, x.shape)
    if a != b:
        dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims=tuple(dims))


@public
def transpose(x, dim0, dim1):
    """torch.transpose: swap two dims (not numpy's reversal of all dims; that is x.T)."""
    return swapaxes(x, dim0, dim1)


# ---- composites over reshape and expand ---------------------------------------------------------
@public
def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one, like torch.flatten (a 0-d tensor becomes 1-d)."""
    shape = tuple(x.shape)
    s, e = _dim("flatten", start_dim, shape), _dim("flatten", end_dim, shape)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                           f"(tensor shape {shape})")
    return reshape(x, shape=shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


@public
def squeeze(x, dim=None):
    """x without its size-1 dims (all, or those among `dim`, an int or tuple); a named dim whose
    size is not 1 is left alone, like torch.squeeze."""
    shape = tuple(x.shape)
    dims = range(len(shape)) if dim is None else _dims("squeeze", dim, shape)
    return reshape(x, shape=tuple(n for i, n in enumerate(shape) if n != 1 or i not in dims))


@public
def unsqueeze(x, dim):
    """x with a size-1 dim inserted at `dim` (in [-ndim-1, ndim]), like torch.unsqueeze."""
    shape = tuple(x.shape)
    d = _dim("unsqueeze", dim, shape, extra=1)
    return reshape(x, shape=shape[:d] + (1,) + shape[d:])


@public
def broadcast_to(x, shape):
    """torch.broadcast_to: expand to `shape` (a view)."""
    return expand(x, shape=shape)


@public
def repeat(x, repeats):
    """torch.Tensor.repeat: x tiled `repeats` times along each dim, extra repeats adding leading
    dims (numpy.tile's result); len(repeats) must be at least x.ndim."""
    repeats = (repeats,) if isinstance(repeats, numbers.Integral) else tuple(repeats)
    lead = len(repeats) - x.ndim
    if lead < 0 or any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: repeats {repeats} must be non-negative and at least as many "
                           f"as the dims of the tensor (shape {tuple(x.shape)})")
    shape = (1,) * lead + tuple(x.shape)
    # interleave: (1, n0, 1, n1, ...) -> expand to (r0, n0, r1, n1, ...) -> (r0*n0, r1*n1, ...)
    spread = reshape(x, shape=tuple(v for n in shape for v in (1, n)))
    tiled = expand(spread, shape=tuple(v for r, n in zip(repeats, shape) for v in (r, n)))
    return reshape(tiled, shape=tuple(r * n for r, n in zip(repeats, shape)))


@public
def tile(x, dims):
    """torch.tile: like repeat, but fewer `dims` than x.ndim are padded with leading ones."""
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    return repeat(x, (1,) * (x.ndim - len(dims)) + dims)


# ---- slicing: _getitem and _embed are each other's gradient -------------------------------------
def _getitem_vjp(g, y, x, *, index):
    items = index if type(index) is tuple else (index,)
    return (_embed(g, index=index, shape=x.shape, accumulate=any(map(_int_array, items))),)


@primitive(vjp=_getitem_vjp, name="_getitem")
def _getitem(x, *, index):
    """x[index] for a raw index (see raw_index): basic indexing gives a view."""
    return x[index]


@primitive(vjp=lambda g, y, src, *, index, shape, value=0, accumulate=False:
           (_getitem(g, index=index),), name="_embed")
def _embed(src, *, index, shape, value=0, accumulate=False):
    """A new array of `shape` filled with `value`, with src written at the raw `index`, or added
    (so repeated integer indices accumulate) when `accumulate`."""
    out = xp_of(src).full(shape, value, dtype=src.dtype)
    if accumulate:
        return backend.scatter_add(out, index, src)
    out[index] = src
    return out


def _narrow(x, dim, start, length):
    return _getitem(x, index=(slice(None),) * dim + (slice(start, start + length),))


@public
def flip(x, dims):
    """x reversed along `dims` (an int or tuple), like torch.flip; a view here, not a copy."""
    flipped = _dims("flip", dims, x.shape)
    return _getitem(x, index=tuple(slice(None, None, -1) if d in flipped else slice(None)
                                   for d in range(x.ndim)))


@public
def split(x, split_size_or_sections, dim=0):
    """Views of x along dim, like torch.split: chunks of split_size (the last may be smaller), or
    of the listed sizes, which must add up to the dim's size. Returns a tuple."""
    _at_least_1d("split", x)
    d = _dim("split", dim, x.shape)
    n = x.shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        size = int(split_size_or_sections)
        if size < 0 or (size == 0 and n != 0):
            raise RuntimeError(f"split: split_size must be positive (0 only for an empty dim), "
                               f"got {size} for a dim of size {n}")
        count = max(-(-n // size), 1) if size else 1  # one (short) chunk at least, like torch
        sizes = [size] * (count - 1) + [n - size * (count - 1)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"split: sizes {sizes} must be non-negative and add up to {n}, the "
                               f"size of dim {d} of the tensor of shape {tuple(x.shape)}")
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return tuple(_narrow(x, d, start, size) for start, size in zip(starts, sizes))


@public
def chunk(x, chunks, dim=0):
    """x split into `chunks` views of ceil(size / chunks) along dim, like torch.chunk (which may
    return fewer chunks than asked for). Returns a tuple."""
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
    _at_least_1d("chunk", x)
    n = x.shape[_dim("chunk", dim, x.shape)]
    if n == 0:
        return split(x, [0] * chunks, dim)
    return split(x, -(-n // chunks), dim)


# ---- joins: cat is the primitive, its gradient a set of slices ----------------------------------
def _cat_vjp(g, y, *xs, dim=0):
    d, start, grads = dim % y.ndim, 0, []
    for x in xs:
        n = x.shape[d]
        grads.append(_narrow(g, d, start, n) if getattr(x, "requires_grad", False) else None)
        start += n
    return tuple(grads)


@primitive(vjp=_cat_vjp, name="_cat", promote=True)
def _cat(*xs, dim=0):
    """xs joined along an existing dim (cat's primitive; cat takes a list)."""
    if not xs:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    first = xs[0]
    if first.ndim == 0:
        raise RuntimeError("cat: zero-dimensional tensors cannot be concatenated; use stack, or "
                           "unsqueeze them first")
    d = _dim("cat", dim, first.shape)
    for x in xs[1:]:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != d):
            raise RuntimeError(f"cat: tensors must have the same shape except in dim {d}, got "
                               f"{first.shape} and {x.shape}")
    return xp_of(first).concatenate(xs, axis=d)


@public
def cat(tensors, dim=0):
    """Join a sequence of tensors along an existing dim, like torch.cat (dtypes are promoted)."""
    return _cat(*tensors, dim=dim)


@public
def concatenate(tensors, dim=0):
    """numpy's name for cat."""
    return _cat(*tensors, dim=dim)


@public
def stack(tensors, dim=0):
    """Join equally shaped tensors along a new dim, like torch.stack."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    shape = tuple(tensors[0].shape)
    for i, t in enumerate(tensors[1:], 1):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got {shape} at "
                               f"entry 0 and {tuple(t.shape)} at entry {i}")
    d = _dim("stack", dim, shape, extra=1)
    return _cat(*(reshape(t, shape=shape[:d] + (1,) + shape[d:]) for t in tensors), dim=d)


# ---- pad ----------------------------------------------------------------------------------------
_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _check_mode_pad(mode, pad, shape):
    """torch's limits on the non-constant modes: the last 1, 2 or 3 dims of a (C, *) or (N, C, *)
    input, and only the batch dim N may be empty (any dim, for circular)."""
    k = len(pad) // 2
    if k not in (1, 2, 3) or len(shape) not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: {mode} padding of length {len(pad)} is not supported for a {len(shape)}-D "
            f"input (shape {shape}); like torch, the non-constant modes pad the last 1, 2 or 3 "
            f"dims of a (C, *) or (N, C, *) input: 2 numbers for 2-D or 3-D inputs, 4 for 3-D or "
            f"4-D, 6 for 4-D or 5-D (mode='constant' pads any dims)")
    if mode != "circular" and 0 in shape[len(shape) - k - 1:]:
        raise ValueError(f"pad: {mode} padding needs an input whose dims are non-empty except "
                         f"the batch dim, got shape {shape}")


def _pad_index(xp, mode, lo, hi, n, d):
    """Source positions along one dim for the non-constant modes, with torch's semantics for
    negative pads: reflect and replicate pad the whole dim then crop, circular crops then wraps."""
    size = n + lo + hi
    if mode == "circular":
        if lo > n or hi > n:
            raise ValueError(f"pad: circular padding ({lo}, {hi}) of dim {d} of size {n} would "
                             f"wrap around more than once; pad at most {n} on each side")
        start, kept = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
        if size < 0 or (kept <= 0 and size > 0):
            raise ValueError(f"pad: circular padding ({lo}, {hi}) crops dim {d} of size {n} below "
                             f"size 0")
        return start + xp.arange(-max(lo, 0), kept + max(hi, 0)) % max(kept, 1)
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"pad: reflect padding must be smaller than the size of the padded "
                         f"dim, got ({lo}, {hi}) for dim {d} of size {n}")
    if size < 1:
        raise ValueError(f"pad: {mode} padding ({lo}, {hi}) leaves no entries of dim {d} of size "
                         f"{n}; torch needs at least one")
    i = xp.arange(-lo, n + hi)
    if mode == "reflect":
        return (n - 1) - xp.abs((n - 1) - xp.abs(i))
    return xp.clip(i, 0, n - 1)


@public
def pad(x, pad, mode="constant", value=None):
    """torch.nn.functional.pad: `pad` holds (left, right) pairs starting from the LAST dim, so
    (1, 1, 2, 0) pads the last dim by 1 on each side and the one before by 2 in front. Negative
    pads crop. Modes: constant (fill `value`, default 0) for any number of dims; reflect,
    replicate and circular for the last 1, 2 or 3 dims of a (C, *) or (N, C, *) input, within
    torch's limits (reflect pads less than the size, circular at most the size)."""
    pad = tuple(int(p) for p in pad)
    shape = tuple(x.shape)
    if len(pad) % 2 or len(pad) > 2 * len(shape):
        raise ValueError(f"pad: the padding must hold (left, right) pairs for at most the "
                         f"{len(shape)} dims of a tensor of shape {shape}, got {pad}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f"pad: mode {mode!r} takes no fill value, got {value}")
    widths = [(0, 0)] * (len(shape) - len(pad) // 2) + [pad[i:i + 2] for i in
                                                         range(len(pad) - 2, -1, -2)]
    if mode != "constant":
        if pad:
            _check_mode_pad(mode, pad, shape)
        xp = x.device.xp
        for d, (lo, hi) in enumerate(widths):
            if lo or hi:
                i = _pad_index(xp, mode, lo, hi, shape[d], d)
                x = _getitem(x, index=(slice(None),) * d + (i,))
        return x
    crop = [slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(shape, widths)]
    if any(s.stop < s.start for s in crop):
        raise RuntimeError(f"pad: padding {pad} would crop a tensor of shape {shape} below size 0")
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        x = _getitem(x, index=tuple(crop))
        shape, widths = tuple(x.shape), [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    return _embed(x, index=tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, widths)),
                  shape=tuple(n + lo + hi for n, (lo, hi) in zip(shape, widths)),
                  value=0 if value is None else value)


# ---- triangles ----------------------------------------------------------------------------------
def _triangle(op, x, diagonal):
    if x.ndim < 2:
        raise RuntimeError(f"{op}: expected a tensor of at least 2 dims, got shape {x.shape}")
    return getattr(xp_of(x), op)(x, diagonal)


@primitive(vjp=lambda g, y, x, *, diagonal=0: (tril(g, diagonal=diagonal),))  # a mask: self-adjoint
def tril(x, *, diagonal=0):
    """The lower triangle of the last two dims (zeros above `diagonal`), like torch.tril."""
    return _triangle("tril", x, diagonal)


@primitive(vjp=lambda g, y, x, *, diagonal=0: (triu(g, diagonal=diagonal),))
def triu(x, *, diagonal=0):
    """The upper triangle of the last two dims (zeros below `diagonal`), like torch.triu."""
    return _triangle("triu", x, diagonal)


# ---- integer indices: gather / scatter-add, index_select, one_hot -------------------------------
def _check_range(op, index, n, dim, shape, negative=True):
    """Raise the IndexError of torch for indices outside [-n, n) ([0, n) without `negative`):
    CuPy would wrap them silently (see backend.indices_outside for what this costs on CUDA)."""
    lo = -n if negative else 0
    if isinstance(index, numbers.Integral):
        bad = not lo <= index < n
    else:
        index = backend.indices_outside(index, lo, n)
        bad = index is not None
    if bad:
        raise IndexError(f"{op}: index {index} is out of range for dim {dim} with size {n} "
                         f"(tensor shape {tuple(shape)})")


def _index_array(op, index, data):
    index = raw_index(index, data, op)
    if not _int_array(index):
        raise TypeError(f"{op}: expected an integer index tensor, got "
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
    _at_least_1d("gather", x)
    index = _index_array("gather", index, x.array)
    d = _dim("gather", dim, x.shape)
    if index.ndim != x.ndim or any(i > n for k, (i, n) in enumerate(zip(index.shape, x.shape))
                                   if k != d):
        raise RuntimeError(f"gather: index of shape {index.shape} must have the dims of the input "
                           f"(shape {x.shape}) and be no larger outside dim {d}")
    _check_range("gather", index, x.shape[d], d, x.shape, negative=False)
    return _gather(x, index, dim=d)


@public
def index_select(x, dim, index):
    """The entries of x at the 1-D integer `index` along dim, like torch.index_select."""
    _at_least_1d("index_select", x)
    index = _index_array("index_select", index, x.array)
    if index.ndim > 1:
        raise RuntimeError(f"index_select: index must be 1-D, got shape {index.shape}")
    d = _dim("index_select", dim, x.shape)
    _check_range("index_select", index, x.shape[d], d, x.shape, negative=False)
    return _getitem(x, index=(slice(None),) * d + (index.reshape(-1),))


@primitive()
def one_hot(x, *, num_classes=-1):
    """int64 one-hot encoding of class indices in a new last dim, like
    torch.nn.functional.one_hot; num_classes=-1 means max(x) + 1. No gradient."""
    if x.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got {x.dtype}")
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, -1)
    n = hi + 1 if num_classes == -1 else num_classes
    if lo < 0 or hi >= n:
        raise RuntimeError(f"one_hot: class values must be in [0, {n}), got values in [{lo}, {hi}]")
    return (x[..., None] == xp_of(x).arange(n, dtype=x.dtype)).astype(backend.int64)


# ---- getitem ------------------------------------------------------------------------------------
def raw_index(index, data, op="indexing"):
    """`index` (ints, slices, None, Ellipsis, Tensors, lists, arrays, or a tuple of them) in the raw
    form that indexes `data` on its device: Tensors give their arrays, lists and host arrays are
    copied to the device. A Tensor on another device is an error, as in PyTorch."""
    if type(index) is tuple:
        return tuple(_raw_item(item, data, op) for item in index)
    return _raw_item(index, data, op)


def _raw_item(item, data, op):
    if isinstance(item, Tensor):
        if item.device != backend.device_of(data):
            raise RuntimeError(f"{op}: indices are on {item.device} but the indexed tensor is on "
                               f"{backend.device_of(data)}; move them with "
                               f".to('{backend.device_of(data)}') first")
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


def _check_indices(index, shape):
    """getitem's IndexError for an int or integer array outside its dim (CuPy would wrap)."""
    items = index if type(index) is tuple else (index,)
    axis = 0
    for k, item in enumerate(items):
        if type(item) is slice:
            axis += 1
        elif item is Ellipsis:
            axis = len(shape) - sum(w for w in map(_width, items[k + 1:]) if w is not None)
        elif type(item) is int or _int_array(item) or (isinstance(item, numbers.Integral)
                                                         and not isinstance(item, bool)):
            if axis < len(shape):
                _check_range("getitem", item, shape[axis], axis, shape)
            axis += 1
        else:
            width = _width(item)
            if (width and backend.is_array(item) and item.dtype.kind == "b"
                    and tuple(item.shape) != tuple(shape[axis:axis + width])):
                dims = f"dim {axis}" if width == 1 else f"dims {axis}..{axis + width - 1}"
                raise IndexError(f"getitem: boolean mask of shape {tuple(item.shape)} does not "
                                 f"match {dims} of the indexed tensor (tensor shape "
                                 f"{tuple(shape)})")
            axis += width


@public
def getitem(x, index):
    """x[index] with PyTorch's (and numpy's) rules: ints, slices with any step, None, Ellipsis,
    integer and boolean Tensors, arrays or lists, and tuples mixing them. Basic indexing gives a
    view; repeated integer indices accumulate in the gradient."""
    index = raw_index(index, x.array, "getitem")
    _check_indices(index, x.shape)
    try:
        return _getitem(x, index=index)
    except IndexError as e:  # the array library's words, without _with_context's own framing
        message = str(e).removeprefix("getitem: ")
        message = message.rpartition(" (inputs of shapes ")[0] or message
        raise IndexError(f"getitem: {message} (tensor shape {x.shape})") from None
