"""Reference models for gpuad: `models` in a checkout (scripts, tests), installed as `gpuad_models`
(setup.py: a top-level `models` would clash with other projects').

Model classes only: no training loops, no argument parsing (those live in gpuad.training and
scripts/).
"""
from .mlp import MLP  # noqa: F401
from .lenet import LeNet5  # noqa: F401
from .resnet import BasicBlock, ResNet  # noqa: F401
from .gpt import GPT, GPTConfig, next_token_loss  # noqa: F401
