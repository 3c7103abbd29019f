"""Rows of the op table for gpuad/ops/shape.py (merged into op_cases.CASES)."""
import numpy as np
from op_cases import REAL, Case

import gpuad

ops = gpuad.ops  # the internal (underscore) primitives live here, not in gpuad


# ---- numpy references ------------------------------------------------------------------------------
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
    x = x[tuple(slice(None) if d == axis % x.ndim else slice(0, s) for d, s in enumerate(index.shape))]
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
         kwargs=[{"dims": (2, 0, 1)}, {"dims": (-1, 0, 1)}, {"dims": (0, 1, 2)}, {"dims": (1, 0, 2)}]),
    Case("permute", lambda x, dims: gpuad.permute(x, dims), lambda x, dims: np.transpose(x, dims), [((),)],
         kwargs=[{"dims": ()}]),
    Case("transpose", gpuad.transpose, lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), [((2, 3, 4),)],
         kwargs=[{"dim0": 0, "dim1": 2}, {"dim0": -1, "dim1": 0}, {"dim0": 1, "dim1": 1}]),
    Case("swapaxes", gpuad.swapaxes, lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1),
         [((2, 3),), ((2, 3, 4),)],
         kwargs=[{"dim0": 0, "dim1": 1}, {"dim0": -1, "dim1": -2}]),
    Case("flatten", gpuad.flatten, _flatten_ref, [((2, 3, 4),)],
         kwargs=[{}, {"start_dim": 1}, {"start_dim": 0, "end_dim": 1}, {"start_dim": -2, "end_dim": -1},
                 {"start_dim": 1, "end_dim": 1}]),
    Case("flatten", gpuad.flatten, _flatten_ref, [((),)]),
    Case("squeeze", gpuad.squeeze, _squeeze_ref, [((2, 1, 3, 1),)],
         kwargs=[{}, {"dim": 1}, {"dim": -1}, {"dim": 0}, {"dim": (1, 3)}, {"axis": (0, -1)}]),
    Case("squeeze", gpuad.squeeze, _squeeze_ref, [((),), ((1,),)], kwargs=[{}, {"dim": 0}]),
    Case("unsqueeze", gpuad.unsqueeze, np.expand_dims, [((2, 3),)],
         kwargs=[{"dim": 0}, {"dim": 1}, {"dim": 2}, {"dim": -1}, {"dim": -3}]),
    Case("unsqueeze", gpuad.unsqueeze, np.expand_dims, [((),)], kwargs=[{"dim": 0}, {"dim": -1}]),
    # ---- tiling ----
    Case("repeat", gpuad.repeat, lambda x, repeats: np.tile(x, repeats), [((2, 3),)],
         kwargs=[{"repeats": (2, 1)}, {"repeats": (1, 2, 3)}, {"repeats": (1, 1)}, {"repeats": (0, 2)}]),
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
    Case("_cat", lambda *xs, dim=0: ops._cat(*xs, dim=dim),
         lambda *xs, axis=0: np.concatenate(xs, axis), [((2, 3), (1, 3)), ((3,), (3,), (1,))]),
    Case("_cat", lambda *xs, dim=0: ops._cat(*xs, dim=dim),
         lambda *xs, axis=0: np.concatenate(xs, axis), [((2, 1, 3), (2, 2, 3))], kwargs=[{"dim": 1}]),
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
         kwargs=[{"pad": (2, 4, 1, 0), "mode": "circular"}, {"pad": (1, 1, 1, 1), "mode": "reflect"},
                 {"pad": (3, 3, 2, 2), "mode": "reflect"}, {"pad": (2, 1, 0, 3), "mode": "replicate"}]),
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
    Case("_embed", lambda x, index, shape, **kw: ops._embed(x, index=index, shape=shape, **kw), _embed_ref,
         [((2, 3),)], kwargs=[{"index": (slice(1, 3),), "shape": (4, 3)},
                              {"index": (slice(None, None, -1), slice(2, 5)), "shape": (2, 6),
                               "value": -1.0},
                              {"index": (Ellipsis, 1, slice(None)), "shape": (2, 2, 3)}]),
    Case("_embed", lambda x, index, shape, **kw: ops._embed(x, index=index, shape=shape, **kw), _embed_ref,
         [((4, 3),)], kwargs=[{"index": ([0, 2, 0, 0],), "shape": (3, 3), "accumulate": True},
                              {"index": (slice(None), [1, 1, 0]), "shape": (4, 2), "accumulate": True}]),
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
         [((3, 4), (3, 5)), ((3, 4), (2, 2))], kwargs=[{"dim": 1}], make=_floats_and_ints(3), diff=(0,)),
    Case("_gather", lambda x, index, dim: ops._gather(x, index, dim=dim), _gather_ref,
         [((3, 4), (2, 2)), ((2, 3), (4, 3))], kwargs=[{"dim": 0}], make=_floats_and_ints(2), diff=(0,)),
    Case("_scatter_add", lambda src, index, dim, shape: ops._scatter_add(src, index, dim=dim, shape=shape),
         _scatter_add_ref, [((3, 4), (3, 4))],
         kwargs=[{"dim": 0, "shape": (3, 4)}, {"dim": 1, "shape": (3, 5)}, {"dim": 1, "shape": (4, 4)}],
         make=_floats_and_ints(3), diff=(0,)),
    Case("index_select", lambda x, index, dim: gpuad.index_select(x, dim, index),
         lambda x, index, axis: np.take(x, index, axis),
         [((4, 3), (5,)), ((2, 3, 3), (2,))], kwargs=[{"dim": 0}, {"dim": 1}, {"dim": -1}],
         make=_floats_and_ints(2), diff=(0,)),
    Case("one_hot", gpuad.one_hot, _one_hot_ref, [((5,),), ((2, 3),), ((),)],
         kwargs=[{}, {"num_classes": 6}], make=lambda rng, shapes: [rng.integers(0, 4, s) for s in shapes],
         grad=False),
]
