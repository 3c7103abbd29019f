"""Resampling, like torch: F.interpolate (nearest, nearest-exact, linear, bilinear, bicubic,
trilinear, area), nn.Upsample and its two fixed-mode subclasses, F.grid_sample and F.affine_grid.

Interpolation is separable: along each spatial dim the output is a weighted sum of one to four
index_select taps, with torch's source-index rules computed on the host in torch's arithmetic
(float32 for nearest indices and for float32 inputs, as its CPU kernels do), so values and
gradients match and stay differentiable to any order. grid_sample gathers its taps from the
flattened input, with weights that are gpuad ops of the grid, so the grid gets its gradient too.
"""
import math
import numbers
import warnings

import numpy

from .. import backend, creation, ops
from .module import Module

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_LINEAR_DIMS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_CUBIC_A = -0.75  # torch's bicubic kernel (Keys' a = -0.75)


def _cubic_weights(t):
    """torch's get_cubic_upsample_coefficients: the 4 taps' weights at fraction t."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _host_dtype(dtype):
    """torch's opmath type: float64 for float64 inputs, float32 otherwise."""
    return numpy.float64 if dtype == numpy.float64 else numpy.float32


def _taps(mode, n, m, scale, align_corners, dtype):
    """(indices, weights) per tap along one dim: m output positions read from n inputs; weights
    None for the nearest modes."""
    i = numpy.arange(m)
    if mode in ("nearest", "nearest-exact"):
        if m == n:
            return [i], None
        if m == 2 * n and mode == "nearest":
            return [i // 2], None
        f = numpy.float32
        s = f(1.0 / scale) if scale else f(n) / f(m)
        shift = f(0.5) if mode == "nearest-exact" else f(0)
        return [numpy.minimum(numpy.floor((i.astype(f) + shift) * s).astype(numpy.int64),
                              n - 1)], None
    f = _host_dtype(dtype)
    if align_corners:
        s = f(n - 1) / f(m - 1) if m > 1 else f(0)
        real = s * i.astype(f)
    else:
        s = f(1.0 / scale) if scale else f(n) / f(m)
        real = s * (i.astype(f) + f(0.5)) - f(0.5)
    if mode != "bicubic":
        real = numpy.maximum(real, f(0))
    index = numpy.minimum(numpy.floor(real).astype(numpy.int64), n - 1)
    t = numpy.clip(real - index.astype(f), f(0), f(1))
    if mode == "bicubic":
        return ([numpy.clip(index - 1 + k, 0, n - 1) for k in range(4)],
                [w.astype(f) for w in _cubic_weights(t)])
    return [index, numpy.minimum(index + 1, n - 1)], [1 - t, t]


def _resample(x, axis, indices, weights):
    """The taps along one axis: one index_select for a nearest mode, a weighted sum else."""
    device = x.device
    if weights is None:
        index = indices[0]
        n, m = x.shape[axis], index.shape[0]
        if m % n == 0 and numpy.array_equal(index, numpy.arange(m) // (m // n)):
            shape = tuple(x.shape)  # each entry repeated: expand and reshape, no index array
            k = m // n
            x = x.unsqueeze(axis + 1).expand(*(shape[:axis + 1] + (k,) + shape[axis + 1:]))
            return x.reshape(shape[:axis] + (m,) + shape[axis + 1:])
        return x.index_select(axis, creation.tensor(index, device=device))
    out = 0
    view = (-1,) + (1,) * (x.ndim - axis - 1)
    for index, weight in zip(indices, weights):
        w = creation.tensor(weight.reshape(view), dtype=x.dtype, device=device)
        out = out + x.index_select(axis, creation.tensor(index, device=device)) * w
    return out


def _sizes(input, size, scale_factor, recompute_scale_factor):
    """torch's output sizes and the scale factors handed to the kernels (None: use in/out)."""
    d = input.ndim - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                             "explicit size")
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * d
        if len(sizes) != d:
            raise ValueError(f"interpolate: input and output must have the same number of "
                             f"spatial dims, but got input with spatial dims {spatial} and "
                             f"output size {size}; give the input as (N, C, d1, ..., dK) and "
                             f"the size as (o1, ..., oK)")
        if not all(isinstance(s, numbers.Integral) for s in sizes):
            raise TypeError(f"interpolate: size must be an int or a tuple of ints, got {size!r}")
        return [int(s) for s in sizes], [None] * d
    if scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    factors = (list(scale_factor) if isinstance(scale_factor, (list, tuple))
               else [scale_factor] * d)
    if len(factors) != d:
        raise ValueError(f"interpolate: input and scale_factor must have the same number of "
                         f"spatial dims, but got input with spatial dims {spatial} and "
                         f"scale_factor {scale_factor}; give one factor per spatial dim")
    sizes = [int(math.floor(float(n) * float(f))) for n, f in zip(spatial, factors)]
    return sizes, [None] * d if recompute_scale_factor else [float(f) for f in factors]


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial dims of (N, C, *) like torch.nn.functional.interpolate: modes
    nearest (index floor(i * in/out), or floor(i / scale_factor)), nearest-exact (the centre
    rule), linear (3-D), bilinear and bicubic (4-D, torch's a = -0.75 kernel), trilinear (5-D)
    and area (adaptive average pooling); align_corners for the interpolating modes;
    recompute_scale_factor makes the kernels use in/out instead of the given factor."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not one of {_MODES}")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if input.ndim not in (3, 4, 5):
        raise NotImplementedError(f"interpolate: only 3-D, 4-D and 5-D inputs (N, C, *) are "
                                  f"supported, got shape {tuple(input.shape)} (mode {mode!r})")
    if mode in _LINEAR_DIMS and input.ndim != _LINEAR_DIMS[mode]:
        raise NotImplementedError(f"interpolate: got a {input.ndim}-D input (shape "
                                  f"{tuple(input.shape)}), but {mode} mode needs a "
                                  f"{_LINEAR_DIMS[mode]}-D input")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by gpuad")
    if mode not in ("nearest", "nearest-exact") and input.dtype.kind != "f":
        raise TypeError(f"interpolate: mode {mode!r} needs a floating point input, got "
                        f"{input.dtype}; convert it with .float()")
    if mode == "area" and size is None:
        recompute_scale_factor = True  # as torch: area pooling needs an explicit size
    sizes, scales = _sizes(input, size, scale_factor, recompute_scale_factor)
    if min(sizes) < 1 or min(input.shape[2:]) < 1:
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, got "
                         f"output size {tuple(sizes)} for an input of shape "
                         f"{tuple(input.shape)}")
    if mode == "area":
        return getattr(ops, f"adaptive_avg_pool{input.ndim - 2}d")(input, tuple(sizes))
    kind = mode if mode in ("nearest", "nearest-exact", "bicubic") else "linear"
    out = input
    for axis, (n, m, scale) in enumerate(zip(input.shape[2:], sizes, scales), 2):
        if m == n and kind != "bicubic" and (kind != "linear" or not scale or scale == 1
                                             or align_corners):
            continue  # the identity (same size): no copy
        indices, weights = _taps(kind, n, m, scale, align_corners, input.dtype)
        out = _resample(out, axis, indices, weights)
    return out


class Upsample(Module):
    """Resample by `size` or `scale_factor` with any interpolate mode, like torch.nn.Upsample
    (factors are kept as floats, as torch does)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        what = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W), like torch.nn.UpsamplingNearest2d."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling with align_corners=True, like torch.nn.UpsamplingBilinear2d."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


# ---- grid_sample and affine_grid -----------------------------------------------------------------
def _default_align_corners(name, align_corners):
    if align_corners is None:
        warnings.warn(f"{name}: the default align_corners is False (torch's since 1.3.0, with "
                      f"this same warning); pass align_corners explicitly", UserWarning,
                      stacklevel=3)
        return False
    return align_corners


def _unnormalize(coord, size, align_corners):
    """[-1, 1] to pixel coordinates: the centres of the corner pixels (align_corners) or the
    corners themselves."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, low2, high2):
    """torch's reflect_coordinates: fold coord into [low2 / 2, high2 / 2] by mirroring."""
    if low2 == high2:
        return coord * 0
    low, span = low2 / 2, (high2 - low2) / 2
    distance = ops.abs(coord - low)
    xp = coord.device.xp
    flips = xp.floor(distance.array / span)
    extra = distance - creation.tensor(flips, device=coord.device).to(coord.dtype) * span
    even = creation.tensor(flips % 2 == 0, device=coord.device)
    return ops.where(even, extra + low, span - extra + low)


def _source(coord, size, padding_mode, align_corners):
    """torch's grid_sampler_compute_source_index, differentiable in coord."""
    coord = _unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        return ops.clamp(coord, min=0, max=size - 1)
    if padding_mode == "reflection":
        coord = (_reflect(coord, 0, 2 * (size - 1)) if align_corners
                 else _reflect(coord, -1, 2 * size - 1))
        return ops.clamp(coord, min=0, max=size - 1)
    return coord


def _fold(xp, index, size, padding_mode, align_corners):
    """An integer tap position under the padding mode (bicubic reads its taps this way)."""
    if padding_mode == "border":
        return xp.clip(index, 0, size - 1)
    if padding_mode == "reflection":
        low2, high2 = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        if low2 == high2:
            return xp.zeros_like(index)
        low, span = low2 / 2, (high2 - low2) / 2
        distance = xp.abs(index - low)
        flips, extra = xp.floor(distance / span), xp.fmod(distance, span)
        folded = xp.where(flips % 2 == 0, extra + low, span - extra + low)
        return xp.clip(folded, 0, size - 1)
    return index


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample input (N, C, H, W) at the points grid (N, Ho, Wo, 2) (x, y in [-1, 1]), like
    torch.nn.functional.grid_sample: modes bilinear, nearest (round half to even) and bicubic;
    padding_mode zeros, border or reflection. Gradients reach the input and (bilinear, bicubic)
    the grid. 5-D (volumetric) sampling is not supported."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got {padding_mode!r}")
    align_corners = _default_align_corners("grid_sample", align_corners)
    if input.dtype.kind != "f" or grid.dtype != input.dtype:
        raise TypeError(f"grid_sample: input and grid must share a floating point dtype, got "
                        f"{input.dtype} and {grid.dtype}")
    if input.ndim == 5:
        raise NotImplementedError("grid_sample: 5-D (volumetric) inputs are not supported by "
                                  "gpuad; sample each depth slice with a 4-D grid")
    if (input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2
            or grid.shape[0] != input.shape[0]):
        raise ValueError(f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2) with "
                         f"the same N, got input {tuple(input.shape)} and grid "
                         f"{tuple(grid.shape)}")
    n, c, h, w = input.shape
    _, ho, wo, _ = grid.shape
    xp, device = input.device.xp, input.device
    flat = input.reshape((n, c, h * w))
    gx, gy = grid[..., 0], grid[..., 1]

    def tap(ix, iy, weight):
        """weight * input at integer positions (ix, iy) (raw arrays), zero outside."""
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        index = xp.where(inside, iy * w + ix, 0).astype(backend.int64).reshape(n, 1, ho * wo)
        index = creation.tensor(xp.broadcast_to(index, (n, c, ho * wo)), device=device)
        values = ops.gather(flat, 2, index).reshape((n, c, ho, wo))
        mask = creation.tensor(inside, device=device).unsqueeze(1)
        return ops.where(mask, values * weight.unsqueeze(1), 0)

    if mode == "bicubic":
        x, y = _unnormalize(gx, w, align_corners), _unnormalize(gy, h, align_corners)
        x0, y0 = xp.floor(x.array), xp.floor(y.array)
        tx = x - creation.tensor(x0, device=device)
        ty = y - creation.tensor(y0, device=device)
        wx, wy = _cubic_weights(tx), _cubic_weights(ty)
        out = 0
        for j in range(4):
            iy = _fold(xp, y0 - 1 + j, h, padding_mode, align_corners).astype(backend.int64)
            for i in range(4):
                ix = _fold(xp, x0 - 1 + i, w, padding_mode, align_corners).astype(backend.int64)
                out = out + tap(ix, iy, wx[i] * wy[j])
        return out
    x, y = _source(gx, w, padding_mode, align_corners), _source(gy, h, padding_mode, align_corners)
    if mode == "nearest":  # nearbyint: halves round to even, as numpy's round
        ix, iy = xp.round(x.array).astype(backend.int64), xp.round(y.array).astype(backend.int64)
        return tap(ix, iy, creation.ones(n, ho, wo, dtype=input.dtype, device=device))
    x0, y0 = xp.floor(x.array), xp.floor(y.array)
    fx = x - creation.tensor(x0, device=device)  # in [0, 1): the weight of the next column
    fy = y - creation.tensor(y0, device=device)
    x0, y0 = x0.astype(backend.int64), y0.astype(backend.int64)
    return (tap(x0, y0, (1 - fx) * (1 - fy)) + tap(x0 + 1, y0, fx * (1 - fy))
            + tap(x0, y0 + 1, (1 - fx) * fy) + tap(x0 + 1, y0 + 1, fx * fy))


def _base_axis(steps, align_corners):
    """torch's linspace_from_neg_one: the normalised pixel centres along one axis."""
    if steps <= 1:
        return numpy.zeros(max(steps, 1))
    axis = numpy.linspace(-1, 1, steps)
    return axis if align_corners else axis * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None):
    """The sampling grid (N, H, W, 2) of the affine maps theta (N, 2, 3) for an output of size
    (N, C, H, W) (or (N, D, H, W, 3) from theta (N, 3, 4) and a 5-D size), like
    torch.nn.functional.affine_grid; feed it to grid_sample."""
    align_corners = _default_align_corners("affine_grid", align_corners)
    size = tuple(int(s) for s in size)
    if theta.dtype.kind != "f":
        raise TypeError(f"affine_grid: expected theta to have a floating point dtype, got "
                        f"{theta.dtype}")
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid: only 4-D and 5-D sizes are supported (2-D and "
                                  f"3-D affine maps), got size {size}")
    rows = len(size) - 2
    if tuple(theta.shape) != (size[0], rows, rows + 1):
        raise ValueError(f"affine_grid: expected a batch of affine matrices of shape (N, {rows}, "
                         f"{rows + 1}) = {(size[0], rows, rows + 1)} for size {size}, got theta "
                         f"of shape {tuple(theta.shape)}")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: expected a positive output size, got {size}")
    spatial = size[2:]
    axes = [_base_axis(s, align_corners) for s in spatial]  # (D,) H, W
    mesh = numpy.meshgrid(*axes, indexing="ij")
    base = numpy.stack([m for m in reversed(mesh)] + [numpy.ones(spatial)], -1)  # x, y(, z), 1
    base = creation.tensor(base.reshape(1, -1, rows + 1), dtype=theta.dtype, device=theta.device)
    grid = ops.matmul(base, theta.transpose(1, 2))
    return grid.reshape((size[0],) + spatial + (rows,))
