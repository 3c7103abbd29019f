"""Rows of the op table for gpuad/ops/shape.py (merged into op_cases.CASES)."""
import numpy as np
from op_cases import REAL, Case

import gpuad

ops = gpuad.ops  # the internal (underscore) primitives live here, not in gpuad


# ---- numpy references ----------------------------------------------------------------------------
def _expand_ref(x, shape):
    lead = len(shape) - x.ndim
    return np.broadcast_to(x, [x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape)])


def _flatten_ref(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


def _squeeze_ref(x, axis=None):
    if axis is None:
        return np.squeeze(x)
    axes = (axis,) if isinstance(axis, int) else axis
    return np.squeeze(x, tuple(a % max(x.ndim, 1) for a in axes if x.ndim and x.shape[a] == 1))


def _split_ref(x, split_size_or_sections, axis=0):
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        cuts = list(range(split_size_or_sections, n, split_size_or_sections))
    else:
        cuts = list(np.cumsum(split_size_or_sections)[:-1])
    return np.split(x, cuts, axis=axis)


def _chunk_ref(x, chunks, axis=0):
    return _split_ref(x, -(-x.shape[axis] // chunks), axis)


def _pad_ref(x, pad, mode="constant", value=None):
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [tuple(pad[i:i + 2]) for i in
                                                     range(len(pad) - 2, -1, -2)]
    x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, widths))]
    widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if mode == "constant":
        return np.pad(x, widths, constant_values=value or 0)
    return np.pad(x, widths, mode={"replicate": "edge", "circular": "wrap"}.get(mode, mode))


def _gather_ref(x, index, axis):
    window = tuple(slice(None) if d == axis % x.ndim else slice(0, s)
                   for d, s in enumerate(index.shape))
    x = x[window]
    return np.take_along_axis(x, index, axis)


def _scatter_add_ref(src, index, axis, shape):
    out = np.zeros(shape)
    full = tuple(index if d == axis % src.ndim else
                 np.arange(s).reshape((s,) + (1,) * (src.ndim - d - 1))
                 for d, s in enumerate(index.shape))
    np.add.at(out, full, src)
    return out


def _embed_ref(src, index, shape, value=0, accumulate=False):
    out = np.full(shape, value, dtype=float)
    if accumulate:
        np.add.at(out, index, src)
    else:
        out[index] = src
    return out


def _one_hot_ref(x, num_classes=-1):
    return np.eye(x.max() + 1 if num_classes == -1 else num_classes, dtype=np.int64)[x]


def _floats_and_ints(high, low=0):
    """make= for (float input, integer index inputs...): indices in [low, high)."""
    return lambda rng, shapes: [REAL(rng, shapes[0])] + [rng.integers(low, high, s)
                                                        for s in shapes[1:]]


def _floats_and_masks(rng, shapes):
    return [REAL(rng, shapes[0])] + [rng.random(s) > 0.4 for s in shapes[1:]]


def _seq(fn):
    """Wrap an op taking a list of tensors so the table can hand it inputs one by one."""
    return lambda *xs, **kwargs: fn(list(xs), **kwargs)


BASIC_INDICES = [{"index": 1}, {"index": -1}, {"index": (slice(None), 2)},
                 {"index": (slice(1, None, 2),)}, {"index": (Ellipsis, 0)},
                 {"index": (None, 1, slice(None, None, -1))}, {"index": (0, Ellipsis, None)},
                 {"index": (slice(None, None, -2), 1, slice(1, 4))}, {"index": (1, 2, 3)},
                 {"index": ()}]
LIST_INDICES = [{"index": [2, 0, 2]}, {"index": (slice(None), [1, 1, 3])},
                {"index": ([0, 2], slice(None), [1, -1])}, {"index": [True, False, True]},
                {"index": (1, [[0, 1], [1, 1]])}]
TRI_KWARGS = [{}, {"diagonal": 1}, {"diagonal": -1}]

SHAPE_CASES = [
    # ---- views ----
    Case("reshape", lambda x, shape: gpuad.reshape(x, shape), np.reshape, [((2, 3),)],
         kwargs=[{"shape": (3, 2)}, {"shape": (6,)}, {"shape": (-1, 2)}, {"shape": (1, 2, 1, 3)}]),
    Case("reshape", lambda x, shape: gpuad.reshape(x, shape), np.reshape, [((),)],
         kwargs=[{"shape": (1, 1)}, {"shape": ()}, {"shape": -1}]),
    Case("expand", lambda x, shape: gpuad.expand(x, shape), _expand_ref, [((2, 1, 3),)],
         kwargs=[{"shape": (2, 4, 3)}, {"shape": (3, -1, 2, 3)}, {"shape": (-1, 1, -1)}]),
    Case("expand", lambda x, shape: gpuad.expand(x, shape), _expand_ref, [((),)],
         kwargs=[{"shape": (2, 3)}, {"shape": ()}]),
    Case("broadcast_to", gpuad.broadcast_to, np.broadcast_to, [((3,),), ((2, 1),)],
         kwargs=[{"shape": (4, 2, 3)}]),
    Case("permute", lambda x, dims: gpuad.permute(x, dims), lambda x, dims: np.transpose(x, dims),
         [((2, 3, 4),)],
         kwargs=[{"dims": (2, 0, 1)}, {"dims": (-1, 0, 1)}, {"dims": (0, 1, 2)},
                 {"dims": (1, 0, 2)}]),
    Case("permute", lambda x, dims: gpuad.permute(x, dims), lambda x, dims: np.transpose(x, dims),
         [((),)], kwargs=[{"dims": ()}]),
    Case("transpose", gpuad.transpose, lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1),
         [((2, 3, 4),)],
         kwargs=[{"dim0": 0, "dim1": 2}, {"dim0": -1, "dim1": 0}, {"dim0": 1, "dim1": 1}]),
    Case("swapaxes", gpuad.swapaxes, lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1),
         [((2, 3),), ((2, 3, 4),)],
         kwargs=[{"dim0": 0, "dim1": 1}, {"dim0": -1, "dim1": -2}]),
    Case("flatten", gpuad.flatten, _flatten_ref, [((2, 3, 4),)],
         kwargs=[{}, {"start_dim": 1}, {"start_dim": 0, "end_dim": 1},
                 {"start_dim": -2, "end_dim": -1}, {"start_dim": 1, "end_dim": 1}]),
    Case("flatten", gpuad.flatten, _flatten_ref, [((),)]),
    Case("squeeze", gpuad.squeeze, _squeeze_ref, [((2, 1, 3, 1),)],
         kwargs=[{}, {"dim": 1}, {"dim": -1}, {"dim": 0}, {"dim": (1, 3)}, {"axis": (0, -1)}]),
    Case("squeeze", gpuad.squeeze, _squeeze_ref, [((),), ((1,),)], kwargs=[{}, {"dim": 0}]),
    Case("unsqueeze", gpuad.unsqueeze, np.expand_dims, [((2, 3),)],
         kwargs=[{"dim": 0}, {"dim": 1}, {"dim": 2}, {"dim": -1}, {"dim": -3}]),
    Case("unsqueeze", gpuad.unsqueeze, np.expand_dims, [((),)], kwargs=[{"dim": 0}, {"dim": -1}]),
    # ---- tiling ----
    Case("repeat", gpuad.repeat, lambda x, repeats: np.tile(x, repeats), [((2, 3),)],
         kwargs=[{"repeats": (2, 1)}, {"repeats": (1, 2, 3)}, {"repeats": (1, 1)},
                 {"repeats": (0, 2)}]),
    Case("repeat", gpuad.repeat, lambda x, repeats: np.tile(x, repeats), [((),), ((3,),)],
         kwargs=[{"repeats": (3,)}, {"repeats": (2, 2)}]),
    Case("tile", gpuad.tile, lambda x, dims: np.tile(x, dims), [((2, 3),)],
         kwargs=[{"dims": (2,)}, {"dims": (2, 1)}, {"dims": (2, 1, 2)}, {"dims": 3}]),
    # ---- joins ----
    Case("cat", _seq(gpuad.cat), lambda *xs, axis=0: np.concatenate(xs, axis),
         [((2, 3), (4, 3)), ((1, 3), (2, 3), (1, 3))], kwargs=[{}, {"dim": -2}]),
    Case("cat", _seq(gpuad.cat), lambda *xs, axis=0: np.concatenate(xs, axis),
         [((2, 3), (2, 1), (2, 2))], kwargs=[{"dim": 1}, {"dim": -1}, {"axis": 1}]),
    Case("cat", _seq(gpuad.cat), lambda *xs, axis=0: np.concatenate(xs, axis), [((3,), (2,))]),
    Case("concatenate", _seq(gpuad.concatenate), lambda *xs, axis=0: np.concatenate(xs, axis),
         [((2, 3), (2, 1))], kwargs=[{"dim": 1}, {"axis": -1}]),
    Case("concat", _seq(gpuad.concat), lambda *xs, axis=0: np.concatenate(xs, axis),
         [((2, 3), (2, 1))], kwargs=[{"dim": -1}]),
    Case("_cat", lambda *xs, dim=0: ops._cat(*xs, dim=dim),
         lambda *xs, axis=0: np.concatenate(xs, axis), [((2, 3), (1, 3)), ((3,), (3,), (1,))]),
    Case("_cat", lambda *xs, dim=0: ops._cat(*xs, dim=dim),
         lambda *xs, axis=0: np.concatenate(xs, axis), [((2, 1, 3), (2, 2, 3))],
         kwargs=[{"dim": 1}]),
    Case("stack", _seq(gpuad.stack), lambda *xs, axis=0: np.stack(xs, axis),
         [((2, 3), (2, 3), (2, 3))], kwargs=[{}, {"dim": 1}, {"dim": 2}, {"dim": -1}, {"dim": -3}]),
    Case("stack", _seq(gpuad.stack), lambda *xs, axis=0: np.stack(xs, axis), [((), ())]),
    # ---- slicing ----
    Case("split", gpuad.split, _split_ref, [((5, 3),)],
         kwargs=[{"split_size_or_sections": 2}, {"split_size_or_sections": [1, 4]},
                 {"split_size_or_sections": 5}, {"split_size_or_sections": [2, 0, 3]}]),
    Case("split", gpuad.split, _split_ref, [((2, 6),)],
         kwargs=[{"split_size_or_sections": 4, "dim": 1},
                 {"split_size_or_sections": [2, 2, 2], "dim": -1}]),
    Case("chunk", gpuad.chunk, _chunk_ref, [((5, 3),)],
         kwargs=[{"chunks": 2}, {"chunks": 3}, {"chunks": 1}]),
    Case("chunk", gpuad.chunk, _chunk_ref, [((2, 6),)],
         kwargs=[{"chunks": 4, "dim": 1}, {"chunks": 3, "dim": -1}]),
    Case("flip", gpuad.flip, lambda x, dims: np.flip(x, dims), [((2, 3, 4),)],
         kwargs=[{"dims": (0,)}, {"dims": (0, 2)}, {"dims": (-1,)}, {"dims": 1}, {"dims": ()}]),
    Case("pad", gpuad.pad, _pad_ref, [((2, 3),)],
         kwargs=[{"pad": (1, 2)}, {"pad": (1, 1, 2, 0)}, {"pad": (0, 1), "value": 1.5},
                 {"pad": (-1, 2)}, {"pad": (1, -2, -1, 0)}, {"pad": ()}]),
    Case("pad", gpuad.pad, _pad_ref, [((2, 4),), ((2, 3, 4),)],
         kwargs=[{"pad": (2, 1), "mode": "reflect"}, {"pad": (1, 3), "mode": "replicate"},
                 {"pad": (4, 2), "mode": "circular"}]),
    Case("pad", gpuad.pad, _pad_ref, [((2, 3, 4),), ((1, 2, 3, 4),)],
         kwargs=[{"pad": (2, 4, 1, 0), "mode": "circular"},
                 {"pad": (1, 1, 1, 1), "mode": "reflect"},
                 {"pad": (3, 3, 2, 2), "mode": "reflect"},
                 {"pad": (2, 1, 0, 3), "mode": "replicate"}]),
    Case("getitem", gpuad.getitem, lambda x, index: x[index], [((3, 4, 5),)],
         kwargs=BASIC_INDICES + LIST_INDICES),
    Case("getitem", gpuad.getitem, lambda x, index: x[index], [((3, 4), (5,)), ((4, 3), (2, 2))],
         make=_floats_and_ints(3, -3), diff=(0,)),  # integer tensor with repeats and negatives
    Case("getitem", gpuad.getitem, lambda x, index: x[index], [((4, 3), (2, 3))],
         make=_floats_and_ints(4), diff=(0,)),
    Case("getitem", lambda x, i, j: gpuad.getitem(x, (i, slice(None), j)),
         lambda x, i, j: x[i, :, j], [((3, 2, 4), (5,), (5,)), ((3, 2, 4), (2, 1), (3,))],
         make=_floats_and_ints(3), diff=(0,)),
    Case("getitem", gpuad.getitem, lambda x, index: x[index],
         [((3, 4), (3, 4)), ((3, 4), (3,)), ((3,), ())],
         make=_floats_and_masks, diff=(0,)),  # boolean masks
    Case("getitem", lambda x, m, i: gpuad.getitem(x, (i, m)), lambda x, m, i: x[i, m],
         [((2, 4), (4,), (1,))], make=lambda rng, shapes: _floats_and_masks(rng, shapes[:2])
         + [rng.integers(0, 2, shapes[2])], diff=(0,)),
    Case("_getitem", lambda x, index: ops._getitem(x, index=index), lambda x, index: x[index],
         [((3, 4, 5),)], kwargs=BASIC_INDICES),
    Case("_embed", lambda x, index, shape, **kw: ops._embed(x, index=index, shape=shape, **kw),
         _embed_ref,
         [((2, 3),)], kwargs=[{"index": (slice(1, 3),), "shape": (4, 3)},
                              {"index": (slice(None, None, -1), slice(2, 5)), "shape": (2, 6),
                               "value": -1.0},
                              {"index": (Ellipsis, 1, slice(None)), "shape": (2, 2, 3)}]),
    Case("_embed", lambda x, index, shape, **kw: ops._embed(x, index=index, shape=shape, **kw),
         _embed_ref,
         [((4, 3),)], kwargs=[{"index": ([0, 2, 0, 0],), "shape": (3, 3), "accumulate": True},
                              {"index": (slice(None), [1, 1, 0]), "shape": (4, 2),
                               "accumulate": True}]),
    # ---- triangles ----
    Case("tril", gpuad.tril, lambda x, diagonal=0: np.tril(x, diagonal),
         [((3, 4),), ((2, 3, 3),), ((4, 2),)],
         kwargs=TRI_KWARGS),
    Case("triu", gpuad.triu, lambda x, diagonal=0: np.triu(x, diagonal),
         [((3, 4),), ((2, 3, 3),), ((4, 2),)],
         kwargs=TRI_KWARGS),
    # ---- integer index ops ----
    Case("gather", lambda x, index, dim: gpuad.gather(x, dim, index), _gather_ref,
         [((3, 4), (3, 4)), ((3, 4), (2, 3)), ((3, 4), (3, 6))], kwargs=[{"dim": 1}, {"dim": -1}],
         make=_floats_and_ints(3), diff=(0,)),
    Case("gather", lambda x, index, dim: gpuad.gather(x, dim, index), _gather_ref,
         [((3, 4), (5, 4)), ((2, 3, 4), (3, 2, 2))], kwargs=[{"dim": 0}], make=_floats_and_ints(2),
         diff=(0,)),
    Case("_gather", lambda x, index, dim: ops._gather(x, index, dim=dim), _gather_ref,
         [((3, 4), (3, 5)), ((3, 4), (2, 2))], kwargs=[{"dim": 1}], make=_floats_and_ints(3),
         diff=(0,)),
    Case("_gather", lambda x, index, dim: ops._gather(x, index, dim=dim), _gather_ref,
         [((3, 4), (2, 2)), ((2, 3), (4, 3))], kwargs=[{"dim": 0}], make=_floats_and_ints(2),
         diff=(0,)),
    Case("_scatter_add",
         lambda src, index, dim, shape: ops._scatter_add(src, index, dim=dim, shape=shape),
         _scatter_add_ref, [((3, 4), (3, 4))],
         kwargs=[{"dim": 0, "shape": (3, 4)}, {"dim": 1, "shape": (3, 5)},
                 {"dim": 1, "shape": (4, 4)}],
         make=_floats_and_ints(3), diff=(0,)),
    Case("index_select", lambda x, index, dim: gpuad.index_select(x, dim, index),
         lambda x, index, axis: np.take(x, index, axis),
         [((4, 3), (5,)), ((2, 3, 3), (2,))], kwargs=[{"dim": 0}, {"dim": 1}, {"dim": -1}],
         make=_floats_and_ints(2), diff=(0,)),
    Case("one_hot", gpuad.one_hot, _one_hot_ref, [((5,),), ((2, 3),), ((),)],
         kwargs=[{}, {"num_classes": 6}],
         make=lambda rng, shapes: [rng.integers(0, 4, s) for s in shapes], grad=False),
]


# ---- references for the PyTorch-breadth shape and indexing ops (torch's semantics, in numpy) ----
def _full_index(index, axis):
    """torch.gather's index in numpy: `index` in axis, aranges in the other dims."""
    axis %= index.ndim
    return tuple(index if d == axis else np.arange(s).reshape((s,) + (1,) * (index.ndim - d - 1))
                 for d, s in enumerate(index.shape))


def _lead(src, index):
    return src[tuple(slice(0, n) for n in index.shape)]


def _scatter_ref(x, index, src, axis):
    out = x.copy()
    out[_full_index(index, axis)] = _lead(src, index)
    return out


def _scatter_add_ref(x, index, src, axis):
    out = x.copy()
    np.add.at(out, _full_index(index, axis), _lead(src, index))
    return out


_REDUCE = {"sum": sum, "prod": np.prod, "mean": np.mean, "amax": max, "amin": min}


def _scatter_reduce_ref(x, index, src, axis, reduce, include_self=True):
    """One position at a time, the slow obvious way."""
    along = np.broadcast_arrays(*_full_index(index, axis))
    groups = {}
    for position, value in zip(zip(*(a.ravel() for a in along)), _lead(src, index).ravel()):
        groups.setdefault(position, []).append(value)
    out = x.copy()
    for position, values in groups.items():
        out[position] = _REDUCE[reduce](([x[position]] if include_self else []) + values)
    return out


def _index_put_ref(x, values, index, accumulate=False):
    out = x.copy()
    if accumulate:
        np.add.at(out, index, values)
    else:
        out[index] = values
    return out


def _along_ref(x, index, axis):
    return (slice(None),) * (axis % x.ndim) + (index,)


def _diagonal_scatter_ref(x, src, offset=0, dim1=0, dim2=1):
    out = x.copy()
    n = src.shape[-1]
    np.moveaxis(out, (dim1, dim2), (-2, -1))[..., np.arange(n) + max(-offset, 0),
                                             np.arange(n) + max(offset, 0)] = src
    return out


def _diag_embed_ref(x, offset=0, dim1=-2, dim2=-1):
    n = x.shape[-1]
    out = np.zeros(x.shape[:-1] + (n + abs(offset),) * 2)
    out[..., np.arange(n) + max(-offset, 0), np.arange(n) + max(offset, 0)] = x
    return np.moveaxis(out, (-2, -1), (dim1, dim2))


def _narrow_ref(x, axis, start, length):
    axis %= x.ndim
    start %= x.shape[axis]
    return x[(slice(None),) * axis + (slice(start, start + length),)]


def _unflatten_ref(x, axis, sizes):
    axis %= x.ndim
    return x.reshape(x.shape[:axis] + tuple(sizes) + x.shape[axis + 1:])


def _masked_scatter_ref(x, mask, source):
    x, mask = np.broadcast_arrays(x, mask)
    out = x.copy()
    out[mask] = source.ravel()[:mask.sum()]
    return out


def _distinct(rng, n, shape, axis):
    """Integer indices in [0, n) of `shape`, distinct along axis (overwrites then have a
    gradient that finite differences agree with)."""
    full = list(shape)
    full[axis] = n
    return np.argsort(rng.random(full), axis=axis)[tuple(slice(0, k) for k in shape)]


def _with_distinct(axis, n):
    """make= for (float input, index distinct along axis, float inputs...)."""
    return lambda rng, shapes: [REAL(rng, shapes[0]), _distinct(rng, n, shapes[1], axis)] + [
        REAL(rng, s) for s in shapes[2:]]


def _with_index(high, low=0):
    """make= for (float input, integer index in [low, high), float inputs...)."""
    return lambda rng, shapes: [REAL(rng, shapes[0]), rng.integers(low, high, shapes[1])] + [
        REAL(rng, s) for s in shapes[2:]]


def _nonzeros(rng, shapes):
    return [rng.integers(-1, 2, s) * (rng.random(s) > 0.3) for s in shapes]


SCATTER_REDUCE_KWARGS = [{"dim": d, "reduce": r, "include_self": i} for d, r, i in
                         [(0, "sum", True), (1, "prod", True), (0, "prod", False),
                          (1, "mean", True), (0, "mean", False), (1, "amax", True),
                          (0, "amax", False), (1, "amin", True), (0, "amin", False)]]

BREADTH_CASES = [
    # ---- getitem in torch's order: an int among index arrays selects first ----
    Case("getitem", lambda x, i: gpuad.getitem(x, (1, slice(None), i)),
         lambda x, i: x[1][:, i], [((3, 4, 5), (2,)), ((2, 3, 4), (2, 2))],
         make=_floats_and_ints(3), diff=(0,)),
    Case("getitem", lambda x, i: gpuad.getitem(x, (1, slice(None), slice(1, 5, 2), i, slice(0, 2))),
         lambda x, i: x[1][:, 1:5:2, i, 0:2], [((2, 3, 6, 4, 3), (3,))],
         make=_floats_and_ints(4), diff=(0,)),
    Case("getitem", lambda x, i, j: gpuad.getitem(x, (i, slice(None), 0, j)),
         lambda x, i, j: x[:, :, 0][i, :, j], [((3, 4, 2, 5), (2,), (2,))],
         make=_floats_and_ints(3), diff=(0,)),
    Case("getitem", lambda x, i: gpuad.getitem(x, (None, i, Ellipsis, -1)),
         lambda x, i: x[..., -1][None, i], [((3, 4, 5), (2, 2))], make=_floats_and_ints(3),
         diff=(0,)),
    Case("getitem", lambda x, m: gpuad.getitem(x, (slice(None), 2, m)),
         lambda x, m: x[:, 2][:, m], [((2, 3, 4), (4,))], make=_floats_and_masks, diff=(0,)),
    # ---- diagonals ----
    Case("diagonal", gpuad.diagonal,
         lambda x, offset=0, dim1=0, dim2=1: np.diagonal(x, offset, dim1, dim2),
         [((3, 4),), ((2, 3, 4),)],
         kwargs=[{}, {"offset": 1}, {"offset": -1, "dim1": 1, "dim2": 0},
                 {"offset": 2, "dim1": -1, "dim2": 0}]),
    Case("diagonal_scatter", gpuad.diagonal_scatter, _diagonal_scatter_ref,
         [((3, 4), (3,)), ((2, 3, 3), (3, 2))]),
    Case("diagonal_scatter", gpuad.diagonal_scatter, _diagonal_scatter_ref, [((2, 3, 4), (4, 1))],
         kwargs=[{"offset": 1, "dim1": 1, "dim2": 0}]),
    Case("diag_embed", gpuad.diag_embed, _diag_embed_ref, [((3,),), ((2, 3),)],
         kwargs=[{}, {"offset": 1}, {"offset": -2, "dim1": 0, "dim2": -1}]),
    Case("diag", gpuad.diag, lambda x, diagonal=0: np.diag(x, diagonal),
         [((3,),), ((3, 4),), ((0,),)], kwargs=[{}, {"diagonal": 1}, {"diagonal": -2}]),
    Case("trace", gpuad.trace, np.trace, [((3, 4),), ((4, 3),), ((0, 2),)]),
    # ---- rearranging ----
    Case("roll", gpuad.roll, lambda x, shifts, dims=None: np.roll(x, shifts, dims),
         [((3, 4),)], kwargs=[{"shifts": 1}, {"shifts": -5, "dims": 1},
                              {"shifts": (1, 2), "dims": (0, 1)},
                              {"shifts": (2, 1), "dims": (1, 1)}, {"shifts": 3, "dims": 0}]),
    Case("roll", gpuad.roll, lambda x, shifts, dims=None: np.roll(x, shifts, dims),
         [((),), ((0, 2),)], kwargs=[{"shifts": 2}]),
    Case("rot90", gpuad.rot90, lambda x, k=1, dims=(0, 1): np.rot90(x, k, dims),
         [((2, 3),), ((2, 3, 4),)],
         kwargs=[{}, {"k": 2}, {"k": -1}, {"k": 4}, {"k": 3, "dims": (1, 0)}]),
    Case("repeat_interleave", gpuad.repeat_interleave,
         lambda x, repeats, axis=None: np.repeat(x, repeats, axis), [((2, 3),), ((),)],
         kwargs=[{"repeats": 2}, {"repeats": 1}, {"repeats": 0}]),
    Case("repeat_interleave", gpuad.repeat_interleave,
         lambda x, repeats, axis=None: np.repeat(x, repeats, axis), [((2, 3),)],
         kwargs=[{"repeats": 3, "dim": 1}, {"repeats": 2, "dim": -2}]),
    Case("repeat_interleave", lambda x, r, dim: gpuad.repeat_interleave(x, r, dim),
         lambda x, r, axis: np.repeat(x, r, axis), [((2, 3), (3,)), ((2, 3), (1,))],
         kwargs=[{"dim": 1}], make=_floats_and_ints(3), diff=(0,)),
    # ---- views and splits ----
    Case("narrow", gpuad.narrow, _narrow_ref, [((4, 5),)],
         kwargs=[{"dim": 0, "start": 1, "length": 2}, {"dim": -1, "start": -3, "length": 3},
                 {"dim": 1, "start": 5, "length": 0}]),
    Case("unflatten", gpuad.unflatten, _unflatten_ref, [((2, 6),)],
         kwargs=[{"dim": 1, "sizes": (2, 3)}, {"dim": -1, "sizes": (3, -1)},
                 {"dim": 0, "sizes": (1, 2, 1)}]),
    Case("movedim", gpuad.movedim, np.moveaxis, [((2, 3, 4),)],
         kwargs=[{"source": 0, "destination": 2}, {"source": (0, 1), "destination": (2, 0)},
                 {"source": -1, "destination": 0}]),
    Case("moveaxis", gpuad.moveaxis, np.moveaxis, [((2, 3, 4),)],
         kwargs=[{"source": (2, 0), "destination": (0, 1)}]),
    Case("tensor_split", gpuad.tensor_split, lambda x, indices_or_sections, axis=0:
         np.array_split(x, indices_or_sections, axis), [((5, 3),)],
         kwargs=[{"indices_or_sections": 3}, {"indices_or_sections": [1, 4]},
                 {"indices_or_sections": [-1, 1, 7]}, {"indices_or_sections": 2, "dim": 1}]),
    Case("unbind", gpuad.unbind, lambda x, axis=0: tuple(np.moveaxis(x, axis, 0)), [((3, 2),)],
         kwargs=[{}, {"dim": 1}, {"dim": -1}]),
    Case("atleast_1d", gpuad.atleast_1d, np.atleast_1d, [((),), ((3,),), ((2, 3),)]),
    Case("atleast_2d", gpuad.atleast_2d, np.atleast_2d, [((),), ((3,),), ((2, 3),)]),
    Case("atleast_3d", gpuad.atleast_3d, np.atleast_3d, [((),), ((3,),), ((2, 3),), ((1, 2, 3),)]),
    Case("atleast_2d", gpuad.atleast_2d, lambda *xs: tuple(np.atleast_2d(*xs)), [((), (3,))]),
    Case("hstack", _seq(gpuad.hstack), lambda *xs: np.hstack(xs), [((2,), (3,)), ((2, 1), (2, 3))]),
    Case("vstack", _seq(gpuad.vstack), lambda *xs: np.vstack(xs), [((3,), (2, 3)), ((), ())]),
    Case("dstack", _seq(gpuad.dstack), lambda *xs: np.dstack(xs),
         [((3,), (3,)), ((2, 3), (2, 3, 2))]),
    Case("column_stack", _seq(gpuad.column_stack), lambda *xs: np.column_stack(xs),
         [((3,), (3, 2)), ((), ())]),
    Case("meshgrid", gpuad.meshgrid, lambda *xs, indexing: np.meshgrid(*xs, indexing=indexing),
         [((2,), (3,)), ((2,), (), (4,))], kwargs=[{"indexing": "ij"}, {"indexing": "xy"}]),
    # ---- integer indices ----
    Case("take_along_dim", lambda x, i, dim: gpuad.take_along_dim(x, i, dim),
         lambda x, i, axis: np.take_along_axis(x, i, axis), [((3, 4), (3, 2)), ((3, 4), (1, 5))],
         kwargs=[{"dim": 1}, {"dim": -1}], make=_floats_and_ints(3), diff=(0,)),
    Case("take_along_dim", lambda x, i, dim: gpuad.take_along_dim(x, i, dim),
         lambda x, i, axis: np.take_along_axis(x, i, axis), [((3, 4), (2, 1))],
         kwargs=[{"dim": 0}], make=_floats_and_ints(2), diff=(0,)),
    Case("take_along_dim", lambda x, i, dim: gpuad.take_along_dim(x, i, dim),
         lambda x, i, axis: np.take_along_axis(x, i, axis), [((2, 3), (5,))],
         kwargs=[{"dim": None}], make=_floats_and_ints(6), diff=(0,)),
    Case("scatter", lambda x, i, src, dim: gpuad.scatter(x, dim, i, src), _scatter_ref,
         [((3, 4), (2, 4), (2, 4)), ((3, 4), (2, 2), (3, 3))], kwargs=[{"dim": 0}],
         make=_with_distinct(0, 3), diff=(0, 2)),
    Case("scatter", lambda x, i, src, dim: gpuad.scatter(x, dim, i, src), _scatter_ref,
         [((3, 4), (3, 2), (3, 2))], kwargs=[{"dim": 1}, {"dim": -1}], make=_with_distinct(1, 4),
         diff=(0, 2)),
    Case("scatter", lambda x, i, dim, value: gpuad.scatter(x, dim, i, value=value),
         lambda x, i, axis, value: _scatter_ref(x, i, np.full(i.shape, value), axis),
         [((3, 4), (3, 2))], kwargs=[{"dim": 1, "value": 1.5}], make=_floats_and_ints(4),
         diff=(0,)),
    Case("scatter_add", lambda x, i, src, dim: gpuad.scatter_add(x, dim, i, src), _scatter_add_ref,
         [((3, 4), (5, 4), (5, 4)), ((3, 4), (2, 2), (3, 3))], kwargs=[{"dim": 0}],
         make=_with_index(3), diff=(0, 2)),
    Case("scatter_reduce", lambda x, i, src, dim, reduce, include_self:
         gpuad.scatter_reduce(x, dim, i, src, reduce, include_self=include_self),
         _scatter_reduce_ref, [((3, 3), (3, 3), (3, 3))], kwargs=SCATTER_REDUCE_KWARGS,
         make=_with_index(3), diff=(0, 2)),
    Case("_scatter_reduce", lambda x, src, i, dim, reduce: ops._scatter_reduce(
         x, src, index=i.array, dim=dim, reduce=reduce), lambda x, src, i, axis, reduce:
         _scatter_reduce_ref(x, i, src, axis, reduce), [((2, 3), (4, 3), (4, 3))],
         kwargs=[{"dim": 0, "reduce": "prod"}, {"dim": 0, "reduce": "amin"}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   rng.integers(0, 2, shapes[2])], diff=(0, 1)),
    Case("index_add", lambda x, i, src, dim, alpha=1: gpuad.index_add(x, dim, i, src, alpha=alpha),
         lambda x, i, src, axis, alpha=1:
         _index_put_ref(x, alpha * src, _along_ref(x, i, axis), True),
         [((3, 4), (5,), (3, 5))], kwargs=[{"dim": 1}, {"dim": -1, "alpha": -0.5}],
         make=_with_index(4), diff=(0, 2)),
    Case("index_copy", lambda x, i, src, dim: gpuad.index_copy(x, dim, i, src),
         lambda x, i, src, axis: _index_put_ref(x, src, _along_ref(x, i, axis)),
         [((4, 3), (3,), (3, 3))], kwargs=[{"dim": 0}], make=_with_distinct(0, 4), diff=(0, 2)),
    Case("index_fill", lambda x, i, dim, value: gpuad.index_fill(x, dim, i, value),
         lambda x, i, axis, value: _index_put_ref(x, value, _along_ref(x, i, axis)),
         [((3, 4), (3,))], kwargs=[{"dim": 1, "value": -2.0}, {"dim": 0, "value": 3}],
         make=_floats_and_ints(3, -3), diff=(0,)),
    Case("index_fill", lambda x, i, v, dim: gpuad.index_fill(x, dim, i, v),
         lambda x, i, v, axis: _index_put_ref(x, v, _along_ref(x, i, axis)),
         [((3, 4), (4,), ())], kwargs=[{"dim": 1}], make=_with_index(4), diff=(0, 2)),
    Case("index_put", lambda x, v, i, accumulate=False: gpuad.index_put(x, (i,), v, accumulate),
         lambda x, v, i, accumulate=False: _index_put_ref(x, v, (i,), accumulate),
         [((4, 3), (5, 3), (5,)), ((4, 3), (3,), (5,))], kwargs=[{"accumulate": True}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   rng.integers(-4, 4, shapes[2])], diff=(0, 1)),
    Case("index_put", lambda x, v, i, j: gpuad.index_put(x, (i, j), v),
         lambda x, v, i, j: _index_put_ref(x, v, (i, j)), [((4, 3), (2,), (2,), (2,))],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   np.array([0, 3]), np.array([2, 2])], diff=(0, 1)),
    Case("index_put", lambda x, v, m: gpuad.index_put(x, (m,), v),
         lambda x, v, m: _index_put_ref(x, v, (m,)), [((4, 3), (1,), (4, 3)), ((4, 3), (3,), (4,))],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]),
                                   rng.random(shapes[2]) > 0.5], diff=(0, 1)),
    Case("_index_put", lambda x, v, i, accumulate=False: ops._index_put(x, v, index=(i.array,),
                                                                       accumulate=accumulate),
         lambda x, v, i, accumulate=False: _index_put_ref(x, v, (i,), accumulate),
         [((4, 3), (2, 3), (2,))], kwargs=[{}, {"accumulate": True}],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), REAL(rng, shapes[1]), np.array([3, 0])],
         diff=(0, 1)),
    # ---- boolean masks and nonzero ----
    Case("masked_select", gpuad.masked_select, lambda x, m: np.broadcast_arrays(x, m)[0][
        np.broadcast_arrays(x, m)[1]], [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (2, 4))],
         make=_floats_and_masks, diff=(0,)),
    Case("masked_scatter", gpuad.masked_scatter, _masked_scatter_ref,
         [((3, 4), (3, 4), (12,)), ((3, 4), (4,), (4, 4)), ((4,), (2, 4), (3, 3))],
         make=lambda rng, shapes: [REAL(rng, shapes[0]), rng.random(shapes[1]) > 0.4,
                                   REAL(rng, shapes[2])], diff=(0, 2)),
    Case("nonzero", gpuad.nonzero, lambda x, as_tuple=False: np.nonzero(x) if as_tuple
         else np.argwhere(x), [((3, 4),), ((5,),), ((0, 2),)],
         kwargs=[{}, {"as_tuple": True}], make=_nonzeros, grad=False),
    Case("argwhere", gpuad.argwhere, np.argwhere, [((3, 4),), ((2, 1, 3),), ((),)],
         make=_nonzeros, grad=False),
    Case("where", lambda c: gpuad.where(c), np.nonzero, [((3, 4),), ((5,),)],
         make=lambda rng, shapes: [rng.random(s) > 0.5 for s in shapes], grad=False),
]
SHAPE_CASES += BREADTH_CASES
