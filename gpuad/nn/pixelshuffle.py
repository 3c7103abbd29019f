"""pixel_shuffle and pixel_unshuffle (functional and Modules), like torch: channels traded for
spatial resolution by one reshape, permute and reshape, so gradients are exact to any order."""
import numbers

from .module import Module


def _check(name, input, factor, what):
    if not isinstance(factor, numbers.Integral) or factor <= 0:
        raise ValueError(f"{name}: expects a positive {what}, but got {factor!r}")
    if input.ndim < 3:
        raise ValueError(f"{name}: expects input to have at least 3 dimensions (*, C, H, W), but "
                         f"got input of shape {tuple(input.shape)}")


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r), like torch.nn.functional.pixel_shuffle."""
    r = upscale_factor
    _check("pixel_shuffle", input, r, "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle: the channel dim (-3) of the input of shape "
                         f"{tuple(input.shape)} must be divisible by upscale_factor^2 = {r * r}; "
                         f"got {c} channels")
    n = len(batch)
    x = input.reshape(tuple(batch) + (c // (r * r), r, r, h, w))
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(tuple(batch) + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of pixel_shuffle, like
    torch.nn.functional.pixel_unshuffle."""
    r = downscale_factor
    _check("pixel_unshuffle", input, r, "downscale_factor")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"pixel_unshuffle: height and width (dims -2, -1) of the input of shape "
                         f"{tuple(input.shape)} must be divisible by downscale_factor = {r}")
    n = len(batch)
    x = input.reshape(tuple(batch) + (c, h // r, r, w // r, r))
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(tuple(batch) + (c * r * r, h // r, w // r))


class PixelShuffle(Module):
    """Rearrange (*, C * r^2, H, W) into (*, C, H * r, W * r), like torch.nn.PixelShuffle."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearrange (*, C, H * r, W * r) into (*, C * r^2, H, W), like torch.nn.PixelUnshuffle."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
