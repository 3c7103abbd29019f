"""The tape and the reverse walk (gpuad/autograd.py), apart from any particular op's rule."""
import math
import threading

import numpy as np
import pytest

import gpuad
from gpuad import backend


def leaf(values, device="cpu", dtype=gpuad.float64):
    return gpuad.tensor(values, dtype=dtype, device=device, requires_grad=True)


def test_founding_example(device):
    """f(x1, x2) = x1*x2 + x2 - ln(x1) at (3, -4): the forward trace and one reverse pass."""
    x1, x2 = leaf(3.0, device), leaf(-4.0, device)
    v1 = x1 * x2
    v2 = gpuad.log(x1)
    v3 = v1 + x2
    y = v3 - v2
    assert v1.item() == -12.0
    assert v2.item() == pytest.approx(math.log(3))
    assert v3.item() == -16.0
    assert y.item() == pytest.approx(-16 - math.log(3))  # about -17.10
    y.backward()
    assert x1.grad.item() == pytest.approx(-4 - 1 / 3)  # x2 - 1/x1, about -4.33
    assert x2.grad.item() == pytest.approx(4.0)  # x1 + 1
    assert x1.grad.device == gpuad.device(device)


def test_diamond_uses_each_path(device):
    x = leaf([1.5, -2.0], device)
    y = x * x + x  # x feeds three uses
    y.backward(gradient=gpuad.ones(2, dtype=gpuad.float64, device=device))
    np.testing.assert_allclose(backend.asnumpy(x.grad.array), [4.0, -3.0])


def test_deep_chain_has_no_recursion_limit():
    x = leaf(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_each_node_runs_once_after_all_its_consumers():
    calls = []

    class Spy(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            calls.append(g.copy())
            return g

    x = leaf([1.0, 2.0])
    h = Spy.apply(x)
    y = (h * 2 + h * 3 + h).sum()
    y.backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], [6.0, 6.0])


def test_gradients_accumulate_across_backward_calls_until_cleared():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_leaf_grads_never_share_memory():
    """add's rule hands the same gradient to both inputs: each .grad must still be its own."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).backward(gradient=gpuad.ones(2, dtype=gpuad.float64))
    a.grad.array[0] = 100.0
    assert b.grad.array[0] == 1.0


def test_user_gradient_is_not_aliased_into_grad():
    x = leaf([1.0, 2.0])
    g = gpuad.tensor([1.0, 1.0], dtype=gpuad.float64)
    x.backward(gradient=g)
    x.grad.array[0] = 5.0
    assert g.array[0] == 1.0


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(2,\).*gradient="):
        (x * 2).backward()


def test_backward_gradient_shape_must_match():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\) but the output has "
                                           r"shape \(2,\)"):
        (x * 2).backward(gradient=gpuad.ones(3, dtype=gpuad.float64))


def test_backward_on_a_tensor_without_grad_explains():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gpuad.tensor(1.0).backward()


def test_in_place_change_of_a_saved_tensor_is_caught():
    x = leaf([1.0, 2.0])
    w = gpuad.tensor([3.0, 4.0], dtype=gpuad.float64)
    y = (x * w).sum()
    w += 1  # w needs no grad, so in place is allowed, but mul saved it
    with pytest.raises(RuntimeError, match="saved by 'mul' was modified in place"):
        y.backward()


def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    x = leaf([1.0, 2.0])
    for update in (lambda: x.add_(1), lambda: x.__setitem__(0, 5.0), lambda: x.zero_(),
                   lambda: x.copy_(gpuad.zeros(2)), lambda: x.mul_(2)):
        with pytest.raises(RuntimeError, match="in-place operation.*no_grad"):
            update()
    np.testing.assert_allclose(x.numpy() if not x.requires_grad else x.detach().numpy(), [1.0, 2.0])
    with gpuad.no_grad():
        x -= 0.5
        x[1] = 7.0
    np.testing.assert_allclose(x.detach().numpy(), [0.5, 7.0])
    assert x.is_leaf and x.requires_grad


def test_in_place_arithmetic_on_tensors_in_the_graph_is_recorded_as_torch_does():
    # a residual `out += identity`, a mask `y *= m`, an accumulator that joins the graph:
    # each write is the out-of-place op on the old value, so the gradients are torch's
    a = np.array([[0.5, -1.5, 2.0], [3.0, -0.25, 1.0]])

    def block(lib, x, w):
        out = (x @ w).sigmoid() + 0
        out += x
        out *= 2
        z = out.sin() * 1.5
        z -= w.sum()
        z.div_(x.exp() + 0)
        z.sub_(x, alpha=0.5)
        acc = lib.zeros(2, 3, dtype=x.dtype)
        acc += z * z
        acc /= 3
        return acc.sum()
    x, w = leaf(a), leaf(np.eye(3) * 0.7)
    block(gpuad, x, w).backward()
    assert x.is_leaf and w.is_leaf
    torch = pytest.importorskip("torch")
    tx = torch.tensor(a, requires_grad=True)
    tw = torch.tensor(np.eye(3) * 0.7, requires_grad=True)
    block(torch, tx, tw).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    y = leaf(a) * 1
    with pytest.raises(RuntimeError, match="add_: this tensor is a view"):
        y[0] += 1  # (y[0] is a view of y: write through y[0, :] = ... instead)


def test_optimizer_style_update_after_backward_keeps_dtype_and_identity():
    p = gpuad.randn(3, requires_grad=True)  # float32
    (p * p).sum().backward()
    before = p.array
    with gpuad.no_grad():
        p -= np.float64(0.1) * p.grad
    assert p.array is before and p.dtype == gpuad.float32


def test_no_grad_records_nothing_and_is_restored_on_error():
    x = leaf([1.0])
    with gpuad.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(ZeroDivisionError):
        with gpuad.no_grad():
            1 / 0
    assert gpuad.is_grad_enabled()
    with gpuad.no_grad():
        with gpuad.enable_grad():
            assert (x * 2).requires_grad
        assert not gpuad.is_grad_enabled()


def _inference_mode_flags(lib):
    """(grad enabled, inference mode enabled, whether a product records) at each point of the same
    code, in gpuad or torch."""
    x = lib.ones(2, requires_grad=True)
    seen = []

    def note():
        seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled(),
                     (x * 2).requires_grad))
    note()
    with lib.inference_mode():
        note()
        with lib.inference_mode(False):
            note()
        with lib.no_grad(), lib.inference_mode(False):
            note()
        note()
    note()

    @lib.inference_mode
    def bare():
        note()

    @lib.inference_mode()
    def called():
        note()
        yield
        note()
    bare()
    for _ in called():
        note()
    note()
    with pytest.raises(ZeroDivisionError):
        with lib.inference_mode():
            1 / 0
    note()
    return seen


def test_inference_mode_records_nothing_as_torch_does():
    seen = _inference_mode_flags(gpuad)
    assert seen[0] == (True, False, True) and seen[1] == (False, True, False)
    assert seen[2] == seen[3] == (True, False, True)  # inference_mode(False) records again
    try:
        import torch
    except ImportError:
        return
    assert seen == _inference_mode_flags(torch)


def test_no_grad_as_decorator():
    @gpuad.no_grad()
    def f(x):
        return x * 2

    assert gpuad.is_grad_enabled()
    assert not f(leaf([1.0])).requires_grad
    assert gpuad.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["other"] = gpuad.is_grad_enabled()

    with gpuad.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not gpuad.is_grad_enabled()
    assert seen["other"] is True


def test_retain_grad_and_hooks():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)  # replaces the gradient reaching x
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(seen[0], [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [180.0, 360.0])


def test_grad_returns_gradients_without_touching_dot_grad():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    gx, gy = gpuad.grad((x * y).sum(), [x, y])
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_grad_of_a_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * 2
    (gh,) = gpuad.grad((h * h).sum(), [h])
    np.testing.assert_allclose(gh.numpy(), [4.0, 8.0])


def test_grad_unused_input():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="input 1.*not used.*allow_unused=True"):
        gpuad.grad((x * 2).sum(), [x, unused])
    gx, gu = gpuad.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_create_graph_gives_higher_derivatives():
    x = leaf(1.5)
    y = x ** 3
    (g,) = gpuad.grad(y, [x], create_graph=True)
    (gg,) = gpuad.grad(g, [x], create_graph=True)
    (ggg,) = gpuad.grad(gg, [x])
    assert g.item() == pytest.approx(3 * 1.5 ** 2)
    assert gg.item() == pytest.approx(6 * 1.5)
    assert ggg.item() == pytest.approx(6.0)


def test_backward_create_graph_leaves_a_differentiable_grad():
    x = leaf([0.3, -0.7])
    gpuad.tanh(x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (gg,) = gpuad.grad(x.grad.sum(), [x])
    t = np.tanh([0.3, -0.7])
    np.testing.assert_allclose(gg.numpy(), -2 * t * (1 - t * t))


def test_mixed_devices_name_the_op_and_both_devices():
    a = gpuad.tensor([1.0])
    b = gpuad.tensor([1.0], device="strict")
    with pytest.raises(RuntimeError, match=r"mul: expected all tensors to be on the same "
                                           r"device.*cpu and strict"):
        a * b


def test_custom_function_is_gradcheckable(device):
    class Cube(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return scale * x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * ctx.scale * x ** 2 * g, None

    x = leaf([0.5, -1.5, 2.0], device)
    assert gpuad.gradcheck(lambda t: Cube.apply(t, 2.0), [x])
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name == "Cube" and y.device == gpuad.device(device)


def test_custom_function_backward_must_return_one_gradient_per_input():
    class Bad(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="returned 1 gradients.*took 2 inputs"):
        Bad.apply(x, x).sum().backward()


def test_graph_is_freed_after_backward():
    import gc
    import weakref
    gc.disable()
    try:
        x = leaf(np.ones(1000))
        h = x * 2
        ref = weakref.ref(h)
        y = (h * h).sum()
        del h
        assert ref() is not None  # the graph keeps h alive until backward
        y.backward()
        assert ref() is None  # freed by reference counting alone, no cycle
    finally:
        gc.enable()


def test_array_library_errors_name_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=r"add: operands could not be broadcast.*\(2, 3\), \(4,\)"):
        gpuad.ones(2, 3) + gpuad.ones(4)
    with pytest.raises(ValueError, match=r"^mul: .*\(2, 3\), \(3, 2\)"):
        gpuad.ones(2, 3) * gpuad.ones(3, 2)


def test_grad_walks_only_between_outputs_and_inputs():
    """grad(outputs, inputs) runs no rule, fires no hook and frees no node upstream of inputs."""
    a = leaf([1.0, 2.0])
    b = a * 2
    seen = []
    a.register_hook(lambda g: seen.append(g))
    (gb,) = gpuad.grad((b * 3).sum(), b)
    np.testing.assert_allclose(gb.numpy(), [3.0, 3.0])
    assert not seen
    (b * 4).sum().backward()  # b's own node was not freed by the grad() call
    np.testing.assert_allclose(a.grad.numpy(), [8.0, 8.0])
