"""gpuad.data: datasets and the DataLoader (the last library stage of the data flow).

Re-exports only; MNIST lives in gpuad.data.datasets.
"""
from . import datasets  # noqa: F401
from .dataset import Dataset, TensorDataset  # noqa: F401
from .loader import DataLoader  # noqa: F401
