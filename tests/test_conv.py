"""Convolution and pooling beyond the op table: error messages, PyTorch as an oracle (forward,
every gradient, second order), max pooling's tie rule, memory layouts, a small CNN on every
backend."""
import re

import numpy as np
import op_cases  # noqa: F401  (import the table first: it imports conv_cases itself)
import pytest
from conv_cases import ref_avg_pool2d, ref_conv2d, ref_max_pool2d

import gpuad


def _t(shape, seed=0, requires_grad=False, device="cpu", dtype=np.float64):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return gpuad.tensor(data, device=device, requires_grad=requires_grad)


# ---- errors name the op and the shapes ----------------------------------------------------------
def _error(shapes, kwargs, *message):
    return shapes, kwargs, "".join(message)


CONV_ERRORS = [
    _error(((3, 4), (2, 3, 1, 1)), {},
           "conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (3, 4)"),
    _error(((1, 3, 5, 5), (2, 3, 3)), {},
           "conv2d: expected a 4-D weight (out_channels, in_channels/groups, kh, kw), ",
           "got shape (2, 3, 3)"),
    _error(((2, 3, 5, 5), (8, 4, 3, 3)), {},
           "conv2d: input has 3 channels but weight expects 4 ",
           "(weight shape (8, 4, 3, 3), groups=1)"),
    _error(((2, 4, 5, 5), (6, 1, 3, 3)), {"groups": 2},
           "conv2d: input has 4 channels but weight expects 2 ",
           "(weight shape (6, 1, 3, 3), groups=2)"),
    _error(((1, 4, 5, 5), (6, 1, 3, 3)), {"groups": 4},
           "conv2d: groups=4 must divide the 6 output channels (weight shape (6, 1, 3, 3), ",
           "input shape (1, 4, 5, 5))"),
    _error(((1, 3, 5, 5), (4, 1, 3, 3)), {"groups": 2},
           "conv2d: groups=2 must divide the 3 input channels (input shape (1, 3, 5, 5), ",
           "weight shape (4, 1, 3, 3))"),
    _error(((1, 1, 2, 2), (1, 1, 3, 3)), {},
           "conv2d: kernel size (3, 3) is larger than the padded input size (2, 2) ",
           "(input shape (1, 1, 2, 2)"),
    _error(((1, 1, 4, 4), (1, 1, 3, 3)), {"dilation": 2},
           "conv2d: kernel size (3, 3) (dilated to (5, 5)) is larger than the padded input ",
           "size (4, 4)"),
    _error(((1, 1, 5, 5), (1, 1, 3, 3)), {"padding": "same", "stride": 2},
           "conv2d: padding='same' is not supported for strided convolutions (stride (2, 2))"),
    _error(((1, 1, 5, 5), (1, 1, 3, 3)), {"padding": "full"},
           "conv2d: padding must be an int, a pair, 'valid' or 'same', got 'full'"),
    _error(((1, 1, 5, 5), (1, 1, 3, 3)), {"stride": 0},
           "conv2d: stride must be an int or a pair of ints, each at least 1; got 0"),
    _error(((1, 1, 5, 5), (1, 1, 3, 3)), {"padding": (1, 2, 3)},
           "conv2d: padding must be an int or a pair of ints, each at least 0"),
]


@pytest.mark.parametrize("shapes,kwargs,message", CONV_ERRORS,
                         ids=[m[:60] for *_, m in CONV_ERRORS])
def test_conv2d_errors_name_the_op_and_shapes(shapes, kwargs, message):
    x, w = (_t(s) for s in shapes)
    with pytest.raises(ValueError) as info:
        gpuad.conv2d(x, w, **kwargs)
    assert message in str(info.value)


def test_conv2d_bias_shape_error():
    message = "conv2d: bias must have shape (4,) for a weight of shape (4, 3, 3, 3), got (3,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        gpuad.conv2d(_t((1, 3, 5, 5)), _t((4, 3, 3, 3)), _t((3,)))


POOL_ERRORS = [
    (gpuad.max_pool2d, (4, 4), {"kernel_size": 2},
     "max_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (4, 4)"),
    (gpuad.avg_pool2d, (1, 2, 1, 4, 4), {"kernel_size": 2},
     "avg_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (1, 2, 1, 4, 4)"),
    (gpuad.max_pool2d, (1, 1, 6, 6), {"kernel_size": 2, "padding": 2},
     "max_pool2d: padding (2, 2) must be at most half the kernel size (2, 2)"),
    (gpuad.max_pool2d, (1, 1, 2, 5), {"kernel_size": 3},
     ("max_pool2d: kernel size (3, 3) (extent (3, 3)) is larger than the padded input size "
      "(2, 5) (input shape (1, 1, 2, 5), padding (0, 0))")),
    (gpuad.avg_pool2d, (1, 1, 4, 4), {"kernel_size": 0},
     "avg_pool2d: kernel_size must be an int or a pair of ints, each at least 1; got 0"),
    (gpuad.avg_pool2d, (1, 1, 4, 4), {"kernel_size": 2, "divisor_override": 0},
     "avg_pool2d: divisor_override must not be zero"),
    (gpuad.adaptive_avg_pool2d, (1, 1, 4, 4), {"output_size": 0},
     "adaptive_avg_pool2d: output size (0, 0) and input size (4, 4) must be positive"),
    (gpuad.adaptive_avg_pool2d, (1, 1, 4, 4), {"output_size": (1, 2, 3)},
     "adaptive_avg_pool2d: output_size must be an int or a pair, got (1, 2, 3)"),
]


@pytest.mark.parametrize("fn,shape,kwargs,message", POOL_ERRORS,
                         ids=[m[:50] for *_, m in POOL_ERRORS])
def test_pool_errors_name_the_op_and_shapes(fn, shape, kwargs, message):
    with pytest.raises(ValueError) as info:
        fn(_t(shape), **kwargs)
    assert message in str(info.value)


def test_im2col_checks_the_kernel_fits():
    with pytest.raises(ValueError, match=r"im2col: kernel size \(4, 4\) is larger than the padded "
                                         r"input size \(3, 3\)"):
        gpuad.ops._im2col(_t((1, 1, 3, 3)), kernel=(4, 4))


# ---- PyTorch as the oracle ----------------------------------------------------------------------
CONV_CONFIGS = [
    ((2, 3, 8, 7), (5, 3, 3, 3), True, {}),
    ((2, 3, 8, 7), (5, 3, 3, 3), True, {"stride": 2, "padding": 1}),
    ((2, 3, 8, 7), (5, 3, 3, 2), False, {"padding": "same", "dilation": (2, 1)}),
    ((2, 3, 8, 7), (4, 3, 2, 2), True, {"padding": "same"}),  # odd total: extra bottom/right
    ((2, 3, 8, 7), (5, 3, 1, 3), True, {"stride": (2, 3), "padding": (0, 2), "dilation": 2}),
    ((2, 4, 7, 6), (6, 2, 3, 2), True, {"groups": 2, "padding": "valid"}),
    ((1, 6, 5, 5), (6, 1, 3, 3), True, {"groups": 6, "padding": 1}),  # depthwise
    ((6, 6, 5), (4, 3, 3, 3), True, {"groups": 2, "stride": 2, "padding": 2}),  # unbatched
]


def _compare_with_torch(torch, ours, theirs, arrays, rtol=1e-10, atol=1e-12):
    xs = [gpuad.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    v = np.random.default_rng(7).standard_normal(ty.shape)
    (y * gpuad.tensor(v)).sum().backward()
    (ty * torch.tensor(v)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's, not ours
@pytest.mark.parametrize("x_shape,w_shape,bias,kwargs", CONV_CONFIGS,
                         ids=[f"{c[0]}x{c[1]}-{c[3]}" for c in CONV_CONFIGS])
def test_conv2d_matches_torch(x_shape, w_shape, bias, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    _compare_with_torch(torch, lambda *a: gpuad.conv2d(*a, **kwargs),
                        lambda *a: torch.nn.functional.conv2d(*a, **kwargs), arrays)


POOL_CONFIGS = [
    ("max_pool2d", {"kernel_size": 2}),
    ("max_pool2d", {"kernel_size": 3, "stride": 1}),  # overlapping windows accumulate
    ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool2d", {"kernel_size": (2, 3), "stride": (1, 2), "dilation": (2, 1),
                    "padding": (1, 1)}),
    ("avg_pool2d", {"kernel_size": 2}),
    ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg_pool2d", {"kernel_size": (3, 2), "stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                    "count_include_pad": False}),
    ("avg_pool2d", {"kernel_size": 2, "padding": 1, "divisor_override": 3}),
    ("adaptive_avg_pool2d", {"output_size": 1}),
    ("adaptive_avg_pool2d", {"output_size": (4, 3)}),
    ("adaptive_avg_pool2d", {"output_size": (3, 5)}),  # overlapping adaptive windows
    ("adaptive_avg_pool2d", {"output_size": (None, 2)}),
    ("adaptive_avg_pool2d", {"output_size": 9}),  # larger than the input: windows repeat
]


@pytest.mark.parametrize("shape", [(2, 3, 8, 7), (3, 9, 6)])
@pytest.mark.parametrize("name,kwargs", POOL_CONFIGS, ids=[f"{n}-{k}" for n, k in POOL_CONFIGS])
def test_pooling_matches_torch(name, kwargs, shape):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal(shape)
    _compare_with_torch(torch, lambda a: getattr(gpuad, name)(a, **kwargs),
                        lambda a: getattr(torch.nn.functional, name)(a, **kwargs), [x])


def test_max_pool2d_ties_match_torch():
    """Integer-valued inputs make many ties; torch sends each window's gradient to its first max."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).integers(0, 3, (2, 3, 7, 6)).astype(float)
    for kwargs in [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1},
                   {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}]:
        _compare_with_torch(torch, lambda a, kw=kwargs: gpuad.max_pool2d(a, **kw),
                            lambda a, kw=kwargs: torch.nn.functional.max_pool2d(a, **kw), [x])


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 3},
                                    {"kernel_size": 3, "stride": 1},
                                    {"kernel_size": 3, "stride": 2, "padding": 1}],
                         ids=["tiled", "disjoint", "overlapping", "padded"])
@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_max_pool2d_sends_an_inf_or_nan_gradient_to_the_maximum_alone(kwargs, device):
    """torch scatters each window's gradient to its maximum and leaves +0.0 elsewhere, so an inf
    or NaN in the gradient reaches one entry (a mask product would give NaN in the whole window,
    -0.0 for a negative one); the double backward (a gather) reads only the maximum too."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x_np = rng.permutation(6 * 6 * 2).reshape(1, 2, 6, 6).astype(np.float32)
    x_np[0, 0, :2, :2] = 1.0  # a window of ties
    t = torch.tensor(x_np, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(t, **kwargs)
    g_np = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    g_np.flat[:3] = [np.inf, np.nan, -np.inf]
    x = gpuad.tensor(x_np, requires_grad=True, device=device)
    g = gpuad.tensor(g_np, requires_grad=True, device=device)
    (gx,) = gpuad.grad(gpuad.max_pool2d(x, **kwargs), [x], g, create_graph=True)
    tg = torch.tensor(g_np, requires_grad=True)
    (tgx,) = torch.autograd.grad(ty, [t], tg, create_graph=True)
    # (overlapping windows add in another order: float32 rounding; NaN and inf where torch has them)
    ours = gx.detach().cpu().numpy()
    np.testing.assert_allclose(ours, tgx.detach().numpy(), rtol=1e-6, atol=0)
    assert not np.signbit(ours[ours == 0]).any()
    u_np = rng.standard_normal(x_np.shape).astype(np.float32)
    u_np.flat[:2] = [np.nan, np.inf]  # off every maximum: must not reach the double backward
    (gg,) = gpuad.grad((gx * gpuad.tensor(u_np, device=device)).sum(), [g])
    (tgg,) = torch.autograd.grad((tgx * torch.tensor(u_np)).sum(), [tg])
    np.testing.assert_allclose(gg.cpu().numpy(), tgg.numpy(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("fn,kwargs,shape", [
    ("max_pool2d", {"kernel_size": 2}, (2, 2, 6, 8)),
    ("max_pool2d", {"kernel_size": 3, "stride": 3}, (2, 2, 6, 7)),
    ("max_pool2d", {"kernel_size": 3, "stride": 1}, (2, 2, 6, 7)),
    ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (2, 2, 7, 6)),
    ("max_pool1d", {"kernel_size": 2}, (2, 3, 8)),
    ("max_pool3d", {"kernel_size": 2}, (1, 2, 4, 4, 4)),
], ids=["tiled", "disjoint", "overlapping", "padded", "1d", "3d"])
@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_max_pool_sends_a_nan_windows_gradient_to_its_last_nan(fn, kwargs, shape, device):
    """torch's scan keeps an entry greater than its pick or NaN, so a window holding NaNs sends
    its gradient to the last of them (and return_indices points there); the double backward
    gathers from the same entry. Windows without a NaN keep their first maximum."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x_np = rng.integers(0, 3, shape).astype(np.float64)  # ties everywhere
    x_np.flat[rng.choice(x_np.size, x_np.size // 6, replace=False)] = np.nan
    x_np.flat[:2] = np.nan  # two NaNs in one window
    t = torch.tensor(x_np, requires_grad=True)
    ty = getattr(torch.nn.functional, fn)(t, **kwargs)
    g_np = rng.standard_normal(tuple(ty.shape))
    tg = torch.tensor(g_np, requires_grad=True)
    (tgx,) = torch.autograd.grad(ty, [t], tg, create_graph=True)
    x = gpuad.tensor(x_np, requires_grad=True, device=device)
    g = gpuad.tensor(g_np, requires_grad=True, device=device)
    (gx,) = gpuad.grad(getattr(gpuad, fn)(x, **kwargs), [x], g, create_graph=True)
    np.testing.assert_allclose(gx.detach().cpu().numpy(), tgx.detach().numpy(), rtol=1e-12,
                               atol=0)  # (overlapping windows add up in another order)
    u_np = rng.standard_normal(x_np.shape)
    (gg,) = gpuad.grad((gx * gpuad.tensor(u_np, device=device)).sum(), [g])
    (tgg,) = torch.autograd.grad((tgx * torch.tensor(u_np)).sum(), [tg])
    np.testing.assert_array_equal(gg.cpu().numpy(), tgg.numpy())
    _, index = getattr(gpuad, fn)(x.detach(), return_indices=True, **kwargs)
    _, tindex = getattr(torch.nn.functional, fn)(t.detach(), return_indices=True, **kwargs)
    np.testing.assert_array_equal(index.cpu().numpy(), tindex.numpy())


def test_conv2d_second_order_matches_torch():
    """d/dw of <d conv/dx . v, u>: the gradient of a gradient goes through _col2im's own rule."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x_np, w_np = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    v_np, u_np = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 3, 6, 5))
    kwargs = {"stride": 2, "padding": 1, "dilation": (1, 2)}
    x, w = gpuad.tensor(x_np, requires_grad=True), gpuad.tensor(w_np, requires_grad=True)
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    (gx,) = gpuad.grad((gpuad.conv2d(x, w, **kwargs) * gpuad.tensor(v_np)).sum(), [x],
                       create_graph=True)
    (tgx,) = torch.autograd.grad((torch.nn.functional.conv2d(tx, tw, **kwargs)
                                  * torch.tensor(v_np)).sum(), [tx], create_graph=True)
    (gw,) = gpuad.grad((gx * gpuad.tensor(u_np)).sum(), [w])
    (tgw,) = torch.autograd.grad((tgx * torch.tensor(u_np)).sum(), [tw])
    np.testing.assert_allclose(gw.numpy(), tgw.numpy(), rtol=1e-10, atol=1e-12)


# ---- max pooling's tie rule, without torch ------------------------------------------------------
def test_max_pool2d_gradient_goes_to_the_first_max_of_each_window():
    x = gpuad.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    gpuad.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1  # the top-left entry of every 2x2 window
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool2d_overlapping_windows_accumulate():
    data = np.zeros((1, 1, 3, 4))
    data[0, 0, 1, 1] = 5.0  # the max of all four 2x2 windows with stride 1 that contain it
    x = gpuad.tensor(data, requires_grad=True)
    y = gpuad.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], [[5, 5, 0], [5, 5, 0]])
    y.sum().backward()
    expected = np.zeros((3, 4))
    expected[1, 1] = 4  # four windows pick it
    expected[1, 2] = expected[0, 2] = 1  # the zero windows on the right: first of their ties
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool2d_padding_never_wins():
    x = gpuad.tensor(-np.arange(1.0, 10.0).reshape(1, 1, 3, 3), requires_grad=True)
    y = gpuad.max_pool2d(x, 3, stride=1, padding=1)  # every input is negative, padding is -inf
    np.testing.assert_array_equal(y.detach().numpy(), ref_max_pool2d(x.detach().numpy(), 3, 1, 1))
    y.sum().backward()
    assert x.grad.numpy().sum() == 9  # all of the gradient lands on real entries


# ---- layouts, batching, dtypes, devices ---------------------------------------------------------
def test_results_do_not_depend_on_the_input_memory_layout():
    """Internally the batch dim is last; NCHW-contiguous and batch-last inputs must agree."""
    base = np.random.default_rng(4).standard_normal((3, 4, 6, 5))
    batch_last = np.ascontiguousarray(base.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    w = np.random.default_rng(5).standard_normal((2, 4, 3, 3))
    results = []
    for data in (base, batch_last):
        x = gpuad.tensor(data, requires_grad=True)
        x.array = data  # keep the given strides (tensor() may copy into C order)
        y = gpuad.max_pool2d(gpuad.conv2d(x, gpuad.tensor(w), padding=1).relu(), 2)
        (y * gpuad.tensor(np.arange(y.array.size).reshape(y.shape))).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


def test_strided_and_flipped_input_views_match_contiguous_copies(device):
    """im2col's strided view is built from the input's own strides, negative ones included."""
    x = _t((2, 3, 8, 5), requires_grad=True, device=device)
    w = _t((4, 3, 3, 2), 1, device=device)
    view = x.flip(3)[:, :, ::2]
    for fn in (lambda t: gpuad.conv2d(t, w), lambda t: gpuad.conv2d(t, w, padding=1),
               lambda t: gpuad.max_pool2d(t, 2), lambda t: gpuad.avg_pool2d(t, 2, stride=1)):
        np.testing.assert_allclose(fn(view).detach().cpu().numpy(),
                                   fn(view.detach().clone()).cpu().numpy(), rtol=1e-12)
    gpuad.conv2d(view, w).sum().backward()
    copy = x.detach().clone().requires_grad_()
    gpuad.conv2d(copy.flip(3)[:, :, ::2].clone(), w).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), copy.grad.cpu().numpy(), rtol=1e-12)


def test_unbatched_input_equals_a_batch_of_one():
    x, w, b = _t((3, 6, 5), requires_grad=True), _t((4, 3, 3, 3), 1), _t((4,), 2)
    y = gpuad.conv2d(x, w, b, padding=1)
    assert y.shape == (4, 6, 5)
    batched = gpuad.conv2d(x.detach().reshape(1, 3, 6, 5), w, b, padding=1)
    np.testing.assert_allclose(y.detach().numpy(), batched.numpy()[0], rtol=1e-12)
    y.sum().backward()
    assert x.grad.shape == (3, 6, 5)
    for fn in (lambda t: gpuad.max_pool2d(t, 2), lambda t: gpuad.avg_pool2d(t, 2),
               lambda t: gpuad.adaptive_avg_pool2d(t, (2, 3))):
        assert fn(x).shape == fn(x.detach().reshape(1, 3, 6, 5)).shape[1:]


def _small_cnn(x, w1, b1, w2):
    h = gpuad.max_pool2d(gpuad.conv2d(x, w1, b1, padding=1).relu(), 2)
    h = gpuad.conv2d(h, w2, stride=1, padding="same", groups=2)
    h = gpuad.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False)
    return gpuad.adaptive_avg_pool2d(h, 1).reshape(x.shape[0], -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_cnn_on_every_device_matches_cpu_and_keeps_its_dtype(device, dtype):
    shapes = [(4, 3, 9, 8), (6, 3, 3, 3), (6,), (4, 3, 3, 2)]
    results = {}
    for dev in ("cpu", device):
        inputs = [_t(s, seed=i, requires_grad=True, device=dev, dtype=dtype)
                  for i, s in enumerate(shapes)]
        y = _small_cnn(*inputs)
        assert y.shape == (4, 4) and y.dtype == dtype and y.device == gpuad.device(dev)
        (y * y).sum().backward()
        for t in inputs:
            assert t.grad.dtype == dtype and t.grad.device == gpuad.device(dev)
        results[dev] = [y.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in inputs]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, cpu in zip(results[device], results["cpu"]):
        np.testing.assert_allclose(ours, cpu, rtol=tol, atol=tol)


def test_kept_and_recomputed_columns_give_the_same_gradients(monkeypatch, device):
    """A small convolution keeps its im2col copy for the weight's gradient; a large one (above
    KEEP_COLUMNS) copies it again in the backward, as does create_graph: the same numbers, bit for
    bit, and only a recorded forward holds the copy."""
    from gpuad.ops import conv
    shapes = [(4, 3, 9, 8), (6, 3, 3, 3), (6,), (4, 3, 3, 2)]
    grads = {}
    for keep in (conv.KEEP_COLUMNS, 0):
        monkeypatch.setattr(conv, "KEEP_COLUMNS", keep)
        inputs = [_t(s, seed=i, requires_grad=True, device=device, dtype=np.float32)
                  for i, s in enumerate(shapes)]
        y = gpuad.conv2d(inputs[0], inputs[1], inputs[2], padding=1)
        kept = y._node.kwargs.get("saved")
        assert (kept is not None) == (keep > 0)
        (y * y).sum().backward()
        grads[keep] = [t.grad.cpu().numpy() for t in inputs[:3]]
    for a, b in zip(*grads.values()):
        np.testing.assert_array_equal(a, b)
    with gpuad.no_grad():  # nothing recorded: nothing kept
        assert gpuad.conv2d(_t(shapes[0]), _t(shapes[1], 1))._node is None
    w = _t(shapes[1], 1, requires_grad=True)

    def weight_grad(x):  # depends on x through the columns: create_graph copies them again
        return gpuad.grad((gpuad.conv2d(x, w) ** 2).sum(), [w], create_graph=True)[0]
    assert gpuad.gradcheck(weight_grad, [_t((2, 3, 5, 4), requires_grad=True)])


def test_small_cnn_gradcheck():
    inputs = [_t(s, seed=i, requires_grad=True)
              for i, s in enumerate([(2, 3, 6, 5), (6, 3, 3, 3), (6,), (4, 3, 3, 2)])]
    assert gpuad.gradcheck(_small_cnn, inputs)


def test_float32_conv_stays_float32_with_no_float64_inside():
    x = _t((2, 3, 6, 6), dtype=np.float32, requires_grad=True)
    w = _t((4, 3, 3, 3), 1, dtype=np.float32)
    y = gpuad.avg_pool2d(gpuad.conv2d(x, w, padding=1), 3, padding=1, count_include_pad=False)
    assert y.dtype == gpuad.float32
    y.sum().backward()
    assert x.grad.dtype == gpuad.float32
    ref = ref_avg_pool2d(ref_conv2d(x.detach().numpy().astype(float), w.numpy().astype(float),
                                    padding=1), 3, padding=1, count_include_pad=False)
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-4, atol=1e-5)
