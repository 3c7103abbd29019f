"""Reference models: shapes, parameter counts, a backward pass, state_dict round trips."""
import numpy as np
import pytest

import gpuad
import models

ROWS = [  # model factory, input shape, expected parameter count
    (lambda: models.MLP(), (3, 1, 28, 28), 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10),
    (lambda: models.MLP(in_features=12, hidden=(7,), num_classes=3), (4, 12),
     12 * 7 + 7 + 7 * 3 + 3),
    (lambda: models.LeNet5(), (2, 1, 28, 28),
     16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10),
    (lambda: models.LeNet5(channels=(6, 16), kernel_size=5, hidden=(120, 84)), (2, 1, 28, 28),
     6 * 25 + 6 + 16 * 6 * 25 + 16 + 784 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10),
    (lambda: models.ResNet(widths=(4, 8), blocks_per_stage=1), (2, 1, 28, 28), None),
]
IDS = ["mlp", "mlp_small", "lenet5", "lenet5_classic", "resnet"]


@pytest.mark.parametrize("factory,shape,count", ROWS, ids=IDS)
def test_model_forward_backward(factory, shape, count, device):
    gpuad.manual_seed(0)
    model = factory().to(device)
    if count is not None:
        assert sum(p.numel() for p in model.parameters()) == count
    x = gpuad.randn(*shape, device=device)
    logits = model(x)
    assert logits.shape[0] == shape[0] and logits.dtype == gpuad.float32
    assert logits.device == gpuad.device(device)
    target = gpuad.randint(0, logits.shape[1], (shape[0],), device=device)
    gpuad.nn.functional.cross_entropy(logits, target).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert p.grad.dtype == gpuad.float32 and p.grad.device == gpuad.device(device), name


@pytest.mark.parametrize("factory,shape,count", ROWS, ids=IDS)
def test_model_state_dict_round_trip(factory, shape, count, tmp_path):
    gpuad.manual_seed(1)
    a = factory()
    gpuad.manual_seed(2)
    b = factory()
    gpuad.save(a.state_dict(), tmp_path / "model.ckpt")
    b.load_state_dict(gpuad.load(tmp_path / "model.ckpt"))
    a.eval(), b.eval()
    x = gpuad.randn(*shape)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_resnet_uses_batch_norm_running_stats_in_eval():
    gpuad.manual_seed(0)
    model = models.ResNet(widths=(4,), blocks_per_stage=1)
    x = gpuad.randn(4, 1, 28, 28)
    model.train()
    model(x)
    assert any(name.endswith("running_mean") for name, _ in model.named_buffers())
    model.eval()
    with gpuad.no_grad():
        y1, y2 = model(x[:2]), model(x[:2])
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
