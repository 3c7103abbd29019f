"""The default process group: init_process_group reads the launcher's environment and picks a
communicator; the functions below (torch.distributed's names) run collectives on Tensors.

    mpiexec -n 4 python train.py                    # MPI: CPU arrays (and CuPy ones, staged)
    mpiexec -n 4 python train.py --device cuda      # NCCL, its unique id sent over MPI
    RANK=1 WORLD_SIZE=2 MASTER_ADDR=host0 MASTER_PORT=29500 python train.py --device cuda
                                                    # NCCL, rendezvous at rank 0's TCP store
    python train.py                                 # no launcher: world size 1, no dependency
"""
import datetime
import os

from .. import backend as _backend
from ..serialization import save as _save
from ..tensor import Tensor
from .comm import LocalCommunicator, completed

DEFAULT_TIMEOUT = 600.0  # seconds; torch's default for its CPU backends is 30 minutes
BACKENDS = ("auto", "local", "mpi", "nccl")

# (rank, world size, rank on this node) as each launcher spells them; the first three are MPI's
_LAUNCHERS = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
              ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),  # MPICH and Intel MPI (hydra)
              ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK"),
              ("RANK", "WORLD_SIZE", "LOCAL_RANK"))  # torchrun and hand-made launches
_MPI_LAUNCHERS = 3

_group = None  # the default process group's communicator
_local_rank = 0


def launcher_environment():
    """(rank, world size, local rank, launched by mpiexec) from the environment; (0, 1, 0,
    False) when no launcher set any of it."""
    for i, (rank, size, local) in enumerate(_LAUNCHERS):
        if rank in os.environ and size in os.environ:
            r, n = int(os.environ[rank]), int(os.environ[size])
            return r, n, int(os.environ.get(local, r)), i < _MPI_LAUNCHERS
    return 0, 1, 0, False


def init_process_group(backend="auto", *, rank=None, world_size=None, init_method=None,
                       timeout=DEFAULT_TIMEOUT, device=None):
    """Join the default process group. backend: 'mpi' (mpi4py; launch with mpiexec), 'nccl'
    (CuPy; one GPU per process), 'local' (world size 1), or 'auto': 'local' for a world of one,
    'nccl' when `device` is a CUDA device, else 'mpi'. rank and world_size default to the
    launcher's variables; init_method 'tcp://host:port' (else MASTER_ADDR and MASTER_PORT) is
    where NCCL ranks meet when MPI did not launch them. timeout (seconds or a timedelta) bounds
    every wait. With NCCL, each process takes GPU local_rank % device_count."""
    global _group, _local_rank
    if _group is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized; "
                           "call destroy_process_group() first to start another")
    if backend not in BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; expected one of "
                         f"{', '.join(BACKENDS)}")
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    env_rank, env_world, local_rank, by_mpi = launcher_environment()
    declared = world_size is not None or any(r in os.environ and n in os.environ
                                             for r, n, _ in _LAUNCHERS)
    rank = env_rank if rank is None else int(rank)
    world_size = env_world if world_size is None else int(world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"init_process_group: rank {rank} is not in [0, world_size={world_size})")
    dev = None if device is None else _backend.device(device)
    if backend == "auto":
        backend = ("local" if world_size == 1 else
                   "nccl" if dev is not None and dev.type == "cuda" else "mpi")
    if backend == "local":
        if world_size != 1:
            raise ValueError(f"init_process_group(backend='local'): a local group has one rank, "
                             f"but world_size is {world_size}; use 'mpi' or 'nccl'")
        group = LocalCommunicator(timeout)
    elif backend == "mpi":
        from .mpi import MPICommunicator
        # a launcher the table above does not know: MPI's own count is the truth
        group = MPICommunicator(timeout, expected_world_size=world_size if declared else None)
    else:
        group = _nccl_group(rank, world_size, local_rank, by_mpi, init_method, timeout)
    _group, _local_rank = group, local_rank
    return group


def _nccl_group(rank, world_size, local_rank, by_mpi, init_method, timeout):
    from .nccl import NCCLCommunicator
    host, port = _rendezvous(init_method)
    _backend.cuda.require_nccl()  # before picking a GPU, whose error would not mention NCCL
    _backend.cuda.use_cuda_device(local_rank % _backend.cuda_device_count())
    if not by_mpi and world_size > 1 and (host is None or port is None):
        raise RuntimeError("init_process_group(backend='nccl'): ranks not launched by mpiexec "
                           "meet at a TCP store on rank 0's host: set MASTER_ADDR and MASTER_PORT "
                           "(or pass init_method='tcp://host:port'), or launch with mpiexec")
    return NCCLCommunicator(rank, world_size, timeout, host or "127.0.0.1", port or 29500,
                            use_mpi=by_mpi)


def _rendezvous(init_method):
    if init_method is None:
        port = os.environ.get("MASTER_PORT")
        return os.environ.get("MASTER_ADDR"), None if port is None else int(port)
    if not init_method.startswith("tcp://") or ":" not in init_method[6:]:
        raise ValueError(f"init_process_group: init_method must look like 'tcp://host:port', got "
                         f"{init_method!r}")
    host, _, port = init_method[6:].rpartition(":")
    return host, int(port)


def destroy_process_group():
    global _group
    if _group is not None:
        _group.close()
    _group = None


def is_initialized():
    return _group is not None


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available():
    return _backend.cuda.nccl_available()


def group():
    """The default group's communicator (raises if there is none)."""
    if _group is None:
        raise RuntimeError("gpuad.distributed: the default process group is not initialized; call "
                           "gpuad.distributed.init_process_group() first (with no launcher it "
                           "makes a world of one)")
    return _group


def get_rank():
    return group().rank


def get_world_size():
    return group().world_size


def get_node_local_rank():
    """This process's rank among those on its machine (picks its GPU)."""
    group()
    return _local_rank


def get_backend():
    return group().name


def _array(tensor, what):
    if isinstance(tensor, Tensor):
        return tensor.array
    if _backend.is_array(tensor):
        return tensor
    raise TypeError(f"{what}: expected a Tensor or array, got {type(tensor).__name__}")


def _changed(tensor, work):
    if isinstance(tensor, Tensor):
        tensor._bump_version()  # graphs that saved it must not use the old values
    return work


def all_reduce(tensor, op="sum", async_op=False):
    """Reduce `tensor` over all ranks, in place (op: 'sum', 'avg', 'max', 'min' or a ReduceOp).
    async_op=True returns a Work; the tensor holds the result after work.wait()."""
    return _changed(tensor, group().all_reduce(_array(tensor, "all_reduce"), op, async_op))


def broadcast(tensor, src=0, async_op=False):
    """Overwrite `tensor` with rank src's, in place."""
    return _changed(tensor, group().broadcast(_array(tensor, "broadcast"), src, async_op))


def all_gather(tensor_list, tensor, async_op=False):
    """Fill tensor_list (world_size Tensors shaped like `tensor`) with every rank's `tensor`."""
    comm = group()
    if len(tensor_list) != comm.world_size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors but the world "
                         f"size is {comm.world_size}; pass one per rank")
    for t in tensor_list:
        if tuple(t.shape) != tuple(tensor.shape):
            raise ValueError(f"all_gather: tensor_list holds a tensor of shape {tuple(t.shape)}, "
                             f"but the input has shape {tuple(tensor.shape)}; they must match")
    gathered = comm.all_gather(_array(tensor, "all_gather"))
    for t, row in zip(tensor_list, gathered):
        _array(t, "all_gather")[...] = row
        _changed(t, None)
    return completed(comm, "all_gather") if async_op else None


def all_gather_object(object_list, obj):
    """Fill object_list (world_size entries) with every rank's picklable obj."""
    gathered = group().all_gather_object(obj)
    object_list[:] = gathered


def broadcast_object(obj, src=0):
    """Rank src's picklable obj, returned on every rank."""
    return group().broadcast_object(obj, src)


def barrier():
    group().barrier()


def save(obj, path):
    """gpuad.save for a process group: every rank calls it, rank 0 alone writes (atomically), and
    it returns on all ranks once the file is complete, so any rank may resume from it at once. A
    failed write raises on every rank. Without a process group it is gpuad.save."""
    if _group is None or _group.world_size == 1:
        return _save(obj, path)
    failure = None
    if _group.rank == 0:
        try:
            _save(obj, path)
        except Exception as exc:
            failure = exc
    message = _group.broadcast_object(failure and f"{type(failure).__name__}: {failure}", 0)
    if failure is not None:
        raise failure
    if message is not None:
        raise RuntimeError(f"gpuad.distributed.save: rank 0 failed to write {path} ({message}); "
                           f"no rank has a new checkpoint")
