"""Rows for the nn.functional maths of issue 15's layers (composites, not registered ops), run by
test_torch_layers.py through test_ops.table_tests: forward against a numpy float64 reference where
one is short (None where torch is the oracle, in test_torch_layers.py), float64 gradchecks of
first and second order, float32 staying float32, on the cpu and strict backends."""
import numpy as np
from op_cases import POSITIVE, REAL, Case

import gpuad.nn.functional as F


def _norm_ref(x, axis, keepdims=False):
    return np.sqrt((x * x).sum(axis, keepdims=keepdims))


def _cosine_ref(x1, x2, axis=1, eps=1e-8):
    x1, x2 = np.broadcast_arrays(x1, x2)
    n1 = np.maximum(_norm_ref(x1, axis, True), eps)
    n2 = np.maximum(_norm_ref(x2, axis, True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(axis)


def _pairwise_ref(x1, x2, p=2.0, eps=1e-6, keepdims=False):
    d = np.abs(x1 - x2 + eps)
    return (d ** p).sum(-1, keepdims=keepdims) ** (1 / p)


def _pixel_shuffle_ref(x, upscale_factor):
    r = upscale_factor
    *batch, c, h, w = x.shape
    out = np.zeros(tuple(batch) + (c // (r * r), h * r, w * r))
    for k in range(c // (r * r)):
        for i in range(r):
            for j in range(r):
                out[..., k, i::r, j::r] = x[..., k * r * r + i * r + j, :, :]
    return out


def _pixel_unshuffle_ref(x, downscale_factor):
    r = downscale_factor
    *batch, c, h, w = x.shape
    out = np.zeros(tuple(batch) + (c * r * r, h // r, w // r))
    for k in range(c):
        for i in range(r):
            for j in range(r):
                out[..., k * r * r + i * r + j, :, :] = x[..., k, i::r, j::r]
    return out


def _instance_norm_ref(x, w=None, b=None, eps=1e-5):
    axes = tuple(range(2, x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = y if w is None else y * w.reshape(shape)
    return y if b is None else y + b.reshape(shape)


def _lrn_ref(x, size, alpha=1e-4, beta=0.75, k=1.0):
    c = x.shape[1]
    div = np.zeros_like(x)
    for i in range(c):
        lo, hi = max(i - size // 2, 0), min(i + (size - 1) // 2, c - 1)
        div[:, i] = (x[:, lo:hi + 1] ** 2).sum(1)
    return x / (k + alpha / size * div) ** beta


def _bag_ref(index, weight, offsets=None, mode="mean", per_sample_weights=None,
             include_last_offset=False, padding_idx=None):
    if index.ndim == 2:
        bags = list(index)
        psw = None if per_sample_weights is None else list(per_sample_weights)
    else:
        ends = list(offsets[1:]) + ([] if include_last_offset else [len(index)])
        starts = offsets[:-1] if include_last_offset else offsets
        bags = [index[s:e] for s, e in zip(starts, ends)]
        psw = None if per_sample_weights is None else [per_sample_weights[s:e]
                                                       for s, e in zip(starts, ends)]
    out = np.zeros((len(bags), weight.shape[1]))
    for i, bag in enumerate(bags):
        keep = [j for j, k in enumerate(bag) if k != padding_idx]
        if not keep:
            continue
        rows = weight[bag[keep]]
        if psw is not None:
            rows = rows * psw[i][keep][:, None]
        out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode]
    return out


def _bag_inputs(shape_2d=None, offsets=None, weights=False):
    def make(rng, shapes):
        index = (rng.integers(0, 6, shape_2d) if shape_2d else
                 rng.integers(0, 6, shapes[0]))
        out = [index, REAL(rng, shapes[1])]
        if offsets is not None:
            out.append(np.array(offsets))
        if weights:
            out.append(REAL(rng, index.shape))
        return out
    return make


def _weighted_bag(index, weight, offsets, weights, **kwargs):
    return F.embedding_bag(index, weight, offsets, per_sample_weights=weights, **kwargs)


def _weighted_bag_ref(index, weight, offsets, weights, **kwargs):
    return _bag_ref(index, weight, offsets, per_sample_weights=weights, **kwargs)


def _grid_inputs(rng, shapes):
    """An input and a grid reaching a little past [-1, 1] (so every padding mode shows)."""
    return [REAL(rng, shapes[0]), rng.uniform(-1.2, 1.2, shapes[1])]


LAYER_CASES = [
    # ---- distances ----
    Case("normalize", F.normalize, lambda x, p=2.0, axis=1: x / np.maximum(
        (np.abs(x) ** p).sum(axis, keepdims=True) ** (1 / p), 1e-12),
         [((3, 4),), ((2, 3, 2),)], kwargs=[{}, {"dim": -1}, {"p": 1.0, "dim": 0}]),
    Case("cosine_similarity", F.cosine_similarity, _cosine_ref,
         [((3, 4), (3, 4)), ((2, 3, 2), (1, 3, 2))], kwargs=[{}, {"dim": -1}]),
    Case("pairwise_distance", F.pairwise_distance, _pairwise_ref,
         [((3, 4), (3, 4)), ((4,), (2, 4))], kwargs=[{}, {"p": 3.0}, {"keepdim": True}]),
    # ---- shuffles, bilinear ----
    Case("pixel_shuffle", F.pixel_shuffle, _pixel_shuffle_ref, [((1, 8, 2, 3),), ((4, 2, 2),)],
         kwargs=[{"upscale_factor": 2}]),
    Case("pixel_unshuffle", F.pixel_unshuffle, _pixel_unshuffle_ref,
         [((1, 2, 4, 6),), ((1, 4, 2),)], kwargs=[{"downscale_factor": 2}]),
    Case("bilinear", F.bilinear, lambda a, b, w, bias=None: np.einsum("...i,oij,...j->...o", a, w,
                                                                       b) + (0 if bias is None
                                                                             else bias),
         [((3, 2), (3, 4), (5, 2, 4), (5,)), ((2, 2, 2), (2, 2, 3), (2, 2, 3))]),
    # ---- norms ----
    Case("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
         _instance_norm_ref, [((2, 3, 4), (3,), (3,)), ((2, 2, 3, 2), (2,), (2,))]),
    Case("instance_norm", F.instance_norm, _instance_norm_ref, [((1, 2, 5),)]),
    Case("local_response_norm", F.local_response_norm, _lrn_ref,
         [((2, 5, 3),), ((1, 4, 2, 2),)],
         kwargs=[{"size": 3}, {"size": 2, "alpha": 0.5, "beta": 0.6, "k": 2.0}], domain=POSITIVE),
    # ---- embedding bags ----
    Case("embedding_bag", F.embedding_bag, _bag_ref, [((2, 3), (6, 2))], diff=(1,),
         kwargs=[{"mode": "sum"}, {"mode": "mean"}, {"mode": "max"},
                 {"mode": "mean", "padding_idx": 2}], make=_bag_inputs()),
    Case("embedding_bag", F.embedding_bag, _bag_ref, [((7,), (6, 2))], diff=(1,),
         kwargs=[{"mode": "sum"}, {"mode": "mean"}, {"mode": "max"}],
         make=_bag_inputs(offsets=[0, 2, 2, 5])),  # the second bag is empty
    Case("embedding_bag", _weighted_bag, _weighted_bag_ref, [((6,), (6, 3))], diff=(1, 3),
         kwargs=[{"mode": "sum", "include_last_offset": True}],
         make=_bag_inputs(offsets=[0, 1, 4, 6], weights=True)),
    # ---- resampling (forward against torch in test_torch_layers.py) ----
    Case("interpolate", F.interpolate, None, [((1, 2, 3, 4),)],
         kwargs=[{"scale_factor": 2, "mode": "bilinear", "align_corners": False},
                 {"size": (2, 5), "mode": "bicubic", "align_corners": True},
                 {"scale_factor": 1.5, "mode": "nearest-exact"},
                 {"size": (2, 3), "mode": "area"}]),
    Case("interpolate", F.interpolate, None, [((2, 2, 4),)],
         kwargs=[{"size": 6, "mode": "linear", "align_corners": False},
                 {"scale_factor": 0.6, "mode": "linear", "align_corners": True}]),
    Case("interpolate", F.interpolate, None, [((1, 1, 2, 3, 2),)],
         kwargs=[{"scale_factor": (1.5, 1, 2), "mode": "trilinear", "align_corners": False}]),
    Case("grid_sample", F.grid_sample, None, [((1, 2, 3, 4), (1, 2, 3, 2))], make=_grid_inputs,
         kwargs=[{"align_corners": False}, {"padding_mode": "border", "align_corners": True},
                 {"padding_mode": "reflection", "align_corners": False},
                 {"mode": "bicubic", "padding_mode": "reflection", "align_corners": True}]),
    Case("grid_sample", F.grid_sample, None, [((1, 2, 3, 4), (1, 2, 3, 2))], diff=(0,),
         make=_grid_inputs, kwargs=[{"mode": "nearest", "align_corners": False}]),
    Case("affine_grid", F.affine_grid, None, [((2, 2, 3),)],
         kwargs=[{"size": (2, 1, 3, 4), "align_corners": False},
                 {"size": (2, 3, 2, 3), "align_corners": True}]),
    Case("affine_grid", F.affine_grid, None, [((1, 3, 4),)],
         kwargs=[{"size": (1, 1, 2, 3, 2), "align_corners": False}]),
    # ---- dropout (identity cases; randomness in test_torch_layers.py) ----
    Case("dropout1d", F.dropout1d, lambda x, p=0.5, training=True: x, [((2, 3, 4),)],
         kwargs=[{"p": 0.0}, {"training": False}]),
    Case("dropout2d", F.dropout2d, lambda x, p=0.5, training=True: x, [((2, 3, 2, 2),)],
         kwargs=[{"p": 0.0}, {"training": False}]),
    Case("dropout3d", F.dropout3d, lambda x, p=0.5, training=True: x, [((2, 2, 2, 1, 2),)],
         kwargs=[{"p": 0.0}, {"training": False}]),
    Case("alpha_dropout", F.alpha_dropout, lambda x, p=0.5, training=False: x, [((2, 3),)],
         kwargs=[{}, {"p": 0.0, "training": True}]),
    Case("feature_alpha_dropout", F.feature_alpha_dropout, lambda x, p=0.5, training=False: x,
         [((2, 3, 2),)], kwargs=[{}, {"p": 0.0, "training": True}]),
]
