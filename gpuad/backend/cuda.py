"""CUDA extras beyond the seam: synchronisation, TF32, graph capture, the bfloat16 probe, memory
statistics, streams and NCCL. Each is a no-op or a clear error without a usable GPU."""
import numpy

from . import (
    CUDA_HELP,
    Device,
    bfloat16,
    cuda_available,
    cuda_device_count,
    cupy,
    device,
    float32,
    require_cuda,
)


def synchronize(dev):
    """Wait for the device's queued work (timing only; ops never synchronize)."""
    dev = device(dev)
    if dev.type == "cuda":
        cupy.cuda.Device(dev.index).synchronize()


# float32 matmul precision, torch's names: "highest" computes in float32; "high" and "medium" let
# cuBLAS round inputs to TF32 on the tensor cores (Ampere and later; ~8x the float32 rate, 10-bit
# mantissa). CuPy reads its compute type once from CUPY_TF32; setting it directly works at any time.
_MATMUL_PRECISION = ["highest"]


def set_float32_matmul_precision(precision):
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', "
                         f"got {precision!r}")
    if cuda_available():
        from cupy._core import _routines_linalg as linalg  # CuPy's own switch, no public API yet
        linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_DEFAULT if precision == "highest"
                                else linalg.COMPUTE_TYPE_TF32)
    _MATMUL_PRECISION[0] = precision


def get_float32_matmul_precision():
    return _MATMUL_PRECISION[0]


_CAPTURING = [False]


def capturing():
    """True while capture_graph records (libraries that refuse stream capture need another path)."""
    return _CAPTURING[0]


def capture_graph(fn, dev):
    """Record the kernels that fn() launches on `dev` as a CUDA graph, without running them.
    Returns (graph, the pool holding the graph's arrays, fn's outputs). The graph's temporaries
    come from a pool of their own, so eager work between replays never lands in memory a replay
    overwrites."""
    dev = device(dev)
    if dev.type != "cuda":
        raise ValueError(f"cuda.graph: a CUDA graph records GPU kernels, but the step runs on "
                         f"{dev}; call the step directly there")
    with cupy.cuda.Device(dev.index):
        cupy.cuda.get_current_stream().synchronize()  # eager work queued so far runs first
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)  # the legacy default stream cannot capture
        with stream, cupy.cuda.using_allocator(pool.malloc):
            stream.begin_capture()
            _CAPTURING[0] = True
            try:
                outputs = fn()
            finally:
                _CAPTURING[0] = False
                graph = stream.end_capture()
    return graph, pool, outputs


_BFLOAT16_PROBE = {}


def bfloat16_unsupported(device_type):
    """Why arrays on `device_type` cannot compute in bfloat16, or None when they can."""
    if device_type != "cuda":
        return "numpy has no bfloat16 dtype"
    if isinstance(bfloat16, str):
        return "bfloat16 arrays need the ml_dtypes package (pip install ml_dtypes)"
    if not cuda_available():
        return "no usable CUDA GPU"
    if "cuda" not in _BFLOAT16_PROBE:
        try:
            a = cupy.ones((2, 2), dtype=bfloat16)
            (a @ a).astype(float32)
            _BFLOAT16_PROBE["cuda"] = None
        except Exception as error:  # an older CuPy without bfloat16 kernels
            _BFLOAT16_PROBE["cuda"] = (f"CuPy {cupy.__version__} cannot compute in bfloat16 "
                                       f"({type(error).__name__}: {error})")
    return _BFLOAT16_PROBE["cuda"]


# CuPy's memory pools, in torch.cuda's terms.
def memory_stats(dev):
    """CuPy's default memory pool on `dev` (None: the current GPU) under torch.cuda.memory_stats'
    key names where they
    exist, plus CuPy's and the driver's own figures; {} without a usable GPU (torch returns {}
    before CUDA is initialised)."""
    if not cuda_available():
        return {}
    dev = Device("cuda", cupy.cuda.runtime.getDevice()) if dev is None else device(dev)
    if dev.type != "cuda":
        raise ValueError(f"memory_stats: expected a CUDA device, got {dev}")
    require_cuda(dev)
    pool, pinned = cupy.get_default_memory_pool(), cupy.get_default_pinned_memory_pool()
    with cupy.cuda.Device(dev.index):
        used, total = pool.used_bytes(), pool.total_bytes()
        stats = {"allocated_bytes.all.current": used, "reserved_bytes.all.current": total,
                 "inactive_split_bytes.all.current": total - used,
                 "cupy.used_bytes": used, "cupy.total_bytes": total,
                 "cupy.free_bytes": pool.free_bytes(), "cupy.n_free_blocks": pool.n_free_blocks(),
                 "cupy.limit_bytes": pool.get_limit(),
                 "cupy.pinned.n_free_blocks": pinned.n_free_blocks()}
        free, capacity = cupy.cuda.runtime.memGetInfo()
    stats["device.free_bytes"], stats["device.total_bytes"] = free, capacity
    return stats


def empty_cache():
    """Give the free blocks of CuPy's default pool (every GPU) and of its pinned host pool back
    to the driver; arrays in use stay. Nothing to do without a usable GPU."""
    if not cuda_available():
        return
    pool = cupy.get_default_memory_pool()
    for index in range(cuda_device_count()):
        with cupy.cuda.Device(index):
            pool.free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()


# What the NCCL communicator needs from CuPy.
def nccl_available():
    if not cuda_available():
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", False))


def require_nccl():
    """Raise, saying why and what to do, unless CuPy has NCCL and a GPU to run it on."""
    if not nccl_available():
        raise RuntimeError(f"init_process_group(backend='nccl'): NCCL is not available (CuPy "
                           f"{'is not installed' if cupy is None else 'sees no GPU or no NCCL'}); "
                           f"use backend='mpi', or {CUDA_HELP}")


def nccl_communicator(world_size, rank, host, port, use_mpi):
    """cupyx.distributed's NCCL communicator for this process's current GPU; the NCCL unique id
    travels over MPI (use_mpi) or over a TCP store that rank 0 serves at host:port."""
    require_nccl()
    import cupyx.distributed
    return cupyx.distributed.init_process_group(world_size, rank, host=host, port=port,
                                                use_mpi=use_mpi)


def use_cuda_device(index):
    """Make GPU `index` this process's current one (one GPU per rank)."""
    require_cuda(Device("cuda", index))
    cupy.cuda.Device(index).use()


def current_cuda_device():
    return Device("cuda", cupy.cuda.Device().id)


def side_stream():
    """A CUDA stream of its own, for collectives that overlap the compute stream."""
    return cupy.cuda.Stream(non_blocking=True)


def stream_after_current(stream):
    """Make `stream` wait for what the current stream has queued so far."""
    event = cupy.cuda.Event(disable_timing=True)
    event.record(cupy.cuda.get_current_stream())
    stream.wait_event(event)


def event_on(stream):
    """An event recorded now on `stream`: .done polls it, stream_waits_for(event) orders on it."""
    event = cupy.cuda.Event(disable_timing=True)
    event.record(stream)
    return event


# torch.cuda's device queries and events, in CuPy's terms (gpuad/cuda.py checks the device).
def device_properties(dev):
    """(name, total memory in bytes, compute capability major, minor, multiprocessor count) of
    GPU `dev`, from the CUDA runtime."""
    props = cupy.cuda.runtime.getDeviceProperties(dev.index)
    name = props["name"]
    return (name.decode() if isinstance(name, bytes) else name, props["totalGlobalMem"],
            props["major"], props["minor"], props["multiProcessorCount"])


def mem_get_info(dev):
    """(free, total) bytes of GPU `dev`, as the driver counts them."""
    with cupy.cuda.Device(dev.index):
        return tuple(cupy.cuda.runtime.memGetInfo())


def new_event(timing, blocking, interprocess):
    return cupy.cuda.Event(block=blocking, disable_timing=not timing, interprocess=interprocess)


def record_event(event, stream):
    event.record(cupy.cuda.get_current_stream() if stream is None else stream)


def stream_waits_for(event, stream=None):
    """Make `stream` (default: the current one) wait for `event`'s work."""
    (cupy.cuda.get_current_stream() if stream is None else stream).wait_event(event)


def elapsed_ms(start, end):
    return cupy.cuda.get_elapsed_time(start, end)

