"""Convolution with torch.nn.functional's semantics in 1, 2 and 3 spatial dims, on one adjoint pair.

`_im2col` copies every kernel window of a padded (N, C, *spatial) input into one array with ONE
strided-view copy; `_col2im` adds such an array back with one strided add per kernel offset (never a
loop over pixels). Each is the other's gradient. Convolution is one op, `_convolution` (im2col,
one GEMM that also adds the bias), whose rule is two GEMMs on transposed views plus the pair, so
it is differentiable to every order; the forward keeps its im2col copy for the weight's gradient
only while it is small (KEEP_COLUMNS), and the rule copies it again otherwise. Transposed
convolution, unfold and fold are composites of the same pair; pooling (ops/pool.py) builds on the
geometry helpers here, which are public for that reason.
"""
import itertools
import math
import numbers

from ..backend import xp_of
from ..tensor import Tensor
from . import Saving, as_input, plain_backward, primitive, public
from . import linalg as _linalg
from . import reduce as _reduce
from . import shape as _shape

# ---- geometry -----------------------------------------------------------------------------------
TUPLES = {1: "a 1-tuple", 2: "a pair", 3: "a triple"}
_LAYOUTS = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


def ntuple(op, name, value, minimum, d=2):
    """value (an int or d ints) as a d-tuple of ints, each at least minimum."""
    items = (value,) * d if isinstance(value, numbers.Integral) else tuple(value)
    if (len(items) != d or not all(isinstance(v, numbers.Integral) for v in items)
            or min(items) < minimum):
        raise ValueError(f"{op}: {name} must be an int or {TUPLES[d]} of ints, each at least "
                         f"{minimum}; got {value!r}")
    return tuple(int(v) for v in items)


def extent(kernel, dilation):
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def padded_size(shape, padding):
    """The last len(padding) // 2 sizes of shape, each grown by its (before, after) pair."""
    d = len(padding) // 2
    return tuple(n + padding[2 * i] + padding[2 * i + 1] for i, n in enumerate(shape[-d:]))


def out_size(shape, kernel, stride, padding, dilation):
    """The number of windows along each of the last len(kernel) dims of `shape`, padded by
    (before, after) pairs: (top, bottom, left, right) in 2-D."""
    return tuple((n - e) // s + 1 for n, e, s in
                 zip(padded_size(shape, padding), extent(kernel, dilation), stride))


def check_fits(op, shape, kernel, padding, dilation):
    padded, reach = padded_size(shape, padding), extent(kernel, dilation)
    if any(e > n for e, n in zip(reach, padded)):
        dilated = f" (dilated to {reach})" if reach != tuple(kernel) else ""
        order = "(top, bottom, left, right)" if len(kernel) == 2 else "(before, after) per dim"
        raise ValueError(f"{op}: kernel size {tuple(kernel)}{dilated} is larger than the padded "
                         f"input size {padded} (input shape {tuple(shape)}, padding {order} "
                         f"{tuple(padding)})")


def batched(op, x, d=2):
    """x as an (N, C, *spatial) Tensor with d spatial dims, and whether it came unbatched
    (C, *spatial), as torch's convolutions and poolings accept."""
    if not isinstance(x, Tensor):
        x = as_input(x, op)
    if x.ndim not in (d + 1, d + 2):
        raise ValueError(f"{op}: expected a {d + 1}-D ({_LAYOUTS[d]}) or {d + 2}-D "
                         f"(N, {_LAYOUTS[d]}) input, got shape {tuple(x.shape)}")
    return (x, False) if x.ndim == d + 2 else (_shape.reshape(x, shape=(1,) + tuple(x.shape)), True)


def unbatched(y, was_unbatched):
    return _shape.reshape(y, shape=tuple(y.shape[1:])) if was_unbatched else y


def defaults(kernel, stride, padding, dilation):
    """The geometry of _im2col / _col2im with None meaning unit strides, no padding, no dilation."""
    d = len(kernel)
    return (tuple(kernel), (1,) * d if stride is None else tuple(stride),
            (0,) * (2 * d) if padding is None else tuple(padding),
            (1,) * d if dilation is None else tuple(dilation))


# ---- batch-last windows: the _im2col / _col2im pair ---------------------------------------------
# Internally the batch dim is LAST: windows are (C, *kernel, *out, N) and results (C, *out, N),
# shown to the caller as (N, C, *out) views. A window row then is one contiguous run of out[-1]*N
# numbers, so numpy's strided copies and adds run 2-5x faster than in NCHW order, and a layer fed
# by another conv or pool gets its input in that order already (no transposing copy).
def offsets(kernel, stride, dilation, out):
    """For each kernel offset (row-major, torch's scan order): the offset and the slices of the
    padded input it touches."""
    for k in itertools.product(*(range(n) for n in kernel)):
        yield k, tuple(slice(i * dl, i * dl + s * (o - 1) + 1, s)
                       for i, s, dl, o in zip(k, stride, dilation, out))


def _unpadded_offsets(kernel, stride, dilation, out, padding, spatial):
    """offsets() with the padding cut away: for each kernel offset that reaches the input, the
    offset, the slices of the unpadded input it touches and the slices of the output positions
    that touch them (a window entry in the padding adds nothing to the input's gradient)."""
    for k in itertools.product(*(range(n) for n in kernel)):
        inputs, outputs = [], []
        for axis, (i, s, dl, o, n) in enumerate(zip(k, stride, dilation, out, spatial)):
            shift = i * dl - padding[2 * axis]  # input position of output position t: shift + s t
            first = max(0, -(shift // s) if shift < 0 else 0)  # the first t with shift + s t >= 0
            last = min(o, (n - 1 - shift) // s + 1) if n - 1 - shift >= 0 else 0
            if last <= first:
                break
            start = shift + s * first
            inputs.append(slice(start, start + s * (last - first - 1) + 1, s))
            outputs.append(slice(first, last))
        else:
            yield k, tuple(inputs), tuple(outputs)


def batch_last(x, padding, value):
    """x (N, C, *spatial) as a (C, *spatial, N) view, or as a padded (C, *padded, N) copy."""
    d = x.ndim - 2
    x = x.transpose(tuple(range(1, d + 2)) + (0,))
    if not any(padding):
        return x
    padded = xp_of(x).full((x.shape[0],) + padded_size(x.shape[:-1], padding) + (x.shape[-1],),
                           value, dtype=x.dtype)
    padded[(slice(None),) + tuple(slice(padding[2 * i], padding[2 * i] + n)
                                  for i, n in enumerate(x.shape[1:-1]))] = x
    return padded


def channels_first(d):
    """The permutation that shows a (C, *out, N) array as (N, C, *out)."""
    return (d + 1,) + tuple(range(d + 1))


def _window_view(x, kernel, stride, padding, dilation, value):
    """The windows of x as a strided (C, *kernel, *out, N) view (of a padded copy if padded)."""
    check_fits("im2col", x.shape, kernel, padding, dilation)
    n, c = x.shape[:2]
    out = out_size(x.shape, kernel, stride, padding, dilation)
    x = batch_last(x, padding, value)
    s_c, *s_spatial, s_n = x.strides
    return xp_of(x).lib.stride_tricks.as_strided(
        x, shape=(c,) + tuple(kernel) + out + (n,),
        strides=(s_c, *(s * dl for s, dl in zip(s_spatial, dilation)),
                 *(s * st for s, st in zip(s_spatial, stride)), s_n))


def _window_copy(x, kernel, stride, padding, dilation, value):
    """_im2col's forward on raw arrays."""
    return _window_view(x, kernel, stride, padding, dilation, value).copy()


def _columns_and_ones(x, kernel, stride, padding, dilation):
    """The convolution's GEMM operand for a weight and bias side by side: the im2col columns
    (zero padding) as a (C*prod(kernel) + 1, prod(out)*N) matrix whose last row is ones."""
    view = _window_view(x, kernel, stride, padding, dilation, 0)
    depth, size = math.prod(view.shape[:1 + len(kernel)]), math.prod(view.shape[1 + len(kernel):])
    cols = xp_of(x).empty((depth + 1, size), dtype=x.dtype)
    cols[:depth].reshape(view.shape)[...] = view  # (a view: the rows are contiguous)
    cols[depth] = 1
    return cols


@primitive(vjp=lambda g, y, x, *, kernel, stride=None, padding=None, dilation=None, value=0: (
    _col2im(g, shape=x.shape, kernel=kernel, stride=stride, padding=padding,
            dilation=dilation),), name="_im2col")
def _im2col(x, *, kernel, stride=None, padding=None, dilation=None, value=0):
    """The windows of x (N, C, *spatial), padded by (before, after) pairs with `value`, as a
    contiguous (C, *kernel, *out, N) array: reshaped to (C*prod(kernel), prod(out)*N) it is the
    GEMM operand of a convolution, and the kernel axes are where pooling reduces. One strided-view
    copy. stride and dilation default to ones, padding to zeros."""
    return _window_copy(x, *defaults(kernel, stride, padding, dilation), value)


@primitive(vjp=lambda g, y, cols, *, shape, kernel, stride=None, padding=None, dilation=None: (
    _im2col(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation),),
    name="_col2im")
def _col2im(cols, *, shape, kernel, stride=None, padding=None, dilation=None):
    """The adjoint of _im2col: an (N, C, *spatial) array with each entry of cols
    (C, *kernel, *out, N) added at its input position (one strided add per kernel offset); padding
    entries are dropped."""
    kernel, stride, padding, dilation = defaults(kernel, stride, padding, dilation)
    d = len(kernel)
    # into the unpadded input's shape: the padding's entries would be cropped anyway (on LeNet's
    # second conv 20% less time than adding into a padded buffer; the same sums in the same order)
    out = xp_of(cols).zeros((shape[1],) + tuple(shape[2:]) + (shape[0],), dtype=cols.dtype)
    disjoint = all(s >= e for s, e in zip(stride, extent(kernel, dilation)))  # e.g. 2x2 pooling
    every = (slice(None),)
    for k, inputs, outputs in _unpadded_offsets(kernel, stride, dilation,
                                                cols.shape[1 + d:1 + 2 * d], padding, shape[2:]):
        if disjoint:
            out[every + inputs] = cols[every + k + outputs]
        else:
            out[every + inputs] += cols[every + k + outputs]
    return out.transpose(channels_first(d))


# ---- convolution --------------------------------------------------------------------------------
def _conv_padding(op, padding, kernel, stride, dilation):
    """(before, after) pairs from an int, a tuple, 'valid' or 'same' (extra after when the total is
    odd, like torch)."""
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * d)
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, {TUPLES[d]}, 'valid' or 'same', got "
                             f"{padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride {stride}); pad explicitly instead")
        totals = (e - 1 for e in extent(kernel, dilation))
        return tuple(p for t in totals for p in (t // 2, t - t // 2))
    return tuple(p for p in ntuple(op, "padding", padding, 0, d) for _ in range(2))


def _kernel_names(d):
    return ", ".join(("kd", "kh", "kw")[3 - d:])


def _check_devices_weight_groups(op, x, weight, bias, groups, layout, d):
    """The checks convolutions and transposed convolutions share: one device, a (d+2)-D weight,
    groups >= 1."""
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise RuntimeError(f"{op}: the input is on {x.device} but the {name} is on "
                               f"{t.device}; move them to one device with .to(device)")
    if weight.ndim != d + 2:
        raise ValueError(f"{op}: expected a {d + 2}-D weight ({layout}, {_kernel_names(d)}), got "
                         f"shape {tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def _check_conv(op, x, weight, bias, groups, d):
    xs, ws = tuple(x.shape), tuple(weight.shape)
    _check_devices_weight_groups(op, x, weight, bias, groups, "out_channels, in_channels/groups",
                                 d)
    if ws[0] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {ws[0]} output channels (weight "
                         f"shape {ws}, input shape {xs})")
    if xs[1] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {xs[1]} input channels (input "
                         f"shape {xs}, weight shape {ws})")
    if xs[1] != ws[1] * groups:
        raise ValueError(f"{op}: input has {xs[1]} channels but weight expects {ws[1] * groups} "
                         f"(weight shape {ws}, groups={groups})")
    if bias is not None and tuple(bias.shape) != (ws[0],):
        raise ValueError(f"{op}: bias must have shape ({ws[0]},) for a weight of shape {ws}, got "
                         f"{tuple(bias.shape)}")


def _per_group(groups, rows, columns):
    """The shape of a per-group matrix: 2-D for one group (numpy runs one plain GEMM on it),
    (groups, rows, columns) else."""
    return (rows, columns) if groups == 1 else (groups, rows, columns)


def _convolution_vjp(g, y, x, weight, bias, *, stride, padding, dilation, groups, saved=None):
    # Per group, y = W @ cols + b on (O/G, prod(out)*N) matrices, so gW = g @ cols^T,
    # gcols = W^T @ g and gb sums g's rows; the .mT operands are views that BLAS reads with a
    # transpose flag. cols comes from the forward when it kept them (`saved`, small convolutions)
    # and is computed again otherwise, and under create_graph, where gW's own gradient needs the
    # op. gW is taken as (cols @ g^T)^T, the same GEMM with cols on the left: OpenBLAS runs it
    # 1.4x faster on LeNet's second conv (a 32 x 144 result from rows of 12544).
    out_c, group_c, *kernel = weight.shape
    d = len(kernel)
    geometry = {"kernel": tuple(kernel), "stride": stride, "padding": padding,
                "dilation": dilation}
    g = _shape.permute(g, dims=tuple(range(1, d + 2)) + (0,))  # (O, *out, N): the forward's order
    out, n = tuple(g.shape[1:-1]), g.shape[-1]
    depth, size = group_c * math.prod(kernel), math.prod(out) * n
    g = _shape.reshape(g, shape=_per_group(groups, out_c // groups, size))
    gx = gw = gb = None
    if weight.requires_grad:
        if saved is not None and plain_backward():
            if saved.ndim == 2:  # the forward's GEMM operand: its last row is the bias's ones
                saved = saved[:depth]
            cols = Tensor(saved.reshape(_per_group(groups, depth, size)))
        else:
            cols = _shape.reshape(_im2col(x, **geometry), shape=_per_group(groups, depth, size))
        gw = _shape.reshape(_linalg.matmul(cols, g.mT).mT, shape=weight.shape)
        del cols  # a copy made here need not coexist with gcols below (a kept one does)
    if x.requires_grad:
        w = _shape.reshape(weight, shape=_per_group(groups, out_c // groups, depth))
        gcols = _shape.reshape(_linalg.matmul(w.mT, g),
                               shape=(x.shape[1],) + tuple(kernel) + out + (n,))
        gx = _col2im(gcols, shape=x.shape, **geometry)
    if bias is not None and bias.requires_grad:
        gb = _shape.reshape(_reduce.sum(g, dim=-1), shape=(out_c,))
    return gx, gw, gb


# The largest im2col copy (bytes) a convolution keeps for its weight's gradient rather than
# copying it again in the backward. For small convolutions the copy is a large part of the step:
# LeNet's (7.2 MB at batch 64) is 0.5 ms of a 10 ms CPU step. Larger ones are copied again, as the
# kept columns would hold prod(kernel) times the input's memory through the forward and backward.
KEEP_COLUMNS = 16 << 20


@primitive(vjp=_convolution_vjp, autocast="lower")
def _convolution(x, weight, bias, *, stride, padding, dilation, groups):
    """Every convolution's one op, on an (N, C, *spatial) x with (before, after) padding pairs and
    a weight and bias that fit x (conv1d/2d/3d check them): the im2col copy and one GEMM per
    group, the bias added in place, or with one group by the GEMM itself (a row of ones under
    the columns: one pass over the output fewer, LeNet's first conv 0.41 -> 0.26 ms); the result
    is an (N, O, *out) view of (O, *out, N) memory.
    Like torch, the input, weight and bias must share a dtype (autocast casts them first)."""
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"convolution: the input is {x.dtype} but the {name} is {t.dtype}; "
                            f"torch refuses mixed dtypes too: convert the input with "
                            f".to(gpuad.{t.dtype}) or the layer with .to(gpuad.{x.dtype})")
    out_c, group_c, *kernel = weight.shape
    d, kernel = len(kernel), tuple(kernel)
    out, n = out_size(x.shape, kernel, stride, padding, dilation), x.shape[0]
    depth, size = group_c * math.prod(kernel), math.prod(out) * n
    if bias is not None and groups == 1:  # [W b] @ [cols; ones]: the GEMM adds the bias
        cols = _columns_and_ones(x, kernel, stride, padding, dilation)
        both = xp_of(x).concatenate((weight.reshape(out_c, depth), bias.reshape(out_c, 1)), 1)
        y = both @ cols
    else:
        cols = _window_copy(x, kernel, stride, padding, dilation, 0)
        y = (weight.reshape(_per_group(groups, out_c // groups, depth))
             @ cols.reshape(_per_group(groups, depth, size))).reshape(out_c, size)
        if bias is not None:
            y += bias.reshape(out_c, 1)
    y = y.reshape((out_c,) + tuple(out) + (n,)).transpose(channels_first(d))
    return Saving(y, cols) if groups * depth * size * y.itemsize <= KEEP_COLUMNS else y


def _as_tensors(op, *arrays):
    return tuple(a if a is None or isinstance(a, Tensor) else as_input(a, op) for a in arrays)


def _conv(op, d, input, weight, bias, stride, padding, dilation, groups):
    x, weight, bias = _as_tensors(op, input, weight, bias)
    x, was_unbatched = batched(op, x, d)
    _check_conv(op, x, weight, bias, groups, d)
    stride = ntuple(op, "stride", stride, 1, d)
    dilation = ntuple(op, "dilation", dilation, 1, d)
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(op, padding, kernel, stride, dilation)
    check_fits(op, x.shape, kernel, pads, dilation)
    y = _convolution(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return unbatched(y, was_unbatched)


@public
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation like torch.nn.functional.conv1d: input (N, C, L) or (C, L), weight
    (out, C/groups, kw); padding an int, a 1-tuple, 'valid' or 'same'."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@public
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation like torch.nn.functional.conv2d: input (N, C, H, W) or (C, H, W),
    weight (out, C/groups, kh, kw); padding an int, a pair, 'valid' or 'same'. One im2col copy and
    one GEMM (a batch of `groups` GEMMs); gradients for input, weight and bias, of every order."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


@public
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation like torch.nn.functional.conv3d: input (N, C, D, H, W) or
    (C, D, H, W), weight (out, C/groups, kd, kh, kw); padding an int, a triple, 'valid' or
    'same'."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


# ---- transposed convolution and torch's unfold / fold -----------------------------------------
def _check_conv_transpose(op, x, weight, bias, groups, d):
    xs, ws = tuple(x.shape), tuple(weight.shape)
    _check_devices_weight_groups(op, x, weight, bias, groups, "in_channels, out_channels/groups",
                                 d)
    if xs[1] != ws[0]:
        raise ValueError(f"{op}: input has {xs[1]} channels but the weight of shape {ws} expects "
                         f"{ws[0]} (its dim 0 is in_channels; input shape {xs})")
    if ws[0] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {ws[0]} input channels (weight "
                         f"shape {ws}, input shape {xs})")
    if bias is not None and tuple(bias.shape) != (ws[1] * groups,):
        raise ValueError(f"{op}: bias must have shape ({ws[1] * groups},) for a weight of shape "
                         f"{ws} and groups={groups}, got {tuple(bias.shape)}")


def transpose_size(op, shape, kernel, stride, padding, output_padding, dilation):
    """A transposed convolution's output size, with torch's checks on output_padding and the
    size."""
    for o, s, d in zip(output_padding, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either "
                             f"the stride {stride} or the dilation {dilation} in each dim; use a "
                             f"smaller output_padding")
    d = len(kernel)
    out = tuple((n - 1) * s - 2 * p + e + o for n, s, p, e, o in
                zip(shape[-d:], stride, padding, extent(kernel, dilation), output_padding))
    if min(out) < 1:
        raise ValueError(f"{op}: the output size {out} is not positive (input shape "
                         f"{tuple(shape)}, kernel {tuple(kernel)}, stride {stride}, padding "
                         f"{padding}, output_padding {output_padding}, dilation {dilation}); "
                         f"reduce the padding")
    return out


def _conv_transpose(op, d, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    x, weight, bias = _as_tensors(op, input, weight, bias)
    x, was_unbatched = batched(op, x, d)
    _check_conv_transpose(op, x, weight, bias, groups, d)
    stride = ntuple(op, "stride", stride, 1, d)
    padding = ntuple(op, "padding", padding, 0, d)
    output_padding = ntuple(op, "output_padding", output_padding, 0, d)
    dilation = ntuple(op, "dilation", dilation, 1, d)
    in_c, group_c, *kernel = weight.shape
    kernel, n, spatial = tuple(kernel), x.shape[0], tuple(x.shape[2:])
    out = transpose_size(op, x.shape, kernel, stride, padding, output_padding, dilation)
    rows = _shape.reshape(_shape.permute(x, dims=tuple(range(1, d + 2)) + (0,)),  # (C_in, .., N)
                          shape=_per_group(groups, in_c // groups, math.prod(spatial) * n))
    matrix = _shape.reshape(weight, shape=_per_group(groups, in_c // groups,
                                                     group_c * math.prod(kernel)))
    cols = _shape.reshape(_linalg.matmul(matrix.mT, rows),
                          shape=(group_c * groups,) + kernel + spatial + (n,))
    geometry = {"kernel": kernel, "stride": stride, "dilation": dilation}
    channels = (n, group_c * groups)
    if all(o - p < s for o, p, s in zip(output_padding, padding, stride)):
        # _col2im's padding crops the canvas: (p, p - o) when o <= p, else (p, 0) and a canvas
        # o - p rows taller (the floor in im2col's size keeps the pair consistent while o - p < s)
        crop = tuple(q for p, o in zip(padding, output_padding) for q in (p, max(p - o, 0)))
        y = _col2im(cols, shape=channels + out, padding=crop, **geometry)
    else:  # output_padding >= stride (allowed below the dilation): the whole canvas, then cropped
        canvas = tuple((m - 1) * s + e for m, s, e in zip(spatial, stride,
                                                           extent(kernel, dilation)))
        y = _col2im(cols, shape=channels + canvas, padding=(0,) * (2 * d), **geometry)
        y = _shape.pad(y, tuple(q for p, o in zip(padding[::-1], output_padding[::-1])
                                for q in (-p, o - p)))
    if bias is not None:
        y = y + _shape.reshape(bias, shape=(1, -1) + (1,) * d)
    return unbatched(y, was_unbatched)


@public
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The adjoint of conv1d in its input, like torch.nn.functional.conv_transpose1d: input
    (N, C_in, L) or (C_in, L), weight (C_in, C_out/groups, kw)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@public
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The adjoint of conv2d in its input, like torch.nn.functional.conv_transpose2d: input
    (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, kh, kw). One GEMM of the weight
    with the input gives every kernel window's contribution, and _col2im (conv2d's input gradient)
    adds them up: a composite, so differentiable to every order."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@public
def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The adjoint of conv3d in its input, like torch.nn.functional.conv_transpose3d: input
    (N, C_in, D, H, W) or (C_in, D, H, W), weight (C_in, C_out/groups, kd, kh, kw)."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _fold_geometry(op, kernel_size, dilation, padding, stride):
    kernel = ntuple(op, "kernel_size", kernel_size, 1)
    dilation = ntuple(op, "dilation", dilation, 1)
    ph, pw = ntuple(op, "padding", padding, 0)
    stride = ntuple(op, "stride", stride, 1)
    return {"kernel": kernel, "stride": stride, "padding": (ph, ph, pw, pw), "dilation": dilation}


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: the sliding blocks of input (N, C, H, W) or (C, H, W) as
    (N, C*kh*kw, L) (or (C*kh*kw, L)), L = Ho*Wo blocks in row-major order: _im2col's windows
    with the batch moved to the front."""
    x = input if isinstance(input, Tensor) else as_input(input, "unfold")
    x, was_unbatched = batched("unfold", x)
    geometry = _fold_geometry("unfold", kernel_size, dilation, padding, stride)
    check_fits("unfold", x.shape, geometry["kernel"], geometry["padding"], geometry["dilation"])
    cols = _im2col(x, **geometry)
    c, kh, kw, ho, wo, n = cols.shape
    out = _shape.permute(_shape.reshape(cols, shape=(c * kh * kw, ho * wo, n)), dims=(2, 0, 1))
    return unbatched(out, was_unbatched)


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
    size = ntuple("fold", "output_size", output_size, 1)
    geometry = _fold_geometry("fold", kernel_size, dilation, padding, stride)
    (kh, kw), (n, depth, length) = geometry["kernel"], x.shape
    if depth % (kh * kw):
        raise ValueError(f"fold: the input's dim {0 if was_unbatched else 1} ({depth}) must be "
                         f"divisible by the kernel's kh*kw = {kh * kw} (input shape {given}, "
                         f"kernel_size {(kh, kw)})")
    check_fits("fold", size, (kh, kw), geometry["padding"], geometry["dilation"])
    ho, wo = out_size(size, **{k: geometry[k] for k in ("kernel", "stride", "padding",
                                                        "dilation")})
    if ho * wo != length:
        raise ValueError(f"fold: output_size {size} with kernel_size {(kh, kw)}, stride "
                         f"{geometry['stride']}, padding {geometry['padding'][::2]} and dilation "
                         f"{geometry['dilation']} has {ho} x {wo} = {ho * wo} blocks, but the "
                         f"input (shape {given}) holds L = {length}")
    cols = _shape.reshape(_shape.permute(x, dims=(1, 2, 0)),
                          shape=(depth // (kh * kw), kh, kw, ho, wo, n))
    y = _col2im(cols, shape=(n, depth // (kh * kw)) + size, **geometry)
    return unbatched(y, was_unbatched)


