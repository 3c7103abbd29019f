"""gpuad.cuda: is a CUDA GPU usable here, and how many; a thin facade over backend.py."""
from . import backend


def is_available():
    """True when CuPy is installed and sees a usable CUDA GPU."""
    return backend.cuda_available()


def device_count():
    return backend.cuda_device_count()


def graph(step, device="cuda"):
    """Record `step` once as a CUDA graph and return `replay()`, which relaunches all of its kernels
    with one call and returns the outputs the recorded call returned (the same Tensors, refilled).

    The stretch of work this removes is Python and kernel-launch overhead, which dominates small
    models on a GPU. Like torch.cuda.graphs, it needs a step on static tensors:
    - run the step eagerly a few times first (kernels compile, optimizer state appears);
    - the recorded call computes nothing; each replay() is one real step;
    - feed new data by copying into the same input tensors (`static_x.copy_(batch)`);
    - what the step decides on the host is frozen at recording: Python numbers such as a learning
      rate read from a scheduler, or Adam's step count (its bias correction), do not advance, so
      use it with optimizers whose update does not depend on the step number (SGD, momentum);
    - no host synchronisation inside the step (no .item(), no printing).
    """
    recorded, pool, outputs = backend.cuda.capture_graph(step, device)

    def replay():
        recorded.launch()  # on the current stream, after whatever is queued there
        return outputs
    replay.graph, replay.pool = recorded, pool  # the pool must outlive the graph's arrays
    return replay


def _cuda_device(device):
    """None (the current GPU), an index, 'cuda:N' or a Device, as torch.cuda's functions take
    them."""
    return f"cuda:{device}" if isinstance(device, int) else device


def memory_stats(device=None):
    """CuPy's memory pool on a GPU as a dict: torch.cuda.memory_stats' keys where they exist
    ("allocated_bytes.all.current": bytes in live arrays, "reserved_bytes.all.current": bytes the
    pool holds from the driver), plus "cupy.*" (the pool's own counters: used, total, free bytes,
    free blocks, limit, the pinned pool's free blocks) and "device.*" (the driver's free and total).

    Without a usable GPU it returns {}, and memory_allocated/memory_reserved return 0 and
    empty_cache does nothing: torch's behaviour before CUDA is initialised, so logging code runs
    unchanged on a CPU-only machine."""
    if not backend.cuda_available():
        return {}
    return backend.cuda.memory_stats(_cuda_device(device))


def memory_allocated(device=None):
    """Bytes held by live CuPy arrays on the GPU (the default pool's used bytes); 0 without one."""
    return memory_stats(device).get("allocated_bytes.all.current", 0)


def memory_reserved(device=None):
    """Bytes CuPy's default pool holds from the driver, used or cached; 0 without a GPU."""
    return memory_stats(device).get("reserved_bytes.all.current", 0)


def empty_cache():
    """Release the cached free blocks of CuPy's default and pinned pools (every GPU) to the driver,
    like torch.cuda.empty_cache; memory in live arrays stays."""
    backend.cuda.empty_cache()
