"""A multi-layer perceptron with configurable widths."""
import gpuad.nn as nn


class MLP(nn.Module):
    """Flatten, then Linear + ReLU for each hidden width, then a Linear to the classes."""

    def __init__(self, in_features=784, hidden=(256, 256), num_classes=10):
        super().__init__()
        widths = (in_features,) + tuple(hidden)
        layers = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
