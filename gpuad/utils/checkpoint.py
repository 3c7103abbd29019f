"""Activation checkpointing: trade compute for memory, like torch.utils.checkpoint.

`checkpoint(fn, *args)` runs fn under no_grad, so none of its intermediate arrays are kept, and
gives the result one Node. When the backward walk reaches that Node, fn runs again with grad on
(same random numbers, same autocast settings), on detached copies of the tensor arguments, and the
gradients of that recomputed graph are taken with respect to those copies and to every tensor
requiring grad that fn reached by itself (its parameters, captured by the closure or the Module):
the Node returns all of them to the outer walk, which accumulates them as for any op. So a
parameter used inside fn gets its .grad as usual, gpuad.grad works through a checkpoint, and hooks
on parameters run once. The forward learns which captured tensors it depends on from an op
interceptor (gpuad.ops.add_interceptor), registered only while a checkpoint's forward runs.

Peak memory for a stack of blocks drops from all blocks' activations to the block inputs plus one
block's activations, at the cost of a second forward of each block. Not for functions that modify
state in place (BatchNorm's running statistics move twice: once per forward run).
"""
import contextlib
import threading

from .. import amp, autograd, backend, ops
from ..autograd import Node, enable_grad, no_grad, run_backward
from ..tensor import Tensor


class _Watch(threading.local):
    found = None  # {id: tensor} of grad-requiring op inputs, while a checkpoint's forward runs


_watch = _Watch()


def _note_inputs(name, autocast, args):
    """The ops' interceptor while a checkpoint's forward runs: note grad-requiring inputs."""
    found = _watch.found
    if found is not None:
        for a in args:
            if isinstance(a, Tensor) and a._requires_grad:
                found[id(a)] = a
    return args


@contextlib.contextmanager
def _watching():
    """Collect the tensors requiring grad that ops receive inside the block, as {id: tensor}
    (checkpoint's forward runs under no_grad and learns from this what its node depends on)."""
    outer, found = _watch.found, {}
    _watch.found = found
    ops.add_interceptor(_note_inputs)
    try:
        yield found
    finally:
        ops.remove_interceptor(_note_inputs)
        _watch.found = outer
        if outer is not None:
            outer.update(found)


class _Recompute:
    """What a checkpoint Node keeps to run fn again: fn, the non-tensor arguments, how to put the
    tensor ones back, random generator replays and autocast settings. Tensors live only in the
    Node's inputs, so a backward that frees the Node frees them."""

    def __init__(self, fn, args, kwargs, slots, tensors, rng, autocast, outputs):
        self.fn, self.slots, self.n_args = fn, slots, len(tensors)
        self.args = tuple(None if isinstance(a, Tensor) else a for a in args)
        self.kwargs = {k: None if isinstance(a, Tensor) else a for k, a in kwargs.items()}
        self.rng, self.autocast, self.outputs = rng, autocast, outputs
        # arguments that fn might also reach through its closure (see _checkpoint_vjp)
        self.closed_over = [j for j, t in enumerate(tensors) if t._requires_grad]
        self.grads = {}  # output index -> gradient, filled by the output Nodes of a tuple result

    def __repr__(self):
        return f"<recompute {getattr(self.fn, '__name__', type(self.fn).__name__)}>"


def checkpoint(fn, *args, preserve_rng_state=True, use_reentrant=None, **kwargs):
    """fn(*args, **kwargs), keeping none of fn's intermediate arrays for backward: they are
    recomputed when the gradient reaches the result. fn may return a Tensor or a tuple/list of
    values (the floating Tensors among them get gradients). Tensor arguments, and the parameters and
    other tensors fn uses, receive gradients exactly as without checkpointing (up to float
    rounding of a second run). preserve_rng_state=True replays the random numbers (dropout) of the
    first run; use_reentrant is accepted for torch compatibility and ignored. Under no_grad this is
    just fn(*args, **kwargs)."""
    del use_reentrant
    if not autograd.is_grad_enabled():
        return fn(*args, **kwargs)
    tensors, slots = [], []  # the Tensor arguments, and (position or keyword) for each
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            tensors.append(a)
            slots.append(i)
    for k, a in kwargs.items():
        if isinstance(a, Tensor):
            tensors.append(a)
            slots.append(k)
    rng = []
    if preserve_rng_state:
        for dev in {backend.CPU} | {t.device for t in tensors}:
            gen, replay = backend.random.fork_rng(dev)
            rng.append((dev, gen, replay))
    with _generators_of(rng, forward=True), _watching() as reached, no_grad():
        result = fn(*args, **kwargs)
    single = isinstance(result, Tensor)
    outputs = [result] if single else list(result) if isinstance(result, (tuple, list)) else None
    if outputs is None:
        raise TypeError(f"checkpoint: fn must return a Tensor or a tuple/list, got "
                        f"{type(result).__name__}")
    ids = {id(t) for t in tensors}
    captured = [t for key, t in reached.items() if key not in ids]
    inputs = tuple(tensors) + tuple(captured)
    differentiable = [i for i, o in enumerate(outputs)
                      if isinstance(o, Tensor) and o.dtype.kind in "fc"]
    if not differentiable or not any(t._requires_grad for t in inputs):
        return result  # nothing inside needs a gradient: like a no_grad region
    state = _Recompute(fn, args, kwargs, slots, tensors, rng, amp.get_autocast_state(),
                       (single, len(outputs), differentiable))
    for i in differentiable:
        o = outputs[i]
        if o._node is not None or o._requires_grad or id(o) in ids:
            outputs[i] = o = Tensor(o.array)  # fn returned an input (or a captured tensor) itself
    if single:
        _record(outputs[0], Node("checkpoint", _checkpoint_vjp, inputs, {"state": state}))
        return outputs[0]
    # One Node for the whole call, on a 0-d token: each output's Node stores its gradient in the
    # state and feeds the token, which the walk reaches after all outputs (it is older).
    first = outputs[differentiable[0]]
    token = Tensor(backend.create(first.device, "zeros", (), dtype=first.dtype))
    _record(token, Node("checkpoint", _checkpoint_vjp, inputs, {"state": state}))
    for i in differentiable:
        _record(outputs[i], Node("checkpoint_output", _output_vjp, (token,),
                                 {"state": state, "index": i}))
    return type(result)(*outputs) if hasattr(result, "_fields") else type(result)(outputs)


def _record(t, node):
    t._node, t._requires_grad = node, True


def _output_vjp(g, y, token, *, state, index):
    state.grads[index] = g
    return (Tensor(backend.xp_of(token.array).zeros_like(token.array)),)


def _checkpoint_vjp(g, y, *inputs, state):
    single, n_outputs, differentiable = state.outputs
    grads = {differentiable[0]: g} if single else state.grads
    state.grads = {}
    # backward(create_graph=True): differentiate the real inputs
    create_graph = autograd.is_grad_enabled()
    tensors = inputs[:state.n_args]
    if create_graph:
        own = list(tensors)
    else:
        own = [Tensor(t.array, requires_grad=t._requires_grad) for t in tensors]
    args, kwargs = list(state.args), dict(state.kwargs)
    for slot, t in zip(state.slots, own):
        if isinstance(slot, int):
            args[slot] = t
        else:
            kwargs[slot] = t
    with _generators_of(state.rng, forward=False), amp.autocast_state(state.autocast), \
            autograd.forward_in_backward(), enable_grad():
        result = state.fn(*args, **kwargs)
    outputs = [result] if single else list(result)
    if len(outputs) != n_outputs:
        raise RuntimeError(f"checkpoint: the recomputation returned {len(outputs)} values, the "
                           f"forward {n_outputs}; fn must be deterministic in its structure")
    pairs = [(outputs[i], grads[i]) for i in differentiable
             if i in grads and isinstance(outputs[i], Tensor) and outputs[i].requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    # fn may also reach a tensor argument through its closure (the real one, not the copy): ask
    # for those too and add them up. Unless fn really does, this costs nothing.
    again = [] if create_graph else state.closed_over
    wanted = own + list(inputs[state.n_args:]) + [tensors[j] for j in again]
    found = run_backward([o for o, _ in pairs], [gi for _, gi in pairs], retain_graph=create_graph,
                         create_graph=create_graph, inputs=wanted, allow_unused=True)
    grads = found[:len(inputs)]
    for j, extra in zip(again, found[len(inputs):]):
        if extra is not None:
            grads[j] = extra if grads[j] is None else grads[j] + extra
    return tuple(grads)


class _generators_of:
    """Draw from the forked generators: in the forward only the CUDA ones (the host draws stay
    on the real generators); in the recomputation fresh replays of all of them."""

    def __init__(self, rng, forward):
        self.rng, self.forward, self.scopes = rng, forward, []

    def __enter__(self):
        for dev, gen, replay in self.rng:
            use = gen if self.forward else replay()
            if use is not None:
                scope = backend.random.using_generator(dev, use)
                scope.__enter__()
                self.scopes.append(scope)
        return self

    def __exit__(self, *exc):
        while self.scopes:
            self.scopes.pop().__exit__(None, None, None)


def checkpoint_sequential(functions, segments, input, preserve_rng_state=True):
    """Run a Sequential (or a list of modules/functions) in `segments` checkpointed chunks, like
    torch.utils.checkpoint.checkpoint_sequential; the last chunk runs normally (its activations are
    needed at once by the backward)."""
    functions = list(functions.children() if hasattr(functions, "children") else functions)
    if not 0 < segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and the number of "
                         f"functions ({len(functions)}), got {segments}")
    size = -(-len(functions) // segments)

    def run(chunk):
        def forward(x):
            for f in chunk:
                x = f(x)
            return x
        return forward
    chunks = [functions[i:i + size] for i in range(0, len(functions), size)]
    for chunk in chunks[:-1]:
        input = checkpoint(run(chunk), input, preserve_rng_state=preserve_rng_state)
    return run(chunks[-1])(input)
