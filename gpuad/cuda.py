"""gpuad.cuda: is a CUDA GPU usable here, and how many; torch.cuda's device queries, seeds,
synchronisation, events and memory figures; a thin facade over backend.py."""
import collections

from . import backend
from .deprecation import missing_name


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


def _gpu(device=None):
    """The GPU torch.cuda's `device` argument names (None: the current one), raising as torch
    does where there is none."""
    if device is None:
        backend.require_cuda(backend.Device("cuda", 0))
        return backend.cuda.current_cuda_device()
    dev = backend.device(_cuda_device(device))
    if dev.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {dev}")
    backend.require_cuda(dev)
    return dev


def synchronize(device=None):
    """Wait until the GPU (default: the current one) has run everything queued on it, as
    torch.cuda.synchronize: what a timer around GPU work needs, since ops only queue kernels."""
    backend.cuda.synchronize(_gpu(device))


def current_device():
    """The index of the current GPU."""
    return _gpu().index


def set_device(device):
    """Make GPU `device` (an index, 'cuda:N' or a Device) the current one, where "cuda" tensors
    are created."""
    backend.cuda.use_cuda_device(_gpu(device).index)


DeviceProperties = collections.namedtuple(
    "DeviceProperties", "name total_memory major minor multi_processor_count")


def get_device_properties(device=None):
    """The GPU's name, total memory in bytes, compute capability and multiprocessor count, under
    torch's attribute names."""
    return DeviceProperties(*backend.cuda.device_properties(_gpu(device)))


def get_device_name(device=None):
    return get_device_properties(device).name


def get_device_capability(device=None):
    """(major, minor) compute capability, (9, 0) on an H100."""
    props = get_device_properties(device)
    return props.major, props.minor


def mem_get_info(device=None):
    """(free, total) bytes of the GPU as the driver counts them, as torch.cuda.mem_get_info."""
    return backend.cuda.mem_get_info(_gpu(device))


def manual_seed(seed):
    """Seed the current GPU's generator, as torch.cuda.manual_seed; without a usable GPU it does
    nothing, as torch's (gpuad.manual_seed seeds every device, GPUs included)."""
    if is_available():
        backend.random.seed_gpus(seed, [current_device()])


def manual_seed_all(seed):
    """Seed every GPU's generator; nothing to do without a usable GPU, as in torch."""
    if is_available():
        backend.random.seed_gpus(seed, range(device_count()))


class Event:
    """torch.cuda.Event: a marker queued on a stream (default: the current one). Time GPU work
    with two events made with enable_timing=True: `start.record(); ...; end.record();
    end.synchronize(); start.elapsed_time(end)` gives milliseconds. Needs a usable GPU."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        _gpu()
        self.enable_timing = bool(enable_timing)
        self._event = backend.cuda.new_event(self.enable_timing, blocking, interprocess)

    def record(self, stream=None):
        backend.cuda.record_event(self._event, stream)

    def wait(self, stream=None):
        """Make the stream (default: the current one) wait for this event's work."""
        backend.cuda.stream_waits_for(self._event, stream)

    def query(self):
        """Whether the work queued before the event has finished."""
        return bool(self._event.done)

    def synchronize(self):
        """Wait on the host until the work queued before the event has finished."""
        self._event.synchronize()

    def elapsed_time(self, end_event):
        """Milliseconds from this event to `end_event` (both recorded, both with timing)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Event.elapsed_time: both events must be made with "
                               "enable_timing=True")
        return backend.cuda.elapsed_ms(self._event, end_event._event)


def __getattr__(name):
    raise missing_name("gpuad.cuda", name)

