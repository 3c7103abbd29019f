"""PyTorch programs run after renaming the import: the official examples' idioms (the MNIST CNN
with Adadelta and StepLR, the sine-wave LSTM with LBFGS), written for torch and executed with
every `torch` replaced by `gpuad`, on small synthetic data."""
import textwrap

import pytest

MNIST_CNN = '''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.optim.lr_scheduler import StepLR


    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(16 * 5 * 5, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = self.dropout2(F.relu(self.fc1(x)))
            return F.log_softmax(self.fc2(x), dim=1)


    torch.manual_seed(1)
    device = torch.device("cpu")
    data = torch.randn(64, 1, 14, 14)
    target = (data.mean(dim=(1, 2, 3)) > 0).long() + 2 * (data[:, 0, 0, 0] > 0).long()
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    for epoch in range(1, 4):
        model.train()
        for i in range(0, 64, 16):
            x, y = data[i:i + 16].to(device), target[i:i + 16].to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        output = model(data)
        test_loss = F.nll_loss(output, target, reduction="sum").item() / len(data)
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
'''

SINE_LSTM = '''
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.optim as optim


    class Sequence(nn.Module):
        def __init__(self):
            super(Sequence, self).__init__()
            self.lstm1 = nn.LSTMCell(1, 16)
            self.lstm2 = nn.LSTMCell(16, 16)
            self.linear = nn.Linear(16, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = torch.zeros(input.size(0), 16, dtype=torch.double)
            c_t = torch.zeros(input.size(0), 16, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for i in range(future):
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return torch.cat(outputs, dim=1)


    np.random.seed(0)
    torch.manual_seed(0)
    T, L, N = 20, 16, 4
    x = np.empty((N, L), np.int64)
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype("float64")
    input = torch.from_numpy(data[:, :-1])
    target = torch.from_numpy(data[:, 1:])
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    losses = []
    for i in range(2):
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            loss.backward()
            return loss
        losses.append(optimizer.step(closure).item())
    with torch.no_grad():
        pred = seq(input[:2], future=5)
        y = pred.detach().numpy()
'''


def _run(source, framework):
    namespace = {}
    code = textwrap.dedent(source).replace("torch", framework)
    exec(compile(code, f"<{framework} program>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("framework", ["gpuad", "torch"])
def test_the_mnist_example_trains_after_renaming(framework):
    if framework == "torch":
        pytest.importorskip("torch")
    ns = _run(MNIST_CNN, framework)
    assert ns["losses"][-1] < ns["losses"][0] and ns["correct"] > 20  # 4 classes, 64 samples


@pytest.mark.parametrize("framework", ["gpuad", "torch"])
def test_the_sine_lstm_with_lbfgs_runs_after_renaming(framework):
    if framework == "torch":
        pytest.importorskip("torch")
    ns = _run(SINE_LSTM, framework)
    assert ns["losses"][-1] < ns["losses"][0] and ns["y"].shape == (2, 20)
