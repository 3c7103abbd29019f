"""DataLoader: a Dataset's samples in batches, as Tensors on the requested device.

A dataset with `.tensors` is copied to the device once (cached per device) and indexed there with
the epoch's index array, so a GPU epoch makes one host-to-device copy (the permutation), not one per
batch. Any other dataset is gathered on the host, batch by batch (by worker threads that prefetch,
with num_workers > 0), collated (default_collate, or collate_fn) and moved once. Device logic stays
in backend; there is no gpu= flag here.
"""
import collections
import itertools
import threading
from collections.abc import Mapping
from concurrent import futures

import numpy

from .. import backend
from ..creation import tensor
from ..tensor import Tensor


# ---- collation ---------------------------------------------------------------------------------
def _is_array_like(value):
    return isinstance(value, (Tensor, numpy.generic)) or backend.is_array(value)


def _stack(values):
    """One Tensor of same-shaped Tensors/arrays/numpy scalars, on the first one's device."""
    arrays = [v.array if isinstance(v, Tensor) else v for v in values]
    first = arrays[0]
    if isinstance(first, numpy.generic):
        return Tensor(numpy.stack([numpy.asarray(a) for a in arrays]))
    dev = backend.device_of(first)
    arrays = [backend.to_device(a, dev) for a in arrays]
    with backend.device_scope(first):
        return Tensor(backend.xp_of(first).stack(arrays))


def _drawn():
    """A batch was drawn: a replay would not draw the next one, and would train on this one
    again."""
    backend.not_replayable("draws a batch from a DataLoader (a replay would train on that batch "
                           "again: draw batches outside and pass them in)")


def default_collate(batch):
    """A list of samples as one batch, like torch.utils.data.default_collate: Tensors, arrays and
    numpy scalars are stacked; Python ints become an int64 Tensor, floats float64 (as torch's);
    strings stay a list; dicts, named tuples, tuples and lists are collated field by field (a
    tuple sample gives a tuple, where torch gives a list)."""
    first = batch[0]
    if _is_array_like(first):
        return _stack(batch)
    if isinstance(first, float):
        return tensor(batch, dtype=backend.float64)
    if isinstance(first, int):  # bool too: gpuad.tensor keeps it bool, as torch.tensor does
        return tensor(batch)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a named tuple
        return type(first)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts "
                    f"or lists; found {type(first).__name__} (pass a collate_fn for it)")


def default_convert(data):
    """One sample as it is, arrays made Tensors (the collate function when batch_size=None),
    like torch.utils.data.default_convert."""
    if _is_array_like(data) and not isinstance(data, Tensor):
        return Tensor(numpy.asarray(data) if isinstance(data, numpy.generic) else data)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (tuple, list)):
        return type(data)(default_convert(d) for d in data)
    return data


def _to_device(value, dev):
    if isinstance(value, Tensor):
        return value if value.device == dev else Tensor(backend.to_device(value.array, dev))
    if isinstance(value, Mapping):
        return {key: _to_device(v, dev) for key, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_to_device(v, dev) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, dev) for v in value)
    return value


# ---- worker threads ----------------------------------------------------------------------------
WorkerInfo = collections.namedtuple("WorkerInfo", "id num_workers seed dataset")
_worker = threading.local()


def get_worker_info():
    """In a DataLoader worker thread: its WorkerInfo (id, num_workers, seed, dataset), like
    torch.utils.data.get_worker_info; None elsewhere."""
    return getattr(_worker, "info", None)


def _start_worker(info, worker_init_fn):
    _worker.info = info
    backend.random.seed_this_thread(info.seed)  # each worker draws its own repeatable stream
    if worker_init_fn is not None:
        worker_init_fn(info.id)


class _Workers:
    """num_workers threads, one queue each: batch i goes to worker i % num_workers, as torch
    assigns them, so a worker's random draws (seeded base_seed + id) repeat from run to run."""

    def __init__(self, loader, base_seed):
        n = loader.num_workers
        self.pools = [futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"gpuad-data-{w}", initializer=_start_worker,
            initargs=(WorkerInfo(w, n, base_seed + w, loader.dataset), loader.worker_init_fn))
            for w in range(n)]
        self.next = 0  # persistent workers keep dealing round-robin across epochs

    def submit(self, fn, arg):
        pool = self.pools[self.next % len(self.pools)]
        self.next += 1
        return pool.submit(fn, arg)

    def shutdown(self):
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=True)


# ---- the loader --------------------------------------------------------------------------------
class DataLoader:
    """Batches of `dataset`, like torch.utils.data.DataLoader, with its arguments.

    A batch mirrors a sample (default_collate), or is what collate_fn makes of the list of
    samples. Orders: without a generator, shuffled orders are reproducible and resumable: epoch
    k's order depends only on (seed, k); iterating counts epochs up from 0 and `set_epoch(k)`
    picks the next one, like DistributedSampler. The seed is `seed`, else drawn once from
    gpuad's generator (so gpuad.manual_seed makes runs repeat) or from a numpy Generator passed
    as generator. A gpuad.Generator as generator is torch's: each epoch's order is drawn from it
    when the iteration starts. sampler: an iterable of indices (a DistributedSampler, a list),
    told the epoch through its set_epoch; batch_sampler: an iterable of index lists. batch_size
    None turns batching off (each sample is converted alone, as torch's).

    num_workers > 0 gathers and collates batches in that many threads, up to prefetch_factor
    (default 2) batches ahead each; worker_init_fn(id) runs in each thread first, and
    get_worker_info() tells a dataset which worker it runs in. persistent_workers keeps them
    between epochs; timeout (seconds) bounds the wait for a batch. Threads share the dataset
    (torch's worker processes copy it). A dataset with `.tensors` and no collate_fn skips all
    this: it is indexed on its device, one op per batch. pin_memory (and pin_memory_device,
    multiprocessing_context, in_order) are accepted and change nothing: there is no pinned
    staging here. device=None keeps the data's device (cpu for host data).
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True, seed=None, device=None):
        if batch_size is not None and (isinstance(batch_size, bool) or
                                       not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got "
                             f"{batch_size!r}")
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True both choose the order; pass "
                             "shuffle to the sampler (DistributedSampler shuffles by default)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        self.dataset, self.sampler, self.batch_sampler = dataset, sampler, batch_sampler
        self.batch_size = None if batch_sampler is not None else batch_size
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn, self.worker_init_fn = collate_fn, worker_init_fn
        self.num_workers, self.timeout = num_workers, timeout
        self.prefetch_factor = (2 if prefetch_factor is None else prefetch_factor) \
            if num_workers else None
        self.persistent_workers, self.pin_memory = persistent_workers, pin_memory
        self.device = None if device is None else backend.device(device)
        self.generator = generator
        self._torch_generator = isinstance(generator, backend.random.Generator)
        if self.shuffle and seed is None and not self._torch_generator:
            seed = (generator.integers(2**63) if generator is not None else
                    backend.random.draw("integers", (), backend.int64, "cpu", 0, 2**63 - 1))
        self.seed = None if seed is None else int(seed)
        self.epoch = 0
        self._placed = {}  # device -> the dataset's arrays there (fast path)
        self._workers = None

    def set_epoch(self, epoch):
        """Make the next iteration epoch `epoch` (its order is a function of seed and epoch)."""
        self.epoch = int(epoch)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset if self.sampler is None else self.sampler)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(self.epoch)
            return numpy.fromiter(iter(self.sampler), dtype=numpy.int64)
        if self.shuffle and self._torch_generator:
            return backend.random.draw("permutation", None, backend.int64, "cpu",
                                       len(self.dataset), generator=self.generator)
        if self.shuffle:
            return numpy.random.default_rng([self.seed, self.epoch]).permutation(len(self.dataset))
        return numpy.arange(len(self.dataset))

    def __iter__(self):
        if self.batch_sampler is not None:
            if hasattr(self.batch_sampler, "set_epoch"):
                self.batch_sampler.set_epoch(self.epoch)
            self.epoch += 1
            return self._host_batches([list(b) for b in self.batch_sampler])
        order = self._order()
        self.epoch += 1
        if self.batch_size is None:
            return self._host_batches([int(i)] for i in order)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        if getattr(self.dataset, "tensors", None) is not None and self.collate_fn is None:
            return self._device_batches(order, starts)
        return self._host_batches(order[s:s + self.batch_size] for s in starts)

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
            _drawn()
            yield batch

    def _fetch(self, indices):
        """The batch of these dataset indices, collated and on the loader's device."""
        batched = self.batch_size is not None or self.batch_sampler is not None
        getitems = getattr(self.dataset, "__getitems__", None)
        if batched and callable(getitems):  # one call for the batch, as torch's fetcher does
            samples = getitems([int(i) for i in indices])
        else:
            samples = [self.dataset[int(i)] for i in indices]
        if not batched:
            batch = (self.collate_fn or default_convert)(samples[0])
        else:
            batch = (self.collate_fn or default_collate)(samples)
        return batch if self.device is None else _to_device(batch, self.device)

    def _host_batches(self, index_batches):
        if not self.num_workers:
            return self._batches_here(index_batches)
        return self._worker_batches(index_batches)

    def _batches_here(self, index_batches):
        for indices in index_batches:
            batch = self._fetch(indices)
            _drawn()
            yield batch

    def _worker_batches(self, index_batches):
        workers = self._workers
        if workers is None:
            base_seed = int(backend.random.draw("integers", (), backend.int64, "cpu", 0, 2**62,
                                                generator=self.generator
                                                if self._torch_generator else None))
            workers = _Workers(self, base_seed)
            if self.persistent_workers:
                self._workers = workers
        pending, jobs = collections.deque(), iter(index_batches)
        try:
            ahead = max(1, self.num_workers * self.prefetch_factor)
            for indices in itertools.islice(jobs, ahead):
                pending.append(workers.submit(self._fetch, indices))
            while pending:
                future = pending.popleft()
                for indices in itertools.islice(jobs, 1):
                    pending.append(workers.submit(self._fetch, indices))
                try:
                    batch = future.result(timeout=self.timeout or None)
                except futures.TimeoutError:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") \
                        from None
                _drawn()
                yield batch
        finally:
            for future in pending:
                future.cancel()
            if not self.persistent_workers:
                workers.shutdown()

    def __del__(self):
        if getattr(self, "_workers", None) is not None:
            self._workers.shutdown()
