"""Reliability, part 1: bad input gets a clear error (the op or layer, the shapes or devices, the
fix) raised before any state changes: no node survives, no version moves, no buffer, parameter,
gradient or optimizer state is touched.

Messages already pinned elsewhere are referenced here, not copied:
- binary ops (add, mul) naming the op and both shapes: test_autograd.py
  test_array_library_errors_name_the_op_and_the_shapes; matmul/mm/bmm/mv/dot/outer/einsum:
  test_ops_linalg.py; conv2d and pooling geometry: test_conv.py; getitem/gather/index_select out of
  range and on the wrong device: test_ops_shape.py; reduction dims: test_ops_reduce.py
- cross_entropy/nll_loss targets of float dtype, out of range, of the wrong shape or device, and
  embedding indices: test_nn.py test_class_target_errors_name_the_function_shapes_and_fix,
  test_embedding_*
- requires_grad on an integer tensor, .numpy() on a tensor that requires grad or lives on the
  strict device, in-place updates from another device: test_tensor.py
- backward twice without retain_graph, backward on a non-scalar without gradient=, gradient of the
  wrong shape, a saved tensor modified in place, mixed devices: test_autograd.py
- load_state_dict naming every missing/unexpected/mis-shaped key and changing nothing:
  test_nn.py test_load_state_dict_names_every_offending_key_and_changes_nothing; optimizer
  load_state_dict group/shape errors: test_optim.py test_load_state_dict_errors
- gpuad.load refusing pickles, torch files, random bytes, truncation, foreign safetensors and bad
  manifests, naming the file, never unpickling: test_checkpoint.py (random corruption is fuzzed in
  test_reliability_properties.py)

The last section holds the gaps found while writing this file (each was a strict xfail with its
reproduction until the fix landed).
"""
import gc
import json
import re

import numpy as np
import pytest
import safetensors.numpy

import gpuad
import gpuad.nn.functional as F
from gpuad import backend, nn, optim
from gpuad.autograd import Node


def _np(t):
    return backend.asnumpy(t.array).copy()


def _live_nodes():
    gc.collect()
    return sum(type(o) is Node for o in gc.get_objects())


def _message(exc, pattern, fn):
    """Run fn, require `exc` whose message matches `pattern`, and return the message only (so no
    traceback keeps the failed call's temporaries, and their nodes, alive)."""
    with pytest.raises(exc, match=pattern) as info:
        fn()
    message = str(info.value)
    del info
    return message


# ---- shapes: ops, layers, losses ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["sub", "div", "pow", "maximum", "minimum", "eq", "lt", "ge",
                                  "logical_and"])
def test_every_binary_op_names_itself_and_both_shapes(name):
    op = getattr(gpuad, name)
    a, b = gpuad.rand(2, 3) + 0.5, gpuad.rand(4) + 0.5
    _message(ValueError, rf"^{name}: .*\(2, 3\), \(4,\)", lambda: op(a, b))


def test_linear_layer_names_its_features_and_the_shape():
    layer = nn.Linear(784, 256)
    _message(ValueError, re.escape("Linear(in_features=784, out_features=256): expected input "
                                   "with 784 features in its last dim, got shape (32, 100)"),
             lambda: layer(gpuad.randn(32, 100)))
    _message(ValueError, re.escape("got shape ()"), lambda: layer(gpuad.tensor(1.0)))
    _message(ValueError, re.escape("linear: input of shape (5, 3) does not fit weight of shape "
                                   "(2, 4) (out_features, in_features): expected 4 features"),
             lambda: F.linear(gpuad.randn(5, 3), gpuad.randn(2, 4)))
    _message(ValueError, re.escape("linear: bias of shape (3,) does not fit weight of shape "
                                   "(2, 4)"),
             lambda: F.linear(gpuad.randn(5, 4), gpuad.randn(2, 4), gpuad.randn(3)))
    assert layer(gpuad.randn(2, 784)).shape == (2, 256)  # the check costs nothing when it fits


def test_conv2d_layer_names_its_channels_and_the_shape():
    conv = nn.Conv2d(3, 16, 3)
    message = _message(ValueError, re.escape("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): "
                                             "expected input with 3 input channels"),
                       lambda: conv(gpuad.randn(2, 5, 8, 8)))
    assert "got shape (2, 5, 8, 8)" in message
    _message(ValueError, r"Conv2d\(3, 16.*got shape \(8, 8\)", lambda: conv(gpuad.randn(8, 8)))
    # right channels, too small an image: conv2d's own message about the sizes comes through
    _message(ValueError, r"^conv2d: kernel size \(3, 3\) is larger than the padded input size "
             r"\(2, 2\)", lambda: conv(gpuad.randn(1, 3, 2, 2)))


@pytest.mark.parametrize("layer,shape", [(nn.BatchNorm1d(4), (2, 3)), (nn.BatchNorm2d(4),
                                                                      (2, 3, 5, 5))])
def test_batch_norm_with_wrong_channels_moves_no_running_statistic(layer, shape):
    layer.train()
    before = {k: _np(v) for k, v in layer.state_dict().items()}
    versions = [b._version for b in layer.buffers()]
    name = type(layer).__name__
    _message(ValueError, re.escape(f"{name}(4): expected input with 4 channels in dim 1, got shape "
                                   f"{shape}"), lambda: layer(gpuad.randn(*shape)))
    assert all(np.array_equal(before[k], _np(v)) for k, v in layer.state_dict().items())
    assert [b._version for b in layer.buffers()] == versions  # nothing written, even in place


def test_functional_batch_norm_checks_every_statistic_before_moving_one():
    mean, var = gpuad.zeros(3), gpuad.ones(3)
    _message(ValueError, re.escape("batch_norm: running_mean of shape (3,) does not fit input of "
                                   "shape (4, 5); expected (5,)"),
             lambda: F.batch_norm(gpuad.randn(4, 5), mean, var, training=True))
    _message(ValueError, r"batch_norm: weight of shape \(2,\)",
             lambda: F.batch_norm(gpuad.randn(4, 3), mean, var, gpuad.ones(2), training=True))
    assert _np(var).tolist() == [1, 1, 1] and var._version == 0 and mean._version == 0


def test_layer_norm_names_the_normalized_shape_and_the_input():
    _message(ValueError, re.escape("layer_norm: normalized_shape (5,) does not match the last dims "
                                   "of the input of shape (2, 4)"),
             lambda: nn.LayerNorm(5)(gpuad.randn(2, 4)))


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.binary_cross_entropy,
                                  F.binary_cross_entropy_with_logits, nn.MSELoss(), nn.L1Loss(),
                                  nn.BCELoss()])
def test_pointwise_losses_name_themselves_and_both_shapes(loss):
    modules = {"MSELoss": "mse_loss", "L1Loss": "l1_loss", "BCELoss": "binary_cross_entropy"}
    name = getattr(loss, "__name__", None) or modules[type(loss).__name__]
    _message(ValueError, re.escape(f"{name}: target shape (5,) differs from input shape (3, 4)"),
             lambda: loss(gpuad.rand(3, 4), gpuad.rand(5)))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_class_losses_name_themselves_and_both_shapes(loss):
    _message(ValueError, re.escape(f"{loss.__name__}: target of shape (2, 3) does not fit input of "
                                   f"shape (3, 4)"),
             lambda: loss(gpuad.randn(3, 4), gpuad.zeros(2, 3, dtype=gpuad.int64)))


# ---- masks and indices -------------------------------------------------------------------------
def test_boolean_masks_of_the_wrong_shape_name_both_shapes(device):
    x = gpuad.tensor(np.arange(12.0).reshape(3, 4), device=device)
    for index, where in [([True, False], "dim 0"), ((Ellipsis, [True] * 3), "dim 1"),
                         (np.ones((3, 3), bool), "dims 0..1"), ((0, [True, False]), "dim 1")]:
        mask = index if isinstance(index, tuple) else gpuad.tensor(index, device=device)
        _message(IndexError, rf"^getitem: boolean mask of shape .* does not match {where} .*"
                             rf"\(tensor shape \(3, 4\)\)", lambda mask=mask: x[mask])
    ref = np.arange(12.0).reshape(3, 4)
    rows, cols = np.array([True, False, True]), np.array([False, True, True, False])
    for index in [rows, (Ellipsis, cols), (slice(None), cols), ref > 4, (1, cols), (None, rows)]:
        raw = tuple(gpuad.tensor(i, device=device) if isinstance(i, np.ndarray) else i
                    for i in (index if isinstance(index, tuple) else (index,)))
        np.testing.assert_array_equal(_np(x[raw]), ref[index])


def test_masked_fill_mask_must_broadcast_to_the_tensor(device):
    x = gpuad.randn(3, 4, device=device)
    mask = gpuad.tensor([True, False], device=device)
    _message(ValueError, re.escape("masked_fill: mask of shape (2,) does not broadcast to the "
                                   "shape (3, 4) of the tensor it fills"),
             lambda: x.masked_fill(mask, 0))
    big = gpuad.ones(2, 3, 4, device=device).bool()  # torch refuses to grow x; so do we
    _message(ValueError, r"masked_fill: mask of shape \(2, 3, 4\)", lambda: x.masked_fill(big, 0))
    row = gpuad.tensor([True, False, False, True], device=device)
    np.testing.assert_array_equal(_np(x.masked_fill(row, 7.0))[:, [0, 3]], 7.0)


def test_index_ops_refuse_0d_tensors_by_name():
    x = gpuad.tensor(5.0)
    for name, call in [("gather", lambda: x.gather(0, gpuad.tensor(0))),
                       ("index_select", lambda: x.index_select(0, gpuad.tensor([0]))),
                       ("split", lambda: x.split(1)), ("chunk", lambda: x.chunk(1))]:
        _message(RuntimeError, rf"^{name}: expected a tensor with at least 1 dim, got a 0-d tensor",
                 call)


# ---- devices and dtypes ------------------------------------------------------------------------
def _mixed_device_calls():
    cpu, far = gpuad.randn(2, 3), gpuad.randn(2, 3, device="strict")
    images, kernel = gpuad.randn(1, 2, 4, 4), gpuad.randn(3, 2, 1, 1, device="strict")
    ids = gpuad.tensor([0, 1], device="strict")
    return {
        "add": lambda: cpu + far,
        "matmul": lambda: cpu @ far.T,
        "where": lambda: gpuad.where(cpu > 0, far, 0.0),
        "_cat": lambda: gpuad.cat([cpu, far]),
        "conv2d": lambda: gpuad.conv2d(images, kernel),
        "cross_entropy": lambda: F.cross_entropy(cpu, ids),
        "embedding": lambda: F.embedding(ids, cpu),
        "getitem": lambda: cpu[ids],
        "gather": lambda: cpu.gather(1, ids.reshape(2, 1)),
        "sub": lambda: F.mse_loss(cpu, far),  # mse_loss is a composite: its sub names the devices
        "add_": lambda: cpu.add_(far),
        "backward": lambda: (cpu.requires_grad_() * 2).backward(gpuad.ones(2, 3, device="strict")),
    }


@pytest.mark.parametrize("name", list(_mixed_device_calls()))
def test_mixing_devices_names_both_before_recording_anything(name):
    call = _mixed_device_calls()[name]
    nodes = _live_nodes()
    _message(RuntimeError, rf"^{re.escape(name.lstrip('_'))}: .*(cpu.*strict|strict.*cpu)", call)
    assert _live_nodes() == nodes


def test_a_cpu_scalar_tensor_joins_an_op_on_a_device_as_in_torch():
    # torch lets a 0-d CPU tensor take part in an op on a device (x_cuda * torch.tensor(2.0)):
    # it is copied there, its gradient comes back to the CPU, and the result's dtype is what the
    # same op on one device gives. A CPU tensor with dims is still refused.
    a = np.arange(-3.0, 3.0).reshape(2, 3)
    calls = {
        "mul": lambda x, s: s * x,
        "add": lambda x, s: x + s,
        "pow": lambda x, s: x ** s,
        "where": lambda x, s: gpuad.where(x > 0, x, s),
        "masked_fill": lambda x, s: x.masked_fill(x < 0, s),
        "clamp": lambda x, s: x.clamp(min=s),
        "maximum": lambda x, s: gpuad.maximum(s, x),
    }
    for name, call in calls.items():
        x = gpuad.tensor(a, dtype=gpuad.float32, device="strict", requires_grad=True)
        s = gpuad.tensor(0.5, dtype=gpuad.float64, requires_grad=True)
        x_cpu = gpuad.tensor(a, dtype=gpuad.float32, requires_grad=True)
        s_cpu = gpuad.tensor(0.5, dtype=gpuad.float64, requires_grad=True)
        y, y_cpu = call(x, s), call(x_cpu, s_cpu)
        assert y.device == x.device and y.dtype == y_cpu.dtype == gpuad.float32, name
        np.testing.assert_array_equal(_np(y), _np(y_cpu))
        y.sum().backward()
        y_cpu.sum().backward()
        np.testing.assert_array_equal(_np(x.grad), _np(x_cpu.grad))
        assert s.grad.device == s.device and s.grad.dtype == gpuad.float64, name
        np.testing.assert_array_equal(_np(s.grad), _np(s_cpu.grad))
    x = gpuad.ones(2, 3, device="strict")
    _message(RuntimeError, r"^mul: .*cpu and strict", lambda: gpuad.ones(3) * x)
    _message(RuntimeError, r"^mul: .*cpu and strict", lambda: gpuad.ones(1) * x)
    # in place too, and copy_ takes any device, as torch's; a CPU tensor takes no device value
    x.add_(gpuad.tensor(1.0)).mul_(gpuad.tensor(3.0))
    x[0, 1:] = gpuad.tensor(-1.0)
    np.testing.assert_array_equal(_np(x), [[6, -1, -1], [6, 6, 6]])
    assert x.copy_(gpuad.tensor([1.0, 2.0, 3.0])).device == x.device
    np.testing.assert_array_equal(_np(x), [[1, 2, 3]] * 2)
    _message(RuntimeError, r"^add_: value is on cpu but the tensor is on strict",
             lambda: x.add_(gpuad.ones(3)))
    _message(RuntimeError, r"^add_: value is on strict but the tensor is on cpu",
             lambda: gpuad.tensor(1.0).add_(gpuad.tensor(1.0, device="strict")))
    value = gpuad.tensor(5.0, requires_grad=True)
    y = gpuad.ones(2, 3, device="strict", requires_grad=True) * 1
    y[0] = value
    (y * 2).sum().backward()
    assert value.grad.device == value.device and float(_np(value.grad)) == 6.0


def test_integer_parameters_are_refused_with_the_dtype_and_the_fix():
    # the Tensor-level message is pinned in test_tensor.py; these are the entry points users meet
    for make in (lambda: gpuad.zeros(2, dtype=gpuad.int64, requires_grad=True),
                 lambda: gpuad.tensor([1, 2], requires_grad=True),
                 lambda: nn.Parameter(gpuad.tensor([1, 2])),
                 lambda: gpuad.tensor([True]).requires_grad_()):
        _message(RuntimeError, r"only floating point tensors can require gradients.*"
                               r"(int64|bool).*\.float\(\)", make)


def test_class_targets_are_range_checked_on_a_device_when_asked(monkeypatch):
    monkeypatch.setattr(backend, "CHECK_DEVICE_INDICES", True)  # off by default: it costs a sync
    logits = gpuad.randn(3, 4, device="strict")
    _message(IndexError, r"cross_entropy: target contains class index 4.*\[0, 4\)",
             lambda: F.cross_entropy(logits, gpuad.tensor([0, 4, 1], device="strict")))
    _message(TypeError, r"cross_entropy: class-index targets must be an integer tensor",
             lambda: F.cross_entropy(logits, gpuad.tensor([0.0, 1.0, 1.0], device="strict")))


# ---- nothing changes when something fails -------------------------------------------------------
def test_failed_ops_record_nothing_and_leave_a_retained_graph_usable():
    x = gpuad.randn(2, 3, dtype=gpuad.float64, requires_grad=True)
    y = (x * x).sum()
    bad = [lambda: x + gpuad.ones(4), lambda: x @ gpuad.ones(2, 5), lambda: x.sum(dim=3),
           lambda: x.reshape(4, 2), lambda: gpuad.cat([x, gpuad.ones(2, 2)], dim=0),
           lambda: x[5], lambda: x[gpuad.tensor([True])], lambda: x.masked_fill(
               gpuad.tensor([True, False]), 0.0), lambda: F.mse_loss(x, gpuad.ones(5)),
           lambda: F.cross_entropy(x, gpuad.tensor([0, 3])), lambda: nn.Linear(4, 2)(x),
           lambda: gpuad.conv2d(x.reshape(1, 1, 2, 3), gpuad.ones(1, 2, 1, 1)),
           lambda: x.permute(0, 0), lambda: x.expand(3, 3)]
    nodes = _live_nodes()
    for call in bad:
        with pytest.raises((ValueError, IndexError, RuntimeError)):
            call()
    assert _live_nodes() == nodes
    assert x._version == 0 and x.grad is None and x.is_leaf
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * _np(x))


def test_failed_backward_leaves_existing_gradients_alone():
    x = gpuad.tensor([1.0, 2.0], dtype=gpuad.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    _message(RuntimeError, "second time", y.backward)
    _message(RuntimeError, "only for scalar outputs", lambda: (x * 3).backward())
    _message(RuntimeError, "gradient has shape", lambda: (x * 3).backward(gpuad.ones(3)))
    np.testing.assert_array_equal(_np(x.grad), [2.0, 4.0])


def test_in_place_modification_message_names_the_tensor_op_and_the_fix():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    w = gpuad.tensor([3.0, 4.0])
    y = (x * w).sum()
    w.mul_(2)
    message = _message(RuntimeError, "saved by 'mul' was modified in place", y.backward)
    assert "out-of-place" in message and ".clone()" in message
    assert x.grad is None


def test_failed_module_load_state_dict_changes_nothing():
    # missing/unexpected/shape errors: test_nn.py; here a value that cannot become the dtype, and
    # sources on another device or as plain lists, which load
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    before = {k: _np(v) for k, v in net.state_dict().items()}
    state = {k: v.clone() + 1 for k, v in net.state_dict().items()}
    state["1.running_mean"] = np.array(["a", "b", "c"])
    message = _message(RuntimeError, r"Error\(s\) in loading state_dict for Sequential",
                       lambda: net.load_state_dict(state))
    assert "'1.running_mean'" in message
    assert all(np.array_equal(before[k], _np(v)) for k, v in net.state_dict().items())
    state["1.running_mean"] = gpuad.zeros(3, device="strict")
    state["0.bias"] = [5.0, 6.0, 7.0]
    net.load_state_dict(state)
    assert _np(net[0].bias).tolist() == [5.0, 6.0, 7.0]
    assert net[0].bias.device == gpuad.device("cpu")


def test_failed_optimizer_load_state_dict_changes_nothing():
    a, b = nn.Parameter(gpuad.ones(2)), nn.Parameter(gpuad.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = gpuad.ones(2), gpuad.ones(3)
    opt.step()
    saved = opt.state_dict()
    state_before = {id(p): {k: _np(gpuad.Tensor(v)) if backend.is_array(v) else v
                            for k, v in s.items()} for p, s in opt.state.items()}
    wrong = {"state": {0: saved["state"][0], 1: {**saved["state"][1], "exp_avg": gpuad.ones(4)}},
             "param_groups": [{**saved["param_groups"][0], "lr": 0.9}]}
    _message(ValueError, r"Adam.load_state_dict: state 'exp_avg' has shape \(4,\) but its "
                         r"parameter has shape \(3,\)", lambda: opt.load_state_dict(wrong))
    assert opt.param_groups[0]["lr"] == 0.1
    for p, s in opt.state.items():
        for k, v in s.items():
            now = _np(gpuad.Tensor(v)) if backend.is_array(v) else v
            assert np.array_equal(now, state_before[id(p)][k]), k


def test_gpuad_load_names_a_missing_file(tmp_path):
    _message(FileNotFoundError, re.escape(str(tmp_path / "nope.ck")),
             lambda: gpuad.load(tmp_path / "nope.ck"))


# ---- gaps found while writing this file, each fixed since -------------------------------------
def test_gap_failed_optimizer_step_leaves_every_parameter_unchanged():
    a, b = nn.Parameter(gpuad.ones(2)), nn.Parameter(gpuad.ones(3))
    a.grad, b.grad = gpuad.ones(2), gpuad.ones(4)  # b's gradient has the wrong shape
    opt = optim.SGD([a, b], lr=0.1)
    with pytest.raises((ValueError, RuntimeError), match=r"^SGD") as info:
        opt.step()
    assert "(3,)" in str(info.value) and "(4,)" in str(info.value)
    assert _np(a).tolist() == [1.0, 1.0]


def test_gap_failed_adam_step_does_not_count():
    p = nn.Parameter(gpuad.ones(3))
    p.grad = gpuad.ones(3, device="strict")
    opt = optim.Adam([p])
    with pytest.raises((TypeError, RuntimeError)):
        opt.step()
    assert opt.state.get(p, {}).get("step", 0) == 0


def test_gap_failed_in_place_op_keeps_the_version():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    w = gpuad.tensor([3.0, 4.0])
    y = (x * w).sum()
    with pytest.raises(ValueError):
        w.add_(gpuad.ones(4))
    y.backward()


def test_gap_in_place_errors_name_the_op():
    x = gpuad.zeros(3)
    with pytest.raises(ValueError, match=r"^add_: .*\(3,\).*\(4,\)"):
        x.add_(gpuad.ones(4))
    with pytest.raises(IndexError, match=r"^__setitem__: index 5 .*size 3"):
        x[5] = 1.0
    with pytest.raises(TypeError, match=r"^add_: .*int64.*float"):
        gpuad.zeros(3, dtype=gpuad.int64).add_(gpuad.ones(3))


def test_gap_grad_through_a_freed_graph_says_so():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        gpuad.grad(y, x)


def test_gap_ufunc_type_errors_name_the_op():
    with pytest.raises(TypeError, match=r"^sub: ") as info:  # numpy's TypeError, renamed
        gpuad.sub(gpuad.tensor([True, False]), gpuad.tensor([True, True]))
    assert type(info.value).__module__ == "builtins"
    assert gpuad.erf(gpuad.tensor([True, False])).dtype == gpuad.float32  # computed as floats


@pytest.mark.parametrize("name", ["sigmoid", "silu", "erf", "softplus"])
def test_gap_float_ops_compute_integer_inputs_as_floats(name):
    op = getattr(gpuad, name)
    expected = _np(op(gpuad.tensor([1.0, 2.0])))
    np.testing.assert_allclose(_np(op(gpuad.tensor([1, 2]))), expected, rtol=1e-6)


def test_gap_string_operands_are_a_type_error():
    with pytest.raises(TypeError, match="eq"):
        gpuad.ones(2) == "a"  # noqa: B015


def test_gap_optimizer_load_state_dict_of_a_model_explains():
    net = nn.Linear(2, 2)
    opt = optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="param_groups"):
        opt.load_state_dict(net.state_dict())


def test_gap_crafted_manifest_errors_name_the_file(tmp_path):
    path = tmp_path / "crafted"
    manifest = {"format": "gpuad.checkpoint", "version": 1,
                "root": {"tensor": "i", "requires_grad": True}}
    safetensors.numpy.save_file({"i": np.array([1, 2])}, path,
                                metadata={"gpuad": json.dumps(manifest)})
    with pytest.raises(ValueError, match=re.escape(str(path))):
        gpuad.load(path)
