"""Tensor creation, attributes, operators, dtypes and moves (gpuad/tensor.py, gpuad/creation.py)."""
import numpy as np
import pytest

import gpuad
from gpuad import backend


def test_default_dtypes_follow_pytorch():
    assert gpuad.tensor([1.0, 2.0]).dtype == gpuad.float32
    assert gpuad.tensor(2.5).dtype == gpuad.float32
    assert gpuad.tensor([1, 2]).dtype == gpuad.int64
    assert gpuad.tensor([True, False]).dtype == gpuad.bool
    assert gpuad.tensor(np.zeros(2)).dtype == gpuad.float64  # arrays keep their dtype
    assert gpuad.tensor([1, 2], dtype=gpuad.float64).dtype == gpuad.float64
    assert gpuad.zeros(2, 3).dtype == gpuad.float32
    assert gpuad.arange(5).dtype == gpuad.int64
    assert gpuad.arange(0, 1, 0.25).dtype == gpuad.float32
    assert gpuad.full((2,), 7).dtype == gpuad.int64
    assert gpuad.full((2,), 7.0).dtype == gpuad.float32


def test_tensor_copies_its_data_but_from_numpy_shares():
    a = np.ones(3, dtype=np.float32)
    t, s = gpuad.tensor(a), gpuad.from_numpy(a)
    a[0] = 5
    assert t.array[0] == 1 and s.array[0] == 5
    assert s.numpy() is a


def test_creation_functions(device):
    dev = gpuad.device(device)
    checks = [
        (gpuad.zeros(2, 3, device=device), (2, 3), 0.0),
        (gpuad.zeros((2, 3), device=device), (2, 3), 0.0),
        (gpuad.ones(4, device=device), (4,), 1.0),
        (gpuad.full((2, 2), 3.5, device=device), (2, 2), 3.5),
        (gpuad.empty(3, 1, device=device), (3, 1), None),
    ]
    for t, shape, value in checks:
        assert t.shape == shape and t.device == dev and t.dtype == gpuad.float32
        if value is not None:
            assert (backend.asnumpy(t.array) == value).all()
    like = gpuad.ones_like(gpuad.zeros(2, dtype=gpuad.float64, device=device))
    assert like.dtype == gpuad.float64 and like.device == dev
    assert gpuad.zeros_like(like).tolist() == [0.0, 0.0]
    assert gpuad.full_like(like, 2).tolist() == [2.0, 2.0]
    assert gpuad.arange(1, 7, 2, device=device).tolist() == [1, 3, 5]
    np.testing.assert_allclose(gpuad.linspace(0, 1, 5, device=device).tolist(),
                               [0, .25, .5, .75, 1])
    np.testing.assert_array_equal(backend.asnumpy(gpuad.eye(3, device=device).array), np.eye(3))


def test_random_creation_is_seeded(device):
    gpuad.manual_seed(123)
    a = gpuad.randn(4, 5, device=device)
    u = gpuad.rand(100, device=device)
    i = gpuad.randint(0, 10, (50,), device=device)
    gpuad.manual_seed(123)
    b = gpuad.randn(4, 5, device=device)
    assert a.dtype == gpuad.float32 and a.device == gpuad.device(device)
    np.testing.assert_array_equal(backend.asnumpy(a.array), backend.asnumpy(b.array))
    uu = backend.asnumpy(u.array)
    assert (uu >= 0).all() and (uu < 1).all()
    ii = backend.asnumpy(i.array)
    assert i.dtype == gpuad.int64 and ii.min() >= 0 and ii.max() < 10
    assert gpuad.randint(5, size=(3,)).shape == (3,)


def test_attributes_and_repr():
    x = gpuad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and len(x) == 2
    assert x.size() == (2, 3) and x.size(1) == 3 and x.numel() == 6
    assert x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.device == gpuad.device("cpu") == "cpu"
    assert ("requires_grad=True" in repr(x) and "dtype=float32" in repr(x)
            and "device='cpu'" in repr(x))
    y = x * 2
    assert not y.is_leaf and "grad_fn=<mulBackward>" in repr(y)
    assert x.T.shape == (3, 2)


def test_only_float_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="only floating point tensors can require "
                                           "gradients.*int64"):
        gpuad.tensor([1, 2], requires_grad=True)
    t = gpuad.tensor([1, 2])
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad_()
    assert not t.requires_grad


def test_operators_with_scalars_arrays_and_reflection():
    x = gpuad.tensor([1.0, 2.0, 4.0])
    np.testing.assert_allclose((x + 1).tolist(), [2, 3, 5])
    np.testing.assert_allclose((1 + x).tolist(), [2, 3, 5])
    np.testing.assert_allclose((10 - x).tolist(), [9, 8, 6])
    np.testing.assert_allclose((2 * x).tolist(), [2, 4, 8])
    np.testing.assert_allclose((8 / x).tolist(), [8, 4, 2])
    np.testing.assert_allclose((x ** 2).tolist(), [1, 4, 16])
    np.testing.assert_allclose((2 ** x).tolist(), [2, 4, 16])
    np.testing.assert_allclose((-x).tolist(), [-1, -2, -4])
    np.testing.assert_allclose((np.float32(2) * x).tolist(), [2, 4, 8])
    arr = np.array([1.0, 1.0, 1.0], dtype=np.float32)
    assert isinstance(arr + x, gpuad.Tensor) and isinstance(x + arr, gpuad.Tensor)
    assert (x > 1.5).tolist() == [False, True, True]
    assert (x == 2).dtype == gpuad.bool and not (x == 2).requires_grad
    assert ((x > 1) & (x < 3)).tolist() == [False, True, False]
    assert (~(x > 1)).tolist() == [True, False, False]


def test_comparisons_carry_no_gradient():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    assert not (x > 0).requires_grad
    assert x.sign().requires_grad  # but sign is differentiable, with a zero gradient (as in torch)
    x.sign().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_float32_work_stays_float32_next_to_float64_scalars_and_int_arrays():
    """numpy 2 would promote each of these to float64; PyTorch's rules keep float32."""
    w = gpuad.randn(10, 3, requires_grad=True)
    labels = np.array([0, 2, 1, 1, 0, 2, 2, 1, 0, 0])
    one_hot = np.eye(3, dtype=np.int64)[labels]  # an int64 array
    scale = np.sqrt(1 / 3)  # an np.float64 scalar
    h = w * scale + 0.5
    loss = ((h - one_hot) ** 2).mean() if hasattr(gpuad, "mean") else ((h - one_hot) ** 2).sum()
    assert h.dtype == gpuad.float32 and loss.dtype == gpuad.float32
    loss.backward()
    assert w.grad.dtype == gpuad.float32
    with gpuad.no_grad():
        w -= np.float64(0.1) * w.grad
    assert w.dtype == gpuad.float32
    f64_scalar, ints = gpuad.tensor(2.0, dtype=gpuad.float64), gpuad.tensor([1, 2])
    assert (w * f64_scalar).dtype == gpuad.float32  # 0-d doesn't promote
    assert (ints * 1.5).dtype == gpuad.float32  # int tensor * float -> default float
    assert (ints / gpuad.tensor([2, 2])).dtype == gpuad.float32  # true division


def test_mixed_float_tensors_promote_and_gradients_keep_input_dtypes():
    a = gpuad.ones(2, requires_grad=True)
    b = gpuad.ones(2, dtype=gpuad.float64, requires_grad=True)
    y = a * b
    assert y.dtype == gpuad.float64
    y.sum().backward()
    assert a.grad.dtype == gpuad.float32 and b.grad.dtype == gpuad.float64


def test_to_dtype_is_differentiable_and_grads_come_back_in_the_input_dtype():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == gpuad.float64 and not y.is_leaf
    (y * y).sum().backward()
    assert x.grad.dtype == gpuad.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.to(gpuad.float16).dtype == gpuad.float16
    assert x.long().dtype == gpuad.int64 and x.int().dtype == gpuad.int32
    assert x.bool().dtype == gpuad.bool
    assert x.half().dtype == gpuad.float16 and x.float() is x


_INPLACE = [("abs_", ()), ("absolute_", ()), ("neg_", ()), ("negative_", ()), ("exp_", ()),
            ("log_", ()), ("log1p_", ()), ("expm1_", ()), ("sqrt_", ()), ("rsqrt_", ()),
            ("square_", ()), ("reciprocal_", ()), ("sin_", ()), ("cos_", ()), ("tan_", ()),
            ("tanh_", ()), ("sigmoid_", ()), ("relu_", ()), ("pow_", (2.5,)), ("clip_", (0.6, 2.5)),
            ("div_", (0.3,)), ("add_", (2.0,)), ("mul_", (3.0,)), ("eq_", (2.0,)), ("floor_", ())]
_INPLACE_KWARGS = {"div_": {"rounding_mode": "floor"}, "add_": {"alpha": -2}}


@pytest.mark.parametrize("name, args", _INPLACE, ids=[n for n, _ in _INPLACE])
def test_in_place_methods_write_torchs_values_and_record_their_gradient(name, args):
    a = np.array([[0.5, 1.5, 2.0], [3.0, 0.25, 1.0]])
    kwargs = _INPLACE_KWARGS.get(name, {})
    x = gpuad.tensor(a, requires_grad=True)
    y = x * 1  # a non-leaf: written in place, with a gradient through the write
    assert getattr(y, name)(*args, **kwargs) is y and y._version > 0
    (y * y).sum().backward()
    torch = pytest.importorskip("torch")
    t = torch.tensor(a, requires_grad=True)
    u = t * 1
    getattr(u, name)(*args, **kwargs)
    (u * u).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), u.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_masked_fill_in_place_and_tensor_metadata_follow_torch():
    torch = pytest.importorskip("torch")
    a = np.arange(24.0).reshape(2, 3, 4)
    x, t = gpuad.tensor(a), torch.tensor(a)
    x.masked_fill_(x > 10, -1.0)
    t.masked_fill_(t > 10, -1.0)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    for view in (lambda v: v, lambda v: v.transpose(0, 2), lambda v: v[:, 1:, ::2]):
        ours, theirs = view(x), view(t)
        assert ours.stride() == theirs.stride() and ours.stride(-1) == theirs.stride(-1)
        assert ours.is_contiguous() == theirs.is_contiguous()
    assert (x.nelement(), x.ndimension(), x.get_device()) == (t.nelement(), t.ndimension(), -1)
    assert x.is_floating_point() and not x.long().is_floating_point() and not x.is_complex()
    for dim, index in ((0, 1), (1, -1), (-1, 2)):
        np.testing.assert_array_equal(x.select(dim, index).numpy(), t.select(dim, index).numpy())
    with pytest.raises(IndexError, match="select: dim 3 is out of range"):
        x.select(3, 0)
    assert x.ravel().shape == t.ravel().shape and x.swapdims(0, 2).shape == (4, 3, 2)
    assert x.positive() is x and x.negative().tolist() == (-t).tolist()
    assert x.absolute().tolist() == t.absolute().tolist()
    assert x.add(x, alpha=2).tolist() == t.add(t, alpha=2).tolist()
    assert x.sub(x, alpha=0.5).tolist() == t.sub(t, alpha=0.5).tolist()
    with pytest.raises(TypeError, match="For integral input tensors, argument alpha"):
        gpuad.add(x.long(), x.long(), alpha=0.5)
    for cast, values in (("byte", [1.7, 2.2, 200.0]), ("char", [1.7, -2.2, 100.0]),
                         ("short", [1.7, -2.2, 3000.0])):  # (in range: C leaves the rest open)
        ours, theirs = getattr(gpuad.tensor(values), cast)(), getattr(torch.tensor(values), cast)()
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        assert ours.tolist() == theirs.tolist()


def test_to_takes_torchs_spellings():
    x = gpuad.tensor([1, 2])
    other = gpuad.ones(2, dtype=gpuad.float64, device="strict")
    y = x.to(other)  # the other tensor's device and dtype
    assert y.device == other.device and y.dtype == gpuad.float64
    y = x.to("strict", gpuad.float16, non_blocking=True)  # (data loaders' usual call)
    assert y.device == other.device and y.dtype == gpuad.float16
    assert x.to(device="strict", dtype=gpuad.float32, non_blocking=True).dtype == gpuad.float32
    assert x.to("strict", gpuad.float32, True).device == other.device  # non_blocking positional
    assert x.to(x) is x and x.to("cpu") is x
    if not gpuad.cuda.is_available():  # the keyword is taken; the GPU is what is missing
        with pytest.raises(RuntimeError, match="cuda:0 was requested"):
            x.cuda(non_blocking=True)
    copied = x.to("cpu", gpuad.int64, False, True)  # copy=True: a new tensor even when unchanged
    assert copied is not x and copied.tolist() == [1, 2]
    assert not np.shares_memory(copied.array, x.array)
    assert x.to(copy=True) is not x
    with pytest.raises(TypeError, match="Tensor.to: expected at most two flags"):
        x.to("cpu", True, True, True)
    model = gpuad.nn.Linear(2, 3)
    weight = model.weight
    assert model.to(other) is model and model.weight is weight
    assert weight.device == other.device and weight.dtype == gpuad.float64
    assert model.to("cpu", non_blocking=True).weight.device == gpuad.device("cpu")


def test_moving_between_devices_keeps_gradients_flowing():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    s = x.to("strict")
    assert s.device == gpuad.device("strict") and not s.is_leaf
    (s * s).sum().backward()
    assert x.grad.device == gpuad.device("cpu") and x.grad.tolist() == [2.0, 4.0]
    assert s.cpu().device == "cpu" and x.to(device="cpu") is x


def test_numpy_item_tolist():
    x = gpuad.tensor([[1.5, 2.5]])
    assert x.numpy().dtype == np.float32 and x.tolist() == [[1.5, 2.5]]
    assert gpuad.tensor(3.0).item() == 3.0 and float(gpuad.tensor([2.0])) == 2.0
    with pytest.raises(RuntimeError, match=r"only one-element tensors.*shape \(1, 2\)"):
        x.item()
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad\. "
                                           r"Use tensor\.detach\(\)\.numpy\(\) instead\."):
        gpuad.tensor([1.0], requires_grad=True).numpy()
    with pytest.raises(TypeError, match=r"can't convert a strict tensor to numpy"
                                        r".*\.cpu\(\)\.numpy\(\)"):
        gpuad.tensor([1.0], device="strict").numpy()
    with pytest.raises(TypeError, match="implicitly"):
        np.asarray(gpuad.tensor([1.0], device="strict"))
    np.testing.assert_array_equal(np.asarray(x), x.numpy())


def test_detach_and_clone():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.array is x.array
    c = x.clone()
    assert c.array is not x.array and c.requires_grad and not c.is_leaf
    (c * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_in_place_updates_on_plain_tensors():
    x = gpuad.zeros(3)
    x += 1
    x *= gpuad.tensor([1.0, 2.0, 3.0])
    x -= 0.5
    x /= 2
    assert x.tolist() == [0.25, 0.75, 1.25]
    x.fill_(2.0)
    x.copy_(np.array([1.0, 2.0, 3.0]))
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert x.zero_().tolist() == [0.0, 0.0, 0.0]
    x.copy_(gpuad.full((3,), 4.0, device="strict"))  # copy_ crosses devices, as torch's
    assert x.device.type == "cpu" and x.tolist() == [4.0, 4.0, 4.0]
    with pytest.raises(RuntimeError, match="value is on strict but the tensor is on cpu"):
        x.add_(gpuad.ones(3, device="strict"))


def test_truth_value_of_a_multi_element_tensor_is_an_error():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(gpuad.tensor([1.0, 2.0]))
    assert bool(gpuad.tensor([1.0]))


def test_tensors_hash_by_identity():
    a, b = gpuad.tensor([1.0]), gpuad.tensor([1.0])
    assert len({a: 1, b: 2}) == 2


def test_tensor_class_from_python_data_is_float32_like_torch_Tensor():
    t = gpuad.Tensor([1, 2])
    assert t.dtype == gpuad.float32 and t.tolist() == [1.0, 2.0]


def test_data_is_a_history_free_tensor_sharing_the_array(device):
    p = gpuad.ones(3, device=device, requires_grad=True)
    y = p * 2
    d = y.data
    assert isinstance(d, gpuad.Tensor) and not d.requires_grad and d.grad_fn is None
    assert d.array is y.array
    p.data.fill_(5.0)  # in place through .data, as optimizers written for torch do
    p.data.add_(gpuad.ones(3, device=device), alpha=-1)
    assert p.tolist() == [4.0, 4.0, 4.0] and p.requires_grad
    p.data = gpuad.zeros(2, device=device)
    assert p.shape == (2,) and p.is_leaf


def test_renamed_names_still_work_for_one_release_with_a_warning():
    import gpuad.serialization
    import gpuad.tape
    with pytest.warns(DeprecationWarning, match="gpuad.serialization"):
        assert gpuad.checkpoint is gpuad.serialization
    with pytest.warns(DeprecationWarning, match="gpuad.tape.to_dot"):
        assert gpuad.utils.to_dot is gpuad.tape.to_dot
    with pytest.warns(DeprecationWarning, match="gpuad.nn.summary"):
        assert gpuad.utils.summary is gpuad.nn.summary
    with pytest.warns(DeprecationWarning, match="gpuad.nn.utils.rnn"):
        assert gpuad.nn.packing is gpuad.nn.utils.rnn
    x = gpuad.ones(2, requires_grad=True)
    with pytest.warns(DeprecationWarning, match=r"gpuad.utils.checkpoint.checkpoint\(...\)"):
        y = gpuad.utils.checkpoint(lambda t: t * 2, x)
    assert y.tolist() == [2.0, 2.0]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gpuad.utils.nope


@pytest.mark.parametrize("args", [(1, 3, 2), (1, 2, 1), (0, 2, 1), (-1, 2, 1), (1, 7, 3)])
def test_unfold_gives_torchs_windows_and_adds_overlapping_gradients(args, device):
    a = np.arange(42.0).reshape(2, 7, 3)
    x = gpuad.tensor(a, device=device, requires_grad=True)
    assert gpuad.testing.gradcheck(lambda t: t.unfold(*args), (x,))
    torch = pytest.importorskip("torch")
    t = torch.tensor(a)
    np.testing.assert_array_equal(gpuad.backend.asnumpy(x.unfold(*args).detach().array),
                                  t.unfold(*args).numpy())
    with pytest.raises(RuntimeError, match="unfold: maximum size for tensor at dimension 1 is 7"):
        x.unfold(1, 8, 1)
    with pytest.raises(RuntimeError, match="unfold: step is 0 but must be > 0"):
        x.unfold(1, 2, 0)


def test_set_printoptions_shapes_the_repr_as_torchs_arguments_say():
    x = gpuad.tensor([1 / 3, 2e-5, 12345.678])
    default = repr(x)
    try:
        gpuad.set_printoptions(precision=3)
        assert repr(x).startswith("tensor([3.333e-01, 2.000e-05, 1.235e+04]")
        gpuad.set_printoptions(sci_mode=False)
        assert repr(x).startswith("tensor([    0.333,     0.   , 12345.678]")
        gpuad.set_printoptions(sci_mode=True, precision=2)
        assert repr(x).startswith("tensor([3.33e-01, 2.00e-05, 1.23e+04]")
        gpuad.set_printoptions(profile="default", threshold=5, edgeitems=1)
        assert repr(gpuad.arange(10)).startswith("tensor([0, ..., 9]")
        with pytest.raises(ValueError, match="profile must be one of"):
            gpuad.set_printoptions(profile="long")
    finally:
        gpuad.set_printoptions(profile="default")
    assert repr(x) == default
