"""How the CPU's allocator treats freed arrays (glibc only).

A training step frees and reallocates the same few-hundred-KB to few-MB arrays every step. glibc's
malloc hands memory above a threshold back to the kernel when it is freed (munmap, or trimming the
heap's top), so the next step faults every page back in: in a process running only gpuad that was
40% of a LeNet5 step (26 against 16 ms). Raising the two thresholds keeps freed memory in the heap
for the next step, as PyTorch's caching allocator does on a GPU; what a process once used at its
peak then stays mapped until it exits, except where release_freed_memory hands it back after
arrays went free for good. GPUAD_MALLOC_TUNING=0 leaves malloc as it is.
"""
import ctypes
import functools
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
TRIM_THRESHOLD = 512 << 20  # free heap top kept before giving memory back
MMAP_THRESHOLD = 32 << 20  # below this, arrays come from the heap (glibc's own dynamic maximum)


def keep_freed_memory():
    """Raise glibc's trim and mmap thresholds for this process, unless GPUAD_MALLOC_TUNING=0.
    Returns whether it did (False off glibc, or when turned off)."""
    if os.environ.get("GPUAD_MALLOC_TUNING", "1") == "0":
        return False
    mallopt = _glibc_function("mallopt", (ctypes.c_int, ctypes.c_int))
    return mallopt is not None and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                                        and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_freed_memory():
    """Give the heap's free pages back to the kernel now (glibc's malloc_trim), once: right after
    arrays that are gone for good were freed, which keep_freed_memory would otherwise keep mapped
    until the process exits (gpuad.compile's move of parameters and optimizer state into flat
    buffers frees their old arrays, as large as the model and its state). Pages a later step
    touches again fault back in once. Returns whether memory was released."""
    trim = _glibc_function("malloc_trim", (ctypes.c_size_t,))
    return trim is not None and bool(trim(0))


@functools.cache
def _glibc_function(name, argtypes):
    """glibc's function `name` (returning int) through ctypes, or None off glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, ctypes.c_int
    return function
