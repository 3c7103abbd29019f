"""DistributedSampler: each rank's share of a dataset's indices, as torch.utils.data has it.

The epoch's order is numpy.random.default_rng([seed, epoch]).permutation(n), the same order a
shuffled DataLoader with that seed draws, so N ranks with batch B see, step by step, the samples
one process with batch N*B sees.
"""
import numpy


class DistributedSampler:
    """Indices rank, rank + num_replicas, ... of the epoch's order. Without drop_last the order is
    padded by repeating its start to a multiple of num_replicas, so every rank gets
    ceil(n / num_replicas) indices (the shards are disjoint except for the padding); with
    drop_last its tail is dropped instead, so the shards are disjoint. num_replicas and rank
    default to the default process group's. The DataLoader calls set_epoch for you each epoch."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed
            if not distributed.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "gpuad.distributed.init_process_group() first")
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is not in [0, num_replicas="
                             f"{num_replicas})")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as a numpy array."""
        n = len(self.dataset)
        order = (numpy.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else numpy.arange(n))
        if self.total_size > n:
            order = numpy.resize(order, self.total_size)  # repeats the start, like torch's padding
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples
