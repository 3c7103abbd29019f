"""The communicator interface, its completion handle, and the world-size-1 communicator.

A communicator moves raw arrays (numpy or CuPy), in place: all_reduce, broadcast, all_gather,
barrier. Each collective can return at once with a Work handle to wait on, which is what lets
DistributedDataParallel reduce one bucket of gradients while backward computes the next. Waits
have a deadline, so a rank that died or stopped calling collectives makes the others fail with a
message instead of hanging forever.
"""
import pickle
import time

import numpy

from .. import backend

OPS = ("sum", "avg", "max", "min")


class ReduceOp:
    """Reductions, under torch.distributed's names; plain strings ('sum', ...) work too."""
    SUM, AVG, MAX, MIN = OPS


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete within the process group's timeout."""


class Work:
    """A started collective: wait() blocks until it completes (or its deadline passes), then
    finishes it (copies staged buffers back, divides for 'avg') and returns its result."""

    def __init__(self, comm, what, test, finish=None):
        self.comm, self.what, self._test, self._finish = comm, what, test, finish
        self._done, self.result = False, None

    def is_completed(self):
        """True once the collective has completed (also drives MPI's progress engine)."""
        return self._done or bool(self._test())

    def wait(self, timeout=None):
        if not self._done:
            limit = self.comm.timeout if timeout is None else timeout
            start = time.monotonic()
            deadline, pause = start + limit, 0.0
            while not self._test():
                now = time.monotonic()
                if now > deadline:
                    raise DistributedTimeoutError(
                        f"{self.what} did not complete within {limit:g} s on rank "
                        f"{self.comm.rank} of {self.comm.world_size}: another rank has probably "
                        f"died, or the ranks called collectives in different orders (every rank "
                        f"must run the same collectives, in the same order). If a step is "
                        f"legitimately this slow, raise timeout= in init_process_group.")
                # MPI advances a collective only inside MPI calls, so a rank that sleeps holds up
                # its peers: poll flat out for 200 us (a collective's own time), then yield the
                # core between polls (another rank on it may still be computing) until 20 ms,
                # then back off to 1 ms.
                waited = now - start
                if waited > 2e-4:
                    time.sleep(pause)
                    if waited > 0.02:
                        pause = min(2 * pause or 1e-5, 1e-3)
            self._done = True
            if self._finish is not None:
                self.result = self._finish()
        return self.result


def completed(comm, what, result=None):
    """A Work for a collective that is already done (a world of one); wait() returns result."""
    return Work(comm, what, lambda: True, lambda: result)


class Communicator:
    """rank, world_size and the collectives; subclasses implement the _start_* methods, each
    of which starts a collective and returns its Work."""
    name = "?"

    def __init__(self, rank, world_size, timeout):
        self.rank, self.world_size, self.timeout = rank, world_size, float(timeout)

    def __repr__(self):
        return f"<{type(self).__name__} rank {self.rank} of {self.world_size}>"

    def all_reduce(self, array, op="sum", async_op=False):
        """Reduce `array` over all ranks, in place ('avg' divides the sum by world_size)."""
        op = _check_op(op, array)
        return self._run(self._start_all_reduce(array, op), async_op)

    def broadcast(self, array, root=0, async_op=False):
        """Overwrite `array` on every rank with root's, in place."""
        _check_root(root, self.world_size, "broadcast")
        return self._run(self._start_broadcast(array, root), async_op)

    def all_gather(self, array, async_op=False):
        """A new array of shape (world_size, *array.shape): every rank's `array`, by rank."""
        return self._run(self._start_all_gather(array), async_op)

    def barrier(self):
        """Return once every rank has called barrier()."""
        self._start_barrier().wait()

    def all_gather_object(self, obj):
        """Every rank's picklable `obj`, as a list indexed by rank."""
        data = numpy.frombuffer(pickle.dumps(obj), dtype=numpy.uint8)
        sizes = self.all_gather(self._here(numpy.array([data.size], dtype=numpy.int64)))
        sizes = backend.asnumpy(sizes).ravel()
        padded = numpy.zeros(int(sizes.max()), dtype=numpy.uint8)
        padded[:data.size] = data
        gathered = backend.asnumpy(self.all_gather(self._here(padded)))
        return [pickle.loads(row[:size].tobytes()) for row, size in zip(gathered, sizes)]

    def broadcast_object(self, obj, root=0):
        """Root's picklable `obj`, on every rank."""
        _check_root(root, self.world_size, "broadcast_object")
        return self.all_gather_object(obj if self.rank == root else None)[root]

    def close(self):
        """Release what the communicator holds (destroy_process_group calls it)."""

    def _here(self, host_array):
        """A numpy array moved to where this communicator's buffers live."""
        return host_array

    @staticmethod
    def _run(work, async_op):
        return work if async_op else work.wait()


def _check_op(op, array):
    op = str(op).lower()
    if op not in OPS:
        raise ValueError(f"all_reduce: unknown op {op!r}; expected one of {', '.join(OPS)}")
    if op == "avg" and array.dtype.kind not in "fc":
        raise TypeError(f"all_reduce(op='avg'): the array is {array.dtype}, and an average needs a "
                        f"floating dtype; reduce with op='sum' and divide yourself")
    return op


def _check_root(root, world_size, what):
    if not 0 <= root < world_size:
        raise ValueError(f"{what}: root rank {root} is not in [0, {world_size})")


class LocalCommunicator(Communicator):
    """World size 1: every collective is the identity, with no dependency and no copy."""
    name = "local"

    def __init__(self, timeout=600.0):
        super().__init__(0, 1, timeout)

    def _start_all_reduce(self, array, op):
        return completed(self, "all_reduce")

    def _start_broadcast(self, array, root):
        return completed(self, "broadcast")

    def _start_all_gather(self, array):
        return completed(self, "all_gather", array[None].copy())

    def _start_barrier(self):
        return completed(self, "barrier")
