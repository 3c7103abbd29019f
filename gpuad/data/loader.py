"""DataLoader: a Dataset's samples in batches, as Tensors on the requested device.

A dataset with `.tensors` is copied to the device once (cached per device) and indexed there with
the epoch's index array, so a GPU epoch makes one host-to-device copy (the permutation), not one per
batch. Any other dataset is gathered on the host and each batch moved once. Device logic stays in
backend.py; there is no gpu= flag here.
"""
import numpy

from .. import backend
from ..creation import tensor
from ..tensor import Tensor


class DataLoader:
    """Batches of `dataset`, like torch.utils.data.DataLoader (in-process, no workers).

    A batch mirrors a sample: a tuple of Tensors for tuple samples, else one Tensor. Shuffled
    orders are reproducible and resumable: epoch k's order depends only on (seed, k). Iterating
    counts epochs up from 0; `set_epoch(k)` picks the next one, like DistributedSampler. The seed is
    `seed`, else drawn once from `generator` (a numpy Generator), else from gpuad's generator (so
    gpuad.manual_seed makes runs repeat). device=None keeps the data's device (cpu for host data).
    sampler: an iterable of indices to draw instead (a DistributedSampler, a list); the loader
    passes its epoch to the sampler's set_epoch, so a sampler reshuffles without being told.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None,
                 seed=None, device=None, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True both choose the order; pass "
                             "shuffle to the sampler (DistributedSampler shuffles by default)")
        self.sampler = sampler
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.device = None if device is None else backend.device(device)
        if self.shuffle and seed is None:
            seed = (generator.integers(2**63) if generator is not None else
                    backend.random.draw("integers", (), backend.int64, "cpu", 0, 2**63 - 1))
        self.seed = None if seed is None else int(seed)
        self.epoch = 0
        self._placed = {}  # device -> the dataset's arrays there (fast path)

    def set_epoch(self, epoch):
        """Make the next iteration epoch `epoch` (its order is a function of seed and epoch)."""
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset if self.sampler is None else self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(self.epoch)
            order = numpy.fromiter(iter(self.sampler), dtype=numpy.int64)
        elif self.shuffle:
            order = numpy.random.default_rng([self.seed, self.epoch]).permutation(len(self.dataset))
        else:
            order = numpy.arange(len(self.dataset))
        self.epoch += 1
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        if getattr(self.dataset, "tensors", None) is not None:
            return self._device_batches(order, starts)
        return self._host_batches(order, starts)

    def _device_batches(self, order, starts):
        dev = self.device or self.dataset.tensors[0].device
        arrays = self._placed.get(dev)
        if arrays is None:
            arrays = self._placed[dev] = tuple(backend.to_device(t.array, dev)
                                               for t in self.dataset.tensors)
        order = backend.to_device(order, dev)  # the epoch's one host-to-device copy
        for start in starts:
            index = order[start:start + self.batch_size]
            with backend.device_scope(index):
                batch = tuple(Tensor(a[index]) for a in arrays)
            yield batch

    def _host_batches(self, order, starts):
        for start in starts:
            samples = [self.dataset[int(i)] for i in order[start:start + self.batch_size]]
            if isinstance(samples[0], (tuple, list)):
                yield tuple(self._stack([s[k] for s in samples]) for k in range(len(samples[0])))
            else:
                yield self._stack(samples)

    def _stack(self, values):
        first = values[0]
        if isinstance(first, Tensor) or backend.is_array(first) or isinstance(first, numpy.generic):
            arrays = [backend.asnumpy(v.array if isinstance(v, Tensor) else v) for v in values]
            dev = self.device or (first.device if isinstance(first, Tensor) else
                                  backend.device_of(first) if backend.is_array(first) else
                                  backend.CPU)
            return Tensor(backend.to_device(numpy.stack(arrays), dev))
        return tensor(values, device=self.device)  # Python numbers, typed like gpuad.tensor
