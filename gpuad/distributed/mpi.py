"""The MPI communicator, over mpi4py: numpy buffers directly; CuPy buffers directly when the MPI
library is CUDA-aware, else staged through host memory.

Every collective is MPI's non-blocking form (Iallreduce, Ibcast, ...) so a Work can be waited on
with a deadline. MPI moves only contiguous buffers of the types it knows: a strided array, or a
float16/bfloat16 one (which MPI has no reduction for), goes through a contiguous float32 copy that
wait() writes back.
"""
import os
import shutil
import sys
import time

import numpy

from .. import backend
from .comm import Communicator, Work

_MPI_HELP = ('install the MPI extra: pip install "gpuad[mpi]" (mpi4py and the MPICH wheel), then '
             'launch with mpiexec -n N python script.py')


def find_mpiexec():
    """The mpiexec beside this Python (the MPICH wheel installs it into the environment's bin),
    else the first on PATH, else None."""
    return (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
            or shutil.which("mpiexec"))


def import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(f"gpuad.distributed: the MPI backend needs mpi4py ({error}); "
                           f"{_MPI_HELP}") from None
    return MPI


class MPICommunicator(Communicator):
    name = "mpi"

    def __init__(self, timeout, expected_world_size=None, cuda_aware=None):
        MPI = self.MPI = import_mpi()
        self.comm = MPI.COMM_WORLD
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), timeout)
        if expected_world_size is not None and expected_world_size != self.world_size:
            raise RuntimeError(
                f"init_process_group(backend='mpi'): the environment says {expected_world_size} "
                f"ranks but MPI sees {self.world_size}; launch every rank with mpiexec -n "
                f"{expected_world_size} (or srun --mpi=pmix), not as separate processes (CPU "
                f"training runs over MPI; RANK/WORLD_SIZE launches are for NCCL on GPUs)")
        self.ops = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        if cuda_aware is None:  # MPICH and Open MPI name their CUDA support in the version string
            cuda_aware = os.environ.get("GPUAD_MPI_CUDA_AWARE", "").strip() == "1" or (
                "cuda" in MPI.Get_library_version().lower())
        self.cuda_aware = bool(cuda_aware)
        _abort_on_uncaught_exception(self.comm)
        _share_the_cores(MPI, self.comm)

    def _buffer(self, array):
        """(buffer MPI can take, copy-back): the array itself, or a contiguous host copy."""
        dev = backend.device_of(array)
        direct = dev.type == "cpu" or (dev.type == "cuda" and self.cuda_aware)
        wide = array.dtype.kind == "f" and array.dtype.itemsize < 4
        if direct and array.flags.c_contiguous and not wide:
            if dev.type == "cuda":
                backend.cuda.synchronize(dev)  # MPI is not stream-ordered: the data must be there
            return array, None
        host = backend.asnumpy(array)
        host = numpy.array(host, dtype=numpy.float32 if wide else host.dtype, order="C")

        def copy_back():
            array[...] = backend.to_device(host.astype(array.dtype, copy=False), dev)
        return host, copy_back

    def _work(self, what, request, finish):
        return Work(self, what, request.Test, finish)

    def _start_all_reduce(self, array, op):
        buf, copy_back = self._buffer(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.ops[op])

        def finish():
            if op == "avg":
                # before copying back: one pass, in the wider type
                backend.xp_of(buf).divide(buf, self.world_size, out=buf)
            if copy_back is not None:
                copy_back()
        what = f"all_reduce({op}) of {array.dtype} {tuple(array.shape)}"
        return self._work(what, request, finish)

    def _start_broadcast(self, array, root):
        buf, copy_back = self._buffer(array)
        if copy_back is not None and self.rank == root:
            copy_back = None  # the root's array is the source: nothing comes back to it
        return self._work(f"broadcast of {array.dtype} {tuple(array.shape)} from rank {root}",
                          self.comm.Ibcast(buf, root=root), copy_back)

    def _start_all_gather(self, array):
        buf, _ = self._buffer(array)
        shape = (self.world_size,) + buf.shape
        gathered = (backend.create(backend.device_of(array), "empty", shape, dtype=array.dtype)
                    if buf is array else numpy.empty(shape, dtype=buf.dtype))
        request = self.comm.Iallgather(buf, gathered)

        def finish():
            if buf is array:
                return gathered
            return backend.to_device(gathered.astype(array.dtype, copy=False),
                                     backend.device_of(array))
        return self._work(f"all_gather of {array.dtype} {tuple(array.shape)}", request, finish)

    def _start_barrier(self):
        return self._work("barrier", self.comm.Ibarrier(), None)


def _abort_on_uncaught_exception(comm):
    """An exception that ends one rank would leave the others waiting in their next collective
    until the timeout: abort the whole job instead, as `python -m mpi4py` does."""
    if comm.Get_size() == 1 or getattr(sys.excepthook, "_gpuad_aborts", False):
        return
    previous = sys.excepthook

    def abort(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.write(f"gpuad.distributed: rank {comm.Get_rank()} failed; aborting all "
                         f"{comm.Get_size()} ranks\n")
        sys.stderr.flush()
        time.sleep(1.0)  # let the launcher pass this rank's message on before the job is killed
        comm.Abort(1)
    abort._gpuad_aborts = True
    sys.excepthook = abort


def _share_the_cores(MPI, comm):
    """Ranks on one machine would each run one BLAS thread per core, and the busy-waiting threads
    make a 2-rank step ~10x slower on 2 cores: give each rank its share of the cores (as torchrun
    sets OMP_NUM_THREADS=1), unless the user set a thread count. Needs threadpoolctl (in the mpi
    extra)."""
    if any(name in os.environ for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS")):
        return
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = node.Get_size()
    node.Free()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    if ranks_here > 1:
        threadpool_limits(max(1, (os.cpu_count() or 1) // ranks_here), user_api="blas")
