"""Random number generators: per thread and per device, seeded by manual_seed, with a state that
checkpoints hold and streams that activation checkpointing can replay."""
import contextlib
import threading

import numpy

from . import cupy, device, to_device

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


def draw(kind, shape, dtype, dev, low=0, high=None):
    """Draw `kind` in {'uniform', 'normal', 'integers'} on device `dev` from its seeded
    generator."""
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


# Random streams that a recomputation can replay (activation checkpointing).
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
