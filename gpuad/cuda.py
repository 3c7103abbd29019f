"""gpuad.cuda: is a CUDA GPU usable here, and how many; a thin facade over backend.py."""
from . import backend


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
    recorded, pool, outputs = backend.capture_graph(step, device)

    def replay():
        recorded.launch()  # on the current stream, after whatever is queued there
        return outputs
    replay.graph, replay.pool = recorded, pool  # the pool must outlive the graph's arrays
    return replay

