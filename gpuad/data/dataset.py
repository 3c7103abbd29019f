"""Datasets: what a DataLoader draws samples from (the data stage, after optim in the data flow).

A Dataset is anything with __len__ and __getitem__. A dataset that exposes `.tensors`
(TensorDataset, MNIST) lets the loader place it on the device once and index it there; this module
moves nothing.
"""
from ..creation import tensor
from ..tensor import Tensor


class Dataset:
    """Map-style dataset: `len(ds)` samples, `ds[i]` the i-th, like torch.utils.data.Dataset."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are rows of tensors sharing their first dimension, `ds[i]` is
    `tuple(t[i] for t in tensors)`, like torch.utils.data.TensorDataset. Arrays and lists are
    converted with gpuad.tensor."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
            raise ValueError(f"TensorDataset: all tensors must have the same size in their first "
                             f"dimension (one row per sample), got shapes {shapes}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]
