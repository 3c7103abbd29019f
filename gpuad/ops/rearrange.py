"""Rearranging ops: diagonals, roll, rot90, repeat_interleave and the stacks (hstack, vstack, ...).

diagonal (a writable view, as in torch) and diagonal_scatter are each other's gradient and give
diag, diag_embed and trace; the rest are composites of shape.py's primitives (slices, cat,
expand), so every op here is differentiable to every order. Those torch documents as copies
(roll, rot90, diag, repeat_interleave) return copies here too, never views.
"""
import numbers

import numpy

from .. import backend
from ..tensor import Tensor
from . import elementwise as _elementwise
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape
from .shape import (
    atleast_1d,
    atleast_2d,
    atleast_3d,
    cat,
    check_not_0d,
    expand,
    flatten,
    flip,
    narrow_view,
    reshape,
    swapaxes,
    tensor_list,
    unsqueeze,
    wrap_dim,
)


# ---- diagonals: diagonal (a view) and diagonal_scatter are each other's gradient ---------------
def _diagonal_dims(op, x, dim1, dim2):
    a, b = wrap_dim(op, dim1, x.shape), wrap_dim(op, dim2, x.shape)
    if a == b:
        raise RuntimeError(f"{op}: dim1 and dim2 must name different dims, got {dim1} and {dim2} "
                           f"(tensor shape {tuple(x.shape)})")
    return a, b


def _zeros(like, shape):
    return Tensor(backend.create(like.device, "zeros", shape, dtype=like.dtype))


@primitive(vjp=lambda g, y, x, *, offset=0, dim1=0, dim2=1: (diagonal_scatter(
    _zeros(g, x.shape), g, offset=offset, dim1=dim1, dim2=dim2),))
def diagonal(x, *, offset=0, dim1=0, dim2=1):
    """The diagonal of dims dim1 and dim2 (above it for offset > 0) as the last dim, like
    torch.diagonal: a writable view."""
    return backend.diagonal(x, offset, *_diagonal_dims("diagonal", x, dim1, dim2))


_diagonal = diagonal  # for diag, whose `diagonal` argument (torch's name) hides the op


def _diagonal_scatter_vjp(g, y, x, src, *, offset=0, dim1=0, dim2=1):
    return (diagonal_scatter(g, 0, offset=offset, dim1=dim1, dim2=dim2),
            diagonal(g, offset=offset, dim1=dim1, dim2=dim2))


@primitive(vjp=_diagonal_scatter_vjp)
def diagonal_scatter(x, src, *, offset=0, dim1=0, dim2=1):
    """A copy of x with src on the diagonal that diagonal(x, offset, dim1, dim2) reads, like
    torch.diagonal_scatter."""
    out = x.copy()
    view = backend.diagonal(out, offset, *_diagonal_dims("diagonal_scatter", x, dim1, dim2))
    if hasattr(src, "shape") and tuple(src.shape) != tuple(view.shape):
        raise RuntimeError(f"diagonal_scatter: src of shape {tuple(src.shape)} must have the "
                           f"shape {tuple(view.shape)} of the diagonal it replaces (input shape "
                           f"{tuple(x.shape)}, offset {offset}, dims {dim1} and {dim2})")
    view[...] = src
    return out


@public
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """A tensor whose diagonals (dims dim1 and dim2 of the result, offset as in diagonal) hold
    input's last dim, zeros elsewhere, like torch.diag_embed."""
    check_not_0d("diag_embed", input)
    n = input.shape[-1] + abs(offset)
    a, b = (wrap_dim("diag_embed", d, input.shape, extra=1) for d in (dim1, dim2))
    if a == b:
        raise RuntimeError(f"diag_embed: dim1 and dim2 must name different dims, got {dim1} and "
                           f"{dim2} (input shape {tuple(input.shape)})")
    shape = list(input.shape[:-1])
    for d in sorted((a, b)):
        shape.insert(d, n)
    return diagonal_scatter(_zeros(input, tuple(shape)), input, offset=offset, dim1=a, dim2=b)


@public
def diag(input, diagonal=0):
    """torch.diag: a 1-D input becomes the `diagonal`-th diagonal of a square matrix; a 2-D input
    gives a copy of its `diagonal`-th diagonal."""
    if input.ndim == 1:
        n = input.shape[0] + abs(diagonal)
        return diagonal_scatter(_zeros(input, (n, n)), input, offset=diagonal)
    if input.ndim == 2:
        return _elementwise.clone(_diagonal(input, offset=diagonal))
    raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")


@public
def trace(input):
    """The sum of a matrix's diagonal, like torch.trace (integers sum to int64)."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix (a 2-D tensor), got shape "
                           f"{tuple(input.shape)}")
    return _reduce.sum(diagonal(input))


@public
def roll(input, shifts, dims=None):
    """input shifted circularly by `shifts` along `dims` (ints or sequences of the same length),
    like torch.roll; without dims, the flattened input is rolled and reshaped back. A copy."""
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts {shifts} need as many dims, got none (dims=None "
                               f"takes one shift, for the flattened tensor)")
        return reshape(roll(flatten(input), shifts, 0), shape=tuple(input.shape))
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must align (one shift per dim)")
    out = input
    for shift, dim in zip(shifts, dims):
        d = wrap_dim("roll", dim, input.shape)
        n = input.shape[d]
        s = int(shift) % n if n else 0
        if s:
            out = _shape._cat(narrow_view(out, d, n - s, s), narrow_view(out, d, 0, n - s), dim=d)
    return _elementwise.clone(out) if out is input else out


@public
def rot90(input, k=1, dims=(0, 1)):
    """input rotated by k quarter turns in the plane of `dims`, from the first dim towards the
    second, like torch.rot90. A copy."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected 2 rotation dims, got dims {dims}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected a tensor of at least 2 dims, got shape "
                           f"{tuple(input.shape)}")
    a, b = wrap_dim("rot90", dims[0], input.shape), wrap_dim("rot90", dims[1], input.shape)
    if a == b:
        raise RuntimeError(f"rot90: the rotation dims must differ, got dims {dims}")
    k %= 4
    out = (input if k == 0 else swapaxes(flip(input, b), a, b) if k == 1 else
           flip(input, (a, b)) if k == 2 else swapaxes(flip(input, a), a, b))
    return _elementwise.clone(out)


@public
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each entry of input along dim repeated `repeats` times (an int, or a tensor of one count
    per entry), like torch.repeat_interleave; dim=None flattens first. repeat_interleave(counts)
    alone repeats the indices 0, 1, ... A tensor of counts is read on the host (on CUDA a
    device synchronisation), since it sets the result's size."""
    if repeats is None:  # repeat_interleave(repeats): the indices, repeated
        repeats = input
        input = Tensor(backend.create(input.device, "arange", input.numel(), dtype=backend.int64))
    x = flatten(input) if dim is None else input
    d = 0 if dim is None else wrap_dim("repeat_interleave", dim, x.shape)
    check_not_0d("repeat_interleave", x)
    n, shape = x.shape[d], tuple(x.shape)
    if isinstance(repeats, numbers.Integral):
        if repeats < 0:
            raise RuntimeError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
        counts = None
        total = n * int(repeats)
    else:
        counts = backend.asnumpy(repeats.array if isinstance(repeats, Tensor) else repeats)
        counts = numpy.asarray(counts)
        if counts.dtype.kind not in "iu" or counts.ndim > 1:
            raise RuntimeError(f"repeat_interleave: repeats must be an int or a 0-d or 1-d integer "
                               f"tensor, got {counts.dtype} of shape {counts.shape}")
        counts = numpy.broadcast_to(counts.reshape(-1), (n,)) if counts.size == 1 else counts
        if counts.shape != (n,) or (counts < 0).any():
            raise RuntimeError(f"repeat_interleave: repeats must be non-negative and have the size "
                               f"{n} of dim {d} (tensor shape {shape}), got shape {counts.shape}")
        total = int(counts.sum())
    if output_size is not None and int(output_size) != total:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"{total} entries the repeats give")
    if counts is None:
        if repeats == 1:
            return _elementwise.clone(x)
        spread = expand(unsqueeze(x, d + 1), shape[:d + 1] + (int(repeats),) + shape[d + 1:])
        return reshape(spread, shape=shape[:d] + (total,) + shape[d + 1:])
    index = backend.asarray(numpy.repeat(numpy.arange(n), counts), backend.int64, x.device)
    return _shape._getitem(x, index=(slice(None),) * d + (index,))


@public
def hstack(tensors):
    """Tensors joined column-wise (1-D ones end to end), like torch.hstack."""
    tensors = atleast_1d(tuple(tensor_list("hstack", (tensors,))))
    return cat(tensors, dim=0 if tensors[0].ndim == 1 else 1)


@public
def vstack(tensors):
    """Tensors joined row-wise (1-D ones as rows), like torch.vstack."""
    return cat(atleast_2d(tuple(tensor_list("vstack", (tensors,)))), dim=0)


@public
def dstack(tensors):
    """Tensors joined depth-wise, along a third dim, like torch.dstack."""
    return cat(atleast_3d(tuple(tensor_list("dstack", (tensors,)))), dim=2)


@public
def column_stack(tensors):
    """Tensors joined as columns (0-D and 1-D ones become columns), like torch.column_stack."""
    tensors = tensor_list("column_stack", (tensors,))
    return cat([reshape(t, shape=(t.numel(), 1)) if t.ndim <= 1 else t for t in tensors], dim=1)
