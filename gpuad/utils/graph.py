"""The recorded graph behind a tensor as Graphviz DOT text (no Graphviz needed to produce it).

Reads Node.inputs only; ids follow creation order (Node.seq), so the same computation gives the
same text on every run and tests can compare it.
"""
from ..tensor import Tensor
from ..trace import _attributes  # the same "k=v" text the evaluation trace prints


def to_dot(tensor, names=None):
    """DOT text of the tape behind `tensor` (or a list of tensors): one ellipse per tensor (shape,
    dtype; leaves that require grad marked, constants grey), one box per op, edges input -> op ->
    output. `names` maps labels to tensors, like torchviz's params: {"w": w, "b": b}.
    Render it with `dot -Tpng graph.dot -o graph.png` or any online Graphviz viewer."""
    roots = list(tensor) if isinstance(tensor, (list, tuple)) else [tensor]
    label_of = {id(t): name for name, t in (names or {}).items()}
    ops = _recorded(roots)
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


def _recorded(roots):
    """Recorded tensors reachable from roots, oldest node first (explicit stack, no recursion)."""
    stack = [t for t in roots if t._node is not None]
    seen, found = set(map(id, stack)), []
    while stack:
        t = stack.pop()
        found.append(t)
        for x in t._node.inputs or ():
            if getattr(x, "_node", None) is not None and id(x) not in seen:
                seen.add(id(x))
                stack.append(x)
    found.sort(key=lambda t: t._node.seq)
    return found


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
