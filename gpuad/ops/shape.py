"""Shape ops: views, joins, slices, pads (reshape, permute, expand, cat, narrow, split, pad, ...).

A few primitives carry everything: reshape, expand and permute are views; `_getitem` and `_embed`
(write into a fresh filled array) are each other's gradient, so slicing, flipping, padding and
splitting are differentiable to every order. Indexing with index arrays (getitem, gather,
scatter, ...) builds on `_getitem` in indexing.py; diagonals, roll and the stacks are in
rearrange.py.
"""
import itertools
import math
import numbers

from .. import backend
from ..backend import xp_of
from ..backend.kernels import fused
from ..tensor import Tensor
from . import primitive, public
from . import reduce as _reduce


def wrap_dim(op, dim, shape, extra=0):
    """A dim in [-n, n) with n = len(shape) + extra (1 for a 0-d tensor), made non-negative."""
    n = max(len(shape) + extra, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of shape {tuple(shape)} "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return dim % n


def wrap_dims(op, dims, shape):
    """An int or a sequence of dims, each wrapped by wrap_dim, none named twice."""
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    out = tuple(wrap_dim(op, d, shape) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dims {dims} name a dim more than once (tensor shape "
                           f"{tuple(shape)})")
    return out


def check_not_0d(op, x):
    """Refuse a 0-d tensor, for ops that need a dim to work along."""
    if x.ndim == 0:
        raise RuntimeError(f"{op}: expected a tensor with at least 1 dim, got a 0-d tensor; "
                           f"reshape it to (1,) first")


def is_int_array(item):
    """Whether item is an array (of any backend) of integers: an integer index."""
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
    perm = tuple(wrap_dim("permute", d, shape) for d in dims)
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
    a, b = wrap_dim("swapaxes", dim0, x.shape), wrap_dim("swapaxes", dim1, x.shape)
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
    s, e = wrap_dim("flatten", start_dim, shape), wrap_dim("flatten", end_dim, shape)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                           f"(tensor shape {shape})")
    if s == e and shape and isinstance(x, Tensor):
        return x  # nothing to merge: torch returns the input itself (nn.Flatten on (N, 784))
    return reshape(x, shape=shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


@public
def squeeze(x, dim=None):
    """x without its size-1 dims (all, or those among `dim`, an int or tuple); a named dim whose
    size is not 1 is left alone, like torch.squeeze."""
    shape = tuple(x.shape)
    dims = range(len(shape)) if dim is None else wrap_dims("squeeze", dim, shape)
    return reshape(x, shape=tuple(n for i, n in enumerate(shape) if n != 1 or i not in dims))


@public
def unsqueeze(x, dim):
    """x with a size-1 dim inserted at `dim` (in [-ndim-1, ndim]), like torch.unsqueeze."""
    shape = tuple(x.shape)
    d = wrap_dim("unsqueeze", dim, shape, extra=1)
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
    return (_embed(g, index=index, shape=x.shape, accumulate=any(map(is_int_array, items))),)


@primitive(vjp=_getitem_vjp, name="_getitem")
def _getitem(x, *, index):
    """x[index] for a raw index (see raw_index): basic indexing gives a view."""
    return x[index]


# Adding at integer indices, repeats accumulating (an index's gradient): one fused unit, so a
# compiled replay makes backend.scatter_add's choice of loop again on each call, as eager does.
scatter_add_arrays = fused("scatter_add")(backend.scatter_add)


@primitive(vjp=lambda g, y, src, *, index, shape, value=0, accumulate=False:
           (_getitem(g, index=index),), name="_embed")
def _embed(src, *, index, shape, value=0, accumulate=False):
    """A new array of `shape` filled with `value`, with src written at the raw `index`, or added
    (so repeated integer indices accumulate) when `accumulate`."""
    out = xp_of(src).full(shape, value, dtype=src.dtype)
    if accumulate:
        return scatter_add_arrays(out, index, src)
    out[index] = src
    return out


def narrow_view(x, dim, start, length):
    """The view of x[start:start + length] along dim (non-negative, unchecked)."""
    return _getitem(x, index=(slice(None),) * dim + (slice(start, start + length),))


@public
def flip(x, dims):
    """x reversed along `dims` (an int or tuple), like torch.flip; a view here, not a copy."""
    flipped = wrap_dims("flip", dims, x.shape)
    return _getitem(x, index=tuple(slice(None, None, -1) if d in flipped else slice(None)
                                   for d in range(x.ndim)))


@public
def split(x, split_size_or_sections, dim=0):
    """Views of x along dim, like torch.split: chunks of split_size (the last may be smaller), or
    of the listed sizes, which must add up to the dim's size. Returns a tuple."""
    check_not_0d("split", x)
    d = wrap_dim("split", dim, x.shape)
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
    return tuple(narrow_view(x, d, start, size) for start, size in zip(starts, sizes))


@public
def chunk(x, chunks, dim=0):
    """x split into `chunks` views of ceil(size / chunks) along dim, like torch.chunk (which may
    return fewer chunks than asked for). Returns a tuple."""
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
    check_not_0d("chunk", x)
    n = x.shape[wrap_dim("chunk", dim, x.shape)]
    if n == 0:
        return split(x, [0] * chunks, dim)
    return split(x, -(-n // chunks), dim)


# ---- joins: cat is the primitive, its gradient a set of slices ----------------------------------
def _cat_vjp(g, y, *xs, dim=0):
    d, start, grads = dim % y.ndim, 0, []
    for x in xs:
        n = x.shape[d]
        grads.append(narrow_view(g, d, start, n) if getattr(x, "requires_grad", False) else None)
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
    d = wrap_dim("cat", dim, first.shape)
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
def concat(tensors, dim=0):
    """torch's other name for cat."""
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
    d = wrap_dim("stack", dim, shape, extra=1)
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


# ---- torch's other views and splits, composites of the primitives above ------------------------
@public
def narrow(input, dim, start, length):
    """The view of `length` entries of dim from `start` (negative counts from the end; a 0-d
    tensor is read on the host), like torch.narrow."""
    check_not_0d("narrow", input)
    d = wrap_dim("narrow", dim, input.shape)
    n, start, length = input.shape[d], int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dim {d} of size {n} "
                         f"(expected a start in [{-n}, {n}])")
    start += n if start < 0 else 0
    if length < 0 or start + length > n:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds the size {n} of "
                           f"dim {d} (tensor shape {tuple(input.shape)}); length must be in "
                           f"[0, {n - start}]")
    return narrow_view(input, d, start, length)


@public
def unflatten(input, dim, sizes):
    """dim split into dims of `sizes` (one may be -1), like torch.unflatten: a view."""
    d = wrap_dim("unflatten", dim, input.shape)
    sizes, n = tuple(int(s) for s in sizes), input.shape[d]
    known = math.prod(s for s in sizes if s != -1)
    if (not sizes or sizes.count(-1) > 1 or any(s < -1 for s in sizes)
            or (n != known if -1 not in sizes else known == 0 or n % known)):
        raise RuntimeError(f"unflatten: sizes {sizes} don't multiply up to the size {n} of dim {d} "
                           f"(tensor shape {tuple(input.shape)})")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(input, shape=tuple(input.shape[:d]) + sizes + tuple(input.shape[d + 1:]))


@public
def movedim(input, source, destination):
    """input with dims `source` moved to positions `destination` (ints or sequences), the others
    keeping their order, like torch.movedim: a view."""
    src = wrap_dims("movedim", source, input.shape)
    dst = wrap_dims("movedim", destination, input.shape)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: source {source} and destination {destination} must name the "
                           f"same number of dims")
    rest = iter(d for d in range(input.ndim) if d not in src)
    moved = dict(zip(dst, src))
    return permute(input, dims=tuple(moved[i] if i in moved else next(rest)
                                     for i in range(input.ndim)))


@public
def moveaxis(input, source, destination):
    """numpy's name for movedim."""
    return movedim(input, source, destination)


@public
def tensor_split(input, indices_or_sections, dim=0):
    """Views of input along dim, like torch.tensor_split: n sections (the first size % n one
    longer), or split before each of the given indices. Returns a tuple."""
    check_not_0d("tensor_split", input)
    d = wrap_dim("tensor_split", dim, input.shape)
    n, cut = input.shape[d], indices_or_sections
    if isinstance(cut, Tensor):
        if cut.dtype.kind not in "iu" or cut.ndim > 1:
            raise RuntimeError(f"tensor_split: a tensor of indices or sections must be a 0-d or "
                               f"1-d integer tensor, got {cut.dtype} of shape {cut.shape}")
        cut = cut.item() if cut.ndim == 0 else cut.tolist()
    if isinstance(cut, numbers.Integral):
        if cut <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {cut}")
        size, extra = divmod(n, int(cut))
        starts = [i * size + min(i, extra) for i in range(int(cut) + 1)]
        bounds = list(itertools.pairwise(starts))
    else:
        cut = [int(c) for c in cut]
        bounds = list(zip([None] + cut, cut + [None]))
    return tuple(_getitem(input, index=(slice(None),) * d + (slice(a, b),)) for a, b in bounds)


@public
def unbind(input, dim=0):
    """The slices of input along dim (views, dim removed), like torch.unbind. Returns a tuple."""
    if input.ndim == 0:
        raise IndexError("unbind: a 0-d tensor has no dim to unbind")
    d = wrap_dim("unbind", dim, input.shape)
    return tuple(_getitem(input, index=(slice(None),) * d + (i,)) for i in range(input.shape[d]))


def tensor_list(op, tensors):
    """The tensors of a call that passed one sequence or several tensors (the atleast_*
    functions take both), refusing none."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError(f"{op}: expected a non-empty list of tensors")
    return tensors


def _at_least(op, tensors, n, shape_of):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    out = tuple(t if t.ndim >= n else reshape(t, shape=shape_of(tuple(t.shape)))
                for t in tensor_list(op, tensors))
    return out[0] if single else out


@public
def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-d one becomes shape (1,)), like torch.atleast_1d: one
    tensor gives a tensor, several (or a sequence) a tuple."""
    return _at_least("atleast_1d", tensors, 1, lambda s: (1,))


@public
def atleast_2d(*tensors):
    """Each tensor with at least 2 dims ((n,) becomes (1, n)), like torch.atleast_2d."""
    return _at_least("atleast_2d", tensors, 2, lambda s: (1,) + (s or (1,)))


@public
def atleast_3d(*tensors):
    """Each tensor with at least 3 dims ((n,) becomes (1, n, 1), (m, n) becomes (m, n, 1)), like
    torch.atleast_3d."""
    return _at_least("atleast_3d", tensors, 3,
                     lambda s: (1, 1, 1) if not s else (1,) + s + (1,) if len(s) == 1 else s + (1,))


@public
def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 0-D or 1-D tensors, like torch.meshgrid: with indexing='ij' output i
    varies along dim i; 'xy' swaps the first two dims (numpy's default). Views, as in torch."""
    tensors = tensor_list("meshgrid", tensors)
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'meshgrid: indexing must be "ij" or "xy", got {indexing!r}')
    for i, t in enumerate(tensors):
        if t.ndim > 1 or t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise RuntimeError(f"meshgrid: expected 0-d or 1-d tensors of one dtype and device, "
                               f"got shape {tuple(t.shape)}, {t.dtype} on {t.device} at entry {i} "
                               f"(entry 0: {tensors[0].dtype} on {tensors[0].device})")
    where = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        where[0], where[1] = 1, 0
    shape = [0] * len(tensors)
    for t, w in zip(tensors, where):
        shape[w] = t.numel()
    return tuple(expand(reshape(t, shape=tuple(t.numel() if i == w else 1
                                                for i in range(len(shape)))), shape=tuple(shape))
                 for t, w in zip(tensors, where))
