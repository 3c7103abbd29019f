"""DistributedDataParallel: one model replica per process, gradients averaged over the replicas.

Parameters are grouped into buckets of about bucket_cap_mb, in reverse registration order (roughly
the order backward produces their gradients) and identically on every rank. Each parameter has a
post-accumulate-grad hook: when backward has written its final gradient, the hook copies it into
its bucket's flat buffer, and a bucket whose gradients are all in starts its asynchronous
all-reduce at once, while backward goes on computing the earlier layers' gradients. Buckets start
in index order on every rank, as MPI and NCCL require. When the last bucket has started, the hook
waits for all of them and points each .grad at its averaged slice of the bucket (PyTorch's
gradient_as_bucket_view=True: no copy back).
"""
import contextlib

from .. import backend, distributed
from ..autograd import is_grad_enabled, no_grad, recorded_order
from ..tensor import Tensor
from .module import Module


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.offsets, total = [], 0
        for p in params:
            self.offsets.append(total)
            total += p.array.size
        first = params[0].array
        self.flat = backend.create(backend.device_of(first), "zeros", (total,), dtype=first.dtype)
        self.ready = [False] * len(params)  # which gradients are in flat
        self.pending = len(params)
        self.work = None

    def put(self, i, values):
        """Write parameter i's gradient (or zeros, for values=0) into the flat buffer."""
        if not self.ready[i]:
            start = self.offsets[i]
            self.flat[start:start + self.params[i].array.size] = values
            self.ready[i] = True
            self.pending -= 1

    def reset(self):
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)
        self.work = None


class DistributedDataParallel(Module):
    """Wrap `module` (already on this rank's device) for data-parallel training: every rank runs
    forward and backward on its own batch; after backward, every rank holds the same averaged
    gradients, so the same optimizer step keeps the replicas identical. Construction broadcasts
    rank 0's parameters and buffers (and checks that every rank built the same model); with
    broadcast_buffers, each training forward (grad enabled, not in no_sync) first takes rank 0's
    buffers (BatchNorm statistics).

    A parameter that gets no gradient in a backward leaves its bucket unreduced: the next forward
    raises, naming it, unless find_unused_parameters=True (each forward then finds the parameters
    its output does not depend on, at the cost of a walk over the graph)."""

    def __init__(self, module, *, bucket_cap_mb=25.0, broadcast_buffers=True,
                 find_unused_parameters=False, process_group=None):
        super().__init__()
        self.module = module
        self.comm = process_group if process_group is not None else distributed.group()
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self._check_same_model()
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                self.comm.broadcast(t.array, 0)
                t._bump_version()
        self.parameters_in_order = [p for p in reversed(list(module.parameters()))
                                    if p.requires_grad]
        self.buckets = _into_buckets(self.parameters_in_order, int(bucket_cap_mb * 2**20))
        self._place = {}  # id(param) -> (bucket, index in it)
        for bucket in self.buckets:
            for i, p in enumerate(bucket.params):
                self._place[id(p)] = (bucket, i)
        self._next = 0  # the next bucket to start: buckets start in index order on every rank
        self._sync = True
        hook = _GradReady(self)
        self._hook_handles = [p.register_post_accumulate_grad_hook(hook)
                              for p in self.parameters_in_order]

    def forward(self, *args, **kwargs):
        self._check_last_backward_finished()
        # as in torch, only a forward that will be trained on syncs buffers: evaluation under
        # no_grad may run a different number of batches on each rank
        if (self.broadcast_buffers and self.comm.world_size > 1 and self._sync
                and is_grad_enabled()):
            with no_grad():
                for b in self.module.buffers():
                    self.comm.broadcast(b.array, 0)
                    b._bump_version()
        output = self.module(*args, **kwargs)
        if self.find_unused_parameters and self._sync and _requires_grad(output):
            self._mark_unused(output)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside this block only accumulates into .grad (no communication): the
        first backward after it averages everything accumulated. For gradient accumulation."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    # ---- the reduction -------------------------------------------------------------------------
    def _grad_ready(self, param):
        place = self._place.get(id(param))
        if place is None or not self._sync:  # None: a deep copy of one of our parameters
            return
        bucket, i = place
        bucket.put(i, param.grad.array.reshape(-1))
        self._start_ready_buckets()

    def _start_ready_buckets(self):
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            bucket = self.buckets[self._next]
            bucket.work = self.comm.all_reduce(bucket.flat, "avg", async_op=True)
            self._next += 1
        for bucket in self.buckets[:self._next]:
            bucket.work.is_completed()  # lets MPI progress the started ones while backward runs
        if self._next == len(self.buckets):
            self._finish()

    def _finish(self):
        for bucket in self.buckets:
            bucket.work.wait()
            bucket.reset()
            for p, start in zip(bucket.params, bucket.offsets):
                p.grad = Tensor(bucket.flat[start:start + p.array.size].reshape(p.array.shape))
        self._next = 0

    def _mark_unused(self, output):
        reached = set()
        for t in recorded_order(_tensors_in(output)):
            reached.update(id(x) for x in t._node.inputs or ())
        for p in self.parameters_in_order:
            if id(p) not in reached:  # no gradient will come: contribute zeros
                bucket, i = self._place[id(p)]
                bucket.put(i, 0)
        self._start_ready_buckets()

    def _check_last_backward_finished(self):
        if not any(any(b.ready) for b in self.buckets):
            return
        names = {id(p): name for name, p in self.module.named_parameters()}
        missing = [names.get(id(p), "?") for b in self.buckets
                   for p, ready in zip(b.params, b.ready) if not ready]
        for bucket in self.buckets:
            if bucket.work is not None:
                bucket.work.wait()  # started on every rank: finish it, so the ranks stay in step
            bucket.reset()
        self._next = 0
        raise RuntimeError(
            f"DistributedDataParallel: the last backward gave gradients to some parameters but "
            f"not to others in their buckets, so the gradients were not averaged (among them: "
            f"{', '.join(missing[:8])}). If the model does not use every parameter in every step, "
            f"pass find_unused_parameters=True; if a backward is still to come, run it before the "
            f"next forward.")

    def _check_same_model(self):
        mine = [(kind, name, tuple(t.shape), str(t.dtype))
                for kind, items in (("parameter", self.module.named_parameters()),
                                    ("buffer", self.module.named_buffers()))
                for name, t in items]
        everyone = self.comm.all_gather_object(mine)
        for rank, theirs in enumerate(everyone):
            if theirs == everyone[0]:
                continue
            for a, b in zip(everyone[0], theirs):
                if a != b:
                    raise RuntimeError(
                        f"DistributedDataParallel: ranks built different models: {a[0]} "
                        f"'{a[1]}' is {a[3]} {a[2]} on rank 0 but {b[0]} '{b[1]}' is {b[3]} {b[2]} "
                        f"on rank {rank}; every rank must construct the same model")
            raise RuntimeError(
                f"DistributedDataParallel: ranks built different models: rank 0 has "
                f"{len(everyone[0])} parameters and buffers, rank {rank} has {len(theirs)}; every "
                f"rank must construct the same model")


class _GradReady:
    """The parameters' post-accumulate hook. copy.deepcopy of a parameter (an EMA copy of the
    model, say) copies its hooks: this one copies to itself, so the DDP and its communicator are
    not copied along, and _grad_ready ignores the copy."""

    def __init__(self, ddp):
        self.ddp = ddp

    def __call__(self, param):
        self.ddp._grad_ready(param)

    def __deepcopy__(self, memo):
        return self


def _into_buckets(params, cap_bytes):
    """Consecutive runs of same-device, same-dtype parameters of about cap_bytes each; the first
    bucket is capped at 1 MiB so communication starts early, as in PyTorch."""
    buckets, run, size = [], [], 0
    for p in params:
        limit = min(cap_bytes, 2**20) if not buckets else cap_bytes
        if run and (size >= limit or p.array.dtype != run[0].array.dtype
                    or backend.device_of(p.array) != backend.device_of(run[0].array)):
            buckets.append(_Bucket(run))
            run, size = [], 0
        run.append(p)
        size += p.array.nbytes
    if run:
        buckets.append(_Bucket(run))
    return buckets


def _tensors_in(output):
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors_in(item)]
    return []


def _requires_grad(output):
    return any(t.requires_grad for t in _tensors_in(output))
