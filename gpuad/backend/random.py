"""Random number generators: per thread and per device, seeded by manual_seed, with a state that
checkpoints hold and streams that activation checkpointing can replay; and Generator objects
(torch.Generator), independent streams that draws take with generator=.

Host devices draw with numpy's PCG64 Generator, CUDA with CuPy's RandomState; every difference
between the two is in draw()'s two halves below.
"""
import contextlib
import json
import os
import threading

import numpy

from . import asnumpy, cupy, device, not_replayable, recorded, to_device

_parse_device = device  # Generator's `device` argument shadows the function

_LAST_SEED = [None]
_LAST_CUDA_SEEDS = {}


class _Generators(threading.local):
    """Per-thread generators (threads never interleave each other's draws); a new thread starts
    from the last manual_seed, so its results repeat too."""

    def __init__(self):
        self.seed = _LAST_SEED[0]
        self.cuda_seeds = dict(_LAST_CUDA_SEEDS)  # GPU index -> torch.cuda.manual_seed's seed
        self.by_device = {}


_generators = _Generators()


def _seeding(what):
    """A generator is seeded: a replay would not seed it again (it would draw on from where the
    stream is)."""
    not_replayable(f"seeds a random generator ({what}), which a replay would not do again: seed "
                   f"outside the compiled function")


def manual_seed(seed):
    """Seed every backend's generator, like torch.manual_seed."""
    _seeding("manual_seed")
    _LAST_SEED[0] = _generators.seed = int(seed)
    _LAST_CUDA_SEEDS.clear()
    _generators.cuda_seeds, _generators.by_device = {}, {}


def seed_gpus(seed, indices):
    """torch.cuda.manual_seed(_all): seed the generators of the GPUs `indices` alone; the host's
    and other GPUs' streams go on."""
    _seeding("cuda.manual_seed")
    for index in indices:
        _LAST_CUDA_SEEDS[index] = _generators.cuda_seeds[index] = int(seed)
        _generators.by_device.pop(device(f"cuda:{index}"), None)


def seed_this_thread(seed):
    """Seed only this thread's generators (a DataLoader worker's), leaving other threads and the
    seed that new threads start from alone."""
    _generators.seed, _generators.cuda_seeds, _generators.by_device = int(seed), {}, {}


def _generator(dev):
    gen = _generators.by_device.get(dev)
    if gen is None:
        seed = _generators.seed
        if dev.type == "cuda":
            seed = _generators.cuda_seeds.get(dev.index, seed)
            with cupy.cuda.Device(dev.index):
                gen = cupy.random.RandomState(seed)
        else:
            gen = numpy.random.Generator(numpy.random.PCG64(seed))
        _generators.by_device[dev] = gen
    return gen


def get_rng_state():
    """The host generators' state (JSON-friendly), for checkpoints; CUDA generators are reseeded
    from the saved seed instead, since CuPy exposes no state."""
    return {"seed": _generators.seed, "cuda_seeds": dict(_generators.cuda_seeds),
            "host": {str(dev): gen.bit_generator.state for dev, gen in _generators.by_device.items()
                     if dev.type != "cuda"}}


def set_rng_state(state):
    """Restore what get_rng_state returned."""
    _seeding("set_rng_state")
    _generators.seed, _generators.by_device = state["seed"], {}
    # (JSON keys are strings; a state saved before torch.cuda.manual_seed existed has none)
    _generators.cuda_seeds = {int(k): v for k, v in state.get("cuda_seeds", {}).items()}
    for name, host_state in state["host"].items():
        _generator(device(name)).bit_generator.state = host_state


@recorded  # gpuad.compile replays a draw from the generator, never its recorded numbers
def draw(kind, shape, dtype, dev, *args, generator=None):
    """An array of `shape` and `dtype` on device `dev`, drawn from this thread's seeded generator
    for `dev`, or from `generator` (a Generator of dev's type). Kinds: 'uniform' [0, 1),
    'normal', 'exponential' (rate 1), 'cauchy' (standard), 'integers' (args: low, high),
    'poisson' (args: the rates, an array on `dev`; shape is theirs), 'permutation' (args: n)."""
    dev, dtype = device(dev), numpy.dtype(dtype)
    gen = _generator(dev) if generator is None else generator._engine(dev)
    if dev.type == "cuda":
        with cupy.cuda.Device(dev.index):
            return _cuda_draw(gen, kind, shape, dtype, args)
    return to_device(numpy.asarray(_host_draw(gen, kind, shape, dtype, args)), dev)


def _native(dtype):
    """The float dtype the generators draw in (float32 or float64); others are cast after."""
    return dtype if dtype in (numpy.float32, numpy.float64) else numpy.dtype(numpy.float32)


def _host_draw(gen, kind, shape, dtype, args):
    if kind == "uniform":
        out = gen.random(shape, dtype=_native(dtype))
    elif kind == "normal":
        out = gen.standard_normal(shape, dtype=_native(dtype))
    elif kind == "exponential":
        out = gen.standard_exponential(shape, dtype=_native(dtype))
    elif kind == "cauchy":
        out = gen.standard_cauchy(shape)
    elif kind == "integers":
        out = gen.integers(args[0], args[1], size=shape)
    elif kind == "poisson":
        out = gen.poisson(asnumpy(args[0]))  # the strict backend's rates come to the host
    elif kind == "permutation":
        out = gen.permutation(args[0])
    else:
        raise ValueError(f"draw: unknown kind {kind!r}")
    return numpy.asarray(out).astype(dtype, copy=False)


def _cuda_draw(gen, kind, shape, dtype, args):
    if kind == "uniform":
        out = gen.random_sample(shape, dtype=_native(dtype))
    elif kind == "normal":
        out = gen.standard_normal(shape, dtype=_native(dtype))
    elif kind == "exponential":
        out = gen.standard_exponential(shape, dtype=_native(dtype))
    elif kind == "cauchy":
        out = gen.standard_cauchy(shape, dtype=_native(dtype))
    elif kind == "integers":
        out = gen.randint(args[0], args[1], size=shape)
    elif kind == "poisson":
        out = gen.poisson(args[0], size=args[0].shape)
    elif kind == "permutation":
        out = gen.permutation(args[0])
    else:
        raise ValueError(f"draw: unknown kind {kind!r}")
    return out.astype(dtype, copy=False)


def may_inspect(array):
    """Whether argument checks may read `array`'s values: always on the host; on a device (CUDA,
    and the strict backend that stands in for it) only when CHECK_DEVICE_INDICES asks for the
    device synchronisation, as for index checks."""
    from . import CHECK_DEVICE_INDICES
    return type(array) is numpy.ndarray or CHECK_DEVICE_INDICES


# ---- Generator objects ---------------------------------------------------------------------------
DEFAULT_SEED = 67280421310721  # a new torch.Generator's initial_seed()
_UINT64 = 1 << 64


def _seed_value(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)):
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    seed = int(seed)
    if not -(1 << 63) <= seed < _UINT64:
        raise ValueError(f"manual_seed: seed {seed} is outside [-2**63, 2**64 - 1]")
    return seed % _UINT64  # negative seeds wrap, as torch's do


class Generator:
    """An independent, reproducible stream of random numbers for one device kind, like
    torch.Generator: manual_seed(seed) (returns the generator), seed() (a fresh nondeterministic
    seed, returned), initial_seed(), get_state()/set_state() (a uint8 array) and `device`.
    Draws that take it (generator=) leave the global generators untouched.

    On the host it is a numpy PCG64 stream whose whole state is saved. CuPy's generators expose
    no state, so on CUDA it is counter-based like torch's Philox: the n-th draw comes from a
    Philox generator seeded by (seed, n), and the state is (seed, n)."""

    def __init__(self, device="cpu"):
        self.device = _parse_device(device)
        if self.device.type == "cuda":
            self.device.xp  # noqa: B018  (raises a clear error without CUDA)
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):  # (set_state, seed() and a new Generator come here too)
        _seeding("Generator.manual_seed")
        self._seed, self._offset, self._cuda = _seed_value(seed), 0, {}
        self._host = numpy.random.Generator(numpy.random.PCG64(self._seed))
        return self

    def seed(self):
        seed = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        state = {"gpuad.Generator": 1, "device": self.device.type, "seed": self._seed,
                 "offset": self._offset, "host": self._host.bit_generator.state}
        return numpy.frombuffer(json.dumps(state).encode(), dtype=numpy.uint8).copy()

    def set_state(self, new_state):
        if not (hasattr(new_state, "dtype") and new_state.dtype == numpy.uint8
                and new_state.ndim == 1):
            raise TypeError("RNG state must be a uint8 array (a state from get_state())")
        try:
            state = json.loads(asnumpy(new_state).tobytes())
            seed, offset, host = state["seed"], state["offset"], state["host"]
            kind = state["device"]
        except (ValueError, TypeError, KeyError):
            raise RuntimeError("set_state: not a state from gpuad.Generator.get_state()") from None
        if kind != self.device.type:
            raise RuntimeError(f"set_state: the state is of a {kind} generator, this one is on "
                               f"{self.device}")
        self.manual_seed(seed)
        self._offset = offset
        self._host.bit_generator.state = host
        return self

    def _engine(self, dev):
        if dev.type != self.device.type:
            raise RuntimeError(f"Expected a '{dev.type}' device type for generator but found "
                               f"'{self.device.type}'")
        if dev.type != "cuda":
            return self._host
        self._offset += 1
        seed = int(numpy.random.SeedSequence([self._seed, self._offset])
                   .generate_state(1, numpy.uint64)[0])
        engine = self._cuda.get(dev.index)
        with cupy.cuda.Device(dev.index):
            if engine is None:
                engine = self._cuda[dev.index] = cupy.random.RandomState(
                    seed, method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            else:
                engine.seed(seed)  # cheap for Philox: no per-thread state to rebuild
        return engine

    def __repr__(self):
        return f"<gpuad.Generator device={self.device} initial_seed={self._seed}>"


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
