"""Optimizer: the base of gpuad.optim, after nn in the data flow.

It owns parameter groups, per-parameter state and the step loop; each optimizer adds one `_update`
on raw arrays. Nothing here records on the tape or moves data to the host during a step.
"""
import threading

import numpy

from .. import backend
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor

_scratch = threading.local()


def layout_free(update):
    """Mark an optimizer's `_update(p, g, state, group)` whose host numbers (the Python floats it
    hands to array code, such as Adam's bias corrections) and new state numbers (its step count)
    come from the group's settings and the state's numbers alone, never from p's shape or dtype.
    A gpuad.compile replay, which works out these numbers on the host every step, then does so
    once for all the parameters of a group that share them, not once per parameter. A subclass
    that overrides `_update` is not marked unless it says so too."""
    update.layout_free = True
    return update


def scratch(like, slot=0):
    """An uninitialised array of like's shape, dtype and device for an update to compute in; every
    update on this thread reuses it (slots 0, 1, ... are distinct arrays), so nothing of it may
    outlive the call. A fresh temporary of a big parameter's size is a fresh mmap on the CPU:
    page faults each step, which made SGD's update 5x slower than the same arithmetic in place."""
    try:
        buffers, views = _scratch.buffers, _scratch.views
    except AttributeError:
        buffers, views = _scratch.buffers, _scratch.views = {}, {}
    device = None if type(like) is numpy.ndarray else backend.device_of(like)
    key = (type(like), like.dtype, device, slot)
    view = views.get((key, like.shape))  # an update per parameter per step: keep the views too
    if view is not None:
        return view
    size = like.size
    flat = buffers.get(key)
    if flat is None or flat.size < size:
        flat = buffers[key] = backend.create(device or backend.CPU, "empty", max(size, 1),
                                             dtype=like.dtype)
        views.clear()  # views of the smaller buffer would keep it alive
    view = views[key, like.shape] = flat[:size].reshape(like.shape)
    return view


def check_nonnegative(owner, **hyper):
    for name, value in hyper.items():
        if not value >= 0:  # `not >=` also refuses NaN
            raise ValueError(f"{owner}: invalid {name} {value!r}; it must be >= 0")


def check_betas(owner, betas):
    for i, beta in enumerate(betas):
        if not 0 <= beta < 1:
            raise ValueError(f"{owner}: invalid beta parameter at index {i}: {beta!r}; each "
                             f"must be in [0, 1)")


def refuse_torch_only_options(owner, capturable=False, differentiable=False):
    """torch's switches that gpuad cannot honour: refuse them rather than ignore them (foreach
    and fused, choices of kernel that change no result, are accepted and ignored by the
    optimizers themselves: gpuad's updates are fused already, and gpuad.compile replays them over
    flat buffers)."""
    if differentiable:
        raise ValueError(f"{owner}: differentiable=True is not supported; gpuad optimizers update "
                         f"parameters in place without recording on the tape")
    if capturable:
        raise ValueError(f"{owner}: capturable=True is not supported; gpuad computes the step's "
                         f"scalars on the host, so a captured step would freeze them (see "
                         f"gpuad.cuda.graph)")


def check_adam_options(owner, lr, betas, eps, weight_decay, capturable, differentiable, **more):
    """The constructor checks of the Adam family (NAdam, RAdam, Adamax): non-negative
    hyperparameters (lr, eps, weight_decay and `more`), betas in [0, 1), no torch-only switches."""
    check_nonnegative(owner, lr=lr, eps=eps, weight_decay=weight_decay, **more)
    check_betas(owner, betas)
    refuse_torch_only_options(owner, capturable=capturable, differentiable=differentiable)


def init_state(state, p, *zeros, **host):
    """A parameter's state on its first step, in torch's key order: step 0, the host scalars
    `host`, then each of `zeros` as a zero array like p."""
    state["step"] = 0
    state.update(host)
    xp = backend.xp_of(p)
    for name in zeros:
        state[name] = xp.zeros_like(p)


def decayed_gradient(p, g, group):
    """g negated under maximize, then weight decay: L2 (added to g) or, with the group's
    decoupled_weight_decay, AdamW's p *= 1 - lr * weight_decay (in place)."""
    g = -g if group["maximize"] else g
    decay = group["weight_decay"]
    if decay and group["decoupled_weight_decay"]:
        p *= 1 - group["lr"] * decay
    elif decay:
        g = g + decay * p
    return g


def lerp_inplace(start, end, weight):
    """start += weight * (end - start) in place, in the two forms torch's lerp_ uses (the second
    is exact at weight 1)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Optimizer:
    """Base class: param groups, lazily created per-parameter `state`, `zero_grad`, `step`,
    `state_dict`/`load_state_dict` in torch.optim.Optimizer's format. Subclasses write
    `_update(p, g, state, group)`: update the raw array `p` in place from the gradient array `g`."""

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, not a "
                            f"Tensor; pass [tensor] or model.parameters()")
        self.defaults = dict(defaults)
        self.state = {}  # parameter Tensor (hashed by identity) -> dict of raw arrays and steps
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict with "params" and optional hyper-parameters (the rest come from defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, "
                            f"got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: parameters must be an ordered collection (a list), not a "
                            f"set: the order of a set changes between runs")
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} is not a leaf tensor (it was computed by "
                                 f"an op); optimize the tensor it came from, or .detach() it")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears twice, in one "
                                 f"group or in two; each parameter belongs to exactly one group")
            seen.add(id(p))
        group = {**self.defaults, **param_group, "params": params}
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's .grad (default), or zero it in place with set_to_none=False."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.requires_grad:  # a gradient recorded with create_graph=True
                        p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a .grad; `closure` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._check_grads()
        tracer = backend.TRACER[0]  # gpuad.compile, recording a step: it runs each update
        update, states = self._update, self.state
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    p._bump_version()  # a retained graph that saved p now refuses to backward
                    if tracer is not None:
                        tracer.optimizer_update(self, update, p, group)
                        continue
                    state = states.get(p)
                    if state is None:
                        state = states[p] = {}
                    array = p.array
                    scope = backend.gpu_scope(array)  # state and kernels on p's GPU
                    if scope is None:
                        update(array, grad.array, state, group)
                    else:
                        with scope:
                            update(array, grad.array, state, group)
        return loss

    def _check_grads(self):
        """Refuse a step before touching anything when a gradient does not fit its parameter."""
        for i, p in enumerate(p for group in self.param_groups for p in group["params"]):
            g = p.grad
            if g is None:
                continue
            a, ga = p.array, g.array  # compared as arrays: no Device objects on the common path
            if ga.shape != a.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape {p.shape} but "
                                 f"its gradient has shape {g.shape}; no parameter was updated")
            if not backend.same_device(ga, a):
                raise RuntimeError(f"{type(self).__name__}: parameter {i} is on {p.device} but its "
                                   f"gradient is on {g.device}; no parameter was updated (move the "
                                   f"model before backward, or clear .grad after moving it)")

    _flat_state = ()  # state keys whose arrays need not have their parameter's shape (LBFGS)

    def _update(self, p, g, state, group):
        raise NotImplementedError(f"{type(self).__name__} must define _update(p, g, state, group)")

    def state_dict(self):
        """{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}, like torch;
        state arrays come back as Tensors sharing this optimizer's memory (torch returns
        references)."""
        index, groups = {}, []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**group, "params": [index[id(p)] for p in group["params"]]})
        state = {index[id(p)]: {k: _exported(v) for k, v in s.items()}
                 for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and hyper-parameters saved by state_dict(); state arrays are copied onto
        each parameter's device and dtype."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            is_dict = isinstance(state_dict, dict)
            keys = list(state_dict)[:4] if is_dict else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected an optimizer state dict with "
                             f"'state' and 'param_groups' (from optimizer.state_dict()), got "
                             f"{keys}; a model's state dict goes to model.load_state_dict")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved)} parameter "
                             f"group(s) but this optimizer has {len(self.param_groups)}")
        for i, (group, s) in enumerate(zip(self.param_groups, saved)):
            if len(group["params"]) != len(s["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(s['params'])} parameters in the state dict but "
                                 f"{len(group['params'])} in this optimizer")
        params = {int(i): p for group, s in zip(self.param_groups, saved)
                  for i, p in zip(s["params"], group["params"])}
        state = {}
        for i, entry in state_dict["state"].items():
            if int(i) not in params:
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, which no "
                                 f"parameter group lists")
            p = params[int(i)]
            state[p] = {k: _restore(v, p, k, name, k in self._flat_state)
                        for k, v in entry.items()}
        self.state = state
        # defaults first: a checkpoint from before an option existed still loads
        self.param_groups = [{**self.defaults, **s, "params": group["params"]}
                             for group, s in zip(self.param_groups, saved)]

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


_SCALAR_STATE = {"mu_product", "eta", "mu", "t", "H_diag", "prev_loss", "ro", "al"}


def _exported(value):
    if isinstance(value, list):  # LBFGS's histories
        return [_exported(v) for v in value]
    return Tensor(value) if backend.is_array(value) else value


def _restore(value, p, key, name, flat=False):
    if isinstance(value, (list, tuple)):
        return [_restore(v, p, key, name, flat) for v in value]
    if isinstance(value, Tensor):
        value = value.array
    if not backend.is_array(value):
        return value  # steps and other Python values
    if key == "step":
        return int(value.item())  # a torch-style step tensor; load time, so the sync is harmless
    if key in _SCALAR_STATE:  # torch keeps these as 0-d tensors, gpuad as Python floats
        return float(value.item())
    if value.shape != p.shape and not flat:
        raise ValueError(f"{name}.load_state_dict: state {key!r} has shape {value.shape} but its "
                         f"parameter has shape {p.shape}")
    return backend.to_device(value, p.device).astype(p.dtype)  # astype copies: no aliasing
