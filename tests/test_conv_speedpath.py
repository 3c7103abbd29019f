"""The CNN hot path (gpuad.ops.conv): conv2d as one _convolution op that keeps its im2col columns
only when they are small, and max pooling whose windows tile the input (2x2 on even sizes),
checked against the general paths and torch. The op table (conv_cases.py) checks values and
gradients; this file checks what the fast paths must keep: the tie rule, NaN handling, and the
memory a forward leaves in the graph."""
import itertools
import tracemalloc

import numpy as np
import pytest

import gpuad


def _t(a, requires_grad=True, device="cpu"):
    return gpuad.tensor(a, requires_grad=requires_grad, device=device)


def test_conv2d_is_one_op_holding_only_its_inputs():
    x, w, b = _t(np.ones((2, 3, 5, 5))), _t(np.ones((4, 3, 3, 3))), _t(np.ones(4))
    y = gpuad.conv2d(x, w, b, padding=1)
    assert y._node.name == "_convolution"
    assert [id(t) for t in y._node.inputs] == [id(x), id(w), id(b)]


@pytest.mark.parametrize("keep", [True, False], ids=["small-kept", "large-copied-again"])
def test_conv2d_forward_keeps_the_im2col_columns_only_when_small(monkeypatch, keep):
    """The columns (kh*kw times the input) are kept from the forward for the weight's gradient
    while they are at most conv.KEEP_COLUMNS bytes, and rebuilt in the backward above that: then
    after the forward about the output alone is newly allocated."""
    from gpuad.ops import conv
    rng = np.random.default_rng(0)
    x, w = _t(rng.standard_normal((8, 8, 16, 16))), _t(rng.standard_normal((8, 8, 3, 3)))
    b = _t(rng.standard_normal(8))
    output_bytes = 8 * 8 * 16 * 16 * 8
    column_bytes = output_bytes * 9
    monkeypatch.setattr(conv, "KEEP_COLUMNS", column_bytes if keep else column_bytes - 1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = gpuad.conv2d(x, w, b, padding=1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    expected = output_bytes + column_bytes * keep
    assert expected <= held < expected + output_bytes / 2, (
        f"the forward holds {held} bytes for {output_bytes} of output")
    y.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape and b.grad.shape == b.shape


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (True, True, False)])
def test_conv2d_computes_only_the_gradients_asked_for(needs):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)),
              rng.standard_normal(4)]
    full = [_t(a) for a in arrays]
    gpuad.conv2d(*full, stride=(2, 1), padding=1).sum().backward()
    some = [_t(a, requires_grad=n) for a, n in zip(arrays, needs)]
    gpuad.conv2d(*some, stride=(2, 1), padding=1).sum().backward()
    for t, f, n in zip(some, full, needs):
        if n:
            np.testing.assert_allclose(t.grad.numpy(), f.grad.numpy(), rtol=1e-12)
        else:
            assert t.grad is None


def _pool_grad(data, device="cpu", **kwargs):
    x = _t(data, device=device)
    y = gpuad.max_pool2d(x, **kwargs)
    (y * _t(np.arange(1.0, y.numel() + 1).reshape(y.shape), False, device)).sum().backward()
    return y.detach().cpu().numpy(), x.grad.cpu().numpy()


def test_tiled_max_pool_ties_match_torch():
    """2x2 windows that tile an even input (the fast path): each window's gradient goes to its
    first maximum, in row-major order, as in torch."""
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(2).integers(0, 3, (2, 3, 6, 8)).astype(float)
    y, gx = _pool_grad(data, kernel_size=2)
    tx = torch.tensor(data, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, 2)
    (ty * torch.arange(1.0, ty.numel() + 1, dtype=ty.dtype).reshape(ty.shape)).sum().backward()
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(gx, tx.grad.numpy())


def test_tiled_and_general_max_pool_agree_with_ties_and_nan(device):
    """The same windows through the tiled path (2x2 of a 4x6 input) and the general one (the 4x6
    input inside a 5x7 whose extra row and column no window reaches): equal values and gradients,
    NaN windows included (NaN maximum, the gradient on the NaN, as torch)."""
    data = np.random.default_rng(3).integers(0, 3, (2, 2, 4, 6)).astype(float)
    data[0, 1, 2, 3] = np.nan
    wider = np.full((2, 2, 5, 7), 7.0)
    wider[:, :, :4, :6] = data
    y_tiled, g_tiled = _pool_grad(data, device, kernel_size=2)
    y_general, g_general = _pool_grad(wider, device, kernel_size=2)  # row 4, col 6: no window
    np.testing.assert_array_equal(y_tiled, y_general)
    np.testing.assert_array_equal(g_tiled, g_general[:, :, :4, :6])
    window = g_tiled[0, 1, 2:4, 2:4]
    assert np.isnan(y_tiled[0, 1, 1, 1]) and window[0, 1] != 0 and np.count_nonzero(window) == 1


def test_max_pool2d_second_order_through_the_tiled_path():
    """The gradient of max pooling is linear in the upstream gradient; its own gradient gathers
    from the same first maxima."""
    rng = np.random.default_rng(4)
    x = _t(rng.integers(0, 3, (2, 2, 4, 4)).astype(float))
    v = _t(rng.standard_normal((2, 2, 2, 2)))
    (gx,) = gpuad.grad((gpuad.max_pool2d(x, 2) * v).sum(), [x], create_graph=True)
    u = rng.standard_normal((2, 2, 4, 4))
    (gv,) = gpuad.grad((gx * _t(u, False)).sum(), [v])
    hits = gx.detach().numpy() != 0
    expected = (u * hits).reshape(2, 2, 2, 2, 2, 2).sum(axis=(3, 5))
    np.testing.assert_allclose(gv.numpy(), expected, rtol=1e-12)


def _col2im_through_a_padded_buffer(cols, shape, kernel, stride, padding, dilation):
    """_col2im as it was: every window entry added into a zero-padded buffer, then cropped."""
    d = len(kernel)
    padded = [n + padding[2 * i] + padding[2 * i + 1] for i, n in enumerate(shape[2:])]
    out = np.zeros((shape[1], *padded, shape[0]), cols.dtype)
    out_size = cols.shape[1 + d:1 + 2 * d]
    for k in itertools.product(*(range(n) for n in kernel)):
        window = tuple(slice(i * dl, i * dl + s * (o - 1) + 1, s)
                       for i, s, dl, o in zip(k, stride, dilation, out_size))
        out[(slice(None),) + window] += cols[(slice(None),) + k]
    crop = tuple(slice(padding[2 * i], padding[2 * i] + n) for i, n in enumerate(shape[2:]))
    return out[(slice(None),) + crop].transpose((d + 1,) + tuple(range(d + 1)))


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation", [
    ((2, 3, 9, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # 'same'
    ((2, 3, 9, 8), (3, 2), (2, 3), (2, 0, 1, 3), (1, 2)),  # strided, dilated, asymmetric
    ((1, 2, 7), (5,), (1,), (6, 6), (1,)),  # padding wider than the kernel: whole offsets cut
    ((2, 1, 5, 4, 6), (2, 3, 2), (2, 1, 3), (1, 1, 0, 2, 1, 0), (2, 1, 1)),
    ((3, 2, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),  # disjoint windows: assignments
])
def test_col2im_adds_into_the_unpadded_input_with_the_same_sums(shape, kernel, stride, padding,
                                                               dilation):
    from gpuad.ops import conv
    d = len(kernel)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    cols = conv._im2col.forward(x, kernel=kernel, stride=stride, padding=padding,
                                dilation=dilation)
    cols = np.random.default_rng(4).standard_normal(cols.shape).astype(np.float32)
    got = conv._col2im.forward(cols, shape=shape, kernel=kernel, stride=stride, padding=padding,
                               dilation=dilation)
    want = _col2im_through_a_padded_buffer(cols, shape, kernel, stride, padding, dilation)
    assert got.shape == want.shape == shape and got.ndim == d + 2
    assert got.tobytes() == want.tobytes()
