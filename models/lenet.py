"""A LeNet-5-style CNN for 28x28 inputs: two conv + ReLU + max-pool stages, then an MLP head."""
import gpuad.nn as nn


class LeNet5(nn.Module):
    """conv (channels[0]) -> pool -> conv (channels[1]) -> pool -> hidden linears -> classes.

    The defaults (3x3 convs of 16 and 32 channels, one hidden layer of 128) are the network of the
    `cnn` benchmark and reach about 98.8% on MNIST in two epochs; channels=(6, 16), kernel_size=5,
    hidden=(120, 84) gives LeNet-5's own sizes."""

    def __init__(self, in_channels=1, num_classes=10, channels=(16, 32), kernel_size=3,
                 hidden=(128,), image_size=28):
        super().__init__()
        c1, c2 = channels
        pad = kernel_size // 2  # "same" convolutions: only the pools shrink the image
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2))
        widths = (c2 * (image_size // 4) ** 2,) + tuple(hidden)
        layers = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.classifier = nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
