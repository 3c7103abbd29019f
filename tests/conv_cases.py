"""Rows of the op table for conv (merged into op_cases.CASES), with naive numpy float64 references:
loops over output positions, written for clarity and tiny shapes, independent of im2col."""
import itertools
import math

import numpy as np
from op_cases import DISTINCT, REAL, Case

import gpuad


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _batched(x):
    return (x, False) if x.ndim == 4 else (x[None], True)


# ---- references ---------------------------------------------------------------------------------
def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _batched(x)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    out_c, group_c, kh, kw = w.shape
    if padding == "valid":
        pads = (0, 0, 0, 0)
    elif padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _pair(padding)
        pads = (ph, ph, pw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], out_c, ho, wo))
    per_group = out_c // groups
    for o in range(out_c):
        c0 = (o // per_group) * group_c
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, c0:c0 + group_c, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                           j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    if b is not None:
        out += b[None, :, None, None]
    return out[0] if unbatched else out


def ref_conv2d_op(x, w, b, stride, padding, dilation, groups):
    """gpuad.ops._convolution: padding as (top, bottom, left, right)."""
    x = np.pad(x, ((0, 0), (0, 0), padding[:2], padding[2:]))
    return ref_conv2d(x, w, b, stride=stride, dilation=dilation, groups=groups)


def _pool_size(n, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape."""
    size = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (size - 1) * s >= n + p:
        size -= 1
    return size


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Yield (i, j, rows, cols, hstart, wstart) per output position; rows/cols are the in-range
    input indices of the window."""
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(stride if stride is not None else kernel_size)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    h, w = x.shape[-2:]
    ho, wo = _pool_size(h, kh, sh, ph, dh, ceil_mode), _pool_size(w, kw, sw, pw, dw, ceil_mode)
    for i in range(ho):
        for j in range(wo):
            rows = [r for r in range(i * sh - ph, i * sh - ph + dh * (kh - 1) + 1, dh)
                    if 0 <= r < h]
            cols = [c for c in range(j * sw - pw, j * sw - pw + dw * (kw - 1) + 1, dw)
                    if 0 <= c < w]
            yield i, j, rows, cols, ho, wo


def ref_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    x, unbatched = _batched(x)
    out = None
    for i, j, rows, cols, ho, wo in _windows(x, kernel_size, stride, padding, dilation, ceil_mode):
        if out is None:
            out = np.zeros(x.shape[:2] + (ho, wo))
        out[:, :, i, j] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return out[0] if unbatched else out


def ref_avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
    x, unbatched = _batched(x)
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    (sh, sw) = _pair(stride if stride is not None else kernel_size)
    h, w = x.shape[-2:]
    out = None
    for i, j, rows, cols, ho, wo in _windows(x, kernel_size, stride, padding, 1, ceil_mode):
        if out is None:
            out = np.zeros(x.shape[:2] + (ho, wo))
        total = x[:, :, rows][:, :, :, cols].sum(axis=(2, 3))
        if divisor_override:
            divisor = divisor_override
        elif count_include_pad:  # the window clipped to the padded input, as torch counts it
            hs, ws = i * sh - ph, j * sw - pw
            divisor = (min(hs + kh, h + ph) - hs) * (min(ws + kw, w + pw) - ws)
        else:
            divisor = len(rows) * len(cols)
        out[:, :, i, j] = total / divisor
    return out[0] if unbatched else out


def ref_adaptive_avg_pool2d(x, output_size):
    x, unbatched = _batched(x)
    h, w = x.shape[-2:]
    ho, wo = (output_size, output_size) if isinstance(output_size, int) else output_size
    ho, wo = ho or h, wo or w
    out = np.zeros(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            r0, r1 = i * h // ho, math.ceil((i + 1) * h / ho)
            c0, c1 = j * w // wo, math.ceil((j + 1) * w / wo)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out[0] if unbatched else out


def ref_im2col(x, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), value=0):
    """(C, kh, kw, Ho, Wo, N): entry [c, i, j, oh, ow, n] = padded x[n, c, oh*sh + i*dh, ...]."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), padding[:2], padding[2:]), constant_values=value)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((c, kh, kw, ho, wo, n))
    for i in range(kh):
        for j in range(kw):
            for oh in range(ho):
                for ow in range(wo):
                    out[:, i, j, oh, ow, :] = xp[:, :, oh * sh + i * dh, ow * sw + j * dw].T
    return out


def ref_col2im(cols, shape, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    h, w = shape[2:]
    top, _, left, _ = padding
    (sh, sw), (dh, dw) = stride, dilation
    out = np.zeros(shape)
    _, kh, kw, ho, wo, _ = cols.shape
    for i in range(kh):
        for j in range(kw):
            for oh in range(ho):
                for ow in range(wo):
                    r, q = oh * sh + i * dh - top, ow * sw + j * dw - left
                    if 0 <= r < h and 0 <= q < w:
                        out[:, :, r, q] += cols[:, i, j, oh, ow, :].T
    return out


def _first_max_positions(x, kernel, stride, padding, dilation):
    """Per output (i, j), per (n, c): the (row, col) of the window's first maximum (row-major)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, bottom, left, right = padding
    n, c, h, w = x.shape
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    for i in range(ho):
        for j in range(wo):
            cells = [(r, q) for r in range(i * sh - top, i * sh - top + dh * (kh - 1) + 1, dh)
                     for q in range(j * sw - left, j * sw - left + dw * (kw - 1) + 1, dw)
                     if 0 <= r < h and 0 <= q < w]
            for a in range(n):
                for b in range(c):
                    values = [x[a, b, r, q] for r, q in cells]
                    yield (i, j, a, b), cells[int(np.argmax(values))], (ho, wo)


def ref_pool_gather(v, x, kernel, stride, padding, dilation):
    out = {}
    for (i, j, a, b), (r, q), size in _first_max_positions(x, kernel, stride, padding, dilation):
        out.setdefault("y", np.zeros(x.shape[:2] + size))[a, b, i, j] = v[a, b, r, q]
    return out["y"]


def ref_pool_scatter(g, x, best, kernel, stride, padding, dilation):
    out = np.zeros(x.shape)
    for (i, j, a, b), (r, q), _ in _first_max_positions(x, kernel, stride, padding, dilation):
        out[a, b, r, q] += g[a, b, i, j]
    return out


def ref_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """Scatter every input pixel times the kernel onto a canvas, then crop `padding` off each side
    (the canvas runs output_padding past the last window at the bottom and right)."""
    x, unbatched = _batched(x)
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = map(_pair, (stride, padding, output_padding,
                                                         dilation))
    n, in_c, h, wd = x.shape
    _, group_out, kh, kw = w.shape
    canvas = np.zeros((n, group_out * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oh,
                       (wd - 1) * sw + dw * (kw - 1) + 1 + ow))
    group_in = in_c // groups
    for c in range(in_c):
        o0 = (c // group_in) * group_out
        for i in range(h):
            for j in range(wd):
                for ki in range(kh):
                    for kj in range(kw):
                        canvas[:, o0:o0 + group_out, i * sh + ki * dh, j * sw + kj * dw] += (
                            x[:, c, i, j][:, None] * w[c, :, ki, kj][None])
    out = canvas[:, :, ph:canvas.shape[2] - ph, pw:canvas.shape[3] - pw]
    if b is not None:
        out = out + b[None, :, None, None]
    return out[0] if unbatched else out


def _fold_geometry(kernel_size, dilation, padding, stride):
    (ph, pw) = _pair(padding)
    return {"kernel": _pair(kernel_size), "stride": _pair(stride), "padding": (ph, ph, pw, pw),
            "dilation": _pair(dilation)}


def ref_unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    x, unbatched = _batched(x)
    cols = ref_im2col(x, **_fold_geometry(kernel_size, dilation, padding, stride))
    c, kh, kw, ho, wo, n = cols.shape
    out = cols.reshape(c * kh * kw, ho * wo, n).transpose(2, 0, 1)
    return out[0] if unbatched else out


def ref_fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    unbatched = x.ndim == 2
    x = x[None] if unbatched else x
    geometry = _fold_geometry(kernel_size, dilation, padding, stride)
    (kh, kw), (n, depth, _) = geometry["kernel"], x.shape
    ho = ref_im2col(np.zeros((1, 1) + _pair(output_size)), **geometry).shape[3:5]
    cols = x.transpose(1, 2, 0).reshape((depth // (kh * kw), kh, kw) + ho + (n,))
    out = ref_col2im(cols, (n, depth // (kh * kw)) + _pair(output_size), **geometry)
    return out[0] if unbatched else out


# ---- inputs -------------------------------------------------------------------------------------
def _values_and_chooser(rng, shapes):
    """Values (or gradients) v, and an x whose small integers make many ties in its windows, so
    the first-max rule shows (x only chooses: it gets no gradient)."""
    return [REAL(rng, shapes[0]), rng.integers(0, 3, shapes[1]).astype(float)]


def _scatter_inputs(geometry):
    """_pool_scatter's inputs: gradients v, a tie-rich chooser x and x's window maxima."""
    def make(rng, shapes):
        v, x = _values_and_chooser(rng, shapes)
        return [v, x, ref_pool_gather(x, x, **geometry)]
    return make


_POOL_GEOMETRIES = [  # output sizes (3, 2), (4, 4) and (3, 1) for a (5, 4) input
    {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 1, 0, 0), "dilation": (1, 1)},
    {"kernel": (3, 2), "stride": (1, 1), "padding": (1, 0, 0, 1), "dilation": (1, 1)},
    {"kernel": (2, 2), "stride": (2, 1), "padding": (1, 1, 0, 0), "dilation": (2, 3)},
]


_TILED = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "dilation": (1, 1)}
_IM2COL = {"kernel": (2, 3), "stride": (1, 2), "padding": (1, 0, 0, 2), "dilation": (2, 1)}
_IM2COL_OUT = ref_im2col(np.zeros((2, 3, 5, 4)), **_IM2COL).shape

CONV_CASES = [
    Case("conv2d", gpuad.conv2d, ref_conv2d, [((2, 3, 5, 4), (4, 3, 3, 2), (4,))],
         kwargs=[{}, {"stride": 2}, {"padding": 1}, {"padding": (2, 0), "stride": (1, 2)},
                 {"padding": "same"}, {"padding": "valid"}, {"dilation": 2, "padding": "same"},
                 {"dilation": (2, 1), "stride": (2, 1), "padding": 1}]),
    Case("conv2d", gpuad.conv2d, ref_conv2d, [((2, 4, 7, 6), (6, 2, 3, 2), (6,)),
                                              ((2, 4, 7, 6), (6, 2, 3, 2))],  # no bias
         kwargs=[{"groups": 2}, {"groups": 2, "stride": 2, "padding": 1}]),
    Case("conv2d", gpuad.conv2d, ref_conv2d, [((4, 4, 4), (4, 1, 2, 2), (4,))],  # unbatched
         kwargs=[{"groups": 4, "padding": "same"}]),  # depthwise; even kernel: extra bottom/right
    Case("max_pool2d", gpuad.max_pool2d, ref_max_pool2d, [((2, 3, 6, 5),), ((3, 5, 4),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                 {"kernel_size": (3, 2), "stride": (2, 1), "ceil_mode": True},
                 {"kernel_size": 2, "stride": 1, "dilation": 2},
                 {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}],
         domain=DISTINCT),
    Case("max_pool2d", gpuad.max_pool2d, ref_max_pool2d, [((2, 3, 6, 4),), ((3, 4, 6),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": (3, 2)},
                 {"kernel_size": 2, "ceil_mode": True}],
         domain=DISTINCT),  # windows that tile the input: _pool_scatter's reshaped path
    Case("avg_pool2d", gpuad.avg_pool2d, ref_avg_pool2d, [((2, 3, 6, 5),), ((3, 5, 4),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                 {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
                 {"kernel_size": (3, 2), "stride": (2, 1), "ceil_mode": True},
                 {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                  "count_include_pad": False},
                 {"kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3}]),
    Case("adaptive_avg_pool2d", gpuad.adaptive_avg_pool2d, ref_adaptive_avg_pool2d,
         [((2, 3, 6, 5),), ((3, 5, 4),)],
         kwargs=[{"output_size": 1}, {"output_size": (3, 5)}, {"output_size": (4, 3)},
                 {"output_size": (None, 2)}]),
    Case("_im2col", gpuad.ops._im2col, ref_im2col, [((2, 3, 5, 4),)],
         kwargs=[_IM2COL, {"kernel": (3, 3), "padding": (1, 1, 1, 1)},
                 {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 1, 0, 1), "value": -5.0}]),
    Case("_col2im", gpuad.ops._col2im, ref_col2im, [(_IM2COL_OUT,)],
         kwargs=[{"shape": (2, 3, 5, 4), **_IM2COL}]),
    Case("_col2im", gpuad.ops._col2im, ref_col2im, [((3, 2, 2, 2, 2, 2),)],  # disjoint windows
         kwargs=[{"shape": (2, 3, 4, 5), "kernel": (2, 2), "stride": (2, 2)}]),
    Case("_pool_gather", gpuad.ops._pool_gather, ref_pool_gather, [((2, 3, 5, 4), (2, 3, 5, 4))],
         kwargs=_POOL_GEOMETRIES, make=_values_and_chooser, diff=(0,)),
    *[Case("_pool_scatter", gpuad.ops._pool_scatter, ref_pool_scatter,
           [((2, 3) + out, (2, 3, 5, 4), (2, 3) + out)], kwargs=[geometry],
           make=_scatter_inputs(geometry), diff=(0,))
      for out, geometry in zip([(3, 2), (4, 4), (3, 1)], _POOL_GEOMETRIES)],
    Case("_pool_scatter", gpuad.ops._pool_scatter, ref_pool_scatter,  # windows tile the input
         [((2, 3, 3, 2), (2, 3, 6, 4), (2, 3, 3, 2))], kwargs=[_TILED],
         make=_scatter_inputs(_TILED), diff=(0,)),
    Case("_convolution", gpuad.ops._convolution, ref_conv2d_op,
         [((2, 3, 5, 4), (4, 3, 3, 2), (4,))],
         kwargs=[{"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1},
                 {"stride": (2, 1), "padding": (1, 0, 2, 1), "dilation": (1, 2), "groups": 1}]),
    Case("_convolution", gpuad.ops._convolution, ref_conv2d_op,
         [((2, 4, 7, 6), (6, 2, 3, 2), (6,))],
         kwargs=[{"stride": (2, 2), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 2}]),
    Case("conv_transpose2d", gpuad.conv_transpose2d, ref_conv_transpose2d,
         [((2, 4, 3, 3), (4, 3, 3, 2), (3,))],
         kwargs=[{}, {"stride": 2}, {"stride": 2, "padding": 1, "output_padding": 1},
                 {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2),
                  "dilation": (1, 2)},
                 {"stride": 2, "padding": 2, "output_padding": 1},  # output_padding < padding
                 {"dilation": 2, "output_padding": 1},  # output_padding >= stride: the crop path
                 {"stride": (1, 2), "dilation": (3, 1), "padding": (1, 0),
                  "output_padding": (2, 1)}]),
    Case("conv_transpose2d", gpuad.conv_transpose2d, ref_conv_transpose2d,
         [((2, 4, 5, 4), (4, 1, 2, 3), (2,)), ((2, 4, 5, 4), (4, 1, 2, 3))],  # odd sizes, no bias
         kwargs=[{"groups": 2}, {"groups": 2, "stride": 2, "padding": 1, "output_padding": 1}]),
    Case("conv_transpose2d", gpuad.conv_transpose2d, ref_conv_transpose2d,
         [((4, 3, 2), (4, 2, 2, 2), (4,))],  # unbatched, grouped
         kwargs=[{"groups": 2, "stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}]),
    Case("unfold", gpuad.ops.conv.unfold, ref_unfold, [((2, 3, 5, 4),), ((3, 5, 4),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1,
                                      "dilation": (1, 2)}]),
    Case("fold", gpuad.ops.conv.fold, ref_fold, [((2, 12, 12),), ((12, 12),)],
         kwargs=[{"output_size": (5, 4), "kernel_size": 2}]),
    Case("fold", gpuad.ops.conv.fold, ref_fold, [((2, 18, 6),), ((18, 6),)],
         kwargs=[{"output_size": (5, 4), "kernel_size": (2, 3), "stride": (2, 1), "padding": 1,
                  "dilation": (1, 2)}]),
]


# ---- 1-D and 3-D convolution and pooling: generic N-d references ---------------------------------
def _ntuple(v, d):
    return (v,) * d if isinstance(v, int) else tuple(v)


def _batched_nd(x, d):
    return (x, False) if x.ndim == d + 2 else (x[None], True)


def ref_convnd(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Any number of spatial dims: one dot product per output position."""
    d = w.ndim - 2
    x, unbatched = _batched_nd(x, d)
    stride, dilation, kernel = _ntuple(stride, d), _ntuple(dilation, d), w.shape[2:]
    if padding == "valid":
        pads = [(0, 0)] * d
    elif padding == "same":
        pads = [(t // 2, t - t // 2) for t in (dl * (k - 1) for dl, k in zip(dilation, kernel))]
    else:
        pads = [(p, p) for p in _ntuple(padding, d)]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out = [(n - dl * (k - 1) - 1) // s + 1
           for n, dl, k, s in zip(xp.shape[2:], dilation, kernel, stride)]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    group_c, per_group = w.shape[1], w.shape[0] // groups
    for o in range(w.shape[0]):
        c0 = (o // per_group) * group_c
        for pos in itertools.product(*map(range, out)):
            window = tuple(slice(p * s, p * s + dl * (k - 1) + 1, dl)
                           for p, s, dl, k in zip(pos, stride, dilation, kernel))
            patch = xp[(slice(None), slice(c0, c0 + group_c)) + window]
            y[(slice(None), o) + pos] = (patch * w[o]).reshape(x.shape[0], -1).sum(1)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * d)
    return y[0] if unbatched else y


def ref_conv_transposend(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """Scatter every input entry times the kernel onto a canvas, then crop `padding` per side."""
    d = w.ndim - 2
    x, unbatched = _batched_nd(x, d)
    stride, padding, output_padding, dilation = (_ntuple(v, d) for v in
                                                 (stride, padding, output_padding, dilation))
    n, in_c, *spatial = x.shape
    group_out, kernel = w.shape[1], w.shape[2:]
    canvas = np.zeros((n, group_out * groups) + tuple(
        (m - 1) * s + dl * (k - 1) + 1 + o
        for m, s, dl, k, o in zip(spatial, stride, dilation, kernel, output_padding)))
    group_in = in_c // groups
    for c in range(in_c):
        o0 = (c // group_in) * group_out
        for pos in itertools.product(*map(range, spatial)):
            for k in itertools.product(*map(range, kernel)):
                at = tuple(p * s + i * dl for p, s, i, dl in zip(pos, stride, k, dilation))
                canvas[(slice(None), slice(o0, o0 + group_out)) + at] += (
                    x[(slice(None), c) + pos][:, None] * w[(c, slice(None)) + k][None])
    y = canvas[(slice(None), slice(None)) + tuple(slice(p, m - p) for p, m in
                                                  zip(padding, canvas.shape[2:]))]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * d)
    return y[0] if unbatched else y


def _pool_windows(x, d, kernel_size, stride, padding, dilation, ceil_mode):
    """Per output position: the position and the in-range input positions of its window (row-major),
    plus the window's start (padding included) for divisor counts."""
    kernel = _ntuple(kernel_size, d)
    stride = kernel if stride is None else _ntuple(stride, d)
    padding, dilation = _ntuple(padding, d), _ntuple(dilation, d)
    spatial = x.shape[-d:]
    out = [_pool_size(n, k, s, p, dl, ceil_mode)
           for n, k, s, p, dl in zip(spatial, kernel, stride, padding, dilation)]
    for pos in itertools.product(*map(range, out)):
        starts = [o * s - p for o, s, p in zip(pos, stride, padding)]
        axes = [[r for r in range(st, st + dl * (k - 1) + 1, dl) if 0 <= r < n]
                for st, dl, k, n in zip(starts, dilation, kernel, spatial)]
        yield pos, list(itertools.product(*axes)), starts, out


def ref_max_poolnd(d):
    def ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
            return_indices=False):
        x, unbatched = _batched_nd(x, d)
        y = index = None
        for pos, cells, _, out in _pool_windows(x, d, kernel_size, stride, padding, dilation,
                                                ceil_mode):
            if y is None:
                y, index = np.zeros(x.shape[:2] + tuple(out)), np.zeros(x.shape[:2] + tuple(out),
                                                                        dtype=np.int64)
            values = np.stack([x[(slice(None), slice(None)) + c] for c in cells], -1)
            first = values.argmax(-1)
            y[(slice(None), slice(None)) + pos] = values.max(-1)
            flat = [np.ravel_multi_index(c, x.shape[2:]) for c in cells]
            index[(slice(None), slice(None)) + pos] = np.take(flat, first)
        y, index = (y[0], index[0]) if unbatched else (y, index)
        return (y, index) if return_indices else y
    return ref


def ref_avg_poolnd(d):
    def ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
            divisor_override=None):
        x, unbatched = _batched_nd(x, d)
        kernel = _ntuple(kernel_size, d)
        spatial, pads = x.shape[2:], _ntuple(padding, d)
        y = None
        for pos, cells, starts, out in _pool_windows(x, d, kernel_size, stride, padding, 1,
                                                     ceil_mode):
            if y is None:
                y = np.zeros(x.shape[:2] + tuple(out))
            total = sum(x[(slice(None), slice(None)) + c] for c in cells)
            if divisor_override:
                divisor = divisor_override
            elif count_include_pad:
                divisor = math.prod(min(st + k, n + p) - st
                                    for st, k, n, p in zip(starts, kernel, spatial, pads))
            else:
                divisor = len(cells)
            y[(slice(None), slice(None)) + pos] = total / divisor
        return y[0] if unbatched else y
    return ref


def _adaptive_cells(x, d, output_size):
    spatial = x.shape[-d:]
    size = _ntuple(output_size, d)
    size = tuple(n if s is None else s for s, n in zip(size, spatial))
    for pos in itertools.product(*map(range, size)):
        axes = [range(i * n // s, math.ceil((i + 1) * n / s))
                for i, n, s in zip(pos, spatial, size)]
        yield pos, list(itertools.product(*axes)), size


def ref_adaptive_avg_poolnd(d):
    def ref(x, output_size):
        x, unbatched = _batched_nd(x, d)
        y = None
        for pos, cells, size in _adaptive_cells(x, d, output_size):
            y = np.zeros(x.shape[:2] + size) if y is None else y
            y[(slice(None), slice(None)) + pos] = np.mean(
                [x[(slice(None), slice(None)) + c] for c in cells], 0)
        return y[0] if unbatched else y
    return ref


def ref_adaptive_max_poolnd(d):
    def ref(x, output_size, return_indices=False):
        x, unbatched = _batched_nd(x, d)
        y = index = None
        for pos, cells, size in _adaptive_cells(x, d, output_size):
            if y is None:
                y, index = np.zeros(x.shape[:2] + size), np.zeros(x.shape[:2] + size, np.int64)
            values = np.stack([x[(slice(None), slice(None)) + c] for c in cells], -1)
            y[(slice(None), slice(None)) + pos] = values.max(-1)
            flat = [np.ravel_multi_index(c, x.shape[2:]) for c in cells]
            index[(slice(None), slice(None)) + pos] = np.take(flat, values.argmax(-1))
        y, index = (y[0], index[0]) if unbatched else (y, index)
        return (y, index) if return_indices else y
    return ref


def ref_pool_indices(x, kernel, stride, padding, dilation):
    """_pool_indices: padding as (before, after) pairs; the window's first maximum."""
    d = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0)] + [padding[2 * i:2 * i + 2] for i in range(d)],
               constant_values=-np.inf)
    _, index = ref_max_poolnd(d)(x, kernel, stride, 0, dilation, return_indices=True)
    coords = np.unravel_index(index, x.shape[2:])  # in the padded input: shift back
    shape = tuple(n - padding[2 * i] - padding[2 * i + 1] for i, n in enumerate(x.shape[2:]))
    return np.ravel_multi_index(tuple(c - padding[2 * i] for i, c in enumerate(coords)), shape)


def _adaptive_max_indices_ref(x, output_size):
    return ref_adaptive_max_poolnd(len(output_size))(x, output_size, return_indices=True)[1]


_MAX1 = [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
         {"kernel_size": 2, "stride": 1, "dilation": 2, "return_indices": True}]
_AVG1 = [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
         {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
          "count_include_pad": False}]

CONV_CASES += [
    Case("conv1d", gpuad.conv1d, ref_convnd, [((2, 3, 7), (4, 3, 3), (4,)), ((3, 7), (4, 3, 3))],
         kwargs=[{}, {"stride": 2, "padding": 1}, {"padding": "same", "dilation": 2},
                 {"padding": "valid"}]),
    Case("conv1d", gpuad.conv1d, ref_convnd, [((2, 4, 6), (6, 2, 2), (6,))],
         kwargs=[{"groups": 2, "padding": "same"}, {"groups": 2, "stride": (2,), "dilation": 2}]),
    Case("conv3d", gpuad.conv3d, ref_convnd, [((1, 2, 3, 3, 4), (3, 2, 2, 2, 3), (3,)),
                                              ((2, 3, 2, 4), (3, 2, 2, 2, 3))],
         kwargs=[{}, {"stride": (1, 2, 1), "padding": (1, 0, 1)}, {"padding": "same"}]),
    Case("conv3d", gpuad.conv3d, ref_convnd, [((1, 4, 3, 3, 3), (4, 2, 2, 1, 2), (4,))],
         kwargs=[{"groups": 2, "dilation": (2, 1, 1)}]),
    Case("conv_transpose1d", gpuad.conv_transpose1d, ref_conv_transposend,
         [((2, 4, 5), (4, 3, 3), (3,)), ((4, 5), (4, 3, 3))],
         kwargs=[{}, {"stride": 2, "padding": 1, "output_padding": 1},
                 {"dilation": 2, "output_padding": 1}]),  # output_padding >= stride: crop path
    Case("conv_transpose1d", gpuad.conv_transpose1d, ref_conv_transposend,
         [((2, 4, 5), (4, 1, 2), (2,))], kwargs=[{"groups": 2, "stride": 3, "padding": 1}]),
    Case("conv_transpose3d", gpuad.conv_transpose3d, ref_conv_transposend,
         [((1, 2, 2, 3, 2), (2, 2, 2, 2, 2), (2,)), ((2, 2, 3, 2), (2, 2, 2, 2, 2))],
         kwargs=[{}, {"stride": (2, 1, 2), "padding": (0, 1, 1), "output_padding": (1, 0, 1)}]),
    Case("max_pool1d", gpuad.max_pool1d, ref_max_poolnd(1), [((2, 3, 7),), ((3, 8),)],
         kwargs=_MAX1, domain=DISTINCT),
    Case("max_pool3d", gpuad.max_pool3d, ref_max_poolnd(3), [((1, 2, 3, 3, 4),), ((2, 3, 3, 2),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": (2, 3, 2), "stride": 1, "padding": (1, 1, 0),
                                      "return_indices": True}], domain=DISTINCT),
    Case("max_pool2d", gpuad.max_pool2d, ref_max_poolnd(2), [((2, 3, 5, 4),)],
         kwargs=[{"kernel_size": 2, "return_indices": True},
                 {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}],
         domain=DISTINCT),
    Case("avg_pool1d", gpuad.avg_pool1d, ref_avg_poolnd(1), [((2, 3, 7),), ((3, 8),)],
         kwargs=_AVG1),
    Case("avg_pool3d", gpuad.avg_pool3d, ref_avg_poolnd(3), [((1, 2, 4, 3, 5),), ((2, 3, 3, 4),)],
         kwargs=[{"kernel_size": 2}, {"kernel_size": (3, 2, 2), "stride": 2, "padding": 1,
                                      "ceil_mode": True, "count_include_pad": False},
                 {"kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3}]),
    Case("adaptive_avg_pool1d", gpuad.adaptive_avg_pool1d, ref_adaptive_avg_poolnd(1),
         [((2, 3, 7),), ((3, 6),)], kwargs=[{"output_size": 1}, {"output_size": 3},
                                            {"output_size": (4,)}, {"output_size": 9}]),
    Case("adaptive_avg_pool3d", gpuad.adaptive_avg_pool3d, ref_adaptive_avg_poolnd(3),
         [((1, 2, 4, 3, 5),), ((2, 3, 4, 4),)],
         kwargs=[{"output_size": 1}, {"output_size": (2, None, 3)}, {"output_size": (3, 2, 2)}]),
    Case("adaptive_max_pool1d", gpuad.adaptive_max_pool1d, ref_adaptive_max_poolnd(1),
         [((2, 3, 7),), ((3, 6),)], domain=DISTINCT,
         kwargs=[{"output_size": 3}, {"output_size": 4, "return_indices": True},
                 {"output_size": 9}]),
    Case("adaptive_max_pool2d", gpuad.adaptive_max_pool2d, ref_adaptive_max_poolnd(2),
         [((2, 3, 5, 4),), ((2, 6, 5),)], domain=DISTINCT,
         kwargs=[{"output_size": (3, 2)}, {"output_size": (None, 3), "return_indices": True},
                 {"output_size": 1}]),
    Case("adaptive_max_pool3d", gpuad.adaptive_max_pool3d, ref_adaptive_max_poolnd(3),
         [((1, 2, 3, 4, 5),)], domain=DISTINCT,
         kwargs=[{"output_size": (2, 3, 2), "return_indices": True}]),
    Case("_pool_indices", gpuad.ops._pool_indices, ref_pool_indices, [((2, 3, 5, 4),)],
         kwargs=_POOL_GEOMETRIES, domain=DISTINCT, grad=False),
    Case("_pool_indices", gpuad.ops._pool_indices, ref_pool_indices, [((2, 3, 7),)],
         kwargs=[{"kernel": (3,), "stride": (2,), "padding": (1, 1), "dilation": (1,)}],
         domain=DISTINCT, grad=False),
    Case("_adaptive_max_indices", gpuad.ops._adaptive_max_indices, _adaptive_max_indices_ref,
         [((2, 3, 5, 4),)], grad=False, kwargs=[{"output_size": (3, 3)}, {"output_size": (2, 2)}],
         make=lambda rng, shapes: [  # ties: the row-major first maximum
             rng.integers(0, 3, shapes[0]).astype(float)]),
    Case("_adaptive_max_indices", gpuad.ops._adaptive_max_indices, _adaptive_max_indices_ref,
         [((1, 2, 3, 4, 5),)], grad=False, kwargs=[{"output_size": (2, 3, 2)}],
         make=lambda rng, shapes: [rng.integers(0, 3, shapes[0]).astype(float)]),
]
