"""Tensor creation: gpuad.tensor, zeros, ones, arange, randn, ... (PyTorch's names and defaults).

Floats default to float32, Python ints to int64; every function takes device= and dtype=, and random
ones draw from the per-device generators seeded by gpuad.manual_seed (see backend.py).
"""
import numpy

from . import backend
from .tensor import Tensor


def _float_dtype(dtype):
    return backend.DEFAULT_FLOAT if dtype is None else numpy.dtype(dtype)


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _make(array, requires_grad):
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor copied from data (lists, scalars, numpy/CuPy arrays, Tensors), like torch.tensor:
    Python floats become float32, Python ints int64; arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.array
    if dtype is None and not backend.is_array(data) and not isinstance(data, numpy.generic):
        probe = numpy.asarray(data)
        if probe.dtype.kind == "f":
            dtype = backend.DEFAULT_FLOAT
        elif probe.dtype.kind in "iu":
            dtype = backend.int64
        data = probe
    dev = backend.device(device) if device is not None else (
        backend.device_of(data) if backend.is_array(data) else backend.CPU)
    array = backend.asarray(data, None if dtype is None else numpy.dtype(dtype), dev)
    if array is data:
        array = array.copy()  # torch.tensor always copies
    return _make(array, requires_grad)


def from_numpy(array):
    """A CPU tensor sharing memory with a numpy array: writes through either show in the other."""
    if type(array) is not numpy.ndarray:
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"from_numpy: can't convert an array of dtype {array.dtype}; the supported "
                        f"kinds are bool, integer, unsigned, floating and complex")
    return Tensor(array)


def from_dlpack(obj):
    """A tensor sharing memory with any DLPack exporter (a torch, JAX, CuPy or numpy array, or a
    gpuad Tensor), on the exporter's device: host memory becomes a cpu tensor, GPU memory a cuda
    one, like torch.from_dlpack. Nothing is copied."""
    return Tensor(backend.dlpack.from_dlpack(obj))


def _full(size, value, dtype, device, requires_grad):
    dev = backend.device(device)
    if dtype is None:
        dtype = (backend.bool_ if isinstance(value, bool) else
                 backend.int64 if isinstance(value, int) else backend.DEFAULT_FLOAT)
    return _make(backend.create(dev, "full", _size(size), value, dtype=numpy.dtype(dtype)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _full(size, 0, _float_dtype(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _full(size, 1, _float_dtype(dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make(backend.create(device, "empty", _size(size), dtype=_float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    return _full((size,) if isinstance(size, int) else (tuple(size),), fill_value, dtype, device,
                 requires_grad)


def _like(x, dtype, device):
    return (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, 0, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, 1, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(x, dtype, device)
    return _full(x.shape, fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """[start, end) by step; int64 for integer arguments, float32 otherwise, like torch.arange."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.DEFAULT_FLOAT
    return _make(backend.create(device, "arange", start, end, step, dtype=numpy.dtype(dtype)),
                 requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(backend.create(device, "linspace", start, end, steps, dtype=_float_dtype(dtype)),
                 requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(backend.create(device, "eye", n, m, dtype=_float_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1) from gpuad's seeded generator."""
    return _make(backend.random.draw("uniform", _size(size), _float_dtype(dtype), device or "cpu"),
                 requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal from gpuad's seeded generator."""
    return _make(backend.random.draw("normal", _size(size), _float_dtype(dtype), device or "cpu"),
                 requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    """Integers in [low, high) (int64 by default), like torch.randint."""
    if high is None:
        low, high = 0, low
    dtype = backend.int64 if dtype is None else numpy.dtype(dtype)
    return _make(backend.random.draw("integers", tuple(size), dtype, device or "cpu", low, high), False)


def manual_seed(seed):
    """Seed the generators of every device, like torch.manual_seed."""
    backend.random.manual_seed(seed)


def get_rng_state():
    """The random generators' state, to save in a checkpoint (gpuad.set_rng_state restores it)."""
    return backend.random.get_rng_state()


def set_rng_state(state):
    backend.random.set_rng_state(state)
