"""Reading the tape: evaluation traces (the forward and reverse sweeps of one call) and to_dot (the
recorded graph behind a tensor as Graphviz DOT text).

A teaching view on top of autograd.py, after Griewank & Walther's tables: inputs are v_{1-n}..v_0,
every recorded op that depends on them is v_1..v_m in creation (Node.seq) order, and each
adjoint v̄_i is the sum over v_i's consumers of v̄_consumer · ∂consumer/∂v_i, computed by
the ops' own vjp rules. It only reads the tape; it never changes how backward() works.
"""
import dataclasses
import inspect
import numbers
import unicodedata

import numpy

from . import backend
from .autograd import enable_grad, no_grad, recorded_order, seed_gradient
from .tensor import Tensor


@dataclasses.dataclass
class ForwardRow:
    """One line of the primal trace: `name = expr`, e.g. v3 = add(v1, v0) = -16."""
    index: int        # 1-n..0 for inputs, 1..m for recorded ops in creation order
    name: str         # "v-1", "v0", "v3"
    op: str           # the op's name ("mul", "log", "_getitem"), or "input"
    parents: tuple    # what the op read, in argument order: variable names, constants as text
    value: object     # a Python number for one-element values, a numpy array otherwise
    expr: str         # "mul(v-1, v0)", "mul(v0, 2.0)", "sum(v2, dim=0)"; an input's argument name
    shape: tuple
    dtype: str


@dataclasses.dataclass
class Term:
    """One consumer's contribution v̄_consumer · ∂consumer/∂v_i to an adjoint."""
    consumer: str     # "v4"
    arg: int          # which argument of the consumer v_i is (an input used twice gives two terms)
    adjoint: object   # v̄_consumer
    partial: object   # ∂consumer/∂v_i (the rule run with g = 1) for one-element ones, else None
    value: object     # the contribution itself: the vjp rule run with g = v̄_consumer


@dataclasses.dataclass
class AdjointRow:
    """One line of the adjoint trace: v̄_i = sum of its terms (or the seed, for the output)."""
    index: int
    name: str         # the variable's name, "v3"; the adjoint is written v̄3
    value: object     # v̄_i
    terms: list       # Term per (consumer, argument), newest consumer first
    seed: object = None  # ȳ, for the output only


class Trace:
    """The result of gpuad.tape.trace: rows as data (forward, reverse) and a text table (str())."""

    def __init__(self, forward, reverse, labels, output):
        self.forward, self.reverse, self.labels, self.output = forward, reverse, labels, output
        self.output_label = next((n for n in ("y", "f", "out") if n not in labels), "output")
        by_name = {row.name: row for row in reverse}
        n = len(labels)
        self.value = next(r.value for r in forward if r.name == output)
        self.grads = tuple(by_name[f"v{i - n + 1}"].value for i in range(n))  # ∂y/∂inputs

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"<Trace of {len(self.labels)} inputs and {len(self.forward) - len(self.labels)} "
                f"ops: y = {_fmt(self.value)}>")

    def table(self, ascii=False):
        """The two sweeps as aligned text; ascii=True writes v3bar, d, * for v̄3, ∂, ·."""
        bar, dee, dot = ("bar", "d", "*") if ascii else ("\u0304", "∂", "·")

        def adj(name):  # v̄3, or v3bar
            return f"v{bar}{name[1:]}" if not ascii else f"{name}{bar}"

        forward = [(r.name, r.expr, _fmt(r.value)) for r in self.forward]
        forward.append((self.output_label, self.output, _fmt(self.value)))
        reverse = []
        for r in self.reverse:
            if r.seed is not None:
                out = self.output_label
                formula = f"{out}{bar} (seed)" if ascii else f"{out[0]}{bar}{out[1:]} (seed)"
                values = _fmt(r.seed)
            elif not r.terms:
                formula, values = "0 (no consumers)", "0"
            else:
                formula = " + ".join(f"{adj(t.consumer)}{dot}{dee}{t.consumer}/{dee}{r.name}"
                                     for t in r.terms)
                values = " + ".join(
                    f"{_factor(t.adjoint)}{dot}{_factor(t.partial)}" if t.partial is not None
                    else _fmt(t.value) for t in r.terms)
            reverse.append((adj(r.name), formula, values, _fmt(r.value)))
        n = len(self.labels)
        grads = ", ".join(f"{label + bar if ascii else label[0] + bar + label[1:]} = "
                          f"{adj(f'v{i - n + 1}')} = {_fmt(g)}"
                          for i, (label, g) in enumerate(zip(self.labels, self.grads)))
        return "\n".join(["forward (primal) trace"] + _align(forward, " = ") +
                         ["", "reverse (adjoint) trace"] + _align(reverse, " = ") +
                         ["", f"{self.output_label} = {_fmt(self.value)};  {grads}"])


def trace(f, *inputs, grad_output=None):
    """Run f(*inputs) once and return its evaluation trace (a Trace): forward values of every
    intermediate and the reverse sweep's adjoints, each split into its consumers' contributions.

    Python numbers and lists become float64 tensors on the device of the first tensor input (the
    CPU if none); tensors and arrays keep their dtype and device and are detached: the trace
    differentiates with respect to these values and writes no .grad. f must return one tensor;
    a non-scalar output needs grad_output (ȳ), as backward() does."""
    arrays = [x.array if isinstance(x, Tensor) else x for x in inputs if
              isinstance(x, Tensor) or backend.is_array(x)]
    device = backend.device_of(arrays[0]) if arrays else backend.CPU
    leaves = [_as_leaf(x, device) for x in inputs]
    with enable_grad():
        y = f(*leaves)
    if not isinstance(y, Tensor):
        raise TypeError(f"trace: f must return a gpuad.Tensor, but it returned {type(y).__name__}")
    index = {id(x): i - len(leaves) + 1 for i, x in enumerate(leaves)}  # inputs: 1-n..0
    if id(y) not in index and y._node is None:
        raise ValueError("trace: f's output does not depend on its inputs (nothing was recorded)")
    tensors = _ops_reaching(y)
    active = []  # recorded tensors that depend on an input: v_1..v_m
    for t in tensors:
        if any(id(x) in index for x in t._node.inputs):
            index[id(t)] = len(active) + 1
            active.append(t)
    if id(y) not in index:
        raise ValueError("trace: f's output does not depend on its inputs")
    names = {key: f"v{i}" for key, i in index.items()}
    labels = _labels(f, len(leaves))
    forward = [ForwardRow(index[id(x)], names[id(x)], "input", (), _value(x), label,
                          tuple(x.shape), str(x.dtype)) for x, label in zip(leaves, labels)]
    for t in active:
        node = t._node
        parents = tuple(names.get(id(x)) or _constant(x) for x in node.inputs)
        forward.append(ForwardRow(index[id(t)], names[id(t)], node.name, parents, _value(t),
                                  _expr(node, parents), tuple(t.shape), str(t.dtype)))
    reverse = _reverse_sweep(y, leaves, active, index, names, grad_output)
    return Trace(forward, reverse, labels, names[id(y)])


def _reverse_sweep(y, leaves, active, index, names, grad_output):
    """The reverse walk of autograd.run_backward, keeping each contribution instead of only sums."""
    seed = seed_gradient(y, grad_output, "trace", "grad_output")
    adjoint = {id(y): seed}
    terms = {id(t): [] for t in leaves + active}
    rows = []
    with no_grad():
        for t in reversed(active):
            node, g = t._node, adjoint.get(id(t))
            rows.append(AdjointRow(index[id(t)], names[id(t)], _value(g) if g is not None else
                                   _zero(t), terms[id(t)], _value(seed) if t is y else None))
            if g is None:
                continue  # nothing flows back through this op (its rule returned None)
            grads = node.vjp(g, t, *node.inputs, **node.kwargs)
            scalar = t.array.size == 1
            ones = node.vjp(Tensor(backend.xp_of(t.array).ones_like(t.array)), t, *node.inputs,
                            **node.kwargs) if scalar else None
            for k, (x, gx) in enumerate(zip(node.inputs, grads)):
                if gx is None or id(x) not in index:
                    continue
                gx = _like(gx, x)
                partial = None
                if scalar and x.array.size == 1 and ones[k] is not None:
                    partial = _value(_like(ones[k], x))
                terms[id(x)].append(Term(names[id(t)], k, _value(g), partial, _value(gx)))
                adjoint[id(x)] = gx if id(x) not in adjoint else adjoint[id(x)] + gx
    for x in reversed(leaves):
        g = adjoint.get(id(x))
        rows.append(AdjointRow(index[id(x)], names[id(x)], _value(g) if g is not None else
                               _zero(x), terms[id(x)], _value(seed) if x is y else None))
    return rows


def _ops_reaching(y):
    """Recorded tensors that y depends on, oldest first; the graph must be intact."""
    found = recorded_order([y])[::-1]
    if any(t._node.inputs is None for t in found):
        raise RuntimeError("trace: the graph behind f's output was already freed by a backward "
                           "inside f; trace needs it intact")
    return found


def _as_leaf(x, device):
    if isinstance(x, Tensor):
        data = x.array
    elif backend.is_array(x):
        data = x
    else:
        data = backend.asarray(x, backend.float64, device)
    if data.dtype.kind not in "fc":
        data = data.astype(backend.float64)
    return Tensor(data, requires_grad=True)


def _labels(f, n):
    """The inputs' names: f's positional parameters when it has n of them, else x1..xn."""
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[:n] if len(params) >= n else [f"x{i + 1}" for i in range(n)]


def _like(gx, x):
    if gx.array.shape != x.array.shape:
        gx = gx.sum_to_size(x.array.shape)  # the engine's unbroadcast, as in run_backward
    return gx if gx.array.dtype == x.array.dtype else gx.to(x.array.dtype)


def _value(t):
    """Plain data: a Python number for one element (as `.item()`), a numpy array otherwise."""
    array = backend.asnumpy(t.array)
    return array.item() if array.ndim == 0 else array.copy()


def _zero(t):
    return _value(Tensor(backend.xp_of(t.array).zeros_like(t.array)))


def _fmt(value):
    if value is None:
        return "None"
    if isinstance(value, numbers.Number):
        return str(value) if isinstance(value, bool) else f"{value:.6g}"
    text = numpy.array2string(numpy.asarray(value), separator=", ", threshold=12, edgeitems=2,
                              max_line_width=10**6, formatter={"float_kind": _short})
    return " ".join(text.split())


def _short(v):
    return f"{v:.4g}"


def _factor(value):
    text = _fmt(value)
    return f"({text})" if text.startswith("-") else text


def _constant(x):
    """How a constant argument (not a function of the inputs) is printed in an expression."""
    if isinstance(x, Tensor):
        if x.array.size <= 6:
            return _fmt(_value(x))
        return f"const{tuple(x.shape)}"
    return repr(x)


def _simple(v):
    if isinstance(v, (tuple, list)):
        return all(_simple(e) for e in v)
    return v is None or isinstance(v, (numbers.Number, str, slice, numpy.dtype, backend.Device)) \
        or v is Ellipsis


def _index_text(index):
    def one(i):
        if isinstance(i, slice):
            text = f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}"
            return text if i.step is None else f"{text}:{i.step}"
        return "..." if i is Ellipsis else str(i)
    return ", ".join(map(one, index)) if isinstance(index, tuple) else one(index)


_DEFAULTS = {}


def _defaults(name):
    if name not in _DEFAULTS:
        from .ops import REGISTRY
        forward = getattr(REGISTRY.get(name), "forward", None)
        _DEFAULTS[name] = {} if forward is None else {
            p.name: p.default for p in inspect.signature(forward).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    return _DEFAULTS[name]


def _attributes(node):
    """The node's keyword attributes worth printing, as "k=v": simple values that differ from the
    op's defaults (the tape stores defaults too). Also used by utils.graph."""
    defaults = _defaults(node.name)
    return [f"{k}={_index_text(v) if isinstance(v, slice) else v}" for k, v in node.kwargs.items()
            if _simple(v) and not (k in defaults and type(defaults[k]) is type(v)
                                   and defaults[k] == v)]


def _expr(node, parents):
    if node.name == "_getitem" and _simple(node.kwargs.get("index")):
        return f"{parents[0]}[{_index_text(node.kwargs['index'])}]"
    return f"{node.name}({', '.join(list(parents) + _attributes(node))})"


def _width(text):
    return sum(not unicodedata.combining(c) for c in text)


def _align(rows, sep):
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  " + sep.join(c + " " * (w - _width(c)) for c, w in zip(r, widths)) + sep + r[-1]
            for r in rows]


# ---- the recorded graph as DOT text (no Graphviz needed to produce it); ids follow creation
# order (Node.seq), so the same computation gives the same text on every run.
def to_dot(tensor, names=None):
    """DOT text of the tape behind `tensor` (or a list of tensors): one ellipse per tensor (shape,
    dtype; leaves that require grad marked, constants grey), one box per op, edges input -> op ->
    output. `names` maps labels to tensors, like torchviz's params: {"w": w, "b": b}.
    Render it with `dot -Tpng graph.dot -o graph.png` or any online Graphviz viewer."""
    roots = list(tensor) if isinstance(tensor, (list, tuple)) else [tensor]
    label_of = {id(t): name for name, t in (names or {}).items()}
    ops = recorded_order(roots)[::-1]
    ids = {}  # id(tensor) -> "t<k>", numbered by first appearance along the tape

    def tid(t):
        if id(t) not in ids:
            ids[id(t)] = f"t{len(ids)}"
            tensors.append(t)
        return ids[id(t)]

    tensors, edges, op_lines = [], [], []
    for k, t in enumerate(ops):
        node, op = t._node, f"op{k}"
        args = []
        for x in node.inputs or ():
            if isinstance(x, Tensor):
                edges.append(f"  {tid(x)} -> {op};")
                args.append("·")
            else:
                args.append(repr(x))
        attrs = _attributes(node)
        text = node.name.lstrip("_")
        if any(a != "·" for a in args) or attrs:
            text += f"({', '.join(args + attrs)})"
        if node.inputs is None:
            text += "\n(freed by backward)"
        op_lines.append(f'  {op} [label="{_escape(text)}", shape=box, style=filled, '
                        f'fillcolor="#dbe8f7"];')
        edges.append(f"  {op} -> {tid(t)};")
    for t in roots:
        tid(t)
    roots_ids = {id(t) for t in roots}
    lines = ["digraph gpuad {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for t in tensors:
        attrs = _tensor_attrs(t, label_of.get(id(t)), id(t) in roots_ids)
        lines.append(f"  {ids[id(t)]} [{attrs}];")
    return "\n".join(lines + op_lines + edges + ["}"]) + "\n"


def _tensor_attrs(t, name, is_root):
    head = name or ("output" if is_root else "")
    body = f"{tuple(t.shape)} {t.dtype}"
    if t._node is None:
        kind, color = ("requires_grad", "#c8e6c9") if t.requires_grad else ("constant", "#e0e0e0")
        text = "\n".join(p for p in (head, body, kind) if p)
        return f'label="{_escape(text)}", shape=ellipse, style=filled, fillcolor="{color}"'
    text = "\n".join(p for p in (head, body) if p)
    fill = ', style=filled, fillcolor="#ffe0b2"' if is_root else ""
    return f'label="{_escape(text)}", shape=ellipse{fill}'


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
