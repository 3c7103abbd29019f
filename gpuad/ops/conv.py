"""Convolution and pooling (NCHW in and out, torch.nn.functional semantics) on two adjoint pairs.

`_im2col` copies every kernel window of a padded input into one array with ONE strided-view copy;
`_col2im` adds such an array back with one strided add per kernel offset (never a loop over pixels).
Each is the other's gradient, so avg_pool2d (im2col, then a sum) is a composite, differentiable to
every order. conv2d is one op, `_conv2d` (im2col, one GEMM, the bias added in place), whose rule is
two GEMMs on transposed views plus the pair, so it too is differentiable to every order while the
forward keeps no im2col copy alive. Max pooling needs no copy: `_pool_gather` picks each window's
first maximum from kh*kw strided views, `_pool_scatter` sends gradients back to it, and each of
those is the other's gradient too.
"""
import functools
import math
import numbers

import numpy

from .. import backend
from ..backend import xp_of
from ..tensor import Tensor
from . import as_input, primitive, public
from . import linalg as _linalg
from . import reduce as _reduce
from . import shape as _shape


# ---- geometry -----------------------------------------------------------------------------------
def _pair(op, name, value, minimum):
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if (len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair)
            or min(pair) < minimum):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, each at least {minimum}; "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def _extent(kernel, dilation):
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def _out_size(shape, kernel, stride, padding, dilation):
    """(Ho, Wo) for a (..., H, W) input padded by (top, bottom, left, right)."""
    top, bottom, left, right = padding
    (eh, ew), (sh, sw) = _extent(kernel, dilation), stride
    return (shape[-2] + top + bottom - eh) // sh + 1, (shape[-1] + left + right - ew) // sw + 1


def _check_fits(op, shape, kernel, padding, dilation):
    padded = (shape[-2] + padding[0] + padding[1], shape[-1] + padding[2] + padding[3])
    extent = _extent(kernel, dilation)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        dilated = f" (dilated to {extent})" if extent != tuple(kernel) else ""
        raise ValueError(f"{op}: kernel size {tuple(kernel)}{dilated} is larger than the padded "
                         f"input size {padded} (input shape {tuple(shape)}, padding "
                         f"(top, bottom, left, right) {tuple(padding)})")


def _batched(op, x):
    """x as a 4-D Tensor and whether it was unbatched (C, H, W), like torch's pooling and conv."""
    if not isinstance(x, Tensor):
        x = as_input(x, op)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{tuple(x.shape)}")
    return (x, False) if x.ndim == 4 else (_shape.reshape(x, shape=(1,) + tuple(x.shape)), True)


def _unbatched(y, was_unbatched):
    return _shape.reshape(y, shape=tuple(y.shape[1:])) if was_unbatched else y


# ---- batch-last windows: the _im2col / _col2im pair ---------------------------------------------
# Internally the batch dim is LAST: windows are (C, kh, kw, Ho, Wo, N) and results (C, Ho, Wo, N),
# shown to the caller as (N, C, Ho, Wo) views. A window row then is one contiguous run of Wo*N
# numbers, so numpy's strided copies and adds run 2-5x faster than in NCHW order, and a layer fed
# by another conv or pool gets its input in that order already (no transposing copy).
def _offsets(kernel, stride, dilation, out):
    """For each kernel offset (i, j): the (rows, cols) slices of the padded input it touches."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                         slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def _batch_last(x, padding, value):
    """x (N, C, H, W) as a (C, H, W, N) view, or as a padded (C, Hp, Wp, N) copy."""
    x = x.transpose(1, 2, 3, 0)
    if not any(padding):
        return x
    c, h, w, n = x.shape
    top, bottom, left, right = padding
    padded = xp_of(x).full((c, h + top + bottom, w + left + right, n), value, dtype=x.dtype)
    padded[:, top:top + h, left:left + w, :] = x
    return padded


def _to_nchw(y):
    """A (C, Ho, Wo, N) result as the (N, C, Ho, Wo) view the caller sees."""
    return _shape.permute(y, dims=(3, 0, 1, 2))


def _window_copy(x, kernel, stride, padding, dilation, value):
    """_im2col's forward on raw arrays (conv2d's forward calls it too)."""
    _check_fits("im2col", x.shape, kernel, padding, dilation)
    n, c = x.shape[:2]
    ho, wo = _out_size(x.shape, kernel, stride, padding, dilation)
    x = _batch_last(x, padding, value)
    s_c, s_h, s_w, s_n = x.strides
    view = xp_of(x).lib.stride_tricks.as_strided(
        x, shape=(c, kernel[0], kernel[1], ho, wo, n),
        strides=(s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1], s_n))
    return view.copy()


@primitive(vjp=lambda g, y, x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
           value=0: (_col2im(g, shape=x.shape, kernel=kernel, stride=stride, padding=padding,
                             dilation=dilation),), name="_im2col")
def _im2col(x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), value=0):
    """The windows of x (N, C, H, W), padded by (top, bottom, left, right) with `value`, as a
    contiguous (C, kh, kw, Ho, Wo, N) array: reshaped to (C*kh*kw, Ho*Wo*N) it is the GEMM operand
    of a convolution, and the kernel axes are where pooling reduces. One strided-view copy."""
    return _window_copy(x, kernel, stride, padding, dilation, value)


@primitive(vjp=lambda g, y, cols, *, shape, kernel, stride=(1, 1), padding=(0, 0, 0, 0),
           dilation=(1, 1): (_im2col(g, kernel=kernel, stride=stride, padding=padding,
                                     dilation=dilation),), name="_col2im")
def _col2im(cols, *, shape, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """The adjoint of _im2col: an (N, C, H, W) array with each entry of cols (C, kh, kw, Ho, Wo, N)
    added at its input position (one strided add per kernel offset); padding entries are dropped."""
    n, c, h, w = shape
    top, bottom, left, right = padding
    ho, wo = cols.shape[3:5]
    out = xp_of(cols).zeros((c, h + top + bottom, w + left + right, n), dtype=cols.dtype)
    disjoint = all(s >= e for s, e in zip(stride, _extent(kernel, dilation)))  # e.g. 2x2 pooling
    for i, j, (rows, columns) in _offsets(kernel, stride, dilation, (ho, wo)):
        if disjoint:
            out[:, rows, columns, :] = cols[:, i, j]
        else:
            out[:, rows, columns, :] += cols[:, i, j]
    return out[:, top:top + h, left:left + w, :].transpose(3, 0, 1, 2)


# ---- convolution --------------------------------------------------------------------------------
def _conv_padding(padding, kernel, stride, dilation):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (extra at the bottom and
    right when the total is odd, like torch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' is not supported for strided convolutions "
                             f"(stride {stride}); pad explicitly instead")
        (th, tw) = (e - 1 for e in _extent(kernel, dilation))
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = _pair("conv2d", "padding", padding, 0)
    return ph, ph, pw, pw


def _check_devices_weight_groups(op, x, weight, bias, groups, layout):
    """The checks conv2d and conv_transpose2d share: one device, a 4-D weight, groups >= 1."""
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise RuntimeError(f"{op}: the input is on {x.device} but the {name} is on "
                               f"{t.device}; move them to one device with .to(device)")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight ({layout}, kh, kw), got shape "
                         f"{tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def _check_conv(x, weight, bias, groups):
    xs, ws = tuple(x.shape), tuple(weight.shape)
    _check_devices_weight_groups("conv2d", x, weight, bias, groups,
                                 "out_channels, in_channels/groups")
    if ws[0] % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the {ws[0]} output channels (weight "
                         f"shape {ws}, input shape {xs})")
    if xs[1] % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the {xs[1]} input channels (input "
                         f"shape {xs}, weight shape {ws})")
    if xs[1] != ws[1] * groups:
        raise ValueError(f"conv2d: input has {xs[1]} channels but weight expects {ws[1] * groups} "
                         f"(weight shape {ws}, groups={groups})")
    if bias is not None and tuple(bias.shape) != (ws[0],):
        raise ValueError(f"conv2d: bias must have shape ({ws[0]},) for a weight of shape {ws}, got "
                         f"{tuple(bias.shape)}")


def _per_group(groups, rows, columns):
    """The shape of a per-group matrix: 2-D for one group (numpy runs one plain GEMM on it),
    (groups, rows, columns) else."""
    return (rows, columns) if groups == 1 else (groups, rows, columns)


def _conv2d_vjp(g, y, x, weight, bias, *, stride, padding, dilation, groups):
    # Per group, y = W @ cols + b on (O/G, Ho*Wo*N) matrices, so gW = g @ cols^T, gcols = W^T @ g
    # and gb sums g's rows; the .mT operands are views that BLAS reads with a transpose flag.
    # cols is computed again here rather than kept from the forward: one cheap copy, against
    # holding a kh*kw-times-the-input array through the rest of the forward and the backward.
    # gW is taken as (cols @ g^T)^T, the same GEMM with cols on the left: OpenBLAS runs it 1.4x
    # faster on LeNet's second conv (a 32 x 144 result from rows of 12544) and as fast on the first.
    out_c, group_c, kh, kw = weight.shape
    geometry = {"kernel": (kh, kw), "stride": stride, "padding": padding, "dilation": dilation}
    g = _shape.permute(g, dims=(1, 2, 3, 0))  # (O, Ho, Wo, N): the forward's memory order
    ho, wo, n = g.shape[1:]
    depth, size = group_c * kh * kw, ho * wo * n
    g = _shape.reshape(g, shape=_per_group(groups, out_c // groups, size))
    gx = gw = gb = None
    if weight.requires_grad:
        cols = _shape.reshape(_im2col(x, **geometry), shape=_per_group(groups, depth, size))
        gw = _shape.reshape(_linalg.matmul(cols, g.mT).mT, shape=weight.shape)
        del cols  # before gcols below: the two largest arrays of the step need not coexist
    if x.requires_grad:
        w = _shape.reshape(weight, shape=_per_group(groups, out_c // groups, depth))
        gcols = _shape.reshape(_linalg.matmul(w.mT, g), shape=(x.shape[1], kh, kw, ho, wo, n))
        gx = _col2im(gcols, shape=x.shape, **geometry)
    if bias is not None and bias.requires_grad:
        gb = _shape.reshape(_reduce.sum(g, dim=-1), shape=(out_c,))
    return gx, gw, gb


@primitive(vjp=_conv2d_vjp, promote=True, autocast="lower")
def _conv2d(x, weight, bias, *, stride, padding, dilation, groups):
    """conv2d's one op on a 4-D x, with (top, bottom, left, right) padding and a weight and bias
    that fit x (conv2d checks them): the im2col copy, one GEMM per group, and the bias added in
    place; the result is an (N, O, Ho, Wo) view of (O, Ho, Wo, N) memory."""
    out_c, group_c, kh, kw = weight.shape
    cols = _window_copy(x, (kh, kw), stride, padding, dilation, 0)
    ho, wo, n = cols.shape[3:]
    depth, size = group_c * kh * kw, ho * wo * n
    out = (weight.reshape(_per_group(groups, out_c // groups, depth))
           @ cols.reshape(_per_group(groups, depth, size))).reshape(out_c, size)
    if bias is not None:
        out += bias.reshape(out_c, 1)
    return out.reshape(out_c, ho, wo, n).transpose(3, 0, 1, 2)


@public
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation like torch.nn.functional.conv2d: input (N, C, H, W) or (C, H, W),
    weight (out, C/groups, kh, kw); padding an int, a pair, 'valid' or 'same'. One im2col copy and
    one GEMM (a batch of `groups` GEMMs); gradients for input, weight and bias, of every order."""
    x, was_unbatched = _batched("conv2d", input)
    weight = weight if isinstance(weight, Tensor) else as_input(weight, "conv2d")
    bias = bias if bias is None or isinstance(bias, Tensor) else as_input(bias, "conv2d")
    _check_conv(x, weight, bias, groups)
    stride = _pair("conv2d", "stride", stride, 1)
    dilation = _pair("conv2d", "dilation", dilation, 1)
    pads = _conv_padding(padding, tuple(weight.shape[2:]), stride, dilation)
    _check_fits("conv2d", x.shape, tuple(weight.shape[2:]), pads, dilation)
    out = _conv2d(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return _unbatched(out, was_unbatched)


# ---- transposed convolution and torch's unfold / fold -----------------------------------------
def _check_conv_transpose(x, weight, bias, groups):
    xs, ws = tuple(x.shape), tuple(weight.shape)
    _check_devices_weight_groups("conv_transpose2d", x, weight, bias, groups,
                                 "in_channels, out_channels/groups")
    if xs[1] != ws[0]:
        raise ValueError(f"conv_transpose2d: input has {xs[1]} channels but the weight of shape "
                         f"{ws} expects {ws[0]} (its dim 0 is in_channels; input shape {xs})")
    if ws[0] % groups:
        raise ValueError(f"conv_transpose2d: groups={groups} must divide the {ws[0]} input "
                         f"channels (weight shape {ws}, input shape {xs})")
    if bias is not None and tuple(bias.shape) != (ws[1] * groups,):
        raise ValueError(f"conv_transpose2d: bias must have shape ({ws[1] * groups},) for a weight "
                         f"of shape {ws} and groups={groups}, got {tuple(bias.shape)}")


def _transpose_size(shape, kernel, stride, padding, output_padding, dilation):
    """conv_transpose2d's (H_out, W_out), with torch's checks on output_padding and the size."""
    for o, s, d in zip(output_padding, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller "
                             f"than either the stride {stride} or the dilation {dilation} in each "
                             f"dim; use a smaller output_padding")
    out = tuple((n - 1) * s - 2 * p + e + o for n, s, p, e, o in
                zip(shape[-2:], stride, padding, _extent(kernel, dilation), output_padding))
    if min(out) < 1:
        raise ValueError(f"conv_transpose2d: the output size {out} is not positive (input shape "
                         f"{tuple(shape)}, kernel {tuple(kernel)}, stride {stride}, padding "
                         f"{padding}, output_padding {output_padding}, dilation {dilation}); "
                         f"reduce the padding")
    return out


@public
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The adjoint of conv2d in its input, like torch.nn.functional.conv_transpose2d: input
    (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, kh, kw). One GEMM of the weight
    with the input gives every kernel window's contribution, and _col2im (conv2d's input gradient)
    adds them up: a composite, so differentiable to every order."""
    x, weight, bias = (a if a is None or isinstance(a, Tensor) else as_input(a, "conv_transpose2d")
                       for a in (input, weight, bias))
    x, was_unbatched = _batched("conv_transpose2d", x)
    _check_conv_transpose(x, weight, bias, groups)
    stride = _pair("conv_transpose2d", "stride", stride, 1)
    padding = _pair("conv_transpose2d", "padding", padding, 0)
    output_padding = _pair("conv_transpose2d", "output_padding", output_padding, 0)
    dilation = _pair("conv_transpose2d", "dilation", dilation, 1)
    in_c, group_c, kh, kw = weight.shape
    n, _, h, w = x.shape
    out = _transpose_size(x.shape, (kh, kw), stride, padding, output_padding, dilation)
    rows = _shape.reshape(_shape.permute(x, dims=(1, 2, 3, 0)),  # (C_in, H, W, N) as matrices
                          shape=_per_group(groups, in_c // groups, h * w * n))
    matrix = _shape.reshape(weight, shape=_per_group(groups, in_c // groups, group_c * kh * kw))
    cols = _shape.reshape(_linalg.matmul(matrix.mT, rows),
                          shape=(group_c * groups, kh, kw, h, w, n))
    geometry = {"kernel": (kh, kw), "stride": stride, "dilation": dilation}
    shape = (n, group_c * groups)
    if all(o - p < s for o, p, s in zip(output_padding, padding, stride)):
        # _col2im's padding crops the canvas: (p, p - o) when o <= p, else (p, 0) and a canvas
        # o - p rows taller (the floor in im2col's size keeps the pair consistent while o - p < s)
        (ph, pw), (oh, ow) = padding, output_padding
        y = _col2im(cols, shape=shape + out, padding=(ph, max(ph - oh, 0), pw, max(pw - ow, 0)),
                    **geometry)
    else:  # output_padding >= stride (allowed below the dilation): the whole canvas, then cropped
        canvas = tuple((m - 1) * s + e for m, s, e in zip((h, w), stride,
                                                           _extent((kh, kw), dilation)))
        y = _col2im(cols, shape=shape + canvas, padding=(0, 0, 0, 0), **geometry)
        (ph, pw), (oh, ow) = padding, output_padding
        y = _shape.pad(y, (-pw, ow - pw, -ph, oh - ph))
    if bias is not None:
        y = y + _shape.reshape(bias, shape=(1, -1, 1, 1))
    return _unbatched(y, was_unbatched)


def _fold_geometry(op, kernel_size, dilation, padding, stride):
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    dilation = _pair(op, "dilation", dilation, 1)
    ph, pw = _pair(op, "padding", padding, 0)
    stride = _pair(op, "stride", stride, 1)
    return {"kernel": kernel, "stride": stride, "padding": (ph, ph, pw, pw), "dilation": dilation}


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: the sliding blocks of input (N, C, H, W) or (C, H, W) as
    (N, C*kh*kw, L) (or (C*kh*kw, L)), L = Ho*Wo blocks in row-major order: _im2col's windows
    with the batch moved to the front."""
    x = input if isinstance(input, Tensor) else as_input(input, "unfold")
    x, was_unbatched = _batched("unfold", x)
    geometry = _fold_geometry("unfold", kernel_size, dilation, padding, stride)
    _check_fits("unfold", x.shape, geometry["kernel"], geometry["padding"], geometry["dilation"])
    cols = _im2col(x, **geometry)
    c, kh, kw, ho, wo, n = cols.shape
    out = _shape.permute(_shape.reshape(cols, shape=(c * kh * kw, ho * wo, n)), dims=(2, 0, 1))
    return _unbatched(out, was_unbatched)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold, the adjoint of unfold: blocks (N, C*kh*kw, L) or (C*kh*kw, L)
    summed into (N, C, H, W) (or (C, H, W)) with (H, W) = output_size, overlaps adding up."""
    x = input if isinstance(input, Tensor) else as_input(input, "fold")
    if x.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) input, got "
                         f"shape {tuple(x.shape)}")
    was_unbatched, given = x.ndim == 2, tuple(x.shape)
    if was_unbatched:
        x = _shape.reshape(x, shape=(1,) + tuple(x.shape))
    size = _pair("fold", "output_size", output_size, 1)
    geometry = _fold_geometry("fold", kernel_size, dilation, padding, stride)
    (kh, kw), (n, depth, length) = geometry["kernel"], x.shape
    if depth % (kh * kw):
        raise ValueError(f"fold: the input's dim {0 if was_unbatched else 1} ({depth}) must be "
                         f"divisible by the kernel's kh*kw = {kh * kw} (input shape {given}, "
                         f"kernel_size {(kh, kw)})")
    _check_fits("fold", size, (kh, kw), geometry["padding"], geometry["dilation"])
    ho, wo = _out_size(size, **{k: geometry[k] for k in ("kernel", "stride", "padding",
                                                            "dilation")})
    if ho * wo != length:
        raise ValueError(f"fold: output_size {size} with kernel_size {(kh, kw)}, stride "
                         f"{geometry['stride']}, padding {geometry['padding'][::2]} and dilation "
                         f"{geometry['dilation']} has {ho} x {wo} = {ho * wo} blocks, but the "
                         f"input (shape {given}) holds L = {length}")
    cols = _shape.reshape(_shape.permute(x, dims=(1, 2, 0)),
                          shape=(depth // (kh * kw), kh, kw, ho, wo, n))
    y = _col2im(cols, shape=(n, depth // (kh * kw)) + size, **geometry)
    return _unbatched(y, was_unbatched)


# ---- pooling geometry ---------------------------------------------------------------------------
def _pool_geometry(op, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """kernel, stride, dilation, (top, bottom, left, right) padding and output size of a pooling
    with torch's rules: stride defaults to the kernel, padding at most half the kernel, and in
    ceil_mode a last partial window counts if it starts inside the input or the left padding (the
    padding is extended at the bottom and right to hold it)."""
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and
                                          len(stride) == 0) else _pair(op, "stride", stride, 1)
    dilation = _pair(op, "dilation", dilation, 1)
    pad = _pair(op, "padding", padding, 0)
    if pad[0] * 2 > kernel[0] or pad[1] * 2 > kernel[1]:
        raise ValueError(f"{op}: padding {pad} must be at most half the kernel size {kernel}")
    pads, out = [], []
    for n, k, s, d, p in zip(shape[-2:], kernel, stride, dilation, pad):
        extent = d * (k - 1) + 1
        if n + 2 * p < extent:
            raise ValueError(f"{op}: kernel size {kernel} (extent {_extent(kernel, dilation)}) is "
                             f"larger than the padded input size "
                             f"{tuple(m + 2 * q for m, q in zip(shape[-2:], pad))} (input shape "
                             f"{tuple(shape)}, padding {pad})")
        size = (n + 2 * p - extent + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (size - 1) * s >= n + p:
            size -= 1  # the last window would start in the right padding
        out.append(size)
        pads += [p, max((size - 1) * s + extent - n - p, p)]
    return kernel, stride, dilation, tuple(pads), tuple(out)


def _window_axes(cols):
    """(C, kh, kw, Ho, Wo, N) windows as (C, kh*kw, Ho, Wo, N)."""
    c, kh, kw, ho, wo, n = cols.shape
    return _shape.reshape(cols, shape=(c, kh * kw, ho, wo, n))


# ---- max pooling: the _pool_gather / _pool_scatter pair ------------------------------------------
def _window_views(x, geometry, value):
    """The (C, Ho, Wo, N) view of x's padded batch-last copy at each kernel offset."""
    kernel, stride, padding, dilation = geometry
    padded = _batch_last(x, padding, value)
    out = _out_size(x.shape, kernel, stride, padding, dilation)
    return [padded[:, rows, columns, :] for _, _, (rows, columns) in
            _offsets(kernel, stride, dilation, out)]


def _window_max(windows):
    xp = xp_of(windows[0])
    if len(windows) == 1:
        return windows[0].copy()  # never a view of the input
    best = xp.maximum(windows[0], windows[1])  # NaN propagates, as in torch
    for window in windows[2:]:
        xp.maximum(best, window, out=best)
    return best


def _first_max_hits(windows, best):
    """For each offset, where its entry is the first maximum of its window: torch's max pooling
    sends a window's gradient to that one entry, so ties are not split. (A window holding a NaN has
    a NaN maximum, as in torch, and no hit: its gradient is lost.) Each mask is valid until the
    next one is asked for: two output-sized boolean buffers serve every offset."""
    xp = xp_of(best)
    taken = hit = None
    for k, window in enumerate(windows):
        if taken is None:
            taken = window >= best
            yield taken
            continue
        hit = xp.greater_equal(window, best, out=hit)
        xp.greater(hit, taken, out=hit)  # a maximum not taken by an earlier offset
        yield hit
        if k < len(windows) - 1:
            taken |= hit


def _pool_gather_vjp(g, y, v, x, *, kernel, stride, padding, dilation):
    best = y if v is x else None  # max pooling's output is the window maxima: reuse it
    return _pool_scatter(g, x, best, kernel=kernel, stride=stride, padding=padding,
                         dilation=dilation), None


@primitive(vjp=_pool_gather_vjp)
def _pool_gather(v, x, *, kernel, stride, padding, dilation):
    """(N, C, Ho, Wo): for each window of x (padded with -inf), the entry of v (shaped like x) at
    the window's first maximum. _pool_gather(x, x) is max pooling; x only chooses, so it gets no
    gradient (the choice is piecewise constant)."""
    geometry = (kernel, stride, padding, dilation)
    windows = _window_views(x, geometry, -math.inf)
    best = _window_max(windows)
    if v is x:  # max pooling itself: the value at the first maximum is the maximum
        return best.transpose(3, 0, 1, 2)
    out = 0
    for hit, window in zip(_first_max_hits(windows, best), _window_views(v, geometry, 0)):
        out = out + window * hit
    return out.transpose(3, 0, 1, 2)


def _tiles(shape, kernel, stride, padding, dilation):
    """Whether the windows cover the input exactly once (2x2 pooling of even sizes, say)."""
    return (not any(padding) and dilation == (1, 1) and stride == kernel
            and shape[-2] % kernel[0] == 0 and shape[-1] % kernel[1] == 0)


def _tiled_scatter(v, x, best, kernel):
    """_pool_scatter when the windows tile x, with best the (C, Ho, Wo, N) window maxima: x and
    the result seen as (C, Ho, kh, Wo, kw, N), every offset's maxima found by one comparison, the
    first of each window kept, and the result written by one broadcasting multiply (no zero fill,
    no strided writes)."""
    n, c, h, w = x.shape
    (kh, kw), ho, wo = kernel, h // kernel[0], w // kernel[1]
    windows = x.transpose(1, 2, 3, 0).reshape(c, ho, kh, wo, kw, n)
    hits = windows >= best.reshape(c, ho, 1, wo, 1, n)  # a NaN maximum: no hit
    seen = hits[:, :, 0, :, 0].copy()
    for k in range(1, kh * kw):  # row-major, torch's scan order
        hit = hits[:, :, k // kw, :, k % kw]
        xp_of(hit).greater(hit, seen, out=hit)  # a maximum not taken by an earlier offset
        seen |= hit
    out = v.transpose(1, 2, 3, 0).reshape(c, ho, 1, wo, 1, n) * hits
    return out.reshape(c, h, w, n).transpose(3, 0, 1, 2)


@primitive(vjp=lambda g, y, v, x, best, *, kernel, stride, padding, dilation: (
    _pool_gather(g, x, kernel=kernel, stride=stride, padding=padding, dilation=dilation), None,
    None), name="_pool_scatter")
def _pool_scatter(v, x, best, *, kernel, stride, padding, dilation):
    """The adjoint of _pool_gather in its first argument: zeros shaped like x with each entry of v
    (N, C, Ho, Wo) added at the first maximum of its window of x, overlapping windows adding up.
    `best` is x's window maxima (max_pool2d's output) or None to compute them again."""
    windows = _window_views(x, (kernel, stride, padding, dilation), -math.inf)
    best = _window_max(windows) if best is None else best.transpose(1, 2, 3, 0)
    if _tiles(x.shape, kernel, stride, padding, dilation):
        return _tiled_scatter(v, x, best, kernel)
    xp = xp_of(v)
    n, c, h, w = x.shape
    top, bottom, left, right = padding
    out = xp.zeros((c, h + top + bottom, w + left + right, n), dtype=v.dtype)
    v = v.transpose(1, 2, 3, 0)
    disjoint = all(s >= e for s, e in zip(stride, _extent(kernel, dilation)))
    hits = _first_max_hits(windows, best)
    for hit, (_, _, (rows, columns)) in zip(hits, _offsets(kernel, stride, dilation, v.shape[1:3])):
        if disjoint:  # every entry of out is written once (or stays zero): no read-modify-write
            xp.multiply(v, hit, out=out[:, rows, columns, :])
        else:
            out[:, rows, columns, :] += v * hit
    return out[:, top:top + h, left:left + w, :].transpose(3, 0, 1, 2)


@public
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window, like torch.nn.functional.max_pool2d (padding counts as -inf); the
    gradient goes to the first maximum of each window and accumulates where windows overlap."""
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported")
    x, was_unbatched = _batched("max_pool2d", input)
    kernel, stride, dilation, pads, _ = _pool_geometry("max_pool2d", x.shape, kernel_size, stride,
                                                       padding, dilation, ceil_mode)
    y = _pool_gather(x, x, kernel=kernel, stride=stride, padding=pads, dilation=dilation)
    return _unbatched(y, was_unbatched)


# ---- average pooling ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _pool_divisor(shape, kernel, stride, pads, out, count_include_pad):
    """torch's avg_pool2d divisor per output position, on the host: the window clipped to the
    padded input (count_include_pad) or to the input itself; the ceil_mode overhang never counts."""
    counts = []
    for n, k, s, lo, size in zip(shape[-2:], kernel, stride, pads[::2], out):
        start = numpy.arange(size) * s - lo
        end = numpy.minimum(start + k, n + lo)
        if not count_include_pad:
            start, end = numpy.maximum(start, 0), numpy.minimum(end, n)
        counts.append(end - start)
    return numpy.outer(*counts)


@public
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window, like torch.nn.functional.avg_pool2d: zero padding counts in the
    divisor unless count_include_pad=False; divisor_override replaces the divisor."""
    x, was_unbatched = _batched("avg_pool2d", input)
    kernel, stride, _, pads, out = _pool_geometry("avg_pool2d", x.shape, kernel_size, stride,
                                                         padding, 1, ceil_mode)
    windows = _window_axes(_im2col(x, kernel=kernel, stride=stride, padding=pads))
    total = _to_nchw(_reduce.sum(windows, dim=1))
    if divisor_override is not None:
        if not divisor_override:
            raise ValueError("avg_pool2d: divisor_override must not be zero")
        divisor = divisor_override
    else:
        divisor = _pool_divisor(tuple(x.shape), kernel, stride, pads, out, count_include_pad)
        if (divisor == divisor.flat[0]).all():
            divisor = int(divisor.flat[0])
        else:
            divisor = Tensor(backend.asarray(divisor, x.dtype, x.device))
    return _unbatched(total / divisor, was_unbatched)


def _adaptive_matrix(n, size, dtype, device):
    """The (size, n) averaging matrix of torch's adaptive windows, which are
    [floor(i*n/size), ceil((i+1)*n/size)) for output i."""
    matrix = numpy.zeros((size, n))
    for i in range(size):
        start, end = (i * n) // size, -(-(i + 1) * n // size)
        matrix[i, start:end] = 1 / (end - start)
    return Tensor(backend.asarray(matrix, dtype, device))


@public
def adaptive_avg_pool2d(input, output_size):
    """Average over torch's adaptive windows, like torch.nn.functional.adaptive_avg_pool2d:
    output_size an int or a pair (None keeps that dim). Sizes that divide the input are plain
    average pools; others are two GEMMs with averaging matrices (windows may overlap)."""
    x, was_unbatched = _batched("adaptive_avg_pool2d", input)
    size = (output_size, output_size) if output_size is None or isinstance(
        output_size, numbers.Integral) else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got "
                         f"{output_size!r}")
    h, w = x.shape[-2:]
    ho, wo = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if min(ho, wo) < 1 or min(h, w) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output size {(ho, wo)} and input size {(h, w)} "
                         f"must be positive (input shape {tuple(x.shape)})")
    if (ho, wo) == (1, 1):
        out = _reduce.mean(x, dim=(2, 3), keepdim=True)
    elif h % ho == 0 and w % wo == 0:
        out = avg_pool2d(x, (h // ho, w // wo))
    else:
        rows = _adaptive_matrix(h, ho, x.dtype, x.device)
        columns = _adaptive_matrix(w, wo, x.dtype, x.device)
        out = _linalg.matmul(_linalg.matmul(rows, x), _shape.transpose(columns, 0, 1))
    return _unbatched(out, was_unbatched)
