"""Rows of the op table for conv (merged into op_cases.CASES), with naive numpy float64 references:
loops over output positions, written for clarity and tiny shapes, independent of im2col."""
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
    """gpuad.ops._conv2d: padding as (top, bottom, left, right)."""
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
         kwargs=[{"kernel_size": 2}, {"kernel_size": (3, 2)}, {"kernel_size": 2, "ceil_mode": True}],
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
    Case("_conv2d", gpuad.ops._conv2d, ref_conv2d_op, [((2, 3, 5, 4), (4, 3, 3, 2), (4,))],
         kwargs=[{"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1},
                 {"stride": (2, 1), "padding": (1, 0, 2, 1), "dilation": (1, 2), "groups": 1}]),
    Case("_conv2d", gpuad.ops._conv2d, ref_conv2d_op, [((2, 4, 7, 6), (6, 2, 3, 2), (6,))],
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
