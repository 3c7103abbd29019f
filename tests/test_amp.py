"""gpuad.autocast (which op runs in which dtype) and gpuad.amp.GradScaler (torch's loss-scaling
algorithm), on the CPU with numpy float16, and on CUDA where there is one."""
import threading
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import amp, backend, nn
from gpuad.testing import strict
from gpuad.utils.checkpoint import checkpoint

f16, f32, f64 = gpuad.float16, gpuad.float32, gpuad.float64


def arr(t):
    return backend.asnumpy(t.array)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- autocast: the casting rules ---------------------------------------------------------------
def test_matrix_products_run_in_float16():
    x, w = gpuad.randn(4, 8), gpuad.randn(3, 8, requires_grad=True)
    img, kernel = gpuad.randn(2, 3, 6, 6), gpuad.randn(4, 3, 3, 3)
    a, b = gpuad.randn(2, 3, 4), gpuad.randn(2, 4, 5)
    with gpuad.autocast("cpu"):
        assert F.linear(x, w, gpuad.zeros(3)).dtype == f16
        assert (x @ w.T).dtype == f16 and gpuad.matmul(x, w.T).dtype == f16
        assert gpuad.mm(x, w.T).dtype == f16 and gpuad.mv(x, w[0]).dtype == f16
        assert gpuad.bmm(a, b).dtype == f16
        assert gpuad.einsum("bij,bjk->bik", a, b).dtype == f16
        assert F.conv2d(img, kernel, padding=1).dtype == f16
        assert nn.Linear(8, 2)(x).dtype == f16


def test_reductions_softmax_losses_and_norms_run_in_float32():
    h = gpuad.randn(4, 6).half()
    target = gpuad.tensor([0, 1, 2, 3])
    with gpuad.autocast("cpu"):
        for name, out in [("sum", h.sum()), ("mean", h.mean(1)), ("var", h.var()),
                          ("logsumexp", h.logsumexp(1)), ("norm", h.norm()),
                          ("cumsum", h.cumsum(1)), ("prod", h.prod(1)),
                          ("softmax", F.softmax(h, dim=1)),
                          ("log_softmax", F.log_softmax(h, dim=1)),
                          ("cross_entropy", F.cross_entropy(h, target)),
                          ("mse_loss", F.mse_loss(h, h)), ("l1_loss", F.l1_loss(h, h)),
                          ("bce_with_logits", F.binary_cross_entropy_with_logits(h, h.sigmoid())),
                          ("layer_norm", F.layer_norm(h, (6,))),
                          ("batch_norm", F.batch_norm(h, None, None, training=True)),
                          ("exp", h.exp()), ("log", h.abs().log()), ("pow", h ** 2)]:
            assert out.dtype == f32, name


def test_other_ops_follow_promotion_and_float64_and_integers_are_never_cast():
    h, x = gpuad.randn(4, 6).half(), gpuad.randn(4, 6)
    d = gpuad.randn(3, 3, dtype=f64)
    i = gpuad.arange(9).reshape(3, 3)
    with gpuad.autocast("cpu"):
        assert gpuad.relu(h).dtype == f16 and (h * 2).dtype == f16 and h.max().dtype == f16
        assert (h + x).dtype == f32 and gpuad.relu(x).dtype == f32
        assert (d @ d).dtype == f64 and d.sum().dtype == f64
        assert (i @ i).dtype == gpuad.int64


def test_outside_the_block_nothing_is_cast_and_the_hook_is_off():
    x = gpuad.randn(2, 2)
    assert gpuad.ops.INTERCEPTORS == ()
    with gpuad.autocast("cpu"):
        assert gpuad.ops.INTERCEPTORS != () and amp.is_autocast_enabled("cpu")
        assert not amp.is_autocast_enabled("cuda")
    assert gpuad.ops.INTERCEPTORS == () and not amp.is_autocast_enabled("cpu")
    assert (x @ x).dtype == f32


def test_enabled_false_nests_and_the_decorator_form():
    x = gpuad.randn(2, 2)

    @gpuad.autocast("cpu")
    def low(v):
        return v @ v
    with gpuad.autocast("cpu"):
        with gpuad.autocast("cpu", enabled=False):
            assert (x @ x).dtype == f32
        assert (x @ x).dtype == f16
    assert low(x).dtype == f16 and (x @ x).dtype == f32


def test_autocast_is_per_thread():
    x = gpuad.randn(2, 2)
    seen, entered, done = [], threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen.append((x @ x).dtype)
        done.set()
    t = threading.Thread(target=other)
    t.start()
    with gpuad.autocast("cpu"):
        entered.set()
        done.wait()
        assert (x @ x).dtype == f16
    t.join()
    assert seen == [f32]


def test_gradients_flow_back_in_the_parameters_dtype():
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, target = gpuad.randn(5, 8), gpuad.tensor([0, 1, 2, 3, 0])
    with gpuad.autocast("cpu"):
        logits = model(x)
        loss = F.cross_entropy(logits, target)
    assert logits.dtype == f16 and loss.dtype == f32
    loss.backward()
    low = [arr(p.grad).copy() for p in model.parameters()]
    assert all(p.grad.dtype == f32 for p in model.parameters())
    model.zero_grad()
    F.cross_entropy(model(x), target).backward()
    for a, p in zip(low, model.parameters()):
        np.testing.assert_allclose(a, arr(p.grad), rtol=2e-2, atol=2e-3)


def test_a_parameter_is_cast_once_per_region_and_again_after_it_changes():
    w = gpuad.randn(3, 3, requires_grad=True)
    x = gpuad.randn(2, 3)
    with gpuad.autocast("cpu"):
        y1, y2 = x @ w, x @ w
        w16 = y1.grad_fn.inputs[1]
        assert w16 is y2.grad_fn.inputs[1] and w16.dtype == f16  # one float16 copy of w
        (y1.sum() + y2.sum()).backward()
        y3 = x @ w  # the copy's node was freed by that backward: cast again
        assert y3.grad_fn.inputs[1] is not w16
        y3.sum().backward()
        with gpuad.no_grad():
            w.sub_(0.1 * w.grad)
        y4, y5 = x @ w, x @ w  # changed in place: cast again, once
        assert y4.grad_fn.inputs[1] is y5.grad_fn.inputs[1] is not w16
        np.testing.assert_array_equal(arr(y4.grad_fn.inputs[1]), arr(w).astype(np.float16))
    assert not amp._state.cache


def test_bad_arguments():
    with pytest.raises(RuntimeError, match="bfloat16 is not available on cpu: "
                                           "numpy has no bfloat16"):
        gpuad.autocast("cpu", dtype=gpuad.bfloat16)
    with pytest.raises(ValueError, match="float16 or gpuad.bfloat16"):
        gpuad.autocast("cpu", dtype=f32)
    with pytest.raises(ValueError, match="device_type must be 'cuda' or 'cpu'"):
        gpuad.autocast("tpu")


@pytest.mark.skipif(gpuad.cuda.is_available(), reason="checks the no-GPU fallback")
def test_cuda_autocast_without_a_gpu_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="autocast is disabled"):
        ctx = gpuad.autocast("cuda")
    with ctx:
        assert gpuad.randn(2, 2).matmul(gpuad.randn(2, 2)).dtype == f32


def test_checkpoint_recomputes_under_the_forwards_autocast():
    w = gpuad.randn(4, 4, requires_grad=True)
    x = gpuad.randn(3, 4)

    def block(v):
        return gpuad.tanh(v @ w)
    with gpuad.autocast("cpu"):
        y = checkpoint(block, x)
        assert y.dtype == f16
    y.float().sum().backward()  # backward outside autocast: the recomputation casts again
    ck = arr(w.grad).copy()
    w.grad = None
    with gpuad.autocast("cpu"):
        y = block(x)
    y.float().sum().backward()
    np.testing.assert_array_equal(ck, arr(w.grad))


# ---- GradScaler --------------------------------------------------------------------------------
def _step_with_grad(scaler, opt, p, value):
    """One iteration whose (scaled) gradient is `value`."""
    scaler.scale(gpuad.tensor(1.0))  # creates the scale on the first call
    p.grad = gpuad.tensor([value])
    scaler.step(opt)
    scaler.update()
    return scaler.get_scale()


PATTERN = [1.0, 2.0, float("inf"), 1.0, 1.0, 1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, 1.0,
           1.0, 1.0, float("-inf"), 1.0]


def test_scale_sequence_on_an_inf_finite_pattern():
    p = gpuad.zeros(1, requires_grad=True)
    scaler = gpuad.amp.GradScaler(init_scale=8.0, growth_interval=3)
    got = [_step_with_grad(scaler, gpuad.optim.SGD([p], lr=0.1), p, v) for v in PATTERN]
    assert got == [8, 8, 4, 4, 4, 8, 8, 4, 4, 4, 8, 8, 8, 16, 16, 8, 8]


def test_scale_sequence_matches_torch():
    torch = _torch()
    if torch is None:
        pytest.skip("torch is not installed")
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1)
    tscaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_factor=3.0, backoff_factor=0.25,
                                   growth_interval=2)
    p = gpuad.zeros(1, requires_grad=True)
    opt = gpuad.optim.SGD([p], lr=0.1)
    scaler = gpuad.amp.GradScaler(init_scale=8.0, growth_factor=3.0, backoff_factor=0.25,
                                  growth_interval=2)
    theirs, ours = [], []
    for v in PATTERN:
        tscaler.scale(torch.tensor(1.0))
        tp.grad = torch.tensor([v])
        tscaler.step(topt)
        tscaler.update()
        theirs.append((tscaler.get_scale(), float(tp.detach()[0])))
        ours.append((_step_with_grad(scaler, opt, p, v), float(arr(p)[0])))
    for (ts, tw), (s, w) in zip(theirs, ours):
        assert s == ts and w == pytest.approx(tw, rel=1e-6)
    assert scaler.state_dict() == tscaler.state_dict()


# numpy warns when float16 overflows (the point of this test) and when inf meets 0 after; CuPy and
# torch do not
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_float16_overflow_skips_the_step_and_backs_off_then_training_proceeds():
    """float32 master weights, a float16 forward: with the initial scale of 2**16 the scaled
    gradient overflows float16 (max 65504) on its way back, so steps are skipped and the scale
    halves until the float16 gradients fit; then steps happen and the scale stays."""
    gpuad.manual_seed(0)
    model = nn.Linear(16, 4)
    opt = gpuad.optim.SGD(model.parameters(), lr=1e-3)
    scaler = gpuad.amp.GradScaler(growth_interval=1000)
    x = gpuad.randn(64, 16) * 4
    scales, changed = [], []
    for _ in range(8):
        before = arr(model.weight).copy()
        opt.zero_grad()
        with gpuad.autocast("cpu"):
            loss = model(x).sum()
        scaler.scale(loss).backward()
        assert model.weight.grad.dtype == f32
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        changed.append(not np.array_equal(before, arr(model.weight)))
    skipped = changed.index(True)
    assert skipped >= 1 and all(changed[skipped:]) and not any(changed[:skipped])
    assert scales[:skipped] == [2.0 ** (15 - k) for k in range(skipped)]
    assert set(scales[skipped:]) == {scales[skipped - 1]}
    np.testing.assert_allclose(arr(model.weight.grad), (arr(x).sum(0)[None, :] * np.ones((4, 1))),
                               rtol=1e-2)  # unscaled: the true gradient of sum(x @ W.T)


def test_unscale_then_clip_then_step():
    p = gpuad.tensor([1.0, 1.0], requires_grad=True)
    opt = gpuad.optim.SGD([p], lr=1.0)
    scaler = gpuad.amp.GradScaler(init_scale=4.0)
    scaler.scale((p * gpuad.tensor([3.0, 4.0])).sum()).backward()
    np.testing.assert_array_equal(arr(p.grad), [12.0, 16.0])
    scaler.unscale_(opt)
    np.testing.assert_array_equal(arr(p.grad), [3.0, 4.0])
    nn.utils.clip_grad_norm_([p], 1.0)
    scaler.step(opt)  # does not unscale again
    np.testing.assert_allclose(arr(p), [1 - 0.6, 1 - 0.8], rtol=1e-5)
    scaler.update()
    assert scaler.get_scale() == 4.0


def test_misuse_raises_like_torch():
    p = gpuad.zeros(1, requires_grad=True)
    opt = gpuad.optim.SGD([p], lr=0.1)
    scaler = gpuad.amp.GradScaler()
    with pytest.raises(RuntimeError, match="scale\\(loss\\)"):
        scaler.step(opt)
    scaler.scale(gpuad.tensor(1.0))
    with pytest.raises(RuntimeError, match="no inf checks"):
        scaler.step(opt)
    scaler = gpuad.amp.GradScaler()
    scaler.scale(gpuad.tensor(1.0))
    p.grad = gpuad.tensor([1.0])
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    p.grad = gpuad.tensor([1.0]).half()
    with pytest.raises(ValueError, match="unscale FP16 gradients"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="closure"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(ValueError, match="growth_factor"):
        gpuad.amp.GradScaler(growth_factor=1.0)
    with pytest.raises(TypeError, match="init_scale=1024.0 by keyword"):
        gpuad.amp.GradScaler(1024.0)
    assert gpuad.amp.GradScaler("cpu", 8.0).get_scale() == 8.0  # torch.amp's positional order


def test_disabled_scaler_is_a_pass_through():
    p = gpuad.zeros(1, requires_grad=True)
    opt = gpuad.optim.SGD([p], lr=1.0)
    scaler = gpuad.amp.GradScaler(enabled=False)
    loss = gpuad.tensor(2.0)
    assert scaler.scale(loss) is loss and scaler.get_scale() == 1.0
    p.grad = gpuad.tensor([float("inf")])
    scaler.step(opt)  # not skipped: no checks when disabled
    scaler.update()
    assert not np.isfinite(arr(p)[0]) and scaler.state_dict() == {}


def test_state_dict_round_trip():
    p = gpuad.zeros(1, requires_grad=True)
    opt = gpuad.optim.SGD([p], lr=0.1)
    a = gpuad.amp.GradScaler(init_scale=16.0, growth_interval=5)
    for v in (1.0, float("inf"), 1.0, 1.0):
        _step_with_grad(a, opt, p, v)
    state = a.state_dict()
    assert state == {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                     "growth_interval": 5, "_growth_tracker": 2}
    b = gpuad.amp.GradScaler()
    b.load_state_dict(state)
    assert b.get_scale() == 8.0 and b.state_dict() == state
    seq_a = [_step_with_grad(a, opt, p, 1.0) for _ in range(4)]
    seq_b = [_step_with_grad(b, opt, p, 1.0) for _ in range(4)]
    assert seq_a == seq_b == [8.0, 8.0, 16.0, 16.0]
    with pytest.raises(RuntimeError, match="empty"):
        b.load_state_dict({})
    a.update(new_scale=3.0)
    assert a.get_scale() == 3.0


def test_scaling_needs_no_host_read_and_step_reads_once(monkeypatch):
    """On the strict backend (CuPy's rules): scale, backward, unscale_ and update never make the
    host wait; step reads the overflow flag once."""
    p = gpuad.ones(3, device="strict", requires_grad=True)
    q = gpuad.ones(2, device="strict", requires_grad=True)
    opt = gpuad.optim.SGD([p, q], lr=0.1)
    scaler = gpuad.amp.GradScaler()
    reads, real = [], backend.asnumpy
    for step in range(2):
        opt.zero_grad()
        with strict.forbid_host_sync():
            scaler.scale((p * 2).sum() + (q * 3).sum()).backward()
            scaler.unscale_(opt)
        monkeypatch.setattr(backend, "asnumpy", lambda a: reads.append(a) or real(a))
        scaler.step(opt)
        monkeypatch.setattr(backend, "asnumpy", real)
        assert len(reads) == step + 1
        with strict.forbid_host_sync():
            scaler.update()
    np.testing.assert_allclose(arr(p), [0.6] * 3, rtol=1e-6)
    assert scaler.get_scale() == 2.0 ** 16


# ---- CUDA --------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cuda_autocast_rules_and_master_gradients():
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).to("cuda")
    x, target = gpuad.randn(16, 32, device="cuda"), gpuad.randint(0, 10, (16,), device="cuda")
    with gpuad.autocast("cuda"):
        logits = model(x)
        loss = F.cross_entropy(logits, target)
        with gpuad.autocast("cpu"):  # a CPU policy does not touch cuda tensors' dtype rules
            assert (x @ x.T).dtype == f16
        assert (x.cpu() @ x.cpu().T).dtype == f32  # cpu tensors are not autocast by "cuda"
    assert logits.dtype == f16 and loss.dtype == f32
    loss.backward()
    assert all(p.grad.dtype == f32 and p.grad.device == gpuad.device("cuda")
               for p in model.parameters())


@pytest.mark.gpu
def test_cuda_grad_scaler_training_loop_skips_overflow():
    gpuad.manual_seed(0)
    model = nn.Linear(16, 4).to("cuda")
    opt = gpuad.optim.SGD(model.parameters(), lr=1e-3)
    scaler = gpuad.amp.GradScaler(growth_interval=1000)
    x = gpuad.randn(64, 16, device="cuda") * 4
    scales, changed = [], []
    for _ in range(8):
        before = arr(model.weight).copy()
        opt.zero_grad()
        with gpuad.autocast("cuda"):
            loss = model(x).sum()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        changed.append(not np.array_equal(before, arr(model.weight)))
    skipped = changed.index(True)
    assert skipped >= 1 and all(changed[skipped:])
    assert scales[:skipped] == [2.0 ** (15 - k) for k in range(skipped)]
    assert scaler._scale.device == gpuad.device("cuda")


@pytest.mark.gpu
def test_cuda_bfloat16_works_or_says_why():
    reason = backend.cuda.bfloat16_unsupported("cuda")
    if reason is not None:
        with pytest.raises(RuntimeError, match="bfloat16 is not available on cuda"):
            gpuad.autocast("cuda", dtype=gpuad.bfloat16)
        return
    x = gpuad.randn(4, 4, device="cuda")
    with gpuad.autocast("cuda", dtype=gpuad.bfloat16):
        y = x @ x
        assert y.dtype == gpuad.bfloat16 and y.sum().dtype == f32


def test_no_warning_when_cpu_autocast_is_used():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with gpuad.autocast("cpu"):
            pass


def test_backward_inside_autocast_through_a_checkpoint_sharing_a_parameter():
    """w is used inside and outside the checkpoint, and backward runs inside the region: the
    recomputation must not reuse (and free) the outer graph's float16 copy of w."""
    w = gpuad.randn(4, 4, requires_grad=True)
    x = gpuad.randn(3, 4)
    with gpuad.autocast("cpu"):
        h = x @ w  # w's float16 copy is made (and cached) before the checkpoint
        y = checkpoint(lambda v: v @ w, h).float().sum()
        y.backward()
        ck = arr(w.grad).copy()
    w.grad = None
    with gpuad.autocast("cpu"):
        ((x @ w) @ w).float().sum().backward()
    # the plain run adds w's two float16 gradients before casting up, the checkpointed one after
    np.testing.assert_allclose(ck, arr(w.grad), rtol=2e-3, atol=2e-3)
