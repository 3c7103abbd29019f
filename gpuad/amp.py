"""Mixed precision, torch.amp's shape: `autocast` picks a dtype per op, `GradScaler` scales the
loss.

Inside `with gpuad.autocast("cuda"):` the ops declared `@primitive(autocast="lower")` (the matrix
products: matmul, linear, conv, einsum) cast their floating inputs to float16 (or bfloat16 where
the backend has it), those declared autocast="float32" (ops that lose accuracy in half precision:
reductions, softmax, log_softmax, the fused cross entropy, norms, exp, log, pow...) cast float16
inputs up to float32, and every other op follows the usual type promotion,
so `float16 + float32` is float32. float64 tensors are never cast, as in torch. The casts are
ordinary `cast` ops on the tape, so gradients flow back in each parameter's own dtype (float32
master weights get float32 .grad). A composite (mean, mse_loss, layer_norm) runs in float32 from
its first FLOAT32_OPS primitive on: mean is a sum and a division, so its result is float32.

How it hooks in: an autocast region registers an interceptor with gpuad.ops (see
ops.add_interceptor), which sees each op's name, declared policy and inputs; it reads this
thread's own settings, so autocast is per thread like torch's. Backward
rules are never cast (they run in the dtypes the forward chose). Inside one autocast region the
low-precision copy of a parameter is made once and reused, as torch caches it.

GradScaler multiplies the loss by a scale (2**16 at first) so small float16 gradients do not
flush to zero, divides the gradients by it before the step, skips steps whose gradients hold
inf/NaN and adjusts the scale: torch.amp.GradScaler's algorithm and state_dict, with the scale and
the overflow flags kept on the device; step() reads one flag per device, the one host read torch
makes too.
"""
import collections
import contextlib
import functools
import threading
import warnings

import numpy

from . import autograd, backend, creation, ops
from .tensor import Tensor


class _State(threading.local):
    def __init__(self):
        self.policies = {}  # device type ("cuda", "cpu") -> low dtype, while autocast is on
        self.cache_enabled = True
        self.cache = {}     # (id(leaf), dtype, grad mode) -> (leaf, its version, cast copy)


_state = _State()
_CASTABLE = {backend.float32, backend.float16} | (
    set() if isinstance(backend.bfloat16, str) else {backend.bfloat16})


def _cast_inputs(name, policy, args):
    """The ops' interceptor while some thread autocasts: under this thread's autocast, the
    floating Tensors of an op declared autocast="lower" or "float32" cast to the dtype it runs
    in."""
    state = _state
    if policy is None or not state.policies or autograd.is_in_backward():
        return args
    out = None
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            continue
        dtype = a.array.dtype
        if dtype not in _CASTABLE:  # float64, integers and bool are never cast
            continue
        target = state.policies.get(backend.device_of(a.array).type)
        if target is None:
            continue
        if policy == "float32":
            target = backend.float32
        if dtype == target:
            continue
        if out is None:
            out = list(args)
        out[i] = _cast(a, target, state)
    return args if out is None else tuple(out)


def _cast(t, dtype, state):
    """t cast to dtype; a parameter (a leaf that requires grad) is cast once per autocast region."""
    if not (state.cache_enabled and t._requires_grad and t._node is None):
        return ops.cast(t, dtype=dtype)
    key = (id(t), dtype, autograd.is_grad_enabled())
    hit = state.cache.get(key)
    if hit is not None and hit[0] is t and hit[1] == t._version and (
            hit[2]._node is None or hit[2]._node.inputs is not None):  # not freed by a backward
        return hit[2]
    out = ops.cast(t, dtype=dtype)
    state.cache[key] = (t, t._version, out)
    return out


def _low_dtype(device_type, dtype):
    if dtype is None:
        return backend.float16
    name = str(dtype)
    if name != "bfloat16":
        try:
            name = str(numpy.dtype(dtype))
        except TypeError:
            pass
    if name == "bfloat16":
        reason = backend.cuda.bfloat16_unsupported(device_type)
        if reason:
            raise RuntimeError(f"autocast: bfloat16 is not available on {device_type}: {reason}; "
                               f"use dtype=gpuad.float16")
        return backend.bfloat16
    if name != "float16":
        raise ValueError(f"autocast: dtype must be gpuad.float16 or gpuad.bfloat16, got {dtype!r}; "
                         f"autocast lowers float32 to a 16-bit float type")
    return backend.float16


class autocast:
    """Mixed precision for the ops in this block (a context manager or a decorator), like
    torch.autocast: `with gpuad.autocast("cuda"):` or `@gpuad.autocast("cpu")`.

    device_type: "cuda" (the default; without a usable GPU it warns and does nothing, as torch
    does) or "cpu" (numpy computes float16 matmuls slowly, but it makes the rules testable).
    dtype: gpuad.float16 (default) or gpuad.bfloat16 where the backend has it (numpy has none).
    enabled=False turns autocast off inside an enclosing autocast block.
    Run the backward outside the block; it uses the dtypes the forward chose anyway."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=True):
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        if enabled and device_type == "cuda" and not backend.cuda_available():
            warnings.warn("autocast: device_type 'cuda' was requested but no CUDA GPU is "
                          "usable; autocast is disabled", UserWarning, stacklevel=2)
            enabled = False
        self.device_type, self.enabled = device_type, bool(enabled)
        self.fast_dtype = _low_dtype(device_type, dtype) if self.enabled else dtype
        self.cache_enabled = bool(cache_enabled)
        self._saved = []

    def __enter__(self):
        state = _state
        self._saved.append((state.policies, state.cache_enabled))
        policies = dict(state.policies)
        if self.enabled:
            policies[self.device_type] = self.fast_dtype
        else:
            policies.pop(self.device_type, None)
        state.policies, state.cache_enabled = policies, self.cache_enabled
        ops.add_interceptor(_cast_inputs)
        return self

    def __exit__(self, *exc):
        state = _state
        state.policies, state.cache_enabled = self._saved.pop()
        if not state.policies:
            state.cache.clear()  # the outermost region ends: drop the cast copies of parameters
        ops.remove_interceptor(_cast_inputs)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled, self.cache_enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type="cuda"):
    return device_type in _state.policies


def get_autocast_dtype(device_type="cuda"):
    return _state.policies.get(device_type, backend.float16)


def get_autocast_state():
    """This thread's autocast settings, for a recomputation that must cast as its forward did
    (activation checkpointing)."""
    return dict(_state.policies), _state.cache_enabled


@contextlib.contextmanager
def own_cast_cache():
    """Cast copies of parameters made inside stay inside: gpuad.compile records a call with a
    cache of its own, since a replay neither reads the caller's region's copies nor leaves any."""
    state = _state
    outer, state.cache = state.cache, {}
    try:
        yield
    finally:
        state.cache = outer


@contextlib.contextmanager
def autocast_state(saved):
    """Autocast as get_autocast_state() returned it, with a cache of its own: a recomputation
    must not share cast copies (and their Nodes) with the graph being walked."""
    state = _state
    outer = state.policies, state.cache_enabled, state.cache
    state.policies, state.cache_enabled = saved
    state.cache = {}
    ops.add_interceptor(_cast_inputs)
    try:
        yield
    finally:
        state.policies, state.cache_enabled, state.cache = outer
        ops.remove_interceptor(_cast_inputs)


# ---- GradScaler ------------------------------------------------------------------------------
_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


def _fresh_state():
    return {"stage": _READY, "found_inf_per_device": {}}


class GradScaler:
    """Dynamic loss scaling, torch.amp.GradScaler's algorithm and API:

        scaler = gpuad.amp.GradScaler()
        with gpuad.autocast("cuda"):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)          # optional: e.g. to clip the true gradients
        scaler.step(optimizer)              # skipped if any gradient is inf/NaN
        scaler.update()                     # backoff on overflow, growth after growth_interval

    The arguments are torch.amp.GradScaler's, in its order (device first). The scale lives on
    the device of the first loss scaled unless `device` pins it; the overflow check stays there
    too and step() reads one flag per device. unscale_ refuses float16 gradients, as torch does:
    keep float32 master parameters and let autocast make the float16 copies."""

    def __init__(self, device=None, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if device is not None and not isinstance(device, (str, backend.Device)):
            raise TypeError(f"GradScaler: the first argument is the device, as in torch.amp."
                            f"GradScaler; got {device!r}: pass init_scale={device!r} by keyword")
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if not (isinstance(growth_interval, int) and growth_interval > 0):
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval!r}")
        if enabled and device is not None and backend.device(device).type == "cuda" and \
                not backend.cuda_available():
            warnings.warn("GradScaler: device 'cuda' was requested but no CUDA GPU is usable; "
                          "loss scaling is disabled", UserWarning, stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)
        self._device = None if device is None else backend.device(device)
        self._init_scale, self._init_growth_tracker = float(init_scale), 0
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = growth_interval
        self._scale = self._growth_tracker = None  # created on the first scale()
        self._per_optimizer_states = collections.defaultdict(_fresh_state)

    def is_enabled(self):
        return self._enabled

    def _lazy_init(self, dev):
        dev = self._device or dev
        self._scale = creation.full((), self._init_scale, dtype=backend.float32, device=dev)
        self._growth_tracker = creation.full((), self._init_growth_tracker, dtype=backend.int32,
                                             device=dev)

    def _check_started(self, name):
        if self._scale is None:
            raise RuntimeError(f"GradScaler.{name}: the scale does not exist yet; call "
                               f"scaler.scale(loss) (and backward) earlier in the iteration")

    def scale(self, outputs):
        """outputs (a tensor, or lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs.device)
            scale = self._scale if self._scale.device == outputs.device else self._scale.to(
                outputs.device)
            return outputs * scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a tensor or a list/tuple of tensors, got "
                        f"{type(outputs).__name__}")

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale, in place, noting (on the device) whether
        any is inf/NaN. At most once per optimizer between update()s, and before step()."""
        if not self._enabled:
            return
        self._check_started("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: unscale_() has already been called on this "
                               "optimizer since the last update()")
        if state["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.unscale_: unscale_() is being called after step(); "
                               "call it before step(), once per iteration")
        by_device = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.dtype == backend.float16:
                    raise ValueError("GradScaler.unscale_: Attempting to unscale FP16 gradients "
                                     f"(parameter of shape {p.shape}); keep the parameters in "
                                     f"float32 and let autocast cast them")
                by_device.setdefault(p.grad.device, []).append(p.grad.array)
        scale = self._scale.array  # torch takes the reciprocal in float64, then rounds to float32
        inv = backend.xp_of(scale).asarray(1.0 / scale.astype(backend.float64), backend.float32)
        state["found_inf_per_device"] = {
            dev: _unscale_and_check(arrays, backend.to_device(inv, dev))
            for dev, arrays in by_device.items()}
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """unscale_ (if not done yet), then optimizer.step(...) unless a gradient is inf/NaN;
        returns what optimizer.step returned, or None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closure use is not supported when the scaler is "
                               "enabled")
        self._check_started("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.step: step() has already been called since the last "
                               "update()")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        if not state["found_inf_per_device"]:
            raise RuntimeError("GradScaler.step: no inf checks were recorded for this optimizer "
                               "(none of its parameters has a .grad); call backward first")
        backend.not_replayable(  # (what gpuad.compile's fallback warning says, and the way out)
            "steps a GradScaler, whose inf check reads the device on the host, as torch's does "
            "(compile the model alone, gpuad.compile(model), and keep the scaler's steps outside)")
        found = sum(float(backend.asnumpy(flag)) for flag in state["found_inf_per_device"].values())
        result = None if found else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None):
        """Set the scale for the next iteration: new_scale if given, else backoff_factor times the
        scale if any step of this iteration found inf/NaN, growth_factor times it after
        growth_interval clean iterations in a row. Computed on the device, without a host read."""
        if not self._enabled:
            return
        self._check_started("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1:
                    raise ValueError("GradScaler.update: new_scale must be a one-element tensor")
                self._scale.copy_(new_scale.reshape(()).to(backend.float32).to(self._scale.device))
            else:
                self._scale.fill_(float(new_scale))
        else:
            flags = [flag for state in self._per_optimizer_states.values()
                     for flag in state["found_inf_per_device"].values()]
            if not flags:
                raise RuntimeError("GradScaler.update: no inf checks were recorded before "
                                   "update(); call step() (or unscale_()) first")
            found = backend.to_device(flags[0], self._scale.device)
            for flag in flags[1:]:
                found = found + backend.to_device(flag, self._scale.device)
            _update_scale_(self._scale.array, self._growth_tracker.array, found,
                           self._growth_factor, self._backoff_factor, self._growth_interval)
        self._per_optimizer_states = collections.defaultdict(_fresh_state)

    def get_scale(self):
        """The current scale as a Python float (a host read); 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        if self._scale is None:
            return self._init_scale
        return float(backend.asnumpy(self._scale.array))

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self):
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(backend.asnumpy(self._growth_tracker.array))

    def state_dict(self):
        """torch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker
        ({} when disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty, possibly "
                               "because it was saved from a disabled GradScaler")
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._scale is not None:
            self._scale.fill_(self._init_scale)
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(self._init_growth_tracker)


def _unscale_and_check(arrays, inv_scale):
    """Multiply each gradient array by inv_scale (0-d float32, on their device) in place; return a
    0-d float32 array on that device, 1.0 if any entry is inf or NaN. One finiteness reduction per
    array, combined on the device: nothing is read back here."""
    xp = backend.xp_of(inv_scale)
    finite = None
    for a in arrays:
        a *= inv_scale
        ok = xp.isfinite(a).all()
        finite = ok if finite is None else finite & ok
    return xp.asarray(~finite, dtype=backend.float32)  # numpy reductions give scalars: an array


def _update_scale_(scale, tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """torch's _amp_update_scale_ on 0-d device arrays, in place: on overflow scale *= backoff and
    tracker = 0; else tracker += 1, and at growth_interval scale *= growth (if still finite) and
    tracker = 0."""
    xp = backend.xp_of(scale)
    overflow = found_inf > 0
    counted = tracker + 1
    grow = ~overflow & (counted >= growth_interval)
    grown = scale * growth_factor
    new_scale = xp.where(overflow, scale * backoff_factor,
                         xp.where(grow & xp.isfinite(grown), grown, scale))
    new_tracker = xp.where(overflow | grow, 0, counted)
    scale[...] = new_scale
    tracker[...] = new_tracker
