"""A recorded step made into one Python function over raw arrays: dead operations dropped, every
intermediate freed after its last use, gradients computed into the last replay's gradient arrays
(or flat.py's buffer), and the whole program (guards, optimizer scalars, operations, write-backs)
generated as source and compiled once, so a replay is a straight run of numpy or CuPy calls.

Intermediates come from the allocator, as in an eager step. Buffers kept from one replay to the
next (and results written into dead inputs) were tried on the CPU: no faster (within 1% on the
MNIST MLP and LeNet, in one process) and LeNet kept 5 MB more resident than eager; without them
its compiled steady-state peak is below eager's. Inside a CUDA graph, which keeps every array it
allocates, results still go into dead inputs.
"""
import functools
import math
import operator
import sys

import numpy

from .. import autograd, backend, ops
from ..backend import kernels
from ..nn.module import held_by
from ..tensor import Tensor
from . import flat as flat_updates
from . import graphs
from .arrays import UFUNC_OF, UNFUNCS, Collector, NullArray, flat
from .backward import BackwardReplay, freed
from .records import rebuild
from .rewrite import pool_before_relu
from .tracing import Const, Ref, Scalar, memory_group

# Below this size a fresh array costs less than passing out= (numpy's small-block cache).
REUSE_BYTES = 4096


class Miss:
    """What a program returns when this call is not the one it recorded: the reason (for debug)
    and, where a value changing on every call would use up the recordings, what to do instead
    (for the cache-limit warning)."""
    __slots__ = ("reason", "advice")

    def __init__(self, reason, advice=""):
        self.reason, self.advice = reason, advice


NEW_EACH_CALL = ("what is new on every call (an array, a model, a batch object) is read afresh "
                 "when passed as tensors, or as a dict, tuple, namedtuple or dataclass of them")


def meta(array):
    return type(array), tuple(array.shape), array.dtype


class Spec:
    """Everything a program needs besides the recorder: how to bind inputs and externals, what to
    check, what to write back and what to return."""

    def __init__(self):
        self.inputs = []        # (vid, expression over A and K)
        self.same_inputs = []   # (expression, expression): one array passed twice
        self.grad_none = []     # tensor refs whose .grad must be None
        self.modules = []       # (module, training flag)
        self.structure = []     # (module, nn.module.held_by(module) when traced)
        self.members = []       # (optimizer, optimizer_members(optimizer) when traced)
        self.grad_modes = []    # (tensor, requires_grad, whether hooks may run) of the leaves
                                # it reads (see unchanged)
        self.identities = []    # (root, attribute path, object): self.opt is still that one
        self.python_reads = []  # (root, attribute path, value): self.beta still equals that
        self.device = None      # where the arrays are (CUDA: graphs)
        self.states = []        # (optimizer, param, number of entries at the start)
        self.writebacks = []    # ("grad", ref, vid or None) | ("array", ref, vid)
                                # | ("state", optimizer, param, key, vid)
        self.bumps = []         # tensor refs whose version the step bumped
        self.result = None      # template of the return value
        self.escaping = set()   # vids that outlive the step
        self.split = None       # backward.Split: a result the caller differentiates
        self.tensors_read = ()  # tensors from outside the call that it reads (show_tensors)
        self.scheduler_steps = []  # learning-rate schedulers to step after the updates


class Program:
    """One compiled step. `run(A, K)` replays it for positional args A and keyword args K, or
    returns a Miss when the call does not match what was recorded."""

    def __init__(self, rec, spec, name="step", pool=None):
        self.values, self.segments = rec.values, rec.segments
        self._pool = {} if pool is None else pool
        self.spec = spec
        split = spec.split
        instrs = (pool_before_relu(rec.instrs, self.values, spec.escaping) if split is None else
                  rec.instrs[:split.start])  # (a split step's backward is another program)
        self.instrs = live_instructions(instrs, spec.escaping)
        self.recorded = len(rec.instrs)
        self.reused = 0
        self._names = {}
        self._host_cache = {}  # segment index -> (its host inputs, the numbers they gave)
        self._host_reuse = None  # what the whole last pass read, when all of it may be reused
        self.namespace = {"TENSOR": Tensor, "FREED": freed, "ASARRAY": numpy.asarray, "META": meta,
                          "CLOCK": autograd.INPLACE_CLOCK,
                          "COPYTO": numpy.copyto,
                          "HOST": self.host_pass, "COMMIT": self.commit_host,
                          "RELEASE": backend.release_freed_memory,
                          "CHANGES": autograd.CHANGES, "UNCHANGED": self.unchanged,
                          "SAME_MEMBERS": self.same_members, "SAME": same_value,
                          "OPS": ops, "SHOW": self.show_tensors,
                          "MISS_SCALARS": Miss("an optimizer update took another path")}
        self._commits = ()  # what the last host pass would write into optimizer state
        # autograd.CHANGES when what unchanged() checks was last found as traced, and when it
        # was last found otherwise (so a replaced layer costs one comparison per call after)
        self._seen = self.namespace["SEEN"] = [autograd.CHANGES[0]]
        self._changed_at = None
        self.name, self.graph_source, self.runner = name, "", None
        self.backward_replay = None  # backward.py's, for outputs the caller differentiates
        self._drop_at = None  # the instruction before which the replay drops the old gradients
        self._last = {}
        for i, instr in enumerate(self.instrs):
            for vid in instr.reads:
                self._last[vid] = i
        self.gradient_writebacks = self._gradient_writebacks()
        self._reclaimable = self._reclaimable_gradients()
        self.namespace["RECLAIM"] = reclaim
        self.identity_names = {}  # external vid -> the name binding compares it with first
        self.flat_runs, self._flat_out = [], {}  # flat.py: runs of updates, gradient -> view
        for lo, hi, roles in flat_updates.find_runs(self):
            run = flat_updates.FlatRun(self, len(self.flat_runs), lo, hi, roles)
            self.namespace[run.prefix] = run
            self.flat_runs.append(run)
            if run.gradient is not None:
                for k, vid in enumerate(run.gradient[1]):
                    self._flat_out[vid] = run.view_name(k)
                    self._reclaimable.discard(vid)
        self.source = self._generate(name)
        if split is not None:  # the recorded walk, run by the outputs' Node (backward.py)
            self.backward_replay = self.namespace["LIVE"] = BackwardReplay(
                [self.values[vid].meta[1:] for vid in split.outputs])
            self.source += "\n" + self._backward_source(split)
        for value in self.values:  # an external the replay never binds (an old gradient, which
            if value.kind == "external" and value.vid not in self.identity_names:  # zero_grad
                value.real = None  # dropped) must not stay alive through this program
        code = _code(self.source, f"<gpuad.compile {name}>")
        exec(code, self.namespace)  # noqa: S102  (our own generated source)
        self.run = self.namespace["replay"]
        if split is not None:
            self.backward_replay.backward = self.namespace["backward"]
        flat_updates.PROGRAMS.add(self)  # flat.py counts what they hold

    def attach_graphs(self, enabled, capture=None):
        """On CUDA, run replays as captured CUDA graphs (graphs.py): the program's blocks of
        device work are recorded once each and relaunched, and what must stay on the host (random
        draws, copies from host data, optimizer updates and their host numbers) runs between
        them. `capture` replaces CUDA's (tests emulate it on the CPU)."""
        device = self.spec.device
        if device is None or device.type != "cuda":
            capture = capture or graphs.CAPTURE_OFF_CUDA[0]
        if self.spec.split is not None:
            return  # a forward whose residuals outlive the launch: not captured (yet)
        if not enabled or (capture is None and (device is None or device.type != "cuda")):
            return
        self.instrs = self._draws_first()
        blocks = self._blocks()
        if all(block.host for block in blocks):
            return
        self.reused = 0  # counted again over the graphs' blocks
        self._reclaimable = set()
        self.flat_runs, self._flat_out = [], {}  # updates run on the host, per parameter
        for block in blocks:
            source = self._block_source(block)
            self.graph_source += source + "\n"
            exec(compile(source, f"<gpuad.compile {self.name} block>", "exec"),  # noqa: S102
                 self.namespace)
            block.fn = self.namespace[f"block{block.index}"]
        self.runner = graphs.GraphRunner(blocks, device, capture or graphs.cuda_capture)
        self.namespace["RUNNER"] = self.runner
        source = self._generate(self.name, runner=True)
        self.graph_source = source + "\n" + self.graph_source
        exec(compile(source, f"<gpuad.compile {self.name} graphs>", "exec"),  # noqa: S102
             self.namespace)
        self.run = self.namespace["replay"]

    # ---- optimizer scalars --------------------------------------------------------------------
    def host_pass(self):
        """This step's host numbers of every optimizer update, from re-running the updates on
        NullArrays (step counts advance, the learning rate is read afresh); None when an update
        now takes another path, and then nothing is changed."""
        if self._host_reuse is not None:
            scalars = _reused_pass(self._host_reuse)
            if scalars is not None:
                self._commits = ()
                return scalars
        col = Collector(None)
        Collector.active.col = col
        scalars, commits, is_array = col.scalars, [], backend.is_array
        # per group, once a pass: its settings (and whether they are plain values), and whether
        # they are those the cache saw; (group, layout or None) -> an update run in this pass
        hits, settings_of, unchanged, twins = 0, {}, {}, {}
        for index, seg in enumerate(self.segments):
            opt = seg.optimizer
            groups = opt.param_groups
            if seg.group_index >= len(groups) or groups[seg.group_index] is not seg.group:
                return None  # groups reordered or replaced: the parameter's may be another now
            state = opt.state.get(seg.param)
            group = seg.group
            known = settings_of.get(id(group))
            if known is None:
                values = tuple(group.values())
                known = settings_of[id(group)] = values, _plain_values(
                    v for v in values if type(v) is not list)  # (the parameter list: identity)
            settings, plain_settings = known
            # an update whose inputs are the last call's and which changed no host state then
            # (SGD's: only arrays) gives the same numbers: reuse them
            cached = self._host_cache.get(index)
            if cached is not None:
                same = unchanged.get(id(cached[0][0]))
                if same is None:
                    same = unchanged[id(cached[0][0])] = _same_key(cached[0][0], settings)
                if same and _state_matches(state, cached[0][1]):
                    scalars.extend(cached[1])
                    hits += 1
                    continue
            key = settings, _state_entries(state)
            plain = plain_settings and _plain_values(
                item[1] for item in key[1] or () if type(item) is tuple)
            layout = None if getattr(seg.update, "layout_free", False) else seg.metas
            twin = twins.get((id(group), layout)) if plain else None
            if (twin is not None and twin[0].update is seg.update and twin[0].keys == seg.keys
                    and _same_key(twin[1], key)):
                # the same update of the same group from the same numbers, on an array of the same
                # layout or one it ignores (optim's layout_free), as Adam's parameters step
                # together: the numbers and new state it gave
                scalars.extend(twin[2])
                commits.append((seg, twin[3]))
                continue
            start = len(scalars)
            col.keys, col.meta = [], seg.metas[0]
            fake = {} if state is None else {
                k: NullArray(col, col.meta) if is_array(v) else v for k, v in state.items()}
            try:
                seg.update(NullArray(col, col.meta), NullArray(col, seg.metas[1]), fake, group)
            except Exception:  # noqa: BLE001  (a path the trace did not take: trace again)
                return None
            if col.keys != seg.keys:
                return None
            commits.append((seg, fake))
            numbers = scalars[start:]
            if plain and _same_key(_state_entries(fake), key[1]):
                self._host_cache[index] = (key, numbers)
            if plain and all(type(v) in _PLAIN for v in fake.values() if type(v) is not NullArray):
                twins[id(group), layout] = (seg, key, numbers, fake)
        self._commits = commits
        self._host_reuse = _reusable_pass(self.segments, self._host_cache, scalars) if (
            hits == len(self.segments)) else None
        return scalars

    def commit_host(self):
        """Write the host state that this replay's updates changed (Adam's step counts) once the
        replay has done its work: one that raises (a bad class index) leaves the optimizer as it
        was."""
        for seg, fake in self._commits:
            state = seg.optimizer.state.setdefault(seg.param, {})
            for k, v in fake.items():
                if type(v) is not NullArray:
                    state[k] = v
        self._commits = ()

    # ---- code generation ----------------------------------------------------------------------
    def _name(self, obj, prefix="k"):
        key = id(obj)
        if key not in self._names:
            name = f"{prefix}{len(self._names)}"
            self._names[key] = name
            self.namespace[name] = obj
        return self._names[key]

    def _literal(self, obj):
        """obj in the source: written out when it can be, else by the name it is bound to."""
        source = source_literal(obj)
        return self._name(obj) if source is None else source

    def _arg(self, node):
        t = type(node)
        if t is Ref:
            return f"v{node.vid}"
        if t is Scalar:
            return f"s{node.sid}"
        if t is Const:
            return self._literal(node.obj)
        if t is tuple:
            return "(" + "".join(self._arg(a) + ", " for a in node) + ")"
        if t is list:
            return "[" + ", ".join(self._arg(a) for a in node) + "]"
        if t is dict:
            return "{" + ", ".join(f"{self._literal(k)}: {self._arg(v)}"
                                   for k, v in node.items()) + "}"
        raise AssertionError(t)

    def _call_args(self, args, kwargs):
        parts = [self._arg(a) for a in args]
        parts += [f"{k}={self._arg(v)}" for k, v in kwargs.items()]
        return ", ".join(parts)

    def _ref(self, ref):
        """A tensor reference as an expression: an argument path, or the object itself."""
        return ref[1] if ref[0] == "arg" else self._name(ref[1], "t")

    def _generate(self, name, runner=False):
        spec, lines = self.spec, []
        emit = lines.append
        emit(f"def replay(A, K):  # {name}: {len(self.instrs)} operations")
        for vid, expr in spec.inputs:
            emit(f"    v{vid} = {expr}")
        for a, b in spec.same_inputs:
            emit(f"    if {a} is not {b}: return {self._miss('an array was passed twice')}")
        for ref in spec.grad_none:
            emit(f"    if {self._ref(ref)}.grad is not None: return "
                 f"{self._miss('a gradient was None when traced')}")
        replaced = self._miss("an attribute, closure variable, global or entry changed",
                              NEW_EACH_CALL)
        if spec.identities or spec.python_reads:  # an entry or attribute gone is a change too
            emit("    try:")
        for root, path, obj in spec.identities:
            root = root if isinstance(root, str) else self._name(root, "r")  # an argument's path
            emit(f"        if {root}{''.join(path)} is not {self._name(obj, 'o')}: "
                 f"return {replaced}")
        for root, path, value in spec.python_reads:
            root = root if isinstance(root, str) else self._name(root, "r")
            where = "".join(path)
            changed = self._miss(f"a Python value the function reads changed ({where})",
                                 "a number that changes on every call is read afresh when passed "
                                 "as a tensor argument")
            emit(f"        if not SAME({root}{where}, {self._literal(value)}): return {changed}")
        if spec.identities or spec.python_reads:
            emit(f"    except (AttributeError, LookupError, TypeError): return {replaced}")
        for module, flag in spec.modules:
            emit(f"    if {self._name(module, 'm')}.training is not {flag}: return "
                 f"{self._miss('a module changed train/eval mode')}")
        if spec.structure or spec.grad_modes:
            changed = ("a parameter, buffer or layer was replaced, or a parameter frozen, "
                       "unfrozen or given a hook")
            emit(f"    if CHANGES[0] != SEEN[0] and not UNCHANGED(): return {self._miss(changed)}")
        if spec.members:
            emit(f"    if not SAME_MEMBERS(): return "
                 f"{self._miss('an optimizer has other parameters or groups')}")
        states = {}
        for i, (opt, param, count) in enumerate(spec.states):
            states[(id(opt), id(param))] = f"st{i}"
            emit(f"    st{i} = {self._name(opt, 'o')}.state.setdefault({self._name(param, 't')}, "
                 f"{{}})")
            emit(f"    if len(st{i}) != {count}: return "
                 f"{self._miss('optimizer state has other entries')}")
        self._bind_externals(emit, states)
        if spec.tensors_read:
            emit("    if OPS.INTERCEPTORS: SHOW()")
        if not runner:
            for run in self.flat_runs:  # parameters and state into flat buffers, once
                moved = " or ".join(f"v{vid} is not {self.identity_names[vid]}"
                                    for vid in run.external_vids())
                emit(f"    if {run.prefix}.ok is not None and (not {run.prefix}.ok or {moved}):")
                emit(f"        {run.prefix}.move()")
                for vid in run.external_vids():
                    emit(f"        v{vid} = {self._external(self.values[vid].owner, states)}")
                # the old arrays are gone now (their last names rebound): give their memory back
                emit("        RELEASE()")
        n_scalars = sum(len(seg.scalars) for seg in self.segments)
        if self.segments:
            emit("    S = HOST()")
            emit("    if S is None: return MISS_SCALARS")
            if n_scalars:
                emit("    " + ", ".join(f"s{i}" for i in range(n_scalars)) + ", = S")
        # as zero_grad does, old gradients go before new ones are made: just before, so a replay
        # that fails in the forward (a bad class index) leaves them as they were
        made = {wb[2] for wb in spec.writebacks if wb[0] == "grad"}
        self._drop_at = None if runner else next(
            (i for i, instr in enumerate(self.instrs) if made.intersection(instr.made())), None)
        if self._drop_at is None:
            self._drop_gradients(emit, runner)
        if runner:
            bound = sorted({vid for vid, _ in spec.inputs} | {
                v.vid for v in self.values if v.kind == "external" and self._bound(v.vid)})
            emit("    E = {" + ", ".join(f"{vid}: v{vid}" for vid in bound) + "}")
            emit("    RUNNER(E, S)" if self.segments else "    RUNNER(E, ())")
            for vid in sorted(spec.escaping):
                if self.values[vid].kind == "produced":
                    emit(f"    v{vid} = E[{vid}]")
        else:
            self._body(emit)
        if self.segments:
            emit("    COMMIT()")
        for wb in spec.writebacks:
            if wb[0] == "grad":
                if wb[2] is not None:
                    emit(f"    {self._ref(wb[1])}.grad = TENSOR(v{wb[2]})")
            elif wb[0] == "array":
                emit(f"    {self._ref(wb[1])}.array = v{wb[2]}")
            else:
                _, opt, param, key, vid = wb
                emit(f"    {states[(id(opt), id(param))]}[{self._literal(key)}] = v{vid}")
        if spec.bumps:  # Tensor._bump_version for each, inline: the clock's next numbers
            emit("    c = CLOCK[0]")
            for n, ref in enumerate(spec.bumps, 1):
                emit(f"    {self._ref(ref)}._version = c + {n}")
            emit(f"    CLOCK[0] = c + {len(spec.bumps)}")
        for scheduler in spec.scheduler_steps:  # (Python only: the next call's learning rate)
            emit(f"    {self._name(scheduler, 'sch')}.step()")
        if spec.split is not None:  # outputs carrying the compiled backward (backward.py)
            split = spec.split
            emit("    L = LIVE((" + "".join(f"v{vid}, " for vid in split.outputs) + "), ("
                 + "".join(f"v{vid}, " for vid in split.residuals) + "), ("
                 + "".join(self._ref(ref) + ", " for ref in split.targets) + "))")
        emit(f"    return {self._result(spec.result, copy=runner)}")
        return "\n".join(lines) + "\n"

    def _backward_source(self, split):
        """The recorded walk as `backward(R, G)`: R holds the residuals (a box it empties, so each
        dies after its last use), G the seeds' arrays; it returns the targets' gradients."""
        lines = [f"def backward(R, G):  # {self.name}'s backward: {len(split.instrs)} operations"]
        emit = lines.append
        emit("    " + "".join(f"v{vid}, " for vid in split.residuals) + "= R.pop()")
        emit("    " + "".join(f"v{vid}, " for vid in split.seeds) + "= G")
        last = {vid: i for i, instr in enumerate(split.instrs) for vid in instr.reads}
        self._body(emit, section=(split.instrs, last, set(split.grads)))
        emit("    return (" + "".join(f"v{vid}, " for vid in split.grads) + ")")
        return "\n".join(lines) + "\n"

    def _drop_gradients(self, emit, runner=False):
        for wb in self.spec.writebacks:
            if wb[0] == "grad":
                if not runner and wb[2] in self._reclaimable:
                    emit(f"    old{wb[2]} = {self._ref(wb[1])}.grad")
                emit(f"    {self._ref(wb[1])}.grad = None")
        for run in self.flat_runs:
            if run.gradient is not None:
                emit(f"    {run.prefix}.gradients()")

    def show_tensors(self):
        """Show the ops' interceptors the tensors the call reads, as its ops would eagerly: a
        checkpointed block learns from them which tensors it depends on (its parameters)."""
        tensors = self.spec.tensors_read
        for hook in ops.INTERCEPTORS:
            hook("compiled", None, tensors)  # (no autocast policy: autocast leaves them alone)

    def same_members(self):
        """Whether every optimizer found when tracing still has the same groups holding the same
        parameters (a parameter added or removed since changes which updates the step makes)."""
        for opt, members in self.spec.members:
            if not same_members(opt, members):
                return False
        return True

    def unchanged(self):
        """Whether the program's modules still hold the parameters, buffers and layers they held
        when traced, and the tensors it reads still have their requires_grad and no hooks, unless
        autograd runs them after the replay (backward.py): asked when autograd.CHANGES has moved
        (the replay runs no hook, the trace fell back on them)."""
        now = autograd.CHANGES[0]
        if now == self._changed_at:
            return False
        if (all(held_by(m) == held for m, held in self.spec.structure)
                and all(t._requires_grad is flag and (hooks or not t._has_hooks())
                        for t, flag, hooks in self.spec.grad_modes)):
            self._seen[0] = now
            return True
        self._changed_at = now
        return False

    def _bound(self, vid):
        return vid in self._last or vid in self.spec.escaping

    def _miss(self, reason, advice=""):
        return self._name(Miss(reason, advice), "miss")

    def _bind_externals(self, emit, states):
        for value in self.values:
            if value.kind != "external" or not self._bound(value.vid):
                continue
            v, owner = f"v{value.vid}", value.owner
            if owner[0] == "grad":
                emit(f"    g = {self._ref(owner[1])}.grad")
                emit(f"    if g is None: return {self._miss('a gradient was set when traced')}")
                emit(f"    {v} = g.array")
            else:
                emit(f"    {v} = {self._external(owner, states)}")
            self.identity_names[value.vid] = self._name(value.real, "x")
            emit(f"    if {v} is not {self.identity_names[value.vid]} and META({v}) != "
                 f"{self._name(value.meta, 'meta')}: return "
                 f"{self._miss('a parameter, gradient or state array changed shape or dtype')}")

    def _external(self, owner, states):
        """The expression that reads an external's array through its owner (a tensor's, or an
        optimizer state entry)."""
        if owner[0] == "array":
            return f"{self._ref(owner[1])}.array"
        _, opt, param, key = owner
        return f"{states[(id(opt), id(param))]}[{self._literal(key)}]"

    def _body(self, emit, lo=0, hi=None, env=(), section=None):
        """Statements of instructions lo..hi, each value deleted after its last use. `env`: the
        values a block of graphs.py loaded from its environment dict E, which die there too.
        `section`: (instructions, their last uses, values kept) of another body than the step's
        (the backward's)."""
        instrs, last, keep = section or (self.instrs, self._last, self.spec.escaping)
        runs = {} if section else {run.lo: run for run in self.flat_runs}
        i, hi = lo, len(instrs) if hi is None else hi
        while i < hi:
            if i == self._drop_at and section is None:
                self._drop_gradients(emit)
            run = runs.get(i)
            if run is None:
                instr = instrs[i]
                emit("    " + self._statement(instr, last, i))
                for vid in instr.made():  # a gradient made otherwise: copied into its view
                    if vid in self._flat_out and not self.takes_out(instr):
                        emit(f"    COPYTO({self._flat_out[vid]}, v{vid}); v{vid} = "
                             f"{self._flat_out[vid]}")
                done = [(instr, i)]
            else:
                done = [(instr, run.lo + n) for n, instr in enumerate(instrs[run.lo:run.hi])]
                self._flat_update(emit, run, done)
            i = done[-1][1] + 1
            dead = sorted({vid for instr, n in done for vid in instr.reads
                           if last[vid] == n and vid not in keep
                           and self.values[vid].kind == "produced"})
            dead += [vid for instr, _ in done for vid in instr.made()
                     if vid not in last and vid not in keep]
            if dead:
                emit("    del " + ", ".join(f"v{vid}" for vid in dead))
                gone = [vid for vid in dead if vid in env]
                if gone:
                    emit("    " + "; ".join(f"E.pop({vid}, None)" for vid in gone))

    def _flat_update(self, emit, run, instrs):
        """A run of updates (flat.py): one call over the flat buffers when the arrays moved there
        and every update got the same host numbers, else one call per parameter."""
        if all(type(v) is Scalar for instr, _ in instrs for v in instr.kwargs.values()):
            run.scalar_rows = [[v.sid for v in instr.kwargs.values()] for instr, _ in instrs]
            emit(f"    if {run.prefix}.ok and {run.prefix}.same_numbers(S):")
        else:
            numbers = ["(" + "".join(self._arg(v) + ", " for v in instr.kwargs.values()) + ")"
                       for instr, _ in instrs]
            emit(f"    if {run.prefix}.ok and {' == '.join(numbers)}:")
        args = ["None" if role == "none" else run.flat_name(position)
                for position, (role, _) in enumerate(run.roles)]
        emit(f"        {self._name(instrs[0][0].target, 'f')}({', '.join(args)}"
             + "".join(f", {k}={self._arg(v)}" for k, v in instrs[0][0].kwargs.items()) + ")")
        emit("    else:")
        for instr, i in instrs:
            emit("        " + self._statement(instr, self._last, i))

    def _draws_first(self):
        """The instructions with random draws (and copies of host data) moved to the front, so
        they do not cut the device work into several graphs. Draws only depend on the generator,
        which nothing else here advances, so their numbers stay the same."""
        made = {vid for instr in self.instrs for vid in instr.made()}
        first = [instr for instr in self.instrs if instr.name in graphs.HOST_ONLY
                 and instr.segment is None and not made.intersection(instr.reads)]
        if not first:
            return self.instrs
        moved = set(map(id, first))
        instrs = first + [instr for instr in self.instrs if id(instr) not in moved]
        self._last = {vid: i for i, instr in enumerate(instrs) for vid in instr.reads}
        return instrs

    def _blocks(self):
        """The body cut into runs of device work (graph blocks) and host work (host blocks): random
        draws (a generator on the host), copies from host data, and optimizer updates, whose
        host numbers change every call."""
        blocks = []
        for i, instr in enumerate(self.instrs):
            host = instr.segment is not None or instr.name in graphs.HOST_ONLY
            if not blocks or blocks[-1].host != host:
                blocks.append(graphs.Block(len(blocks), host, i))
            blocks[-1].hi = i + 1
        made_by = {}  # vid -> the block that made it
        for block in blocks:
            for instr in self.instrs[block.lo:block.hi]:
                for vid in instr.reads:
                    if vid not in block.made and vid not in block.loads:
                        block.loads.append(vid)
                block.made.update(instr.made())
            for vid in block.loads:
                value, maker = self.values[vid], made_by.get(vid)
                if value.kind == "external":
                    block.externals.append(vid)
                elif value.kind == "input" or (maker is not None and maker.host):
                    block.fed.append(vid)
            block.stores = sorted(vid for vid in block.made if self._last.get(vid, -1) >= block.hi
                                  or vid in self.spec.escaping)
            made_by.update(dict.fromkeys(block.made, block))
        return blocks

    # In a graph block a product is the matmul dispatcher's, which takes gpuad's kernel while a
    # graph records (CuPy refuses cuBLAS then); `@` would go straight to cuBLAS.
    _in_graph = False

    def _block_source(self, block):
        self._in_graph = not block.host
        lines = [f"def block{block.index}(E, S):  # {'host' if block.host else 'graph'} block"]
        emit = lines.append
        for vid in block.loads:
            emit(f"    v{vid} = E[{vid}]")
        sids = sorted({node.sid for instr in self.instrs[block.lo:block.hi]
                       for node in flat((instr.args, instr.kwargs)) if type(node) is Scalar})
        for sid in sids:
            emit(f"    s{sid} = S[{sid}]")
        self._body(emit, block.lo, block.hi, env=set(block.loads))
        for vid in block.stores:
            emit(f"    E[{vid}] = v{vid}")
        self._in_graph = False
        return "\n".join(lines) + "\n"

    def _method(self, instr, extra=""):
        """A method call's expression. numpy's ndarray.sum is a Python wrapper around
        numpy.add.reduce: a replay calls that directly (the same call, one frame fewer)."""
        args = instr.args
        call_args = ", ".join(a for a in (self._call_args(args[1:], instr.kwargs), extra) if a)
        if instr.target == "sum" and instr.xp is numpy:
            axis = "" if len(args) > 1 or "axis" in instr.kwargs else "None"  # sum()'s default
            call_args = ", ".join(a for a in (axis, call_args) if a)
            return f"{self._name(_ADD_REDUCE, 'f')}({self._arg(args[0])}, {call_args})"
        return f"{self._arg(args[0])}.{instr.target}({call_args})"

    def _statement(self, instr, last, i):
        kind, args = instr.kind, instr.args
        outs = instr.outs
        target = ("" if outs is None else
                  f"v{outs} = " if type(outs) is int else
                  "".join(f"v{vid}, " for vid in outs) + "= ")
        if (kind == "method" and instr.target == "reshape" and type(outs) is int
                and type(args[0]) is Ref
                and self.values[args[0].vid].meta == self.values[outs].meta):
            return target + self._arg(args[0])  # to its own shape: the same array serves
        if type(outs) is int and outs in self._flat_out and self.takes_out(instr):
            out = self._flat_out[outs]  # into its view of the flat gradient buffer
            if instr.kind == "method" and instr.target == "copy":
                return f"COPYTO({out}, {self._arg(args[0])}); {target}{out}"
            if instr.kind == "method":
                return target + self._method(instr, f"out={out}")
            fn = self._name(getattr(instr.xp, self._ufunc_name(instr)), "f")
            return target + f"{fn}({', '.join(self._arg(a) for a in args)}, out={out})"
        reuse = self._reusable_input(instr, last, i)
        if reuse is not None:
            self.reused += 1
            fn = self._name(getattr(instr.xp, self._ufunc_name(instr)), "f")
            return target + f"{fn}({', '.join(self._arg(a) for a in args)}, out=v{reuse})"
        if type(outs) is int and outs in self._reclaimable and not self._in_graph:
            fn = self._name(getattr(instr.xp, self._ufunc_name(instr)), "f")
            meta_name = self._name(self.values[outs].meta, "meta")
            device = self._name(self.spec.device or backend.CPU, "d")
            return (target + f"{fn}({', '.join(self._arg(a) for a in args)}, "
                    f"out=RECLAIM(old{outs}, {meta_name}, {device}))")
        if kind == "call":
            expr = f"{self._name(instr.target, 'f')}({self._call_args(args, instr.kwargs)})"
        elif kind == "method":
            expr = self._method(instr)
        elif kind == "binop" and instr.target == "@" and self._in_graph:
            expr = f"{self._name(kernels.DISPATCHERS['matmul'], 'f')}({self._call_args(args, {})})"
        elif kind == "call" and instr.name == "matmul" and self._in_graph and not instr.kwargs:
            expr = f"{self._name(kernels.DISPATCHERS['matmul'], 'f')}({self._call_args(args, {})})"
        elif kind == "binop":
            expr = f"{self._arg(args[0])} {instr.target} {self._arg(args[1])}"
        elif kind == "unop":
            sym = instr.target
            expr = f"abs({self._arg(args[0])})" if sym == "abs" else f"{sym}{self._arg(args[0])}"
        elif kind == "getitem":
            expr = f"{self._arg(args[0])}[{self._arg(args[1])}]"
        elif kind == "getattr":
            expr = f"{self._arg(args[0])}.{instr.target}"
        elif kind == "ibinop":
            if type(args[0]) is Ref:
                return f"{self._arg(args[0])} {instr.target}= {self._arg(args[1])}"
            fn = self._name(getattr(operator, "i" + _INPLACE_NAMES[instr.target]), "f")
            return f"{fn}({self._arg(args[0])}, {self._arg(args[1])})"
        elif kind == "setitem":
            return f"{self._arg(args[0])}[{self._arg(args[1])}] = {self._arg(args[2])}"
        else:
            raise AssertionError(kind)
        if instr.asarray:
            expr = f"ASARRAY({expr})"
        return target + expr

    def _ufunc_name(self, instr):
        if instr.kind == "binop":
            return UFUNC_OF[instr.target]
        if instr.kind == "unop":
            return UNFUNCS["neg"]
        return instr.name

    def _reusable_input(self, instr, last, i):
        """Inside a CUDA graph, a dead input whose buffer can take this elementwise result
        (out=), or None: produced here, never sharing memory with another value, not outliving
        the step, and of the result's exact type, shape and dtype. A graph holds the memory of
        every array it makes for good, so each one saved counts. Host replays let the allocator
        reuse memory, as eager steps do: writing into dead inputs and keeping buffers across
        replays made them no faster (numpy: within 1% on the MLP and LeNet) and kept more
        resident (LeNet +5 MB over eager; +1.6 MB without them)."""
        if not self._in_graph or not _elementwise(instr):
            return None
        out = self.values[instr.outs]
        if out.view or not out.meta[1] or out.nbytes < REUSE_BYTES:
            return None
        for a in instr.args:
            if (type(a) is Ref and last.get(a.vid) == i and self.values[a.vid].meta == out.meta
                    and self._dead_after(a.vid, last, i)):
                return a.vid
        return None

    def _dead_after(self, vid, last, i):
        """Whether every value sharing vid's memory is a writeable intermediate that nobody
        reads after instruction i (nor after the step)."""
        group = self._intermediate_group(vid)
        return group is not None and all(last.get(m, -1) <= i for m in group)

    def _intermediate_group(self, vid):
        """The values sharing vid's memory when all are writeable intermediates that do not
        outlive the step, else None (a view of a constant, an input, a result)."""
        group = memory_group(self.values, vid)
        if group is not None and all(
                self.values[m].kind == "produced" and self.values[m].writeable
                and m not in self.spec.escaping for m in group):
            return group
        return None

    def _gradient_writebacks(self):
        """The values that escape the step only as one tensor's .grad."""
        uses = {}
        for wb in self.spec.writebacks:
            if type(wb[-1]) is int:
                uses[wb[-1]] = uses.get(wb[-1], 0) + 1
        result = self.spec.escaping - set(uses)
        return {wb[2] for wb in self.spec.writebacks if wb[0] == "grad" and wb[2] is not None
                and uses[wb[2]] == 1 and wb[2] not in result}

    def takes_out(self, instr):
        """Whether the instruction can write its one result into a given array (out=)."""
        if instr.kind == "method" and type(instr.outs) is int and not instr.asarray:
            if instr.target == "copy":  # made C-contiguous: copyto(out, a) does the same
                return len(instr.args) == 1 and not instr.kwargs
            return instr.target == "sum" and not {"out", "dtype"} & set(instr.kwargs)
        return _elementwise(instr) or _plain_matmul(instr)

    def _reclaimable_gradients(self):
        """The gradients (vids written to a .grad) that a replay may compute into the previous
        replay's gradient array, when nothing else holds that (see reclaim): made by a ufunc or a
        product, big enough, and escaping only as that one gradient."""
        grads = self.gradient_writebacks
        found = set()
        for instr in self.instrs:
            vid = instr.outs
            if (type(vid) is int and vid in grads
                    and (_elementwise(instr) or _plain_matmul(instr))):
                value = self.values[vid]
                if (not value.view and value.meta[1] and value.nbytes >= REUSE_BYTES
                        and not instr.asarray and not value.aliases):
                    found.add(vid)
        return found

    def _result(self, template, copy=False):
        kind = template[0]
        if kind == "tensor":  # a graph's output is overwritten by its next launch: copy it
            return f"TENSOR(v{template[1]}{'.copy()' if copy else ''})"
        if kind == "freed":  # differentiating it raises eager's error (backward.freed)
            return (f"FREED(TENSOR(v{template[1]}{'.copy()' if copy else ''}), "
                    f"{self._literal(template[2])})")
        if kind == "const":
            return self._literal(template[1])
        if kind == "expr":
            return template[1]
        if kind == "live":
            return f"L[{template[1]}]"
        items = [self._result(t, copy) for t in template[1]]
        if kind == "tuple":
            return "(" + "".join(item + ", " for item in items) + ")"
        if kind == "list":
            return "[" + ", ".join(items) + "]"
        if kind == "dict":
            return "{" + ", ".join(f"{self._literal(k)}: {item}"
                                   for k, item in zip(template[2], items)) + "}"
        if kind == "record":
            return (f"{self._name(rebuild, 'f')}({self._name(template[2], 'rec')}, ("
                    + "".join(item + ", " for item in items) + "))")
        raise AssertionError(kind)


_INPLACE_NAMES = {"+": "add", "-": "sub", "*": "mul", "/": "truediv", "//": "floordiv",
                  "%": "mod", "**": "pow", "@": "matmul", "&": "and", "|": "or", "^": "xor",
                  "<<": "lshift", ">>": "rshift"}


_PLAIN = (int, float, bool, str, type(None))
_ADD_REDUCE = numpy.add.reduce  # one object: a bound method is made anew on every lookup


def _state_entries(state):
    """What an optimizer update reads of its state on the host, as a tuple to compare with the
    last call's (with the group's settings, all it reads): an array entry by its key alone (the
    replay binds arrays afresh; only numbers feed the host pass)."""
    types = backend.ARRAY_TYPES
    return None if state is None else tuple(
        k if type(v) in types or type(v) is NullArray else (k, v) for k, v in state.items())


def _reusable_pass(segments, cache, scalars):
    """What a host pass whose every update came from the cache read: per group its settings, per
    parameter its state dict (both as the cache holds them); or None when some state holds a
    number (Adam's step: its numbers change each call). _reused_pass finds the next pass the
    same for a few identity checks instead of a walk over every update (SGD's numbers stay put
    until a scheduler moves lr)."""
    groups, states = {}, []
    for index, seg in enumerate(segments):
        settings, entries = cache[index][0]
        if entries is None or any(type(entry) is tuple for entry in entries):
            return None  # (key, number) entries: see _state_entries
        opt = seg.optimizer
        groups[id(opt), seg.group_index] = (opt, seg.group_index, seg.group, settings)
        state = opt.state.get(seg.param)
        states.append((opt, seg.param, state, len(state)))
    return tuple(groups.values()), states, scalars


def _reused_pass(reuse):
    """The last pass's numbers if nothing it read has changed (see _reusable_pass), else None.
    The replay's guards have checked the state arrays' keys and layouts already."""
    groups, states, scalars = reuse
    for opt, index, group, settings in groups:
        current = opt.param_groups
        if (index >= len(current) or current[index] is not group
                or not _same_key(settings, tuple(group.values()))):
            return None
    for opt, param, state, size in states:
        if opt.state.get(param) is not state or len(state) != size:
            return None
    return scalars


def _state_matches(state, entries):
    """Whether state gives these _state_entries (without building them: the host pass asks this
    for every parameter of every replay)."""
    if state is None or entries is None:
        return state is None and entries is None
    if len(state) != len(entries):
        return False
    types = backend.ARRAY_TYPES
    for key, entry in zip(state, entries):
        value = state[key]
        if type(entry) is tuple:  # (key, number)
            if entry[0] != key or type(value) in types or not _same_key(entry[1], value):
                return False
        elif entry != key or (type(value) not in types and type(value) is not NullArray):
            return False
    return True


def _plain_values(values):
    """Whether every value of a host-pass key (the group's settings but its parameter list, which
    compares by identity first; the numbers of _state_entries) compares as a plain Python value,
    so == on keys means the same inputs."""
    return all(type(v) in _PLAIN or (type(v) is tuple and all(type(e) in _PLAIN for e in v))
               for v in values)


def _same_key(a, b):
    try:
        return a == b
    except (ValueError, TypeError, RuntimeError):  # a tensor or array in the group now
        return False


def _counts(old):
    array = old.array
    return sys.getrefcount(old), sys.getrefcount(array)


def _held_once(old):  # called as reclaim calls _counts: from a function given the tensor
    return _counts(old)


def _sole_owner_counts():
    old = Tensor(numpy.empty(1))  # held by one local, as a replay holds the old gradient
    return _held_once(old)


def reclaim(old, meta, device):
    """The array to compute this replay's gradient into: the previous gradient's (`old`, the
    tensor that this replay's zero_grad dropped) when nothing but the replay holds it or its array,
    it owns its memory and has the gradient's type, shape and dtype; else a new array. A fresh
    gradient of a big weight costs page faults each step; a user who kept the old gradient keeps
    it unchanged."""
    if old is not None and _counts(old) == _SOLE_OWNER:
        array = old.array
        if (getattr(array, "base", 0) is None and (type(array), array.shape, array.dtype) == meta
                and array.flags.c_contiguous):
            return array
    return backend.create(device, "empty", meta[1], dtype=meta[2])


_SOLE_OWNER = _sole_owner_counts()


def same_value(now, traced):
    """Whether a Python value read by a program's function is still the one it was traced with
    (the same object, or an equal one of the same type: 0.5 is not 0.5 again after arithmetic)."""
    return now is traced or (type(now) is type(traced) and now == traced)


def optimizer_members(optimizer):
    """An optimizer's groups and their parameters, by identity (see same_members)."""
    return [(group, group["params"], tuple(group["params"])) for group in optimizer.param_groups]


def same_members(optimizer, members):
    groups = optimizer.param_groups
    if len(groups) != len(members):
        return False
    for group, (group0, params, params0) in zip(groups, members):
        if (group is not group0 or group["params"] is not params or len(params) != len(params0)
                or any(map(operator.is_not, params, params0))):
            return False
    return True


def source_literal(obj):
    """obj written as Python source that evaluates to an equal object of its type, or None: an
    enum member, an object, a NaN have none (a program names them instead; their repr is not
    Python)."""
    t = type(obj)
    if obj is None or t is bool or t is int or t is str:
        return repr(obj)
    if t is float and math.isfinite(obj):
        return repr(obj)  # repr round-trips a float exactly
    if obj is Ellipsis:
        return "..."
    if t is tuple and all(type(v) in (int, bool) or v is None for v in obj):
        return "(" + "".join(repr(v) + ", " for v in obj) + ")"
    return None


@functools.lru_cache(maxsize=64)
def _code(source, filename):
    """The compiled source: CPython takes about 1.5 ms for an MLP step's, and a function compiled
    again (a new model of the same shape, a benchmark's next round) generates the same source.

    CPython's parser and compiler hold about 4 KB per line of source while they run (9 MB for a
    4-layer GPT step's 2,500 lines), and part of it stays in its small-object arenas. The heap's
    free pages (the recorded step's intermediates, all freed by now) go back to the kernel first,
    so that memory does not stack on the resident memory the step left behind: LeNet's peak went
    from 0.2 MB above an eager run's to 0.1 MB below. The next step touches its pages again once."""
    backend.release_freed_memory()
    return compile(source, filename, "exec")


def _elementwise(instr):
    """Whether the instruction is one ufunc call with one array result (so out= can take it)."""
    if type(instr.outs) is not int or instr.asarray or instr.xp is None:
        return False
    kind = instr.kind
    if kind == "binop":
        return instr.target in UFUNC_OF
    if kind == "unop":
        return instr.target == "-"
    if kind == "call":
        ufunc = getattr(numpy, instr.name, None)
        return (isinstance(ufunc, numpy.ufunc) and not instr.kwargs and ufunc.nout == 1
                and len(instr.args) == ufunc.nin
                and getattr(instr.xp, instr.name, None) is instr.target)
    return False


def _plain_matmul(instr):
    """A product through the matmul dispatcher (ops/linalg.py), which xp.matmul(out=) computes
    alike."""
    return (instr.kind == "call" and instr.name == "matmul" and not instr.kwargs
            and len(instr.args) == 2 and type(instr.outs) is int and not instr.asarray
            and instr.xp is not None)


def live_instructions(instrs, escaping):
    """The instructions whose results someone needs: a pure one (no effect but its result) goes
    when nothing later reads what it made."""
    needed, kept = set(escaping), []
    for instr in reversed(instrs):
        if instr.pure and not any(vid in needed for vid in instr.made()):
            continue
        kept.append(instr)
        needed.update(instr.reads)
    kept.reverse()
    return kept
