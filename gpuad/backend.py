"""Devices and array modules: the bottom of gpuad's data flow.

The only module that imports cupy. Everything that differs between numpy and CuPy (device lookup,
transfers, scatter-add, random numbers) is a named function here, so ops are written once against
`xp_of(array)` and never branch on the backend.
"""
import contextlib
import threading

import numpy

try:  # importing gpuad must never fail because CuPy or a GPU is missing
    import cupy
except Exception:  # ImportError, or a CuPy install whose CUDA libraries cannot load
    cupy = None

float16, float32, float64 = numpy.dtype("float16"), numpy.dtype("float32"), numpy.dtype("float64")
int8, int32, int64, uint8 = numpy.dtype("int8"), numpy.dtype("int32"), numpy.dtype("int64"), numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
DEFAULT_FLOAT = float32

_CUDA_HELP = ('install the CUDA extra for your toolkit: pip install "gpuad[cuda12]" '
              '(CUDA 12) or "gpuad[cuda13]" (CUDA 13), on a machine with an NVIDIA GPU')


class Device:
    """A device: `cpu`, `cuda:N`, or `strict` (a numpy test backend that behaves like CuPy)."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("Device is immutable")

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    @property
    def xp(self):
        """The array module that serves this device."""
        if self.type == "cuda":
            _require_cuda(self)
            return cupy
        if self.type == "strict":
            return _strict().xp
        return numpy


CPU = Device("cpu")


def device(spec="cpu"):
    """Parse 'cpu', 'cuda', 'cuda:1' or 'strict' (or pass a Device through), like torch.device."""
    if isinstance(spec, Device):
        return spec
    if spec is None:
        return CPU
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0' or a Device, got {spec!r}")
    kind, _, index = spec.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return CPU
    if kind == "strict" and not index:
        return Device("strict")
    if kind == "cuda":
        if not index:
            return Device("cuda", 0)
        if index.isdigit():
            return Device("cuda", int(index))
    raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda', 'cuda:N' or 'strict'")


def cuda_available():
    if cupy is None:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:  # older CuPy without is_available, or a broken driver
        return False


def cuda_device_count():
    if not cuda_available():
        return 0
    return cupy.cuda.runtime.getDeviceCount()


def _require_cuda(dev):
    if cupy is None:
        raise RuntimeError(f"{dev} was requested but CuPy is not installed: {_CUDA_HELP}")
    if not cuda_available():
        raise RuntimeError(f"{dev} was requested but CuPy sees no usable CUDA GPU; "
                           f"check `nvidia-smi`, or {_CUDA_HELP}")
    if dev.index >= cuda_device_count():
        raise RuntimeError(f"{dev} was requested but only {cuda_device_count()} CUDA device(s) exist")


def _strict():
    from .testing import strict
    return strict


# Hot path: one dict lookup from array type to module / device. CuPy and the strict backend
# register their array types below or when first used.
_XP = {numpy.ndarray: numpy}
_DEVICE_OF = {numpy.ndarray: lambda a: CPU}
if cupy is not None:
    _XP[cupy.ndarray] = cupy
    _DEVICE_OF[cupy.ndarray] = lambda a: Device("cuda", a.device.id)


ARRAY_TYPES = _XP.keys()  # the array types gpuad accepts as Tensor data (a live view)


def register_array_type(array_type, module, device_of):
    """Let a further array type (the strict test backend) be served like numpy and CuPy."""
    _XP[array_type] = module
    _DEVICE_OF[array_type] = device_of


def xp_of(array):
    """The array module (numpy, cupy, or the strict module) that owns `array`."""
    return _XP.get(type(array), numpy)


def device_of(array):
    return _DEVICE_OF[type(array)](array)


def is_array(value):
    return type(value) in ARRAY_TYPES


def asnumpy(array):
    """A numpy copy (or view, on the CPU) of any backend's array: the one host transfer."""
    if type(array) is numpy.ndarray:
        return array
    if isinstance(array, (numpy.generic, int, float, bool)):
        return numpy.asarray(array)
    if cupy is not None and type(array) is cupy.ndarray:
        return cupy.asnumpy(array)
    return array.unwrap()  # strict arrays


def to_device(array, dev):
    """Copy `array` to device `dev` (no copy when it is already there)."""
    dev = device(dev)
    if device_of(array) == dev:
        return array
    host = asnumpy(array)
    if dev.type == "cuda":
        _require_cuda(dev)
        with cupy.cuda.Device(dev.index):
            return cupy.asarray(host)
    if dev.type == "strict":
        return _strict().wrap(numpy.array(host))
    return numpy.array(host) if type(array) is not numpy.ndarray else host


def asarray(data, dtype=None, dev=CPU):
    """Make an array of `data` (nested lists, scalars, arrays of any backend) on device `dev`."""
    dev = device(dev)
    if is_array(data):
        data = to_device(data, dev)
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    return to_device(numpy.asarray(data, dtype=dtype), dev)


def create(dev, name, *args, **kwargs):
    """xp.<name>(*args) allocated on device `dev` (on the right GPU when there are several)."""
    dev = device(dev)
    if dev.type == "cuda":
        _require_cuda(dev)
        with cupy.cuda.Device(dev.index):
            return getattr(cupy, name)(*args, **kwargs)
    return getattr(dev.xp, name)(*args, **kwargs)


# Checking that index arrays are in range needs their values on the host: free for numpy, a device
# synchronisation for CuPy (which would otherwise wrap bad indices silently, where PyTorch raises a
# device-side assert). Off on CUDA by default so training steps never wait; turn it on to debug.
CHECK_DEVICE_INDICES = False


def indices_outside(index, low, high):
    """The first entry of the index array outside [low, high), or None; on a device (CUDA, and
    the strict backend that stands in for it) None without looking (no sync) unless
    CHECK_DEVICE_INDICES is set."""
    if type(index) is not numpy.ndarray and not CHECK_DEVICE_INDICES:
        return None
    bad = (index < low) | (index >= high)
    if not (index.size and bool(bad.any())):
        return None
    return int(index[bad].ravel()[0])


def device_scope(array):
    """A context that makes `array`'s GPU the current one (so new arrays land there too)."""
    if cupy is not None and type(array) is cupy.ndarray:
        return array.device
    return _NO_SCOPE


_NO_SCOPE = contextlib.nullcontext()


def scatter_add(target, index, values):
    """target[index] += values in place, accumulating repeated indices (ufunc.at; CuPy >= 13 has
    it too, and deprecates the older cupyx.scatter_add)."""
    xp_of(target).add.at(target, index, values)
    return target


_LAST_SEED = [None]


class _Generators(threading.local):
    """Per-thread generators (threads never interleave each other's draws); a new thread starts
    from the last manual_seed, so its results repeat too."""

    def __init__(self):
        self.seed = _LAST_SEED[0]
        self.by_device = {}


_generators = _Generators()


def manual_seed(seed):
    """Seed every backend's generator, like torch.manual_seed."""
    _LAST_SEED[0] = _generators.seed = int(seed)
    _generators.by_device = {}


def _generator(dev):
    gen = _generators.by_device.get(dev)
    if gen is None:
        seed = _generators.seed
        if dev.type == "cuda":
            with cupy.cuda.Device(dev.index):
                gen = cupy.random.RandomState(seed)
        else:
            gen = numpy.random.Generator(numpy.random.PCG64(seed))
        _generators.by_device[dev] = gen
    return gen


def get_rng_state():
    """The host generators' state (JSON-friendly), for checkpoints; CUDA generators are reseeded
    from the saved seed instead, since CuPy exposes no state."""
    return {"seed": _generators.seed,
            "host": {str(dev): gen.bit_generator.state for dev, gen in _generators.by_device.items()
                     if dev.type != "cuda"}}


def set_rng_state(state):
    """Restore what get_rng_state returned."""
    _generators.seed, _generators.by_device = state["seed"], {}
    for name, host_state in state["host"].items():
        _generator(device(name)).bit_generator.state = host_state


def random(kind, shape, dtype, dev, low=0, high=None):
    """Draw `kind` in {'uniform', 'normal', 'integers'} on device `dev` from its seeded generator."""
    dev = device(dev)
    gen = _generator(dev)
    if dev.type == "cuda":
        with cupy.cuda.Device(dev.index):
            if kind == "uniform":
                return gen.random_sample(shape, dtype=dtype)
            if kind == "normal":
                return gen.standard_normal(shape, dtype=dtype)
            return gen.randint(low, high, size=shape).astype(dtype, copy=False)
    if kind == "uniform":
        out = gen.random(shape, dtype=dtype)
    elif kind == "normal":
        out = gen.standard_normal(shape, dtype=dtype)
    else:
        out = gen.integers(low, high, size=shape).astype(dtype, copy=False)
    return to_device(numpy.asarray(out), dev)


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969):
# numpy has no erf, and scipy is not a dependency. Accurate to float64 rounding.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)


def _rational(t, num, den, n):
    xnum, xden = num[-1] * t, t
    for i in range(n):
        xnum, xden = (xnum + num[i]) * t, (xden + den[i]) * t
    return (xnum + num[n]) / (xden + den[n])


def erf(x):
    """The error function, elementwise (cupyx.scipy.special.erf on CUDA, Cody's on the host)."""
    if cupy is not None and type(x) is cupy.ndarray:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    xp = xp_of(x)
    y = xp.abs(x.astype(float64))
    small = x * _rational(y * y, _ERF_A, _ERF_B, 3)
    y_mid, y_big = xp.clip(y, 0.46875, 4.0), xp.maximum(y, 4.0)
    erfc_mid = _rational(y_mid, _ERF_C, _ERF_D, 7)
    isq = 1.0 / (y_big * y_big)
    erfc_big = (0.56418958354775628695 - isq * _rational(isq, _ERF_P, _ERF_Q, 4)) / y_big
    erfc = xp.where(y <= 4.0, erfc_mid, erfc_big) * xp.exp(-y * y)
    out = xp.where(y <= 0.46875, small, xp.sign(x) * (1.0 - erfc))
    return out.astype(x.dtype, copy=False)


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


# ---- mixed precision (gpuad.amp) -----------------------------------------------------------------
try:  # numpy has no bfloat16; ml_dtypes adds one, which CuPy can compute with
    import ml_dtypes
    bfloat16 = numpy.dtype(ml_dtypes.bfloat16)
except ImportError:
    bfloat16 = "bfloat16"  # a name only: without ml_dtypes no array here can hold bfloat16


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


# ---- random streams that a recomputation can replay (activation checkpointing) -------------------
_FORK_COUNT = [0]


def fork_rng(dev):
    """(gen, replay) for `dev`: replay() makes a new generator that draws again, from here, what
    this thread's generator for `dev` draws next. Host generators are copied, and gen is None: the
    draws stay on the current generator, so a checkpointed run draws what a plain one does.
    CuPy's generators expose no state, so for CUDA gen is a new generator seeded from a host
    counter (no device sync), which the caller draws from inside using_generator(dev, gen)."""
    dev = device(dev)
    if dev.type == "cuda":
        _FORK_COUNT[0] += 1
        seed = int(numpy.random.SeedSequence([_generators.seed or 0, _FORK_COUNT[0]])
                   .generate_state(1)[0])

        def replay_cuda():
            with cupy.cuda.Device(dev.index):
                return cupy.random.RandomState(seed)
        return replay_cuda(), replay_cuda
    gen = _generator(dev)
    state = gen.bit_generator.state  # a new dict on every read

    def replay():
        copy = numpy.random.Generator(type(gen.bit_generator)())
        copy.bit_generator.state = state
        return copy
    return None, replay


@contextlib.contextmanager
def using_generator(dev, gen):
    """Inside the block, random draws on `dev` in this thread come from `gen`."""
    dev = device(dev)
    by_device = _generators.by_device
    previous = by_device.get(dev)
    by_device[dev] = gen
    try:
        yield
    finally:
        if _generators.by_device is by_device:  # else manual_seed inside replaced them all
            if previous is None:
                by_device.pop(dev, None)
            else:
                by_device[dev] = previous


# ---- CUDA memory: CuPy's pools, in torch.cuda's terms ---------------------------------------------
def cuda_memory_stats(dev):
    """CuPy's default memory pool on `dev` (None: the current GPU) under torch.cuda.memory_stats' key names where they
    exist, plus CuPy's and the driver's own figures; {} without a usable GPU (torch returns {}
    before CUDA is initialised)."""
    if not cuda_available():
        return {}
    dev = Device("cuda", cupy.cuda.runtime.getDevice()) if dev is None else device(dev)
    if dev.type != "cuda":
        raise ValueError(f"memory_stats: expected a CUDA device, got {dev}")
    _require_cuda(dev)
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


def cuda_empty_cache():
    """Give the free blocks of CuPy's default pool (every GPU) and of its pinned host pool back
    to the driver; arrays in use stay. Nothing to do without a usable GPU."""
    if not cuda_available():
        return
    pool = cupy.get_default_memory_pool()
    for index in range(cuda_device_count()):
        with cupy.cuda.Device(index):
            pool.free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()


# ---- DLPack: zero-copy exchange with torch, JAX, CuPy, numpy, ... --------------------------------
_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST, _DLPACK_CUDA_MANAGED = 1, 2, 3, 13


def _dlpack_exporter(array, what):
    if type(array) is numpy.ndarray or (cupy is not None and type(array) is cupy.ndarray):
        return array
    raise BufferError(f"{what}: a {device_of(array)} tensor cannot be exported by DLPack; only "
                      f"cpu (numpy) and cuda (CuPy) tensors can")


def to_dlpack(array, **kwargs):
    """array.__dlpack__(**kwargs) for a numpy or CuPy array (stream, max_version, dl_device, copy:
    the Python array API's keywords, passed on when given)."""
    return _dlpack_exporter(array, "__dlpack__").__dlpack__(**kwargs)


def dlpack_device(array):
    """(DLPack device type, index): (1, 0) for the CPU, (2, N) for cuda:N."""
    return _dlpack_exporter(array, "__dlpack_device__").__dlpack_device__()


def from_dlpack(obj):
    """The array behind any DLPack exporter, sharing its memory: numpy's for host memory, CuPy's
    for CUDA memory."""
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ "
                        f"(a torch, JAX, CuPy or numpy array), got {type(obj).__name__}")
    kind, index = obj.__dlpack_device__()
    if kind in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
        return numpy.from_dlpack(obj)
    if kind in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
        _require_cuda(Device("cuda", int(index)))
        with cupy.cuda.Device(int(index)):
            return cupy.from_dlpack(obj)
    raise TypeError(f"from_dlpack: DLPack device type {int(kind)} is not supported; gpuad holds "
                    f"host (numpy) and CUDA (CuPy) arrays")


# ---- distributed: what the NCCL communicator needs from CuPy --------------------------------------
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
                           f"use backend='mpi', or {_CUDA_HELP}")


def nccl_communicator(world_size, rank, host, port, use_mpi):
    """cupyx.distributed's NCCL communicator for this process's current GPU; the NCCL unique id
    travels over MPI (use_mpi) or over a TCP store that rank 0 serves at host:port."""
    require_nccl()
    import cupyx.distributed
    return cupyx.distributed.init_process_group(world_size, rank, host=host, port=port,
                                                use_mpi=use_mpi)


def use_cuda_device(index):
    """Make GPU `index` this process's current one (one GPU per rank)."""
    _require_cuda(Device("cuda", index))
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
    """An event recorded now on `stream`: .done polls it, current_waits_for(event) orders on it."""
    event = cupy.cuda.Event(disable_timing=True)
    event.record(stream)
    return event


def current_waits_for(event):
    cupy.cuda.get_current_stream().wait_event(event)
