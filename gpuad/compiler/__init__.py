"""gpuad.compile: trace a training step once, then replay its raw array program.

Sits above optim and nn (it finds a step's modules and optimizers) and below the training loop.
The first call for a signature runs the function eagerly while tracing.py records every array
operation it performs, forward, backward rules, gradient accumulation and optimizer updates alike;
program.py turns that recording into one generated Python function. Later calls with the same
signature run that function: no Tensor, Node, type promotion or rule lookup, the same numpy/CuPy
calls in the same order (but for rewrite.py's one rewrite, a max pooling of a ReLU pooled first,
which keeps the bits), so on the CPU a compiled step computes bit for bit what the eager one does.
On the CPU, flat.py replays a run of per-parameter optimizer updates as one call over flat buffers;
on CUDA, graphs.py captures the replay as CUDA graphs. A function whose result the caller
differentiates (gpuad.compile(model), backward() outside) also has that result's backward walk
recorded: its outputs carry one Node that replays it (backward.py).

What changes between calls is read afresh on each replay: the arguments' arrays, parameters,
gradients and optimizer state (through their owners), the optimizer's host numbers (learning
rate, step counts, bias corrections: each update's Python code re-runs on stand-in arrays), and
random draws (made again from the generator). A learning-rate scheduler stepped in the function
is stepped again by every replay, after the updates (its step is Python on param groups only).
Numbers passed as arguments are part of the signature; plain Python values the function's own
code reads (self.beta, a global flag) are checked on every replay (reach.python_reads), and a
change re-traces; others are frozen at tracing, as in jax.jit. What a replay cannot repeat makes
the function run eagerly, after one CompileWarning: host reads, Python or numpy random numbers,
host data made anew, a DataLoader drawn inside, and Python state changed on every call (reach.py).
"""
import copy
import functools
import logging
import os
import sys
import threading
import warnings
import weakref

import numpy

from .. import amp, backend, ops
from ..autograd import ANOMALY, DEBUG, grad_mode
from ..nn.module import Module
from ..tensor import Tensor
from .arrays import current
from .program import NEW_EACH_CALL, Miss
from .records import record_fields
from .trace import Poison, Unkept, trace_call, user_frame
from .tracing import Unsupported  # noqa: F401  (gpuad.compiler.Unsupported)

CACHE_LIMIT = 8  # recordings per compiled function, as torch's cache_size_limit (counting those
# not kept, so a step that changes its optimizer state's layout every call stops tracing)
BACKENDS = ("inductor", "gpuad", "eager", "aot_eager", "cudagraphs")
MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
logger = logging.getLogger("gpuad.compile")
_TRACING = threading.Lock()  # one trace at a time: its hooks are process-wide
_COMPILED = weakref.WeakSet()  # every CompiledFunction alive, for reset()


class CompileWarning(UserWarning):
    """A compiled function falls back to running eagerly (the warning says why and where)."""


def compile(fn=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,
            options=None, disable=False, debug=None):
    """Compile a training step (or any function of tensors): torch.compile's name and keywords.

    Usable as `step = gpuad.compile(step)` or `@gpuad.compile` / `@gpuad.compile(debug=True)`. The
    first call for a signature (argument shapes, dtypes and devices, Python values passed as
    arguments, grad mode, autocast) traces the function while running it; later calls replay the
    recorded array program. A function may also return tensors that the caller differentiates
    (`model = gpuad.compile(model)`, then the loss, backward() and the optimizer step outside):
    their backward is recorded with the forward and replayed by one Node they carry, which hands the
    gradients of the parameters and tensor arguments to autograd (torch.compile's AOTAutograd
    split); it is not differentiable again (a second-order walk raises). A Module comes back as an
    OptimizedModule, as from torch.compile. A function that reads tensor values on the host
    (.item(), printing, data-dependent branches or shapes), or does what a replay would not repeat
    (draws Python or numpy random numbers, seeds a generator, makes a tensor of host data it creates
    anew, draws from a DataLoader or an iterator, stores a tensor or changes a Python value on every
    call), runs eagerly from then on, after one CompileWarning naming the cause; with fullgraph=True
    that raises instead. A learning-rate scheduler stepped after the optimizer is stepped again by
    every replay. A recording of a call that created optimizer state (a first step) or set a cache
    or flag is not kept: the next call finds them. After CACHE_LIMIT recordings, calls that match no
    program run eagerly (reset() starts over), as do calls made under anomaly detection or
    gpuad.set_debug(True) (their checks are Python). `debug=True` (or GPUAD_COMPILE_DEBUG=1) prints
    every trace, re-trace and fallback to stderr (they also go to the "gpuad.compile" logger);
    GPUAD_COMPILE_DEBUG=2 prints each generated program too. backend="eager" or disable=True returns
    fn unchanged; `dynamic` and `options` are accepted for torch compatibility (every new shape
    re-traces)."""
    if backend not in BACKENDS:
        raise ValueError(f"gpuad.compile: unknown backend {backend!r}; expected one of "
                         f"{BACKENDS} (all but 'eager' record and replay the same way)")
    if mode not in MODES:
        raise ValueError(f"gpuad.compile: unknown mode {mode!r}; expected one of {MODES}")
    if fn is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                 mode=mode, options=options, disable=disable, debug=debug)
    if not callable(fn):
        raise TypeError(f"gpuad.compile: expected a function or a Module, got "
                        f"{type(fn).__name__}")
    if disable or backend == "eager":
        return fn
    level = os.environ.get("GPUAD_COMPILE_DEBUG", "") if debug is None else str(int(debug))
    verbosity = {"": 0, "0": 0, "2": 2}.get(level, 1)
    graphs = (mode != "max-autotune-no-cudagraphs"
              and (options or {}).get("triton.cudagraphs", True) is not False)
    compiled = CompiledFunction(fn, fullgraph, verbosity, graphs)
    return OptimizedModule(fn, compiled) if isinstance(fn, Module) else compiled


class CompiledFunction:
    """A function with its cache of recorded programs (call it like the function)."""

    def __init__(self, fn, fullgraph=False, verbosity=0, graphs=True):
        self.fn, self.fullgraph, self.verbosity, self.graphs = fn, fullgraph, verbosity, graphs
        self.cache = {}  # signature -> [Program]
        self.pool = {}  # what the programs share: each other, flat buffers (see flat.py)
        self.fallback = None  # why every call now runs eagerly
        self.traces = 0
        self.full_warned = False
        self.unkept = set()  # signatures whose last recording did what a replay would not
        self.name = getattr(fn, "__qualname__", None) or type(fn).__name__
        functools.update_wrapper(self, fn, updated=())
        _COMPILED.add(self)

    def reset(self):
        """Forget the recorded programs, the recording count and a fallback: the next call traces
        afresh (after the cache limit, or once what made it fall back is gone). Flat buffers that
        parameters already live in stay, and the new programs use them."""
        self.cache.clear()
        self.fallback, self.traces, self.full_warned = None, 0, False
        self.unkept.clear()

    def __deepcopy__(self, memo):
        """A copy of the function, compiled afresh (copy.deepcopy of a compiled model, as
        AveragedModel makes): the recorded programs hold the original's tensors."""
        return CompiledFunction(copy.deepcopy(self.fn, memo), self.fullgraph, self.verbosity,
                                self.graphs)

    def __get__(self, instance, owner):  # a compiled method binds like a function
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    def __call__(self, *args, **kwargs):
        if (self.fallback is not None or current() is not None or ANOMALY[0] or DEBUG[0]
                or ops.BATCHING is not None):
            # inside another trace, that one records this call; anomaly detection and debug mode
            # check every op in Python, which a replay does not run; under gpuad.func.vmap, its
            # batching rules run the function, op by op
            return self.fn(*args, **kwargs)
        key = _signature(args, kwargs)
        why = Miss("first call") if not self.cache else _new_signature(args, kwargs)
        for program in self.cache.get(key, ()):
            out = program.run(args, kwargs)
            if type(out) is not Miss:
                return out
            why = out
        return self._trace(key, args, kwargs, why)

    def programs(self):
        """The recorded programs (their .source is the generated replay function)."""
        return [p for programs in self.cache.values() for p in programs]

    def _log(self, message):
        logger.info("%s: %s", self.name, message)
        if self.verbosity:
            print(f"gpuad.compile: {self.name}: {message}", file=sys.stderr, flush=True)

    def _trace(self, key, args, kwargs, why):
        if self.traces >= CACHE_LIMIT:
            if not self.full_warned:
                self.full_warned = True
                advice = f"; {why.advice}" if why.advice else ""
                self._warn(f"{self.name} was traced {CACHE_LIMIT} times (the cache limit; last "
                           f"reason: {why.reason}); calls that match no recorded program run "
                           f"eagerly{advice}", None)
            return self.fn(*args, **kwargs)
        with _TRACING:
            self.traces += 1
            self._log(("tracing" if self.traces == 1 else "re-tracing") + f" ({why.reason})")
            result, program = trace_call(self.fn, args, kwargs, self.fullgraph, self.name,
                                         self.pool)
        if type(program) is Unkept:
            if program.if_again is None:
                self.unkept.discard(key)
                self._log("recorded, not kept: the call created optimizer state (a first step), "
                          "so no later call would match it")
                return result
            if key not in self.unkept:
                self.unkept.add(key)
                self._log(f"recorded, not kept: the call {program.what} (on first use only?); "
                          f"recording the next call too")
                return result
            program = Poison(program.if_again, user_frame())  # (the call: where is not recorded)
            if self.fullgraph:
                raise Unsupported(program)
        else:
            self.unkept.discard(key)
        if hasattr(program, "reason"):  # a Poison: run eagerly from now on
            self.fallback = program.reason
            self._warn(f"{self.name} {program.reason}, which a compiled replay cannot repeat; it "
                       f"runs eagerly from now on", program.site)
            return result
        program.attach_graphs(self.graphs)
        self.cache.setdefault(key, []).append(program)
        backward = program.spec.split
        self._log(f"recorded {program.recorded} operations, replaying {len(program.instrs)} "
                  f"({program.reused} written into dead buffers)" + (
                      "" if backward is None else
                      f" and a backward of {len(backward.instrs)} that its outputs carry"))
        if self.verbosity > 1:
            print(program.source, file=sys.stderr, flush=True)
        return result

    def _warn(self, message, site):
        self._log("fallback: " + message)
        if site is None:
            warnings.warn(f"gpuad.compile: {message}", CompileWarning, stacklevel=4)
        else:
            warnings.warn_explicit(f"gpuad.compile: {message} (at {site[0]}:{site[1]})",
                                   CompileWarning, site[0], site[1])


class OptimizedModule(Module):
    """What gpuad.compile(model) returns, as torch.compile does: a Module holding the model as
    `_orig_mod` (so its state_dict keys and parameter names start with "_orig_mod.", as torch's
    do), whose forward is the compiled call of the model. Other attributes are the model's;
    programs(), reset() and traces are those of the compiled function."""

    def __init__(self, mod, compiled):
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "_compiled", compiled)

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name):  # only reached when normal lookup fails
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__") or "_modules" not in self.__dict__:
                raise
            return getattr(self._modules["_orig_mod"], name)

    @property
    def traces(self):
        return self._compiled.traces

    def programs(self):
        return self._compiled.programs()

    def reset(self):
        self._compiled.reset()


def is_compiling():
    """Whether gpuad.compile is recording a call on this thread (torch.compiler.is_compiling): code
    may skip what a replay would not repeat (logging, a host read) while it is recorded. A
    replay runs no Python of the function, so the skipped code runs in neither."""
    return current() is not None


def reset():
    """Reset every compiled function (CompiledFunction.reset), like torch.compiler.reset."""
    for compiled in list(_COMPILED):
        compiled.reset()


def _new_signature(args, kwargs):
    """The miss of a call whose signature no program has: with advice when an argument is an
    object, which selects programs by identity (a batch object made anew every call would
    re-trace every call)."""
    by_identity = any(type(_sig(v)) is int for v in (*args, *kwargs.values()))
    return Miss("new signature", NEW_EACH_CALL if by_identity else "")


def _signature(args, kwargs):
    """What selects a program: grad mode, autocast, the default float dtype (what tensors made
    from Python floats get), and the arguments' layout (tensor shapes, dtypes, devices,
    requires_grad; Python values; other objects by identity)."""
    policies, cache_enabled = amp.get_autocast_state()
    key = (grad_mode.enabled, tuple(policies.items()), cache_enabled, backend.DEFAULT_FLOAT)
    return key + tuple(map(_sig, args)) + (tuple((k, _sig(v)) for k, v in kwargs.items())
                                           if kwargs else ())


def _sig(value):
    t = type(value)
    if t is Tensor or isinstance(value, Tensor):
        a = value.array
        return (type(a), a.shape, a.dtype, value._requires_grad,
                None if type(a) is numpy.ndarray else backend.device_of(a))
    if t in backend.ARRAY_TYPES:
        return (t, value.shape, value.dtype,
                None if t is numpy.ndarray else backend.device_of(value))
    if t is tuple or t is list:
        return (t,) + tuple(map(_sig, value))
    if t is dict:
        return (t,) + tuple((k, _sig(v)) for k, v in value.items())
    if value is None or t in (bool, int, float, str, complex):
        return (t, value)
    if isinstance(value, Module):
        return (id(value), value.training)
    fields = record_fields(value)  # a batch as a namedtuple, dataclass or SimpleNamespace
    if fields is not None:
        return (t,) + tuple((name, _sig(v)) for name, v in fields)
    return id(value)
