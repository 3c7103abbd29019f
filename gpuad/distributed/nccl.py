"""The NCCL communicator: one GPU per process, over CuPy's NCCL bindings (cupyx.distributed).

Collectives run on a stream of their own, after what the compute stream has queued so far, so a
bucket's all-reduce overlaps the rest of backward. wait() orders the compute stream after the
collective without blocking the host (as PyTorch's NCCL Work does); only is_completed() and
barrier() look at the host clock, so the timeout guards barriers, not device-side waits.
"""
from .. import backend
from .comm import Communicator, Work


class NCCLCommunicator(Communicator):
    name = "nccl"

    def __init__(self, rank, world_size, timeout, host, port, use_mpi):
        super().__init__(rank, world_size, timeout)
        self.device = backend.cuda.current_cuda_device()
        self.nccl = backend.cuda.nccl_communicator(world_size, rank, host, port, use_mpi)
        self.stream = backend.cuda.side_stream()

    def _check(self, array, what):
        dev = backend.device_of(array)
        if dev.type != "cuda":
            raise RuntimeError(f"{what}: the NCCL backend moves GPU arrays only, but this one is "
                               f"on {dev}; move the model and data to {self.device}, or use "
                               f"backend='mpi' for CPU training")
        if not array.flags.c_contiguous:
            raise RuntimeError(f"{what}: NCCL needs a contiguous array, got shape "
                               f"{tuple(array.shape)} with strides {array.strides}; pass a "
                               f"contiguous copy")

    def _launch(self, what, collective, finish=None):
        """Run collective(stream) on the side stream once the compute stream's work is in."""
        backend.cuda.stream_after_current(self.stream)
        collective(self.stream)
        event = backend.cuda.event_on(self.stream)

        def done():
            backend.cuda.stream_waits_for(event)
            return finish() if finish is not None else None
        return _StreamWork(self, what, event, done)

    def _start_all_reduce(self, array, op):
        what = f"all_reduce({op}) of {array.dtype} {tuple(array.shape)}"
        self._check(array, what)
        nccl_op = "sum" if op == "avg" else op

        def finish():
            if op == "avg":
                # queued on the compute stream, after the reduction
                backend.xp_of(array).divide(array, self.world_size, out=array)
        return self._launch(what, lambda s: self.nccl.all_reduce(array, array, nccl_op, s), finish)

    def _start_broadcast(self, array, root):
        what = f"broadcast of {array.dtype} {tuple(array.shape)} from rank {root}"
        self._check(array, what)
        return self._launch(what, lambda s: self.nccl.broadcast(array, root, s))

    def _start_all_gather(self, array):
        what = f"all_gather of {array.dtype} {tuple(array.shape)}"
        self._check(array, what)
        gathered = backend.create(self.device, "empty", (self.world_size,) + array.shape,
                                  dtype=array.dtype)
        return self._launch(what, lambda s: self.nccl.all_gather(array, gathered, array.size, s),
                            lambda: gathered)

    def _start_barrier(self):
        self.nccl.barrier()
        return Work(self, "barrier", lambda: True)

    def _here(self, host_array):
        return backend.to_device(host_array, self.device)

    def close(self):
        stop = getattr(self.nccl, "stop", None)
        if stop is not None:
            stop()  # rank 0's TCP store process


class _StreamWork(Work):
    """A collective queued on a stream: complete when its event is; wait() only orders streams."""

    def __init__(self, comm, what, event, done):
        super().__init__(comm, what, lambda: event.done, done)

    def wait(self, timeout=None):
        if not self._done:
            self._done = True
            self.result = self._finish()
        return self.result
