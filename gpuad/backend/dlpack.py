"""DLPack: zero-copy exchange with torch, JAX, CuPy, numpy and any other DLPack producer."""
import numpy

from . import Device, cupy, device_of, require_cuda

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
        require_cuda(Device("cuda", int(index)))
        with cupy.cuda.Device(int(index)):
            return cupy.from_dlpack(obj)
    raise TypeError(f"from_dlpack: DLPack device type {int(kind)} is not supported; gpuad holds "
                    f"host (numpy) and CUDA (CuPy) arrays")
