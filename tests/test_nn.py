"""gpuad.nn: Module bookkeeping (registration, state_dict, modes, devices, repr), containers,
layers, init statistics, gradient clipping, dropout randomness and error messages, plus PyTorch
twins (skipped without torch). The maths of nn.functional is checked row by row in nn_cases.py."""
import collections
import itertools
import math
import re

import numpy as np
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad import backend, nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("scale", gpuad.ones(4), persistent=False)

    def forward(self, x):
        return F.relu(self.bn(self.fc(x))) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


def _np(t):
    return backend.asnumpy(t.array)


def _arrays(module):
    return {k: backend.asnumpy(v.array).copy() for k, v in module.state_dict().items()}


# ---- Module bookkeeping -------------------------------------------------------------------
def test_registration_order_and_traversal():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias", "head.weight"]
    assert [n for n, _ in net.named_buffers()] == [  # a module's own first, then its children's
        "block.scale", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["block", "head", "drop"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head",
                                                  "drop"]
    assert next(net.children()) is net.block and len(list(net.modules())) == 6
    assert next(net.named_parameters(prefix="m"))[0] == "m.block.fc.weight"
    assert list(net.block.parameters(recurse=False)) == []
    assert net.head.bias is None and "bias" in net.head._parameters
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf
               for p in net.parameters())


def test_shared_parameters_are_listed_once_and_reassignment_moves_registration():
    net = nn.Module()
    net.a = nn.Linear(2, 2)
    net.b = net.a
    assert len(list(net.parameters())) == 2
    assert list(net.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    net.a = nn.Parameter(gpuad.zeros(3))  # a module slot taken by a parameter
    assert "a" not in net._modules and net._parameters["a"] is net.a
    del net.a
    assert "a" not in net._parameters and not hasattr(net, "a")
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        net.b.weight = gpuad.zeros(2, 2)
    with pytest.raises(KeyError, match="already exists"):
        net.register_buffer("b", gpuad.zeros(1))
    with pytest.raises(TypeError, match="Parameter or None"):
        net.register_parameter("w", gpuad.zeros(1))


def test_registered_names_are_found_through_the_class_as_through_getattr():
    class Holder(nn.Module):
        def method(self):
            return "method"

    a, b, c = Holder(), Holder(), Holder()
    a.w = nn.Parameter(gpuad.zeros(2))
    assert a.w is a._parameters["w"] and "w" in vars(Holder)  # the fast lookup is in place
    with pytest.raises(AttributeError, match="'Holder' object has no attribute 'w'"):
        b.w  # noqa: B018  (an instance that did not register the name)
    with pytest.raises(AttributeError):
        Holder.w  # noqa: B018
    b.w = 3  # a plain attribute of another instance wins over the class's lookup
    c.w = nn.Linear(1, 1)  # a child module under the same name in a third instance
    c.register_buffer("x", gpuad.ones(1))
    assert b.w == 3 and c.w is c._modules["w"] and c.x is c._buffers["x"] and a.w.shape == (2,)
    a.w = None
    assert a.w is None and "w" in a._parameters
    del a.w
    assert not hasattr(a, "w") and b.w == 3
    a.method = nn.Parameter(gpuad.zeros(1))  # a class attribute keeps precedence, as in torch
    assert a.method() == "method" and "method" in dict(a.named_parameters())
    a.register_buffer("__odd__", gpuad.ones(1))
    bare = nn.Module()
    bare.z = nn.Parameter(gpuad.zeros(1))
    assert "__odd__" not in vars(Holder) and "z" not in vars(nn.Module) and bare.z.shape == (1,)


def test_parameter_is_a_leaf_tensor_sharing_memory():
    data = gpuad.randn(2, 3)
    p = nn.Parameter(data)
    assert isinstance(p, gpuad.Tensor) and p.requires_grad and p.is_leaf and p.array is data.array
    assert nn.Parameter.__slots__ == () and not hasattr(p, "__dict__")
    assert not nn.Parameter(np.ones(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0, np.float32))


def test_state_dict_keys_values_and_round_trip():
    gpuad.manual_seed(1)
    net, other = Net(), Net()
    state = net.state_dict()
    assert isinstance(state, collections.OrderedDict)
    assert list(state) == ["block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
                           "block.bn.running_mean", "block.bn.running_var",
                           "block.bn.num_batches_tracked", "head.weight"]  # no non-persistent
    assert all(not v.requires_grad and v.is_leaf for v in state.values())
    assert state["head.weight"].array is net.head.weight.array  # detached, shared memory
    params = list(other.parameters())
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert list(other.parameters()) == params  # same Parameter objects, values copied in
    assert other.head.weight.array is not net.head.weight.array
    x = gpuad.randn(5, 3)
    net.eval(), other.eval()
    np.testing.assert_array_equal(net(x).detach().numpy(), other(x).detach().numpy())
    numpy_state = {k: v.numpy().astype(np.float64) for k, v in state.items()}
    other.load_state_dict(numpy_state)  # arrays of another dtype: cast to the parameter's
    assert other.head.weight.dtype == gpuad.float32
    assert other.block.bn.num_batches_tracked.dtype == gpuad.int64


def test_load_state_dict_names_every_offending_key_and_changes_nothing():
    net = Net()
    before = _arrays(net)
    state = {k: v.clone() + 1 for k, v in Net().state_dict().items()}
    del state["block.fc.bias"], state["block.bn.running_var"]
    state["block.extra"] = gpuad.zeros(1)
    state["stray"] = gpuad.zeros(1)
    state["head.weight"] = gpuad.zeros(4, 2)
    state["block.bn.weight"] = gpuad.zeros(5)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    for key in ("block.fc.bias", "block.bn.running_var", "block.extra", "stray", "head.weight",
                "block.bn.weight"):
        assert key in message
    assert "Missing key(s)" in message and "Unexpected key(s)" in message
    assert "size mismatch for head.weight" in message and "(4, 2)" in message
    after = _arrays(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # strict=False tolerates missing/unexpected keys, never a shape mismatch
    with pytest.raises(RuntimeError, match="size mismatch for block.bn.weight"):
        net.load_state_dict(state, strict=False)
    assert all(np.array_equal(before[k], v) for k, v in _arrays(net).items())
    del state["head.weight"], state["block.bn.weight"]
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["block.fc.bias", "block.bn.weight", "block.bn.running_var", "head.weight"]
    assert unexpected == ["block.extra", "stray"]
    np.testing.assert_array_equal(_np(net.block.fc.weight),
                                  state["block.fc.weight"].numpy())


def test_load_state_dict_copies_onto_the_parameters_device(device):
    net = nn.Linear(3, 2).to(device)
    weight = net.weight
    state = {"weight": np.arange(6.0).reshape(2, 3), "bias": gpuad.tensor([1.0, 2.0])}
    net.load_state_dict(state)
    assert net.weight is weight and weight.device == gpuad.device(device)
    assert weight.dtype == gpuad.float32
    np.testing.assert_array_equal(backend.asnumpy(weight.array), np.arange(6.0).reshape(2, 3))


def test_train_eval_propagate_and_switch_dropout_and_batchnorm():
    net = Net()
    assert net.training and net.block.bn.training
    assert net.eval() is net and not net.drop.training and not net.block.bn.training
    x = gpuad.randn(8, 3)
    np.testing.assert_array_equal(_np(net(x)), _np(net(x)))  # no dropout, running statistics
    assert net.block.bn.num_batches_tracked.item() == 0
    net.train()
    assert net.drop.training and net.block.bn.training
    assert not np.array_equal(net(x).detach().numpy(), net(x).detach().numpy())  # dropout masks


def test_to_dtype_and_device_keep_parameter_identity(device):
    net = Net()
    params, buffers = list(net.parameters()), list(net.buffers())
    net(gpuad.randn(4, 3)).sum().backward()
    assert net.to(gpuad.float64) is net
    assert list(net.parameters()) == params and list(net.buffers()) == buffers
    assert all(p.dtype == gpuad.float64 and p.grad.dtype == gpuad.float64 for p in params)
    assert net.block.bn.running_mean.dtype == gpuad.float64
    assert net.block.bn.num_batches_tracked.dtype == gpuad.int64  # integers are not cast
    net.to(device)
    assert all(p.device == gpuad.device(device) for p in net.parameters())
    assert all(b.device == gpuad.device(device) for b in net.buffers())
    assert list(net.parameters()) == params
    out = net(gpuad.randn(4, 3, dtype=gpuad.float64, device=device))
    assert out.device == gpuad.device(device) and out.dtype == gpuad.float64
    with pytest.raises(TypeError, match="floating point"):
        net.to(gpuad.int64)


def test_to_after_recording_refuses_the_stale_graph():
    lin = nn.Linear(2, 2)
    y = lin(gpuad.randn(3, 2)).sum()
    lin.double()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_zero_grad():
    net = Net()
    net(gpuad.randn(4, 3)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_apply_and_requires_grad():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "Block", "Linear", "Dropout", "Net"]
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert not _np(net.head.weight).any()
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_repr_is_nested_like_torch():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(),
                        nn.Sequential(nn.Linear(16, 3, bias=False), nn.LogSoftmax(dim=1)))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (4): Flatten(start_dim=1, end_dim=-1)\n"
        "  (5): Sequential(\n"
        "    (0): Linear(in_features=16, out_features=3, bias=False)\n"
        "    (1): LogSoftmax(dim=1)\n"
        "  )\n"
        ")")
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.LayerNorm(8)) == ("LayerNorm((8,), eps=1e-05, elementwise_affine=True, "
                                     "bias=True)")
    assert repr(nn.LayerNorm(8, bias=False)).endswith("elementwise_affine=True, bias=False)")
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Module()) == "Module()"


# ---- containers ---------------------------------------------------------------------------
def test_sequential():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c] and seq[0] is a and seq[-1] is c
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    assert list(seq[1:]._modules) == ["1", "2"]  # torch keeps the names of a slice
    x = gpuad.randn(4, 2)
    np.testing.assert_allclose(seq(x).detach().numpy(), c(b(a(x))).detach().numpy())
    named = nn.Sequential(collections.OrderedDict([("fc", a), ("act", b)]))
    assert named.fc is a and list(named.state_dict()) == ["fc.weight", "fc.bias"]
    seq.append(nn.Tanh())
    del seq[0]
    assert [type(m).__name__ for m in seq] == ["ReLU", "Linear", "Tanh"]
    assert list(seq._modules) == ["0", "1", "2"]
    seq[0] = nn.SiLU()
    assert isinstance(seq[0], nn.SiLU)
    with pytest.raises(IndexError, match="out of range"):
        seq[3]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "Linear", "ReLU",
                                                 "Tanh"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    assert layers[-1] is list(layers)[-1]
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3", "4"]
    holder = nn.Module()
    holder.layers = layers
    assert [n for n, _ in holder.named_parameters()][:2] == ["layers.0.weight", "layers.0.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    heads["c"] = nn.Identity()
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.keys()) == ["a", "b", "c"] and heads["b"].out_features == 3
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert isinstance(heads.pop("c"), nn.Identity) and len(heads) == 2


def test_parameter_list_and_dict_register_their_parameters(device):
    class Mixture(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(gpuad.ones(2)), gpuad.zeros(3)])
            self.named = nn.ParameterDict({"alpha": gpuad.ones(1), "beta": gpuad.zeros(2, 2)})

        def forward(self):
            return (sum(p.sum() for p in self.scales) + self.named["alpha"].sum() * 3
                    + self.named["beta"].sum())
    model = Mixture().to(device)
    assert [n for n, _ in model.named_parameters()] == ["scales.0", "scales.1", "named.alpha",
                                                        "named.beta"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    model().backward()
    assert model.named["alpha"].grad.tolist() == [3.0] and model.scales[-1].grad.tolist() == [1] * 3
    model.scales.append(gpuad.ones(1, device=device))
    model.scales[0] = nn.Parameter(gpuad.full((2,), 5.0, device=device))
    model.named["gamma"] = gpuad.ones(4, device=device)
    del model.named["beta"]
    assert list(model.state_dict()) == ["scales.0", "scales.1", "scales.2", "named.alpha",
                                        "named.gamma"]
    assert len(model.scales) == 3 and len(model.scales[1:]) == 2 and "gamma" in model.named
    assert model.named.get("beta") is None and list(model.named) == ["alpha", "gamma"]
    assert "(1): Parameter containing: [float32 of size (3,)" in repr(model)
    with pytest.raises(IndexError, match="ParameterList: index 3 is out of range for 3 parameters"):
        model.scales[3]
    with pytest.raises(TypeError, match="ParameterDict: expected a Parameter or a tensor, got int"):
        model.named["delta"] = 1
    torch = pytest.importorskip("torch")
    twin = torch.nn.Module()
    twin.scales = torch.nn.ParameterList([torch.ones(2), torch.zeros(3), torch.ones(1)])
    twin.named = torch.nn.ParameterDict({"alpha": torch.ones(1), "gamma": torch.ones(4)})
    assert list(twin.state_dict()) == list(model.state_dict())


def test_get_submodule_parameter_and_buffer_follow_dotted_paths_as_torch():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert model.get_submodule("") is model and model.get_submodule("1") is model[1]
    assert model.get_parameter("0.weight") is model[0].weight
    assert model.get_buffer("1.running_mean") is model[1].running_mean
    errors = {"2": "Sequential has no attribute `2`", "0.weight.x": "`weight` is not an nn.Module"}
    for target, message in errors.items():
        with pytest.raises(AttributeError, match=re.escape(message)):
            model.get_submodule(target)
    with pytest.raises(AttributeError, match="Linear has no attribute `scale`"):
        model.get_parameter("0.scale")
    with pytest.raises(AttributeError, match="`running_mean` is not an nn.Parameter"):
        model.get_parameter("1.running_mean")
    with pytest.raises(AttributeError, match="`weight` is not a buffer"):
        model.get_buffer("0.weight")
    torch = pytest.importorskip("torch")
    twin = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    for call, target in (("get_submodule", "2"), ("get_submodule", "0.weight.x"),
                         ("get_parameter", "0.scale"), ("get_parameter", "1.running_mean"),
                         ("get_buffer", "0.weight")):
        with pytest.raises(AttributeError) as theirs:
            getattr(twin, call)(target)
        with pytest.raises(AttributeError) as ours:
            getattr(model, call)(target)
        assert str(ours.value) == str(theirs.value)


# ---- layers -------------------------------------------------------------------------------
def test_linear_and_conv_default_init_bounds():
    gpuad.manual_seed(3)
    lin = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    for p in (lin.weight, lin.bias):
        values = _np(p)
        assert values.dtype == np.float32 and np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.9 * bound  # uses the whole range
    assert lin.weight.shape == (40, 50) and lin.bias.shape == (40,)
    conv = nn.Conv2d(6, 8, (3, 2), groups=2)
    assert conv.weight.shape == (8, 3, 3, 2)
    assert np.abs(_np(conv.weight)).max() <= 1 / math.sqrt(3 * 3 * 2)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_layers_forward_like_their_functionals():
    x = gpuad.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12) and nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Identity(5, key=1)(x) is x
    for layer, fn in [(nn.ReLU(), F.relu), (nn.Tanh(), F.tanh), (nn.Sigmoid(), F.sigmoid),
                      (nn.SiLU(), F.silu), (nn.GELU("tanh"), lambda t: F.gelu(t, "tanh")),
                      (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
                      (nn.Softmax(dim=1), lambda t: F.softmax(t, 1)),
                      (nn.LogSoftmax(dim=-1), lambda t: F.log_softmax(t, -1)),
                      (nn.LayerNorm(4), lambda t: F.layer_norm(t, (4,)))]:
        np.testing.assert_array_equal(_np(layer(x)), _np(fn(x)))
    target = gpuad.tensor([[0, 1, 2, 0], [1, 1, 0, 2]])
    np.testing.assert_array_equal(nn.CrossEntropyLoss(label_smoothing=0.1)(x, target).numpy(),
                                  F.cross_entropy(x, target, label_smoothing=0.1).numpy())
    probabilities = gpuad.rand(2, 3, 4)
    np.testing.assert_array_equal(nn.BCELoss(reduction="sum")(probabilities, probabilities).numpy(),
                                  F.binary_cross_entropy(probabilities, probabilities,
                                                         reduction="sum").numpy())
    with pytest.raises(ValueError, match="BatchNorm2d: expected a 4-D input"):
        nn.BatchNorm2d(3)(x)


def test_batchnorm_running_stats_momentum_unbiased_and_eval(device):
    bn = nn.BatchNorm2d(3, momentum=0.2).to(device)
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (4, 3, 2, 2)).astype(np.float32) for _ in range(3)]
    mean, var = np.zeros(3), np.ones(3)
    for b in batches:
        y = bn(gpuad.tensor(b, device=device))
        axes = (0, 2, 3)
        mean = 0.8 * mean + 0.2 * b.mean(axes)
        var = 0.8 * var + 0.2 * b.var(axes, ddof=1)  # unbiased for the running estimate
        normalised = (b - b.mean(axes, keepdims=True)) / np.sqrt(b.var(axes, keepdims=True) + 1e-5)
        np.testing.assert_allclose(backend.asnumpy(y.array), normalised, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(backend.asnumpy(bn.running_mean.array), mean, rtol=1e-5)
    np.testing.assert_allclose(backend.asnumpy(bn.running_var.array), var, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = batches[0]
    expected = (x - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(backend.asnumpy(bn(gpuad.tensor(x, device=device)).array), expected,
                               rtol=1e-4, atol=1e-5)
    assert bn.num_batches_tracked.item() == 3  # eval leaves the statistics alone


def test_batchnorm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [np.random.default_rng(i).normal(size=(5, 2)).astype(np.float32) for i in range(4)]
    for b in batches:
        bn(gpuad.tensor(b))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-5)
    free = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert list(free.parameters()) == [] and list(free.state_dict()) == []
    y = free(gpuad.tensor(batches[0])).numpy()  # no running stats: batch stats even in eval
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-6)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(2)(gpuad.randn(1, 2))


def test_dropout_is_inverted_seeded_and_on_the_inputs_device(device):
    x = gpuad.ones(100, 100, device=device, requires_grad=True)
    gpuad.manual_seed(7)
    y = F.dropout(x, 0.3)
    values = backend.asnumpy(y.array)
    assert y.device == gpuad.device(device) and y.dtype == gpuad.float32
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((values == 0).mean() - 0.3) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(backend.asnumpy(x.grad.array), values)  # same mask, same scale
    gpuad.manual_seed(7)
    np.testing.assert_array_equal(backend.asnumpy(F.dropout(x, 0.3).array), values)
    assert not backend.asnumpy(F.dropout(x, 1.0).array).any()
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_embedding_padding_row_is_zero_and_gets_no_gradient(device):
    emb = nn.Embedding(6, 3, padding_idx=2).to(device)
    weight = backend.asnumpy(emb.weight.array)
    assert not weight[2].any() and weight[[0, 1, 3]].std() > 0.3  # N(0, 1) elsewhere
    index = gpuad.tensor([[2, 0, 2], [1, 0, 5]], device=device)
    out = emb(index)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(backend.asnumpy(out.array), weight[backend.asnumpy(index.array)])
    (out * 3).sum().backward()
    grad = backend.asnumpy(emb.weight.grad.array)
    np.testing.assert_array_equal(grad[:, 0], [6, 3, 0, 0, 0, 3])  # repeats accumulate
    assert nn.Embedding(6, 3, padding_idx=-1).padding_idx == 5
    with pytest.raises(TypeError, match="embedding: indices must be an integer tensor"):
        emb(gpuad.zeros(2, device=device))
    if device == "cpu":
        with pytest.raises(IndexError, match="embedding: index 6 is out of range"):
            emb(gpuad.tensor([1, 6]))


# ---- functional: errors, stability, dtypes ------------------------------------------------
def test_class_target_errors_name_the_function_shapes_and_fix():
    logits = gpuad.randn(4, 3)
    with pytest.raises(TypeError) as info:
        F.cross_entropy(logits, gpuad.tensor([0.0, 1.0, 2.0, 1.0]))
    message = str(info.value)
    assert "cross_entropy" in message and "float32" in message and "(4,)" in message
    assert "(4, 3)" in message and "target.long()" in message
    with pytest.raises(TypeError, match=r"nll_loss: .*integer tensor.*target\.long\(\)"):
        F.nll_loss(logits, gpuad.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(IndexError, match=r"cross_entropy: .*class index 3.*3 classes.*\[0, 3\)"):
        F.cross_entropy(logits, gpuad.tensor([0, 1, 3, 1]))
    with pytest.raises(IndexError, match="class index -1"):
        F.nll_loss(logits, gpuad.tensor([0, 1, -1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: target of shape \(3,\) does not fit"):
        F.cross_entropy(logits, gpuad.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.cross_entropy(logits, gpuad.tensor([0, 1, 2, 1]), gpuad.ones(4))
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(logits, logits, reduction="avg")
    with pytest.raises(ValueError, match="binary_cross_entropy: target shape"):
        F.binary_cross_entropy(gpuad.rand(3), gpuad.rand(3, 1))
    with pytest.warns(UserWarning, match="mse_loss: target shape .* broadcast"):
        F.mse_loss(gpuad.randn(3, 1), gpuad.randn(3))
    with pytest.raises(RuntimeError, match="cross_entropy: target is on strict"):
        F.cross_entropy(logits, gpuad.tensor([0, 1, 2, 1], device="strict"))


def test_ignored_targets_and_large_logits():
    logits = gpuad.tensor([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], requires_grad=True)
    target = gpuad.tensor([0, -100])
    loss = F.cross_entropy(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert np.isfinite(logits.grad.numpy()).all() and not logits.grad.numpy()[1].any()
    assert math.isnan(F.cross_entropy(logits, gpuad.tensor([-100, -100])).item())  # like torch
    np.testing.assert_allclose(F.softmax(logits, 1).detach().numpy()[0], [1, 0, 0])
    assert np.isfinite(F.log_softmax(logits, 1).detach().numpy()).all()
    big = gpuad.tensor([-1e4, 1e4], requires_grad=True)
    out = F.binary_cross_entropy_with_logits(big, gpuad.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(out.detach().numpy(), [1e4, 1e4])
    with pytest.warns(UserWarning, match="implicit dimension"):
        F.softmax(gpuad.randn(2, 3))


def test_losses_keep_float32_and_build_no_float64(device):
    x = gpuad.randn(6, 5, device=device, requires_grad=True)
    t = gpuad.randint(0, 5, (6,), device=device)
    w = gpuad.rand(5, device=device) + 0.5
    losses = [F.cross_entropy(x, t), F.cross_entropy(x, t, w, label_smoothing=0.1),
              F.nll_loss(F.log_softmax(x, 1), t), F.cross_entropy(x, F.softmax(x, 1).detach()),
              F.binary_cross_entropy_with_logits(x, gpuad.rand(6, 5, device=device))]
    for loss in losses:
        assert loss.dtype == gpuad.float32
        x.grad = None
        loss.backward()
        assert x.grad.dtype == gpuad.float32 and x.grad.device == gpuad.device(device)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    x = gpuad.randn(5, 4, dtype=gpuad.float64, requires_grad=True)
    t = gpuad.tensor([0, 3, 1, 1, 2])
    F.cross_entropy(x, t, reduction="sum").backward()
    p = F.softmax(x, 1).detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), p - np.eye(4)[t.numpy()], rtol=1e-12, atol=1e-15)


def test_cross_entropy_keeps_its_softmax_for_backward_and_frees_it_after():
    x = gpuad.randn(6, 5, dtype=gpuad.float64, requires_grad=True)
    t = gpuad.tensor([0, 4, 1, 1, 2, 3])
    loss = F.cross_entropy(x, t)
    e, s = loss._node.kwargs["saved"]  # exp(x - max) class-major and its sums (ops.Saving)
    p = F.softmax(x, 1).detach().numpy()
    np.testing.assert_allclose(e.T / s[:, None], p, rtol=1e-13)
    kept = e.copy(), s.copy()
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    np.testing.assert_allclose(first, (p - np.eye(5)[t.numpy()]) / 6, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(e, kept[0])  # the rule reads them and writes nothing there
    np.testing.assert_array_equal(s, kept[1])
    x.grad = None
    loss.backward()  # the retained graph runs again and then lets them go
    np.testing.assert_array_equal(x.grad.numpy(), first)
    assert "saved" not in loss._node.kwargs
    with gpuad.no_grad():
        assert F.cross_entropy(x, t)._node is None  # nothing recorded, nothing kept


# ---- init ---------------------------------------------------------------------------------
def test_init_statistics_and_gains(device):
    gpuad.manual_seed(0)
    w = gpuad.empty(200, 300, device=device)
    assert nn.init.uniform_(w, -2, 3) is w
    values = backend.asnumpy(w.array)
    assert values.min() >= -2 and values.max() < 3 and abs(values.mean() - 0.5) < 0.05
    nn.init.normal_(w, 1.0, 0.5)
    values = backend.asnumpy(w.array)
    assert abs(values.mean() - 1) < 0.01 and abs(values.std() - 0.5) < 0.01
    nn.init.xavier_uniform_(w, gain=2.0)
    assert np.abs(backend.asnumpy(w.array)).max() <= 2 * math.sqrt(6 / 500)
    nn.init.xavier_normal_(w)
    assert abs(backend.asnumpy(w.array).std() - math.sqrt(2 / 500)) < 0.002
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(backend.asnumpy(w.array)).max() <= math.sqrt(6 / 300)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(backend.asnumpy(w.array).std() - math.sqrt(2 / 200)) < 0.002
    nn.init.constant_(w, 0.25)
    assert (backend.asnumpy(w.array) == 0.25).all() and w.dtype == gpuad.float32
    nn.init.ones_(w), nn.init.zeros_(w)
    assert not backend.asnumpy(w.array).any() and w.device == gpuad.device(device)
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("tanh") == 5 / 3 and nn.init.calculate_gain("conv2d") == 1
    assert nn.init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    assert nn.init._calculate_fan_in_and_fan_out(gpuad.empty(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="fewer than 2"):
        nn.init.xavier_uniform_(gpuad.empty(5))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def test_trunc_normal_orthogonal_eye_and_dirac_init(device):
    gpuad.manual_seed(0)
    w = gpuad.empty(400, 300, device=device)
    assert nn.init.trunc_normal_(w, mean=0.1, std=0.02, a=0.07, b=0.12) is w
    values = backend.asnumpy(w.array)
    assert values.min() >= 0.07 and values.max() <= 0.12 and w.dtype == gpuad.float32
    alpha, beta = (0.07 - 0.1) / 0.02, (0.12 - 0.1) / 0.02  # the truncated normal's moments
    pdf = [math.exp(-t * t / 2) / math.sqrt(2 * math.pi) for t in (alpha, beta)]
    mass = (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2))) / 2
    mean = 0.1 + 0.02 * (pdf[0] - pdf[1]) / mass
    std = 0.02 * math.sqrt(1 + (alpha * pdf[0] - beta * pdf[1]) / mass
                           - ((pdf[0] - pdf[1]) / mass) ** 2)
    assert abs(values.mean() - mean) < 1e-4 and abs(values.std() - std) < 1e-4
    with pytest.warns(UserWarning, match="more than 2 std"):
        nn.init.trunc_normal_(gpuad.empty(3), mean=5.0)
    for shape, gain in (((5, 8), 1.0), ((8, 5), 2.0), ((6, 2, 3), 0.5)):
        q = nn.init.orthogonal_(gpuad.empty(*shape, device=device), gain=gain)
        flat = backend.asnumpy(q.array).reshape(shape[0], -1).astype(np.float64)
        small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(small, gain ** 2 * np.eye(len(small)), atol=1e-5)
    with pytest.raises(ValueError, match="orthogonal_: only tensors with 2 or more dimensions"):
        nn.init.orthogonal_(gpuad.empty(4))
    e = nn.init.eye_(gpuad.empty(3, 5, device=device))
    np.testing.assert_array_equal(backend.asnumpy(e.array), np.eye(3, 5))
    d = nn.init.dirac_(gpuad.empty(6, 2, 3, 3, device=device), groups=2)
    expected = np.zeros((6, 2, 3, 3), np.float32)
    for g, c in itertools.product(range(2), range(2)):  # min(6 / 2, 2) channels per group
        expected[g * 3 + c, c, 1, 1] = 1
    np.testing.assert_array_equal(backend.asnumpy(d.array), expected)
    x = gpuad.randn(1, 2, 5, 5, device=device)  # a Dirac convolution passes its input through
    y = F.conv2d(x, nn.init.dirac_(gpuad.empty(2, 2, 3, 3, device=device)), padding=1)
    np.testing.assert_array_equal(backend.asnumpy(y.array), backend.asnumpy(x.array))
    with pytest.raises(ValueError, match="dirac_: dim 0 \\(6\\) must be divisible by groups"):
        nn.init.dirac_(gpuad.empty(6, 2, 3), groups=4)
    sparse = backend.asnumpy(nn.init.sparse_(gpuad.empty(300, 200, device=device), 0.1).array)
    assert ((sparse == 0).sum(axis=0) == 30).all()  # ceil(0.1 * 300) in every column
    assert abs(sparse[sparse != 0].std() - 0.01) < 5e-4
    assert len({tuple(np.flatnonzero(c == 0)) for c in sparse.T}) > 150  # rows drawn per column
    torch = pytest.importorskip("torch")
    for shape, groups in (((4, 3, 5), 1), ((6, 2, 3, 3), 3), ((4, 4, 1, 3, 3), 2)):
        ours = nn.init.dirac_(gpuad.empty(*shape, device=device), groups=groups)
        theirs = torch.nn.init.dirac_(torch.empty(*shape), groups=groups)
        np.testing.assert_array_equal(backend.asnumpy(ours.array), theirs.numpy())


_INITS = ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
          "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
          "sparse_", "calculate_gain"]


@pytest.mark.parametrize("name", _INITS)
def test_init_signatures_are_torchs(name):
    import inspect
    torch = pytest.importorskip("torch")

    def params(f):
        return [(k, p.kind, p.default) for k, p in inspect.signature(f).parameters.items()]
    assert params(getattr(nn.init, name)) == params(getattr(torch.nn.init, name))


def test_init_draws_from_a_generator_when_given_one():
    def fill(init, seed, *args):
        gen = None if seed is None else gpuad.Generator().manual_seed(seed)
        return init(gpuad.empty(6, 5), *args, generator=gen).tolist()
    for init, args in ((nn.init.uniform_, ()), (nn.init.normal_, ()),
                       (nn.init.trunc_normal_, ()), (nn.init.xavier_uniform_, ()),
                       (nn.init.xavier_normal_, ()), (nn.init.kaiming_uniform_, ()),
                       (nn.init.kaiming_normal_, ()), (nn.init.orthogonal_, ()),
                       (nn.init.sparse_, (0.4,))):
        gpuad.manual_seed(0)
        default = fill(init, None, *args)
        assert fill(init, 3, *args) == fill(init, 3, *args) != fill(init, 4, *args)
        gpuad.manual_seed(0)
        fill(init, 3, *args)  # a generator's draws leave the default stream where it was
        assert fill(init, None, *args) == default


def test_init_on_a_parameter_is_allowed_and_invalidates_old_graphs():
    p = nn.Parameter(gpuad.ones(3))
    y = (p * p).sum()
    nn.init.normal_(p)  # no "in-place on a leaf" error: init does not record
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


# ---- utils --------------------------------------------------------------------------------
def test_clip_grad_norm_(device):
    a = nn.Parameter(gpuad.zeros(3, device=device))
    b = nn.Parameter(gpuad.zeros(2, device=device))
    unused = nn.Parameter(gpuad.zeros(1, device=device))
    a.grad = gpuad.tensor([3.0, 0.0, 0.0], device=device)
    b.grad = gpuad.tensor([0.0, 4.0], device=device)
    total = nn.utils.clip_grad_norm_([a, b, unused], max_norm=1.0)
    assert isinstance(total, gpuad.Tensor) and total.device == gpuad.device(device)
    assert total.dtype == gpuad.float32
    np.testing.assert_allclose(total.item(), 5.0)
    np.testing.assert_allclose(backend.asnumpy(a.grad.array), [0.6, 0, 0], rtol=1e-5)
    np.testing.assert_allclose(backend.asnumpy(b.grad.array), [0, 0.8], rtol=1e-5)
    total = nn.utils.clip_grad_norm_([a, b], max_norm=10.0, norm_type=math.inf)  # no-op
    np.testing.assert_allclose(total.item(), 0.8, rtol=1e-5)
    np.testing.assert_allclose(backend.asnumpy(b.grad.array), [0, 0.8], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([unused], 1.0).item() == 0.0
    a.grad = gpuad.tensor([math.inf, 0, 0], device=device)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(a, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_():
    net = nn.Linear(3, 2)
    (net(gpuad.randn(4, 3) * 10)).sum().backward()
    nn.utils.clip_grad_value_(net.parameters(), 0.5)
    for p in net.parameters():
        assert np.abs(p.grad.numpy()).max() <= 0.5
    assert (np.abs(net.bias.grad.numpy()) == 0.5).all()  # bias grad = 4 before clipping


# ---- PyTorch twins ------------------------------------------------------------------------
def _copy_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _assert_grads_match(ours, theirs, rtol=1e-5, atol=1e-6):
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


def test_torch_twin_mlp_losses_and_gradients():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Linear(5, 16), tnn.LayerNorm(16), tnn.GELU(), tnn.Linear(16, 8),
                            tnn.BatchNorm1d(8), tnn.ReLU(), tnn.Linear(8, 4)).double()
    ours = nn.Sequential(nn.Linear(5, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 8),
                         nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _copy_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5))
    labels = np.array([0, 3, 1, 1, 2, 3])
    labels_ignored = np.array([0, 3, -100, 1, 2, -100])
    weight = rng.uniform(0.5, 2, 4)
    probabilities = rng.dirichlet(np.ones(4), 6)
    binary = rng.uniform(0, 1, (6, 4))
    pos_weight = rng.uniform(0.5, 3, 4)
    losses = [
        ("ce", {}, labels), ("ce", {"reduction": "sum"}, labels),
        ("ce", {"label_smoothing": 0.2}, labels), ("ce", {"weight": weight}, labels),
        ("ce", {"weight": weight, "label_smoothing": 0.1, "ignore_index": -100}, labels_ignored),
        ("ce", {"ignore_index": 2, "reduction": "none"}, labels),
        ("ce", {}, probabilities),
        ("ce", {"weight": weight, "label_smoothing": 0.3}, probabilities),
        ("bce", {}, binary), ("bce", {"pos_weight": pos_weight, "weight": binary}, binary)]
    for kind, kw, target in losses:
        ours.zero_grad(), theirs.zero_grad()
        torch_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        our_kw = {k: gpuad.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        xo, xt = gpuad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        if kind == "ce":
            lo = F.cross_entropy(ours(xo), gpuad.tensor(target), **our_kw)
            lt = tnn.functional.cross_entropy(theirs(xt), torch.tensor(target), **torch_kw)
        else:
            lo = F.binary_cross_entropy_with_logits(ours(xo), gpuad.tensor(target), **our_kw)
            lt = tnn.functional.binary_cross_entropy_with_logits(theirs(xt), torch.tensor(target),
                                                                 **torch_kw)
        np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-10,
                                   err_msg=f"{kind} {kw}")
        v = rng.normal(size=lo.shape)
        (lo * gpuad.tensor(v)).sum().backward()
        (lt * torch.tensor(v)).sum().backward()
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-12)
        _assert_grads_match(ours, theirs, rtol=1e-8, atol=1e-12)
    for (name, b), tb in zip(ours.named_buffers(), theirs.buffers()):  # 10 training steps
        np.testing.assert_allclose(backend.asnumpy(b.array), tb.numpy(), rtol=1e-10, err_msg=name)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(gpuad.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def test_torch_twin_other_losses():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.01, 0.99, (3, 4, 2)), rng.uniform(0, 1, (3, 4, 2))
    t = rng.integers(0, 4, (3, 2))
    t[0, 0] = -100
    for ours, theirs, args in [
            (F.mse_loss, tf.mse_loss, (x, y)), (F.l1_loss, tf.l1_loss, (x, y)),
            (F.binary_cross_entropy, tf.binary_cross_entropy, (x, y)),
            (F.nll_loss, tf.nll_loss, (np.log(x), t)), (F.cross_entropy, tf.cross_entropy, (x, t))]:
        for reduction in ("mean", "sum", "none"):
            a = [gpuad.tensor(v, requires_grad=v.dtype.kind == "f") for v in args]
            b = [torch.tensor(v, requires_grad=v.dtype.kind == "f") for v in args]
            lo, lt = ours(*a, reduction=reduction), theirs(*b, reduction=reduction)
            np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-10)
            lo.sum().backward(), lt.sum().backward()
            for p, q in zip(a, b):
                if q.grad is not None:
                    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9)


def test_torch_twin_embedding_dropout_eval_and_momentum_none():
    torch = pytest.importorskip("torch")
    index = np.array([[1, 0, 3], [0, 2, 1]])
    theirs, ours = torch.nn.Embedding(4, 3, padding_idx=0).double(), nn.Embedding(4, 3, 0).double()
    _copy_from_torch(ours, theirs)
    lo, lt = ours(gpuad.tensor(index)), theirs(torch.tensor(index))
    np.testing.assert_array_equal(lo.detach().numpy(), lt.detach().numpy())
    (lo ** 2).sum().backward(), (lt ** 2).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    bo = nn.BatchNorm1d(3, momentum=None).double()
    bt = torch.nn.BatchNorm1d(3, momentum=None).double()
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(4, 3, 2))
        bo(gpuad.tensor(x)), bt(torch.tensor(x))
    for name, b in bo.named_buffers():
        np.testing.assert_allclose(backend.asnumpy(b.array), getattr(bt, name).numpy(), rtol=1e-12)


def _has_conv():
    return "conv2d" in gpuad.ops.REGISTRY or hasattr(gpuad.ops.conv, "conv2d")


@pytest.mark.skipif(not _has_conv(), reason="gpuad.ops.conv has no conv2d yet")
def test_torch_twin_conv_bn_relu_pool():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    def build(m):
        return m.Sequential(m.Conv2d(2, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                            m.MaxPool2d(2), m.Conv2d(4, 6, 3, stride=1, groups=2, bias=False),
                            m.BatchNorm2d(6), m.ReLU(), m.AvgPool2d(2, stride=1),
                            m.AdaptiveAvgPool2d((1, 1)), m.Flatten(), m.Dropout(0.0),
                            m.Linear(6, 3))
    theirs, ours = build(tnn).double(), build(nn).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _copy_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    for step in range(3):
        x = rng.normal(size=(4, 2, 8, 8))
        t = rng.integers(0, 3, 4)
        ours.zero_grad(), theirs.zero_grad()
        lo = F.cross_entropy(ours(gpuad.tensor(x)), gpuad.tensor(t), label_smoothing=0.1)
        lt = tnn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(t),
                                          label_smoothing=0.1)
        np.testing.assert_allclose(lo.item(), lt.item(), rtol=1e-10)
        lo.backward(), lt.backward()
        _assert_grads_match(ours, theirs, rtol=1e-7, atol=1e-10)
    for (name, b), (_, tb) in zip(ours.named_buffers(), theirs.named_buffers()):
        np.testing.assert_allclose(backend.asnumpy(b.array), tb.numpy(), rtol=1e-10, err_msg=name)
    ours.eval(), theirs.eval()
    x = rng.normal(size=(2, 2, 8, 8))
    np.testing.assert_allclose(ours(gpuad.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", [("elu", {"alpha": 0.7}), ("selu", {}),
                                         ("celu", {"alpha": 2.0}), ("leaky_relu", {})])
def test_elu_family_and_leaky_relu_ops_match_torch_at_zero_and_non_finite(name, kwargs):
    # one op each (ops._elu, ops._leaky_relu): values, gradients and second derivatives at 0, -0,
    # NaN and the infinities must be torch's (the elu family's second derivative is 0 at 0)
    torch = pytest.importorskip("torch")
    values = [0.0, -0.0, -1.5, 2.0, math.nan, math.inf, -math.inf, -100.0]
    x = gpuad.tensor(values, dtype=gpuad.float64, requires_grad=True)
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y, ty = getattr(F, name)(x, **kwargs), getattr(torch.nn.functional, name)(tx, **kwargs)
    (g,) = gpuad.grad(y.sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad(ty.sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), [tx])
    if name == "leaky_relu":  # piecewise linear: torch's second derivative is 0, gpuad's gradient
        assert not tgg.any() and not g.requires_grad  # does not depend on x (as relu's)
        gg = gpuad.zeros_like(x)
    else:
        (gg,) = gpuad.grad(g.sum(), [x])
    for ours, theirs in ((y, ty), (g, tg), (gg, tgg)):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                                   atol=0)
    big = gpuad.tensor(np.linspace(-5, 5, 20001), requires_grad=True)  # the select's fast path
    getattr(F, name)(big, **kwargs).sum().backward()
    tbig = torch.tensor(np.linspace(-5, 5, 20001), requires_grad=True)
    getattr(torch.nn.functional, name)(tbig, **kwargs).sum().backward()
    np.testing.assert_allclose(big.grad.numpy(), tbig.grad.numpy(), rtol=1e-12, atol=1e-300)


_REPR_CASES = {
    "Linear": (3, 4), "Bilinear": (2, 3, 4), "Conv1d": (2, 3, 3), "Conv2d": (2, 3, 3),
    "Conv3d": (2, 3, 3), "ConvTranspose2d": (2, 3, 3), "MaxPool2d": (2,), "AvgPool2d": (2,),
    "AdaptiveAvgPool2d": ((2, 2),), "AdaptiveMaxPool1d": (3,), "BatchNorm1d": (3,),
    "LayerNorm": (4,), "GroupNorm": (2, 4), "RMSNorm": (4,), "InstanceNorm1d": (3,),
    "LocalResponseNorm": (2,), "Dropout": (0.2,), "Dropout2d": (), "AlphaDropout": (),
    "Embedding": (5, 3), "EmbeddingBag": (5, 3), "PixelShuffle": (2,), "Upsample": (None, 2),
    "ZeroPad2d": (1,), "ConstantPad1d": (1, 0.5), "ReflectionPad2d": (1,), "Unfold": (2,),
    "Fold": ((4, 4), 2), "LeakyReLU": (), "PReLU": (), "RReLU": (), "ELU": (), "CELU": (),
    "GELU": (), "Hardtanh": (), "Softplus": (), "Softshrink": (), "Threshold": (0.1, 0.0),
    "Softmax": (1,), "GLU": (), "CrossEntropyLoss": (), "CTCLoss": (), "TripletMarginLoss": (),
    "RNN": (3, 4), "LSTM": (3, 4), "GRU": (3, 4, 2), "LSTMCell": (3, 4),
    "MultiheadAttention": (8, 2), "Unflatten": (1, (2, 2)), "TransformerEncoderLayer": (8, 2, 16),
}


@pytest.mark.parametrize("name", list(_REPR_CASES))
def test_layer_reprs_are_torchs(name):
    torch = pytest.importorskip("torch")
    args = _REPR_CASES[name]
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))
