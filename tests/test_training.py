"""gpuad.training: the meters and the epoch loop on a tiny synthetic problem."""
import numpy as np
import pytest

import gpuad
import gpuad.nn as nn
import gpuad.nn.functional as F
from gpuad.data import DataLoader, TensorDataset
from gpuad.training import RunningMean, accuracy, evaluate, train_epoch


def test_accuracy_and_running_mean(device):
    logits = gpuad.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]], device=device)
    targets = gpuad.tensor([0, 1, 1], device=device)
    acc = accuracy(logits, targets)
    assert acc.device == gpuad.device(device) and acc.item() == pytest.approx(2 / 3)
    meter = RunningMean()
    assert np.isnan(meter.value)
    meter.add(gpuad.tensor(1.0, device=device), 3)
    meter.add(gpuad.tensor(3.0, device=device), 1)
    assert meter.value == pytest.approx(1.5)


def test_train_epoch_and_evaluate_learn_a_separable_problem(device):
    gpuad.manual_seed(0)
    x = gpuad.randn(256, 2)
    y = (x[:, 0] + x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=0, device=device)
    model = nn.Linear(2, 2).to(device)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.5)
    first = train_epoch(model, loader, opt, F.cross_entropy, progress=False)
    for _ in range(4):
        last = train_epoch(model, loader, opt, F.cross_entropy, progress=True, log_every=2)
    assert first["samples"] == 256 and first["steps"] == 8 and last["loss"] < first["loss"]
    result = evaluate(model, loader, F.cross_entropy, progress=True, log_every=2)
    assert result["accuracy"] > 0.95 and result["samples"] == 256
    assert not model.training
    capped = train_epoch(model, loader, opt, F.cross_entropy, max_steps=3, progress=False)
    assert capped["steps"] == 3 and capped["samples"] == 96 and model.training
    assert evaluate(model, loader, F.cross_entropy, max_steps=2, progress=False)["samples"] == 64
