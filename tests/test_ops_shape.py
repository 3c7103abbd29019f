"""Shape ops beyond the table: getitem variants, views, tuples from split/chunk, Tensor methods,
__setitem__, error messages, and second derivatives through the index primitives."""
import re

import numpy as np
import pytest

import gpuad
from gpuad import backend
from gpuad.ops.indexing import raw_index
from gpuad.testing import strict


def _t(array, device="cpu", requires_grad=False):
    return gpuad.tensor(np.asarray(array), device=device, requires_grad=requires_grad)


def _np(t):
    return backend.asnumpy(t.array)


def _x(device, shape=(3, 4), requires_grad=True):
    return _t(np.arange(np.prod(shape), dtype=np.float64).reshape(shape), device, requires_grad)


def _raises(exc, message):
    return pytest.raises(exc, match=re.escape(message))


# ---- getitem -------------------------------------------------------------------------------------
def test_repeated_integer_indices_accumulate_gradient(device):
    x = _x(device, (4,))
    x[_t([0, 2, 0, 0], device)].sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [3, 0, 1, 0])


def test_repeated_rows_with_lists_and_tuples(device):
    x = _x(device)
    y = x[[2, 2, -1], 1:3]
    np.testing.assert_array_equal(_np(y), np.arange(12.0).reshape(3, 4)[[2, 2, -1], 1:3])
    (y * _t(np.arange(6.0).reshape(3, 2), device)).sum().backward()
    expected = np.zeros((3, 4))
    expected[2, 1:3] = [0 + 2 + 4, 1 + 3 + 5]
    np.testing.assert_array_equal(_np(x.grad), expected)


def test_two_integer_tensors_pick_elements(device):
    x = _x(device)
    rows, cols = _t([0, 0, 2], device), _t([1, 1, 3], device)
    y = x[rows, cols]
    np.testing.assert_array_equal(_np(y), [1.0, 1.0, 11.0])
    y.sum().backward()
    assert _np(x.grad)[0, 1] == 2 and _np(x.grad)[2, 3] == 1 and _np(x.grad).sum() == 3


def test_boolean_masks(device):
    x = _x(device)
    mask = _t(np.arange(12).reshape(3, 4) % 3 == 0, device)
    y = x[mask]
    np.testing.assert_array_equal(_np(y), [0.0, 3.0, 6.0, 9.0])
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), _np(mask).astype(float))

    rows = x[_t([True, False, True], device)]  # a 1-d mask selects rows
    assert rows.shape == (2, 4)
    assert x[:, np.array([False, True, True, False])].shape == (3, 2)  # a host mask is moved
    assert x[x > 5].shape == (6,)


def test_basic_indexing_forms(device):
    a = np.arange(60.0).reshape(3, 4, 5)
    x = _t(a, device)
    for index in [0, -1, (1, 2), (slice(None), 1), (Ellipsis, -1), (None, 0, None),
                  (slice(None, None, -1), slice(1, None, 2)), (0, Ellipsis, slice(3, 0, -1)),
                  (True,), ()]:
        np.testing.assert_array_equal(_np(x[index]), a[index], err_msg=str(index))
    assert x[1, 2, 3].shape == () and float(x[1, 2, 3]) == 33.0


def test_basic_indexing_gives_views():
    x = _x("cpu", requires_grad=False)
    for y in [x[1], x[:, 1:3], x[..., ::-1], x.reshape(4, 3), x.view(-1), x.T, x.permute(1, 0),
              x.transpose(0, 1), x.unsqueeze(0), x.squeeze(), x.expand(2, 3, 4), x.flip(0),
              *x.split(2), *x.chunk(2, 1), gpuad.flatten(x), x[None]]:
        assert np.shares_memory(y.array, x.array)


def test_integer_index_on_another_device_is_refused():
    x = _x("cpu")
    index = _t([0, 1], "strict")
    with _raises(RuntimeError, "getitem: indices are on strict but the indexed tensor is on cpu"):
        x[index]
    with _raises(RuntimeError, "__setitem__: indices are on strict but the indexed tensor is on "
                 "cpu"):
        x[index] = 0.0
    with _raises(RuntimeError, "gather: indices are on strict but the indexed tensor is on cpu"):
        x.gather(1, _t([[0]], "strict"))
    with _raises(RuntimeError, "index_select: indices are on strict"):
        x.index_select(0, index)
    with _raises(RuntimeError, "gather: indices are on cpu but the indexed tensor is on strict"):
        _x("strict").gather(1, _t([[0]]))  # as torch's gather: one device


def test_indexing_a_device_tensor_takes_indices_on_the_cpu_as_torch_does():
    # torch's index and index_put_ take indices on the CPU or on the indexed tensor's device:
    # `logits[torch.arange(n), y]` on CUDA
    a = np.arange(12.0).reshape(3, 4)
    x = gpuad.tensor(a, device="strict", requires_grad=True)
    rows, cols = _t([0, 2]), _t([1, 3], "strict")
    y = x[rows, cols]
    assert y.device == x.device
    np.testing.assert_array_equal(_np(y), a[[0, 2], [1, 3]])
    np.testing.assert_array_equal(_np(x[1, _t([0, 1])]), a[1, [0, 1]])
    np.testing.assert_array_equal(_np(x[_t([True, False, True])]), a[[True, False, True]])
    y.sum().backward()
    expected = np.zeros_like(a)
    expected[[0, 2], [1, 3]] = 1
    np.testing.assert_array_equal(_np(x.grad), expected)
    z = gpuad.tensor(a, device="strict")
    z[_t([1])] = -1.0
    np.testing.assert_array_equal(_np(z)[1], [-1.0] * 4)
    put = gpuad.index_put(z, (_t([0, 0]), _t([0, 0])), gpuad.tensor([1.0, 2.0], device="strict",
                                                                   dtype=gpuad.float64),
                          accumulate=True)
    assert put.device == z.device and _np(put)[0, 0] == 3.0


def test_raw_index_moves_host_indices_to_the_device(device):
    data = _x(device).array
    raw = raw_index((_t([1], device), [0, 2], np.array([True, False]), slice(1), None, Ellipsis, 3),
                    data)
    for item in raw[:3]:
        assert backend.device_of(item) == gpuad.device(device)
    assert raw[3:] == (slice(1), None, Ellipsis, 3)
    assert raw_index([], data).dtype == np.int64  # an empty list indexes nothing, as in torch


def test_setitem_through_raw_index(device):
    x = _x(device, requires_grad=False)
    x[_t([0, 2], device)] = 0.0
    x[_t([[False, True, False, False]] * 3, device)] = -1.0
    x[1, [0, 3]] = _t([7.0, 8.0], device)
    x[np.array([1]), 2] = 9.0
    expected = np.arange(12.0).reshape(3, 4)
    expected[[0, 2]] = 0
    expected[:, 1] = -1
    expected[1, [0, 3]] = [7, 8]
    expected[1, 2] = 9
    np.testing.assert_array_equal(_np(x), expected)

    w = _x(device)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 1.0
    with gpuad.no_grad():
        w[w > 6] = 0.0
    assert float(w.sum()) == sum(range(7))


def test_getitem_errors():
    x = _x("cpu")
    with _raises(IndexError,
                 "getitem: index 3 is out of range for dim 0 with size 3 (tensor shape (3, 4))"):
        x[3]
    with _raises(IndexError, "getitem: index -5 is out of range for dim 1 with size 4"):
        x[:, -5]
    with _raises(IndexError, "getitem: index 4 is out of range for dim 1 with size 4"):
        x[..., _t([0, 4, 1])]
    with _raises(IndexError, "getitem: index 7 is out of range for dim 0 with size 3"):
        x[[0, 7], 1]
    with pytest.raises(IndexError, match=r"getitem: .*boolean.*\(tensor shape \(3, 4\)\)"):
        x[_t([True, False])]
    with pytest.raises(IndexError, match=r"getitem: .*\(tensor shape \(3, 4\)\)"):
        x[0, 1, 2]
    with pytest.raises(IndexError, match=r"getitem: .*integer"):
        x[_t([0.5])]


def test_out_of_range_indices_are_caught_on_a_device_when_asked(monkeypatch):
    """CuPy wraps out-of-range integer arrays silently; checking them costs a host sync, so on a
    device (the strict backend stands in for CUDA) gpuad checks only with CHECK_DEVICE_INDICES."""
    monkeypatch.setattr(gpuad.backend, "CHECK_DEVICE_INDICES", True)
    x = _x("strict")
    with _raises(IndexError, "getitem: index 3 is out of range for dim 0 with size 3"):
        x[_t([3], "strict")]
    with _raises(IndexError, "gather: index 4 is out of range for dim 1 with size 4"):
        x.gather(1, _t([[4]], "strict"))


# ---- tuples: split and chunk ---------------------------------------------------------------------
def test_split_and_chunk_return_tuples(device):
    x = _x(device, (5, 2))
    parts = x.split(2)
    assert isinstance(parts, tuple) and [p.shape for p in parts] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape[1] for p in gpuad.split(x, [1, 1], dim=1)] == [1, 1]
    assert [p.shape[0] for p in x.split(7)] == [5]
    assert [p.shape[0] for p in x.chunk(2)] == [3, 2]
    assert [p.shape[0] for p in gpuad.chunk(_x(device, (6,)), 4)] == [2, 2, 2]  # fewer, like torch
    assert [p.shape for p in gpuad.chunk(_x(device, (0, 2)), 3)] == [(0, 2)] * 3
    a, empty, c = x.split([2, 0, 3])
    assert empty.shape == (0, 2)
    (a.sum() * 2 + c.sum() * 3).backward()
    np.testing.assert_array_equal(_np(x.grad)[:, 0], [2, 2, 3, 3, 3])


def test_flatten_with_nothing_to_merge_returns_the_input_itself_like_torch(device):
    x = _x(device, (2, 3)).requires_grad_()
    assert gpuad.flatten(x, 1) is x and x.flatten(-1, -1) is x and gpuad.nn.Flatten()(x) is x
    assert gpuad.flatten(x) is not x and tuple(gpuad.flatten(x).shape) == (6,)
    assert tuple(gpuad.flatten(gpuad.tensor(2.0, device=device)).shape) == (1,)  # 0-d: 1-d
    torch = pytest.importorskip("torch")
    t = torch.zeros(2, 3)
    assert torch.flatten(t, 1) is t and torch.flatten(t, -1, -1) is t and torch.flatten(t) is not t


# ---- Tensor methods ------------------------------------------------------------------------------
def test_tensor_methods(device):
    a = np.arange(6.0).reshape(2, 3)
    x = _t(a, device)
    checks = [
        (x.T, a.T), (x.mT, a.T), (x.view(3, -1), a.reshape(3, 2)), (x.view((6,)), a.ravel()),
        (x.reshape(-1, 2), a.reshape(-1, 2)), (x.permute(1, 0), a.T), (x.permute((1, 0)), a.T),
        (x.transpose(0, 1), a.T), (x.swapaxes(-1, 0), a.T), (x.flip(0), a[::-1]),
        (x.flip(0, 1), a[::-1, ::-1]), (x.unsqueeze(1), a[:, None]),
        (x.unsqueeze(0).squeeze(0), a), (x.flatten(), a.ravel()),
        (x.expand(4, 2, 3), np.broadcast_to(a, (4, 2, 3))),
        (x[:1].expand(3, -1), np.broadcast_to(a[:1], (3, 3))),
        (x.expand_as(_x(device, (2, 2, 3))), np.broadcast_to(a, (2, 2, 3))),
        (x.broadcast_to((3, 2, 3)), np.broadcast_to(a, (3, 2, 3))),
        (x.repeat(2, 1), np.tile(a, (2, 1))),
        (x.repeat(1, 2, 1), np.tile(a, (1, 2, 1))), (x.tile(2), np.tile(a, 2)),
        (x.gather(1, _t([[2, 0], [1, 1]], device)), [[2.0, 0.0], [4.0, 4.0]]),
        (x.index_select(1, _t([2, 2], device)), a[:, [2, 2]]), (x.tril(), np.tril(a)),
        (x.triu(1), np.triu(a, 1)),
    ]
    for got, want in checks:
        np.testing.assert_array_equal(_np(got), want)


def test_index_select_with_a_0d_index_keeps_the_dim(device):
    x = _x(device)
    assert x.index_select(0, _t(2, device)).shape == (1, 4)
    assert gpuad.index_select(x, -1, [3, 0]).shape == (3, 2)


def test_one_hot(device, monkeypatch):
    y = gpuad.one_hot(_t([[0, 2], [1, 1]], device))
    assert y.dtype == gpuad.int64 and y.shape == (2, 2, 3) and not y.requires_grad
    np.testing.assert_array_equal(_np(gpuad.one_hot(_t([1, 0], device), num_classes=4)),
                                  [[0, 1, 0, 0], [1, 0, 0, 0]])
    with _raises(TypeError, "one_hot: expected an integer tensor of class indices, got float64"):
        gpuad.one_hot(_t([0.0], device))
    with _raises(RuntimeError, "one_hot: class value -1 is outside [0, 3) (num_classes=-1)"):
        gpuad.one_hot(_t([2, -1], device))  # counting the classes reads the values anyway
    if device != "cpu":  # as torch's CUDA one_hot: given num_classes, no check and no sync
        labels = _t([0, 3], device)
        with strict.forbid_host_sync():
            y = gpuad.one_hot(labels, 3)
        np.testing.assert_array_equal(_np(y), [[1, 0, 0], [0, 0, 0]])
        monkeypatch.setattr(gpuad.backend, "CHECK_DEVICE_INDICES", True)
    with _raises(RuntimeError, "one_hot: class value 3 is outside [0, 3) (num_classes=3); class "
                 "values must be non-negative and smaller than num_classes"):
        gpuad.one_hot(_t([0, 3], device), 3)
    with _raises(RuntimeError, "one_hot: class value -2 is outside [0, 3)"):
        gpuad.one_hot(_t([1, -2], device), num_classes=3)


def test_cat_promotes_like_torch():
    a32 = gpuad.ones(2, dtype=gpuad.float32, requires_grad=True)
    b64 = gpuad.ones(3, dtype=gpuad.float64, requires_grad=True)
    y = gpuad.cat([a32, b64])
    assert y.dtype == gpuad.float64
    y.sum().backward()
    assert a32.grad.dtype == gpuad.float32 and b64.grad.dtype == gpuad.float64
    assert gpuad.cat([a32, a32]).dtype == gpuad.float32
    assert gpuad.concatenate((a32, a32), axis=0).shape == (4,)


def test_cat_gradient_skips_inputs_without_grad():
    a, b = _x("cpu", (2, 3)), _x("cpu", (1, 3), requires_grad=False)
    gpuad.cat([b, a, b]).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad is None


# ---- errors --------------------------------------------------------------------------------------
def test_error_messages():
    x = _x("cpu", (2, 3))
    cases = [
        (lambda: gpuad.cat([x, _x("cpu", (4, 5))], dim=1), RuntimeError,
         "cat: tensors must have the same shape except in dim 1, got (2, 3) and (4, 5)"),
        (lambda: gpuad.cat([x, _x("cpu", (3,))]), RuntimeError,
         "cat: tensors must have the same shape except in dim 0, got (2, 3) and (3,)"),
        (lambda: gpuad.cat([]), RuntimeError, "cat: expected a non-empty list of tensors"),
        (lambda: gpuad.cat([_x("cpu", ())]), RuntimeError, "cat: zero-dimensional tensors cannot"),
        (lambda: gpuad.cat([x], dim=2), IndexError,
         "cat: dim 2 is out of range for a tensor of shape (2, 3) (expected a dim in [-2, 1])"),
        (lambda: gpuad.stack([x, _x("cpu", (3, 2))]), RuntimeError,
         ("stack: expects each tensor to be equal size, but got (2, 3) at entry 0 and (3, 2) at "
          "entry 1")),
        (lambda: x.reshape(4, 2), RuntimeError,
         "reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into shape (4, 2)"),
        (lambda: x.view(-1, -1), RuntimeError, "reshape: cannot reshape a tensor of shape (2, 3)"),
        (lambda: x.expand(2, 4), RuntimeError,
         ("expand: the expanded size 4 must match the existing size 3 at non-singleton dim 1; "
          "target shape (2, 4), tensor shape (2, 3)")),
        (lambda: x.expand(3), RuntimeError, "expand: the target shape (3,) has fewer dims than"),
        (lambda: x.expand(-1, 2, 3), RuntimeError,
         "expand: -1 (or a negative size) is not allowed"),
        (lambda: x.permute(0, 0), RuntimeError,
         "permute: dims (0, 0) is not a permutation of the 2 dims of a tensor of shape (2, 3)"),
        (lambda: x.permute(0), RuntimeError, "permute: dims (0,) is not a permutation"),
        (lambda: x.transpose(0, 2), IndexError, "swapaxes: dim 2 is out of range"),
        (lambda: x.squeeze(3), IndexError, "squeeze: dim 3 is out of range"),
        (lambda: x.unsqueeze(-4), IndexError,
         ("unsqueeze: dim -4 is out of range for a tensor of shape (2, 3) (expected a dim in "
          "[-3, 2])")),
        (lambda: x.flatten(1, 0), RuntimeError, "flatten: start_dim 1 comes after end_dim 0"),
        (lambda: x.flip(0, -2), RuntimeError, "flip: dims (0, -2) name a dim more than once"),
        (lambda: x.repeat(2), RuntimeError,
         "repeat: repeats (2,) must be non-negative and at least"),
        (lambda: x.split([1, 3], dim=1), RuntimeError,
         "split: sizes [1, 3] must be non-negative and add up to 3, the size of dim 1"),
        (lambda: x.split(0), RuntimeError, "split: split_size must be positive"),
        (lambda: x.chunk(0), RuntimeError, "chunk: chunks must be positive, got 0"),
        (lambda: gpuad.pad(x, (1, 2, 3)), ValueError,
         "pad: the padding must hold (left, right) pairs"),
        (lambda: gpuad.pad(x, (1, 1), mode="mirror"), ValueError, "pad: mode must be one of"),
        (lambda: gpuad.pad(x, (3, 0), mode="reflect"), ValueError,
         ("pad: reflect padding must be smaller than the size of the padded dim, got (3, 0) for "
          "dim 1")),
        (lambda: gpuad.pad(x, (1, 0), mode="replicate", value=2.0), ValueError,
         "pad: mode 'replicate' takes no fill value"),
        (lambda: gpuad.pad(x, (-2, -2)), RuntimeError, "pad: padding (-2, -2) would crop"),
        (lambda: x.gather(1, _t([0, 1])), RuntimeError,
         "gather: index of shape (2,) must have the dims of the input (shape (2, 3))"),
        (lambda: x.gather(1, _t([[0], [1], [2]])), RuntimeError, "be no larger outside dim 1"),
        (lambda: x.gather(0, _t([[2]])), IndexError,
         "gather: index 2 is out of range for dim 0 with size 2 (tensor shape (2, 3))"),
        (lambda: x.gather(1, _t([[-1]])), IndexError, "gather: index -1 is out of range for dim 1"),
        (lambda: x.gather(1, _t([[0.0]])), TypeError, "gather: expected an integer index tensor"),
        (lambda: x.index_select(1, _t([[0]])), RuntimeError,
         "index_select: index must be 1-D, got shape (1, 1)"),
        (lambda: x.index_select(1, _t([3])), IndexError,
         "index_select: index 3 is out of range for dim 1 with size 3"),
        (lambda: gpuad.tril(_x("cpu", (3,))), RuntimeError,
         "tril: expected a tensor of at least 2 dims, got shape (3,)"),
    ]
    for fn, exc, message in cases:
        with _raises(exc, message):
            fn()


# ---- second derivatives through the index primitives ---------------------------------------------
SECOND_ORDER = {
    "getitem-ints": lambda x: x[[0, 2, 2], 1:] ** 2,
    "getitem-mask": lambda x: x[x.detach() > 0] ** 3,
    "getitem-slices": lambda x: (x * x)[::-1, 1::2],
    "gather": lambda x: (x * x).gather(1, gpuad.tensor([[0, 0], [3, 1], [2, 2]])),
    "index_select": lambda x: (x ** 3).index_select(1, gpuad.tensor([3, 3, 0])),
    "cat": lambda x: gpuad.cat([x * x, x[:1] ** 3], dim=0),
    "stack": lambda x: gpuad.stack([x * x, x], -1),
    "split": lambda x: x.split([1, 3], dim=1)[1] ** 2,
    "pad-constant": lambda x: gpuad.pad(x * x, (1, -1, 0, 2), value=0.5),
    "pad-reflect": lambda x: gpuad.pad(x * x, (2, 1), mode="reflect"),
    "pad-circular": lambda x: gpuad.pad(x ** 3, (1, 4), mode="circular"),
    "repeat": lambda x: (x * x).repeat(2, 1, 2),
    "expand": lambda x: (x[:1] * x[:1]).expand(2, 3, 4),
    "tril": lambda x: (x * x).tril(1),
    "permute": lambda x: (x * x).permute(1, 0) * x.T,
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_through_nonlinear_use(name):
    fn = SECOND_ORDER[name]
    x = gpuad.tensor(np.random.default_rng(0).uniform(0.5, 2, (3, 4)) * [1, -1, 1, -1],
                     requires_grad=True)
    rng = np.random.default_rng(1)
    v = gpuad.tensor(rng.standard_normal(fn(x).shape))

    def first_order(x):
        return gpuad.grad((fn(x) * v).sum(), x, create_graph=True)[0]

    assert first_order(x).requires_grad
    assert gpuad.gradcheck(first_order, [x], atol=1e-4)
