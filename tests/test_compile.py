"""gpuad.compile: a traced step replayed as a raw array program computes bit for bit what the eager
step computes (cpu and the strict backend; CUDA to float tolerance, its graphs multiply on another
kernel), re-traces when the call changes, falls back to eager with one warning when it reads
values on the host, keeps what changes between calls (batches, learning rates, step counts,
random draws) as inputs, and never peaks above eager's memory."""
import collections
import contextlib
import dataclasses
import enum
import functools
import gc
import itertools
import random
import re
import sys
import threading
import tracemalloc
import types
import warnings
import weakref

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
import models
from gpuad import backend
from gpuad.compiler import CompileWarning, graphs
from gpuad.testing import strict


def _host(t):
    return gpuad.backend.asnumpy(t.array).copy()


def _no_sync(device):
    return strict.forbid_host_sync() if device == "strict" else contextlib.nullcontext()


def _batches(rng, n, make):
    return [make(rng) for _ in range(n)]


def _assert_same(eager, compiled, device):
    (losses_a, params_a), (losses_b, params_b) = eager, compiled
    if device == "cuda":  # graphs multiply 2-D floats on gpuad's tiled kernel, not cuBLAS
        np.testing.assert_allclose(losses_b, losses_a, rtol=1e-4, atol=1e-5)
        for a, b in zip(params_a, params_b):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        return
    assert losses_b == losses_a
    for a, b in zip(params_a, params_b):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def _run(build, batches, device, compiled, after_step=None):
    """Train from the same seed and weights on the same batches; (losses, final parameters)."""
    gpuad.manual_seed(0)
    model, step, opt = build(device)
    if compiled:
        step = gpuad.compile(step)
    losses = []
    for i, (x, y) in enumerate(batches):
        with _no_sync(device):
            loss = step(gpuad.tensor(x, device=device), gpuad.tensor(y, device=device))
        losses.append(float(gpuad.backend.asnumpy(loss.array)))
        if after_step is not None:
            after_step(opt, i)
    return (losses, [_host(p) for p in model.parameters()]), step, opt


def _fit(model, opt, x, y):
    """One training step of a classifier: cross entropy, zero_grad, backward, opt.step."""
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def _classifier_step(model, opt):
    """_fit as a step function of (x, y)."""
    def step(x, y):
        return _fit(model, opt, x, y)
    return step


def _mlp(device):
    model = models.MLP(12, (16,), 5).to(device)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, _classifier_step(model, opt), opt


def _mlp_batch(rng, batch=8):
    return rng.standard_normal((batch, 12)).astype(np.float32), rng.integers(0, 5, batch)


def test_mlp_with_sgd_momentum_replays_the_eager_step(device):
    batches = _batches(np.random.default_rng(0), 50, _mlp_batch)
    eager, _, _ = _run(_mlp, batches, device, False)
    compiled, step, _ = _run(_mlp, batches, device, True)
    _assert_same(eager, compiled, device)
    # the first call records with empty momentum buffers and no .grad, the second with both; the
    # first recording creates the momentum buffers, so no later call could replay it: not kept
    assert step.traces == 2 and len(step.programs()) == 1


def _cnn(device):
    model = models.LeNet5(channels=(2, 3), hidden=(6,), image_size=8).to(device)
    opt = gpuad.optim.Adam(model.parameters(), lr=1e-2)
    opt.scheduler = gpuad.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + 0.3 * s))
    return model, _classifier_step(model, opt), opt


def _cnn_batch(rng):
    return rng.standard_normal((4, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 4)


def test_cnn_with_adam_and_a_scheduler_replays_the_eager_step(device):
    """The learning rate (a scheduler steps it outside the compiled function) and Adam's step
    count and bias corrections change every call: they are inputs of the program."""
    batches = _batches(np.random.default_rng(1), 50, _cnn_batch)
    lrs = {False: [], True: []}

    def scheduler_step(compiled):
        def after(opt, i):
            lrs[compiled].append(opt.param_groups[0]["lr"])
            opt.scheduler.step()
        return after
    eager, _, _ = _run(_cnn, batches, device, False, scheduler_step(False))
    compiled, step, opt = _run(_cnn, batches, device, True, scheduler_step(True))
    _assert_same(eager, compiled, device)
    assert lrs[True] == lrs[False] and len(set(lrs[True])) == 50
    assert all(s["step"] == 50 for s in opt.state.values())
    assert step.traces == 2
    if device == "cpu":  # one Adam update over flat buffers (convolution gradients included)
        assert [run.ok for run in step.programs()[0].flat_runs] == [True]


def _gpt(device):
    model = models.GPT(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16,
                       dropout=0.2).to(device)
    opt = gpuad.optim.AdamW(model.parameters(), lr=1e-2)

    def step(idx, targets):
        loss = model.loss(idx, targets)
        opt.zero_grad()
        loss.backward()
        gpuad.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss
    return model, step, opt


def _gpt_batch(rng):
    return rng.integers(0, 11, (3, 8)), rng.integers(0, 11, (3, 8))


def test_gpt_with_dropout_replays_the_eager_step(device):
    """Dropout's masks are drawn again from the seeded generator on every replay, in the eager
    order, so compiled and eager runs see the same masks."""
    batches = _batches(np.random.default_rng(2), 50, _gpt_batch)
    eager, _, _ = _run(_gpt, batches, device, False)
    compiled, step, _ = _run(_gpt, batches, device, True)
    _assert_same(eager, compiled, device)
    assert step.traces == 2
    if device == "cpu":  # AdamW over flat buffers: gradients made in place, copied (layer
        # norms' and the tied embedding's), and clipped in place afterwards
        (run,) = step.programs()[0].flat_runs
        assert run.ok is True
        assert re.search(r"COPYTO\((F0g\d+), (v\d+)\); \2 = \1", step.programs()[0].source)


@pytest.mark.parametrize("build, make", [
    (_mlp, _mlp_batch), (_cnn, _cnn_batch), (_gpt, _gpt_batch),
    (lambda device: _scheduled("onecycle")(device), _mlp_batch)],
    ids=["mlp", "cnn", "gpt", "scheduled"])
def test_the_cuda_graph_path_acted_out_on_the_cpu(build, make, monkeypatch):
    """graphs.py's blocks, input buffers and output copies, with CUDA's capture and launch acted
    out on numpy arrays (graphs.emulated_capture): the same numbers as eager, bit for bit. The
    optimizer updates, index checks and dropout's draws (made first) stay out of the graph, and
    so does a scheduler's step (after the updates)."""
    monkeypatch.setattr(gpuad.compiler.graphs, "CAPTURE_OFF_CUDA", [graphs.emulated_capture])
    batches = _batches(np.random.default_rng(8), 8, make)
    after = None if build is not _cnn else lambda opt, i: opt.scheduler.step()
    eager, _, _ = _run(build, batches, "cpu", False, after)
    compiled, step, _ = _run(build, batches, "cpu", True, after)
    _assert_same(eager, compiled, "cpu")
    program = step.programs()[-1]
    blocks = program.runner.blocks
    # host blocks: index checks and dropout's draws (made first where they can be; a check of
    # indices the step computes cuts the graph, on numpy only: a device does not record them),
    # then the updates; graphs between
    names = [{i.name for i in program.instrs[b.lo:b.hi]} for b in blocks]
    assert [b.host for b in blocks][-3:] == [True, False, True]
    assert all(n <= {"check_indices", "draw"} for b, n in zip(blocks[:-1], names) if b.host)
    assert names[-1] <= {"sgd_step", "adam_step"}
    assert blocks[-2].graph is not None and not program.runner.plain
    if build is _gpt:  # wide enough: a graph keeps what it allocates, so results that can go
        assert program.reused > 0  # into a dead input of their layout go there


def test_no_tracing_array_is_left_behind_and_rebinding_what_the_step_reads_retraces():
    from gpuad.compiler.arrays import TRACE_TYPES

    class Trainer:
        def __init__(self, lr):
            self.w = gpuad.tensor([1.0, 2.0], requires_grad=True)
            self.opt = gpuad.optim.Adam([self.w], lr=lr)

        def step(self, x):
            loss = (self.w * x).sum()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            return loss

    trainer = Trainer(0.1)
    step = gpuad.compile(trainer.step)
    for _ in range(3):
        loss = step(gpuad.ones(2))
        arrays = [loss.array, trainer.w.array, trainer.w.grad.array]
        arrays += list(trainer.opt.state[trainer.w].values())
        assert not any(type(a) in TRACE_TYPES for a in arrays)
    assert step.traces == 2
    trainer.opt = gpuad.optim.SGD([trainer.w], lr=1.0)  # the step must now use this one
    before = trainer.w.array.copy()
    step(gpuad.ones(2))
    np.testing.assert_array_equal(trainer.w.array, before - 1.0)
    assert step.traces == 3 and trainer.opt.state[trainer.w] == {}


def test_a_smaller_last_batch_retraces_and_later_epochs_replay():
    rng = np.random.default_rng(3)
    epoch = [_mlp_batch(rng) for _ in range(3)] + [_mlp_batch(rng, batch=5)]
    eager, _, _ = _run(_mlp, epoch * 3, "cpu", False)
    compiled, step, _ = _run(_mlp, epoch * 3, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    assert step.traces == 3  # first call, first call with state, the short batch


def _dot_step(w, opt):
    """A training step of the loss (w * x).sum()."""
    def step(x):
        loss = (w * x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def test_a_step_whose_optimizer_state_grows_every_call_stops_recording_at_the_limit():
    class Growing(gpuad.optim.SGD):  # a new state entry every step: no recording is ever kept
        def _update(self, p, g, state, group):
            state[f"seen{len(state)}"] = g * 0
            super()._update(p, g, state, group)

    w = gpuad.tensor([1.0, 2.0], requires_grad=True)
    opt = Growing([w], lr=0.5)
    step = gpuad.compile(_dot_step(w, opt))
    x = gpuad.tensor([1.0, 3.0])
    with pytest.warns(CompileWarning, match="cache limit"):
        for _ in range(gpuad.compiler.CACHE_LIMIT + 2):
            step(x)
    assert step.traces == gpuad.compiler.CACHE_LIMIT and step.programs() == []
    np.testing.assert_allclose(_host(w), [1.0 - 0.5 * 10, 2.0 - 1.5 * 10])
    assert len(opt.state[w]) == gpuad.compiler.CACHE_LIMIT + 2


def test_new_batches_and_a_new_learning_rate_are_read_on_every_call():
    w = gpuad.tensor([1.0, 2.0], requires_grad=True)
    opt = gpuad.optim.SGD([w], lr=0.5)
    step = gpuad.compile(_dot_step(w, opt))
    seen = []
    for i, lr in enumerate([0.5, 0.5, 0.25, 0.125, 1.0]):
        opt.param_groups[0]["lr"] = lr
        x = gpuad.tensor([float(i), 1.0])
        before = w.array.copy()
        seen.append(float(step(x).item()))
        np.testing.assert_array_equal(w.array, before - np.float32(lr) * x.array)
        assert seen[-1] == pytest.approx(float((before * x.array).sum()))
    assert step.traces == 2


def test_optimizer_numbers_are_reused_only_while_nothing_they_come_from_changes():
    # SGD's host numbers are reused from the last replay while the groups' settings and the state
    # dicts stay: every change below must reach the update, bit for bit as in eager mode
    def build():
        w = gpuad.tensor([1.0, 2.0, -1.0], requires_grad=True)
        v = gpuad.tensor([0.5, -1.0, 3.0], requires_grad=True)
        opt = gpuad.optim.SGD([{"params": [w]}, {"params": [v], "lr": 0.1}], lr=0.5, momentum=0.9)

        def step(x):
            loss = (w * x).sum() + (v * v * x).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return w, v, opt, step

    changes = {3: lambda opt, w: opt.param_groups[1].update(lr=0.05),
               5: lambda opt, w: opt.param_groups[0].update(momentum=0.5),
               7: lambda opt, w: opt.param_groups[0].update(weight_decay=0.01),
               8: lambda opt, w: opt.state[w].clear(),  # a first momentum step again
               10: lambda opt, w: opt.param_groups[0].update(nesterov=True, dampening=0.0),
               12: lambda opt, w: setattr(opt, "param_groups", opt.param_groups[::-1])}
    runs = []
    for compiled in (False, True):
        w, v, opt, step = build()
        step = gpuad.compile(step) if compiled else step
        seen = []
        for i in range(14):
            if i in changes:
                changes[i](opt, w)
            step(gpuad.tensor([1.0, float(i), -0.5]))
            seen.append((w.array.copy(), v.array.copy()))
        runs.append(seen)
    for (we, ve), (wc, vc) in zip(*runs):
        np.testing.assert_array_equal(wc, we)
        np.testing.assert_array_equal(vc, ve)


def test_array_sum_methods_replay_as_add_reduce_with_sums_defaults():
    # a replay calls numpy.add.reduce for ndarray.sum (one Python frame fewer): axis=None when
    # sum had none (reduce's own default is 0), and bool sums still count in int64
    def sums(t):
        a = t.array
        return tuple(gpuad.Tensor(r) for r in (  # arrays, not numpy scalars (Tensor(scalar) is
            a.sum(keepdims=True), a.sum(0), a.sum(axis=1, keepdims=True),  # float32 eagerly)
            (a > 0).sum(keepdims=True), a.sum(None, np.float64, keepdims=True),
            a.sum(out=np.empty((), np.float32))))

    compiled = gpuad.compile(sums)
    t = gpuad.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4) - 5)
    for _ in range(3):
        got = compiled(t)
    assert "sum(" not in compiled.programs()[0].source
    for g, e in zip(got, sums(t)):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g.numpy(), e.numpy())


def test_a_replayed_update_invalidates_graphs_that_saved_the_parameters_as_eager_does():
    w = gpuad.tensor([1.0, 2.0], requires_grad=True)
    v = gpuad.tensor([0.5, 0.5], requires_grad=True)
    opt = gpuad.optim.SGD([w, v], lr=0.1)

    @gpuad.compile
    def step(x):
        loss = (w * x).sum() + (v * x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    x = gpuad.tensor([1.0, 3.0])
    for _ in range(3):
        step(x)
    assert step.programs()
    kept = (w * v).sum()  # saves both
    clock, versions = gpuad.autograd.INPLACE_CLOCK[0], (w._version, v._version)
    step(x)  # a replay: updates both in place
    assert clock < w._version < v._version == gpuad.autograd.INPLACE_CLOCK[0]
    assert w._version > versions[0] and v._version > versions[1]
    with pytest.raises(RuntimeError, match="modified in place"):
        kept.backward()


def test_random_draws_are_made_again_not_frozen():
    @gpuad.compile
    def noisy(x):
        with gpuad.no_grad():
            return F.dropout(x, 0.5) + gpuad.rand(64)

    x = gpuad.ones(64)
    gpuad.manual_seed(7)
    compiled = [_host(noisy(x)) for _ in range(4)]
    gpuad.manual_seed(7)
    eager = [_host(noisy.fn(x)) for _ in range(4)]
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(compiled[2], compiled[3])  # replays draw fresh masks
    assert noisy.traces == 1


def test_reading_a_value_on_the_host_falls_back_with_one_warning_naming_the_line():
    model = models.MLP(12, (16,), 5)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    logged = []

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        logged.append(loss.item())  # the line the warning names
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    line = step.__code__.co_firstlineno + 2
    compiled = gpuad.compile(step)
    rng = np.random.default_rng(4)
    batches = [_mlp_batch(rng) for _ in range(4)]
    with pytest.warns(CompileWarning, match=rf"\.item\(\).*{__file__}:{line}") as caught:
        compiled(*map(gpuad.tensor, batches[0]))
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in batches[1:]:
            compiled(gpuad.tensor(x), gpuad.tensor(y))
    assert compiled.fallback is not None and compiled.traces == 1 and len(logged) == 4


def _noisy_run(compiled, make_noise, steps=5):
    """(losses, final parameters, the function) of an MLP trained on one batch plus the noise
    that make_noise(rng) hands to gpuad.tensor inside the step, made on the line after `def`."""
    gpuad.manual_seed(0)
    model = models.MLP(8, (8,), 4)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    noise_rng = np.random.default_rng(3)

    def step(x, y):
        noise = gpuad.tensor(make_noise(noise_rng))
        loss = F.cross_entropy(model(x + noise), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = gpuad.compile(step) if compiled else step
    rng = np.random.default_rng(2)
    x, y = gpuad.tensor(rng.standard_normal((2, 8)).astype(np.float32)), gpuad.tensor([1, 3])
    losses = [float(fn(x, y).item()) for _ in range(steps)]
    return losses, [_host(p) for p in model.parameters()], fn, step.__code__.co_firstlineno + 1


def test_host_data_the_step_makes_anew_falls_back_instead_of_replaying_frozen():
    # gpuad.tensor(numpy's random numbers) inside the step: a replay has only the traced call's
    # numbers, and used them every step (a silently frozen augmentation). Now one warning names
    # the line and the step runs eagerly, as the eager step computes.
    def fresh(rng):
        return rng.standard_normal((2, 8)).astype(np.float32)

    eager = _noisy_run(False, fresh)
    with pytest.warns(CompileWarning, match=r"host data it creates anew") as caught:
        compiled = _noisy_run(True, fresh)
    assert str(caught[0].message).endswith(f"{__file__}:{compiled[3]})")
    assert compiled[0] == eager[0]
    assert all(np.array_equal(a, b) for a, b in zip(compiled[1], eager[1]))
    assert compiled[2].fallback is not None


def test_a_host_buffer_refilled_in_place_is_read_afresh_by_every_replay():
    # the same array every call, refilled in place before each call: a replay copies what it
    # holds then, so this compiles (no warning); gpuad's own constants of shapes (interpolation
    # weights) do not count as host data either
    buffer = np.zeros((2, 8), np.float32)
    refills = np.random.default_rng(3).standard_normal((5, 2, 8))

    def run(compiled):
        losses = []
        gpuad.manual_seed(0)
        model = models.MLP(8, (8,), 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            loss = F.cross_entropy(model(x + gpuad.tensor(buffer)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        for values in refills:
            buffer[...] = values
            losses.append(float(fn(x, y).item()))
        return losses, [_host(p) for p in model.parameters()], fn

    eager = run(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled = run(True)
        upsample = gpuad.compile(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"))
        for _ in range(3):
            upsample(gpuad.tensor(np.ones((1, 1, 3, 3), np.float32)))
    assert compiled[0] == eager[0] and len(set(eager[0])) == 5
    assert all(np.array_equal(a, b) for a, b in zip(compiled[1], eager[1]))
    assert compiled[2].fallback is None and compiled[2].programs()
    assert upsample.fallback is None and upsample.programs()


def test_a_batch_drawn_from_a_dataloader_inside_the_step_falls_back():
    # next(batches) inside the step: a replay trained on the traced batch every step (the
    # loader's position is Python state a replay never advances); now eager, with a warning
    def run(compiled):
        gpuad.manual_seed(0)
        model = models.MLP(8, (8,), 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        rng = np.random.default_rng(5)
        data = gpuad.data.TensorDataset(
            gpuad.tensor(rng.standard_normal((40, 8)).astype(np.float32)),
            gpuad.tensor(rng.integers(0, 4, 40)))
        batches = iter(gpuad.data.DataLoader(data, batch_size=8))

        def step():
            x, y = next(batches)
            return _fit(model, opt, x, y)

        fn = gpuad.compile(step) if compiled else step
        return [float(fn().item()) for _ in range(5)], fn

    eager, _ = run(False)
    with pytest.warns(CompileWarning, match="draws a batch from a DataLoader"):
        compiled, fn = run(True)
    assert compiled == eager and len(set(eager)) == 5 and fn.fallback is not None


class _Stashing(gpuad.nn.Module):
    """A layer that makes a cache on its first call, and may keep each call's output too."""

    def __init__(self, keep_outputs):
        super().__init__()
        self.fc = gpuad.nn.Linear(8, 4)
        self.scale, self.keep_outputs, self.outputs = None, keep_outputs, []

    def forward(self, x):
        if self.scale is None:
            self.scale = gpuad.ones(4) * 0.5
        out = self.fc(x) * self.scale
        if self.keep_outputs:
            self.outputs.append(out.detach())
        return out


def _stashing_run(compiled, keep, steps=6):
    """Train _Stashing; with `keep` the step also stores every call's loss and output."""
    gpuad.manual_seed(0)
    model = _Stashing(keep)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    last = [None]

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if keep:
            last[0] = loss.detach()  # a trainer's last loss
        return loss

    fn = gpuad.compile(step) if compiled else step
    x = gpuad.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8))
    losses = [float(fn(x, gpuad.tensor([1, 3])).item()) for _ in range(steps)]
    outputs = [float(o.sum().item()) for o in model.outputs]
    return losses, last[0] and float(last[0].item()), outputs, fn


def test_tensors_stored_on_every_call_fall_back_and_a_cache_made_once_does_not():
    # A step that stores a tensor it computed (the last loss, a list of outputs) on every call:
    # a replay left the traced call's tensors there for good. It now falls back, once a second
    # recording stores again; a cache made on the first call (the layer's scale) costs that one
    # extra recording and is replayed.
    eager = _stashing_run(False, keep=True)
    with pytest.warns(CompileWarning, match="stores a tensor it computed") as caught:
        compiled = _stashing_run(True, keep=True)
    assert len(caught) == 1 and compiled[:3] == eager[:3] and len(eager[2]) == 6
    assert compiled[3].traces == 2 and compiled[3].fallback is not None
    eager = _stashing_run(False, keep=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled = _stashing_run(True, keep=False)
    assert compiled[0] == eager[0] and compiled[3].traces == 2 and compiled[3].programs()
    kept = []
    appending = gpuad.compile(lambda t: kept.append(t * 2) or t, fullgraph=True)
    appending(gpuad.ones(2))
    with pytest.raises(gpuad.compiler.Unsupported, match="stores a tensor"):
        appending(gpuad.ones(2))


_CALLS = 0


class _Counting:
    """A trainer that sets a flag on its first step and counts its steps in Python."""

    def __init__(self):
        gpuad.manual_seed(0)
        self.model = gpuad.nn.Linear(8, 4)
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1)
        self.ready, self.steps = False, 0

    def step(self, x, y, count):
        global _CALLS
        self.ready = True  # set once: replays need not set it again
        if count == "attribute":
            self.steps += 1
        elif count == "global":
            _CALLS += 1
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss


@pytest.mark.parametrize("count", ["attribute", "global", "none"])
def test_a_python_value_changed_on_every_call_falls_back(count):
    # self.steps += 1 (or a global's) inside the step: replays never ran it, so the counter
    # stopped at the recordings' count. Now a second recording that changes it again makes the
    # step fall back, naming the value; a flag set on the first call only costs one recording.
    def run(compiled):
        global _CALLS
        _CALLS = 0
        trainer = _Counting()
        fn = gpuad.compile(trainer.step) if compiled else trainer.step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = [float(fn(x, y, count).item()) for _ in range(5)]
        return losses, trainer.steps, _CALLS, fn

    eager = run(False)
    if count == "none":
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            compiled = run(True)
        assert compiled[0] == eager[0] and compiled[3].traces == 2 and compiled[3].programs()
        return
    name = "_Counting.steps: 1 -> 2" if count == "attribute" else "the global _CALLS: 1 -> 2"
    with pytest.warns(CompileWarning, match=re.escape(name)):
        compiled = run(True)
    assert compiled[:3] == eager[:3] and 5 in eager[1:3] and compiled[3].fallback is not None


@pytest.mark.parametrize("source", ["python", "numpy", "numpy generator", "gpuad generator"])
def test_python_and_numpy_random_draws_in_the_step_fall_back(source):
    # a random flip decided by Python's or numpy's random numbers: a replay took the traced
    # call's branch on every step. Now those draws make the step fall back; gpuad's own draws
    # (here from a gpuad.Generator the step holds) are inputs of the program and replay.
    if source in ("python", "numpy") and not all(
            t.daemon or t is threading.current_thread() for t in threading.enumerate()):
        pytest.skip("another thread runs: the global random states are not checked then")
    numbers = np.random.default_rng(0)
    generator = gpuad.Generator()

    def run(compiled):
        random.seed(0)
        np.random.seed(0)
        numbers.bit_generator.state = np.random.default_rng(0).bit_generator.state
        generator.manual_seed(3)
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            if source == "gpuad generator":
                x = x + gpuad.randn(x.shape, generator=generator) * 0.1
            elif {"python": random.random, "numpy": np.random.rand,
                  "numpy generator": numbers.random}[source]() < 0.5:
                x = x.flip(1)
            return _fit(model, opt, x, y)

        fn = gpuad.compile(step) if compiled else step
        x = gpuad.tensor(np.arange(16, dtype=np.float32).reshape(2, 8) / 10)
        return [float(fn(x, gpuad.tensor([1, 3])).item()) for _ in range(8)], fn

    eager, _ = run(False)
    if source == "gpuad generator":
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            compiled, fn = run(True)
        assert compiled == eager and fn.programs()
        return
    with pytest.warns(CompileWarning, match="draws numbers from Python's random module"):
        compiled, fn = run(True)
    assert compiled == eager and fn.fallback is not None


_WARMING_UP = True


class _Annealed:
    """A trainer whose step reads an annealed weight (self.beta) and a global flag."""

    def __init__(self):
        gpuad.manual_seed(0)
        self.model = gpuad.nn.Linear(8, 4)
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.beta, self.epoch = 0.0, 0
        self.config = _Holder()
        self.config.gain = 1.0

    def loss(self, x, y):
        out = self.model(x)
        loss = F.cross_entropy(out, y) + self.beta * (out * out).mean()
        return loss * 0.5 if _WARMING_UP else loss

    def step(self, x, y):
        loss = self.loss(x, y) * (1.0 + self.beta) if _WARMING_UP else self.loss(x, y)
        loss = loss * self.config.gain
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss


def test_python_values_the_step_reads_are_checked_on_every_replay():
    # self.beta annealed, a global warm-up flag, self.config.gain, a closure variable and a field
    # of an object in one, changed between calls: replays kept the traced values (the loss never
    # saw beta grow). The compiled function's own code names them, so a replay checks them and
    # re-traces when one changed; self.epoch, which it does not read, changes freely. (self.loss
    # reads them too, deeper down: that alone would not be seen.)
    global _WARMING_UP
    x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])

    def run_method(compiled):
        global _WARMING_UP
        trainer = _Annealed()
        fn = gpuad.compile(trainer.step) if compiled else trainer.step
        losses = []
        for i in range(12):
            trainer.beta, trainer.epoch = 0.1 * (i // 4), i
            _WARMING_UP = i < 6
            trainer.config.gain = 0.5 if i >= 10 else 1.0
            losses.append(float(fn(x, y).item()))
        return losses, fn

    def run_closure(compiled):
        trainer, factor = _Annealed(), 1.0

        def step(x, y):
            loss = F.cross_entropy(trainer.model(x), y) * factor * (1.0 + trainer.beta)
            trainer.opt.zero_grad()
            loss.backward()
            trainer.opt.step()
            return loss

        fn = gpuad.compile(step) if compiled else step
        losses = []
        for i in range(8):
            trainer.beta, factor = 0.1 * (i // 4), 2.0 if i >= 6 else 1.0
            losses.append(float(fn(x, y).item()))
        return losses, fn

    for run, traces in ((run_method, 6), (run_closure, 4)):
        eager, _ = run(False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            compiled, fn = run(True)
        _WARMING_UP = True
        assert compiled == eager
        # two for the first calls (the first makes the momentum buffers), then one per change:
        # beta at 4 and 8, the flag at 6, self.config.gain at 10; beta at 4, the factor at 6
        assert fn.traces == traces and fn.fallback is None


def test_a_python_value_read_anew_every_call_ends_in_eager_with_advice():
    # an annealed number that changes on every call re-traces every call: after the cache limit
    # the function runs eagerly, and the warning says how to keep it compiled
    trainer = _Annealed()
    compiled = gpuad.compile(trainer.step)
    x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
    with pytest.warns(CompileWarning, match=r"\(\.beta\)\).*passed as a tensor argument"):
        for i in range(10):
            trainer.beta = 0.01 * i
            compiled(x, y)
    assert compiled.traces == 8


class _Tempered(gpuad.nn.Module):
    """A layer whose forward reads a temperature that training anneals."""

    def __init__(self):
        super().__init__()
        self.fc = gpuad.nn.Linear(8, 4)
        self.tau = 1.0

    def forward(self, x):
        return F.softmax(self.fc(x) / self.tau, dim=-1)


def test_a_compiled_module_checks_the_python_values_its_forward_reads():
    # gpuad.compile(model): its forward's self.tau is read where a replay checks it
    gpuad.manual_seed(0)
    model = _Tempered()
    compiled = gpuad.compile(model)
    x = gpuad.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8))
    with gpuad.no_grad():
        for i in range(6):
            model.tau = 1.0 / (1 + i // 2)
            assert np.array_equal(_host(compiled(x)), _host(model(x)))
    assert compiled.traces == 3


def test_a_step_checks_the_python_values_its_models_forwards_read():
    # a layer of the user's own class, inside the model a training step calls: its forward's
    # self.tau was frozen at the recording (gpuad's own layers' numbers still are)
    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Sequential(gpuad.nn.Linear(8, 8), _Tempered())
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            return _fit(model, opt, x, y).detach()
        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(6):
            model[1].tau = 1.0 / (1 + i // 3)
            losses.append(float(fn(x, y).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None and fn.traces == 3


def test_a_number_of_gpuads_own_layers_changed_between_calls_retraces():
    # nn.Dropout's p and LeakyReLU's slope, read by gpuad's forwards: setting one counts as a
    # change of the model (autograd.CHANGES), which a replay looks at once per call
    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Sequential(gpuad.nn.Linear(8, 16), gpuad.nn.Dropout(0.5),
                                    gpuad.nn.LeakyReLU(0.1), gpuad.nn.Linear(16, 4))
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        fn = _classifier_step(model, opt)
        fn = gpuad.compile(fn) if compiled else fn
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(6):
            if i == 3:
                model[1].p, model[2].negative_slope = 0.1, 0.3
            if i == 4:
                model[1].p = 0.1  # the same number again: no change
            losses.append(float(fn(x, y).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None and fn.traces == 3


class _Scaled:
    """A callable object as the compiled function: its __call__ reads self.factor."""

    def __init__(self):
        self.layer, self.factor = gpuad.nn.Linear(8, 4), 1.0

    def __call__(self, x):
        return self.layer(x) * self.factor


def test_a_compiled_callable_object_checks_the_python_values_its_call_reads():
    gpuad.manual_seed(0)
    scaled = _Scaled()
    compiled = gpuad.compile(scaled)
    x = gpuad.tensor(np.ones((2, 8), np.float32))
    with gpuad.no_grad():
        for factor in (1.0, 1.0, 2.0, 2.0, 0.5):
            scaled.factor = factor
            assert np.array_equal(_host(compiled(x)), _host(scaled(x)))
    assert compiled.traces == 3


class _Fitter:
    """A training step as a callable object, holding its model and optimizer."""

    def __init__(self):
        self.model, self.scale = gpuad.nn.Linear(8, 4), 1.0
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)

    def __call__(self, x, y):
        return _fit_scaled(self.model, self.opt, x, y, self.scale)


def _fit_scaled(model, opt, x, y, scale):
    """_fit on the logits times scale (a number the caller's own code reads), detached."""
    loss = F.cross_entropy(model(x) * scale, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


@pytest.mark.parametrize("form", ["object", "partial", "keyword"])
def test_what_a_callable_object_or_partial_holds_is_followed(form):
    # a trainer object compiled itself, or bound into a partial: a replay used to keep training
    # the model it was traced with after `fitter.model = new_model`, and to keep the scale
    def run(compiled):
        gpuad.manual_seed(0)
        fitter = _Fitter()
        fn = {"object": fitter, "partial": functools.partial(_Fitter.__call__, fitter),
              "keyword": functools.partial(_Fitter.__call__, self=fitter)}[form]
        fn = gpuad.compile(fn) if compiled else fn
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(8):
            if i == 3:
                fitter.model = gpuad.nn.Linear(8, 4)
                fitter.opt = gpuad.optim.SGD(fitter.model.parameters(), lr=0.1, momentum=0.9)
            if i == 6:
                fitter.scale = 2.0
            losses.append(float((fn(x=x, y=y) if form == "keyword" else fn(x, y)).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None
    assert fn.traces == 5  # first calls, the new model (and its momentum buffers), the scale


_HELD = {"net": [None, None]}  # a global dict and list holding what a step trains
_SETTINGS = types.ModuleType("settings")  # a module whose attributes a step reads


def _fit_held(x, y):
    model, opt = _HELD["net"]
    return _fit(model, opt, x, y).detach() * _SETTINGS.scale


def _fit_settings(x, y):
    return _fit(_SETTINGS.model, _SETTINGS.opt, x, y).detach() * _SETTINGS.scale


@pytest.mark.parametrize("holder", ["containers", "module"])
def test_a_model_replaced_in_a_global_container_or_module_is_followed(holder):
    # entries of a global dict and list, and attributes of a module the step reads (settings.model)
    # had no identity guard: a replay kept training the model it was traced with
    def run(compiled):
        gpuad.manual_seed(0)
        fn = _fit_held if holder == "containers" else _fit_settings
        fn = gpuad.compile(fn) if compiled else fn
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(8):
            if i in (0, 3):
                model = gpuad.nn.Linear(8, 4)
                opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
                _HELD["net"][:] = [model, opt]
                _SETTINGS.model, _SETTINGS.opt, _SETTINGS.scale = model, opt, 1.0
            if i == 6:
                _SETTINGS.scale = 2.0
            losses.append(float(fn(x, y).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None
    assert fn.traces == 5  # first calls, the new model (and its momentum buffers), the scale
    del _SETTINGS.scale  # gone: a miss, and the eager call says what is missing
    with pytest.raises(AttributeError, match="scale"):
        fn(gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3]))


_HELPED = types.SimpleNamespace()  # what the helpers below read, as a script's globals would be


def _helped_loss(x, y):
    return F.cross_entropy(_HELPED.model(x) * _HELPED.scale, y)


def _helped_update(loss):
    _HELPED.opt.zero_grad()
    loss.backward()
    _HELPED.opt.step()


def _helped_step(x, y):
    loss = _helped_loss(x, y)
    _helped_update(loss)
    return loss.detach()


class _Tempered2:
    """A trainer whose step calls its own method, which reads self.cfg.temperature."""

    def __init__(self):
        self.model = gpuad.nn.Linear(8, 4)
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1)
        self.cfg = types.SimpleNamespace(temperature=1.0)

    def loss(self, x, y):
        return F.cross_entropy(self.model(x) / self.cfg.temperature, y)

    def step(self, x, y):
        loss = self.loss(x, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()


@pytest.mark.parametrize("change", ["model", "scale", "redefined", "method"])
def test_what_the_users_helper_functions_read_is_followed(change):
    # the step calls the user's own functions and methods: what they read (a global model, a
    # scale, self.cfg.temperature) and the helpers themselves (redefined, as in a notebook) are
    # checked as the step's own code is; a replay kept the traced ones
    global _helped_loss

    def run(compiled):
        global _helped_loss
        gpuad.manual_seed(0)
        helper, trainer = _helped_loss, _Tempered2()
        _HELPED.model = gpuad.nn.Linear(8, 4)
        _HELPED.opt, _HELPED.scale = gpuad.optim.SGD(_HELPED.model.parameters(), lr=0.1), 1.0
        fn = trainer.step if change == "method" else _helped_step
        fn = gpuad.compile(fn) if compiled else fn
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        try:
            for i in range(6):
                if i == 3 and change == "model":
                    _HELPED.model = gpuad.nn.Linear(8, 4)
                    _HELPED.opt = gpuad.optim.SGD(_HELPED.model.parameters(), lr=0.1)
                if i == 3 and change == "scale":
                    _HELPED.scale = 2.0
                if i == 3 and change == "redefined":
                    _helped_loss = functools.partial(_halved_loss, helper)
                if i == 3 and change == "method":
                    trainer.cfg.temperature = 2.0
                losses.append(float(fn(x, y).item()))
        finally:
            _helped_loss = helper
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None
    # first call (no .grad yet), second, the change; a new model is traced with and without .grad
    assert fn.traces == (4 if change == "model" else 3)


class _Decorated:
    """A trainer whose step is compiled in its class body: self arrives as an argument."""

    def __init__(self):
        self.model, self.beta = gpuad.nn.Linear(8, 4), 1.0
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1)

    def fit(self, x, y):
        return _fit_scaled(self.model, self.opt, x, y, self.beta)

    compiled_fit = gpuad.compile(fit)


@pytest.mark.parametrize("form", ["decorated", "argument", "default"])
def test_what_an_argument_or_a_default_holds_is_followed(form):
    # self.beta read by a step compiled in the class body (self is its first argument), an
    # attribute of an object passed in, and a model replaced in an object bound as a default:
    # a replay kept the traced ones
    def run(compiled):
        gpuad.manual_seed(0)
        trainer = _Decorated()

        def with_default(x, y, trainer=trainer):
            return _Decorated.fit(trainer, x, y)
        fn = {"decorated": trainer.compiled_fit if compiled else trainer.fit,
              "argument": gpuad.compile(_Decorated.fit) if compiled else _Decorated.fit,
              "default": gpuad.compile(with_default) if compiled else with_default}[form]
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(6):
            if i == 3 and form == "default":
                trainer.model = gpuad.nn.Linear(8, 4)
                trainer.opt = gpuad.optim.SGD(trainer.model.parameters(), lr=0.1)
            elif i == 3:
                trainer.beta = 2.0
            loss = fn(trainer, x, y) if form == "argument" else fn(x, y)
            losses.append(float(loss.item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager
    fn = _Decorated.compiled_fit if form == "decorated" else fn
    assert fn.fallback is None and fn.traces == (4 if form == "default" else 3)


_ANNEALED = types.SimpleNamespace(kl_weight=0.0)  # a script's config, annealed between steps
_FIXED = types.SimpleNamespace(kl_weight=0.5)


def _weighted_loss(model, x, y, config):
    logits = model(x)
    return F.cross_entropy(logits, y) + config.kl_weight * (logits ** 2).mean()


_CONFIG = {"scale": 1.0}  # a script's config dict


class _Hyper:
    """A trainer reading its numbers from dicts: self.hparams["beta"] and _CONFIG["scale"]."""

    def __init__(self):
        self.model, self.hparams = gpuad.nn.Linear(8, 4), {"beta": 1.0}
        self.opt = gpuad.optim.SGD(self.model.parameters(), lr=0.1)

    def step(self, x, y):
        return _fit_scaled(self.model, self.opt, x, y, self.hparams["beta"] * _CONFIG["scale"])


def test_numbers_read_from_dicts_are_checked():
    # cfg["scale"] and self.hparams["beta"] were frozen at the recording
    def run(compiled):
        gpuad.manual_seed(0)
        trainer, _CONFIG["scale"] = _Hyper(), 1.0
        fn = gpuad.compile(trainer.step) if compiled else trainer.step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(6):
            if i == 2:
                trainer.hparams["beta"] = 2.0
            if i == 4:
                _CONFIG["scale"] = 0.5
            losses.append(float(fn(x, y).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None and fn.traces == 4


def _total(named):
    return sum(t.sum() for t in named.values())


def test_what_a_helper_reads_through_its_parameters_is_followed():
    # vae_loss(model, x, cfg) reading cfg.kl_weight: which object the helper's parameter holds
    # is known only while the call runs (noted then); a replay kept the traced weight. The same
    # helper called with another config reads that one's. What the call makes and passes to a
    # helper (a dict of its tensors) is not kept: that would count as storing them
    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            loss = _weighted_loss(model, x, y, _ANNEALED) + _weighted_loss(model, x, y, _FIXED)
            loss = loss + 1e-3 * _total({"logits": model(x)})
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.detach()
        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(6):
            _ANNEALED.kl_weight = 0.1 * (i // 3)
            losses.append(float(fn(x, y).item()))
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None and fn.traces == 3


def _halved_loss(loss, x, y):
    return loss(x, y) / 2


_CLASS_WEIGHTS = np.ones(4, np.float32)  # a script's numpy array that the step reads


def _weighted_fit(model, opt, x, y):
    return _fit_scaled(model, opt, x, y, gpuad.as_tensor(_CLASS_WEIGHTS))


def test_an_array_the_step_reads_replaced_between_calls_retraces():
    # a replay held the array it was traced with as a constant: a new one was not seen
    global _CLASS_WEIGHTS

    def run(compiled, calls=6, every=None):
        global _CLASS_WEIGHTS
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        fn = functools.partial(_weighted_fit, model, opt)
        fn = gpuad.compile(fn) if compiled else fn
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        for i in range(calls):
            if i == 3 or every:
                _CLASS_WEIGHTS = np.arange(1, 5, dtype=np.float32) * (1 + i)
            losses.append(float(fn(x, y).item()))
        _CLASS_WEIGHTS = np.ones(4, np.float32)
        return losses, fn
    eager, _ = run(False)
    compiled, fn = run(True)
    assert compiled == eager and fn.fallback is None and fn.traces == 3
    # new on every call: the recordings run out, and the warning says what to do
    with pytest.warns(CompileWarning, match=r"new on every call \(an array, a model, a batch "
                                            r"object\) is read afresh when passed as tensors"):
        compiled, fn = run(True, calls=10, every=True)
    assert compiled == run(False, calls=10, every=True)[0]


@pytest.mark.parametrize("source", ["list", "generator", "zip", "cycle"])
def test_a_step_drawing_its_batch_from_an_iterator_falls_back(source):
    # x, y = next(batches) inside the step: a replay trained on the recorded batch every call
    rng = np.random.default_rng(3)
    data = [(rng.standard_normal((2, 8)).astype(np.float32), rng.integers(0, 4, 2))
            for _ in range(6)]

    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        batches = {"list": lambda: iter(data), "generator": lambda: (b for b in data),
                   "zip": lambda: zip(iter([x for x, _ in data]), iter([y for _, y in data])),
                   "cycle": lambda: itertools.cycle(data)}[source]()

        def step():
            x, y = next(batches)
            return _fit(model, opt, gpuad.tensor(x), gpuad.tensor(y)).detach()
        fn = gpuad.compile(step) if compiled else step
        return [float(fn().item()) for _ in range(6)], fn
    eager, _ = run(False)
    with pytest.warns(CompileWarning, match=r"draws from an iterator on every call"):
        compiled, fn = run(True)
    assert compiled == eager and fn.fallback is not None


@pytest.mark.parametrize("change", ["appended", "counted"])
def test_a_list_grown_or_a_dict_counter_moved_in_every_call_falls_back(change):
    # history.append(...) and state["step"] += 1 in the step: a replay did neither, silently
    history, state = [], {"step": 0}

    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            if change == "appended":
                history.append(len(history))
            else:
                state["step"] += 1
            return _fit(model, opt, x, y).detach()
        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        return [float(fn(x, y).item()) for _ in range(4)], fn
    eager, _ = run(False)
    done = len(history), state["step"]
    with pytest.warns(CompileWarning, match=r"changes a Python value on every call \(("
                                            r"a closure variable: 5 entries -> 6 entries|"
                                            r"\.cell_contents\['step'\]: 5 -> 6)"):
        compiled, fn = run(True)
    assert compiled == eager and (len(history), state["step"]) == tuple(2 * n for n in done)


def test_an_ema_of_the_weights_updated_in_the_step_is_replayed():
    # AveragedModel.update_parameters read n_averaged on the host (as torch's does) to tell its
    # first update: the step fell back. It now knows that on the host, from its own updates
    swa_utils = gpuad.optim.swa_utils

    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        ema = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9))

        def step(x, y):
            loss = _fit(model, opt, x, y)
            ema.update_parameters(model)
            return loss.detach()
        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = [float(fn(x, y).item()) for _ in range(5)]
        ema.load_state_dict(ema.state_dict())  # n_averaged is read at a load
        losses += [float(fn(x, y).item()) for _ in range(3)]
        return losses, [_host(p) for p in ema.parameters()], int(ema.n_averaged.item()), fn
    *eager, _ = run(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        *compiled, fn = run(True)
    assert compiled[0] == eager[0] and compiled[2] == eager[2] == 8
    assert all(np.array_equal(a, b) for a, b in zip(compiled[1], eager[1]))
    assert fn.fallback is None and fn.programs()


def test_reset_forgets_the_programs_and_the_cache_limit():
    # after the 8 recordings a function runs eagerly for good; gpuad.compiler.reset() (torch's
    # torch.compiler.reset) lets it trace afresh, in the flat buffers its parameters live in
    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scales = {"now": 1.0}

        def step(x, y):
            return _fit_scaled(model, opt, x, y, scales["now"])
        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        losses = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(10):
                scales["now"] = 1.0 + i
                losses.append(float(fn(x, y).item()))
        if compiled:
            assert fn.traces == gpuad.compiler.CACHE_LIMIT and fn.full_warned
            assert any("cache limit" in str(w.message) for w in caught)
            gpuad.compiler.reset()
            assert fn.traces == 0 and fn.programs() == [] and not fn.full_warned
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            losses += [float(fn(x, y).item()) for _ in range(3)]
        return losses, [_host(p) for p in model.parameters()], fn
    eager, eager_params, _ = run(False)
    compiled, compiled_params, fn = run(True)
    assert compiled == eager and all(map(np.array_equal, compiled_params, eager_params))
    (program,) = fn.programs()
    assert fn.traces == 1 and [run.ok for run in program.flat_runs] == [True]


_Pair = collections.namedtuple("_Pair", "x y")


@dataclasses.dataclass
class _Batch:
    x: object
    y: object
    weight: float = 1.0


def test_a_batch_object_new_on_every_call_ends_in_eager_with_advice():
    # an object passed as an argument is matched by identity: one made anew for every call (a
    # batch class of one's own) re-traces until the cache limit; the warning says what to pass
    class Batch:
        def __init__(self, x, y):
            self.x, self.y = x, y

    gpuad.manual_seed(0)
    model = gpuad.nn.Linear(8, 4)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    compiled = gpuad.compile(lambda batch: _fit(model, opt, batch.x, batch.y).detach())
    kept = []  # (each batch kept alive: a new object, never one at a reused address)
    with pytest.warns(CompileWarning, match=r"cache limit; last reason: new signature.*passed "
                                            r"as tensors, or as a dict, tuple, namedtuple"):
        for _ in range(10):
            kept.append(Batch(gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])))
            compiled(kept[-1])


@pytest.mark.parametrize("record", ["namedtuple", "dataclass", "namespace", "dict"])
def test_a_batch_passed_as_a_record_is_read_afresh_every_call(record):
    # a namedtuple batch raised a device error while tracing (its tensors were neither inputs nor
    # found), and a dataclass or SimpleNamespace batch re-traced on every call (a new object each
    # time) until the cache limit; their fields are now inputs, read by name, as a dict's entries
    def run(compiled):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(batch):
            x, y = (batch["x"], batch["y"]) if record == "dict" else (batch.x, batch.y)
            return _fit(model, opt, x, y).detach()
        fn = gpuad.compile(step) if compiled else step
        rng = np.random.default_rng(7)
        losses = []
        for _ in range(5):
            x = gpuad.tensor(rng.standard_normal((2, 8)).astype(np.float32))
            y = gpuad.tensor(rng.integers(0, 4, 2))
            batch = {"namedtuple": _Pair, "dataclass": _Batch, "namespace": types.SimpleNamespace,
                     "dict": dict}[record](x=x, y=y)
            losses.append(float(fn(batch).item()))
        return losses, fn
    eager, _ = run(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled, fn = run(True)
    assert compiled == eager and fn.traces == 2 and len(fn.programs()) == 1


def test_a_python_number_the_step_computes_and_returns_falls_back():
    # {"lr": 2 * opt.param_groups[0]["lr"]} in the result: a replay returned the traced number
    # after the scheduler had moved on. Numbers written in the code, or read where a replay
    # checks them (self.<name>, opt.param_groups[0]["lr"]), come back as they are; one computed
    # in the call makes it fall back.
    def run(compiled, report):
        gpuad.manual_seed(0)
        model = gpuad.nn.Linear(8, 4)
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
        scheduler = gpuad.optim.lr_scheduler.StepLR(opt, 2, 0.5)

        def step(x, y):
            loss = _fit(model, opt, x, y)
            lr = opt.param_groups[0]["lr"]  # read: checked by every replay
            return loss.detach(), (lr * 2 if report == "computed" else lr if report else 0.5)

        fn = gpuad.compile(step) if compiled else step
        x, y = gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3])
        results = []
        for _ in range(6):
            loss, number = fn(x, y)
            results.append((float(loss.item()), number))
            scheduler.step()
        return results, fn

    eager, _ = run(False, "computed")
    with pytest.warns(CompileWarning, match=r"returns a Python value it computed \(0\.2\)"):
        compiled, fn = run(True, "computed")
    assert compiled == eager and fn.fallback is not None
    # the lr the step reads (returned or not) re-traces when it changes, at the third and fifth
    # calls (the first two are recorded without and with .grad)
    for report in ("read", None):
        eager, _ = run(False, report)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            compiled, fn = run(True, report)
        assert compiled == eager and fn.traces == 4


def test_a_tensor_only_a_garbage_cycle_holds_is_not_taken_for_a_stored_one():
    # an exception caught in the step keeps its frame, and the tensors the frame holds, alive
    # in a cycle until the collector runs: nothing was stored, so the step compiles
    model = gpuad.nn.Linear(8, 4)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        out = model(x)
        try:
            raise ValueError("handled")
        except ValueError as error:
            handled = error  # error -> traceback -> this frame (holding `out`) -> handled
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss if handled else None

    compiled = gpuad.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for _ in range(4):
            compiled(gpuad.tensor(np.ones((2, 8), np.float32)), gpuad.tensor([1, 3]))
    assert compiled.fallback is None and compiled.programs()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11's")
def test_an_error_in_a_call_that_could_not_be_replayed_says_what_was_recorded():
    # the error propagates as eagerly, with a note naming what made the recording unusable: the
    # likelier cause of a failure in a compiled step that was going to fall back anyway
    def step(x):
        total = (x * 2).sum().item()
        raise ValueError(f"bad total {total}")

    line = step.__code__.co_firstlineno + 1
    with pytest.raises(ValueError, match="bad total") as caught:
        gpuad.compile(step)(gpuad.tensor(np.ones(3, np.float32)))
    (note,) = caught.value.__notes__
    assert "recording this call" in note and f"{__file__}:{line}" in note


@pytest.mark.parametrize("case", ["bool", "print", "nonzero", "lr", "plateau", "seed",
                                  "generator"])
def test_what_a_replay_cannot_repeat_is_detected(case, capsys):
    w = gpuad.tensor([1.0, -2.0], requires_grad=True)
    opt = gpuad.optim.SGD([w], lr=0.1)
    plateau = gpuad.optim.lr_scheduler.ReduceLROnPlateau(opt)

    def step(x):
        y = w * x
        if case == "generator":  # made and seeded in the call: a replay would draw on from it
            y = y + gpuad.rand(2, generator=gpuad.Generator().manual_seed(1))
        if case == "bool" and y.sum() > 0:
            y = y * 2
        if case == "print":
            print(y)
        if case == "nonzero":
            y = y[y > 0]
        loss = y.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if case == "lr":  # by hand: a replay would not change it
            opt.param_groups[0]["lr"] *= 0.5
        if case == "plateau":  # a replay would pass the same metric again
            plateau.step(0.5)
        if case == "seed":  # a replay would draw on from the recorded stream
            gpuad.manual_seed(0)
        return loss
    compiled = gpuad.compile(step)
    with pytest.warns(CompileWarning):
        compiled(gpuad.tensor([1.0, 1.0]))
    assert compiled.fallback
    with pytest.raises(gpuad.compiler.tracing.Unsupported, match="fullgraph=True"):
        gpuad.compile(step, fullgraph=True)(gpuad.tensor([1.0, 1.0]))


def _scheduled(kind):
    """A step that steps its learning-rate scheduler after the optimizer (torch's order), or
    before it ("before"), with the schedulers of the kinds users step per batch."""
    def build(device):
        model = models.MLP(12, (16,), 5).to(device)
        if kind == "onecycle":  # cycles Adam's beta1 against the learning rate
            opt = gpuad.optim.Adam(model.parameters(), lr=1e-2)
            scheduler = gpuad.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=30)
        elif kind == "warmup":  # LinearLR hands over to CosineAnnealingLR at step 4
            opt = gpuad.optim.AdamW(model.parameters(), lr=1e-2)
            lr_scheduler = gpuad.optim.lr_scheduler
            scheduler = lr_scheduler.SequentialLR(opt, [
                lr_scheduler.LinearLR(opt, 0.1, total_iters=4),
                lr_scheduler.CosineAnnealingLR(opt, 10)], [4])
        else:  # CyclicLR cycles SGD's momentum too; a subclass's own step() is replayed alike
            opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            scheduler = _CountingCyclicLR(opt, 0.01, 0.1, step_size_up=3)

        def step(x, y):
            if kind == "before":
                scheduler.step()
            loss = _fit(model, opt, x, y)
            if kind != "before":
                scheduler.step()
            return loss
        opt.scheduler = scheduler
        return model, step, opt
    return build


class _CountingCyclicLR(gpuad.optim.lr_scheduler.CyclicLR):
    def step(self):
        self.steps = getattr(self, "steps", 0) + 1
        super().step()


@pytest.mark.parametrize("kind", ["onecycle", "warmup", "cyclic"])
def test_a_scheduler_stepped_in_the_step_is_stepped_by_every_replay(kind, device):
    # scheduler.step() sets the param groups' numbers for the next call: a replay steps it again
    # after the updates, which read those numbers afresh (it used to fall back)
    batches = _batches(np.random.default_rng(5), 12, _mlp_batch)
    hyper = {False: [], True: []}

    def record(compiled):
        def after(opt, i):
            hyper[compiled].append({k: v for k, v in opt.param_groups[0].items() if k != "params"})
        return after
    eager, _, _ = _run(_scheduled(kind), batches, device, False, record(False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled, step, opt = _run(_scheduled(kind), batches, device, True, record(True))
    _assert_same(eager, compiled, device)
    assert hyper[True] == hyper[False] and len({h["lr"] for h in hyper[True]}) > 5
    assert step.traces == 2 and step.fallback is None
    if kind == "cyclic":
        assert opt.scheduler.steps == 1 + 12  # the constructor's step, then one per call


def test_a_scheduler_stepped_before_the_update_or_replaced_is_followed(device):
    # before the optimizer: the updates would read the number the step is about to change
    batches = _batches(np.random.default_rng(6), 4, _mlp_batch)
    eager, _, _ = _run(_scheduled("before"), batches, device, False)
    with pytest.warns(CompileWarning, match=r"updates a parameter after stepping its optimizer's "
                                            r"learning-rate scheduler \(_CountingCyclicLR\)"):
        compiled, step, _ = _run(_scheduled("before"), batches, device, True)
    _assert_same(eager, compiled, device)
    assert step.fallback is not None
    # a new scheduler in the attribute the step reads it from: traced again, the new one steps
    model = gpuad.nn.Linear(3, 2).to(device)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    trainer = types.SimpleNamespace(scheduler=gpuad.optim.lr_scheduler.StepLR(opt, 1, 0.5))

    @gpuad.compile
    def train(x, y):
        loss = _fit(model, opt, x, y)
        trainer.scheduler.step()
        return loss
    x = gpuad.tensor(np.ones((2, 3), np.float32), device=device)
    y = gpuad.tensor([0, 1], device=device)
    for _ in range(3):
        train(x, y)
    trainer.scheduler = gpuad.optim.lr_scheduler.ExponentialLR(opt, 0.1)
    train(x, y)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3 * 0.1)
    assert trainer.scheduler.last_epoch == 1 and train.traces == 3


def test_train_eval_mode_and_grad_mode_select_programs():
    model = models.GPT(vocab_size=7, block_size=4, n_layer=1, n_head=1, n_embd=8, dropout=0.5)

    @gpuad.compile
    def logits(idx):
        return model(idx)

    idx = gpuad.tensor([[1, 2, 3]])
    with gpuad.no_grad():
        model.eval()
        first = _host(logits(idx))
        np.testing.assert_array_equal(_host(logits(idx)), first)  # no dropout: a replay
        model.train()
        trained = _host(logits(idx))
        assert not np.array_equal(trained, first)
        model.eval()
        np.testing.assert_array_equal(_host(logits(idx)), first)
    assert logits.traces == 2
    out = logits(idx)  # with grad: a third program, whose output carries its backward
    assert out.requires_grad and logits.traces == 3


def test_freezing_and_unfreezing_a_parameter_between_calls_selects_programs():
    # requires_grad of what the step reads is part of what a program checks: a replay recorded
    # with the weight trainable would go on updating it after the user froze it
    rng = np.random.default_rng(4)
    batches = _batches(rng, 12, _mlp_batch)

    def toggle(opt, i):
        weight = opt.param_groups[0]["params"][0]
        weight.requires_grad_(not 4 <= i < 8)  # frozen for calls 5 to 8
    eager, _, _ = _run(_mlp, batches, "cpu", False, after_step=toggle)
    compiled, step, _ = _run(_mlp, batches, "cpu", True, after_step=toggle)
    _assert_same(eager, compiled, "cpu")
    assert step.traces == 3 and len(step.programs()) == 2  # unfrozen again: the first program


def test_a_step_that_asks_for_its_inputs_gradient_replays_the_eager_step():
    # adversarial training (FGSM): the step makes its argument require grad and reads its .grad;
    # that is the caller's tensor, not a parameter frozen or unfrozen, so it replays
    def build(device):
        model, _, opt = _mlp(device)

        def step(x, y):
            x.requires_grad_(True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            x_adv = (x + 0.1 * x.grad.sign()).detach()
            loss = F.cross_entropy(model(x_adv), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return model, step, opt
    batches = _batches(np.random.default_rng(14), 6, _mlp_batch)
    eager, _, _ = _run(build, batches, "cpu", False)
    compiled, step, _ = _run(build, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    assert step.fallback is None and step.programs()


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1}],
                         ids=["tiled", "overlapping"])
def test_a_nan_that_reaches_max_pooling_after_tracing_is_routed_as_eagerly(kwargs):
    # the pooling backward asks on the host whether a window holds a NaN (its gradient goes to
    # the last one, as torch's); that question is inside one fused call, asked again each replay
    def step(x, w):
        x.requires_grad_(True)
        (F.max_pool2d(x, **kwargs) * w).sum().backward()
        return x.grad

    rng = np.random.default_rng(15)
    xs = [rng.standard_normal((2, 3, 6, 6)) for _ in range(4)]
    xs[3][1, 2, 2, 3] = xs[3][1, 2, 3, 2] = np.nan  # first seen by a replay
    w = rng.standard_normal(F.max_pool2d(gpuad.tensor(xs[0]), **kwargs).shape)
    compiled = gpuad.compile(step)
    for x in xs:
        got = compiled(gpuad.tensor(x), gpuad.tensor(w)).numpy()
        np.testing.assert_array_equal(got, step(gpuad.tensor(x), gpuad.tensor(w)).numpy())
    assert compiled.fallback is None and compiled.programs()
    assert got[1, 2, 3, 2] != 0  # the last NaN of every window holding both
    # and (2, 3) alone in the tiled one (both in one window), some overlapping ones' last
    assert (got[1, 2, 2, 3] == 0) == (kwargs["kernel_size"] == 2)


def _relu_pool_build(kwargs, use=None):
    """A conv, ReLU, max pooling and a linear head trained with Adam; `use` reads the ReLU's
    output or its gradient somewhere else too."""
    def build(device):
        gpuad.manual_seed(0)
        conv = gpuad.nn.Conv2d(1, 3, 3, padding=1)
        width = F.max_pool2d(gpuad.zeros((1, 3, 6, 6)), **kwargs).numel()
        model = gpuad.nn.Sequential(conv, gpuad.nn.Linear(width, 4)).to(device)
        opt = gpuad.optim.Adam(model.parameters(), lr=0.01)

        def step(x, y):
            h = F.relu(model[0](x))
            if use == "hook":
                h.register_hook(lambda g: g * 2)
            loss = F.cross_entropy(model[1](F.max_pool2d(h, **kwargs).flatten(1)), y)
            if use == "twice":
                loss = loss + h.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return model, step, opt
    return build


def _pools_first(program):
    """How many max poolings the program runs before their ReLU (compiler/rewrite.py)."""
    instrs = program.instrs
    return sum(a.name == "max_pool" and b.name == "relu" and b.reads == (a.outs,)
               for a, b in zip(instrs, instrs[1:]))


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1},
                                    {"kernel_size": 3, "stride": 2, "padding": 1}],
                         ids=["tiled", "overlapping", "padded"])
@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_max_pooling_of_a_relu_pools_first_with_the_eager_steps_bits(kwargs, device):
    # relu then max_pool is replayed as max_pool then relu (the ReLU and its backward on the
    # pooled array); ties (the zeros ReLU makes, windows of negatives) and overlapping windows
    batches = _batches(np.random.default_rng(16), 6, lambda r: (
        r.integers(-2, 3, (4, 1, 6, 6)).astype(np.float32), r.integers(0, 4, 4)))
    build = _relu_pool_build(kwargs)
    eager, _, _ = _run(build, batches, device, False)
    compiled, step, _ = _run(build, batches, device, True)
    _assert_same(eager, compiled, device)
    assert step.fallback is None and [_pools_first(p) for p in step.programs()] == [1]


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1}],
                         ids=["tiled", "overlapping"])
def test_pooling_first_routes_nan_windows_and_their_gradients_as_eagerly(kwargs):
    # a NaN window's gradient goes to its last NaN, which ReLU passes, in either order
    def step(x, w):
        x.requires_grad_(True)
        (F.max_pool2d(F.relu(x), **kwargs) * w).sum().backward()
        return x.grad

    rng = np.random.default_rng(18)
    xs = [rng.integers(-2, 3, (2, 3, 6, 6)).astype(float) for _ in range(4)]
    for x in xs[1:]:
        x.flat[rng.choice(x.size, 6, replace=False)] = np.nan
    w = rng.standard_normal(F.max_pool2d(gpuad.tensor(xs[0]), **kwargs).shape)
    compiled = gpuad.compile(step)
    for x in xs:
        got = compiled(gpuad.tensor(x), gpuad.tensor(w)).numpy()
        np.testing.assert_array_equal(got, step(gpuad.tensor(x), gpuad.tensor(w)).numpy())
    assert [_pools_first(p) for p in compiled.programs()] == [1]
    assert (got[np.isnan(xs[-1])] != 0).any()


@pytest.mark.parametrize("use", ["twice", "hook"])
def test_a_relu_output_read_elsewhere_keeps_its_pooling_after_it(use):
    # its gradient is not only the pooling's: the replay runs the ops as they were recorded
    rng = np.random.default_rng(17)
    batches = _batches(rng, 4, lambda r: (r.standard_normal((4, 1, 6, 6)).astype(np.float32),
                                          r.integers(0, 4, 4)))
    build = _relu_pool_build({"kernel_size": 2}, use)
    eager, _, _ = _run(build, batches, "cpu", False)
    compiled, step, _ = _run(build, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    assert step.programs() and [_pools_first(p) for p in step.programs()] == [0]


@pytest.mark.parametrize("register", ["hook", "post_accumulate_grad_hook"])
def test_a_hook_put_on_a_parameter_after_tracing_is_not_skipped(register):
    # a replay runs no Python in backward: a program recorded before the hook existed must not
    # match any more (the new trace sees the hook and falls back to eager)
    batches = _batches(np.random.default_rng(6), 8, _mlp_batch)

    def hook_at(opt, i):
        if i == 3:
            weight = opt.param_groups[0]["params"][0]
            if register == "hook":
                weight.register_hook(lambda g: g * 0.5)
            else:
                weight.register_post_accumulate_grad_hook(lambda p: p.grad.mul_(0.5))
    eager, _, _ = _run(_mlp, batches, "cpu", False, after_step=hook_at)
    with pytest.warns(CompileWarning, match="has hooks"):
        compiled, step, _ = _run(_mlp, batches, "cpu", True, after_step=hook_at)
    _assert_same(eager, compiled, "cpu")
    assert step.fallback is not None


@pytest.mark.parametrize("swap", ["activation", "linear", "parameter"])
def test_a_layer_or_parameter_replaced_after_tracing_is_used_as_eagerly(swap):
    # a replay reads the modules and parameters it was traced with: one replaced since (a new
    # layer in a Sequential, a new Parameter object) must make it re-trace
    batches = _batches(np.random.default_rng(8), 8, _mlp_batch)
    models_built = []

    def build(device):
        model, step, opt = _mlp(device)
        models_built.append(model)
        return model, step, opt

    def swap_at(opt, i):
        net = models_built[-1].net
        if i == 3 and swap == "activation":
            net[2] = gpuad.nn.Tanh()
        elif i == 3 and swap == "linear":
            gpuad.manual_seed(5)
            net[3] = gpuad.nn.Linear(16, 5)  # not in the optimizer: it stays as it is
        elif i == 3:  # a new Parameter object, which the optimizer then trains
            new = gpuad.nn.Parameter(net[1].weight.detach() * 0.5)
            net[1].weight = opt.param_groups[0]["params"][0] = new
    eager, _, _ = _run(build, batches, "cpu", False, after_step=swap_at)
    compiled, step, _ = _run(build, batches, "cpu", True, after_step=swap_at)
    _assert_same(eager, compiled, "cpu")
    # a new trace after the swap, and one more where the next call differs again: the new
    # parameter's momentum buffer appears, the new layer's gradients are there (nobody drops them)
    assert step.traces == {"activation": 3, "linear": 4, "parameter": 4}[swap]


@pytest.mark.parametrize("change", ["add_param_group", "append", "pop"])
def test_parameters_added_to_or_removed_from_the_optimizer_are_updated_as_eagerly(change):
    # which parameters the optimizer steps is part of the program: one added since (a layer
    # unfrozen by adding it to the optimizer) or removed must make it re-trace
    batches = _batches(np.random.default_rng(10), 8, _mlp_batch)

    def build(device):
        model = models.MLP(12, (16,), 5).to(device)
        params = list(model.parameters())
        opt = gpuad.optim.SGD(params[2:], lr=0.1, momentum=0.9)  # the first layer not at first
        opt.first_layer = params[:2]
        return model, _classifier_step(model, opt), opt

    def change_at(opt, i):
        if i != 3:
            return
        if change == "add_param_group":
            opt.add_param_group({"params": opt.first_layer, "lr": 0.05})
        elif change == "append":
            opt.param_groups[0]["params"].append(opt.first_layer[0])
        else:
            opt.param_groups[0]["params"].pop()
    eager, _, _ = _run(build, batches, "cpu", False, after_step=change_at)
    compiled, step, _ = _run(build, batches, "cpu", True, after_step=change_at)
    _assert_same(eager, compiled, "cpu")
    assert step.traces >= 3


def _peak(step, batches, warm=3):
    for x, y in batches[:warm]:
        step(x, y)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for x, y in batches[warm:]:
            step(x, y)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_program_keeps_no_array_it_never_reads():
    # the old gradients a traced call found (zero_grad drops them) must not live on in the program
    model = models.MLP(64, (64,), 10)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = gpuad.compile(_classifier_step(model, opt))
    rng = np.random.default_rng(0)
    batch = (gpuad.tensor(rng.standard_normal((8, 64)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 10, 8)))
    step(*batch)  # creates the momentum buffers: not kept
    old = [weakref.ref(p.grad.array) for p in model.parameters()]
    step(*batch)  # recorded and kept: it read those gradients before zero_grad dropped them
    step(*batch)
    assert step.programs()
    gc.collect()
    assert [r() is None for r in old] == [True] * len(old)


def _probed_step(probe):
    """(model, an MLP step with SGD momentum that calls probe(logits) between zero_grad and
    backward, a batch for it)."""
    model = models.MLP(64, (64,), 10)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        probe(logits)
        loss.backward()
        opt.step()
        return loss
    rng = np.random.default_rng(0)
    batch = (gpuad.tensor(rng.standard_normal((8, 64)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 10, 8)))
    return model, step, batch


def _noting(make):
    """(entries, probe): probe(logits) appends make(logits) to entries, a deque, which the
    recording's snapshot of Python state does not watch (a list growing, or a counter moving,
    in every call would not be kept: a replay would not grow or move it). The probe watches
    the recording; it is not meant to be replayed."""
    entries = collections.deque()
    return entries, lambda logits: entries.append(make(logits))


def test_a_gradient_the_traced_step_drops_is_freed_then_as_in_eager():
    # a recording must not keep the old gradients alive until it ends: its backward would hold
    # the model's size twice over (LeNet5's recording peaked 0.8 MB above its eager step)
    old = []
    freed, probe = _noting(lambda _: [ref() is None for ref in old])
    model, step, batch = _probed_step(probe)
    compiled = gpuad.compile(step)
    for fn in (step, step, compiled):  # eager twice, then a traced call, which is kept
        old[:] = [weakref.ref(p.grad.array) for p in model.parameters() if p.grad is not None]
        fn(*batch)
    assert compiled.programs()
    assert list(freed) == [[], [True] * 4, [True] * 4], freed
    kept = next(model.parameters()).grad  # one the user holds on to: given back its real array
    before = kept.array.copy()
    gpuad.compile(step)(*batch)
    assert type(kept.array) is np.ndarray and np.array_equal(kept.array, before)


def test_recordings_are_freed_at_once_and_keep_no_tensor_of_their_call():
    # a recursive closure once kept every recording (thousands of objects) alive until the
    # collector ran, and cross-entropy's error message, recorded in the program, the traced
    # call's logits (their array and graph) for as long as the program lived
    logits_seen, probe = _noting(lambda logits: weakref.ref(logits.array))
    _, step, batch = _probed_step(probe)
    compiled = gpuad.compile(step)
    gc.collect()
    gc.disable()
    try:
        for _ in range(4):
            compiled(*batch)
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert len(compiled.programs()) == 1 and len(logits_seen) == 2  # two traced calls
    assert [ref() is None for ref in logits_seen] == [True, True]
    assert cyclic == 0


def test_compiled_peak_memory_is_not_above_eager():
    rng = np.random.default_rng(5)
    batches = [(gpuad.tensor(rng.standard_normal((64, 256)).astype(np.float32)),
                gpuad.tensor(rng.integers(0, 10, 64))) for _ in range(6)]
    peaks = {}
    for compiled in (False, True):
        gpuad.manual_seed(0)
        model = models.MLP(256, (256, 256), 10)
        step = _classifier_step(model, gpuad.optim.Adam(model.parameters(), lr=1e-3))
        peaks[compiled] = _peak(gpuad.compile(step) if compiled else step, batches)
    assert peaks[True] <= peaks[False], peaks


def _wide_mlp(device, optimizer="sgd"):
    model = models.MLP(64, (128, 128), 10).to(device)
    params = model.parameters()
    opt = {"sgd": lambda: gpuad.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                          weight_decay=1e-4),
           "adam": lambda: gpuad.optim.Adam(params, lr=1e-3, weight_decay=1e-4),
           "rmsprop": lambda: gpuad.optim.RMSprop(params, lr=1e-3, momentum=0.5)}[optimizer]()
    return model, _classifier_step(model, opt), opt


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_reclaimed_gradients_replay_the_eager_step(device, optimizer):
    # big enough that gradients go into the last replay's arrays (SGD's and Adam's on the CPU:
    # into one flat buffer, see the flat tests): still bit for bit the eager step
    rng = np.random.default_rng(7)
    batches = [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
               for _ in range(12)]
    build = functools.partial(_wide_mlp, optimizer=optimizer)
    eager, _, _ = _run(build, batches, device, False)
    compiled, step, _ = _run(build, batches, device, True)
    _assert_same(eager, compiled, device)
    if device == "cuda":
        return  # graphs keep their own memory
    program = step.programs()[-1]
    flat = device == "cpu" and optimizer != "rmsprop"  # rmsprop's update is ufuncs, not a kernel
    assert ("F0.gradients()" if flat else "RECLAIM(") in program.source
    # intermediates are the allocator's, as in eager mode: no buffers kept between replays
    assert program.reused == 0 and not re.search(r"out=b\d", program.source)


def test_an_epochs_smaller_last_batch_replays_its_own_program():
    # epochs whose last batch is smaller: two programs, replayed in turn, bit for bit the eager
    # steps
    rng = np.random.default_rng(9)
    batches = [(rng.standard_normal((n, 64)).astype(np.float32), rng.integers(0, 10, n))
               for n in [32, 32, 24] * 4]
    eager, _, _ = _run(_wide_mlp, batches, "cpu", False)
    compiled, step, _ = _run(_wide_mlp, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    rows = {p.values[p.spec.inputs[0][0]].meta[1][0] for p in step.programs()}
    assert rows == {24, 32} and step.traces <= 4  # first step, 32 rows, 24 rows (+ its state)


def test_a_gradient_the_user_kept_is_never_overwritten():
    model, step, _ = _wide_mlp("cpu")
    compiled = gpuad.compile(step)
    rng = np.random.default_rng(8)
    batch = [gpuad.tensor(rng.standard_normal((32, 64)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 10, 32))]
    for _ in range(3):
        compiled(*batch)
    weight = next(model.parameters())
    kept, view = weight.grad, weight.grad.array[0]
    before = _host(kept)
    compiled(*batch)  # its zero_grad drops `kept`, but we still hold it: a new array
    assert weight.grad is not kept and np.array_equal(_host(kept), before)
    assert not np.shares_memory(weight.grad.array, kept.array)
    del kept
    compiled(*batch)  # `view` still pins the array's memory
    assert np.array_equal(view, before[0])
    last = id(weight.grad.array)  # an id: holding the array would keep it from being reclaimed
    del view
    compiled(*batch)  # nothing holds the last gradient now: the replay writes into it
    assert id(weight.grad.array) == last


class _Slot(enum.Enum):
    LOGITS = "logits"


class _Averaged(gpuad.optim.Optimizer):
    """A user's optimizer whose state key is an enum member."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    def _update(self, p, g, state, group):
        average = state.get(_Slot.LOGITS)
        if average is None:
            average = state[_Slot.LOGITS] = backend.xp_of(p).zeros_like(p)
        average *= 0.9
        average += g
        p -= group["lr"] * average


def test_keys_that_python_cannot_write_out_are_replayed(device):
    # Dict keys without a source form (an enum member, an object) in the batch, the result and an
    # optimizer's state: the program once wrote their repr into its source, which is not Python,
    # and every such step fell back to eager with a SyntaxError.
    marker = object()

    def run(compiled):
        gpuad.manual_seed(0)
        model = models.MLP(8, (8,), 4).to(device)
        opt = _Averaged(model.parameters(), lr=0.1)

        def step(batch):
            loss = F.cross_entropy(model(batch[_Slot.LOGITS]), batch[marker])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {_Slot.LOGITS: loss, marker: 1.5}

        fn = gpuad.compile(step) if compiled else step
        rng = np.random.default_rng(12)
        losses = []
        for _ in range(5):
            batch = {_Slot.LOGITS: gpuad.tensor(rng.standard_normal((2, 8)).astype(np.float32),
                                                device=device),
                     marker: gpuad.tensor(rng.integers(0, 4, 2), device=device)}
            with _no_sync(device):
                result = fn(batch)
            assert list(result) == [_Slot.LOGITS, marker] and result[marker] == 1.5
            losses.append(float(backend.asnumpy(result[_Slot.LOGITS].array)))
        return (losses, [_host(p) for p in model.parameters()]), fn

    eager, _ = run(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)  # no fallback
        compiled, fn = run(True)
    _assert_same(eager, compiled, device)
    assert fn.programs()


class _Holder:
    """A trainer's attributes: a model, its optimizer and layers the step may not call."""


def test_attributes_set_under_names_python_cannot_write_after_a_dot_are_guarded():
    # setattr(trainer, "lambda", model): its guard once read `.lambda` (a SyntaxError, so eager
    # from then on); now through the object's __dict__, and switching the model to eval still
    # re-traces
    trainer = _Holder()
    model = models.MLP(8, (8,), 4)
    setattr(trainer, "lambda", model)
    setattr(trainer, "the-optimizer", gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))

    def step(x, y):
        opt = getattr(trainer, "the-optimizer")
        loss = F.cross_entropy(getattr(trainer, "lambda")(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    compiled = gpuad.compile(step)
    rng = np.random.default_rng(13)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)  # no fallback
        for _ in range(4):
            compiled(gpuad.tensor(rng.standard_normal((2, 8)).astype(np.float32)),
                     gpuad.tensor(rng.integers(0, 4, 2)))
        (program,) = compiled.programs()
        assert "__dict__['lambda']" in program.source
        model.eval()
        compiled(gpuad.tensor(rng.standard_normal((2, 8)).astype(np.float32)),
                 gpuad.tensor(rng.integers(0, 4, 2)))
    assert len(compiled.programs()) == 2


def test_replay_locals_never_take_the_name_of_an_object_it_reads(device):
    # The replay's locals (v7, old22, ...) and the objects it reads by name (o22 for the 11th
    # module found) must not meet. A step whose argument held a dozen modules once replayed
    # 'o22 = t18.grad' for a reclaimed gradient, and 'o22.training' raised UnboundLocalError.
    rng = np.random.default_rng(11)
    batches = [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
               for _ in range(5)]

    def step(holder, x, y):
        loss = F.cross_entropy(holder.model(x), y)
        if x.shape[0] < 0:  # never: the layers are found, guarded and named all the same
            loss = sum(getattr(holder, f"unused{i}")(x).sum() for i in range(holder.unused))
        holder.opt.zero_grad()
        loss.backward()
        holder.opt.step()
        return loss

    for unused in range(8, 16):  # the numbering moves with the count of modules found
        runs = []
        for compiled in (False, True):
            gpuad.manual_seed(0)
            holder = _Holder()
            holder.model = models.MLP(64, (128,), 10).to(device)
            holder.opt = gpuad.optim.RMSprop(holder.model.parameters(), lr=1e-3, momentum=0.5)
            holder.unused = unused
            for i in range(unused):
                setattr(holder, f"unused{i}", gpuad.nn.ReLU())
            fn = gpuad.compile(step) if compiled else step
            losses = []
            for x, y in batches:
                with _no_sync(device):
                    loss = fn(holder, gpuad.tensor(x, device=device),
                              gpuad.tensor(y, device=device))
                losses.append(float(gpuad.backend.asnumpy(loss.array)))
            runs.append((losses, [_host(p) for p in holder.model.parameters()]))
        _assert_same(*runs, device)
        for program in fn.programs():
            replay = program.namespace["replay"]
            assert not set(replay.__code__.co_varnames) & set(program.namespace)


def _flat_run(step):
    (program,) = step.programs()
    (run,) = program.flat_runs
    return run


def test_sgd_and_adam_update_every_parameter_at_once_over_flat_buffers():
    # the run of per-parameter kernel calls replays as one call over flat buffers that the
    # parameters, their gradients and the optimizer state are views of (the floor's layout)
    for optimizer, keys in (("sgd", ["momentum_buffer"]), ("adam", ["exp_avg", "exp_avg_sq"])):
        model, step, opt = _wide_mlp("cpu", optimizer)
        compiled = gpuad.compile(step)
        rng = np.random.default_rng(4)
        for _ in range(4):
            compiled(gpuad.tensor(rng.standard_normal((32, 64)).astype(np.float32)),
                     gpuad.tensor(rng.integers(0, 10, 32)))
        run = _flat_run(compiled)
        assert run.ok is True
        params = list(model.parameters())
        arrays = [[p.array for p in params], [p.grad.array for p in params]]
        arrays += [[opt.state[p][k] for p in params] for k in keys]
        for views in arrays:
            flat = views[0].base
            assert flat.ndim == 1 and flat.size == sum(v.size for v in views)
            assert all(v.base is flat for v in views)


def test_freed_memory_goes_back_before_compiling_and_after_the_move_into_flat_buffers(
        monkeypatch):
    # Freed memory goes back to the kernel (malloc_trim), which gpuad's malloc tuning would
    # otherwise keep: before CPython compiles a new program's source (its parser's memory must not
    # stack on what the recorded step left), and after the replay that moved the parameters and
    # state into flat buffers (their old arrays are gone for good). A source compiled before is
    # not compiled again, and frees nothing.
    calls = []
    monkeypatch.setattr(backend, "release_freed_memory", lambda: calls.append(1))
    gpuad.compiler.program._code.cache_clear()  # a source compiled by an earlier test
    rng = np.random.default_rng(5)
    for expected in ([0, 1, 2, 2, 2, 2], [0, 0, 1, 1, 1, 1]):  # the second: the same source
        calls.clear()
        model, step, opt = _wide_mlp("cpu", "sgd")
        compiled = gpuad.compile(step)
        for i in range(6):
            compiled(gpuad.tensor(rng.standard_normal((32, 64)).astype(np.float32)),
                     gpuad.tensor(rng.integers(0, 10, 32)))
            assert len(calls) == expected[i]  # two recordings (the second compiled), the move
        assert _flat_run(compiled).ok is True


def test_what_others_hold_is_never_moved_into_a_flat_buffer():
    # a parameter's array that the user holds stays the parameter's: no flat update then, and
    # still bit for bit the eager steps
    rng = np.random.default_rng(10)
    batches = [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
               for _ in range(6)]
    eager, _, _ = _run(_wide_mlp, batches, "cpu", False)
    held = {}

    def build(device):
        model, step, opt = _wide_mlp(device)
        held["weight"] = next(model.parameters()).array
        held["model"] = model
        return model, step, opt
    compiled, step, _ = _run(build, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    assert _flat_run(step).ok is None
    assert next(held["model"].parameters()).array is held["weight"]


def _steps_with_new_optimizers(compiled, order, batches, hold_view=False):
    """A model trained by two steps, each with an optimizer of its own (a new optimizer and a new
    step over the same parameters, as after a learning-rate search), called in `order` (0s and
    1s): (losses, copies of the parameters, the model, the steps, the user's view if held)."""
    gpuad.manual_seed(0)
    model = models.MLP(64, (128, 128), 10)
    params = list(model.parameters())
    steps, view = [], None
    for kind in (0, 1):
        opt = (gpuad.optim.SGD(params, lr=0.05, momentum=0.9) if kind == 0 else
               gpuad.optim.Adam(params, lr=1e-3))
        step = _classifier_step(model, opt)
        steps.append(gpuad.compile(step) if compiled else step)
    losses = []
    for i, (which, (x, y)) in enumerate(zip(order, batches)):
        losses.append(float(steps[which](gpuad.tensor(x), gpuad.tensor(y)).item()))
        if hold_view and i == 3:
            view = next(model.parameters()).array[:2]  # a view of the first weight's memory
    return losses, [p.array.copy() for p in model.parameters()], model, steps, view


def _order_batches(order, seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
            for _ in order]


@pytest.mark.parametrize("order,final", [
    ([0] * 4 + [1] * 6, [False, True]),  # False: to move them back at its next replay
    ([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0], [None, True]),  # None: per parameter from now on
    ([0, 0, 0] + [1, 0] * 6, [None, True])], ids=["then", "alternating", "every-call"])
def test_a_new_compiled_step_moves_parameters_another_one_flattened(order, final):
    # the second step's parameters are views of the first step's flat buffer that only
    # gpuad.compile holds: it moves them into its own (one update call for all); the first step
    # moves them back when it runs again, once, and from then on updates them where they are
    # (per parameter), so steps taking turns stop copying; bit for bit the eager steps throughout
    batches = _order_batches(order, 12)
    eager_losses, eager_params, _, _, _ = _steps_with_new_optimizers(False, order, batches)
    losses, params, model, steps, _ = _steps_with_new_optimizers(True, order, batches)
    assert losses == eager_losses
    for a, b in zip(params, eager_params):
        assert np.array_equal(a, b)
    runs = [_flat_run(step) for step in steps]
    assert [run.ok for run in runs] == final
    owner = runs[1]
    flat = owner.program.namespace[owner.flat_name(owner.externals[0][0])]
    assert all(p.array.base is flat for p in model.parameters())


def test_programs_of_one_step_share_its_flat_buffers_epoch_after_epoch():
    # the short last batch's program binds the flat buffers the full batches' program made (no
    # copy, nobody told to move back), so every epoch both update all parameters in one call
    rng = np.random.default_rng(14)
    sizes = [32, 32, 32, 20] * 4
    batches = [(rng.standard_normal((n, 64)).astype(np.float32), rng.integers(0, 10, n))
               for n in sizes]
    eager, _, _ = _run(_wide_mlp, batches, "cpu", False)
    compiled, step, _ = _run(_wide_mlp, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    runs = [run for program in step.programs() for run in program.flat_runs]
    assert len(runs) == 2 and [run.ok for run in runs] == [True, True]
    assert [run.taken for run in runs] == [0, 0]


def test_a_view_the_user_holds_keeps_parameters_where_they_are():
    # a view of a parameter holds the flat buffer, not the parameter's array: the buffer's count
    # keeps the second step from moving them (it updates parameter by parameter), so the view
    # still shows the parameter; bit for bit the eager steps
    order = [0] * 5 + [1] * 5
    batches = _order_batches(order, 13)
    eager_losses, eager_params, _, _, _ = _steps_with_new_optimizers(False, order, batches)
    losses, params, model, steps, view = _steps_with_new_optimizers(True, order, batches,
                                                                    hold_view=True)
    assert losses == eager_losses
    for a, b in zip(params, eager_params):
        assert np.array_equal(a, b)
    assert _flat_run(steps[0]).ok is True and _flat_run(steps[1]).ok is None
    weight = next(model.parameters()).array
    assert np.shares_memory(view, weight) and np.array_equal(view, weight[:2])


def test_an_evaluation_step_compiled_first_does_not_keep_the_training_step_from_moving():
    # the evaluation program's own references to the parameters are gpuad.compile's, not a
    # user's: the training step still moves them into flat buffers, and the evaluation program
    # then binds the moved arrays (not the old ones, which would stay alive through it)
    model = models.MLP(12, (16,), 5)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = gpuad.compile(_classifier_step(model, opt))

    @gpuad.compile
    def evaluate(x):
        with gpuad.no_grad():
            return model(x)
    rng = np.random.default_rng(11)
    x, y = map(gpuad.tensor, _mlp_batch(rng))
    for _ in range(3):
        evaluate(x)
    for _ in range(4):
        train(x, y)
    assert [run.ok for p in train.programs() for run in p.flat_runs] == [True]
    program = evaluate.programs()[0]
    bound = [v.real for v in program.values if v.kind == "external"]
    params = [p.array for p in model.parameters()]
    assert all(any(b is p for p in params) for b in bound)
    np.testing.assert_array_equal(evaluate(x).numpy(), model(x).detach().numpy())


def test_parameters_replaced_or_in_groups_of_their_own_still_replay_the_eager_step():
    rng = np.random.default_rng(11)
    batches = [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
               for _ in range(8)]

    def two_groups(device):  # other learning rates: the run goes parameter by parameter
        model = models.MLP(64, (128, 128), 10).to(device)
        params = list(model.parameters())
        opt = gpuad.optim.SGD([{"params": params[:2], "lr": 0.2}, {"params": params[2:]}],
                              lr=0.05, momentum=0.9)
        return model, _classifier_step(model, opt), opt

    def replace(opt, i):  # new arrays for the parameters (as a load might make): moved again
        if i == 4:
            for group in opt.param_groups:
                for p in group["params"]:
                    p.array = p.array.copy()
    for build, after in ((two_groups, None), (_wide_mlp, replace)):
        eager, _, _ = _run(build, batches, "cpu", False, after)
        compiled, step, _ = _run(build, batches, "cpu", True, after)
        _assert_same(eager, compiled, "cpu")
        assert _flat_run(step).ok is True


def test_host_numbers_shared_only_by_updates_that_would_compute_the_same():
    # a replay works out the host numbers of a group's updates once for the parameters that
    # share them: the same step count, and any shape when the update is optim.layout_free. A
    # parameter that joined later (its own step count) and a subclass whose update reads the
    # shape (not layout_free, as it overrides _update) get their own.
    class ShapeScaledSGD(gpuad.optim.SGD):
        def _update(self, p, g, state, group):
            state["step"] = state.get("step", 0) + 1
            p -= group["lr"] / (p.shape[-1] * state["step"]) * g

    assert gpuad.optim.Adam._update.layout_free and not hasattr(ShapeScaledSGD._update,
                                                                  "layout_free")
    rng = np.random.default_rng(5)
    batches = [(rng.standard_normal((16, 12)).astype(np.float32), rng.integers(0, 5, 16))
               for _ in range(7)]

    def build(make_opt):
        def build_on(device):
            first, second = gpuad.nn.Linear(12, 12).to(device), gpuad.nn.Linear(12, 5).to(device)
            skip = gpuad.nn.Linear(12, 5).to(device)
            opt = make_opt([*first.parameters(), *second.parameters(), *skip.parameters()])

            def step(x, y):  # first and second join after three steps (a re-trace)
                deep = settings["deep"]
                logits = skip(x) + (second(F.relu(first(x))) if deep else 0)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                return loss
            return gpuad.nn.ModuleList([first, second, skip]), step, opt
        return build_on

    def deepen(opt, i):
        settings["deep"] = i >= 2
    for make_opt in (lambda ps: gpuad.optim.Adam(ps, lr=0.01),
                     lambda ps: ShapeScaledSGD(ps, lr=0.5)):
        settings = {"deep": False}
        eager, _, _ = _run(build(make_opt), batches, "cpu", False, deepen)
        settings = {"deep": False}
        compiled, step, opt = _run(build(make_opt), batches, "cpu", True, deepen)
        _assert_same(eager, compiled, "cpu")
        assert sorted({s["step"] for s in opt.state.values()}) == [4, 7]  # steps kept apart


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_replay_checks_class_indices_and_changes_nothing_when_one_is_bad(optimizer):
    # numpy would read a negative index from the end: the replay makes eager's check on every
    # batch, before the old gradients go and before Adam's step count moves
    model = models.MLP(12, (16,), 5)
    opt = (gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else gpuad.optim.Adam(model.parameters(), lr=0.01))
    compiled = gpuad.compile(_classifier_step(model, opt))
    rng = np.random.default_rng(12)
    for _ in range(3):
        compiled(*map(gpuad.tensor, _mlp_batch(rng)))
    x, _ = _mlp_batch(rng)
    params = [_host(p) for p in model.parameters()]
    grads = [p.grad for p in model.parameters()]
    state = [{k: np.copy(v) for k, v in opt.state[p].items()} for p in model.parameters()]
    for bad in (-3, 5):
        target = np.zeros(8, np.int64)
        target[3] = bad
        with pytest.raises(IndexError, match=f"cross_entropy: target contains class index {bad}"):
            compiled(gpuad.tensor(x), gpuad.tensor(target))
        assert [p.grad for p in model.parameters()] == grads
        assert all(np.array_equal(_host(p), a) for p, a in zip(model.parameters(), params))
        for p, before in zip(model.parameters(), state):
            assert opt.state[p].keys() == before.keys()
            assert all(np.array_equal(opt.state[p][k], v) for k, v in before.items())
    assert compiled.traces == 2
    compiled(*map(gpuad.tensor, _mlp_batch(rng)))  # a good batch replays and steps on
    assert compiled.traces == 2 and not np.array_equal(_host(next(model.parameters())), params[0])


def test_an_embedding_replay_checks_its_indices():
    emb = gpuad.nn.Embedding(6, 3)
    opt = gpuad.optim.SGD(emb.parameters(), lr=0.1)

    @gpuad.compile
    def step(idx):
        loss = emb(idx).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    for _ in range(3):
        step(gpuad.tensor([0, 5, 2]))
    with pytest.raises(IndexError, match="embedding: index -1 is out of range"):
        step(gpuad.tensor([0, -1, 2]))
    assert step.traces == 2


def test_a_one_hot_target_replays_the_eager_step_and_checks_its_classes():
    # with num_classes given, one_hot's range check is recorded like an index's, not read on the
    # host (which would send the step back to eager)
    def build(device):
        model = models.MLP(12, (16,), 5).to(device)
        opt = gpuad.optim.Adam(model.parameters(), lr=0.01)

        def step(x, y):
            loss = F.mse_loss(model(x), F.one_hot(y, 5).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return model, step, opt
    batches = _batches(np.random.default_rng(14), 6, _mlp_batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        eager, _, _ = _run(build, batches, "cpu", False)
        compiled, step, _ = _run(build, batches, "cpu", True)
    _assert_same(eager, compiled, "cpu")
    traces = step.traces
    x, y = batches[0]
    y = y.copy()
    y[2] = 5
    with pytest.raises(RuntimeError, match="one_hot: class value 5 is outside \\[0, 5\\)"):
        step(gpuad.tensor(x), gpuad.tensor(y))
    assert step.traces == traces


def _gan(device):
    """Two models, two optimizers, two backwards, and `return loss_d + loss_g`: a sum made after
    the backwards freed the graph under it."""
    gen = gpuad.nn.Sequential(gpuad.nn.Linear(4, 16), gpuad.nn.LeakyReLU(0.2),
                              gpuad.nn.Linear(16, 12), gpuad.nn.Tanh()).to(device)
    disc = gpuad.nn.Sequential(gpuad.nn.Linear(12, 16), gpuad.nn.LeakyReLU(0.2),
                               gpuad.nn.Linear(16, 1)).to(device)
    opt_g = gpuad.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = gpuad.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))

    def step(x, y):
        real = gpuad.ones(x.shape[0], 1, device=x.device)
        fake = gen(gpuad.randn(x.shape[0], 4, device=x.device))
        loss_d = (F.binary_cross_entropy_with_logits(disc(x), real) +
                  F.binary_cross_entropy_with_logits(disc(fake.detach()), real * 0))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(disc(fake), real)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d + loss_g
    return gpuad.nn.ModuleList([gen, disc]), step, opt_g


def test_a_sum_of_losses_made_after_their_backwards_replays_and_differentiating_it_raises(device):
    batches = _batches(np.random.default_rng(15), 6, _mlp_batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        eager, eager_step, _ = _run(_gan, batches, device, False)
        compiled, step, _ = _run(_gan, batches, device, True)
    _assert_same(eager, compiled, device)
    assert step.traces == 2
    x, y = (gpuad.tensor(a, device=device) for a in batches[0])
    with pytest.raises(RuntimeError) as expected:
        eager_step(x, y).backward()
    for call in range(2):  # a replay's output, then a second one
        out = step(x, y)
        assert out.requires_grad and out.grad_fn is not None
        with pytest.raises(RuntimeError) as raised:
            out.backward()
        assert str(raised.value) == str(expected.value)
        assert "through the graph a second time" in str(raised.value)
    assert step.traces == 2


def test_a_loss_returned_after_its_backward_raises_as_eagerly_when_differentiated_again():
    _, eager_step, _ = _mlp("cpu")
    _, step, _ = _mlp("cpu")
    step = gpuad.compile(step)
    rng = np.random.default_rng(16)
    batches = [tuple(map(gpuad.tensor, _mlp_batch(rng))) for _ in range(3)]
    with pytest.raises(RuntimeError) as expected:
        eager_step(*batches[0]).backward()
    for x, y in batches:  # the traced call, then replays
        loss = step(x, y)
        assert loss.requires_grad and loss.grad_fn is not None
        with pytest.raises(RuntimeError) as raised:
            loss.backward()
        assert str(raised.value) == str(expected.value)
    assert step.traces == 2 and step.programs()


def test_the_default_dtype_selects_the_program():
    @gpuad.compile
    def scaled(x):
        return x * gpuad.tensor(1.5) + gpuad.zeros(2)
    x = gpuad.tensor([1, 2])
    for _ in range(3):
        assert scaled(x).dtype == gpuad.float32
    try:
        gpuad.set_default_dtype(gpuad.float64)
        assert scaled(x).dtype == scaled(x).dtype == gpuad.float64  # recorded anew, then replayed
    finally:
        gpuad.set_default_dtype(gpuad.float32)
    assert scaled(x).dtype == gpuad.float32 and scaled.traces == 2


def test_a_function_compiled_again_reuses_the_compiled_code():
    codes = []
    for _ in range(2):
        _, step, _ = _mlp("cpu")
        compiled = gpuad.compile(step)
        rng = np.random.default_rng(13)
        for _ in range(3):
            compiled(*map(gpuad.tensor, _mlp_batch(rng)))
        codes.append(compiled.programs()[0].run.__code__)
    assert codes[0] is codes[1]


def test_the_program_frees_intermediates_and_drops_dead_work():
    _, step, _ = _mlp("cpu")
    rng = np.random.default_rng(6)
    compiled = gpuad.compile(step)
    for _ in range(3):
        compiled(*map(gpuad.tensor, _mlp_batch(rng, batch=64)))
    (program,) = [p for p in compiled.programs() if "momentum_buffer'] =" not in p.source]
    assert program.reused == 0 and "del " in program.source  # host: the allocator reuses
    assert "out=" in program.source and "Tensor" not in program.source.split("return")[0]


def test_debug_prints_traces_retraces_and_fallbacks(capsys, monkeypatch):
    monkeypatch.setenv("GPUAD_COMPILE_DEBUG", "1")
    double = gpuad.compile(lambda x: x * 2)
    double(gpuad.ones(3))
    double(gpuad.ones(3))
    double(gpuad.ones(4))
    err = capsys.readouterr().err
    assert err.count("gpuad.compile:") == 4  # trace, its summary, re-trace, its summary
    assert "re-tracing (new signature)" in err
    quiet = gpuad.compile(lambda x: x * 2, debug=False)
    quiet(gpuad.ones(3))
    assert capsys.readouterr().err == ""


def test_anomaly_detection_and_debug_mode_run_the_compiled_function_eagerly():
    # their checks are Python on every op, which a replay skips: a NaN must still be caught, and
    # the program is there again once the mode is off
    _, step_fn, _ = _mlp("cpu")
    ran = collections.deque()  # (not a list: one growing in every call would not be kept)

    def counted(x, y):
        ran.append(1)  # Python: runs when the call is eager (or traced), not in a replay
        return step_fn(x, y)
    step = gpuad.compile(counted)
    x, y = map(gpuad.tensor, _mlp_batch(np.random.default_rng(12)))
    for _ in range(3):
        step(x, y)
    assert len(ran) == 2
    bad = gpuad.tensor(np.full(tuple(x.shape), np.nan, np.float32))
    with gpuad.autograd.detect_anomaly(), pytest.raises(gpuad.autograd.AnomalyError):
        step(bad, y)
    gpuad.set_debug(True)
    try:
        step(x, y)
    finally:
        gpuad.set_debug(False)
    assert len(ran) == 4
    step(x, y)
    assert len(ran) == 4 and step.traces == 2 and step.fallback is None


def test_torch_compile_spellings_are_accepted():
    def f(x):
        return x + 1
    for kwargs in ({}, {"fullgraph": True}, {"dynamic": True}, {"mode": "reduce-overhead"},
                   {"backend": "inductor"}, {"options": {"triton.cudagraphs": False}}):
        compiled = gpuad.compile(f, **kwargs)
        assert _host(compiled(gpuad.ones(2))).tolist() == [2.0, 2.0]
    assert gpuad.compile(f, disable=True) is f and gpuad.compile(f, backend="eager") is f
    assert gpuad.compile(mode="max-autotune")(f)(gpuad.ones(1)).item() == 2.0
    with pytest.raises(ValueError, match="unknown mode"):
        gpuad.compile(f, mode="fastest")
    with pytest.raises(ValueError, match="unknown backend"):
        gpuad.compile(f, backend="tvm")

    class Trainer:
        scale = 3.0

        @gpuad.compile
        def run(self, x):
            return x * self.scale
    assert Trainer().run(gpuad.ones(2)).tolist() == [3.0, 3.0]


def test_compiling_a_module_replays_its_forward_under_no_grad():
    model = models.MLP(12, (16,), 5)
    compiled = gpuad.compile(model)
    x = gpuad.tensor(np.random.default_rng(7).standard_normal((4, 12)).astype(np.float32))
    with gpuad.no_grad():
        expected = _host(model(x))
        for _ in range(3):
            np.testing.assert_array_equal(_host(compiled(x)), expected)
    assert compiled.traces == 1


def test_a_tensor_the_step_stores_but_never_reads_does_not_retrace():
    # a trainer keeping its last loss in an attribute: that attribute holds a new tensor after
    # every call, which a replay must not mistake for a changed input
    class Trainer:
        def __init__(self):
            self.model, self.step_fn, self.opt = _mlp("cpu")
            self.last = None

        @gpuad.compile
        def step(self, x, y):
            return self.step_fn(x, y)

    trainer = Trainer()
    rng = np.random.default_rng(9)
    for _ in range(6):
        trainer.last = trainer.step(*map(gpuad.tensor, _mlp_batch(rng)))
    assert Trainer.step.traces == 2 and Trainer.step.fallback is None


def test_tensors_the_traced_call_stored_hold_real_arrays_after_it():
    # what a traced call keeps beyond the tensors the trace swapped (a GradScaler's scale, made on
    # its first use; a loss history; a raw array in a dict) must not hold tracing arrays after
    # it, or eager code meets one later: here the scaler's step reads its inf flag on the host,
    # so the function falls back, and its next, eager call must work
    from gpuad.compiler.arrays import TRACE_TYPES
    model = models.MLP(8, (8,), 3)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    scaler = gpuad.amp.GradScaler()
    history, raw = [], {}

    def step(x, y):
        with gpuad.autocast("cpu", dtype=gpuad.float16):
            loss = F.cross_entropy(model(x), y)
        history.append(loss.detach())
        raw["logits_sum"] = model(x).array.sum()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()
    compiled = gpuad.compile(step)
    rng = np.random.default_rng(2)
    with pytest.warns(CompileWarning, match="host"):
        compiled(gpuad.tensor(rng.standard_normal((4, 8)).astype(np.float32)),
                 gpuad.tensor(rng.integers(0, 3, 4)))
    left = [scaler._scale.array, history[0].array, raw["logits_sum"]]
    assert not any(type(a) in TRACE_TYPES for a in left), [type(a) for a in left]
    compiled(gpuad.tensor(rng.standard_normal((4, 8)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 3, 4)))  # eager now
    assert len(history) == 2 and np.isfinite(history[1].numpy())


def test_two_kinds_of_array_on_one_device_are_named_in_the_error():
    # the message once read "two devices, cpu and cpu" for a leftover tracing array
    from gpuad.compiler.arrays import traced_type
    real = np.ones(2)
    odd = gpuad.Tensor(traced_type(real)(real, 0, None))
    kinds = r"numpy\.ndarray and gpuad\.compiler\.arrays\.Trace_ndarray \(both on cpu\)"
    with pytest.raises(RuntimeError, match=r"add: .*same kind of array.*" + kinds):
        gpuad.ones(2) + odd


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
