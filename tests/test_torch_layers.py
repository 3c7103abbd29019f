"""Issue 15's nn layers against PyTorch (skipped without it): each module built in both libraries,
torch's state_dict copied into ours (keys and shapes must agree), then outputs, input gradients and
parameter gradients compared, with train/eval differences, running statistics, reprs and error
messages. The functional maths also runs through the op-table checks (layer_cases.py): numpy
references, float64 gradchecks of first and second order, float32, cpu and strict."""
import re
import warnings

import numpy as np
import op_cases  # noqa: F401  (the table's helpers first)
import pytest
from layer_cases import LAYER_CASES
from test_ops import table_tests

import gpuad
import gpuad.nn.functional as F
from gpuad import backend, nn

test_forward, test_gradcheck, test_second_order_gradcheck, test_float32_stays_float32 = \
    table_tests(LAYER_CASES)


def _np(t):
    return backend.asnumpy(t.array)


def _torch():
    return pytest.importorskip("torch")


def _copy_state(ours, theirs):
    """Copy torch's state into ours after checking the keys, their order and the shapes."""
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    for (k, v), (_, mine) in zip(state.items(), ours.state_dict().items()):
        assert tuple(mine.shape) == tuple(v.shape), k
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})


def _compare(torch, ours, theirs, inputs, device="cpu", rtol=1e-9, atol=1e-11, grad=True,
             modules=None):
    """Run both on the same float64 inputs (ints stay ints), compare outputs (a tuple: each) and,
    with grad, the gradients of every float input and of the parameters of `modules` (ours and
    theirs themselves when they are Modules) for a random upstream v."""
    if modules is None and isinstance(ours, nn.Module):
        modules = (ours, theirs)
    xs = [gpuad.tensor(a, device=device, requires_grad=grad and a.dtype.kind == "f")
          for a in inputs]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    if modules:
        modules[0].to(device)
    y, ty = ours(*xs), theirs(*ts)
    ys, tys = (list(y), list(ty)) if isinstance(ty, tuple) else ([y], [ty])
    for a, b in zip(ys, tys):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=rtol, atol=atol)
    if not grad:
        return
    v = np.random.default_rng(7).standard_normal(tys[0].shape)
    (ys[0] * gpuad.tensor(v, device=device)).sum().backward()
    (tys[0] * torch.tensor(v)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if t.requires_grad:
            np.testing.assert_allclose(_np(x.grad), t.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {i}")
    pairs = zip(modules[0].named_parameters(), modules[1].named_parameters()) if modules else ()
    for (name, p), (_, tp) in pairs:
        np.testing.assert_allclose(_np(p.grad), tp.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


def _pair(torch, name, *args, **kwargs):
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(nn, name)(*args, **kwargs).double()
    _copy_state(ours, theirs)
    return ours, theirs


def _inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# ---- convolution --------------------------------------------------------------------------------
CONVS = [  # layer, constructor arguments, input shape
    ("Conv1d", (3, 4, 3), {}, (2, 3, 9)),
    ("Conv1d", (4, 6, 2), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}, (2, 4, 9)),
    ("Conv1d", (3, 4, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 3, 7)),
    ("Conv1d", (3, 4, 3), {"padding": 2, "padding_mode": "circular", "bias": False}, (3, 6)),
    ("Conv2d", (2, 3, (3, 2)), {"padding": (1, 2), "padding_mode": "replicate"}, (2, 2, 5, 4)),
    ("Conv2d", (2, 4, 3), {"padding": "same", "padding_mode": "circular", "groups": 2},
     (1, 2, 4, 5)),
    ("Conv3d", (2, 3, (2, 3, 2)), {}, (2, 2, 4, 5, 3)),
    ("Conv3d", (2, 4, 3), {"stride": (1, 2, 1), "padding": 1, "groups": 2,
                           "padding_mode": "reflect"}, (1, 2, 3, 5, 4)),
    ("Conv3d", (2, 3, 2), {"padding": "same", "dilation": (1, 2, 1)}, (2, 3, 4, 3)),
    ("ConvTranspose1d", (3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 5)),
    ("ConvTranspose1d", (4, 2, 2), {"groups": 2, "dilation": 3, "bias": False}, (4, 5)),
    ("ConvTranspose3d", (2, 3, 2), {"stride": 2, "padding": (0, 1, 0),
                                    "output_padding": (1, 0, 1)}, (1, 2, 2, 3, 2)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's
@pytest.mark.parametrize("name,args,kwargs,shape", CONVS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONVS)])
def test_conv_layers_match_torch(name, args, kwargs, shape):
    torch = _torch()
    ours, theirs = _pair(torch, name, *args, **kwargs)
    assert repr(ours) == repr(theirs)
    _compare(torch, ours, theirs, _inputs(shape))


def test_conv_layers_init_like_torch_and_output_size():
    torch = _torch()
    for name, args in (("Conv1d", (6, 8, 3)), ("Conv3d", (4, 6, (2, 3, 1))),
                       ("ConvTranspose1d", (6, 4, 5)), ("ConvTranspose3d", (2, 6, 2))):
        gpuad.manual_seed(0)
        layer, twin = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        assert layer.weight.shape == tuple(twin.weight.shape)
        bound = 1 / np.sqrt(np.prod(twin.weight.shape[1:]))  # kaiming(a=sqrt(5)) = 1/sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert np.abs(_np(p)).max() <= bound and np.abs(_np(p)).max() > 0.8 * bound
    ours, theirs = _pair(torch, "ConvTranspose1d", 2, 3, 3, stride=3)
    x = _inputs((1, 2, 4))
    _compare(torch, lambda t: ours(t, output_size=[13]), lambda t: theirs(t, output_size=[13]),
             x, modules=(ours, theirs))


def test_conv_layer_errors_name_the_layer_shapes_and_fix():
    with pytest.raises(ValueError, match=re.escape(
            "Conv1d(3, 4, kernel_size=(3,), stride=(1,)): expected input with 3 input channels, "
            "of shape (N, 3, L) or (3, L), got shape (2, 5, 9)")):
        nn.Conv1d(3, 4, 3)(gpuad.zeros(2, 5, 9))
    with pytest.raises(ValueError, match=r"Conv3d\(.*of shape \(N, 2, D, H, W\) or \(2, D, H, W\)"):
        nn.Conv3d(2, 4, 3)(gpuad.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="Conv1d: padding_mode must be one of"):
        nn.Conv1d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='ConvTranspose1d: only "zeros" padding mode'):
        nn.ConvTranspose1d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv1d: padding='same' is not supported for strided"):
        nn.Conv1d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv3d: expected a 5-D weight \(out_channels, "
                                         r"in_channels/groups, kd, kh, kw\)"):
        gpuad.conv3d(gpuad.zeros(1, 2, 3, 3, 3), gpuad.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv1d: kernel size \(5,\) is larger than the padded "
                                         r"input size \(4,\)"):
        gpuad.conv1d(gpuad.zeros(1, 2, 4), gpuad.zeros(2, 2, 5))
    with pytest.raises(ValueError, match=r"conv_transpose1d: stride must be an int or a 1-tuple"):
        gpuad.conv_transpose1d(gpuad.zeros(1, 2, 4), gpuad.zeros(2, 2, 3), stride=(1, 1))
    with pytest.raises(TypeError, match=r"convolution: the input is float64 but the weight is "
                                        r"float32; .* \.to\(gpuad\.float32\)"):
        gpuad.conv1d(gpuad.zeros(1, 2, 4, dtype=gpuad.float64), gpuad.zeros(3, 2, 2))
    with pytest.raises(RuntimeError, match=r"Conv1d\(2, 3, .*the input has dtype float64, the "
                                           r"weight float32.*model\.double\(\)"):
        nn.Conv1d(2, 3, 2)(gpuad.zeros(1, 2, 4, dtype=gpuad.float64))
    with pytest.raises(ValueError, match=r"ConvTranspose1d\(.*requested an output size of "
                                         r"\(20,\), but valid sizes range from \(6,\) to \(6,\)"):
        nn.ConvTranspose1d(2, 2, 3)(gpuad.zeros(1, 2, 4), output_size=(20,))


# ---- pooling ------------------------------------------------------------------------------------
POOLS = [  # layer, arguments, input shape
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 8)),
    ("MaxPool1d", (2,), {"dilation": 2, "return_indices": True}, (3, 9)),
    ("MaxPool3d", (2,), {"return_indices": True}, (1, 2, 4, 5, 4)),
    ("MaxPool3d", ((2, 3, 2),), {"stride": 1, "padding": (1, 1, 0)}, (2, 3, 4, 4)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "return_indices": True}, (2, 2, 5, 6)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (2, 3, 8)),
    ("AvgPool1d", (2,), {"ceil_mode": True}, (3, 7)),
    ("AvgPool3d", (2,), {"stride": 1, "padding": 1, "divisor_override": 3}, (1, 2, 3, 4, 3)),
    ("AvgPool3d", ((3, 2, 2),), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 5, 4, 5)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 7)),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, (1, 2, 5, 3, 4)),
    ("AdaptiveMaxPool1d", (4,), {"return_indices": True}, (2, 3, 7)),
    ("AdaptiveMaxPool2d", ((3, None),), {"return_indices": True}, (2, 2, 5, 4)),
    ("AdaptiveMaxPool2d", (5,), {}, (2, 3, 3)),  # larger than the input: windows repeat
    ("AdaptiveMaxPool3d", ((2, 3, 2),), {"return_indices": True}, (1, 2, 3, 5, 4)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", POOLS,
                         ids=[f"{p[0]}-{i}" for i, p in enumerate(POOLS)])
def test_pool_layers_match_torch(name, args, kwargs, shape):
    torch = _torch()
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    _compare(torch, ours, theirs, _inputs(shape))


def test_pools_with_ties_and_nan_pick_torchs_indices(device):
    torch = _torch()
    x = np.random.default_rng(3).integers(0, 3, (2, 3, 6, 5)).astype(float)
    for ours, theirs in ((lambda t: gpuad.adaptive_max_pool2d(t, (4, 3), True),
                          lambda t: torch.nn.functional.adaptive_max_pool2d(t, (4, 3), True)),
                         (lambda t: gpuad.max_pool2d(t, 3, 2, 1, return_indices=True),
                          lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1,
                                                                   return_indices=True))):
        (y, i), (ty, ti) = ours(gpuad.tensor(x, device=device)), theirs(torch.tensor(x))
        np.testing.assert_array_equal(_np(y), ty.numpy())
        np.testing.assert_array_equal(_np(i), ti.numpy())
    x[0, 1, 2, 3] = x[0, 1, 2, 1] = x[1, 0, 4, 4] = np.nan  # torch takes a window's last NaN
    _, i = gpuad.max_pool1d(gpuad.tensor(x[0], device=device), 3, return_indices=True)
    _, ti = torch.nn.functional.max_pool1d(torch.tensor(x[0]), 3, return_indices=True)
    np.testing.assert_array_equal(_np(i), ti.numpy())
    x = gpuad.tensor(x, device=device, requires_grad=True)
    y, i = gpuad.adaptive_max_pool2d(x, (2, 3), True)
    tx = torch.tensor(_np(x), requires_grad=True)
    ty, ti = torch.nn.functional.adaptive_max_pool2d(tx, (2, 3), True)
    np.testing.assert_array_equal(_np(i), ti.numpy())
    y.sum().backward(), ty.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), tx.grad.numpy())  # NaN windows included


def test_pool_errors():
    with pytest.raises(ValueError, match=re.escape(
            "max_pool1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape (2, 3, 4, 5)")):
        gpuad.max_pool1d(gpuad.zeros(2, 3, 4, 5), 2)
    with pytest.raises(ValueError, match=re.escape(
            "avg_pool3d: padding (2, 0, 0) must be at most half the kernel size (2, 2, 2)")):
        gpuad.avg_pool3d(gpuad.zeros(1, 1, 4, 4, 4), 2, padding=(2, 0, 0))
    with pytest.raises(ValueError, match=re.escape(
            "adaptive_max_pool1d: output_size must be an int or a 1-tuple, got (2, 2)")):
        gpuad.adaptive_max_pool1d(gpuad.zeros(1, 2, 4), (2, 2))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool3d: output size \(0, 2, 2\) and input "
                                         r"size \(3, 3, 3\) must be positive"):
        gpuad.adaptive_avg_pool3d(gpuad.zeros(1, 3, 3, 3), (0, 2, 2))


# ---- padding ------------------------------------------------------------------------------------
PADS = [
    ("ZeroPad1d", (2,), (2, 3, 4)), ("ZeroPad2d", ((1, 0, 2, 1),), (2, 3, 4)),
    ("ZeroPad3d", (1,), (1, 2, 2, 3)), ("ConstantPad1d", ((1, 3), 2.5), (3, 4)),
    ("ConstantPad2d", (1, -1.0), (1, 2, 3, 2)), ("ConstantPad3d", ((1, 0, 0, 2, 1, 1), 0.5),
                                                 (2, 2, 3, 2)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 4)), ("ReflectionPad2d", (2,), (2, 3, 4)),
    ("ReflectionPad3d", ((1, 0, 2, 1, 1, 1),), (1, 2, 2, 3, 3)),
    ("ReplicationPad1d", ((4, 1),), (3, 2)), ("ReplicationPad2d", ((0, 2, 3, 1),), (1, 2, 3, 2)),
    ("ReplicationPad3d", (1,), (2, 2, 2, 2)),
    ("CircularPad1d", ((4, 2),), (2, 3, 4)), ("CircularPad2d", ((1, 2, 3, 0),), (2, 3, 4)),
    ("CircularPad3d", (1,), (1, 1, 2, 3, 2)),
]


@pytest.mark.parametrize("name,args,shape", PADS, ids=[p[0] for p in PADS])
def test_padding_layers_match_torch(name, args, shape, device):
    torch = _torch()
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    _compare(torch, ours, theirs, _inputs(shape), device)


EDGE_PADS = [  # (shape, pad, mode): torch's limits, each side of them
    ((1, 2, 3), (2, 2), "reflect"), ((1, 2, 3), (3, 0), "reflect"),
    ((1, 2, 3), (-1, 2), "reflect"), ((1, 2, 3), (-2, -1), "reflect"),
    ((2, 1, 1), (0, 0), "reflect"), ((1, 1, 1), (1, 0), "reflect"),
    ((1, 2, 3), (3, 3), "circular"), ((1, 2, 3), (4, 0), "circular"),
    ((1, 2, 3), (-1, 2), "circular"), ((1, 2, 3), (-3, 0), "circular"),
    ((1, 2, 3), (-2, -2), "circular"), ((1, 2, 3), (5, 5), "replicate"),
    ((1, 2, 3), (-2, -1), "replicate"), ((1, 2, 3), (2, -1), "replicate"),
    ((0, 2, 3), (1, 1), "reflect"), ((1, 0, 3), (1, 1), "reflect"), ((1, 2, 0), (1, 1), "circular"),
    ((1, 0, 3), (1, 1), "circular"), ((3,), (1, 1), "reflect"), ((2, 3), (1, 1, 1, 1), "replicate"),
    ((1, 1, 2, 3), (1, 1), "reflect"), ((1, 2, 3, 4), (1, 1, 3, 0), "reflect"),
    ((1, 2, 3, 4), (1, 1, 3, 0), "circular"), ((1, 1, 2, 3, 3), (1, 1, 2, 0, 1, 1), "replicate"),
]


@pytest.mark.parametrize("shape,pad,mode", EDGE_PADS, ids=[str(e) for e in EDGE_PADS])
def test_pad_modes_at_their_edge_sizes_match_torch(shape, pad, mode):
    """Where torch pads we give its values and gradients; where it refuses, we refuse too."""
    torch = _torch()
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    try:
        want = torch.nn.functional.pad(torch.tensor(x), pad, mode=mode)
    except (RuntimeError, NotImplementedError) as error:
        expected = NotImplementedError if isinstance(error, NotImplementedError) else ValueError
        with pytest.raises(expected, match=r"^pad: "):
            F.pad(gpuad.tensor(x), pad, mode=mode)
        return
    _compare(torch, lambda t: F.pad(t, pad, mode=mode),
             lambda t: torch.nn.functional.pad(t, pad, mode=mode), [x], grad=want.numel() > 0)


# ---- resampling ---------------------------------------------------------------------------------
INTERPOLATIONS = [  # input shape, keyword arguments
    ((1, 2, 5), {"size": 8, "mode": "linear"}),
    ((1, 2, 5), {"scale_factor": 1.7, "mode": "linear", "align_corners": True}),
    ((1, 2, 5), {"scale_factor": 1.7, "mode": "linear"}),  # torch's kernels use 1/1.7, not 5/8
    ((1, 2, 5), {"scale_factor": 1.7, "mode": "linear", "recompute_scale_factor": True}),
    ((1, 2, 6), {"size": 4, "mode": "nearest-exact"}),
    ((1, 2, 6), {"scale_factor": 0.7, "mode": "nearest"}),
    ((1, 2, 6), {"size": 4, "mode": "area"}),
    ((2, 2, 3, 4), {"scale_factor": 2, "mode": "bilinear"}),
    ((2, 2, 3, 4), {"size": (5, 7), "mode": "bilinear", "align_corners": True}),
    ((2, 2, 4, 5), {"size": (3, 2), "mode": "bilinear"}),  # downsampling
    ((2, 2, 3, 4), {"scale_factor": (2.5, 1.5), "mode": "bicubic"}),
    ((2, 2, 3, 4), {"size": (6, 3), "mode": "bicubic", "align_corners": True}),
    ((2, 2, 5, 6), {"size": (4, 4), "mode": "bicubic"}),
    ((1, 2, 5, 7), {"scale_factor": 0.5, "mode": "area"}),
    ((1, 2, 3, 5), {"scale_factor": 1.5, "mode": "nearest-exact"}),
    ((1, 2, 3, 5), {"size": (3, 11), "mode": "nearest"}),
    ((1, 1, 2, 3, 4), {"scale_factor": 2, "mode": "trilinear"}),
    ((1, 1, 2, 3, 4), {"size": (3, 3, 5), "mode": "trilinear", "align_corners": True}),
    ((1, 1, 2, 3, 4), {"size": (1, 2, 3), "mode": "area"}),
    ((1, 1, 2, 3, 4), {"scale_factor": (1, 2.5, 0.5), "mode": "nearest"}),
]


@pytest.mark.parametrize("shape,kwargs", INTERPOLATIONS,
                         ids=[f"{s}-{k}" for s, k in INTERPOLATIONS])
def test_interpolate_and_upsample_match_torch(shape, kwargs, device):
    torch = _torch()
    ours, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    assert repr(ours) == repr(theirs)
    _compare(torch, ours, theirs, _inputs(shape), device)


def test_interpolate_float32_uses_torchs_float_arithmetic():
    """Indices and weights come from torch's float32 arithmetic: exact for nearest, a few ulps
    for the weighted modes (bicubic sums its 16 taps in another order); stays float32."""
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((1, 2, 13, 17)).astype(np.float32)
    for kwargs in ({"scale_factor": 3.3, "mode": "nearest"}, {"size": (29, 31), "mode": "nearest"},
                   {"scale_factor": 0.37, "mode": "nearest-exact"},
                   {"scale_factor": 1.3, "mode": "bilinear"}, {"size": (7, 40), "mode": "bicubic"}):
        got = F.interpolate(gpuad.tensor(x), **kwargs)
        want = torch.nn.functional.interpolate(torch.tensor(x), **kwargs).numpy()
        assert got.dtype == gpuad.float32
        exact = kwargs["mode"].startswith("nearest")
        np.testing.assert_allclose(_np(got), want, rtol=0 if exact else 1e-5,
                                   atol=0 if exact else 1e-5, err_msg=str(kwargs))


def test_upsampling_subclasses_and_interpolate_errors():
    torch = _torch()
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        ours, theirs = getattr(nn, name)(scale_factor=2), getattr(torch.nn, name)(scale_factor=2)
        assert repr(ours) == repr(theirs)
        _compare(torch, ours, theirs, _inputs((1, 2, 3, 4)))
    x = gpuad.zeros(1, 2, 3, 3)
    for kwargs, error, message in [
            ({"scale_factor": 2, "mode": "linear"}, NotImplementedError,
             "interpolate: got a 4-D input (shape (1, 2, 3, 3)), but linear mode needs a 3-D"),
            ({"scale_factor": 2, "align_corners": True}, ValueError,
             "interpolate: align_corners can only be set with the interpolating modes"),
            ({}, ValueError, "interpolate: either size or scale_factor should be defined"),
            ({"size": 2, "scale_factor": 2}, ValueError, "only one of size or scale_factor"),
            ({"size": (2, 2, 2)}, ValueError, "interpolate: input and output must have the same "
                                              "number of spatial dims"),
            ({"scale_factor": 0.1}, ValueError, "interpolate: input and output sizes should be "
                                                "greater than 0, got output size (0, 0)"),
            ({"size": 4, "mode": "bilinear", "antialias": True}, NotImplementedError,
             "antialias=True is not supported"),
            ({"size": 4, "mode": "cubic"}, NotImplementedError, "interpolate: mode 'cubic'")]:
        with pytest.raises(error, match=re.escape(message)):
            F.interpolate(x, **kwargs)


GRIDS = [
    {"mode": "bilinear", "padding_mode": "zeros", "align_corners": False},
    {"mode": "bilinear", "padding_mode": "border", "align_corners": True},
    {"mode": "bilinear", "padding_mode": "reflection", "align_corners": False},
    {"mode": "bilinear", "padding_mode": "reflection", "align_corners": True},
    {"mode": "nearest", "padding_mode": "zeros", "align_corners": True},
    {"mode": "nearest", "padding_mode": "reflection", "align_corners": False},
    {"mode": "bicubic", "padding_mode": "zeros", "align_corners": False},
    {"mode": "bicubic", "padding_mode": "border", "align_corners": True},
    {"mode": "bicubic", "padding_mode": "reflection", "align_corners": False},
]


@pytest.mark.parametrize("kwargs", GRIDS, ids=[str(tuple(k.values())) for k in GRIDS])
def test_grid_sample_matches_torch(kwargs, device):
    torch = _torch()
    rng = np.random.default_rng(1)
    x, grid = rng.standard_normal((2, 3, 4, 5)), rng.uniform(-1.6, 1.6, (2, 3, 4, 2))
    if kwargs["mode"] == "nearest":  # the grid gets no gradient: compare the input's only
        _compare(torch, lambda t: F.grid_sample(t, gpuad.tensor(grid, device=device), **kwargs),
                 lambda t: torch.nn.functional.grid_sample(t, torch.tensor(grid), **kwargs), [x],
                 device)
    else:
        _compare(torch, lambda a, g: F.grid_sample(a, g, **kwargs),
                 lambda a, g: torch.nn.functional.grid_sample(a, g, **kwargs), [x, grid], device)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid behavior")  # torch's
@pytest.mark.parametrize("size,align_corners", [((2, 3, 4, 5), False), ((2, 1, 3, 1), True),
                                                ((2, 1, 2, 3, 4), False), ((2, 1, 2, 3, 4), True)])
def test_affine_grid_matches_torch_and_feeds_grid_sample(size, align_corners):
    torch = _torch()
    rows = len(size) - 2
    theta = np.random.default_rng(2).standard_normal((2, rows, rows + 1))
    _compare(torch, lambda t: F.affine_grid(t, size, align_corners),
             lambda t: torch.nn.functional.affine_grid(t, size, align_corners), [theta])
    if rows == 2:
        x = _inputs(size)[0]
        _compare(torch, lambda a, t: F.grid_sample(a, F.affine_grid(t, size, align_corners),
                                                   align_corners=align_corners),
                 lambda a, t: torch.nn.functional.grid_sample(
                     a, torch.nn.functional.affine_grid(t, size, align_corners),
                     align_corners=align_corners), [x, theta])


def test_grid_sample_and_affine_grid_warnings_and_errors():
    x, grid = gpuad.zeros(1, 2, 3, 3), gpuad.zeros(1, 2, 2, 2)
    with pytest.warns(UserWarning, match="grid_sample: the default align_corners is False"):
        F.grid_sample(x, grid)
    with pytest.raises(ValueError, match=r"grid_sample: expected input \(N, C, H, W\) and grid "
                                         r"\(N, Ho, Wo, 2\) with the same N, got input "
                                         r"\(1, 2, 3, 3\) and grid \(2, 2, 2, 2\)"):
        F.grid_sample(x, gpuad.zeros(2, 2, 2, 2), align_corners=False)
    with pytest.raises(ValueError, match="expected mode to be 'bilinear', 'nearest' or"):
        F.grid_sample(x, grid, mode="area", align_corners=False)
    with pytest.raises(ValueError, match=r"affine_grid: expected a batch of affine matrices of "
                                         r"shape \(N, 2, 3\) = \(1, 2, 3\) for size"):
        F.affine_grid(gpuad.zeros(1, 3, 4), (1, 1, 2, 2), align_corners=False)


# ---- normalisation ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs,shape", [
    ("InstanceNorm1d", {}, (2, 3, 5)),
    ("InstanceNorm1d", {"affine": True}, (3, 6)),  # unbatched
    ("InstanceNorm2d", {"affine": True, "track_running_stats": True}, (2, 3, 4, 3)),
    ("InstanceNorm2d", {"track_running_stats": True, "momentum": None}, (3, 3, 2)),
    ("InstanceNorm3d", {"affine": True, "bias": False}, (2, 3, 2, 3, 2)),
])
def test_instance_norm_matches_torch_in_train_and_eval(name, kwargs, shape):
    torch = _torch()
    ours, theirs = _pair(torch, name, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    for step in range(2):
        _compare(torch, ours, theirs, _inputs(shape, seed=step))
        for (k, v), (_, tv) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            np.testing.assert_allclose(_np(v), tv.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
    ours.eval(), theirs.eval()  # with running statistics they normalise now
    for m in (ours, theirs):
        m.zero_grad()
    _compare(torch, ours, theirs, _inputs(shape, seed=5))


def test_instance_norm_errors_and_warnings():
    with pytest.raises(ValueError, match=re.escape(
            "InstanceNorm1d(3): expected input with 3 channels in dim 1, got shape (2, 4, 5)")):
        nn.InstanceNorm1d(3, affine=True)(gpuad.zeros(2, 4, 5))
    with pytest.warns(UserWarning, match="num_features is unused because affine=False"):
        nn.InstanceNorm1d(3)(gpuad.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected a 3-D \(C, \*\) or 4-D"):
        nn.InstanceNorm2d(3)(gpuad.zeros(2, 3))
    with pytest.raises(ValueError, match="instance_norm: expected more than 1 spatial element"):
        nn.InstanceNorm1d(3)(gpuad.zeros(3, 1))


def test_local_response_norm_matches_torch():
    torch = _torch()
    for size, shape in ((3, (2, 5, 4)), (2, (2, 4, 3, 3)), (4, (1, 3, 2, 2, 2))):
        ours, theirs = _pair(torch, "LocalResponseNorm", size, alpha=0.3, beta=0.7, k=1.5)
        assert repr(ours) == repr(theirs)
        _compare(torch, ours, theirs, _inputs(shape))
    with pytest.raises(ValueError, match=r"local_response_norm: expected a 3-D or higher input"):
        F.local_response_norm(gpuad.zeros(2, 3), 2)


# ---- dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape", [("Dropout1d", (40, 30, 5)), ("Dropout1d", (30, 5)),
                                        ("Dropout2d", (40, 30, 2, 3)),
                                        ("Dropout3d", (30, 20, 2, 2, 2))])
def test_channel_dropout_zeroes_whole_channels_and_is_identity_in_eval(name, shape, device):
    layer = getattr(nn, name)(0.3)
    x = gpuad.tensor(np.random.default_rng(0).uniform(1, 2, shape), device=device,
                     requires_grad=True)
    y = layer(x)
    ratio = _np(y) / _np(x)
    spatial = int(name[7])
    channels = ratio.reshape(shape[:len(shape) - spatial] + (-1,))
    assert np.allclose(channels, channels[..., :1])  # one draw per (sample, channel)
    assert set(np.round(np.unique(ratio), 6)) <= {0.0, round(1 / 0.7, 6)}
    assert 0.2 < (ratio == 0).mean() < 0.4
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), ratio)
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == f"{name}(p=0.3, inplace=False)"


def test_alpha_dropout_keeps_selu_statistics_like_torch():
    """Kept units become a * x + alpha * a * p, dropped ones alpha * a * (p - 1); mean and
    variance as torch's (the random bits differ)."""
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((2_000, 10, 10))
    p, alpha = 0.2, 1.7580993408473766
    a = 1 / np.sqrt((alpha ** 2 * p + 1) * (1 - p))
    for fn, tfn in ((F.alpha_dropout, torch.nn.functional.alpha_dropout),
                    (F.feature_alpha_dropout, torch.nn.functional.feature_alpha_dropout)):
        y = _np(fn(gpuad.tensor(x), p, training=True))
        t = tfn(torch.tensor(x), p, training=True).numpy()
        dropped = np.isclose(y, alpha * a * (p - 1))
        np.testing.assert_allclose(y[~dropped], a * x[~dropped] + alpha * a * p)
        assert abs(dropped.mean() - p) < 0.02
        if fn is F.feature_alpha_dropout:  # whole channels (dim 1 of (N, C, L)) together
            assert (dropped == dropped[..., :1]).all()
        assert abs(y.mean() - t.mean()) < 0.03 and abs(y.std() - t.std()) < 0.03
    np.testing.assert_array_equal(_np(F.alpha_dropout(gpuad.tensor(x), p)), x)  # not training
    with pytest.raises(ValueError, match="AlphaDropout: dropout probability has to be between"):
        nn.AlphaDropout(1.5)
    with pytest.raises(ValueError, match=r"dropout1d: expected a 2-D \(C, L\) or 3-D"):
        F.dropout1d(gpuad.zeros(2, 3, 4, 5))
    with pytest.warns(UserWarning, match="dropout2d: received a 3-D input"):
        F.dropout2d(gpuad.zeros(2, 3, 4))


# ---- shuffles, bilinear, distances --------------------------------------------------------------
def test_pixel_shuffle_bilinear_and_distances_match_torch():
    torch = _torch()
    for name, arg, shape in (("PixelShuffle", 2, (2, 8, 2, 3)), ("PixelShuffle", 3, (9, 2, 2)),
                             ("PixelUnshuffle", 2, (2, 3, 4, 2, 6))):
        ours, theirs = getattr(nn, name)(arg), getattr(torch.nn, name)(arg)
        assert repr(ours) == repr(theirs)
        _compare(torch, ours, theirs, _inputs(shape))
    ours, theirs = _pair(torch, "Bilinear", 3, 4, 5)
    assert repr(ours) == repr(theirs)
    _compare(torch, ours, theirs, _inputs((2, 6, 3), (2, 6, 4)))
    ours, theirs = _pair(torch, "Bilinear", 2, 2, 3, bias=False)
    _compare(torch, ours, theirs, _inputs((2,), (2,)))
    for name, kwargs, shapes in (("CosineSimilarity", {}, ((4, 3, 2), (4, 3, 2))),
                                 ("CosineSimilarity", {"dim": -1}, ((4, 3), (1, 3))),
                                 ("PairwiseDistance", {}, ((4, 3), (4, 3))),
                                 ("PairwiseDistance", {"p": 1.0, "keepdim": True},
                                  ((4, 3), (3,))),
                                 ("PairwiseDistance", {"p": float("inf")}, ((2, 4), (2, 4)))):
        ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        _compare(torch, ours, theirs, _inputs(*shapes))
    x = np.zeros((2, 3))
    x[0] = [1.0, 2.0, 2.0]
    _compare(torch, lambda t: F.normalize(t, dim=1), lambda t: torch.nn.functional.normalize(t),
             [x])  # an all-zero row: zero output and gradient
    _compare(torch, lambda a, b: F.cosine_similarity(a, b),
             lambda a, b: torch.nn.functional.cosine_similarity(a, b), [x, x[::-1].copy()])
    with pytest.raises(ValueError, match=r"pixel_shuffle: the channel dim \(-3\) of the input of "
                                         r"shape \(1, 3, 2, 2\) must be divisible by "
                                         r"upscale_factor\^2 = 4"):
        F.pixel_shuffle(gpuad.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match=r"bilinear: input1 \(2, 3\) and input2 \(3, 4\) do not "
                                         r"fit weight \(5, 3, 4\)"):
        nn.Bilinear(3, 4, 5)(gpuad.zeros(2, 3), gpuad.zeros(3, 4))


# ---- embedding bags -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,input,offsets,weights", [
    ({"mode": "sum"}, [[1, 2, 4], [4, 3, 9]], None, False),
    ({"mode": "mean"}, [1, 2, 4, 5, 4, 3, 2, 9], [0, 4, 4, 6], False),  # an empty bag
    ({"mode": "max"}, [1, 2, 4, 5, 4, 3, 2, 9], [0, 3, 6], False),
    ({"mode": "max"}, [[1, 1, 4], [4, 3, 4]], None, False),  # repeated rows: first max wins
    ({"mode": "sum", "include_last_offset": True}, [1, 2, 4, 5, 4, 3], [0, 2, 5, 6], True),
    ({"mode": "mean", "padding_idx": 2}, [[1, 2, 4], [2, 2, 2]], None, False),
    ({"mode": "sum", "padding_idx": 0}, [0, 2, 4, 5, 0, 3], [0, 2], True),
])
def test_embedding_bag_matches_torch(kwargs, input, offsets, weights, device):
    torch = _torch()
    ours, theirs = _pair(torch, "EmbeddingBag", 10, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    index = np.array(input)
    extra = [] if offsets is None else [np.array(offsets)]
    if weights:
        extra = extra + [rng.standard_normal(index.shape)]
    if weights:
        _compare(torch, lambda i, o, w: ours(i, o, per_sample_weights=w),
                 lambda i, o, w: theirs(i, o, per_sample_weights=w), [index] + extra, device,
                 modules=(ours, theirs))
    else:
        _compare(torch, ours, theirs, [index] + extra, device)


def test_embedding_bag_errors():
    bag = nn.EmbeddingBag(5, 2)
    with pytest.raises(ValueError, match="a 1-D input needs 1-D offsets"):
        bag(gpuad.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"input of shape \(2, 2\) is 2-D, a batch of fixed-length "
                                         r"bags, so offsets has to be None"):
        bag(gpuad.tensor([[1, 2], [3, 4]]), gpuad.tensor([0, 1]))
    with pytest.raises(NotImplementedError, match="per_sample_weights is only supported for "
                                                  "mode='sum'"):
        bag(gpuad.tensor([[1, 2]]), per_sample_weights=gpuad.ones(1, 2))
    with pytest.raises(IndexError, match="out of range"):
        bag(gpuad.tensor([[1, 7]]))
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        bag(gpuad.tensor([1, 2, 3]), gpuad.tensor([1, 2]))
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq is not supported"):
        nn.EmbeddingBag(5, 2, scale_grad_by_freq=True)(gpuad.tensor([[1]]))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("bag", [None, "sum", "max"])
def test_max_norm_renormalises_the_rows_looked_up_as_torch(norm_type, bag, device):
    # torch scales each looked-up row whose norm exceeds max_norm down to it, in the weight
    # itself and off the tape; the gradient then flows through the scaled rows
    torch = _torch()
    table = np.random.default_rng(5).standard_normal((6, 3)) * 2
    index = np.array([[0, 2, 2], [5, 1, 0]])
    ours = gpuad.tensor(table, device=device, requires_grad=True)
    theirs = torch.tensor(table, requires_grad=True)
    if bag is None:
        out = F.embedding(gpuad.tensor(index, device=device), ours, max_norm=1.5,
                          norm_type=norm_type)
        expected = torch.nn.functional.embedding(torch.tensor(index), theirs, max_norm=1.5,
                                                 norm_type=norm_type)
    else:
        out = F.embedding_bag(gpuad.tensor(index, device=device), ours, max_norm=1.5,
                              norm_type=norm_type, mode=bag)
        expected = torch.nn.functional.embedding_bag(torch.tensor(index), theirs, max_norm=1.5,
                                                     norm_type=norm_type, mode=bag)
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    for a, b in ((out, expected), (ours, theirs), (ours.grad, theirs.grad)):
        np.testing.assert_allclose(backend.asnumpy(a.detach().array), b.detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
    assert ours.is_leaf  # the renormalisation is not recorded


def test_embedding_from_pretrained_and_its_torch_arguments():
    vectors = gpuad.tensor(np.arange(12.0).reshape(4, 3))
    frozen = nn.Embedding.from_pretrained(vectors)
    assert frozen.weight.array is vectors.array and not frozen.weight.requires_grad
    assert frozen(gpuad.tensor([3, 1])).tolist() == [[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]]
    trained = nn.Embedding.from_pretrained(vectors, freeze=False, padding_idx=0, max_norm=2.0)
    assert trained.weight.requires_grad and trained.padding_idx == 0
    assert repr(trained) == "Embedding(4, 3, padding_idx=0, max_norm=2.0)"
    torch = _torch()
    assert repr(trained) == repr(torch.nn.Embedding.from_pretrained(
        torch.arange(12.0).reshape(4, 3), freeze=False, padding_idx=0, max_norm=2.0))
    with pytest.raises(ValueError, match="from_pretrained: embeddings must be 2-D"):
        nn.Embedding.from_pretrained(gpuad.zeros(3))
    for flag in ({"scale_grad_by_freq": True}, {"sparse": True}):
        with pytest.raises(NotImplementedError, match="gradients are always dense and unscaled"):
            nn.Embedding(4, 3, **flag)(gpuad.tensor([1]))


# ---- the Transformer decoder and the whole Transformer -------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"norm_first": True, "activation": "gelu"},
                                    {"batch_first": True}])
def test_transformer_decoder_layer_and_decoder_match_torch(kwargs):
    torch = _torch()
    ours, theirs = _pair(torch, "TransformerDecoderLayer", 8, 2, 16, 0.0, **kwargs)
    batch_first = kwargs.get("batch_first", False)
    tgt, memory = _inputs((2, 4, 8) if batch_first else (4, 2, 8), (2, 5, 8) if batch_first
                          else (5, 2, 8))
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    padding = np.array([[False] * 5, [False, False, False, True, True]])
    ours_mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=gpuad.float64)
    np.testing.assert_array_equal(_np(ours_mask), tgt_mask.numpy())
    _compare(torch, lambda t, m: ours(t, m, tgt_mask=ours_mask, memory_key_padding_mask=padding,
                                      tgt_is_causal=True),
             lambda t, m: theirs(t, m, tgt_mask=tgt_mask,
                                 memory_key_padding_mask=torch.tensor(padding),
                                 tgt_is_causal=True), [tgt, memory], modules=(ours, theirs))
    layer = nn.TransformerDecoderLayer(8, 2, 16, 0.0, **kwargs).double()
    twin = torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0, **kwargs).double()
    ours = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8).double())
    theirs = torch.nn.TransformerDecoder(twin, 2, norm=torch.nn.LayerNorm(8).double())
    _copy_state(ours, theirs)
    memory_mask = np.triu(np.ones((4, 5), bool), 2)
    _compare(torch, lambda t, m: ours(t, m, memory_mask=memory_mask),
             lambda t, m: theirs(t, m, memory_mask=torch.tensor(memory_mask)), [tgt, memory],
             modules=(ours, theirs))


def test_transformer_matches_torch_with_masks_and_in_eval():
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's nested-tensor notice
        theirs = torch.nn.Transformer(8, 2, 2, 1, 16, 0.1).double()
    ours = nn.Transformer(8, 2, 2, 1, 16, 0.1).double()
    _copy_state(ours, theirs)
    assert all(p.ndim < 2 or abs(_np(p)).max() <= np.sqrt(6 / sum(p.shape[:2])) + 1e-12
               for p in ours.parameters())  # xavier-uniform bounds
    ours.eval(), theirs.eval()
    src, tgt = _inputs((5, 2, 8), (3, 2, 8))
    src_padding = np.array([[False] * 5, [False] * 4 + [True]])
    tgt_mask = np.triu(np.full((3, 3), -np.inf), 1)
    _compare(torch, lambda s, t: ours(s, t, tgt_mask=tgt_mask, src_key_padding_mask=src_padding,
                                      memory_key_padding_mask=src_padding),
             lambda s, t: theirs(s, t, tgt_mask=torch.tensor(tgt_mask),
                                 src_key_padding_mask=torch.tensor(src_padding),
                                 memory_key_padding_mask=torch.tensor(src_padding)), [src, tgt],
             modules=(ours, theirs))
    ours.train()
    y1, y2 = ours(gpuad.tensor(src), gpuad.tensor(tgt)), ours(gpuad.tensor(src), gpuad.tensor(tgt))
    assert not np.allclose(_np(y1), _np(y2))  # dropout is on while training
    with pytest.raises(ValueError, match=r"Transformer: the batch number of src and tgt must be "
                                         r"equal .*src \(5, 2, 8\), tgt \(3, 3, 8\)"):
        ours(gpuad.zeros(5, 2, 8), gpuad.zeros(3, 3, 8))
    with pytest.raises(ValueError, match="the feature number of src and tgt must be equal to "
                                         "d_model=8"):
        ours(gpuad.zeros(5, 2, 8), gpuad.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="is_causal=True is only a hint"):
        nn.TransformerDecoderLayer(8, 2)(gpuad.zeros(3, 2, 8), gpuad.zeros(4, 2, 8),
                                         tgt_is_causal=True)
    with pytest.raises(ValueError, match="TransformerDecoderLayer: activation should be 'relu', "
                                         "'gelu' or a callable, not 'tanh'"):
        nn.TransformerDecoderLayer(8, 2, activation="tanh")
