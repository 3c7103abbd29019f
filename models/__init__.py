"""Reference models for gpuad, importable as `models` once the project is installed.

Model classes only: no training loops, no argument parsing (those live in gpuad.training and
scripts/).
"""
from .mlp import MLP  # noqa: F401
from .lenet import LeNet5  # noqa: F401
from .resnet import BasicBlock, ResNet  # noqa: F401
from .gpt import GPT, GPTConfig  # noqa: F401
