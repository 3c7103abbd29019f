"""Splitting memory-bound CPU passes (copies, elementwise ufuncs) over the cores.

numpy runs a copy or a ufunc on one core, though it releases the GIL while it does: a large one
is split into blocks run by a small persistent thread pool. Only numpy arrays are split (CuPy is
parallel already; gpuad.compile's tracing arrays and the strict backend run unsplit, in the
calling thread), and only copies and elementwise work: a block's result does not depend on the
split, so results are bit-identical to the unsplit pass. Never split a reduction.
"""
import os
import threading
from concurrent import futures

import numpy

# A thread handoff costs ~20-50 us; a block under this many bytes saves less than that.
MIN_BLOCK_BYTES = 1 << 19
_LIMITS = ("GPUAD_NUM_THREADS", "OMP_NUM_THREADS")  # the user's thread counts, first one set wins


def _default_threads():
    for name in _LIMITS:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


_threads = [_default_threads()]
_pool = [None]
_inside = threading.local()  # set while a thread runs a block: a block never splits again


def set_threads(n):
    """Use at most n threads (the caller's included) for a split pass; 1 runs every pass unsplit
    in the calling thread. The default is $GPUAD_NUM_THREADS, else $OMP_NUM_THREADS, else the
    number of cores this process may run on."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads: expected a positive int, got {n!r}")
    _threads[0] = n
    pool, _pool[0] = _pool[0], None
    if pool is not None:
        pool.shutdown(wait=False)


def threads():
    """How many threads a split pass may use."""
    return _threads[0]


def _forget_pool():  # a forked child has the pool object but none of its threads
    _pool[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor():
    pool = _pool[0]
    if pool is None:
        pool = _pool[0] = futures.ThreadPoolExecutor(_threads[0] - 1,
                                                     thread_name_prefix="gpuad-cpu")
    return pool


def _split_axis(shape, strides, parts):
    """The axis to cut into `parts` nearly equal blocks: the outermost in memory whose blocks
    differ by at most a quarter (so each block's inner runs stay as long as the array's), else
    the largest; None when no axis has two entries."""
    order = sorted(range(len(shape)), key=lambda axis: -abs(strides[axis]))
    for axis in order:
        if shape[axis] >= parts and -(-shape[axis] // parts) * parts <= 1.25 * shape[axis]:
            return axis
    axis = max(order, key=lambda axis: shape[axis], default=None)
    return axis if axis is not None and shape[axis] > 1 else None


def _parts(array):
    """How many blocks a pass over `array` is worth cutting into (1: run it unsplit)."""
    if type(array) is not numpy.ndarray or _threads[0] < 2 or getattr(_inside, "set", False):
        return 1
    return max(1, min(_threads[0], array.nbytes // MIN_BLOCK_BYTES))


def parallel_slices(fn, like, axis=None):
    """Call fn(index) for blocks that together cover an array shaped like `like`: each index is
    a tuple of slices over the leading axes up to the one cut, valid for `like` and for every
    array of its shape. A large numpy `like` is cut along `axis` (default: its outermost axis in
    memory that splits evenly) and the blocks run on the thread pool, the first in the calling
    thread; anything else gets one call with the whole: (slice(None),) * (axis + 1), or (...,)
    without an axis. fn must write each block's results only into that block, in an order that
    does not depend on the split (no reductions across blocks)."""
    parts = _parts(like)
    if parts > 1 and axis is None:
        axis = _split_axis(like.shape, like.strides, parts)
    if parts < 2 or axis is None or like.shape[axis] < 2:
        fn((...,) if axis is None else (slice(None),) * (axis + 1))
        return
    size = like.shape[axis]
    parts = min(parts, size)
    bounds = [size * i // parts for i in range(parts + 1)]
    lead = (slice(None),) * axis
    blocks = [lead + (slice(a, b),) for a, b in zip(bounds, bounds[1:])]
    errors = numpy.geterr()  # a thread starts with numpy's default; ops silence float warnings
    pending = [_executor().submit(_run_block, fn, block, errors) for block in blocks[1:]]
    try:
        _run_block(fn, blocks[0], errors)
    finally:
        for future in pending:
            future.exception()  # wait for every block before raising (they write our arrays)
    for future in pending:
        future.result()


def _run_block(fn, block, errors):
    _inside.set = True
    try:
        with numpy.errstate(**errors):
            fn(block)
    finally:
        _inside.set = False


def parallel_copy(array):
    """array.copy() (C order), made block by block on several threads when it is a large numpy
    array; otherwise that very call, so CuPy and a traced step see nothing new."""
    if _parts(array) < 2:
        return array.copy()
    out = numpy.empty(array.shape, array.dtype)

    def copy(block):
        out[block] = array[block]
    parallel_slices(copy, out)
    return out


def parallel_ufunc(ufunc, x, *args):
    """ufunc(x, *args), split over the cores when x is a large numpy array, for a ufunc whose
    result dtype is numpy.result_type(x, *args) (arithmetic, maximum, minimum) and args that are
    numbers or arrays of x's shape; the result takes x's memory order, as the plain call's does.
    Otherwise that very call, so CuPy and a traced step see nothing new."""
    if _parts(x) < 2:
        return ufunc(x, *args)
    out = numpy.empty_like(x, dtype=numpy.result_type(x, *args))

    def block(b):
        ufunc(x[b], *(a[b] if isinstance(a, numpy.ndarray) else a for a in args), out=out[b])
    parallel_slices(block, out)
    return out
