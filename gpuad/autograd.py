"""The tape: Nodes recorded by ops, grad modes, and the one reverse walk that applies their rules.

Sits just above the backend and below tensor.py and ops/: ops record a Node on each output that
needs a gradient; backward() and grad() walk those Nodes once, newest first, without recursion. It
imports only the backend seam (to make seed gradients and check values), knows no op by name, and
handles tensors by their attributes (array, _node, grad), never by importing Tensor.
"""
import contextlib
import functools
import inspect
import itertools
import os
import sys
import threading

from . import backend


class _GradMode(threading.local):
    enabled = True
    in_backward = False  # rules' own ops skip the forward anomaly check; the walk checks them
    # whether the running walk keeps the graph (retain_graph): a rule holding what it saved in
    # one box may empty it as it runs (gpuad.compile's backward frees residuals as it goes)
    retaining = False
    inference = False  # inside gpuad.inference_mode (it also turns recording off)


grad_mode = _GradMode()


def is_grad_enabled():
    return grad_mode.enabled


def is_in_backward():
    """True while a backward walk runs its rules (their ops are not forward ops: autocast leaves
    them alone and the anomaly check looks at their results, not their inputs)."""
    return grad_mode.in_backward


@contextlib.contextmanager
def forward_in_backward():
    """Run forward ops inside a backward rule (activation checkpointing recomputes its block)."""
    outer, grad_mode.in_backward = grad_mode.in_backward, False
    try:
        yield
    finally:
        grad_mode.in_backward = outer


class _GradModeSwitch:
    """Sets grad mode for this thread on entry and restores it on exit (also on exceptions); used
    as a decorator it does so around every call, and around every resumption of a generator."""
    mode = True

    def __enter__(self):
        self.prev, grad_mode.enabled = grad_mode.enabled, self.mode
        return self

    def __exit__(self, *exc):
        grad_mode.enabled = self.prev

    def _fresh(self):
        """A switch like this one, for one call of a function it decorates."""
        return _switch(self.mode)

    def __call__(self, fn):
        fresh = self._fresh

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with fresh():
                return fn(*args, **kwargs)

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            gen, sent = fn(*args, **kwargs), None
            while True:
                with fresh():
                    try:
                        item = gen.send(sent)
                    except StopIteration as stop:
                        return stop.value
                sent = yield item
        return generator_wrapper if inspect.isgeneratorfunction(fn) else wrapper


def _switch(mode):
    switch = _GradModeSwitch()
    switch.mode = mode
    return switch


class no_grad(_GradModeSwitch):
    """Record nothing inside this block: `with gpuad.no_grad():` or `@gpuad.no_grad()`."""
    mode = False


class enable_grad(_GradModeSwitch):
    """Record again inside a no_grad block."""
    mode = True


class set_grad_enabled(_GradModeSwitch):
    """Set grad mode now (like torch, a plain call takes effect at once), or for a with block."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self.prev, grad_mode.enabled = grad_mode.enabled, self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        grad_mode.enabled = self.prev  # used as a decorator: undo the switch made in __init__
        return super().__call__(fn)


class inference_mode(_GradModeSwitch):
    """torch.inference_mode: record nothing inside, as no_grad (`with gpuad.inference_mode():`,
    `@gpuad.inference_mode()` or `@gpuad.inference_mode`); inference_mode(False) records again,
    as torch's does. gpuad has no separate inference tensors: what is made inside is an ordinary
    tensor, which torch would refuse to save for a backward later."""

    def __new__(cls, mode=True):
        if callable(mode):  # @gpuad.inference_mode, without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.inference = bool(mode)
        self.mode = not self.inference

    def __enter__(self):
        self.prev_inference, grad_mode.inference = grad_mode.inference, self.inference
        return super().__enter__()

    def __exit__(self, *exc):
        grad_mode.inference = self.prev_inference
        super().__exit__(*exc)

    def _fresh(self):
        return inference_mode(self.inference)


def is_inference_mode_enabled():
    return grad_mode.inference


# ---- anomaly detection and debug mode: off by default, one list lookup per op when off ---------
ANOMALY = [False]
DEBUG = [False]
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(RuntimeError):
    """An op produced NaN or Inf while anomaly detection was on."""


def set_detect_anomaly(mode):
    """Globally turn anomaly detection on or off (torch.autograd.set_detect_anomaly)."""
    ANOMALY[0] = bool(mode)


def is_anomaly_enabled():
    return ANOMALY[0]


class detect_anomaly:
    """Within this block, the first op whose forward or backward produces NaN or Inf raises
    AnomalyError naming the op, the user code line that created it and the input shapes. Costs a
    finiteness check (a device sync on CUDA) per op: a debugging tool, like torch's."""

    def __init__(self, mode=True):
        self.mode, self.prev = bool(mode), ANOMALY[0]

    def __enter__(self):
        self.prev, ANOMALY[0] = ANOMALY[0], self.mode
        return self

    def __exit__(self, *exc):
        ANOMALY[0] = self.prev


def set_debug(mode):
    """Verbose checks for debugging a model: op errors also give every input's dtype and device
    and the user code line, and Module errors say which submodule raised."""
    DEBUG[0] = bool(mode)


def is_debug_enabled():
    return DEBUG[0]


def user_site():
    """'file:line' of the innermost caller outside the gpuad package (where a user called an op)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return "<unknown>" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def describe_shapes(values):
    """'(2, 3), (3,), 0.5': the shapes of arrays and the values of scalars, for error messages."""
    return ", ".join(str(tuple(v.shape)) if hasattr(v, "shape") else repr(v) for v in values)


def check_finite(what, name, site, output, inputs):
    """Raise AnomalyError if `output` (an array) holds NaN or Inf."""
    if output.dtype.kind in "fc" and not bool(backend.xp_of(output).isfinite(output).all()):
        kind = "NaN" if bool(backend.xp_of(output).isnan(output).any()) else "Inf"
        raise AnomalyError(f"detect_anomaly: {what} of '{name}' produced {kind} (output shape "
                           f"{tuple(output.shape)}, inputs of shapes {describe_shapes(inputs)}); "
                           f"the op was called at {site}")


_creation_order = itertools.count()
# In-place updates: every one takes the next number from this clock and stamps it on the tensor
# (Tensor._version). A node remembers the clock when it was recorded; if the clock has not moved
# by backward time, nothing was modified and the check costs one comparison.
INPLACE_CLOCK = [0]


class Node:
    """One recorded op application: its rule, its inputs, the in-place clock at record time, and a
    creation number (a node is created after the nodes of its inputs, so it orders the walk)."""
    __slots__ = ("name", "vjp", "inputs", "kwargs", "clock", "seq", "site")  # site: debug only

    def __init__(self, name, vjp, inputs, kwargs):
        self.name, self.vjp, self.inputs, self.kwargs = name, vjp, inputs, kwargs
        self.clock = INPLACE_CLOCK[0]
        self.seq = next(_creation_order)

    def __repr__(self):
        return f"<{self.name}Backward>"


def freed_graph_error(node):
    """The error of a walk that meets `node` after a backward freed it."""
    return RuntimeError(
        f"backward: trying to backward through the graph a second time (through "
        f"'{node.name}'): its saved tensors were freed by the first backward. Pass "
        "retain_graph=True to the first backward() or grad() call if you need to backward "
        "through it again.")


def _check_saved(t, node):
    """Raise if the node was freed or a tensor it saved changed since (see INPLACE_CLOCK)."""
    if node.inputs is None:
        raise freed_graph_error(node)
    if t._version > node.clock or any(getattr(x, "_version", 0) > node.clock for x in node.inputs):
        raise RuntimeError(
            f"backward: a tensor saved by '{node.name}' was modified in place after it was used "
            f"(its version changed), so its gradient would be wrong. Use an out-of-place operation "
            f"(x = x + y rather than x += y), or .clone() the tensor before modifying it.")


def reachable(roots, leaves=True):
    """Every tensor that `roots` depend on through recorded Nodes, roots included, each once, in
    no particular order (leaves=False: only those with a Node). An explicit stack, so a
    100,000-op chain is fine; a node freed by a backward is not entered (its tensor is still
    listed)."""
    stack = [t for t in roots if hasattr(t, "_node") and (leaves or t._node is not None)]
    seen = set(map(id, stack))
    found = []
    while stack:  # the per-backward hot loop: plain list and set operations only
        t = stack.pop()
        found.append(t)
        node = t._node
        if node is None or node.inputs is None:
            continue
        for x in node.inputs:
            x_node = getattr(x, "_node", _NOT_A_TENSOR)
            if x_node is _NOT_A_TENSOR or (x_node is None and not leaves) or id(x) in seen:
                continue
            seen.add(id(x))
            stack.append(x)
    return found


_NOT_A_TENSOR = object()


def recorded_order(roots):
    """The non-leaf tensors that `roots` depend on, newest node first: consumers before producers
    (a node is always created after the nodes of its inputs), the order backward visits them."""
    found = reachable(roots, leaves=False)
    found.sort(key=_node_seq, reverse=True)
    return found


def _node_seq(t):
    return t._node.seq


def _leading_to(order, wanted):
    """For grad(outputs, inputs): the tensors of `order` to visit (a wanted one, or one whose
    rule feeds a wanted one) and those whose rule must run, so nothing upstream of the inputs
    runs a rule, fires a hook or is freed."""
    leads, run = set(wanted), set()
    for t in reversed(order):  # producers first, so every input's answer is known
        # a freed node may have led to an input: visit it, so the walk says it was freed; so
        # may one whose input an in-place write has since given a newer node: the walk refuses it
        if (t._node.inputs is None or any(id(x) in leads for x in t._node.inputs)
                or _rebound(t._node)):
            run.add(id(t))
            leads.add(id(t))
    return [t for t in order if id(t) in leads], run


def _rebound(node):
    """Whether an input of node has a newer node than node itself: a recorded in-place write
    (x[i] = v) gave it one, so node's edge no longer leads to the value it used."""
    return any(getattr(getattr(x, "_node", None), "seq", -1) > node.seq for x in node.inputs)


def _accumulate(pending, x, g):
    entry = pending.get(id(x))
    if entry is None:
        pending[id(x)] = [x, g, False]  # first contribution stored as is: a rule may share it
    elif entry[2] and not g._requires_grad:  # a recorded g (create_graph) must stay recorded
        entry[1].array += g.array  # an array this walk allocated and nobody else holds
    else:
        entry[1] = entry[1] + g
        entry[2] = not entry[1]._requires_grad


def _run_hooks(t, g):
    for hook in t._hooks or ():
        replaced = hook(g)
        if replaced is not None:
            g = replaced
    return g


# How many times something changed that a compiled step (gpuad.compile) checks only when this
# count has moved: a tensor's requires_grad or hooks (tensor.py), a module's parameters, buffers or
# layers (nn/module.py's registries). One comparison per replay instead of one per parameter.
CHANGES = [0]


class RemovableHandle:
    """What registering a hook returns: remove() unregisters it (torch's RemovableHandle)."""

    def __init__(self, owner, attribute, hook):
        self.owner, self.attribute, self.hook = owner, attribute, hook

    def remove(self):
        CHANGES[0] += 1
        hooks = getattr(self.owner, self.attribute, None) or []
        setattr(self.owner, self.attribute, [h for h in hooks if h is not self.hook] or None)


# Set once a post-accumulate-grad hook exists (Tensor.register_post_accumulate_grad_hook): until
# then backward() skips the scan below, so programs without hooks pay nothing for them.
POST_ACCUMULATE_HOOKS = [False]


def _final_uses(order):
    """{i: leaves}: the hooked leaves that get no more gradient once order[i]'s rule has run. Their
    .grad is written and their hooks fired right there, mid-walk, so DistributedDataParallel
    can start reducing a bucket while the rest of backward still runs."""
    last = {}
    for i, t in enumerate(order):
        for x in t._node.inputs or ():
            if getattr(x, "_node", 0) is None and getattr(x, "_post_accumulate_hooks", None):
                last[id(x)] = (i, x)
    ready = {}
    for i, x in last.values():
        ready.setdefault(i, []).append(x)
    return ready


def _deposit(leaf, g, owned, deposited):
    """Write a leaf's finished gradient into .grad (after its hooks), then run its
    post-accumulate hooks."""
    g = _run_hooks(leaf, g) if leaf._hooks else g
    leaf.grad = _unaliased(g, owned, deposited) if leaf.grad is None else leaf.grad + g
    if POST_ACCUMULATE_HOOKS[0]:
        for hook in getattr(leaf, "_post_accumulate_hooks", None) or ():
            hook(leaf)


def _unaliased(g, owned, deposited):
    """g, or a copy when another tensor may share its array (a shared rule output or a view)."""
    if owned or g._requires_grad or (g.array.base is None and id(g.array) not in deposited):
        deposited.add(id(g.array))
        return g
    return type(g)(g.array.copy())


def seed_gradient(t, g, what="backward", keyword="gradient"):
    """The gradient a walk starts from at output `t`: ones for a one-element output, else `g`
    checked against t's shape and device (a Tensor, array or nested list)."""
    if g is None:
        if t.array.size != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar outputs, "
                               f"but the output has shape {t.shape}; pass {keyword}= (a tensor of "
                               f"that shape) to {what}()")
        return type(t)(backend.xp_of(t.array).ones_like(t.array))
    if not hasattr(g, "_node"):
        g = type(t)(backend.asarray(g, t.dtype, t.device))
    if g.shape != t.shape:
        raise RuntimeError(f"{what}: {keyword} has shape {g.shape} but the output has shape "
                           f"{t.shape}; they must match")
    if g.device != t.device:
        raise RuntimeError(f"{what}: {keyword} is on {g.device} but the output is on {t.device}; "
                           f"move it with .to({str(t.device)!r})")
    return g


def run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None, allow_unused=False,
                 what="backward", keyword="gradient"):
    """The reverse walk shared by Tensor.backward (inputs=None: fill leaf .grad) and grad()."""
    walk = _Walk(inputs, retain_graph)
    for t, g in zip(outputs, grad_outputs):
        if not t.requires_grad:
            raise RuntimeError(f"{what}: element of outputs does not require grad and has no "
                               f"grad_fn; did you compute it under no_grad() or from tensors with "
                               f"requires_grad=False?")
        seed = seed_gradient(t, g, what, keyword)
        if g is not None:
            walk.deposited.add(id(seed.array))  # the caller's array: never hand it out as a .grad
        _accumulate(walk.pending, t, seed)
    prev = grad_mode.enabled, grad_mode.in_backward, grad_mode.retaining
    grad_mode.enabled = create_graph  # rules are gpuad ops: recorded only when asked to
    grad_mode.in_backward, grad_mode.retaining = True, bool(retain_graph)
    quiet = backend.silence_float_errors()  # NaN and Inf silently, as in torch: once per walk
    try:
        walk.run(outputs)
    finally:
        grad_mode.enabled, grad_mode.in_backward, grad_mode.retaining = prev
        backend.restore_float_errors(quiet)
    return walk.results(allow_unused)


class _Walk:
    """One reverse walk: the gradients pending per tensor, visited newest node first."""

    def __init__(self, inputs, retain_graph):
        self.inputs, self.retain_graph = inputs, retain_graph
        self.pending = {}  # id(tensor) -> [tensor, gradient so far, whether this walk owns it]
        self.deposited = set()  # ids of arrays handed out as some .grad
        self.wanted = None if inputs is None else {id(x): i for i, x in enumerate(inputs)}
        self.found = [None] * (0 if inputs is None else len(inputs))

    def run(self, outputs):
        order, run, ready = self._plan(outputs)
        for i, t in enumerate(order):
            if ready and i - 1 in ready:  # their last consumer ran in the previous step
                for leaf in ready.pop(i - 1):
                    self._deposit_leaf(leaf)
            order[i] = None  # the walk's last reference: t's array can go once its rule has run
            entry = self.pending.pop(id(t), None)
            if entry is not None:
                self._visit(t, entry[1], run)
        for leaf, g, owned in self.pending.values():  # what is left belongs to leaves
            if self.wanted is None:
                _deposit(leaf, g, owned, self.deposited)
            elif id(leaf) in self.wanted:
                self.found[self.wanted[id(leaf)]] = _run_hooks(leaf, g)

    def _plan(self, outputs):
        """The tensors to visit in order, those whose rule must run (grad(): only what leads to
        an input) and the hooked leaves to finish early (see _final_uses)."""
        order = recorded_order(outputs)
        if self.wanted is not None:
            order, run = _leading_to(order, self.wanted)
            return order, run, None
        return order, None, _final_uses(order) if POST_ACCUMULATE_HOOKS[0] else None

    def _deposit_leaf(self, leaf):
        entry = self.pending.pop(id(leaf), None)
        if entry is not None:
            _deposit(*entry, self.deposited)

    def _visit(self, t, g, run):
        """Hand t's finished gradient to whoever wants it, then run t's rule into its inputs."""
        node = t._node
        if node.inputs is None or node.clock != INPLACE_CLOCK[0]:
            _check_saved(t, node)  # raises if freed, or if a saved tensor changed since
        g = _run_hooks(t, g) if t._hooks else g
        if self.wanted is not None:
            if id(t) in self.wanted:
                self.found[self.wanted[id(t)]] = g
        elif t._retains_grad:
            t.grad = _unaliased(g, False, self.deposited) if t.grad is None else t.grad + g
        if run is not None and id(t) not in run:
            return  # a wanted tensor with nothing wanted upstream
        inputs = node.inputs
        grads = node.vjp(g, t, *inputs, **node.kwargs)
        if ANOMALY[0]:
            for gx in grads:
                if gx is not None:
                    check_finite("backward", node.name, getattr(node, "site", "<unknown>"),
                                 gx.array, inputs)
        for x, gx in zip(inputs, grads):
            if gx is None or not getattr(x, "_requires_grad", False):
                continue
            if gx.array.shape != x.array.shape:
                gx = gx.sum_to_size(x.array.shape)  # the engine's one unbroadcast
            if gx.array.dtype != x.array.dtype:
                gx = gx.to(x.array.dtype)  # a float32 input gets a float32 gradient, as in PyTorch
            _accumulate(self.pending, x, gx)
        if not self.retain_graph:
            node.inputs = None  # frees what the node saved; a second backward raises
            node.kwargs.pop("saved", None)  # and what its forward kept for it (ops.Saving)

    def results(self, allow_unused):
        if self.inputs is not None and not allow_unused:
            for i, (x, r) in enumerate(zip(self.inputs, self.found)):
                if r is None:
                    raise RuntimeError(f"grad: input {i} (shape {x.shape}) was not used to compute "
                                       f"the outputs; pass allow_unused=True to get None for it")
        return self.found


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of outputs w.r.t. inputs, returned as a tuple; no .grad is touched."""
    single = not isinstance(outputs, (tuple, list))
    outputs = [outputs] if single else list(outputs)
    inputs = [inputs] if not isinstance(inputs, (tuple, list)) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (tuple, list)):
        grad_outputs = [grad_outputs]
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {x.shape}) does not require grad")
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(run_backward(outputs, grad_outputs, retain, create_graph, inputs, allow_unused,
                              what="grad", keyword="grad_outputs"))


def __getattr__(name):
    # gpuad.autograd.Function (torch's name) is a user-defined op, so it lives with the ops,
    # above this module: the one name here resolved upward, at first use.
    if name in ("Function", "FunctionCtx"):
        from .ops import function
        return getattr(function, name)
    raise AttributeError(f"module 'gpuad.autograd' has no attribute {name!r}")
