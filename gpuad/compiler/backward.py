"""gpuad.compile of a function whose result the caller differentiates: a model's forward, called as
`loss = F.cross_entropy(compiled_model(x), y); loss.backward()`, torch.compile's commonest use.
The split is AOTAutograd's.

While tracing, once the function has returned, its live outputs (tensors whose autograd graph is
still alive) are differentiated from seed gradients that are inputs of the program, and that walk
is recorded too. It stops at the tensors the call read that require grad: parameters, and tensor
arguments (one with a history of its own is a leaf for this walk). The program is cut where the
walk began. The forward replays as the call; the walk becomes a second generated function
(program.py), whose inputs are the seeds and what it reads of the forward (the residuals). Each
replay's outputs carry one Node over the tensors the walk reached. Its rule runs that function and
hands their gradients to autograd's walk, which accumulates them into .grad, or carries them on
into the caller's graph, as it does for any op. As in torch.compile, the replayed backward is not
differentiable again: under create_graph its gradients are right, and differentiating them
raises.
"""
from .. import autograd, backend
from ..autograd import Node, grad_mode
from ..tensor import Tensor
from .arrays import TRACE_TYPES
from .records import tensors_in

NAME = "CompiledFunction"  # the Node shows as <CompiledFunctionBackward>, torch.compile's grad_fn


class Split:
    """Where the recorded walk begins in the recording (`start`, an instruction index) and what it
    connects: the live outputs' values and their seeds', the tensors whose gradients it computes
    (`targets`, as references a replay binds), the value of each one's gradient, and the
    forward's values it reads (`residuals`, filled in by trace.py)."""
    __slots__ = ("start", "outputs", "seeds", "targets", "grads", "residuals", "instrs")

    def __init__(self, start, outputs, seeds):
        self.start, self.outputs, self.seeds = start, outputs, seeds
        self.targets, self.grads, self.residuals, self.instrs = [], [], [], []


def live_outputs(result):
    """The tensors of a result (in a tuple, list, dict or record) whose autograd graph is still
    alive, each once."""
    live = {id(t): t for t in tensors_in(result)
            if t._node is not None and t._node.inputs is not None}
    return list(live.values())


def record_backward(rec, outputs):
    """Record the backward walk of `outputs` from seeds that are inputs of the program (rec.split),
    and keep the output and target tensors for the first call's Node (rec.live)."""
    if any(type(t.array) not in TRACE_TYPES or t.array._rec is not rec for t in outputs):
        rec.poison("returns a tensor with an autograd graph that it did not compute")
        return
    targets = [t for t in rec.wrapped_tensors.values() if t._requires_grad]
    seeds = []
    for k, t in enumerate(outputs):
        real = t.array._real
        seeds.append(Tensor(rec.external(backend.xp_of(real).ones_like(real), ("seed", k),
                                         "input")))
    split = Split(len(rec.instrs), [t.array._vid for t in outputs],
                  [s.array._vid for s in seeds])
    cut = [(t, t._node, t._hooks) for t in targets]
    walked = rec.walked  # (the call's own walks, not this one)
    rec.walk_made = set()  # the Recorder stops a walk that writes into any other value
    try:
        for t, _, _ in cut:
            # the walk stops at what the call read, whose hooks the caller's walk runs
            t._node = t._hooks = None
        inside = [t for t in autograd.reachable(outputs) if id(t) not in rec.wrapped_tensors]
        if any(t._hooks or t._retains_grad for t in inside):
            # found before walking: this walk would run the hooks (or fill the .grad) once more
            # than the caller's walk does
            rec.poison("returns a tensor whose graph holds a tensor it computed with a hook or "
                       "retain_grad(), which a replay's backward would not run")
            return
        grads = autograd.grad(outputs, targets, seeds, retain_graph=True, allow_unused=True)
    except RuntimeError as error:
        if not any(t._node is not None and t._node.inputs is None for t in inside):
            rec.poison(f"returns a tensor whose backward could not be recorded "
                       f"({type(error).__name__}: {error})")
            return
        # `return loss_d + loss_g` after the step's own backward: the graph under the outputs
        # was freed, so differentiating them raises, in eager and in every replay alike
        rec.freed = {id(t): str(error) for t in outputs}
        return
    except Exception as error:  # noqa: BLE001  (the eager result stays usable: fall back)
        rec.poison(f"returns a tensor whose backward could not be recorded "
                   f"({type(error).__name__}: {error})")
        return
    finally:
        rec.walked, rec.walk_made = walked, None
        for t, node, hooks in cut:
            t._node, t._hooks = node, hooks
    # a leaf made inside with requires_grad (a gradient penalty's interpolate) gets no gradient
    # from a replay: none of the caller's business, unless the call returns it (trace.py)
    rec.made_leaves = {id(t) for t in inside if t._node is None and t._requires_grad}
    kept = []
    for t, g in zip(targets, grads):
        if g is None:
            continue
        if type(g.array) not in TRACE_TYPES or g.array._rec is not rec:
            rec.poison("returns a tensor whose backward gives a gradient it did not compute")
            return
        kept.append(t)
        split.grads.append(g.array._vid)
    rec.split, rec.live = split, (outputs, kept)


def residuals(split):
    """The values the walk's live instructions read that it did not make: the forward's (and
    parameters and arguments), which the forward must keep for it."""
    made, found = set(split.seeds), set()
    for instr in split.instrs:
        found.update(vid for vid in instr.reads if vid not in made)
        made.update(instr.made())
    return sorted(found)


class BackwardReplay:
    """What makes a replay's live outputs differentiable: `backward`, the generated walk (called
    with [residuals] and the seeds' arrays, returning the targets' gradients), which the Node
    they carry runs, and the outputs' (shape, dtype), for the seeds of outputs that get no
    gradient."""

    def __init__(self, metas):
        self.metas, self.backward = metas, None

    def __call__(self, arrays, saved, targets):
        """The replay's outputs as tensors carrying the compiled backward."""
        tensors = tuple(map(Tensor, arrays))
        self.attach(tensors, saved, targets)
        return tensors

    def attach(self, tensors, saved, targets):
        box = [saved]  # emptied by a walk that does not retain the graph (see run)
        if len(tensors) == 1:
            _record(tensors[0], Node(NAME, _backward, targets, {"saved": box, "replay": self}))
            return
        # several outputs, as checkpoint does: one Node on a 0-d token runs the backward once,
        # after every output's Node has left its seed (the token is older, so visited last)
        seeds = {}
        token = Tensor(backend.xp_of(tensors[0].array).zeros((), self.metas[0][1]))
        _record(token, Node(NAME, _joint_backward, targets,
                            {"saved": box, "replay": self, "seeds": seeds}))
        for k, t in enumerate(tensors):
            _record(t, Node(NAME, _seed, (token,), {"seeds": seeds, "index": k}))

    def run(self, box, seeds, targets):
        arrays = [g.array if g.dtype == dtype else g.array.astype(dtype)
                  for g, (_, dtype) in zip(seeds, self.metas)]
        # (a walk that keeps the graph passes a copy of the box: the generated code empties the
        # box it gets, so the residuals die one by one as the walk is done with them)
        grads = tuple(map(Tensor, self.backward(box if not grad_mode.retaining else [box[0]],
                                                arrays)))
        recorded = [x for x in (*seeds, *targets) if x._requires_grad]
        if grad_mode.enabled and recorded:  # create_graph: the first order is right, a second
            for gx in grads:  # must fail loudly (torch's once_differentiable)
                _record(gx, Node(NAME, _not_twice, tuple(recorded), {}))
        return grads


def _record(t, node):
    t._node, t._requires_grad = node, True


def freed(tensor, message):
    """A replay's output whose eager twin's graph was freed by a backward inside the call: it
    requires grad, and differentiating it raises eager's error."""
    _record(tensor, Node(NAME, _raise_freed, (), {"message": message}))
    return tensor


def _raise_freed(g, y, *, message):
    raise RuntimeError(message)


def _backward(g, y, *targets, saved, replay):
    return replay.run(saved, [g], targets)


def _seed(g, y, token, *, seeds, index):
    seeds[index] = g
    return (Tensor(backend.xp_of(token.array).zeros_like(token.array)),)


def _joint_backward(g, y, *targets, saved, replay, seeds):
    xp = backend.xp_of(y.array)
    given = [seeds.pop(k) if k in seeds else Tensor(xp.zeros(shape, dtype))
             for k, (shape, dtype) in enumerate(replay.metas)]
    return replay.run(saved, given, targets)


def _not_twice(g, y, *inputs):
    raise RuntimeError("backward: the gradient of a gpuad.compile'd function is not "
                       "differentiable again (create_graph=True, then a backward through its "
                       "result), as in torch.compile: call the function uncompiled for "
                       "higher-order gradients")
