"""gpuad.distributed, DistributedDataParallel and DistributedSampler.

In-process tests use the world-of-one communicator (and a recording one); the MPI tests launch
2 and 3 ranks of tests/distributed_worker.py with mpiexec, under a timeout, so a hang fails the
test instead of stalling CI. They are skipped with a reason when mpi4py or mpiexec is missing
(pip install -e ".[dev]" installs both).
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
from test_scripts import load_script, needs_mnist

import gpuad
import gpuad.distributed as dist
import gpuad.nn.functional as F
from gpuad import nn, optim
from gpuad.data import DataLoader, DistributedSampler, TensorDataset
from gpuad.distributed.comm import LocalCommunicator
from gpuad.distributed.mpi import find_mpiexec
from gpuad.nn.parallel import DistributedDataParallel
from gpuad.testing.strict import forbid_host_sync

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_worker.py"
MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(not dist.is_mpi_available() or MPIEXEC is None,
                               reason='needs mpi4py and mpiexec: pip install -e ".[dev]" (or '
                                      '"gpuad[mpi]")')


def mpirun(ranks, *args, timeout=120, env=None):
    """mpiexec -n ranks python args..., killed (and the test failed) after `timeout` seconds."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    try:
        return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"mpiexec -n {ranks} {args}: still running after {timeout} s (a hang); "
                    f"stderr:\n{error.stderr}")


@pytest.fixture(autouse=True)
def _no_group_left():
    yield
    dist.destroy_process_group()


# ---- the engine's gradient-ready hook ----------------------------------------------------------
def test_post_accumulate_hook_fires_when_the_leaf_gradient_is_final():
    w = gpuad.tensor(np.ones((3, 3)), requires_grad=True)
    b = gpuad.tensor(np.ones(3), requires_grad=True)
    x = gpuad.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    events = []
    b.register_post_accumulate_grad_hook(lambda t: events.append(("b", t.grad.tolist())))
    handle = w.register_post_accumulate_grad_hook(lambda t: events.append(("w", None)))
    x.register_hook(lambda g: events.append(("x", None)))  # x's gradient comes last of all
    h = x @ w + b
    (h.relu() @ w).sum().backward()
    assert [name for name, _ in events] == ["b", "w", "x"]  # b is final before w's first use
    assert events[0][1] == b.grad.tolist() == [6.0, 6.0, 6.0]
    handle.remove()
    events.clear()
    w.grad = b.grad = None
    ((x @ w + b).relu() @ w).sum().backward()
    assert [name for name, _ in events] == ["b", "x"]


def test_post_accumulate_hook_sees_the_accumulated_grad():
    w = gpuad.tensor(np.ones(2), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert seen == [[2.0, 2.0], [5.0, 5.0]]


def test_post_accumulate_hook_refuses_non_leaves_and_constants():
    w = gpuad.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gpuad.ones(2).register_post_accumulate_grad_hook(print)


# ---- the process group, in one process ---------------------------------------------------------
def test_without_a_launcher_the_group_is_a_world_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK",
                 "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMIX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert not dist.is_initialized()
    dist.init_process_group()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (0, 1, "local")
    t = gpuad.tensor([1.0, 2.0])
    dist.all_reduce(t, op="avg")
    dist.broadcast(t, src=0)
    gathered = [gpuad.zeros(2)]
    dist.all_gather(gathered, t)
    assert t.tolist() == gathered[0].tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="already initialized"):
        dist.init_process_group()
    dist.destroy_process_group()
    with pytest.raises(RuntimeError, match="not initialized; call"):
        dist.get_rank()


def test_launcher_variables_are_read(monkeypatch):
    monkeypatch.setenv("PMI_RANK", "2")
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("MPI_LOCALRANKID", "0")
    assert dist.launcher_environment() == (2, 4, 0, True)
    for name in ("PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dist.launcher_environment() == (1, 2, 1, False)


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "gloo"}, "unknown backend 'gloo'"),
    ({"backend": "local", "rank": 0, "world_size": 2}, "a local group has one rank"),
    ({"rank": 3, "world_size": 2}, r"rank 3 is not in \[0, world_size=2\)"),
    ({"backend": "nccl", "init_method": "host:1"}, "tcp://host:port"),
])
def test_init_process_group_errors_say_what_to_do(kwargs, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        dist.init_process_group(**kwargs)
    assert not dist.is_initialized()


@pytest.mark.skipif(gpuad.cuda.is_available(), reason="checks the message on a machine without GPU")
def test_nccl_without_a_gpu_says_why():
    with pytest.raises(RuntimeError, match="NCCL|CuPy|GPU"):
        dist.init_process_group("nccl", rank=0, world_size=1)
    assert not dist.is_initialized()


def test_collective_errors_name_the_problem():
    comm = LocalCommunicator()
    with pytest.raises(ValueError, match="unknown op 'mean'"):
        comm.all_reduce(np.ones(2), op="mean")
    with pytest.raises(TypeError, match="avg.*int64"):
        comm.all_reduce(np.ones(2, dtype=np.int64), op="avg")
    with pytest.raises(ValueError, match=r"root rank 1 is not in \[0, 1\)"):
        comm.broadcast(np.ones(2), root=1)
    dist.init_process_group()
    with pytest.raises(ValueError, match="tensor_list has 2 tensors but the world size is 1"):
        dist.all_gather([gpuad.zeros(2), gpuad.zeros(2)], gpuad.zeros(2))


def test_save_writes_like_gpuad_save_in_a_world_of_one(tmp_path):
    dist.init_process_group()
    dist.save({"w": gpuad.ones(2)}, tmp_path / "c.ckpt")
    assert gpuad.load(tmp_path / "c.ckpt")["w"].tolist() == [1.0, 1.0]


# ---- DistributedSampler and the DataLoader -----------------------------------------------------
@pytest.mark.parametrize("n, replicas, drop_last", [(12, 3, False), (13, 3, False), (13, 3, True),
                                                     (5, 4, False), (2, 3, False)])
def test_sampler_shards_cover_the_dataset(n, replicas, drop_last):
    for epoch in (0, 1):
        shards = []
        for rank in range(replicas):
            sampler = DistributedSampler(range(n), num_replicas=replicas, rank=rank, seed=7,
                                         drop_last=drop_last)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(shards[-1]) == len(sampler)
        every = [i for shard in shards for i in shard]
        assert len({len(s) for s in shards}) == 1  # equal shares: ranks step in lockstep
        if drop_last:
            assert len(every) == len(set(every)) == n - n % replicas
        else:
            assert set(every) == set(range(n))  # covering, with -n % replicas repeats as padding
            assert len(every) == n + (-n % replicas)
        if n % replicas == 0:
            assert sorted(every) == list(range(n))  # disjoint and covering
    orders = [list(DistributedSampler(range(50), 1, 0, seed=7)) for _ in range(2)]
    assert orders[0] == orders[1]
    reshuffled = DistributedSampler(range(50), 1, 0, seed=7)
    reshuffled.set_epoch(1)
    assert list(reshuffled) != orders[0]


@pytest.mark.parametrize("n, drop_last", [(10, False), (11, False), (11, True)])
def test_sampler_matches_torch_without_shuffling(n, drop_last):
    torch = pytest.importorskip("torch")
    for rank in range(3):
        ours = DistributedSampler(range(n), 3, rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), 3, rank, shuffle=False,
                                                     drop_last=drop_last)
        assert list(ours) == list(theirs)


def test_sampler_errors():
    with pytest.raises(RuntimeError, match="pass num_replicas and rank, or call"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, num_replicas=2\)"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="sampler and shuffle=True"):
        DataLoader(range(4), sampler=[0, 1], shuffle=True)


def test_loader_draws_the_sampler_and_moves_its_epoch():
    data = TensorDataset(gpuad.arange(10.0))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, seed=3)
    loader = DataLoader(data, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    epochs = [[v for (batch,) in loader for v in batch.tolist()] for _ in range(2)]
    assert sampler.epoch == 1  # the loader told the sampler which epoch it was
    for epoch, values in enumerate(epochs):
        sampler.set_epoch(epoch)
        assert values == [float(i) for i in sampler.indices()]
    assert epochs[0] != epochs[1]


# ---- DistributedDataParallel, in one process ---------------------------------------------------
class RecordingCommunicator(LocalCommunicator):
    """A world of one that logs when each all-reduce starts."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def _start_all_reduce(self, array, op):
        self.log.append(("all_reduce", array.size))
        return super()._start_all_reduce(array, op)


def _mlp():
    gpuad.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 3))


def test_buckets_start_while_backward_still_runs():
    log = []
    ddp = DistributedDataParallel(_mlp(), bucket_cap_mb=0.0005,
                                  process_group=RecordingCommunicator(log))
    x = gpuad.randn(4, 6, requires_grad=True)
    first = ddp.module[0](x)
    first.register_hook(lambda g: log.append(("first layer's output gradient", None)))
    out = ddp.module[4](ddp.module[3](ddp.module[2](ddp.module[1](first))))
    F.cross_entropy(out, gpuad.tensor([0, 1, 2, 0])).backward()
    kinds = [kind for kind, _ in log]
    assert len(ddp.buckets) >= 3 and kinds.count("all_reduce") == len(ddp.buckets)
    assert kinds.index("all_reduce") < kinds.index("first layer's output gradient")
    sizes = [size for kind, size in log if kind == "all_reduce"]
    assert sizes == [b.flat.size for b in ddp.buckets]  # in bucket order, last layer first
    assert sum(sizes) == sum(p.array.size for p in ddp.parameters())


def test_ddp_around_a_compiled_model_reduces_every_bucket():
    # its parameters' post-accumulate hooks run once the compiled backward has handed autograd
    # their gradients, as eagerly
    log = []
    plain = _mlp()
    ddp = DistributedDataParallel(gpuad.compile(_mlp()), bucket_cap_mb=0.0005,
                                  process_group=RecordingCommunicator(log))
    assert list(ddp.state_dict()) == ["module._orig_mod." + k for k in plain.state_dict()]
    x, y = gpuad.randn(4, 6), gpuad.tensor([0, 1, 2, 0])
    for step in range(1, 4):
        for model in (plain, ddp):
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
        assert [kind for kind, _ in log].count("all_reduce") == step * len(ddp.buckets) >= 3
        for p, q in zip(plain.parameters(), ddp.parameters()):
            assert np.array_equal(q.grad.array, p.grad.array)
    assert ddp.module.traces == 1


def test_ddp_in_a_world_of_one_matches_the_plain_model(device):
    dist.init_process_group()
    plain = _mlp().to(device)
    wrapped = DistributedDataParallel(_mlp().to(device), bucket_cap_mb=0.001)
    assert list(wrapped.state_dict()) == ["module." + k for k in plain.state_dict()]
    x, y = gpuad.randn(5, 6, device=device), gpuad.tensor([0, 1, 2, 0, 1], device=device)
    for model in (plain, wrapped):
        F.cross_entropy(model(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.module.parameters()):
        np.testing.assert_allclose(gpuad.backend.asnumpy(q.grad.array),
                                   gpuad.backend.asnumpy(p.grad.array), rtol=1e-6, atol=1e-7)


def test_ddp_training_step_never_syncs_with_the_host():
    dist.init_process_group()
    ddp = DistributedDataParallel(_mlp().to("strict"), bucket_cap_mb=0.001)
    opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    x, y = gpuad.randn(5, 6, device="strict"), gpuad.tensor([0, 1, 2, 0, 1], device="strict")
    with forbid_host_sync():
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(ddp(x), y).backward()
            opt.step()


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.used(x)


def test_a_parameter_without_gradient_is_named_at_the_next_forward():
    dist.init_process_group()
    ddp = DistributedDataParallel(Branchy())
    ddp(gpuad.randn(2, 4)).sum().backward()
    with pytest.raises(RuntimeError, match="unused.weight.*find_unused_parameters=True"):
        ddp(gpuad.randn(2, 4))
    ddp(gpuad.randn(2, 4))  # the error reset the buckets: the model is usable again


def test_find_unused_parameters_reduces_zeros_for_them():
    dist.init_process_group()
    ddp = DistributedDataParallel(Branchy(), find_unused_parameters=True)
    for _ in range(2):
        ddp(gpuad.randn(2, 4)).sum().backward()
    assert ddp.module.used.weight.grad is not None
    assert np.all(ddp.module.unused.weight.grad.array == 0)


def test_a_deep_copy_of_the_wrapped_model_trains_on_its_own():
    """copy.deepcopy (an EMA model, say) copies the parameters' hooks; DDP ignores the copies."""
    import copy
    log = []
    ddp = DistributedDataParallel(_mlp(), process_group=RecordingCommunicator(log))
    twin = copy.deepcopy(ddp.module)
    hook = next(iter(twin.parameters()))._post_accumulate_hooks[0]
    assert hook.ddp is ddp  # the DDP (and its communicator) was not copied along
    twin(gpuad.randn(3, 6)).sum().backward()
    assert log == [] and all(p.grad is not None for p in twin.parameters())
    ddp(gpuad.randn(3, 6)).sum().backward()
    assert len(log) == len(ddp.buckets)


def test_no_sync_accumulates_without_communicating():
    log = []
    ddp = DistributedDataParallel(_mlp(), process_group=RecordingCommunicator(log))
    x = gpuad.randn(3, 6)
    with ddp.no_sync():
        ddp(x).sum().backward()
    assert log == []
    ddp(x).sum().backward()
    assert len(log) == len(ddp.buckets)


@pytest.mark.gpu
def test_nccl_world_of_one_on_the_gpu():
    """NCCL refuses two ranks on one GPU, so a lent single-GPU machine checks the code path with
    world size 1 (rendezvous over the TCP store, collectives on the side stream, DDP)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("nccl", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{port}")
    assert dist.get_backend() == "nccl"
    t = gpuad.tensor([1.0, 2.0, 3.0], device="cuda")
    dist.all_reduce(t, op="avg")
    work = dist.all_reduce(t, op="max", async_op=True)
    work.wait()
    dist.broadcast(t, src=0)
    gathered = [gpuad.zeros(3, device="cuda")]
    dist.all_gather(gathered, t)
    assert t.tolist() == gathered[0].tolist() == [1.0, 2.0, 3.0]
    assert dist.group().all_gather_object({"a": 1}) == [{"a": 1}]
    dist.barrier()
    with pytest.raises(RuntimeError, match="NCCL backend moves GPU arrays only"):
        dist.all_reduce(gpuad.ones(2))
    plain = _mlp().to("cuda")
    wrapped = DistributedDataParallel(_mlp().to("cuda"), bucket_cap_mb=0.001)
    x, y = gpuad.randn(5, 6, device="cuda"), gpuad.tensor([0, 1, 2, 0, 1], device="cuda")
    for model in (plain, wrapped):
        F.cross_entropy(model(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.module.parameters()):
        np.testing.assert_allclose(gpuad.backend.asnumpy(q.grad.array),
                                   gpuad.backend.asnumpy(p.grad.array), rtol=1e-6, atol=1e-7)


# ---- real ranks, over MPI ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=[2, 3])
def mpi_world(request, tmp_path_factory):
    if not dist.is_mpi_available() or MPIEXEC is None:
        pytest.skip('needs mpi4py and mpiexec: pip install -e ".[dev]" (or "gpuad[mpi]")')
    ranks = request.param
    out = tmp_path_factory.mktemp(f"mpi{ranks}")
    run = mpirun(ranks, WORKER, "all", out)
    assert run.returncode == 0, f"mpiexec -n {ranks} failed:\n{run.stdout}\n{run.stderr}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]


def test_mpi_collectives(mpi_world):
    world = len(mpi_world)
    for rank, result in enumerate(mpi_world):
        got = result["collectives"]
        assert (result["rank"], result["world_size"], result["backend"]) == (rank, world, "mpi")
        assert got["sum"] == [world * i + world * (world - 1) / 2 for i in range(5)]
        mean = (world + 1) / 2  # of the factors 1..world
        assert got["avg_strided"] == (np.arange(6.0).reshape(2, 3) * mean).T.tolist()
        assert got["max_float16"] == [world - 1] * 3
        assert got["min_async"] == [0.0] * 4
        assert got["broadcast_from_last"] == [10 * (world - 1) + 1] * 2
        assert got["all_gather"] == [[[float(r)] * 2] * 2 for r in range(world)]
        assert got["all_gather_object"] == [{"rank": r} for r in range(world)]
        assert got["strict_staged"] == [0.0, mean, 2 * mean]
        assert got["strict_gather"] == [[0.0, mean, 2 * mean]] * world


def test_ddp_over_mpi_matches_one_process_with_the_whole_batch(mpi_world):
    for result in mpi_world:
        ddp = result["ddp"]
        assert ddp["steps"] == 20 and ddp["buckets"] >= 3
        assert ddp["spread_across_ranks"] == 0.0  # bitwise identical replicas after every step
        assert ddp["max_diff_vs_single"] <= 1e-5 * ddp["param_scale"]  # float32 rounding


def test_no_sync_over_mpi(mpi_world):
    for result in mpi_world:
        assert result["no_sync"]["unsynced_grads_differ"] > 1e-3  # no_sync: nothing was averaged
        assert result["no_sync"]["max_diff_vs_expected"] < 1e-12  # then everything was, in float64


def test_sampler_shards_over_mpi_are_disjoint_and_covering(mpi_world):
    world = len(mpi_world)
    for key in mpi_world[0]["sampler"]:
        n, drop_last = int(key.split("/")[0]), key.endswith("True")
        for epoch in (0, 1):
            every = [i for result in mpi_world for i in result["sampler"][key][epoch]]
            if n % world == 0 or drop_last:
                assert len(every) == len(set(every)) == n - n % world
            else:
                assert set(every) == set(range(n))
        assert mpi_world[0]["sampler"][key][0] != mpi_world[0]["sampler"][key][1]


def test_checkpoint_is_written_by_rank_zero_and_readable_by_all(mpi_world):
    for result in mpi_world:
        assert result["checkpoint"] == {"written_by": 0, "weights": [0.0] * 3}


def test_training_forwards_take_rank_zeros_buffers(mpi_world):
    for rank, result in enumerate(mpi_world):
        assert result["buffers"]["at_start"] == [0.0] * 3
        assert result["buffers"]["after_evaluation"] == [float(rank)] * 3
        assert result["buffers"]["after_training_forward"] == [0.0] * 3


def test_ranks_with_different_models_get_a_clear_error(mpi_world):
    for rank, result in enumerate(mpi_world):
        assert "ranks built different models: parameter '0.weight' is float32 (16, 8) on rank 0 " \
               "but parameter '0.weight' is float32 (17, 8) on rank 1" in result["mismatch"]


@needs_mpi
def test_a_rank_that_leaves_makes_the_others_fail_within_the_timeout(tmp_path):
    start = time.monotonic()
    run = mpirun(3, WORKER, "rank_leaves", tmp_path, timeout=90, env={"GPUAD_TEST_TIMEOUT": "3"})
    assert run.returncode != 0
    assert time.monotonic() - start < 60
    assert "all_reduce(sum) of float64 (3,) did not complete within 3 s" in run.stderr
    assert "another rank has probably died" in run.stderr
    assert "aborting all 3 ranks" in run.stderr


@needs_mpi
def test_a_rank_that_crashes_ends_the_job(tmp_path):
    start = time.monotonic()
    run = mpirun(2, WORKER, "rank_crashes", tmp_path, timeout=90, env={"GPUAD_TEST_TIMEOUT": "30"})
    assert run.returncode != 0  # the launcher stops the others (MPICH's reports the dead rank's 7)
    assert time.monotonic() - start < 25  # long before the 30 s collective timeout
    assert not (tmp_path / "rank0.json").exists()


@needs_mpi
@needs_mnist
def test_train_mnist_on_two_ranks_matches_one_process_with_twice_the_batch(capsys, tmp_path):
    args = ["--epochs", "1", "--max-steps", "15", "--no-progress", "--device", "cpu"]
    run = mpirun(2, ROOT / "scripts" / "train_mnist.py", "--distributed", "--batch-size", "32",
                 "--checkpoint", tmp_path / "run.ckpt", *args, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["ranks"] == 2  # rank 0 alone prints
    script = load_script("train_mnist")
    single = script.main(["--batch-size", "64", *args])["history"][0]
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert lines[0][key] == pytest.approx(single[key], abs=2e-4), key
    saved = gpuad.load(tmp_path / "run.ckpt")  # the plain model's state: resumable without DDP
    assert saved["epoch"] == 0
    script.MODELS["mlp"]().load_state_dict(saved["model"])
    resumed = mpirun(2, ROOT / "scripts" / "train_mnist.py", "--distributed", "--batch-size", "32",
                     "--checkpoint", tmp_path / "run.ckpt", "--resume", *args[:1], "2", *args[2:],
                     timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
    assert [line.get("epoch") for line in lines] == [1, 2]  # resumed after epoch 1; ran epoch 2
    assert "resumed_from" in lines[0] and gpuad.load(tmp_path / "run.ckpt")["epoch"] == 1


@needs_mpi
@needs_mnist
def test_train_mnist_on_two_ranks_with_a_compiled_model_matches_eager():
    # --compile model: DistributedDataParallel around gpuad.compile(model), whose parameters'
    # hooks start the reductions after the recorded backward
    args = ["--distributed", "--batch-size", "32", "--epochs", "1", "--max-steps", "6",
            "--no-progress", "--device", "cpu"]
    found = []
    for extra in ([], ["--compile", "model"]):
        run = mpirun(2, ROOT / "scripts" / "train_mnist.py", *args, *extra, timeout=300)
        assert run.returncode == 0, run.stderr
        line, = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        found.append({k: v for k, v in line.items() if k != "samples_per_s"})
    assert found[0] == found[1]


@needs_mpi
def test_a_torchrun_style_launch_on_the_cpu_is_refused_with_the_fix(tmp_path):
    """RANK/WORLD_SIZE without mpiexec: MPI alone would see a world of one and train apart."""
    script = tmp_path / "job.py"
    script.write_text("import gpuad.distributed as d\nd.init_process_group()\n")
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode != 0
    assert "the environment says 2 ranks but MPI sees 1; launch every rank with mpiexec" \
        in run.stderr


# ---- the NCCL communicator's glue, without a GPU -----------------------------------------------
def test_nccl_calls_match_cupyx_distributed_signatures():
    """What nccl.py calls on cupyx.distributed's NCCLBackend, checked against the installed CuPy
    (which imports without a GPU), as the op table checks CuPy's array functions."""
    cupyx_distributed = pytest.importorskip("cupyx.distributed")
    import inspect
    backend_class = cupyx_distributed.NCCLBackend
    expected = {"all_reduce": ["in_array", "out_array", "op", "stream"],
                "broadcast": ["in_out_array", "root", "stream"],
                "all_gather": ["in_array", "out_array", "count", "stream"], "barrier": []}
    for name, params in expected.items():
        assert list(inspect.signature(getattr(backend_class, name)).parameters)[1:] == params
    init = inspect.signature(cupyx_distributed.init_process_group).parameters
    assert {"n_devices", "rank", "host", "port", "use_mpi"} <= set(init)


class FakeNCCL:
    """cupyx.distributed.NCCLBackend's calls, on numpy arrays, for a world of two whose other
    rank holds 10x this rank's values."""

    def __init__(self):
        self.calls = []

    def all_reduce(self, in_array, out_array, op, stream):
        self.calls.append(("all_reduce", op, stream))
        out_array[...] = in_array * 11 if op == "sum" else np.maximum(in_array, in_array * 10)

    def broadcast(self, in_out_array, root, stream):
        self.calls.append(("broadcast", root, stream))
        in_out_array *= 10 if root == 1 else 1

    def all_gather(self, in_array, out_array, count, stream):
        self.calls.append(("all_gather", count, stream))
        out_array[0], out_array[1] = in_array, in_array * 10

    def barrier(self):
        self.calls.append(("barrier",))


def test_nccl_communicator_logic_with_a_fake_nccl(monkeypatch):
    from gpuad.distributed import nccl
    monkeypatch.setattr(nccl.NCCLCommunicator, "_check", lambda self, array, what: None)
    order = []
    monkeypatch.setattr(gpuad.backend.cuda, "stream_after_current", lambda s: order.append("after"))
    monkeypatch.setattr(gpuad.backend.cuda, "event_on", lambda s: type("E", (), {"done": True})())
    monkeypatch.setattr(gpuad.backend.cuda, "stream_waits_for", lambda e: order.append("waits"))
    comm = nccl.NCCLCommunicator.__new__(nccl.NCCLCommunicator)
    nccl.Communicator.__init__(comm, 0, 2, 5.0)
    comm.nccl, comm.stream, comm.device = FakeNCCL(), "side-stream", gpuad.device("cpu")
    a = np.array([1.0, 2.0])
    work = comm.all_reduce(a, op="avg", async_op=True)
    assert order == ["after"] and work.is_completed()
    work.wait()
    assert order == ["after", "waits"] and a.tolist() == [5.5, 11.0]  # (x + 10x) / 2
    comm.all_reduce(a, op="max")
    assert a.tolist() == [55.0, 110.0]
    b = np.array([1.0, 2.0])
    comm.broadcast(b, root=1)
    assert b.tolist() == [10.0, 20.0]
    assert comm.all_gather(np.array([1.0])).tolist() == [[1.0], [10.0]]
    comm.barrier()
    assert [c[0] for c in comm.nccl.calls] == ["all_reduce", "all_reduce", "broadcast",
                                               "all_gather", "barrier"]
    assert comm.nccl.calls[0] == ("all_reduce", "sum", "side-stream")  # avg = sum, then divide
