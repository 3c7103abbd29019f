"""A training step never makes the host wait for the GPU.

On CUDA every bool()/float()/.item(), every copy to the host and every op whose output size depends
on the data (boolean masks, nonzero, unique) stalls Python until the device catches up. The strict
backend raises on each of those inside forbid_host_sync(), so these CPU tests prove the training
paths free of them; only reading a value the user asked for (.item(), a progress bar) may sync.
"""
import pytest

import gpuad
import gpuad.nn.functional as F
from gpuad.data import DataLoader, TensorDataset
from gpuad.testing.strict import forbid_host_sync
from gpuad.training import RunningMean
from models.lenet import LeNet5
from models.mlp import MLP

OPTIMIZERS = {
    "sgd_momentum": lambda p: gpuad.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                              weight_decay=1e-4),
    "adam": lambda p: gpuad.optim.Adam(p, lr=1e-3, amsgrad=True),
    "adamw": lambda p: gpuad.optim.AdamW(p, lr=1e-3),
    "rmsprop": lambda p: gpuad.optim.RMSprop(p, lr=1e-3, momentum=0.9, centered=True),
    "adagrad": lambda p: gpuad.optim.Adagrad(p, lr=1e-2),
}


def _loader(n, shape, classes=10):
    x = gpuad.randn(n, *shape, device="strict")
    y = gpuad.randint(0, classes, (n,), device="strict")
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=0)


def _train(model, optimizer, loader, steps, **loss_kwargs):
    meter = RunningMean()
    for step, (inputs, targets) in zip(range(steps), loader):
        loss = F.cross_entropy(model(inputs), targets, **loss_kwargs)
        optimizer.zero_grad()
        loss.backward()
        gpuad.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        meter.add(loss, len(targets))
    return meter


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_mlp_training_steps_never_sync(optimizer):
    model = MLP(in_features=12, hidden=(16, 16)).to("strict")
    opt = OPTIMIZERS[optimizer](model.parameters())
    loader = _loader(32, (12,))
    with forbid_host_sync():
        meter = _train(model, opt, loader, 3, label_smoothing=0.1)
    assert meter.value == meter.value  # reading the running loss afterwards is allowed, and finite


def test_cnn_training_steps_never_sync():
    model = LeNet5(channels=(2, 3), hidden=(8,), image_size=8).to("strict")
    opt = gpuad.optim.Adam(model.parameters(), lr=1e-3)
    loader = _loader(16, (1, 8, 8))
    with forbid_host_sync():
        _train(model, opt, loader, 2, ignore_index=3)


def test_the_guard_catches_each_kind_of_sync():
    """The tests above can fail: every kind of host read raises inside the guard."""
    x = gpuad.randn(4, device="strict")
    reads = {"item": lambda: x[0].item(), "float": lambda: float(x.sum()),
             "bool": lambda: bool(x[0] > 0), "to host": lambda: x.cpu(), "mask": lambda: x[x > 0],
             "nonzero": lambda: x.array.nonzero()}
    for what, read in reads.items():
        with forbid_host_sync(), pytest.raises(RuntimeError, match="synchronise"):
            read()
        read()  # outside the guard it works
