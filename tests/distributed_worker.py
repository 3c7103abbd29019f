"""One rank of the MPI tests (tests/test_distributed.py launches it with mpiexec -n N).

    mpiexec -n N python tests/distributed_worker.py SCENARIO OUTDIR

Each rank writes what it saw to OUTDIR/rank<R>.json; the test process compares the ranks and
checks the numbers, so a failure there names the rank and the value.
"""
import json
import os
import sys

import numpy

import gpuad
import gpuad.distributed as dist
import gpuad.nn.functional as F
from gpuad import nn, optim
from gpuad.data import DataLoader, DistributedSampler, TensorDataset
from gpuad.nn.parallel import DistributedDataParallel


def collectives(rank, world):
    out = {}
    a = numpy.arange(5, dtype=numpy.float32) + rank
    dist.all_reduce(a)
    out["sum"] = a.tolist()
    b = (numpy.arange(6, dtype=numpy.float64).reshape(2, 3) * (rank + 1)).T  # strided
    dist.all_reduce(b, op="avg")
    out["avg_strided"] = b.tolist()
    c = numpy.full(3, rank, dtype=numpy.float16)
    dist.all_reduce(c, op=dist.ReduceOp.MAX)
    out["max_float16"] = c.astype(float).tolist()
    t = gpuad.tensor(numpy.full(4, float(rank), dtype=numpy.float32))
    work = dist.all_reduce(t, op="min", async_op=True)
    work.wait()
    out["min_async"] = t.tolist()
    d = numpy.full(2, 10 * rank + 1, dtype=numpy.int64)
    dist.broadcast(d, src=world - 1)
    out["broadcast_from_last"] = d.tolist()
    gathered = [gpuad.zeros(2, 2) for _ in range(world)]
    dist.all_gather(gathered, gpuad.full((2, 2), float(rank)))
    out["all_gather"] = [g.tolist() for g in gathered]
    # a device array, which MPI takes through host memory (as CuPy arrays without CUDA-aware MPI)
    staged = gpuad.tensor(numpy.arange(3.0) * (rank + 1), device="strict")
    dist.all_reduce(staged, op="avg")
    dist.broadcast(staged, src=world - 1)
    out["strict_staged"] = staged.tolist()
    out["strict_gather"] = dist.group().all_gather(staged.array).tolist()
    objects = [None] * world
    dist.all_gather_object(objects, {"rank": rank})
    out["all_gather_object"] = objects
    dist.barrier()
    return out


def make_model(width=16):
    gpuad.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 16), nn.ReLU(),
                         nn.Linear(16, 4))


def flat_params(model):
    return numpy.concatenate([p.array.ravel() for p in model.parameters()])


def ddp_equivalence(rank, world, steps=20, per_rank_batch=4):
    """N ranks with batch B against one process with batch N*B, over `steps` SGD steps."""
    rng = numpy.random.default_rng(0)
    n = steps * world * per_rank_batch
    data = TensorDataset(gpuad.tensor(rng.standard_normal((n, 8)).astype(numpy.float32)),
                         gpuad.tensor(rng.integers(0, 4, n)))
    ddp = DistributedDataParallel(make_model(), bucket_cap_mb=0.0001)  # several buckets
    opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(data, batch_size=per_rank_batch,
                        sampler=DistributedSampler(data, shuffle=True, seed=3))
    single = make_model()
    single_opt = optim.SGD(single.parameters(), lr=0.1, momentum=0.9)
    single_loader = DataLoader(data, batch_size=world * per_rank_batch, shuffle=True, seed=3)
    spread, done = 0.0, 0
    for (x, y), (sx, sy) in zip(loader, single_loader):
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
        single_opt.zero_grad()
        F.cross_entropy(single(sx), sy).backward()
        single_opt.step()
        every = dist.group().all_gather(flat_params(ddp.module))  # identical on every rank?
        spread = max(spread, float(numpy.abs(every - every[0]).max()))
        done += 1
    return {"steps": done, "buckets": len(ddp.buckets), "spread_across_ranks": spread,
            "max_diff_vs_single": float(numpy.abs(flat_params(ddp.module)
                                                  - flat_params(single)).max()),
            "param_scale": float(numpy.abs(flat_params(single)).max())}


def micro_batch(rank, k):
    rng = numpy.random.default_rng([rank, k])
    return (gpuad.tensor(rng.standard_normal((3, 8)).astype(numpy.float64)),
            gpuad.tensor(rng.integers(0, 4, 3)))


def no_sync(rank, world):
    """Two backward passes under no_sync, then one synced: the average of every rank's sum."""
    ddp = DistributedDataParallel(make_model().double())
    with ddp.no_sync():
        for k in range(2):
            x, y = micro_batch(rank, k)
            F.cross_entropy(ddp(x), y).backward()
    local = numpy.concatenate([p.grad.array.ravel() for p in ddp.module.parameters()])
    local_spread = numpy.abs(dist.group().all_gather(local) - local).max()
    x, y = micro_batch(rank, 2)
    F.cross_entropy(ddp(x), y).backward()
    reduced = numpy.concatenate([p.grad.array.ravel() for p in ddp.module.parameters()])
    expected = 0
    for q in range(world):  # recomputed here, without communication
        model = make_model().double()
        for k in range(3):
            x, y = micro_batch(q, k)
            F.cross_entropy(model(x), y).backward()
        expected = expected + numpy.concatenate([p.grad.array.ravel() for p in model.parameters()])
    expected /= world
    return {"unsynced_grads_differ": float(local_spread),
            "max_diff_vs_expected": float(numpy.abs(reduced - expected).max())}


def sampler_shards(rank, world):
    out = {}
    for n in (12, 13):
        for drop_last in (False, True):
            sampler = DistributedSampler(list(range(n)), shuffle=True, seed=5, drop_last=drop_last)
            epochs = []
            for epoch in (0, 1):
                sampler.set_epoch(epoch)
                epochs.append(list(sampler))
            out[f"{n}/{drop_last}"] = epochs
    return out


def checkpoint(rank, world, outdir):
    path = os.path.join(outdir, "shared.ckpt")
    dist.save({"written_by": rank, "weights": gpuad.full((3,), float(rank))}, path)
    state = gpuad.load(path)  # at once, on every rank: save returned only once it was complete
    return {"written_by": state["written_by"], "weights": state["weights"].tolist()}


def buffers(rank, world):
    """broadcast_buffers: a training forward takes rank 0's buffers; evaluation leaves them."""
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=0.0))  # stats stay put
    ddp = DistributedDataParallel(model)
    at_start = model[1].running_mean.tolist()
    model[1].running_mean.array[...] = rank  # as if each rank's statistics had drifted apart
    x = gpuad.randn(5, 4)
    with gpuad.no_grad():
        ddp(x)
    after_evaluation = model[1].running_mean.tolist()
    ddp(x)
    return {"at_start": at_start, "after_evaluation": after_evaluation,
            "after_training_forward": model[1].running_mean.tolist()}


def mismatched_model(rank, world):
    try:
        DistributedDataParallel(make_model(width=16 + rank))
    except RuntimeError as error:
        return str(error)
    return None


def main(scenario, outdir):
    timeout = float(os.environ.get("GPUAD_TEST_TIMEOUT", "60"))
    dist.init_process_group("mpi", timeout=timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {"rank": rank, "world_size": world, "backend": dist.get_backend()}
    if scenario == "all":
        result["collectives"] = collectives(rank, world)
        result["ddp"] = ddp_equivalence(rank, world)
        result["no_sync"] = no_sync(rank, world)
        result["sampler"] = sampler_shards(rank, world)
        result["checkpoint"] = checkpoint(rank, world, outdir)
        result["buffers"] = buffers(rank, world)
        result["mismatch"] = mismatched_model(rank, world)
    elif scenario == "rank_leaves":  # rank 1 returns early; the others wait in a collective
        dist.barrier()
        if rank == 1:
            sys.exit(0)
        dist.all_reduce(numpy.ones(3))
    elif scenario == "rank_crashes":  # rank 1 dies mid-backward of a DDP step
        ddp = DistributedDataParallel(make_model())
        x, y = micro_batch(rank, 0)
        loss = F.cross_entropy(ddp(x.float()), y)
        if rank == 1:
            os._exit(7)
        loss.backward()
    with open(os.path.join(outdir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
