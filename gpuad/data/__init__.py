"""gpuad.data: datasets, the DataLoader and the DistributedSampler (the last library stage of
the data flow).

Re-exports only; MNIST lives in gpuad.data.datasets.
"""
from . import datasets  # noqa: F401
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split  # noqa: F401
from .loader import DataLoader, default_collate, default_convert, get_worker_info  # noqa: F401
from .sampler import DistributedSampler  # noqa: F401
