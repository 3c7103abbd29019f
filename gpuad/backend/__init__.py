"""Devices and array modules: the bottom of gpuad's data flow (the backend seam).

The only package that imports cupy. Everything that differs between numpy and CuPy is a named
function here or in one of this package's modules (random: generators; cuda: TF32, graph capture,
memory, streams, NCCL; dlpack; linalg: singular-matrix errors; special: special functions;
kernels: the CUDA sources), so ops are written once against `xp_of(array)` and never branch on the
backend. Device kinds beyond cpu and cuda (the strict test backend) register themselves here; the
backend imports nothing of gpuad.
host_memory tunes the CPU allocator for training (see it for why).
"""
import contextlib
import functools
import math
import sys

import numpy

try:  # importing gpuad must never fail because CuPy or a GPU is missing
    import cupy
except Exception:  # ImportError, or a CuPy install whose CUDA libraries cannot load
    cupy = None

float16, float32, float64 = (numpy.dtype(n) for n in ("float16", "float32", "float64"))
int8, int16, int32, int64 = (numpy.dtype(n) for n in ("int8", "int16", "int32", "int64"))
uint8, uint16, uint32, uint64 = (numpy.dtype(n) for n in ("uint8", "uint16", "uint32", "uint64"))
complex64, complex128 = numpy.dtype("complex64"), numpy.dtype("complex128")
bool_ = numpy.dtype("bool")
try:  # numpy has no bfloat16; ml_dtypes adds one, which CuPy can compute with
    import ml_dtypes
    bfloat16 = numpy.dtype(ml_dtypes.bfloat16)
except ImportError:
    bfloat16 = "bfloat16"  # a name only: without ml_dtypes no array here can hold bfloat16
DEFAULT_FLOAT = float32

from .host_memory import keep_freed_memory, release_freed_memory  # noqa: E402,F401

MALLOC_TUNED = keep_freed_memory()  # freed arrays stay in the heap for the next step (why: there)

CUDA_HELP = ('install the CUDA extra for your toolkit: pip install "gpuad[cuda12]" '
              '(CUDA 12) or "gpuad[cuda13]" (CUDA 13), on a machine with an NVIDIA GPU')


class Device:
    """A device: `cpu`, `cuda:N`, or a registered kind such as `strict` (gpuad.testing's numpy
    backend that behaves like CuPy)."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("Device is immutable")

    def __eq__(self, other):
        if other is self:  # devices of arrays are shared objects (CPU, the cached cuda:N)
            return True
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    @property
    def xp(self):
        """The array module that serves this device."""
        if self.type == "cuda":
            require_cuda(self)
            return cupy
        if self.type == "cpu":
            return numpy
        return _KINDS[self.type].xp


CPU = Device("cpu")


def device(spec="cpu"):
    """Parse 'cpu', 'cuda', 'cuda:1' or 'strict' (or pass a Device through), like torch.device."""
    if isinstance(spec, Device):
        return spec
    if spec is None:
        return CPU
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0' or a Device, got "
                        f"{spec!r}")
    kind, _, index = spec.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return CPU
    if kind in _KINDS and not index:
        return Device(kind)
    if kind == "cuda":
        if not index:
            return Device("cuda", 0)
        if index.isdigit():
            return Device("cuda", int(index))
    known = "".join(f", '{k}'" for k in _KINDS)
    raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda', 'cuda:N'{known}")


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


def require_cuda(dev):
    if cupy is None:
        raise RuntimeError(f"{dev} was requested but CuPy is not installed: {CUDA_HELP}")
    if not cuda_available():
        raise RuntimeError(f"{dev} was requested but CuPy sees no usable CUDA GPU; "
                           f"check `nvidia-smi`, or {CUDA_HELP}")
    if dev.index >= cuda_device_count():
        raise RuntimeError(f"{dev} was requested but only {cuda_device_count()} CUDA device(s) "
                           f"exist")


# Hot path: one dict lookup from array type to module / device. CuPy registers its array type
# below, further device kinds through register_device.
_XP = {numpy.ndarray: numpy}
_DEVICE_OF = {numpy.ndarray: lambda a: CPU}
_TO_HOST = {}  # array type -> its asnumpy, for types other than numpy's and CuPy's
_CUDA_DEVICES = {}  # index -> Device: built once, since device_of runs on every op's inputs


def _cuda_device_of(array):
    index = array.data.device_id  # an int on the memory pointer; array.device builds an object
    dev = _CUDA_DEVICES.get(index)
    if dev is None:
        dev = _CUDA_DEVICES[index] = Device("cuda", index)
    return dev


if cupy is not None:
    _XP[cupy.ndarray] = cupy
    _DEVICE_OF[cupy.ndarray] = _cuda_device_of


ARRAY_TYPES = _XP.keys()  # the array types gpuad accepts as Tensor data (a live view)


class RefusedByBackend(Exception):
    """Base of the errors a registered device kind raises itself (the strict test backend's
    refusals): ops pass them on unchanged instead of prefixing the op and shapes."""


class _Kind:
    """A registered device kind: its array module and how a host array gets there."""
    __slots__ = ("xp", "from_host", "to_host")

    def __init__(self, xp, from_host, to_host):
        self.xp, self.from_host, self.to_host = xp, from_host, to_host


_KINDS = {}  # device type -> _Kind, for kinds other than cpu and cuda


def register_device(kind, array_type, module, from_host, to_host):
    """Serve a further device kind (the strict test backend registers 'strict') like numpy and
    CuPy: arrays of `array_type` belong to Device(kind), `module` is their xp, and
    `from_host(numpy_array)` and `to_host(array)` move data there and back."""
    dev = Device(kind)
    _KINDS[kind] = _Kind(module, from_host, to_host)
    register_array_type(array_type, module, lambda a: dev, to_host)
    return dev


def register_array_type(array_type, module, device_of_array, to_host):
    """Accept arrays of `array_type` as Tensor data: `module` is their xp, `device_of_array(a)`
    their Device and `to_host(a)` their asnumpy (gpuad.compile's tracing arrays, which stand in
    for arrays of another type while it records a step, register themselves so)."""
    _XP[array_type] = module
    _DEVICE_OF[array_type] = device_of_array
    _TO_HOST[array_type] = to_host


def xp_of(array):
    """The array module (numpy, cupy, or the strict module) that owns `array`."""
    return _XP.get(type(array), numpy)


def device_of(array):
    return _DEVICE_OF[type(array)](array)


def same_device(a, b):
    """Whether two arrays live on the same device: never for arrays of two types, always for two
    numpy arrays; CuPy arrays compare GPU indices (no Device objects on this per-op path)."""
    t = type(a)
    if t is not type(b):
        return False
    if cupy is not None and t is cupy.ndarray:
        return a.data.device_id == b.data.device_id
    return t is numpy.ndarray or device_of(a) == device_of(b)


def is_array(value):
    return type(value) in ARRAY_TYPES


# gpuad.compile's tracer while it records a step (None otherwise). The functions below that make
# new arrays from host data report their calls to it, so a replay makes those arrays again (it
# sees every other array operation through the arrays it hands out).
TRACER = [None]


def recorded(fn):
    """Let gpuad.compile's tracer record calls of `fn`, a function making arrays from host data."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        tracer = TRACER[0]
        if tracer is None:
            return fn(*args, **kwargs)
        return tracer.record_call(fn, fn.__name__, args, kwargs)
    return call


def note_host_data(array):
    """Tell gpuad.compile's tracer, while it records a step, that `array` becomes a tensor's data
    in the function that called this one's caller (gpuad.tensor, as_tensor, from_numpy): a replay
    holds it as a constant, which is wrong when the step makes it anew each call."""
    tracer = TRACER[0]
    if tracer is not None:
        tracer.note_host_data(array, sys._getframe(2))


def not_replayable(reason):
    """Tell gpuad.compile's tracer, while it records a step on this thread, that the step does
    what a replay would not repeat (`reason` completes "the step ..."): it runs eagerly instead."""
    tracer = TRACER[0]
    if tracer is not None and tracer.mine():
        tracer.poison(reason)


def asnumpy(array):
    """A numpy copy (or view, on the CPU) of any backend's array: the one host transfer."""
    if type(array) is numpy.ndarray:
        return array
    if isinstance(array, (numpy.generic, int, float, bool)):
        return numpy.asarray(array)
    if cupy is not None and type(array) is cupy.ndarray:
        return cupy.asnumpy(array)
    return _TO_HOST[type(array)](array)


@recorded
def to_device(array, dev):
    """Copy `array` to device `dev` (no copy when it is already there)."""
    dev = device(dev)
    if device_of(array) == dev:
        return array
    host = asnumpy(array)
    if dev.type == "cuda":
        require_cuda(dev)
        with cupy.cuda.Device(dev.index):
            return cupy.asarray(host)
    if dev.type in _KINDS:
        return _KINDS[dev.type].from_host(numpy.array(host))
    return numpy.array(host) if type(array) is not numpy.ndarray else host


@recorded
def asarray(data, dtype=None, dev=CPU):
    """Make an array of `data` (nested lists, scalars, arrays of any backend) on device `dev`."""
    dev = device(dev)
    if is_array(data):
        data = to_device(data, dev)
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    return to_device(numpy.asarray(data, dtype=dtype), dev)


@recorded
def create(dev, name, *args, **kwargs):
    """xp.<name>(*args) allocated on device `dev` (on the right GPU when there are several)."""
    dev = device(dev)
    if dev.type == "cuda":
        require_cuda(dev)
        with cupy.cuda.Device(dev.index):
            return getattr(cupy, name)(*args, **kwargs)
    return getattr(dev.xp, name)(*args, **kwargs)


# Checking that index arrays are in range needs their values on the host: free for numpy, a device
# synchronisation for CuPy (which would otherwise wrap bad indices silently, where PyTorch raises a
# device-side assert). Off on CUDA by default so training steps never wait; turn it on to debug.
CHECK_DEVICE_INDICES = False


_UNSIGNED = {1: numpy.uint8, 2: numpy.uint16, 4: numpy.uint32, 8: numpy.uint64}


def indices_outside(index, low, high, ignore=None):
    """The first entry of the index array outside [low, high) and not equal to `ignore`, or None;
    on a device (CUDA, and the strict backend that stands in for it) None without looking (no
    sync) unless CHECK_DEVICE_INDICES is set."""
    if type(index) is not numpy.ndarray and not CHECK_DEVICE_INDICES:
        return None
    if not index.size:
        return None
    if low == 0 and index.dtype.kind == "i":  # read as unsigned, a negative index is huge
        if index.view(_UNSIGNED[index.dtype.itemsize]).max() < high:
            return None  # the common case in one reduction, not five passes
    elif index.min() >= low and index.max() < high:
        return None
    bad = (index < low) | (index >= high)
    if ignore is not None:
        bad &= index != ignore
    if not bool(bad.any()):
        return None
    return int(index[bad].ravel()[0])


def host_min(array):
    """The least entry of a non-empty array where the host reads it without waiting for a device
    (numpy), else None (a device array: no sync)."""
    return array.min() if type(array) is numpy.ndarray else None


def may_hold_nan(array):
    """Whether a float array may hold a NaN: False only where the host sees that it holds none
    without waiting for a device (numpy: one max, which a NaN propagates through), so work that
    only a NaN needs can be skipped; True for a device array (no sync: that work always runs)."""
    if type(array) is not numpy.ndarray:
        return True
    return array.dtype.kind in "fc" and array.size > 0 and bool(numpy.isnan(array.max()))


def check_indices(index, low, high, error, ignore=None):
    """Raise error(bad) for the first entry `bad` of the index array outside [low, high) and not
    equal to `ignore` (see indices_outside: on a device only with CHECK_DEVICE_INDICES). While
    gpuad.compile records a step the check is recorded too, so every replay makes it on its own
    batch: numpy would take a negative index from the end without a word."""
    tracer = TRACER[0]
    if tracer is not None and (CHECK_DEVICE_INDICES or device_of(index) == CPU):
        return tracer.record_call(_check_indices, "check_indices", (index, low, high, error),
                                  {"ignore": ignore})
    return _check_indices(index, low, high, error, ignore=ignore)


def _check_indices(index, low, high, error, ignore=None):
    bad = indices_outside(index, low, high, ignore)
    if bad is not None:
        raise error(bad)


def device_scope(array):
    """A context that makes `array`'s GPU the current one (so new arrays land there too)."""
    return gpu_scope(array) or _NO_SCOPE


def gpu_scope(array):
    """device_scope(array), or None where there is no current device to switch: numpy and the
    registered kinds, and CuPy on a machine with one GPU (which is always the current one). The
    op path calls this, so it enters a context only where one is needed."""
    if cupy is not None and type(array) is cupy.ndarray and _several_gpus():
        return array.device
    return None


@functools.cache
def _several_gpus():
    return cuda_device_count() > 1  # CUDA_VISIBLE_DEVICES cannot change in a running process


_NO_SCOPE = contextlib.nullcontext()

# numpy warns on inf - inf, 0 / 0 and overflow; torch and CuPy give NaN and Inf silently, and so do
# ops (apply calls every forward between these two). Entering numpy.errstate costs about as much
# as a small op; setting the context variable it sets costs a fifth of that (numpy >= 2).
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
    _SILENT = _make_extobj(all="ignore")

    # silence_float_errors() -> a token: until restore_float_errors(token), numpy gives NaN and
    # Inf without a warning. A partial, not a def: every op calls it, and a C call skips the
    # Python frame (a third of its cost).
    silence_float_errors = functools.partial(_extobj_contextvar.set, _SILENT)
    restore_float_errors = _extobj_contextvar.reset
except ImportError:  # older numpy: the public, slower way
    def silence_float_errors():
        state = numpy.errstate(all="ignore")
        state.__enter__()
        return state

    def restore_float_errors(state):
        state.__exit__(None, None, None)


_ZERO_BLOCK = 8192  # elements: numpy's maximum runs its SIMD loop along rows of this length
_TWO_BLOCKS = 2 * _ZERO_BLOCK  # the least size that takes blocks (below, one call is as fast)
_ZEROS = {}  # dtype -> a read-only block of _ZERO_BLOCK zeros


def relu(x, out=None):
    """maximum(x, 0), NaN kept, into `out` when given (of x's shape and dtype). numpy runs maximum
    against a scalar through a loop without SIMD and against an array with it, so on the CPU a
    float array of two blocks or more, contiguous in some order of its axes (a conv's output is
    a transposed view), meets a block of zeros row by row in memory order: the same bits and
    layout, 2.3-2.8x faster (13 -> 5.6 us on a 128x256 float32 array, 326 -> 135 us on LeNet's
    first conv output). CuPy: one kernel either way."""
    if type(x) is not numpy.ndarray:
        return xp_of(x).maximum(x, 0) if out is None else xp_of(x).maximum(x, 0, out=out)
    if x.size >= _TWO_BLOCKS and x.dtype.kind == "f":
        if x.flags.c_contiguous and (out is None or (
                type(out) is numpy.ndarray and out.dtype == x.dtype and out.shape == x.shape
                and out.flags.c_contiguous)):
            return _relu_by_blocks(x, out)
        if out is None:  # contiguous in another order of its axes (a transposed view)?
            order = sorted(range(x.ndim), key=lambda axis: -x.strides[axis])
            in_memory = x.transpose(order)
            if in_memory.flags.c_contiguous:
                result = numpy.empty_like(x)  # x's layout, as maximum's own result has
                _relu_by_blocks(in_memory, result.transpose(order))
                return result
    return numpy.maximum(x, 0) if out is None else numpy.maximum(x, 0, out=out)


def _relu_by_blocks(x, out):
    zeros = _ZEROS.get(x.dtype)
    if zeros is None:
        zeros = _ZEROS[x.dtype] = numpy.zeros(_ZERO_BLOCK, x.dtype)
        zeros.flags.writeable = False
    if out is None:
        out = numpy.empty_like(x)
    src, dst = x.reshape(-1), out.reshape(-1)  # views (both C-contiguous)
    n = x.size
    whole = n - n % _ZERO_BLOCK
    numpy.maximum(src[:whole].reshape(-1, _ZERO_BLOCK), zeros,
                  out=dst[:whole].reshape(-1, _ZERO_BLOCK))
    if whole < n:
        numpy.maximum(src[whole:], zeros[:n - whole], out=dst[whole:])
    return out


# each float dtype's unsigned twin of its width, for work on the bits (where's select and masked
# below, relu's backward in ops/elementwise.py)
FLOAT_BITS = {numpy.dtype(f"f{n}"): numpy.dtype(_UNSIGNED[n]) for n in (2, 4, 8)}
_SELECT_FROM = 8192  # elements: below, numpy's where is as fast as the five calls of a select
_SIGNED = {2: numpy.int16, 4: numpy.int32, 8: numpy.int64}


def sign_mask(x):
    """All ones where float array x's sign bit is set (negatives, -0.0, a NaN carrying it), zeros
    elsewhere, in x's unsigned twin (FLOAT_BITS): one arithmetic shift of its bits."""
    width = x.dtype.itemsize
    return xp_of(x).right_shift(x.view(_SIGNED[width]), 8 * width - 1).view(FLOAT_BITS[x.dtype])


def where(cond, a, b):
    """numpy.where(cond, a, b). numpy's where tests each element with a branch, so on a mask with
    no pattern (a sign, a ReLU's) it runs at about 4 ns an element, 3.8 ms on a million float32s.
    On numpy, a large bool cond of the result's shape, or one that broadcasts to it (a causal mask
    over a batch of attention scores), with float a and b of that shape (or Python numbers) is a
    select on the bits instead: b ^ ((a ^ b) & mask), a number's bits broadcast (0.6 ms on the
    million; GPT's causal mask over (32, 4, 64, 64) scores 0.52 -> 0.41 ms filling -inf, 0.52 ->
    0.26 ms for its backward's zeros). The same bits, NaN and -0.0 included, and the same dtype.
    A mask that picks one side everywhere (a threshold no entry crosses, a NaN test of clean data)
    is a copy of that side: 0.1 ms. CuPy, and every other case: where itself (asking a GPU
    whether a mask is uniform would wait for it)."""
    xp = xp_of(cond)
    shape = _select_shape(cond, a, b)
    if shape is None:
        return xp.where(cond, a, b)
    dtype = numpy.result_type(a, b)
    bits = FLOAT_BITS.get(dtype)
    if bits is None or any(isinstance(v, numpy.ndarray) and v.dtype != dtype for v in (a, b)):
        return xp.where(cond, a, b)
    if not cond.any():
        return _filled(b, dtype, shape)
    if cond.all():
        return _filled(a, dtype, shape)
    mask = cond.astype(bits)
    numpy.negative(mask, out=mask)  # 1 -> all ones
    full = cond.shape == shape  # then the masks can take results in place
    a_bits, b_bits = _as_bits(a, dtype, bits), _as_bits(b, dtype, bits)
    if b_bits is None:  # b is +0.0: the select is a & mask
        return numpy.bitwise_and(a_bits, mask, out=mask if full else None).view(dtype)
    if a_bits is None:  # a is +0.0: b & ~mask
        numpy.invert(mask, out=mask)
        return numpy.bitwise_and(b_bits, mask, out=mask if full else None).view(dtype)
    picked = numpy.bitwise_xor(a_bits, b_bits)  # an array's shape, or 0-d for two numbers
    if full:
        mask &= picked
        picked = mask
    else:  # (an array on one side gave picked the result's shape)
        picked &= mask
    picked ^= b_bits
    return picked.view(dtype)


def _select_shape(cond, a, b):
    """The result's shape when where() may select bits: a numpy bool cond of that shape or one
    that broadcasts to it, a and b arrays of that shape or Python numbers, and enough entries to
    pay for the select's passes; else None."""
    if type(cond) is not numpy.ndarray or cond.dtype != bool:
        return None
    if any(not isinstance(v, numpy.ndarray) and type(v) not in (int, float, bool) for v in (a, b)):
        return None
    arrays = [v for v in (a, b) if isinstance(v, numpy.ndarray)]
    shape = arrays[0].shape if arrays else cond.shape
    if (any(v.shape != shape for v in arrays) or math.prod(shape) < _SELECT_FROM
            or len(cond.shape) > len(shape)
            or any(c not in (1, n) for c, n in zip(reversed(cond.shape), reversed(shape)))):
        return None
    return shape


def _filled(value, dtype, shape):
    """A fresh C-order array of `shape` holding value (an array of that shape, or a number)."""
    if isinstance(value, numpy.ndarray):
        return numpy.array(value, dtype=dtype, order="C")
    return numpy.full(shape, value, dtype)


def _as_bits(value, dtype, bits):
    """An array's bits, a number's as a 0-d array of them, or None for +0.0 (all bits clear)."""
    if isinstance(value, numpy.ndarray):
        return value.view(bits)
    number = dtype.type(value)
    if number == 0 and not numpy.signbit(number):
        return None
    return numpy.array(number, dtype).view(bits)


_REORDER_FROM = 8192  # elements: below, a mixed-order ufunc costs less than the copy


def in_order_of(a, like):
    """a, or a copy of it laid out in like's memory order where the two orders differ (same
    shape, numpy, big enough). numpy runs a ufunc over operands of different orders along one
    order's rows, reading the other operand an element per row of its own, with no SIMD: LeNet's
    ReLU backward after its flatten (an NCHW gradient against a batch-last output, 100K float32s)
    takes 162 us that way against 68 with this copy first (numpy's strided copy is as fast as a
    plain pass). The same values: a copy."""
    if (type(a) is not numpy.ndarray or type(like) is not numpy.ndarray or a.shape != like.shape
            or a.size < _REORDER_FROM or (a.flags.c_contiguous and like.flags.c_contiguous)):
        return a
    if _memory_order(a) == _memory_order(like):
        return a
    out = numpy.empty_like(like, dtype=a.dtype)  # like's memory order (empty_like keeps it)
    numpy.copyto(out, a)
    return out


def _memory_order(a):
    """a's axes from the slowest-varying in memory to the fastest (length-1 axes left out)."""
    return tuple(sorted((i for i in range(a.ndim) if a.shape[i] > 1),
                        key=lambda i: -abs(a.strides[i])))


def masked(value, mask, out=None):
    """value where the boolean mask holds, +0.0 elsewhere (into `out` when given): one integer
    product of the mask with value's bits, so an inf or NaN where the mask is False gives +0.0,
    as a scatter or gather that never reads it would (value * mask gives NaN there and -0.0 for a
    negative), at the speed of that product. value and mask broadcast; non-float values go
    through where."""
    bits = FLOAT_BITS.get(value.dtype)
    xp = xp_of(value)
    if bits is None:
        result = xp.where(mask, value, 0).astype(value.dtype, copy=False)
        if out is None:
            return result
        out[...] = result
        return out
    product = xp.multiply(mask, value.view(bits), out=None if out is None else out.view(bits))
    return product.view(value.dtype) if out is None else out


def scatter_add(target, index, values):
    """target[index] += values in place, accumulating repeated indices (ufunc.at; CuPy >= 13 has
    it too, and deprecates the older cupyx.scatter_add). numpy's add.at runs a fast loop on 1-D
    arrays only, so rows picked by one integer array (an embedding's gradient) are added as their
    entries, at flat positions: each entry gets the same additions in the same order (the bits
    of the row-wise call), 2-4x faster (GPT's token embedding, 2048 rows of 128: 2.2 -> 1.1 ms).
    A negative row's positions wrap as the row does; a row out of range takes the row-wise call,
    which raises numpy's error about it."""
    if type(target) is numpy.ndarray and type(index) is tuple and len(index) == 1:
        index = index[0]
    if (type(target) is numpy.ndarray and type(index) is numpy.ndarray and target.ndim > 1
            and index.dtype.kind in "iu" and target.flags.c_contiguous and index.size
            and getattr(values, "shape", None) == index.shape + target.shape[1:]
            and -len(target) <= index.min() and index.max() < len(target)):
        width = target[0].size
        positions = index.reshape(-1, 1).astype(numpy.intp) * width + numpy.arange(width)
        numpy.add.at(target.reshape(-1), positions.reshape(-1), values.reshape(-1))
        return target
    xp_of(target).add.at(target, index, values)
    return target


_UFUNC_AT = {"sum": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}


def scatter_reduce(target, index, values, reduce):
    """target[index] = reduce(target[index], values) in place, every repeat of an index taking part
    ("sum", "prod", "amax" or "amin"); `index` is a tuple of integer arrays, one per dim. ufunc.at
    does it, except that CuPy's multiply has no .at: there the products take one pass per repeat
    count, which needs the counts and the selections on the host (a device synchronisation)."""
    xp = xp_of(target)
    if reduce != "prod" or type(target) is numpy.ndarray:
        getattr(xp, _UFUNC_AT[reduce]).at(target, index, values)
        return target
    arrays = xp.broadcast_arrays(*index)
    position = xp.ravel_multi_index(tuple(arrays), target.shape).ravel()
    values = xp.broadcast_to(values, arrays[0].shape).ravel()
    order = xp.argsort(position)
    position, values = position[order], values[order]
    rank = xp.arange(position.size) - xp.searchsorted(position, position)  # repeats before it
    flat = target.reshape(-1)  # a view: callers pass a fresh, contiguous array
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        chosen = rank == r  # no position twice within a rank, so a plain indexed update is safe
        where = position[chosen]
        flat[where] = flat[where] * values[chosen]
    return target


def diagonal(array, offset=0, axis1=0, axis2=1):
    """array.diagonal(offset, axis1, axis2) as a writable view, as torch.diagonal gives (numpy's
    own diagonal is read-only): the diagonal becomes the last dim."""
    xp = xp_of(array)
    moved = xp.moveaxis(array, (axis1, axis2), (-2, -1))[..., max(-offset, 0):, max(offset, 0):]
    n = min(moved.shape[-2], moved.shape[-1])
    strides = moved.strides[:-2] + (moved.strides[-2] + moved.strides[-1],)
    return xp.lib.stride_tricks.as_strided(moved, moved.shape[:-2] + (n,), strides)




# the concern modules build on the seam above
from . import cuda, dlpack, linalg, random, special  # noqa: E402,F401
