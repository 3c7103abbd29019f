"""F.interpolate / nn.Upsample in nearest mode: torch's index rule, gradients, errors (the other
modes: test_torch_layers.py)."""
import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
import gpuad.nn.functional as F

CASES = [  # input shape, keyword arguments
    ((2, 3, 4), {"scale_factor": 2}),
    ((2, 3, 4), {"size": 7}),
    ((1, 2, 3, 5), {"scale_factor": 3}),
    ((1, 2, 3, 5), {"scale_factor": (2, 1)}),
    ((1, 2, 3, 5), {"size": (4, 8)}),
    ((1, 2, 4, 6), {"size": (2, 3)}),       # downsampling picks every other element
    ((1, 2, 3, 5), {"scale_factor": 1.5}),  # a non-integer factor: torch's floor(i / 1.5)
    ((1, 1, 2, 2, 2), {"scale_factor": 2}),  # three spatial dims
]


def _reference(x, size=None, scale_factor=None):
    """numpy: output index i reads floor(i * scale) per spatial dim, as torch documents."""
    spatial = x.ndim - 2
    if size is not None:
        sizes = (size,) * spatial if np.isscalar(size) else size
        scales = [n / m for n, m in zip(x.shape[2:], sizes)]
    else:
        factors = (scale_factor,) * spatial if np.isscalar(scale_factor) else scale_factor
        sizes = [int(np.floor(n * f)) for n, f in zip(x.shape[2:], factors)]
        scales = [1 / f for f in factors]
    out = x
    for d, (n, m, s) in enumerate(zip(x.shape[2:], sizes, scales)):
        out = np.take(out, np.minimum(np.floor(np.arange(m) * s).astype(int), n - 1), axis=2 + d)
    return out


@pytest.mark.parametrize("shape,kwargs", CASES, ids=str)
def test_nearest_matches_the_index_rule(device, shape, kwargs):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = F.interpolate(gpuad.tensor(x, device=device), **kwargs)
    np.testing.assert_array_equal(got.cpu().numpy(), _reference(x, **kwargs))
    assert got.dtype == gpuad.float32


@pytest.mark.parametrize("shape,kwargs", CASES, ids=str)
def test_nearest_gradcheck(shape, kwargs):
    x = gpuad.randn(*shape, dtype=gpuad.float64, requires_grad=True)
    assert gpuad.gradcheck(lambda t: F.interpolate(t, **kwargs), (x,))


@pytest.mark.parametrize("shape,kwargs", CASES, ids=str)
def test_nearest_matches_torch(shape, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal(shape)
    want = torch.nn.functional.interpolate(torch.tensor(x), mode="nearest", **kwargs)
    got = nn.Upsample(mode="nearest", **kwargs)(gpuad.tensor(x))
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_interpolate_errors_name_the_op_and_the_fix():
    x = gpuad.randn(1, 2, 3, 3)
    with pytest.raises(NotImplementedError, match="interpolate: mode 'cubic' is not one of"):
        F.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"output size \(0, 0\) for an input of shape"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(NotImplementedError, match=r"only 3-D, 4-D and 5-D inputs .* got shape "
                                                  r"\(3,\)"):
        F.interpolate(gpuad.randn(3), scale_factor=2)
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
