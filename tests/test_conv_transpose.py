"""conv_transpose2d, nn.ConvTranspose2d, F.unfold / F.fold and nn.Unfold / nn.Fold: PyTorch twins
with copied weights (outputs and every gradient), the layer's initialisation, output_size, and the
errors. Forward-vs-numpy and first/second-order gradchecks are rows of tests/conv_cases.py."""
import math

import numpy as np
import pytest

import gpuad
from gpuad import backend, nn
from gpuad.nn import functional as F


def _np(t):
    return backend.asnumpy(t.array)


TRANSPOSE_CONFIGS = [  # (in, out, kernel, keyword arguments), input size (5, 4)
    (3, 4, 3, {}),
    (3, 4, 3, {"stride": 2, "padding": 1, "output_padding": 1}),
    (4, 6, (2, 3), {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2),
                    "dilation": (1, 2), "groups": 2}),
    (4, 4, 3, {"groups": 4, "stride": 3, "output_padding": 2}),  # depthwise
    (2, 3, 2, {"dilation": 3, "output_padding": 2, "padding": 1, "bias": False}),  # op >= stride
]


def _ids(configs):
    return [f"{i}-{c[3]}" for i, c in enumerate(configs)]


def _twins(torch, in_c, out_c, kernel, kwargs):
    theirs = torch.nn.ConvTranspose2d(in_c, out_c, kernel, **kwargs).double()
    ours = nn.ConvTranspose2d(in_c, out_c, kernel, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("in_c,out_c,kernel,kwargs", TRANSPOSE_CONFIGS,
                         ids=_ids(TRANSPOSE_CONFIGS))
@pytest.mark.parametrize("batched", [True, False])
def test_conv_transpose2d_matches_torch(in_c, out_c, kernel, kwargs, batched):
    torch = pytest.importorskip("torch")
    ours, theirs = _twins(torch, in_c, out_c, kernel, kwargs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, in_c, 5, 4) if batched else (in_c, 5, 4))
    xt, xg = torch.tensor(x, requires_grad=True), gpuad.tensor(x, requires_grad=True)
    yt, y = theirs(xt), ours(xg)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(_np(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(y.shape)
    (yt * torch.tensor(v)).sum().backward()
    (y * gpuad.tensor(v)).sum().backward()
    np.testing.assert_allclose(_np(xg.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(_np(p.grad), tp.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_conv_transpose2d_float32_matches_torch_functional(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in
               ((2, 6, 4, 5), (6, 2, 3, 3), (6,)))
    kwargs = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 3}
    want = torch.nn.functional.conv_transpose2d(*map(torch.tensor, (x, w, b)), **kwargs)
    got = F.conv_transpose2d(*(gpuad.tensor(a, device=device) for a in (x, w, b)), **kwargs)
    assert got.dtype == gpuad.float32 and got.device == gpuad.device(device)
    np.testing.assert_allclose(_np(got), want.numpy(), rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_undoes_conv2d_shapes_and_is_its_adjoint():
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>: the transpose is the adjoint."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    kwargs = {"stride": 2, "padding": 1, "dilation": (1, 2)}
    y = gpuad.conv2d(gpuad.tensor(x), gpuad.tensor(w), **kwargs)
    r = rng.standard_normal(y.shape)
    back = gpuad.conv_transpose2d(gpuad.tensor(r), gpuad.tensor(w), output_padding=(0, 1),
                                  **kwargs)
    assert back.shape == x.shape
    np.testing.assert_allclose((_np(y) * r).sum(), (x * _np(back)).sum(), rtol=1e-10)


def test_conv_transpose2d_output_size_picks_output_padding():
    torch = pytest.importorskip("torch")
    ours, theirs = _twins(torch, 3, 2, 3, {"stride": 3, "padding": 1})
    x = np.random.default_rng(3).standard_normal((1, 3, 4, 4))
    for size in [(10, 10), (11, 12), (1, 2, 12, 10)]:
        want = theirs(torch.tensor(x), output_size=list(size))
        got = ours(gpuad.tensor(x), output_size=size)
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(_np(got), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"ConvTranspose2d.*output size of \(13, 10\).*\(10, 10\) "
                                         r"to \(12, 12\)"):
        ours(gpuad.tensor(x), output_size=(13, 10))


def test_conv_transpose2d_layer_init_matches_torch_bounds():
    """torch's _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt(5)) and a bias bound of
    1/sqrt(fan_in), where fan_in is the weight's dim 1 (out_channels/groups) times kH*kW."""
    layer = nn.ConvTranspose2d(64, 6, (3, 2), groups=2)
    assert tuple(layer.weight.shape) == (64, 3, 3, 2) and tuple(layer.bias.shape) == (6,)
    bound = 1 / math.sqrt(3 * 3 * 2)  # kaiming bound with a=sqrt(5) is also 1/sqrt(fan_in)
    weight, bias = _np(layer.weight), _np(layer.bias)
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound
    assert np.abs(bias).max() <= bound
    assert nn.ConvTranspose2d(2, 3, 2, bias=False).bias is None
    assert "output_padding=(1, 1)" in repr(nn.ConvTranspose2d(2, 3, 2, stride=2,
                                                               output_padding=1))


UNFOLD_CONFIGS = [
    {"kernel_size": 2},
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1, "dilation": (1, 2)},
    {"kernel_size": 2, "stride": 3},  # windows skip pixels: those get no gradient
]


@pytest.mark.parametrize("kwargs", UNFOLD_CONFIGS, ids=[str(k) for k in UNFOLD_CONFIGS])
@pytest.mark.parametrize("batched", [True, False])
def test_unfold_and_fold_match_torch(kwargs, batched):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6) if batched else (3, 7, 6))
    xt, xg = torch.tensor(x, requires_grad=True), gpuad.tensor(x, requires_grad=True)
    ut, u = torch.nn.Unfold(**kwargs)(xt), nn.Unfold(**kwargs)(xg)
    assert u.shape == tuple(ut.shape)
    np.testing.assert_allclose(_np(u), ut.detach().numpy())
    ft, f = torch.nn.Fold((7, 6), **kwargs)(ut * 2), nn.Fold((7, 6), **kwargs)(u * 2)
    assert f.shape == tuple(ft.shape)
    np.testing.assert_allclose(_np(f), ft.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(f.shape)
    (ft * torch.tensor(v)).sum().backward()
    (f * gpuad.tensor(v)).sum().backward()
    np.testing.assert_allclose(_np(xg.grad), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_fold_gradient_matches_torch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    kwargs = {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0)}
    cols = rng.standard_normal((2, 3 * 6, 4 * 3))  # (H, W) = (7, 6): 4 x 3 blocks
    ct = torch.tensor(cols, requires_grad=True)
    cg = gpuad.tensor(cols, requires_grad=True, device=device)
    ft, f = torch.nn.functional.fold(ct, (7, 6), **kwargs), F.fold(cg, (7, 6), **kwargs)
    np.testing.assert_allclose(_np(f), ft.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(f.shape)
    (ft * torch.tensor(v)).sum().backward()
    (f * gpuad.tensor(v, device=device)).sum().backward()
    np.testing.assert_allclose(_np(cg.grad), ct.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_unfold_is_a_conv2d_gemm():
    """The documented use: conv2d == weight matrix @ unfold(x), reshaped."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    cols = _np(F.unfold(gpuad.tensor(x), 3, padding=1))
    got = (w.reshape(4, -1) @ cols).reshape(2, 4, 6, 5)
    np.testing.assert_allclose(got, _np(gpuad.conv2d(gpuad.tensor(x), gpuad.tensor(w), padding=1)),
                               rtol=1e-10, atol=1e-12)


# ---- errors name the op, the shapes and the fix --------------------------------------------------
def test_conv_transpose2d_errors():
    x, w = gpuad.zeros(2, 4, 5, 5), gpuad.zeros(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels.*\(4, 3, 3, 3\) "
                                         r"expects 4"):
        gpuad.conv_transpose2d(gpuad.zeros(2, 3, 5, 5), w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be "
                                         r"smaller than either the stride \(2, 2\) or the "
                                         r"dilation \(1, 1\)"):
        gpuad.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: groups=3 must divide the 4 input"):
        gpuad.conv_transpose2d(x, w, groups=3)
    with pytest.raises(ValueError, match=r"conv_transpose2d: bias must have shape \(6,\)"):
        gpuad.conv_transpose2d(x, w, gpuad.zeros(3), groups=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: the output size \(-1, -1\) is not "
                                         r"positive.*reduce the padding"):
        gpuad.conv_transpose2d(gpuad.zeros(1, 4, 1, 1), w, padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected a 4-D weight"):
        gpuad.conv_transpose2d(x, gpuad.zeros(4, 3, 3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected a 3-D \(C, H, W\) or 4-D"):
        gpuad.conv_transpose2d(gpuad.zeros(4, 5), w)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4, 3, .*expected input with 4 input "
                                         r"channels.*got shape \(2, 3, 5, 5\)"):
        nn.ConvTranspose2d(4, 3, 3)(gpuad.zeros(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"ConvTranspose2d: in_channels \(4\) and out_channels "
                                         r"\(3\) must both be divisible by groups \(2\)"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)


def test_fold_and_unfold_errors():
    with pytest.raises(ValueError, match=r"fold: output_size \(5, 4\) .* has 4 x 3 = 12 blocks, "
                                         r"but the input \(shape \(2, 12, 10\)\) holds L = 10"):
        F.fold(gpuad.zeros(2, 12, 10), (5, 4), 2)
    with pytest.raises(ValueError, match=r"fold: the input's dim 1 \(10\) must be divisible by "
                                         r"the kernel's kh\*kw = 4"):
        F.fold(gpuad.zeros(2, 10, 12), (5, 4), 2)
    with pytest.raises(ValueError, match=r"fold: expected a 2-D \(C\*kh\*kw, L\) or 3-D"):
        F.fold(gpuad.zeros(2, 3, 4, 4), (5, 4), 2)
    with pytest.raises(ValueError, match=r"unfold: kernel size \(4, 4\) is larger than the padded "
                                         r"input size \(3, 3\)"):
        F.unfold(gpuad.zeros(1, 2, 3, 3), 4)
    with pytest.raises(ValueError, match=r"unfold: stride must be an int or a pair of ints, each "
                                         r"at least 1"):
        F.unfold(gpuad.zeros(1, 2, 3, 3), 2, stride=0)
