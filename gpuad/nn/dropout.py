"""Channel-wise and self-normalising dropout, like torch: dropout1d/2d/3d zero whole channels
(one draw per (N, C)), alpha_dropout and feature_alpha_dropout keep SELU's mean and variance.
Functional forms and Modules; random bits come from gpuad's seeded generator on the input's device.
"""
import warnings

from .. import backend, creation, ops
from .module import Module

_SELU_ALPHA_SCALE = 1.7580993408473766  # -selu(-inf): what a dropped unit becomes before scaling


def _check_p(name, p):
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")


def _keep(input, p, per_channel):
    """A bool mask of kept entries (kept with probability 1 - p): one draw per (N, C) when
    per_channel, broadcasting over the remaining dims."""
    if per_channel and input.ndim < 2:
        raise ValueError(f"feature dropout needs an input of at least 2 dims (N, C, *), got shape "
                         f"{tuple(input.shape)}")
    shape = (tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if per_channel
             else tuple(input.shape))
    return creation.rand(*shape, dtype=backend.float32, device=input.device) >= p


def _feature_dropout(input, p, training):
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    return ops.where(_keep(input, p, True), input * (1 / (1 - p)), 0)


def _feature_dropout_nd(name, input, p, training, d):
    _check_p(name, p)
    if not training or p == 0:
        return input
    if input.ndim not in (d + 1, d + 2):
        if d == 1:
            raise ValueError(f"{name}: expected a 2-D (C, L) or 3-D (N, C, L) input, but got a "
                             f"{input.ndim}-D input of shape {tuple(input.shape)}; dropout1d "
                             f"drops whole channels of inputs with 1 spatial dim")
        warnings.warn(f"{name}: received a {input.ndim}-D input; {name} drops whole channels of "
                      f"{d + 1}-D or {d + 2}-D inputs (use dropout for others), as torch warns",
                      UserWarning, stacklevel=3)
    if d == 2:  # torch reads every input as batched here, a 3-D one as (N, C, L)
        if input.ndim == 3:
            warnings.warn("dropout2d: received a 3-D input; like torch, it is read as (N, C, L) "
                          "and whole channels of it are dropped (dropout1d behaviour); use "
                          "dropout1d", UserWarning, stacklevel=3)
        return _feature_dropout(input, p, training)
    if input.ndim != d + 2:  # as torch, anything but (N, C, *spatial) counts as unbatched
        return _feature_dropout(input.unsqueeze(0), p, training).squeeze(0)
    return _feature_dropout(input, p, training)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) with probability p and scale the rest by
    1/(1-p), like torch.nn.functional.dropout1d. `inplace` is accepted; results are new tensors."""
    return _feature_dropout_nd("dropout1d", input, p, training, 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, H, W) or (C, H, W), like torch.nn.functional.dropout2d (a 3-D
    input is read as (N, C, L), with torch's warning)."""
    return _feature_dropout_nd("dropout2d", input, p, training, 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W), like
    torch.nn.functional.dropout3d."""
    return _feature_dropout_nd("dropout3d", input, p, training, 3)


def _alpha_dropout(name, input, p, training, per_channel):
    _check_p(name, p)
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    # torch's affine correction: kept units x * a + alpha * a * p, dropped ones alpha * a * (p - 1)
    a = 1 / ((_SELU_ALPHA_SCALE ** 2 * p + 1) * (1 - p)) ** 0.5
    kept = _SELU_ALPHA_SCALE * a * p
    return ops.where(_keep(input, p, per_channel), input * a + kept, kept - _SELU_ALPHA_SCALE * a)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks, like torch.nn.functional.alpha_dropout (training defaults to
    False there too): dropped units take SELU's negative saturation and an affine map keeps the
    mean and variance."""
    return _alpha_dropout("alpha_dropout", input, p, training, False)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout of whole channels (one draw per (N, C)), like
    torch.nn.functional.feature_alpha_dropout."""
    return _alpha_dropout("feature_alpha_dropout", input, p, training, True)


class _DropoutNd(Module):
    _fn = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _check_p(type(self).__name__, p)
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return type(self)._fn(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Channel-wise dropout of (N, C, L) or (C, L) while training, like torch.nn.Dropout1d."""
    _fn = dropout1d


class Dropout2d(_DropoutNd):
    """Channel-wise dropout of (N, C, H, W) or (C, H, W) while training, like torch.nn.Dropout2d."""
    _fn = dropout2d


class Dropout3d(_DropoutNd):
    """Channel-wise dropout of (N, C, D, H, W) or (C, D, H, W) while training, like
    torch.nn.Dropout3d."""
    _fn = dropout3d


class AlphaDropout(_DropoutNd):
    """Alpha dropout while training (SELU networks), like torch.nn.AlphaDropout."""
    _fn = alpha_dropout


class FeatureAlphaDropout(_DropoutNd):
    """Channel-wise alpha dropout while training, like torch.nn.FeatureAlphaDropout."""
    _fn = feature_alpha_dropout
