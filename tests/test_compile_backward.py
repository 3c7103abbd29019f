"""gpuad.compile of a function whose result the caller differentiates (`gpuad.compile(model)` with
the loss, backward() and the optimizer step outside): the forward replays, and the outputs carry a
recorded backward that computes bit for bit eager's gradients on the CPU, into parameters,
tensor arguments and the caller's own graph."""
import collections
import dataclasses
import tracemalloc
import types
import warnings
import weakref

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
import models
from gpuad import nn
from gpuad.compiler import CompileWarning, OptimizedModule
from gpuad.testing import gradcheck


def _host(t):
    return gpuad.backend.asnumpy(t.array).copy()


def _same(a, b, device):
    if device == "cuda":
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    else:
        assert a.dtype == b.dtype and np.array_equal(a, b)


def _train(build, batches, device, compiled, loss_of):
    """Train from seed 0 on the batches with loss_of(forward, x, y) and backward() outside the
    compiled part; (losses, parameters, buffers, the forward)."""
    gpuad.manual_seed(0)
    model, opt, forward = build(device)
    if compiled:
        forward = gpuad.compile(forward)
    losses = []
    for x, y in batches:
        loss = loss_of(forward, gpuad.tensor(x, device=device), gpuad.tensor(y, device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(_host(loss))
    return (losses, [_host(p) for p in model.parameters()], [_host(b) for b in model.buffers()],
            forward)


def _classify(forward, x, y):
    return F.cross_entropy(forward(x), y)


def _mlp_batch(rng, batch=8):
    return rng.standard_normal((batch, 12)).astype(np.float32), rng.integers(0, 5, batch)


def _mlp(device):
    model = models.MLP(12, (16, 16), 5).to(device)
    return model, gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model


def _resnet(device):  # BatchNorm: running statistics updated by every replay
    model = models.ResNet(widths=(4, 8, 8)).to(device)
    return model, gpuad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), model


def _lenet_loss(device):  # model and loss compiled together, backward outside
    model = models.LeNet5(channels=(2, 3), hidden=(6,), image_size=12).to(device)

    def loss(x, y):
        return F.cross_entropy(model(x), y)
    return model, gpuad.optim.Adam(model.parameters(), lr=1e-2), loss


def _gpt(device):  # dropout draws, tied weights, AdamW
    model = models.GPT(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8,
                       dropout=0.2).to(device)
    return model, gpuad.optim.AdamW(model.parameters(), lr=1e-2), model


def _tokens(forward, x, y):
    return F.cross_entropy(forward(x).reshape(-1, 11), y.reshape(-1))


CASES = {
    "mlp": (_mlp, _mlp_batch, _classify),
    "resnet": (_resnet, lambda rng: (rng.standard_normal((4, 1, 12, 12)).astype(np.float32),
                                     rng.integers(0, 10, 4)), _classify),
    "lenet_loss": (_lenet_loss, lambda rng: (rng.standard_normal((4, 1, 12, 12)).astype(
        np.float32), rng.integers(0, 10, 4)), lambda f, x, y: f(x, y)),
    "gpt": (_gpt, lambda rng: (rng.integers(0, 11, (3, 6)), rng.integers(0, 11, (3, 6))),
            _tokens),
}


@pytest.mark.parametrize("case", CASES)
def test_a_compiled_forward_trains_as_the_eager_one(device, case):
    build, make, loss_of = CASES[case]
    rng = np.random.default_rng(0)
    batches = [make(rng) for _ in range(20 if case == "mlp" else 6)]
    eager = _train(build, batches, device, False, loss_of)
    compiled = _train(build, batches, device, True, loss_of)
    for a, b in zip(eager[0] + eager[1] + eager[2], compiled[0] + compiled[1] + compiled[2]):
        _same(a, b, device)
    forward = compiled[3]
    assert forward.traces == 1 and len(forward.programs()) == 1  # one recording, then replays


def _pools_first(program):
    """How many max poolings the forward runs before their ReLU (compiler/rewrite.py)."""
    instrs = program.instrs
    return sum(a.name == "max_pool" and b.name == "relu" and b.reads == (a.outs,)
               for a, b in zip(instrs, instrs[1:]))


def _lenet(device):
    model = models.LeNet5(channels=(2, 3), hidden=(6,), image_size=12).to(device)
    return model, gpuad.optim.Adam(model.parameters(), lr=1e-2), model


def _lenet_batch(rng):
    return rng.integers(-2, 3, (4, 1, 12, 12)).astype(np.float32), rng.integers(0, 10, 4)


def test_a_compiled_model_pools_before_its_relus_with_eager_gradients(device):
    # the rewrite on a recording whose backward is its own program: the first call's outputs
    # carry the maxima before the ReLU, which the traced run never made (rewrite.remade); ties
    # from integer inputs
    batches = [_lenet_batch(np.random.default_rng(1)) for _ in range(5)]
    eager = _train(_lenet, batches, device, False, _classify)
    compiled = _train(_lenet, batches, device, True, _classify)
    for a, b in zip(eager[0] + eager[1], compiled[0] + compiled[1]):
        _same(a, b, device)
    assert [_pools_first(p) for p in compiled[3].programs()] == [2]


@pytest.mark.parametrize("detached", [False, True])
def test_a_compiled_model_returning_a_relu_output_keeps_its_pooling_after_it(detached):
    # the first ReLU's output is a result too (one the caller may differentiate through, or a
    # detached one it only reads): the replay must make it
    def build(device):
        model, opt, _ = _lenet(device)

        def forward(x):
            h = F.relu(model.features[0](x))
            logits = model.classifier(model.features[3:](F.max_pool2d(h, 2)))
            return logits, h.detach() if detached else h
        return model, opt, forward

    seen = []

    def loss_of(forward, x, y):
        logits, h = forward(x)
        seen.append(_host(h))
        return F.cross_entropy(logits, y) + (0 if detached else h.mean())
    batches = [_lenet_batch(np.random.default_rng(2)) for _ in range(4)]
    eager = _train(build, batches, "cpu", False, loss_of)
    eager_seen, seen[:] = list(seen), []
    compiled = _train(build, batches, "cpu", True, loss_of)
    for a, b in zip(eager[0] + eager[1] + eager_seen, compiled[0] + compiled[1] + seen):
        _same(a, b, "cpu")
    assert [_pools_first(p) for p in compiled[3].programs()] == [1]  # the second stage's only


def test_a_compiled_model_under_autocast_trains_with_a_grad_scaler_outside():
    # float16 casts recorded with the forward; the region's cache of cast parameters is the
    # caller's, which the recorded call neither reads nor fills
    rng = np.random.default_rng(5)
    batches = [_mlp_batch(rng, 16) for _ in range(6)]
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model = models.MLP(12, (16,), 5)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        scaler = gpuad.amp.GradScaler("cpu")
        forward = gpuad.compile(model) if compiled else model
        losses = []
        for x, y in batches:
            with gpuad.autocast("cpu", dtype=gpuad.float16):
                loss = F.cross_entropy(forward(gpuad.tensor(x)), gpuad.tensor(y))
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(_host(loss))
        found[compiled] = losses + [_host(p) for p in model.parameters()]
        if compiled:
            assert forward.traces == 1
    for a, b in zip(found[False], found[True]):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_compiled_step_with_a_grad_scaler_falls_back_saying_what_to_compile():
    model = models.MLP(12, (16,), 5)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    scaler = gpuad.amp.GradScaler("cpu")

    @gpuad.compile
    def step(x, y):
        with gpuad.autocast("cpu", dtype=gpuad.float16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    with pytest.warns(CompileWarning, match=r"GradScaler.*gpuad\.compile\(model\)"):
        step(gpuad.randn(8, 12), gpuad.tensor(np.arange(8) % 5))


def test_is_compiling_is_true_only_while_a_call_is_recorded():
    seen = collections.deque()  # (a list growing every call would be a change a replay skips)

    @gpuad.compile
    def step(x):
        seen.append(gpuad.compiler.is_compiling())
        if not gpuad.compiler.is_compiling():
            print(x.sum().item())  # a host read: kept out of the recording
        return x * 2
    assert not gpuad.compiler.is_compiling()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for _ in range(3):
            step(gpuad.ones(2))
    assert list(seen) == [True] and step.traces == 1


def test_the_output_carries_the_compiled_backward():
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    out = compiled(gpuad.randn(4, 12))
    assert repr(out._node) == "<CompiledFunctionBackward>" and out.requires_grad
    out = compiled(gpuad.randn(4, 12))  # a replay's too
    assert repr(out._node) == "<CompiledFunctionBackward>"
    with gpuad.no_grad():  # a program of its own, without a backward
        assert compiled(gpuad.randn(4, 12))._node is None
    assert compiled.traces == 2


def _twice(compiled):
    """Gradients of an input that requires grad and of a weight that the compiled block shares
    with the eager layers around it, over three calls."""
    gpuad.manual_seed(0)
    first, head = nn.Linear(6, 6), nn.Linear(6, 3)
    block = nn.Sequential(nn.Linear(6, 6), nn.Tanh())

    def inner(h):  # the compiled part reads first.weight too
        return block(h) + F.linear(h, first.weight)
    inner = gpuad.compile(inner) if compiled else inner
    rng = np.random.default_rng(3)
    found = []
    for _ in range(3):
        x = gpuad.tensor(rng.standard_normal((5, 6)).astype(np.float32), requires_grad=True)
        h = first(x)  # the compiled part's argument has a history: the walk goes on into it
        loss = F.cross_entropy(head(inner(h)), gpuad.tensor(rng.integers(0, 3, 5)))
        for p in (first.weight, first.bias, head.weight, block[0].weight):
            p.grad = None
        loss.backward()
        found.append([_host(x.grad)] + [_host(p.grad) for p in (first.weight, first.bias,
                                                                head.weight, block[0].weight)])
    return found, inner


def test_gradients_reach_arguments_their_history_and_shared_weights_once():
    eager, _ = _twice(False)
    compiled, inner = _twice(True)
    for a, b in zip(eager, compiled):
        for ga, gb in zip(a, b):
            assert np.array_equal(ga, gb)
    assert inner.traces == 1


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)

    def forward(self, x):
        h = self.body(x)
        return h.tanh(), {"double": h * 2}


@pytest.mark.parametrize("uses", ["both", "first", "second"])
def test_several_outputs_share_one_backward(uses):
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model = _TwoHeads()
        forward = gpuad.compile(model) if compiled else model
        grads = []
        for i in range(3):
            a, b = forward(gpuad.randn(5, 4))
            b = b["double"]
            loss = {"both": a.sum() + (b * b).sum(), "first": a.sum(), "second": b.sum()}[uses]
            model.zero_grad()
            loss.backward()
            grads.append([_host(p.grad) for p in model.parameters()])
        found[compiled] = grads
    for a, b in zip(found[False], found[True]):
        for ga, gb in zip(a, b):
            assert np.array_equal(ga, gb)


_Output = collections.namedtuple("_Output", "logits aux")


@dataclasses.dataclass(frozen=True)
class _Frozen:
    logits: object
    scale: float = 0.5


@pytest.mark.parametrize("record", [
    lambda logits, aux: _Output(logits, aux),
    lambda logits, aux: _Frozen(logits + aux),
    lambda logits, aux: types.SimpleNamespace(logits=logits, aux=aux, step=3),
], ids=["namedtuple", "frozen_dataclass", "namespace"])
def test_a_result_record_is_built_anew_by_every_replay(record):
    # a model returning its outputs as a record (logits and an auxiliary loss): each call gets a
    # record of its own tensors, which carry the backward
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model = _TwoHeads()

        def forward(x):
            logits, extra = model(x)
            return record(logits, extra["double"].mean())
        forward = gpuad.compile(forward) if compiled else forward
        results = []
        for _ in range(3):
            out = forward(gpuad.randn(5, 4))
            model.zero_grad()
            loss = out.logits.sum() + getattr(out, "aux", 0)
            loss.backward()
            fields = dataclasses.astuple(out) if dataclasses.is_dataclass(out) else (
                tuple(vars(out).values()) if isinstance(out, types.SimpleNamespace) else out)
            results.append([type(out)] + [_host(v) if isinstance(v, gpuad.Tensor) else v
                                          for v in fields]
                           + [_host(p.grad) for p in model.parameters()])
        found[compiled] = results
        if compiled:
            assert forward.traces == 1
    for a, b in zip(found[False], found[True]):
        assert a[0] is b[0]
        for va, vb in zip(a[1:], b[1:]):
            assert np.array_equal(va, vb)


def test_gradcheck_through_a_compiled_function_with_broadcasting():
    @gpuad.compile
    def layer(x, w, b):
        h = (x @ w + b).tanh()  # b (3,) broadcasts over the rows
        return h, h * b

    x = gpuad.randn(4, 2, dtype=gpuad.float64, requires_grad=True)
    w = gpuad.randn(2, 3, dtype=gpuad.float64, requires_grad=True)
    b = gpuad.randn(3, dtype=gpuad.float64, requires_grad=True)
    assert gradcheck(layer, (x, w, b))
    assert layer.traces == 1 and layer.programs()  # the finite differences replayed it


def test_retain_graph_create_graph_and_a_second_backward_behave_as_eagerly():
    model = _TwoHeads()
    compiled = gpuad.compile(model)
    x = gpuad.randn(3, 4)
    for _ in range(2):  # the recording's outputs, then a replay's
        out, _ = compiled(x)
        model.zero_grad()
        out.sum().backward(retain_graph=True)
        once = _host(model.body.weight.grad)
        out.sum().backward()
        np.testing.assert_allclose(_host(model.body.weight.grad), 2 * once, rtol=1e-6)
        with pytest.raises(RuntimeError, match="a second time"):
            out.sum().backward()
    # create_graph: the first-order gradient is eager's, and differentiating it raises
    out, _ = compiled(x)
    weight_grad, = gpuad.autograd.grad(out.sum(), model.body.weight, create_graph=True)
    eager, = gpuad.autograd.grad(model(x)[0].sum(), model.body.weight, create_graph=True)
    np.testing.assert_array_equal(_host(weight_grad), _host(eager))
    with pytest.raises(RuntimeError, match="not differentiable again"):
        weight_grad.sum().backward()


def test_func_grad_of_a_compiled_model_gives_eager_gradients():
    # gpuad.func.grad differentiates with create_graph while the parameters require grad
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    x = gpuad.randn(4, 12)
    for _ in range(2):
        found = gpuad.func.grad(lambda v: compiled(v).pow(2).sum())(x)
        np.testing.assert_array_equal(_host(found), _host(
            gpuad.func.grad(lambda v: model(v).pow(2).sum())(x)))
    assert compiled.traces == 1


def test_compile_of_a_module_is_a_module_as_in_torch():
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    assert isinstance(compiled, OptimizedModule) and isinstance(compiled, nn.Module)
    assert compiled._orig_mod is model and compiled.net is model.net  # the model's attributes
    assert list(compiled.state_dict()) == ["_orig_mod." + k for k in model.state_dict()]
    assert [p for p in compiled.parameters()] == [p for p in model.parameters()]
    x = gpuad.randn(4, 12)
    compiled(x)
    compiled.eval()  # reaches the model: a program of its own
    assert not model.training
    np.testing.assert_array_equal(_host(compiled(x)), _host(model(x)))
    assert compiled.traces == 2


def test_module_compile_compiles_the_forward_in_place_as_in_torch():
    rng = np.random.default_rng(2)
    batches = [_mlp_batch(rng) for _ in range(5)]
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model, opt, _ = _mlp("cpu")
        keys = list(model.state_dict())
        if compiled:
            assert model.compile() is None
        losses = []
        for x, y in batches:
            loss = _classify(model, gpuad.tensor(x), gpuad.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(_host(loss))
        assert list(model.state_dict()) == keys  # no _orig_mod. prefix
        found[compiled] = losses + [_host(p) for p in model.parameters()]
    for a, b in zip(found[False], found[True]):
        assert np.array_equal(a, b)
    assert model.forward.traces == 1 and repr(model(gpuad.randn(2, 12))._node) == (
        "<CompiledFunctionBackward>")


def test_a_deep_copy_of_a_compiled_model_compiles_its_own_parameters():
    # AveragedModel deep-copies the model it averages: the copy's programs must read the copy
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    x = gpuad.randn(4, 12)
    compiled(x)
    ema = gpuad.optim.swa_utils.AveragedModel(
        compiled, multi_avg_fn=gpuad.optim.swa_utils.get_ema_multi_avg_fn(0.5))
    opt = gpuad.optim.SGD(compiled.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        compiled(x).sum().backward()
        opt.step()
        ema.update_parameters(compiled)
    with gpuad.no_grad():
        averaged = ema.module._orig_mod
        np.testing.assert_array_equal(_host(ema(x)), _host(averaged(x)))
        assert not np.array_equal(_host(ema(x)), _host(model(x)))
    assert ema.module.traces == 1 and compiled.traces == 1


def test_a_checkpointed_compiled_block_gives_its_parameters_their_gradients():
    # checkpoint learns from the ops it sees which tensors its block uses; a replay runs no op,
    # so it shows them the tensors it reads (without that, calls after the first left the
    # block's parameters without gradients, silently)
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        block = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
        head = nn.Linear(4, 2)
        forward = gpuad.compile(block) if compiled else block
        grads = []
        for _ in range(4):
            x = gpuad.randn(5, 4, requires_grad=True)
            loss = head(gpuad.utils.checkpoint.checkpoint(forward, x)).pow(2).sum()
            block.zero_grad()
            loss.backward()
            grads += [_host(x.grad)] + [_host(p.grad) for p in block.parameters()]
        found[compiled] = grads
        if compiled:  # the forward under no_grad, the recomputation with its backward
            assert forward.traces == 2
    for a, b in zip(found[False], found[True]):
        assert np.array_equal(a, b)


def test_vmap_over_a_compiled_model_runs_it_op_by_op():
    # per-example outputs and gradients: vmap's batching rules run the function (it used to
    # raise, the trace reading a batched tensor's values)
    model = nn.Linear(3, 2)
    compiled = gpuad.compile(model)
    x = gpuad.randn(5, 3)
    np.testing.assert_array_equal(_host(gpuad.func.vmap(compiled)(x)), _host(model(x)))
    weight = model.weight.detach()
    per_example = gpuad.func.vmap(gpuad.func.grad(
        lambda w, xi: gpuad.func.functional_call(compiled, {"_orig_mod.weight": w}, (xi,)).sum()),
        in_dims=(None, 0))(weight, x)
    np.testing.assert_allclose(_host(per_example), np.broadcast_to(_host(x)[:, None, :],
                                                                   (5, 2, 3)), rtol=1e-6)
    assert compiled.traces == 0


def test_a_frozen_parameter_retraces_and_gets_no_gradient():
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    x = gpuad.randn(4, 12)
    first = model.net[1].weight
    for frozen in (False, True, False):
        first.requires_grad_(not frozen)
        model.zero_grad()
        compiled(x).sum().backward()
        assert (first.grad is None) == frozen and model.net[3].weight.grad is not None
    assert compiled.traces == 2  # the third call finds the first program again


@pytest.mark.parametrize("register", ["hook", "post_accumulate_grad_hook"])
def test_hooks_on_parameters_run_after_the_compiled_backward(register):
    # autograd's walk runs them, as eagerly: hooks put on before tracing and after it
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model = models.MLP(12, (16,), 5)
        forward = gpuad.compile(model) if compiled else model
        weight, calls = model.net[1].weight, []

        def hook(arg):
            calls.append(1)
            if register == "hook":
                return arg * 0.5
            arg.grad.mul_(0.5)
        grads = []
        for i in range(4):
            if i in (0, 2):  # a second hook, after the recording
                getattr(weight, f"register_{register}")(hook)
            model.zero_grad()
            forward(gpuad.randn(4, 12)).sum().backward()
            grads.append(_host(weight.grad))
        found[compiled] = grads, len(calls)
        if compiled:
            assert forward.traces == 1
    assert found[True][1] == found[False][1] == 6
    for a, b in zip(found[False][0], found[True][0]):
        assert np.array_equal(a, b)


def test_a_forward_that_runs_a_backward_of_its_own_still_refuses_hooks():
    # a gradient penalty inside the forward: its walk would run the hook, which a replay skips
    weight = gpuad.randn(3, requires_grad=True)
    weight.register_hook(lambda g: g * 2)

    def penalised(x):
        y = (x * weight).sum()
        g, = gpuad.autograd.grad(y, x, create_graph=True)
        return y + (g * g).sum()
    compiled = gpuad.compile(penalised)
    with pytest.warns(CompileWarning, match="has hooks"):
        compiled(gpuad.randn(3, requires_grad=True)).backward()


def test_a_forward_that_reads_the_host_still_falls_back():
    model = models.MLP(12, (16,), 5)

    def forward(x):
        out = model(x)
        return out / float(out.abs().max().item())
    compiled = gpuad.compile(forward)
    x = gpuad.randn(4, 12)
    with pytest.warns(CompileWarning, match="item"):
        out = compiled(x)
    out.sum().backward()  # the eager result's graph is intact
    assert model.net[1].weight.grad is not None


@pytest.mark.parametrize("inside", ["returned_leaf", "hook", "retain_grad"])
def test_what_a_replayed_backward_would_skip_inside_falls_back(inside):
    # a leaf made with requires_grad and returned would get no .grad from a replay; a hook or
    # retain_grad() on a tensor computed inside would not run
    weight = gpuad.ones(4, requires_grad=True)
    hook_calls = []

    def forward(x):
        scale = gpuad.ones(4, requires_grad=True) if inside == "returned_leaf" else weight
        h = x * scale
        if inside == "hook":
            h.register_hook(lambda g: hook_calls.append(g) or g * 2)
        elif inside == "retain_grad":
            h.retain_grad()
        return h.sum(), scale
    compiled = gpuad.compile(forward)
    match = {"returned_leaf": "made with requires_grad", "hook": "hook"}.get(inside, inside)
    with pytest.warns(CompileWarning, match=match):
        compiled(gpuad.randn(3, 4, requires_grad=True))[0].backward()
    assert compiled.fallback is not None
    # found before the recording's own walk, which would have run the hook a second time
    assert len(hook_calls) == (inside == "hook")


@pytest.mark.parametrize("write", ["operator", "out_keyword", "out_positional", "module_out",
                                   "copyto", "ufunc_at", "fill", "function_out", "method_out"])
def test_a_backward_that_writes_into_a_forward_value_falls_back(write):
    # a custom Function's backward scaling its saved input in place: that input is the forward's
    # value h, which a replay's backward would find already scaled by an earlier walk
    class ScaledSquare(gpuad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            if write == "operator":
                x *= 2
            elif write == "out_keyword":
                np.multiply(x, 2, out=x)
            elif write == "out_positional":
                np.multiply(x, 2, x)
            elif write == "module_out":  # through the array's module, as gpuad's rules call it
                gpuad.backend.xp_of(x).multiply(x, 2, x)
            elif write == "copyto":
                np.copyto(x, 2 * x)
            elif write == "ufunc_at":
                np.multiply.at(x, 0, 2)
            elif write == "fill":
                x.fill(2)
            elif write == "function_out":  # out passed positionally (its signature tells)
                x = np.clip(x, -1e9, 1e9, x)
            else:  # the same through a method, known only once it returns its input
                x = x.clip(-1e9, 1e9, x)
            return x * g

    weight = gpuad.ones(4, requires_grad=True)
    x = gpuad.randn(3, 4)
    ScaledSquare.apply(x * weight).sum().backward()
    eager, weight.grad = weight.grad.numpy(), None
    compiled = gpuad.compile(lambda x: ScaledSquare.apply(x * weight).sum())
    with pytest.warns(CompileWarning, match="writes into a value of the forward"):
        compiled(x).backward()
    assert compiled.fallback is not None
    # the recording stopped its own walk before the write, so the one walk that ran was the
    # caller's (a method's positional out tells only afterwards: that walk wrote once)
    if write != "method_out":
        np.testing.assert_array_equal(weight.grad.numpy(), eager)


def test_a_gradient_penalty_with_its_own_create_graph_walk_replays():
    # WGAN-GP: the forward differentiates the critic at an interpolate it makes with
    # requires_grad (create_graph); the caller's backward goes through that walk too
    found = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        critic = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

        def critic_loss(real, fake):
            eps = gpuad.rand(real.shape[0], 1)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            g, = gpuad.autograd.grad(critic(mix).sum(), mix, create_graph=True)
            penalty = ((g.norm(dim=1) - 1) ** 2).mean()
            return critic(fake).mean() - critic(real).mean() + 10 * penalty
        loss_of = gpuad.compile(critic_loss) if compiled else critic_loss
        opt = gpuad.optim.Adam(critic.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        values = []
        for _ in range(4):
            real, fake = (gpuad.tensor(rng.standard_normal((6, 4)).astype(np.float32))
                          for _ in range(2))
            loss = loss_of(real, fake)
            opt.zero_grad()
            loss.backward()
            opt.step()
            values.append(_host(loss))
        found[compiled] = values + [_host(p) for p in critic.parameters()]
        if compiled:
            assert loss_of.traces == 1 and loss_of.fallback is None
    for a, b in zip(found[False], found[True]):
        assert np.array_equal(a, b)


def _backward_peak(forward, x, steps=3):
    """The most memory held above what was held before calling the forward and backward."""
    for _ in range(2):
        forward(x).sum().backward()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            forward(x).sum().backward()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_compiled_forward_and_backward_peak_no_higher_than_eager():
    gpuad.manual_seed(0)
    model = nn.Sequential(*[layer for _ in range(6) for layer in (nn.Linear(128, 128), nn.ReLU())])
    x = gpuad.randn(128, 128)
    eager = _backward_peak(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled = _backward_peak(gpuad.compile(model), x)
    assert compiled <= eager


def test_the_compiled_backward_frees_each_residual_after_its_last_use():
    # as eager frees each node's saved arrays once its rule has run: a residual kept to the end
    # of the walk would raise its peak by every activation of the model
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    compiled = gpuad.compile(model)
    x = gpuad.randn(8, 16)
    compiled(x)
    out = compiled(x)  # a replay
    kept = {id(x.array)} | {id(p.array) for p in model.parameters()}
    produced = [a for a in out._node.kwargs["saved"][0] if id(a) not in kept]
    assert len(produced) == 2  # the two ReLU outputs
    returned, freed = [], []
    for a in produced:
        weakref.finalize(a, lambda: freed.append(bool(returned)))
    del a, produced
    replay = compiled.programs()[0].backward_replay
    run = replay.backward

    def watched(box, seeds):
        grads = run(box, seeds)
        returned.append(True)
        return grads
    replay.backward = watched
    out.sum().backward()
    assert freed == [False, False]  # both went before the generated backward returned
