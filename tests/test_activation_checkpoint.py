"""gpuad.utils.checkpoint: activation recomputation (forward under no_grad, one Node that runs fn
again in backward), against the same computation without checkpointing."""
import tracemalloc

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import backend, nn
from gpuad.utils.checkpoint import checkpoint, checkpoint_sequential


def arr(t):
    return backend.asnumpy(t.array)


def grads(params):
    return [arr(p.grad).copy() for p in params]


def mlp_blocks(n=8, width=32, hidden=512, device="cpu", dropout=0.0):
    layers = []
    for _ in range(n):
        parts = [nn.Linear(width, hidden), nn.ReLU()]
        if dropout:
            parts.append(nn.Dropout(dropout))
        layers.append(nn.Sequential(*parts, nn.Linear(hidden, width)).to(device))
    return layers


def run_blocks(blocks, x, use_checkpoint):
    """A residual stack; returns the loss after backward."""
    for b in blocks:
        b.zero_grad()
    h = x
    for b in blocks:
        h = h + (checkpoint(b, h) if use_checkpoint else b(h))
    loss = (h * h).mean()
    loss.backward()
    return loss


def test_checkpoint_saves_memory_and_gives_the_same_gradients():
    """8 residual MLP blocks (32 -> 512 -> 32, batch 512, float32) on the CPU, tracemalloc peak
    over forward + backward (parameters allocated before tracing): measured 21.3 MB plain and
    6.8 MB checkpointed (0.32x) on the development machine; a plain run keeps every block's two
    (512, 512) hidden arrays, a checkpointed one the (512, 32) block inputs plus one block's
    hidden arrays while it is recomputed. Asserted: under 0.5x, and the gradients match."""
    blocks = mlp_blocks()
    params = [p for b in blocks for p in b.parameters()]
    x = gpuad.randn(512, 32)

    def peak(use_checkpoint):
        tracemalloc.start()
        try:
            loss = run_blocks(blocks, x, use_checkpoint)
            return tracemalloc.get_traced_memory()[1], loss.item(), grads(params)
        finally:
            tracemalloc.stop()

    plain_peak, plain_loss, plain_grads = peak(False)
    ck_peak, ck_loss, ck_grads = peak(True)
    assert ck_peak < 0.5 * plain_peak, (ck_peak, plain_peak)
    assert plain_peak > 12e6  # the plain run really holds its activations (about 21 MB)
    assert ck_loss == plain_loss
    for a, b in zip(ck_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_same_gradients_on_every_device(device):
    blocks = mlp_blocks(n=3, width=4, hidden=8, device=device)
    params = [p for b in blocks for p in b.parameters()]
    x = gpuad.randn(5, 4, device=device, requires_grad=True)
    run_blocks(blocks, x, False)
    plain, plain_x = grads(params), arr(x.grad).copy()
    x.grad = None
    run_blocks(blocks, x, True)
    for a, b in zip(grads(params), plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(arr(x.grad), plain_x, rtol=1e-5, atol=1e-7)


def test_the_result_has_one_node_and_the_forward_records_nothing():
    block = mlp_blocks(n=1, width=3, hidden=4)[0]
    x = gpuad.randn(2, 3, requires_grad=True)
    y = checkpoint(block, x)
    assert y.grad_fn.name == "checkpoint" and y.requires_grad
    # the node's inputs: the argument and the parameters fn reached, nothing from inside fn
    assert [id(t) for t in y.grad_fn.inputs] == [id(x)] + [id(p) for p in block.parameters()]


def test_dropout_draws_the_same_mask_in_the_recomputation(device):
    """y = dropout(x * w): dL/dw = sum(y / w) over the batch holds only if backward saw the
    forward's mask. On the CPU the draws also equal those of a run without checkpointing."""
    x = gpuad.randn(64, 5, device=device) + 3
    w = gpuad.tensor([1.0, 2.0, -1.5, 0.5, 3.0], device=device, requires_grad=True)

    def f(v):
        return F.dropout(v * w, p=0.5)
    gpuad.manual_seed(7)
    y = checkpoint(f, x)
    y.sum().backward()
    np.testing.assert_allclose(arr(w.grad), (arr(y) / arr(w)).sum(0), rtol=1e-5)
    if device != "cuda":
        ck = arr(w.grad).copy()
        w.grad = None
        gpuad.manual_seed(7)
        plain = f(x)
        plain.sum().backward()
        np.testing.assert_array_equal(arr(plain), arr(y))
        np.testing.assert_array_equal(arr(w.grad), ck)


def test_preserve_rng_state_false_draws_again():
    x = gpuad.ones(2000)
    w = gpuad.ones(1, requires_grad=True)
    y = checkpoint(lambda v: F.dropout(v * w, p=0.5), x, preserve_rng_state=False)
    y.sum().backward()
    assert w.grad.item() != pytest.approx(y.sum().item())  # a different mask in backward


def test_parameters_get_gradients_even_when_no_argument_requires_grad():
    """The first block of a stack sees plain data; its parameters are reached only through fn."""
    block = mlp_blocks(n=1, width=3, hidden=4)[0]
    x = gpuad.randn(2, 3)
    checkpoint(block, x).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    got = grads(block.parameters())
    block.zero_grad()
    block(x).sum().backward()
    for a, b in zip(got, grads(block.parameters())):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_parameter_used_inside_and_outside_accumulates():
    w = gpuad.tensor([1.5, -2.0], requires_grad=True)
    x = gpuad.tensor([0.5, 3.0], requires_grad=True)
    loss = (checkpoint(lambda v: gpuad.tanh(v * w), x) * w).sum() + (w * w).sum()
    loss.backward()
    got_w, got_x = arr(w.grad).copy(), arr(x.grad).copy()
    w.grad = x.grad = None
    ((gpuad.tanh(x * w) * w).sum() + (w * w).sum()).backward()
    np.testing.assert_allclose(got_w, arr(w.grad), rtol=1e-6)
    np.testing.assert_allclose(got_x, arr(x.grad), rtol=1e-6)


def test_non_tensor_arguments_keywords_and_several_outputs():
    w = gpuad.tensor([0.5, -1.0, 2.0], requires_grad=True)

    def f(a, k, *, scale, b=None, tag="x"):
        return a * w * scale + b, gpuad.exp(a * w), k, gpuad.tensor([1, 2]), tag

    a = gpuad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gpuad.tensor([0.1, 0.2, 0.3], requires_grad=True)
    o1, o2, k, ints, tag = checkpoint(f, a, 4, scale=2.0, b=b, tag="y")
    assert (k, tag) == (4, "y") and not ints.requires_grad and ints.tolist() == [1, 2]
    (o1.sum() + (3 * o2).sum()).backward()
    got = [arr(t.grad).copy() for t in (a, b, w)]
    for t in (a, b, w):
        t.grad = None
    p1, p2, *_ = f(a, 4, scale=2.0, b=b)
    (p1.sum() + (3 * p2).sum()).backward()
    for g, t in zip(got, (a, b, w)):
        np.testing.assert_allclose(g, arr(t.grad), rtol=1e-6)


def test_an_unused_output_gets_no_gradient_and_breaks_nothing():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    _, second = checkpoint(lambda v: (v * 2, v * v), x)
    second.sum().backward()
    np.testing.assert_allclose(arr(x.grad), [2.0, 4.0])


def test_fn_returning_its_input_does_not_touch_the_input():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    y = checkpoint(lambda v: v, x)
    assert y is not x and x.is_leaf and x.grad_fn is None
    (y * 3).sum().backward()
    np.testing.assert_allclose(arr(x.grad), [3.0, 3.0])


def test_nothing_requiring_grad_and_no_grad_mode_give_plain_results():
    y = checkpoint(lambda v: v * 2, gpuad.ones(2))
    assert not y.requires_grad and y.grad_fn is None
    x = gpuad.ones(2, requires_grad=True)
    with gpuad.no_grad():
        y = checkpoint(lambda v: v * 2, x)
    assert not y.requires_grad


def test_gradcheck_float64_arguments_and_captured_weights():
    x = gpuad.randn(4, 3, dtype=gpuad.float64, requires_grad=True)
    w = gpuad.randn(3, 5, dtype=gpuad.float64, requires_grad=True)
    b = gpuad.randn(5, dtype=gpuad.float64, requires_grad=True)

    def block(v):
        return gpuad.tanh(v @ w + b), gpuad.sigmoid(v).sum(1)
    assert gpuad.gradcheck(lambda x, w, b: checkpoint(block, x), [x, w, b])
    assert gpuad.gradcheck(lambda x, w, b: checkpoint(block, x)[0] * 2, [x, w, b])


def test_grad_through_a_checkpoint_touches_no_dot_grad():
    w = gpuad.tensor([1.0, -2.0], requires_grad=True)
    x = gpuad.tensor([0.5, 0.25], requires_grad=True)
    y = checkpoint(lambda v: (v * w).exp(), x).sum()
    gx, = gpuad.grad(y, [x])
    np.testing.assert_allclose(arr(gx), arr(w) * np.exp(arr(x) * arr(w)), rtol=1e-6)
    assert w.grad is None and x.grad is None


def test_retain_graph_recomputes_again():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    w = gpuad.tensor([3.0, 4.0], requires_grad=True)
    y = checkpoint(lambda v: v * w, x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(arr(x.grad), [6.0, 8.0])
    np.testing.assert_allclose(arr(w.grad), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_second_order_through_a_checkpoint():
    x = gpuad.tensor([0.3, -0.7], dtype=gpuad.float64, requires_grad=True)
    w = gpuad.tensor([1.5, 0.5], dtype=gpuad.float64, requires_grad=True)

    def f(v):
        return (gpuad.sin(v * w) ** 2).sum()
    g_ck, = gpuad.grad(checkpoint(f, x), [x], create_graph=True)
    g_plain, = gpuad.grad(f(x), [x], create_graph=True)
    h_ck = gpuad.grad(g_ck.sum(), [x, w])
    h_plain = gpuad.grad(g_plain.sum(), [x, w])
    for a, b in zip(h_ck, h_plain):
        np.testing.assert_allclose(arr(a), arr(b), rtol=1e-12)


def test_a_parameter_changed_in_place_before_backward_is_caught():
    w = gpuad.tensor([1.0, 2.0], requires_grad=True)
    y = checkpoint(lambda v: v * w, gpuad.ones(2)).sum()
    with gpuad.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_checkpoint_sequential_matches_the_plain_sequential():
    model = nn.Sequential(*[m for b in mlp_blocks(n=3, width=4, hidden=6) for m in b])
    x = gpuad.randn(3, 4, requires_grad=True)
    checkpoint_sequential(model, 3, x).sum().backward()
    got, got_x = grads(model.parameters()), arr(x.grad).copy()
    model.zero_grad()
    x.grad = None
    model(x).sum().backward()
    for a, b in zip(got, grads(model.parameters())):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(got_x, arr(x.grad), rtol=1e-6)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(model, 0, x)


def test_fn_must_return_tensors():
    with pytest.raises(TypeError, match="must return a Tensor or a tuple"):
        checkpoint(lambda v: {"y": v}, gpuad.ones(2, requires_grad=True))
