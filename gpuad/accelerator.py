"""gpuad.accelerator: torch.accelerator's device-agnostic questions, answered for CUDA (the one
accelerator gpuad drives), so `device = gpuad.accelerator.current_accelerator() or "cpu"` picks
the GPU where there is one, as current PyTorch examples write it."""
from . import backend, cuda


def is_available():
    return cuda.is_available()


def current_accelerator(check_available=False):
    """gpuad.device("cuda") where CuPy is installed (and, with check_available, sees a GPU);
    else None."""
    if backend.cupy is None or (check_available and not is_available()):
        return None
    return backend.device("cuda")


def device_count():
    return cuda.device_count() if is_available() else 0


def current_device_index():
    return cuda.current_device()


def set_device_index(device):
    cuda.set_device(device)


def synchronize(device=None):
    cuda.synchronize(device)


current_device_idx, set_device_idx = current_device_index, set_device_index  # torch's old names
