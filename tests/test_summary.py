"""gpuad.nn.summary: per-layer output shapes and parameter counts, on the project's models."""
import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import summary
from models.lenet import LeNet5
from models.mlp import MLP


def test_mlp_rows_shapes_and_counts(capsys):
    model = MLP()
    s = summary(model, (2, 1, 28, 28))
    rows = [(r.name, r.kind, r.depth, r.output_shape, r.num_params) for r in s.rows]
    assert rows == [
        ("", "MLP", 0, (2, 10), 0),
        ("net", "Sequential", 1, (2, 10), 0),
        ("net.0", "Flatten", 2, (2, 784), 0),
        ("net.1", "Linear", 2, (2, 256), 784 * 256 + 256),
        ("net.2", "ReLU", 2, (2, 256), 0),
        ("net.3", "Linear", 2, (2, 256), 256 * 256 + 256),
        ("net.4", "ReLU", 2, (2, 256), 0),
        ("net.5", "Linear", 2, (2, 10), 256 * 10 + 10)]
    assert s.total_params == s.trainable_params == 269_322 and s.non_trainable_params == 0
    assert s.param_bytes == 269_322 * 4
    printed = capsys.readouterr().out
    assert printed.strip() == str(s).strip()
    assert "Total params: 269,322" in printed and "net.1 (Linear)" in printed
    assert "200,960" in printed


def test_lenet_rows_shapes_and_counts():
    s = summary(LeNet5(), (1, 1, 28, 28), verbose=0)
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["features.0"] == (1, 16, 28, 28) and shapes["features.2"] == (1, 16, 14, 14)
    assert shapes["features.3"] == (1, 32, 14, 14) and shapes["features.5"] == (1, 32, 7, 7)
    assert shapes["classifier.0"] == (1, 32 * 7 * 7) and shapes[""] == (1, 10)
    counts = {r.name: r.num_params for r in s.rows if r.num_params}
    assert counts == {"features.0": 16 * 1 * 9 + 16, "features.3": 32 * 16 * 9 + 32,
                      "classifier.1": 1568 * 128 + 128, "classifier.3": 128 * 10 + 10}
    assert s.total_params == sum(counts.values()) == 206_922


def test_lenet_count_matches_the_same_network_in_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Flatten(), tnn.Linear(1568, 128), tnn.ReLU(), tnn.Linear(128, 10))
    assert summary(LeNet5(), (1, 1, 28, 28), verbose=0).total_params == sum(
        p.numel() for p in theirs.parameters())


def test_frozen_parameters_are_non_trainable():
    model = MLP(hidden=(8,))
    model.net[1].requires_grad_(False)
    s = summary(model, (3, 784), verbose=0)
    assert s.total_params == 784 * 8 + 8 + 8 * 10 + 10
    assert s.non_trainable_params == 784 * 8 + 8
    assert [r.trainable for r in s.rows if r.name == "net.1"] == [0]


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.Linear(6, 2))
    model.train()
    model[3].eval()
    bn = model[1]
    mean_before, var_before = bn.running_mean.tolist(), bn.running_var.tolist()
    s = summary(model, (1, 4), verbose=0)  # batch 1 would fail BatchNorm in training mode
    assert s.rows[-1].output_shape == (1, 2)
    assert [m.training for m in model.modules()] == [True, True, True, True, False]
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert bn.running_mean.tolist() == mean_before and bn.running_var.tolist() == var_before
    y = model(gpuad.ones(3, 4))  # still an ordinary model with gradients
    y.sum().backward()
    assert model[0].weight.grad is not None


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 5), nn.Linear(4, 5)

    def forward(self, x, y):
        return self.a(x) + self.b(y), self.a(x)


def test_several_inputs_tuple_outputs_input_data_and_dtype():
    s = summary(TwoInputs(), [(2, 3), (2, 4)], verbose=0)
    assert s.rows[0].output_shape == [(2, 5), (2, 5)]
    assert [r.name for r in s.rows] == ["", "a", "b", "a"]  # a module called twice shows twice
    assert s.total_params == (3 * 5 + 5) + (4 * 5 + 5)
    assert "[2, 5], [2, 5]" in str(s)
    model = nn.Linear(3, 2).to(gpuad.float64)
    s = summary(model, (4, 3), dtype=gpuad.float64, verbose=0)
    assert s.rows[0].output_shape == (4, 2) and s.param_bytes == 8 * 8
    s = summary(model, input_data=gpuad.tensor(np.ones((5, 3))), verbose=0)
    assert s.rows[0].output_shape == (5, 2)


def test_errors():
    with pytest.raises(ValueError, match="input_size"):
        summary(MLP())
    model = MLP()
    with pytest.raises(ValueError, match="784 features"):
        summary(model, (1, 100), verbose=0)
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert model.training


@pytest.mark.gpu
def test_summary_on_cuda():
    model = LeNet5().to("cuda")
    s = summary(model, (2, 1, 28, 28), device="cuda", verbose=0)
    assert s.rows[0].output_shape == (2, 10) and s.total_params == 206_922
