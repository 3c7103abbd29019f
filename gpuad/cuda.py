"""gpuad.cuda: is a CUDA GPU usable here, and how many; a thin facade over backend.py."""
from . import backend


def is_available():
    """True when CuPy is installed and sees a usable CUDA GPU."""
    return backend.cuda_available()


def device_count():
    return backend.cuda_device_count()
