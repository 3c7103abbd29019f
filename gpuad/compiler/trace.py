"""One traced call: find what the function reaches (reach.py), swap in tracing arrays, run it
eagerly while the Recorder writes the program down, then put every real array back and say what a
replay must bind, check and write back (a Spec), or why it cannot be replayed (a Poison).
"""
import gc
import sys

from .. import amp, autograd, backend, ops
from ..autograd import grad_mode
from ..nn.module import held_by
from ..optim.lr_scheduler import LRScheduler
from ..tensor import Tensor
from .arrays import TRACE_TYPES, unwrap
from .backward import freed, live_outputs, record_backward, residuals
from .program import (
    Program,
    Spec,
    live_instructions,
    optimizer_members,
    same_members,
    source_literal,
)
from .reach import (
    GUARDED,
    changed_python_value,
    changed_read,
    code_constants,
    code_units,
    discover,
    noted_reads,
    python_reads,
    watch_helpers,
)
from .records import (
    PYTHON_VALUES,
    record_defaults,
    record_fields,
    record_shell,
    tensors_in,
)
from .rewrite import pool_before_relu, remade
from .tracing import Poison, Recorder, Unsupported, user_frame


class Unkept:
    """A recording that is not replayed, though nothing in it forces eager mode: the call made
    optimizer state, which later calls find there already (a first step), or it did something
    a replay would not do again (`if_again`, why a second time in a row makes the function fall
    back): it stored a tensor it computed beyond its result, or changed a Python value. Once,
    that is a cache or a flag set on first use; in every call, a record (`self.last = loss`) or
    a counter (`self.step += 1`)."""

    def __init__(self, if_again, what=None):
        self.if_again, self.what = if_again, what  # what: the debug log's short form


def trace_call(fn, args, kwargs, fullgraph=False, name="step", pool=None):
    """Run fn(*args, **kwargs) once, recording it. Returns (its result, a Program, a Poison, or
    an Unkept); `pool` is what the programs of one function share (flat.py's buffers, the
    programs)."""
    rec = Recorder()
    rec.fullgraph = fullgraph
    spec = Spec()
    units = code_units(fn, args, kwargs)
    modules, optimizers, tensors, spec.identities, python_values = discover(fn, args, kwargs,
                                                                             units)
    spec.python_reads = python_reads(units)
    # what a returned Python value may be without having been computed by the call
    rec.known_values = {id(value) for _, _, value in spec.python_reads}
    rec.known_values.update(map(id, code_constants(units)))
    args, kwargs = _wrap_inputs(rec, spec, args, kwargs)
    for t in tensors:
        rec.wrap_tensor(t)
    for opt in optimizers:
        rec.snapshot(opt)
    spec.modules = [(m, m.training) for m in modules]
    spec.structure = [(m, held_by(m)) for m in modules]
    spec.members = [(opt, optimizer_members(opt)) for opt in optimizers]
    backend.TRACER[0] = rec
    ops.add_interceptor(rec.intercept)
    watch, noted = watch_helpers(units)
    if watch is not None:
        sys.setprofile(watch)
    try:
        with amp.own_cast_cache():
            result = fn(*args, **kwargs)
        live = live_outputs(result) if grad_mode.enabled else ()
        if live:  # the caller will differentiate it: record that backward too (backward.py)
            record_backward(rec, live)
    except BaseException as error:
        rec.closed = True
        if rec.poisoned is not None and hasattr(error, "add_note"):  # (Python 3.11)
            site = rec.poisoned.site
            error.add_note(f"gpuad.compile was recording this call, which {rec.poisoned.reason} "
                           f"(at {site[0]}:{site[1]}): call the function uncompiled, or do that "
                           f"outside it")
        _restore(rec, None)
        _release(rec)
        args = kwargs = None
        _unwrap_leftovers(rec)
        raise
    finally:
        if watch is not None:
            sys.setprofile(None)
        backend.TRACER[0] = None
        ops.remove_interceptor(rec.intercept)
        rec.closed = True
    stepped = _stepped(rec.scheduler_steps)  # their values change in every replay too
    changed = (changed_python_value([v for v in python_values if id(v[1]) not in stepped])
               or changed_read(spec.python_reads))
    site = rec.made_inside()
    if site is not None and rec.poisoned is None:
        rec.poisoned = Poison("makes a tensor of host data it creates anew each call (numpy's "
                              "random numbers, a batch put together in Python: pass those in as "
                              "arguments, or draw with gpuad's random functions)", site)
    rec.host_data.clear()
    through_parameters = noted_reads(units, noted)  # what helpers read through theirs
    noted.clear()  # (it holds what the call passed them, some of it the call's own tensors)
    for root, path, value in through_parameters:
        if type(value) in PYTHON_VALUES:
            spec.python_reads.append((root, path, value))
            rec.known_values.add(id(value))
        elif isinstance(value, GUARDED):
            spec.identities.append((root, path, value))
    try:
        _spec(rec, spec, result)
        saved = _residual_arrays(rec, spec.split)
    finally:
        result = _restore(rec, result)
    made_state = any(len(state) != len(start) for _, _, state, start in rec.states_seen.values())
    _release(rec, keep_externals=rec.poisoned is None and not made_state)
    args = kwargs = None  # (their tracing arrays, for raw-array arguments)
    program = None
    if spec.split is not None and rec.poisoned is None:
        program = _program(rec, spec, name, pool)
        if type(program) is Program:  # the first call's outputs carry the compiled backward
            outputs, targets = rec.live
            program.backward_replay.attach(outputs, saved, targets)  # (their eager graph goes)
    for t in tensors_in(result):  # a freed graph raises as a replay's does, and holds no tensor
        if id(t) in rec.freed:
            freed(t, rec.freed[id(t)])
    rec.live = saved = None
    stored = _unwrap_leftovers(rec)
    if rec.poisoned is not None:
        if fullgraph:
            raise Unsupported(rec.poisoned)
        return result, rec.poisoned
    if type(program) is Poison:
        return result, program
    if stored:
        return result, Unkept("stores a tensor it computed, beyond its result, on every call "
                              "(self.last = loss, a list of losses: return those instead)",
                              "stored a tensor it computed")
    if changed is not None:  # (why, what): reach.changed_python_value's
        return result, Unkept(*changed)
    if made_state:  # its optimizer state is there for the next call, which is recorded then
        return result, Unkept(None)
    return result, program or _program(rec, spec, name, pool)


def _program(rec, spec, name, pool):
    try:
        return Program(rec, spec, name, pool)
    except Exception as error:  # noqa: BLE001  (gpuad.compile's own limit: the call itself is done)
        return Poison(f"could not be compiled ({type(error).__name__}: {error})", user_frame())


def _residual_arrays(rec, split):
    """The arrays of this call that the recorded backward reads (its residuals), for the first
    call's outputs; None without one."""
    if split is None or rec.poisoned is not None:
        return None
    real = _alive(rec)
    missing = [vid for vid in split.residuals if vid not in real]
    if missing and not remade(rec.instrs[:split.start], missing, real):
        rec.poison("returns a tensor whose backward reads a value that was freed")
        return None
    return tuple(real[vid] for vid in split.residuals)


def _alive(rec):
    """{value number: real array} of the tracing arrays still alive."""
    return {traced._vid: traced._real for traced in (ref() for ref in rec.arrays)
            if traced is not None}


def _wrap_inputs(rec, spec, args, kwargs):
    """The arguments with their arrays traced as the program's inputs (bound per call by path)."""
    exprs = {}  # value number -> the expression that binds it
    return (tuple(_wrap_input(rec, spec, exprs, a, f"A[{i}]") for i, a in enumerate(args)),
            {k: _wrap_input(rec, spec, exprs, v, f"K[{k!r}]") for k, v in kwargs.items()})


def _wrap_input(rec, spec, exprs, x, path):
    # (a module-level function: a closure calling itself is a reference cycle, which would keep
    # the whole recording alive until the collector runs)
    if isinstance(x, Tensor):
        if id(x) not in rec.wrapped_tensors:
            rec.wrap_tensor(x, ("arg", path), kind="input")
        _bind_input(spec, exprs, x.array._vid, f"{path}.array")
        return x
    if backend.is_array(x) and type(x) not in TRACE_TYPES:
        traced = rec.external(x, ("input", path), "input")
        _bind_input(spec, exprs, traced._vid, path)
        return traced
    t = type(x)
    if t is tuple or t is list:
        return t(_wrap_input(rec, spec, exprs, v, f"{path}[{i}]") for i, v in enumerate(x))
    fields = record_fields(x)
    if fields is not None:  # a batch record: its tensors are wrapped in place, read by field
        for name, v in fields:
            _wrap_input(rec, spec, exprs, v, f"{path}.{name}")
        return x
    if t is dict:  # by key, or by place where a key has no source (a call's keys, in their order,
        # are part of what selects the program)
        return {k: _wrap_input(rec, spec, exprs, v, f"{path}[{source_literal(k)}]"
                               if source_literal(k) is not None else f"[*{path}.values()][{i}]")
                for i, (k, v) in enumerate(x.items())}
    return x


def _bind_input(spec, exprs, vid, expr):
    if vid in exprs:  # one array passed twice: the replay checks it still is
        spec.same_inputs.append((expr, exprs[vid]))
    else:
        exprs[vid] = expr
        spec.inputs.append((vid, expr))


def _vid(rec, array):
    if type(array) in TRACE_TYPES and array._rec is rec:
        return array._vid
    return None


def _spec(rec, spec, result):
    """Fill in what the replay binds, checks and writes back, from what the call did."""
    for tid, t in rec.wrapped_tensors.items():
        ref = rec.refs[tid]
        vid = _vid(rec, t.array)
        if vid is None:
            rec.poison("replaces a tensor's array with one it did not compute")
        elif tid in rec.start_vids and vid != rec.start_vids[tid]:
            spec.writebacks.append(("array", ref, vid))
        _, version, requires_grad = rec.versions[tid]
        if t._version != version:
            spec.bumps.append(ref)
        if t._requires_grad is not requires_grad and ref[0] == "obj":  # (an argument's
            rec.poison("changes a parameter's requires_grad")  # is its caller's: FGSM's input)
    for tid, (t, g0_ref, vid0) in rec.grads_at_start.items():
        ref, g1 = rec.refs[tid], t.grad
        if g1 is None:
            if g0_ref is not None:
                spec.writebacks.append(("grad", ref, None))
            continue
        if g0_ref is None:
            spec.grad_none.append(ref)
        same = g0_ref is not None and g1 is g0_ref()
        vid = _vid(rec, g1.array)
        if vid is None:
            if not same:
                rec.poison("sets a .grad to a tensor it did not compute")
        elif not same or vid != vid0:
            spec.writebacks.append(("grad", ref, vid))
    for opt, p, state, start in rec.states_seen.values():
        spec.states.append((opt, p, len(start)))
        for k, v in state.items():
            if not backend.is_array(v):
                continue
            vid = _vid(rec, v)
            if vid is None:
                rec.poison("stores an array it did not compute in optimizer state")
            elif k not in start or vid != _vid(rec, start[k]):
                spec.writebacks.append(("state", opt, p, k, vid))
    for opt, before in rec.hyper.values():
        if [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] != before:
            rec.poison("changes an optimizer's hyper-parameters other than through a gpuad "
                       "learning-rate scheduler's step() (a replay would not change them): do "
                       "that outside the compiled function")
    if not all(same_members(opt, before) for opt, before in spec.members):
        rec.poison("changes an optimizer's parameters or groups")
    if not all(held_by(m) == before for m, before in spec.structure):
        rec.poison("replaces a module's parameter, buffer or layer, or changes a number of one "
                   "of gpuad's layers (Dropout's p)")
    # hooks run where autograd's walk runs them: in a replay only if the caller's walk does,
    # after the outputs' recorded backward, and the call ran no walk of its own (backward.py)
    hooks_run = rec.split is not None and not rec.walked
    if rec.hooked and not hooks_run and rec.poisoned is None:
        rec.poisoned = Poison("a tensor it uses has hooks (Python run during backward)",
                              rec.hooked[0][1])
    read = {vid for instr in rec.instrs for vid in instr.reads}
    spec.identities = _used_identities(rec, spec, result, read)
    spec.tensors_read = tuple(t for tid, t in rec.wrapped_tensors.items()
                              if rec.refs[tid][0] == "obj" and rec.start_vids.get(tid) in read)
    spec.grad_modes = [(t, t._requires_grad, hooks_run) for t in spec.tensors_read
                       if t._node is None]
    spec.device = backend.device_of(rec.keep[0]._real) if rec.keep else None
    live = {}
    if rec.split is not None:
        _split(rec, spec, result)
        live = {id(t): k for k, t in enumerate(rec.live[0])}
    spec.result = _template(rec, result, live)
    spec.scheduler_steps = list(rec.scheduler_steps)
    spec.escaping = {wb[-1] for wb in spec.writebacks if type(wb[-1]) is int}
    spec.escaping |= _result_vids(spec.result)
    if spec.split is not None:
        spec.escaping |= set(spec.split.outputs) | set(spec.split.residuals)


def _split(rec, spec, result):
    """A result the caller differentiates (backward.py): the walk's live instructions, what they
    read of the forward, and the tensors they reach as references a replay binds. The whole
    recording is rewritten first (rewrite.py), each side of the split on its own."""
    split = spec.split = rec.split
    if rec.segments or any(wb[0] == "grad" for wb in spec.writebacks):
        rec.poison("returns a tensor whose autograd graph is still alive and also runs a "
                   "backward or an optimizer step itself (compile the whole step, or the model)")
    kept = {wb[-1] for wb in spec.writebacks if type(wb[-1]) is int}
    kept |= set(split.outputs) | set(split.grads)
    kept |= {vid for vid in (_vid(rec, t.array) for t in tensors_in(result)) if vid is not None}
    rec.instrs = pool_before_relu(rec.instrs, rec.values, kept, split.start,
                                  _alive(rec).__contains__)
    split.instrs = live_instructions(rec.instrs[split.start:], set(split.grads))
    split.residuals = residuals(split)
    split.targets = [rec.refs[id(t)] for t in rec.live[1]]


def _used_identities(rec, spec, result, read):
    """The identity guards worth checking: every module and optimizer found, but a tensor only
    when the call read it, changed it or its gradient, or returned it. A trainer that keeps the
    last loss in self.last must not re-trace because that tensor is a new one each step."""
    touched = {tid for tid, vid in rec.start_vids.items() if vid in read}
    changed = ({id(ref) for ref in spec.bumps + spec.grad_none}
               | {id(wb[1]) for wb in spec.writebacks if wb[0] in ("grad", "array")})
    for tid, t in rec.wrapped_tensors.items():
        if id(rec.refs[tid]) in changed:
            touched.add(tid)
    for tid, (t, g0_ref, vid0) in rec.grads_at_start.items():
        if g0_ref is not None and (vid0 in read or g0_ref() is None or t.grad is not g0_ref()):
            touched.add(tid)
    touched.update(map(id, tensors_in(result)))
    stepped = set(map(id, rec.scheduler_steps))
    return [(root, path, obj) for root, path, obj in spec.identities
            if (id(obj) in touched if isinstance(obj, Tensor) else
                id(obj) in stepped if isinstance(obj, LRScheduler) else True)]


def _stepped(schedulers):
    """The ids of the schedulers stepped and of those they step (SequentialLR's, ChainedScheduler's
    inner ones)."""
    ids, stack = set(), list(schedulers)
    while stack:
        scheduler = stack.pop()
        ids.add(id(scheduler))
        stack.extend(getattr(scheduler, "_schedulers", ()))
    return ids


def _template(rec, value, live):
    """The return value as a template: ("tensor", vid) for tensors the step computed, ("live", k)
    for the k-th of them that the caller differentiates (backward.py), ("freed", vid, error) for
    those whose graph a backward inside the call freed, ("const", obj) for anything else
    (returned as the same object every time), and containers."""
    t = type(value)
    if isinstance(value, Tensor):
        vid = _vid(rec, value.array)
        ref = rec.refs.get(id(value))
        if ref is not None and ref[0] == "arg":
            return ("expr", ref[1])  # an argument returned: this call's, not the traced one
        if vid is None or ref is not None:
            return ("const", value)
        if id(value) in rec.made_leaves:
            rec.poison("returns a tensor it made with requires_grad, whose .grad a replay's "
                       "backward would not fill")
        if id(value) in live:
            return ("live", live[id(value)])
        if id(value) in rec.freed:
            return ("freed", vid, rec.freed[id(value)])
        if value._node is not None and value._node.inputs is None:  # the loss after its backward
            return ("freed", vid, str(autograd.freed_graph_error(value._node)))
        if value._node is not None and value._node.inputs is not None:
            rec.poison("returns a tensor whose autograd graph is still alive, which gpuad.compile "
                       "could not follow (compile the whole step, backward included, or call it "
                       "under no_grad)")
        return ("tensor", vid)
    if t is tuple or t is list:
        return (t.__name__, [_template(rec, v, live) for v in value])
    if t is dict:
        return ("dict", [_template(rec, v, live) for v in value.values()], list(value))
    fields = record_fields(value)  # a namedtuple, dataclass or SimpleNamespace: built anew
    if fields is not None:
        rec.known_values.update(map(id, record_defaults(value)))  # (not computed: returned as is)
        return ("record", [_template(rec, v, live) for _, v in fields],
                record_shell(value, [name for name, _ in fields]))
    if backend.is_array(value):
        rec.poison("returns a raw array")
        return ("const", value)
    if t in (float, complex, str) and id(value) not in rec.known_values:
        rec.poison(f"returns a Python value it computed ({value!r:.24}), which a replay would "
                   f"return unchanged (return a tensor, or read it outside)")
    return ("const", value)


def _result_vids(template):
    if template[0] in ("tensor", "freed"):
        return {template[1]}
    if template[0] in ("const", "expr", "live"):
        return set()
    return set().union(*map(_result_vids, template[1])) if template[1] else set()


def _restore(rec, result):
    """Put the real arrays back everywhere the trace put tracing arrays (tensors, gradients,
    optimizer state, the result)."""
    for holder in rec.swapped:
        holder = holder()
        if holder is not None:  # (a gradient the step dropped is gone)
            holder.array = unwrap(holder.array)
    for t in rec.wrapped_tensors.values():
        t.array = unwrap(t.array)
        if t.grad is not None:
            t.grad.array = unwrap(t.grad.array)
    for state, key in rec.state_swaps:
        state[key] = unwrap(state.get(key))
    for _, _, state, _ in rec.states_seen.values():
        for k, v in state.items():
            state[k] = unwrap(v)
    _unwrap_result(result)
    return result


def _release(rec, keep_externals=False):
    """Drop what the recording holds of real arrays, but for a program the externals' Values (it
    binds through those): a replay moves a parameter into a flat buffer only when nothing else
    holds it (flat.py counts references), and a recording's cycles may wait long for the
    collector."""
    rec.by_real, rec.keep, rec.swapped, rec.state_swaps = {}, [], [], []
    rec.wrapped_tensors, rec.grads_at_start, rec.states_seen = {}, {}, {}
    if not keep_externals:
        for value in rec.values:
            value.real = None


def _unwrap_leftovers(rec):
    """Give real arrays back to what the call stored beyond the tensors the trace swapped: a
    tensor made during the call and kept somewhere (a GradScaler's scale, made on its first use;
    a trainer's last loss), or a tracing array in a dict or list. Eager code would meet a tracing
    array there later. Costs a scan of the collector's objects, only when something is left.
    Returns whether one of them was computed by the call (a replay would not store it again)."""
    alive = [ref for ref in rec.arrays if ref() is not None]
    rec.arrays = []
    if not alive:
        return False
    gc.collect()  # what only a garbage cycle holds (an exception's frames) was not stored
    left = [a for a in (ref() for ref in alive) if a is not None]
    if not left:
        return False
    ids, given_back = {id(a) for a in left}, []
    for holder in gc.get_referrers(*left):
        if holder is left:
            continue
        if isinstance(holder, Tensor):
            if id(holder.array) in ids:
                given_back.append(holder.array)
                holder.array = holder.array._real
        elif type(holder) is dict:
            for k, v in list(holder.items()):
                if id(v) in ids:
                    given_back.append(v)
                    holder[k] = v._real
        elif type(holder) is list:
            for i, v in enumerate(holder):
                if id(v) in ids:
                    given_back.append(v)
                    holder[i] = v._real
    return any(rec.values[a._vid].kind == "produced" for a in given_back)


def _unwrap_result(value):
    for t in tensors_in(value):
        t.array = unwrap(t.array)


__all__ = ["trace_call", "Poison", "Unkept", "user_frame"]
