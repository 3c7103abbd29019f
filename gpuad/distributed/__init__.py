"""gpuad.distributed: data-parallel training across processes, over MPI (mpi4py) or NCCL (CuPy).

Re-exports only. comm.py holds the communicator interface and the world-of-one communicator;
mpi.py and nccl.py the two real ones; process_group.py the default process group and
torch.distributed's functions. gpuad.nn.parallel.DistributedDataParallel and
gpuad.data.DistributedSampler build on it.
"""
from .comm import (Communicator, DistributedTimeoutError, LocalCommunicator,  # noqa: F401
                   ReduceOp, Work)
from .process_group import (all_gather, all_gather_object, all_reduce, barrier,  # noqa: F401
                            broadcast, broadcast_object, destroy_process_group, get_backend,
                            get_node_local_rank, get_rank, get_world_size, group,
                            init_process_group, is_initialized, is_mpi_available,
                            is_nccl_available, launcher_environment, save)


def is_available():
    """Always True: a world of one needs nothing; MPI and NCCL need their extras."""
    return True
