"""Pooling with torch.nn.functional's semantics in 1, 2 and 3 spatial dims: max, average and
adaptive pooling, on the window geometry of ops/conv.py.

Average pooling is _im2col then a sum (a composite). Max pooling needs no copy: `_pool_gather`
picks each window's first maximum from one strided view per kernel offset and `_pool_scatter`
sends gradients back to it; each is the other's gradient. Indices (return_indices) come from
`_pool_indices` and `_adaptive_max_indices`, which have no gradient; adaptive max pooling gathers
its values at those indices, so its gradient goes to the first maximum of each window, as torch's.
"""
import functools
import itertools
import math
import numbers

import numpy

from .. import backend
from ..backend import xp_of
from ..backend.kernels import fused
from ..tensor import Tensor
from . import conv as _conv
from . import indexing as _indexing
from . import linalg as _linalg
from . import primitive, public
from . import reduce as _reduce
from . import shape as _shape
from .conv import batched, channels_first, extent, ntuple, offsets, out_size, unbatched


# ---- pooling geometry ---------------------------------------------------------------------------
def _pool_geometry(op, shape, d, kernel_size, stride, padding, dilation, ceil_mode):
    """kernel, stride, dilation, (before, after) padding pairs and output size of a pooling with
    torch's rules: stride defaults to the kernel, padding at most half the kernel, and in
    ceil_mode a last partial window counts if it starts inside the input or the left padding (the
    padding is extended after the input to hold it)."""
    kernel = ntuple(op, "kernel_size", kernel_size, 1, d)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and
                                          len(stride) == 0) else ntuple(op, "stride", stride, 1, d)
    dilation = ntuple(op, "dilation", dilation, 1, d)
    pad = ntuple(op, "padding", padding, 0, d)
    if any(p * 2 > k for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding {pad} must be at most half the kernel size {kernel}")
    pads, out = [], []
    for n, k, s, dl, p in zip(shape[-d:], kernel, stride, dilation, pad):
        reach = dl * (k - 1) + 1
        if n + 2 * p < reach:
            raise ValueError(f"{op}: kernel size {kernel} (extent {extent(kernel, dilation)}) is "
                             f"larger than the padded input size "
                             f"{tuple(m + 2 * q for m, q in zip(shape[-d:], pad))} (input shape "
                             f"{tuple(shape)}, padding {pad})")
        size = (n + 2 * p - reach + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (size - 1) * s >= n + p:
            size -= 1  # the last window would start in the right padding
        out.append(size)
        pads += [p, max((size - 1) * s + reach - n - p, p)]
    return kernel, stride, dilation, tuple(pads), tuple(out)


# ---- max pooling: the _pool_gather / _pool_scatter pair ------------------------------------------
def _window_views(x, geometry, value):
    """The (C, *out, N) view of x's padded batch-last copy at each kernel offset."""
    kernel, stride, padding, dilation = geometry
    padded = _conv.batch_last(x, padding, value)
    out = out_size(x.shape, kernel, stride, padding, dilation)
    return [padded[(slice(None),) + window] for _, window in
            offsets(kernel, stride, dilation, out)]


def _window_max(windows):
    xp = xp_of(windows[0])
    if len(windows) == 1:
        return windows[0].copy()  # never a view of the input
    best = xp.maximum(windows[0], windows[1])  # NaN propagates, as in torch
    for window in windows[2:]:
        xp.maximum(best, window, out=best)
    return best


def _last_nans(windows, best):
    """torch's max pooling scans a window keeping an entry greater than its pick or NaN, so a
    window holding a NaN sends its gradient to its last NaN. Per offset, where it holds its
    window's last NaN; None when no window holds one, the usual case, which the host sees without
    a pass over the windows (their maxima are NaN exactly there, backend.may_hold_nan)."""
    if not backend.may_hold_nan(best):
        return None
    xp = xp_of(best)
    lasts, later = [None] * len(windows), None
    for k in reversed(range(len(windows))):
        nan = xp.isnan(windows[k])
        if later is None:
            lasts[k], later = nan, nan.copy()
        else:
            lasts[k] = xp.greater(nan, later)  # a NaN with none after it
            later |= nan
    return lasts


def _first_max_hits(windows, best):
    """For each offset, where its entry is the first maximum of its window: torch's max pooling
    sends a window's gradient to that one entry, so ties are not split. A window holding a NaN
    has a NaN maximum, as in torch, and its hit is its last NaN (_last_nans). Each mask is valid
    until the next one is asked for: two output-sized boolean buffers serve every offset."""
    xp = xp_of(best)
    lasts = _last_nans(windows, best)
    taken = hit = None
    for k, window in enumerate(windows):
        if taken is None:
            taken = window >= best  # a NaN maximum: no hit (no NaN is >= it)
            if lasts is not None:
                taken |= lasts[0]
            yield taken
            continue
        hit = xp.greater_equal(window, best, out=hit)
        xp.greater(hit, taken, out=hit)  # a maximum not taken by an earlier offset
        if lasts is not None:
            hit |= lasts[k]  # (a NaN window has no other hit to clash with)
        yield hit
        if k < len(windows) - 1:
            taken |= hit


def _pool_gather_vjp(g, y, v, x, *, kernel, stride, padding, dilation):
    best = y if v is x else None  # max pooling's output is the window maxima: reuse it
    return _pool_scatter(g, x, best, kernel=kernel, stride=stride, padding=padding,
                         dilation=dilation), None


@primitive(vjp=_pool_gather_vjp)
def _pool_gather(v, x, *, kernel, stride, padding, dilation):
    """(N, C, *out): for each window of x (padded with -inf), the entry of v (shaped like x) at
    the window's first maximum. _pool_gather(x, x) is max pooling; x only chooses, so it gets no
    gradient (the choice is piecewise constant)."""
    if v is x:  # max pooling itself: the value at the first maximum is the maximum
        return _max_pool_array(x, kernel=kernel, stride=stride, padding=padding,
                               dilation=dilation)
    return _max_pool_gather(v, x, kernel=kernel, stride=stride, padding=padding,
                            dilation=dilation)


# Max pooling, its scatter and its gather are each one fused unit (backend.kernels), which
# gpuad.compile records whole: a replay asks again whether a window holds a NaN (_last_nans) and
# skips that work on numpy when none does, as an eager step would, and the compiler sees a max
# pooling of a ReLU as such (compiler/rewrite.py pools first).
@fused("max_pool")
def _max_pool_array(x, *, kernel, stride, padding, dilation):
    windows = _window_views(x, (kernel, stride, padding, dilation), -math.inf)
    return _window_max(windows).transpose(channels_first(len(kernel)))


@fused("max_pool_gather")
def _max_pool_gather(v, x, *, kernel, stride, padding, dilation):
    """_pool_gather for v other than x."""
    geometry, d = (kernel, stride, padding, dilation), len(kernel)
    windows = _window_views(x, geometry, -math.inf)
    best = _window_max(windows)
    out = None
    for hit, window in zip(_first_max_hits(windows, best), _window_views(v, geometry, 0)):
        picked = backend.masked(window, hit)  # +0.0 off the maximum, whatever v holds there
        if out is None:
            out = picked
        elif picked.dtype in backend.FLOAT_BITS:  # one window's entry is picked: merge the bits
            bits = out.view(backend.FLOAT_BITS[picked.dtype])  # (a sum: -0.0 picked gives +0.0)
            bits |= picked.view(bits.dtype)
        else:
            out += picked
    return out.transpose(channels_first(d))


def _tiles(shape, kernel, stride, padding, dilation):
    """Whether the windows cover the input exactly once (2x2 pooling of even sizes, say)."""
    return (not any(padding) and all(dl == 1 for dl in dilation) and stride == kernel
            and all(n % k == 0 for n, k in zip(shape[2:], kernel)))


def _tiled_scatter(v, windows, best, kernel, shape):
    """_pool_scatter when the windows tile an x of `shape`, with `windows` its (C, *out, N)
    views at each kernel offset (_window_views) and best their maxima: the result seen as
    (C, o1, k1, o2, k2, ..., N), each offset's slice of it written by one multiply of v with that
    offset's first-maximum mask (no zero fill, no strided adds). The masks are fresh output-sized
    arrays, so the boolean passes between them run over contiguous memory."""
    xp = xp_of(v)
    n, c, *spatial = shape
    d = len(kernel)
    out = [m // k for m, k in zip(spatial, kernel)]
    split = tuple(q for o, k in zip(out, kernel) for q in (o, k))
    v = backend.in_order_of(v.transpose(tuple(range(1, d + 2)) + (0,)), best)  # read by every pass
    y = xp.empty((c,) + split + (n,), dtype=v.dtype)

    def at(k):
        return (slice(None),) + tuple(q for i in k for q in (slice(None), i))
    scan = list(itertools.product(*(range(k) for k in kernel)))  # row-major, torch's scan order
    lasts = _last_nans(windows, best)
    seen = None
    for i, k in enumerate(scan):
        hit = windows[i] >= best  # a NaN maximum: no hit
        if seen is None:
            seen = hit
        else:
            xp.greater(hit, seen, out=hit)  # a maximum not taken by an earlier offset
            if i < len(scan) - 1:
                seen |= hit
        if lasts is not None:
            hit |= lasts[i]  # a NaN window's last NaN (after seen took hit: no clash)
        backend.masked(v, hit, out=y[at(k)])
    return y.reshape((c,) + tuple(spatial) + (n,)).transpose(channels_first(d))


@primitive(vjp=lambda g, y, v, x, best, *, kernel, stride, padding, dilation: (
    _pool_gather(g, x, kernel=kernel, stride=stride, padding=padding, dilation=dilation), None,
    None), name="_pool_scatter")
def _pool_scatter(v, x, best, *, kernel, stride, padding, dilation):
    """The adjoint of _pool_gather in its first argument: zeros shaped like x with each entry of v
    (N, C, *out) added at the first maximum of its window of x, overlapping windows adding up.
    `best` is x's window maxima (max pooling's output) or None to compute them again."""
    return _max_pool_scatter(v, x, best, kernel=kernel, stride=stride, padding=padding,
                             dilation=dilation)


@fused("max_pool_scatter")
def _max_pool_scatter(v, x, best, *, kernel, stride, padding, dilation):
    d = len(kernel)
    to_batch_last = tuple(range(1, d + 2)) + (0,)
    windows = _window_views(x, (kernel, stride, padding, dilation), -math.inf)
    best = _window_max(windows) if best is None else best.transpose(to_batch_last)
    if _tiles(x.shape, kernel, stride, padding, dilation):
        return _tiled_scatter(v, windows, best, kernel, x.shape)
    xp = xp_of(v)
    n, c, *spatial = x.shape
    out = xp.zeros((c,) + _conv.padded_size(x.shape, padding) + (n,), dtype=v.dtype)
    v = backend.in_order_of(v.transpose(to_batch_last), best)  # read by all the offsets' passes
    disjoint = all(s >= e for s, e in zip(stride, extent(kernel, dilation)))
    hits = _first_max_hits(windows, best)
    for hit, (_, window) in zip(hits, offsets(kernel, stride, dilation, v.shape[1:-1])):
        target = (slice(None),) + window
        if disjoint:  # every entry of out is written once (or stays zero): no read-modify-write
            backend.masked(v, hit, out=out[target])
        else:
            out[target] += backend.masked(v, hit)
    crop = tuple(slice(padding[2 * i], padding[2 * i] + m) for i, m in enumerate(spatial))
    return out[(slice(None),) + crop].transpose(channels_first(d))


def _positions(spatial, k, stride, padding, dilation, out):
    """The flat index into `spatial` of kernel offset k's entry in every window, as a
    (1, *out, 1) array (negative or wrong in the padding, where no maximum lies)."""
    flat = 0
    for axis, (n, i, s, dl, o) in enumerate(zip(spatial, k, stride, dilation, out)):
        shape = [1] * (len(out) + 2)
        shape[axis + 1] = o
        flat = flat * n + (numpy.arange(o) * s - padding[2 * axis] + i * dl).reshape(shape)
    return flat


@primitive(name="_pool_indices")
def _pool_indices(x, *, kernel, stride, padding, dilation):
    """int64 (N, C, *out): for each window of x (padded with -inf), the flat index into x's
    spatial dims of its first maximum (of its last NaN, if it holds one, as torch): max pooling's
    return_indices. No gradient."""
    xp, device = xp_of(x), backend.device_of(x)
    windows = _window_views(x, (kernel, stride, padding, dilation), -math.inf)
    best = _window_max(windows)
    out = best.shape[1:-1]
    index = xp.zeros(best.shape, dtype=backend.int64)
    scan = list(offsets(kernel, stride, dilation, out))
    for hit, (k, _) in zip(_first_max_hits(windows, best), scan):
        position = _positions(x.shape[2:], k, stride, padding, dilation, out)
        index = xp.where(hit, backend.asarray(position, backend.int64, device), index)
    if backend.may_hold_nan(best):  # torch takes a window's last NaN
        for window, (k, _) in zip(windows, scan):
            position = _positions(x.shape[2:], k, stride, padding, dilation, out)
            index = xp.where(xp.isnan(window), backend.asarray(position, backend.int64, device),
                             index)
    return index.transpose(channels_first(len(kernel)))


def _max_pool(op, d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, was_unbatched = batched(op, input, d)
    kernel, stride, dilation, pads, _ = _pool_geometry(op, x.shape, d, kernel_size, stride,
                                                       padding, dilation, ceil_mode)
    geometry = {"kernel": kernel, "stride": stride, "padding": pads, "dilation": dilation}
    y = unbatched(_pool_gather(x, x, **geometry), was_unbatched)
    if not return_indices:
        return y
    return y, unbatched(_pool_indices(x.detach(), **geometry), was_unbatched)


@public
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window of (N, C, L) or (C, L), like torch.nn.functional.max_pool1d; with
    return_indices also the int64 position of each maximum in L."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


@public
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window, like torch.nn.functional.max_pool2d (padding counts as -inf); the
    gradient goes to the first maximum of each window and accumulates where windows overlap.
    return_indices adds the int64 flat index (h * W + w) of each maximum."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


@public
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.functional.max_pool3d; indices are flat over (D, H, W)."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


# ---- average pooling ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _pool_divisor(shape, kernel, stride, pads, out, count_include_pad):
    """torch's average-pooling divisor per output position, on the host: the window clipped to
    the padded input (count_include_pad) or to the input itself; the ceil_mode overhang never
    counts."""
    counts = []
    for n, k, s, lo, size in zip(shape[-len(kernel):], kernel, stride, pads[::2], out):
        start = numpy.arange(size) * s - lo
        end = numpy.minimum(start + k, n + lo)
        if not count_include_pad:
            start, end = numpy.maximum(start, 0), numpy.minimum(end, n)
        counts.append(end - start)
    return functools.reduce(numpy.multiply.outer, counts)


def _avg_pool(op, d, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, was_unbatched = batched(op, input, d)
    kernel, stride, _, pads, out = _pool_geometry(op, x.shape, d, kernel_size, stride, padding,
                                                  1, ceil_mode)
    windows = _conv._im2col(x, kernel=kernel, stride=stride, padding=pads)
    windows = _shape.reshape(windows, shape=(windows.shape[0], math.prod(kernel)) +
                             tuple(windows.shape[1 + d:]))
    total = _shape.permute(_reduce.sum(windows, dim=1), dims=channels_first(d))
    if divisor_override is not None:
        if not divisor_override:
            raise ValueError(f"{op}: divisor_override must not be zero")
        divisor = divisor_override
    else:
        divisor = _pool_divisor(tuple(x.shape), kernel, stride, pads, out, count_include_pad)
        if (divisor == divisor.flat[0]).all():
            divisor = int(divisor.flat[0])
        else:
            divisor = Tensor(backend.asarray(divisor, x.dtype, x.device))
    return unbatched(total / divisor, was_unbatched)


@public
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over each window of (N, C, L) or (C, L), like torch.nn.functional.avg_pool1d."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


@public
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window, like torch.nn.functional.avg_pool2d: zero padding counts in the
    divisor unless count_include_pad=False; divisor_override replaces the divisor."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


@public
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.functional.avg_pool3d."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


# ---- adaptive pooling ---------------------------------------------------------------------------
def _window_bounds(n, size):
    """torch's adaptive windows: [floor(i*n/size), ceil((i+1)*n/size)) for output i."""
    return [((i * n) // size, -(-(i + 1) * n // size)) for i in range(size)]


def _adaptive_size(op, shape, output_size, d):
    size = (output_size,) * d if output_size is None or isinstance(
        output_size, numbers.Integral) else tuple(output_size)
    if len(size) != d:
        raise ValueError(f"{op}: output_size must be an int or {_conv.TUPLES[d]}, got "
                         f"{output_size!r}")
    spatial = tuple(shape[-d:])
    size = tuple(n if s is None else int(s) for s, n in zip(size, spatial))
    if min(size) < 1 or min(spatial) < 1:
        raise ValueError(f"{op}: output size {size} and input size {spatial} must be positive "
                         f"(input shape {tuple(shape)})")
    return size


def _adaptive_matrix(n, size, dtype, device):
    """The (size, n) averaging matrix of torch's adaptive windows."""
    matrix = numpy.zeros((size, n))
    for i, (start, end) in enumerate(_window_bounds(n, size)):
        matrix[i, start:end] = 1 / (end - start)
    return Tensor(backend.asarray(matrix, dtype, device))


def _adaptive_avg(op, d, input, output_size):
    x, was_unbatched = batched(op, input, d)
    size = _adaptive_size(op, x.shape, output_size, d)
    spatial = tuple(x.shape[2:])
    if all(s == 1 for s in size):
        out = _reduce.mean(x, dim=tuple(range(2, d + 2)), keepdim=True)
    elif all(n % s == 0 for n, s in zip(spatial, size)):
        out = _avg_pool(op, d, x, tuple(n // s for n, s in zip(spatial, size)), None, 0, False,
                        True, None)
    else:  # one averaging GEMM per dim (windows may overlap)
        out = x
        for axis, (n, s) in enumerate(zip(spatial, size), 2):
            if n == s:
                continue
            matrix = _adaptive_matrix(n, s, x.dtype, x.device)
            if axis == out.ndim - 2:
                out = _linalg.matmul(matrix, out)
            else:
                moved = out if axis == out.ndim - 1 else _shape.transpose(out, axis, -1)
                out = _linalg.matmul(moved, _shape.transpose(matrix, 0, 1))
                out = out if axis == out.ndim - 1 else _shape.transpose(out, axis, -1)
    return unbatched(out, was_unbatched)


@public
def adaptive_avg_pool1d(input, output_size):
    """Average over torch's adaptive windows of (N, C, L) or (C, L), like
    torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


@public
def adaptive_avg_pool2d(input, output_size):
    """Average over torch's adaptive windows, like torch.nn.functional.adaptive_avg_pool2d:
    output_size an int or a pair (None keeps that dim). Sizes that divide the input are plain
    average pools; others are one GEMM per dim with averaging matrices (windows may overlap)."""
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


@public
def adaptive_avg_pool3d(input, output_size):
    """Average over torch's adaptive windows of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.functional.adaptive_avg_pool3d."""
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def _index_table(n, size):
    """torch's adaptive windows as a (size, width) table of indices, each row padded to the widest
    window by repeating its last index (a repeat never changes the first maximum)."""
    bounds = _window_bounds(n, size)
    width = max(end - start for start, end in bounds)
    return numpy.array([[min(start + k, end - 1) for k in range(width)]
                        for start, end in bounds], dtype=numpy.int64)


@primitive(name="_adaptive_max_indices")
def _adaptive_max_indices(x, *, output_size):
    """int64 (N, C, *output_size): for each of torch's adaptive windows of x (N, C, *spatial), the
    flat index into the spatial dims of its first maximum in row-major order (of its last NaN, if
    it holds one, as torch). Max is separable: the last dim is reduced first, then each earlier
    one, which finds the row-major first maximum (and last NaN). No gradient."""
    xp, device = xp_of(x), backend.device_of(x)
    values, index, inner = x, None, 1
    for axis in reversed(range(2, x.ndim)):
        n, size = x.shape[axis], output_size[axis - 2]
        table = _index_table(n, size)
        width = table.shape[1]
        lookup = backend.asarray(table.reshape(-1), backend.int64, device)
        shape = values.shape[:axis] + (size, width) + values.shape[axis + 1:]
        taken = xp.take(values, lookup, axis=axis).reshape(shape)
        nan = xp.isnan(taken)  # torch takes a window's last NaN
        last_nan = width - 1 - xp.flip(nan, axis=axis + 1).argmax(axis=axis + 1)
        pick = xp.where(nan.any(axis=axis + 1), last_nan, taken.argmax(axis=axis + 1))
        pick = xp.expand_dims(pick, axis + 1)
        values = xp.take_along_axis(taken, pick, axis=axis + 1).squeeze(axis + 1)
        rows = table.reshape((1,) * axis + table.shape + (1,) * (x.ndim - axis - 1))
        rows = backend.asarray(rows, backend.int64, device)
        chosen = xp.take_along_axis(xp.broadcast_to(rows, shape), pick, axis=axis + 1)
        chosen = chosen.squeeze(axis + 1) * inner
        if index is not None:
            previous = xp.take(index, lookup, axis=axis).reshape(shape)
            chosen = chosen + xp.take_along_axis(previous, pick, axis=axis + 1).squeeze(axis + 1)
        index, inner = chosen, inner * n
    return index


def _adaptive_max(op, d, input, output_size, return_indices):
    x, was_unbatched = batched(op, input, d)
    size = _adaptive_size(op, x.shape, output_size, d)
    n, c = x.shape[:2]
    index = _adaptive_max_indices(x.detach(), output_size=size)
    flat = _indexing._gather(_shape.reshape(x, shape=(n, c, -1)),
                             _shape.reshape(index, shape=(n, c, -1)), dim=2)
    y = unbatched(_shape.reshape(flat, shape=(n, c) + size), was_unbatched)
    return (y, unbatched(index, was_unbatched)) if return_indices else y


@public
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over torch's adaptive windows of (N, C, L) or (C, L), like
    torch.nn.functional.adaptive_max_pool1d; the gradient goes to each window's first maximum."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


@public
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over torch's adaptive windows, like torch.nn.functional.adaptive_max_pool2d
    (output_size an int or a pair, None keeping that dim); indices are flat (h * W + w)."""
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


@public
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max over torch's adaptive windows of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.functional.adaptive_max_pool3d."""
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)
