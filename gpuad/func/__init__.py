"""gpuad.func: JAX / torch.func-style transforms (vjp, grad, jvp, jacrev, jacfwd, hessian, hvp,
vmap, functional_call).

Sits on top of the tape: the differentiating transforms are one trace of f plus
autograd.run_backward. Layered as JAX's api.py: `vjp` traces f once on differentiable copies of its
inputs and hands back a pullback; grad/value_and_grad pull back a one; jvp is the vjp of that
(linear) pullback; jacrev pulls back basis cotangents, jacfwd pushes forward basis tangents; hessian
is jacfwd(jacrev). vmap (vmap.py, batching.py) runs ops on whole batches; inside it the trace lifts
its inputs to every running vmap's batch, so gradients there are per example.
"""
from .. import autograd, ops
from ..autograd import enable_grad, is_grad_enabled, run_backward
from ..creation import ones_like, tensor, zeros, zeros_like
from ..tensor import Tensor
from .stateless import functional_call  # noqa: F401
from .vmap import (  # noqa
    active_levels,
    record_fallbacks,
    to_levels,
    tree_leaves,
    tree_rebuild,
    unwrapped,
    vmap,
    wrap_levels,
)


# ---- tracing: the one place that runs f ----------------------------------------------------------
# A transform runs f on copies of its inputs. If the caller is recording (grad mode on and the input
# requires grad: an outer transform's input, or a user leaf), the copy is a clone on the caller's
# tape, so whatever the transform returns stays differentiable for the caller (grad(grad(f))).
# Otherwise the copy is a fresh leaf tagged with its transform's _Level. After f returns, the
# transform records its backward (create_graph) only if its outputs reach a leaf someone may still
# differentiate: a user leaf, or the input of a transform that is still tracing.
class _Level:
    __slots__ = ("tracing",)

    def __init__(self):
        self.tracing = True


class _Input(Tensor):
    """A transform's differentiable copy of one of its inputs (a leaf of that transform only)."""
    __slots__ = ("_level",)


def _lift(x, i, level, recording, batches):
    if not isinstance(x, Tensor):
        raise TypeError(f"gpuad.func: input {i} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind not in "fc":
        raise TypeError(f"gpuad.func: input {i} is {x.dtype}; only floating point inputs can be "
                        f"differentiated (convert it with .double() or .float())")
    if batches:  # inside vmap: every example gets its own copy, so its gradient is its own
        x = to_levels(x, batches)
    if recording and x.requires_grad:
        return ops.clone(x)  # on the caller's tape: an outer transform differentiates through us
    copy = _Input(x.array.copy())  # a copy: later in-place edits of x cannot change our pullback
    copy.requires_grad = True
    copy._level = level
    return copy


def _reaches_live_leaf(roots):
    """Whether the graph of roots reaches a leaf requiring grad that someone may still
    differentiate with respect to (anything but the inputs of finished transforms)."""
    return any(t.requires_grad and t.grad_fn is None and
               (not isinstance(t, _Input) or t._level.tracing)
               for t in autograd.reachable(map(unwrapped, roots)))


def _outputs(out, name):
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{name}: f must return a Tensor or a tuple of Tensors, but output {k} "
                            f"is {type(o).__name__}")
    return outs


def _export(tree, recording):
    """Tensors of an output or aux as the caller sees them: detached unless still differentiable."""
    if isinstance(tree, Tensor):
        return tree if recording and _reaches_live_leaf([tree]) else tree.detach()
    if isinstance(tree, (tuple, list)):
        return type(tree)(_export(t, recording) for t in tree)
    if isinstance(tree, dict):
        return {k: _export(v, recording) for k, v in tree.items()}
    return tree


def _batched(t, batches, like):
    """A cotangent (or output) as the plain tensor of the whole batch, like to_levels."""
    if not isinstance(t, Tensor):
        t = tensor(t, dtype=like.dtype, device=like.device)
    return to_levels(t, batches)


def _trace(f, primals, has_aux, name):
    """Run f once on copies of primals; return (outputs as f gave them, aux, pullback), where
    pullback(cotangents, one per output or None) -> one gradient per primal. Inside vmap the
    copies are of the whole batch and the walk runs on the batch, never on BatchedTensors."""
    recording = is_grad_enabled()
    level = _Level()
    batches = active_levels()
    try:
        with enable_grad():  # like torch.func: a transform differentiates even under no_grad
            inputs = tuple(_lift(p, i, level, recording, batches) for i, p in enumerate(primals))
            result = f(*(wrap_levels(x, batches) for x in inputs))
    finally:
        level.tracing = False
    aux = None
    if has_aux:
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{name}: with has_aux=True, f must return a pair (output, aux)")
        result, aux = result
    outs = _outputs(result, name)
    raw = tuple(to_levels(o, batches) for o in outs) if batches else outs
    keep = recording and _reaches_live_leaf(raw)

    def pullback(cotangents):
        pairs = [(o, _batched(c, batches, o) if batches else c)
                 for o, c in zip(raw, cotangents) if c is not None and o.requires_grad]
        create = is_grad_enabled() and (keep or any(getattr(c, "requires_grad", False)
                                                    for _, c in pairs))
        grads = [None] * len(inputs)
        if pairs:
            grads = run_backward([o for o, _ in pairs], [c for _, c in pairs], retain_graph=True,
                                 create_graph=create, inputs=inputs, allow_unused=True)
        return tuple(wrap_levels(zeros_like(x) if g is None else g, batches)
                     for g, x in zip(grads, inputs))

    exported = tuple(o if keep else o.detach() for o in outs)
    out = exported if isinstance(result, (tuple, list)) else exported[0]
    return out, _export(aux, recording), pullback


def _argnums(argnums, n_args, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(i, int) and -n_args <= i < n_args for i in nums):
        raise ValueError(f"{name}: argnums={argnums!r} must be an int or a non-empty tuple of ints "
                         f"indexing the {n_args} positional arguments")
    return tuple(i % n_args for i in nums)


def _trace_argnums(f, args, kwargs, argnums, has_aux, name):
    """_trace of f seen as a function of args[argnums] only (the other arguments held fixed);
    each of those may be a tuple, list or dict of Tensors (a module's parameters), and the
    pullback gives one gradient of that structure per argnum."""
    nums = _argnums(argnums, len(args), name)
    trees = [args[i] for i in nums]

    def partial(*leaves):
        full, rest = list(args), iter(leaves)
        for i, tree in zip(nums, trees):
            full[i] = tree_rebuild(tree, rest)
        return f(*full, **kwargs)
    out, aux, pullback = _trace(partial, [x for t in trees for x in tree_leaves(t)], has_aux,
                                name)

    def structured(cotangents):
        grads = iter(pullback(cotangents))
        return tuple(tree_rebuild(tree, grads) for tree in trees)
    return out, aux, structured


def _as_tuple(xs):
    return tuple(xs) if isinstance(xs, (tuple, list)) else (xs,)


# ---- reverse mode ------------------------------------------------------------------------------
def vjp(f, *primals, has_aux=False):
    """(f(*primals), vjp_fn), vjp_fn(cotangents) -> one gradient per primal: u·J, as
    torch.func.vjp and jax.vjp. vjp_fn may be called many times; cotangents mirror f's output."""
    out, aux, pullback = _trace(f, primals, has_aux, "vjp")
    several = isinstance(out, tuple)

    def vjp_fn(cotangents):
        given = isinstance(cotangents, (tuple, list))
        cts = tuple(cotangents) if given else (cotangents,)
        if given != several or len(cts) != (len(out) if several else 1):
            raise ValueError(f"vjp_fn: expected {'a tuple of ' if several else ''}"
                             f"{len(out) if several else 1} cotangent(s), one per output of f, "
                             f"got {len(cts)}")
        return pullback(cts)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def value_and_grad(f, argnums=0, has_aux=False):
    """A function returning (f(*args), gradient w.r.t. args[argnums]) for f returning a 0-d tensor
    (or (scalar, aux), giving ((scalar, aux), grad)): jax.value_and_grad; torch.func.grad_and_value
    is the same with the pair the other way round."""
    def wrapper(*args, **kwargs):
        out, aux, pullback = _trace_argnums(f, args, kwargs, argnums, has_aux, "value_and_grad")
        if not isinstance(out, Tensor) or out.ndim != 0:
            shape = out.shape if isinstance(out, Tensor) else type(out).__name__
            raise RuntimeError(f"value_and_grad: f must return a scalar (0-d) Tensor, got {shape}; "
                               f"use vjp or jacrev for non-scalar outputs")
        grads = pullback((ones_like(out),))
        grads = grads[0] if isinstance(argnums, int) else grads
        return ((out, aux), grads) if has_aux else (out, grads)
    return wrapper


def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning (gradient, value) of scalar func, or (gradient, (value, aux)) with
    has_aux, as torch.func.grad_and_value (value_and_grad with the pair the other way round)."""
    value_and_grad_f = value_and_grad(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        value, grads = value_and_grad_f(*args, **kwargs)
        return grads, value
    return wrapper


def grad(f, argnums=0, has_aux=False):
    """A function returning the gradient of scalar f w.r.t. args[argnums] (a tuple for a tuple of
    argnums; (grad, aux) with has_aux), as torch.func.grad and jax.grad. Nests: grad(grad(f))."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    def wrapper(*args, **kwargs):
        value, grads = value_and_grad_f(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads
    return wrapper


# ---- forward mode, as the transpose of the pullback ----------------------------------------------
def _pushforward(outs, pullback):
    """t -> J·t without a Jacobian: the pullback u -> J^T u is linear in u, so its own vjp with
    cotangent t is J·t (the "double vjp"). Its graph is recorded once, at u = 0. Integer outputs
    (argmax indices) have no tangent space: they get zeros."""
    live = [k for k, o in enumerate(outs) if o.dtype.kind in "fc"]

    def pull(*us):
        cotangents = [None] * len(outs)
        for k, u in zip(live, us):
            cotangents[k] = u
        return pullback(cotangents)
    _, _, transposed = _trace(pull, [zeros_like(outs[k]) for k in live], False, "jvp")

    def push(tangents):
        pushed = [zeros_like(o) for o in outs]
        for k, p in zip(live, transposed(tangents)):
            pushed[k] = p
        return tuple(pushed)
    return push


def jvp(f, primals, tangents, has_aux=False):
    """(f(*primals), J·tangents), the forward-mode product, as torch.func.jvp and jax.jvp (tuples,
    or one Tensor each); built by the double-vjp construction, so no Jacobian is formed."""
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if isinstance(p, Tensor) and getattr(t, "shape", None) != p.shape:
            raise ValueError(f"jvp: tangent {i} has shape {getattr(t, 'shape', None)} but its "
                             f"primal has shape {p.shape}")
    out, aux, pullback = _trace(f, primals, has_aux, "jvp")
    pushed = _pushforward(_as_tuple(out), pullback)(tangents)
    pushed = pushed if isinstance(out, tuple) else pushed[0]
    return (out, pushed, aux) if has_aux else (out, pushed)


# ---- Jacobians -----------------------------------------------------------------------------------
def _choose_mode(n_in, n_out):
    """jacobian's cost rule: one pullback per output element, or one pushforward per input
    element; reverse when there are fewer outputs than inputs, forward otherwise."""
    return "reverse" if n_out < n_in else "forward"


def _basis(like, j):
    e = zeros(like.numel(), dtype=like.dtype, device=like.device)
    e[j] = 1
    return e.reshape(like.shape)


def _assemble(pieces, out, x, dim):
    """Stack the pieces of one Jacobian block and shape it out.shape + x.shape."""
    if not pieces:
        return zeros(*out.shape, *x.shape, dtype=x.dtype, device=x.device)
    return ops.stack(pieces, dim).reshape(tuple(out.shape) + tuple(x.shape))


def _jacobian_reverse(outs, inputs, pullback):
    """Row by row: one pullback of a basis cotangent per output element, all on one recorded
    graph (the trace is kept, so no forward is repeated)."""
    blocks = []
    for k, o in enumerate(outs):
        rows = [[] for _ in inputs]
        for j in range(o.numel()):
            cts = [None] * len(outs)
            cts[k] = _basis(o, j)
            for r, g in zip(rows, pullback(cts)):
                r.append(g)
        blocks.append(tuple(_assemble(r, o, x, 0) for r, x in zip(rows, inputs)))
    return blocks


def _jacobian_forward(outs, inputs, pullback):
    """Column by column: one pushforward of a basis tangent per input element."""
    push = _pushforward(outs, pullback)
    cols = [[[] for _ in inputs] for _ in outs]
    for i, x in enumerate(inputs):
        for m in range(x.numel()):
            tangents = [None] * len(inputs)
            tangents[i] = _basis(x, m)
            for k, jt in enumerate(push(tangents)):
                cols[k][i].append(jt)
    return [tuple(_assemble(c, o, x, -1) for c, x in zip(cols[k], inputs))
            for k, o in enumerate(outs)]


def _jacobian(f, args, kwargs, argnums, has_aux, mode, name):
    nums = _argnums(argnums, len(args), name)
    if not all(isinstance(args[i], Tensor) for i in nums):
        raise TypeError(f"{name}: differentiates Tensor arguments only (argnums={argnums!r}); "
                        f"pass each tensor as an argument of its own")
    out, aux, pullback = _trace_argnums(f, args, kwargs, argnums, has_aux, name)
    outs, inputs = _as_tuple(out), [args[i] for i in nums]
    if mode == "auto":
        mode = _choose_mode(sum(x.numel() for x in inputs), sum(o.numel() for o in outs))
    if mode not in ("reverse", "forward"):
        raise ValueError(f"{name}: mode must be 'auto', 'reverse' or 'forward', got {mode!r}")
    build = _jacobian_reverse if mode == "reverse" else _jacobian_forward
    blocks = [b if not isinstance(argnums, int) else b[0] for b in build(outs, inputs, pullback)]
    jac = tuple(blocks) if isinstance(out, tuple) else blocks[0]
    return (jac, aux) if has_aux else jac


def jacrev(f, argnums=0, has_aux=False):
    """A function returning the Jacobian of f w.r.t. args[argnums] by reverse mode (one pullback
    per output element), shaped output.shape + input.shape, as torch.func.jacrev and jax.jacrev."""
    def wrapper(*args, **kwargs):
        return _jacobian(f, args, kwargs, argnums, has_aux, "reverse", "jacrev")
    return wrapper


def jacfwd(f, argnums=0, has_aux=False):
    """A function returning the Jacobian of f w.r.t. args[argnums] by forward mode (one jvp per
    input element), shaped output.shape + input.shape, as torch.func.jacfwd and jax.jacfwd."""
    def wrapper(*args, **kwargs):
        return _jacobian(f, args, kwargs, argnums, has_aux, "forward", "jacfwd")
    return wrapper


def jacobian(f, inputs, mode="auto"):
    """The Jacobian of f at inputs (a Tensor, or a tuple giving a tuple of blocks); mode "auto"
    takes reverse when f has fewer output than input elements (see _choose_mode), like
    torch.autograd.functional.jacobian with its strategy chosen for you."""
    several = isinstance(inputs, (tuple, list))
    argnums = tuple(range(len(inputs))) if several else 0
    return _jacobian(f, tuple(inputs) if several else (inputs,), {}, argnums, False, mode,
                     "jacobian")


def hessian(f, argnums=0):
    """A function returning the Hessian of scalar f w.r.t. args[argnums], as jacfwd(jacrev(f)),
    shaped input.shape + input.shape (nested tuples for a tuple of argnums): torch.func.hessian,
    jax.hessian."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f, primals, tangents):
    """(f(*primals), H·tangents) for scalar f without forming H: the vjp of grad f with cotangent
    v (H is symmetric), as torch.autograd.functional.hvp; a single Tensor in gives one out."""
    several = isinstance(primals, (tuple, list))
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"hvp: got {len(primals)} primals but {len(tangents)} tangents")
    value_and_grad_f = value_and_grad(f, argnums=tuple(range(len(primals))))

    def grad_with_value(*xs):
        value, grads = value_and_grad_f(*xs)
        return grads, value
    _, value, pullback = _trace(grad_with_value, primals, True, "hvp")
    products = pullback(tangents)
    return value, products if several else products[0]
