"""A model's layers, output shapes and parameter counts as a table, like torchinfo.summary.

Module has no hook registry, so summary() wraps the forward of every submodule for the length of
one forward pass (an instance attribute shadows the class's forward, and is deleted afterwards)
and records each call: depth in the module tree, output shape, parameters owned.
"""
import collections

from .. import backend, creation
from ..autograd import no_grad
from ..tensor import Tensor

Row = collections.namedtuple("Row", "name kind depth output_shape num_params trainable")


class ModelSummary:
    """What summary() found: `rows` (one Row per module call, in call order), `total_params`,
    `trainable_params`, `non_trainable_params`, `param_bytes`; str() is the table."""

    def __init__(self, model_name, rows, total, trainable, param_bytes):
        self.model_name, self.rows = model_name, rows
        self.total_params, self.trainable_params = total, trainable
        self.non_trainable_params = total - trainable
        self.param_bytes = param_bytes

    def __str__(self):
        table = [("Layer (type)", "Output Shape", "Param #")]
        for r in self.rows:
            label = "  " * r.depth + (f"{r.name} ({r.kind})" if r.name else r.kind)
            table.append((label, _shape_text(r.output_shape),
                          f"{r.num_params:,}" if r.num_params else "--"))
        widths = [max(len(row[k]) for row in table) for k in range(3)]
        line = "=" * (sum(widths) + 4)

        def fmt(row):
            return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"
        return "\n".join([line, fmt(table[0]), line, *map(fmt, table[1:]), line,
                          f"Total params: {self.total_params:,}",
                          f"Trainable params: {self.trainable_params:,}",
                          f"Non-trainable params: {self.non_trainable_params:,}",
                          f"Params size (MB): {self.param_bytes / 1e6:.2f}", line])

    def __repr__(self):
        return str(self)


def _shape_text(shape):
    if shape is None:
        return "--"
    if shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(str(list(s)) for s in shape)
    return str(list(shape))


def _output_shape(out):
    if isinstance(out, Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        shapes = [tuple(o.shape) for o in out if isinstance(o, Tensor)]
        return shapes[0] if len(shapes) == 1 else shapes or None
    return None


def summary(model, input_size=None, device="cpu", dtype=None, input_data=None, verbose=1):
    """Run `model` once on zeros of `input_size` (batch dim included, as in torchinfo; a list of
    sizes for several inputs) or on `input_data`, in eval mode and under no_grad, and return a
    ModelSummary: every module call with its depth, output shape and parameter count (its own
    parameters; a container's are listed under its children), then total, trainable and
    non-trainable parameters of the whole model. verbose=1 also prints the table.
    The model's training flags are restored afterwards and no buffer moves (eval mode)."""
    if input_data is None:
        if input_size is None:
            raise ValueError("summary: pass input_size (e.g. (1, 784), batch dim included) or "
                             "input_data")
        sizes = input_size if input_size and isinstance(input_size[0], (tuple, list)) else [
            input_size]
        inputs = [creation.zeros(*tuple(s), dtype=dtype or backend.DEFAULT_FLOAT, device=device)
                  for s in sizes]
    else:
        inputs = list(input_data) if isinstance(input_data, (tuple, list)) else [input_data]
    rows = []
    names = {id(m): name for name, m in model.named_modules()}
    depth = [0]

    def wrap(module):
        forward = module.forward  # the class's bound method

        def recorded(*args, **kwargs):
            row = len(rows)
            rows.append(None)  # keeps call order: a container's row comes before its children's
            own = [p for p in module.parameters(recurse=False)]
            depth[0] += 1
            try:
                out = forward(*args, **kwargs)
            finally:
                depth[0] -= 1
            rows[row] = Row(names.get(id(module), ""), type(module).__name__, depth[0],
                            _output_shape(out), sum(p.numel() for p in own),
                            sum(p.numel() for p in own if p.requires_grad))
            return out
        return recorded

    modules = [m for _, m in model.named_modules()]
    modes = [m.training for m in modules]
    for m in modules:
        object.__setattr__(m, "forward", wrap(m))
    try:
        model.eval()
        with no_grad():
            model(*inputs)
    finally:
        for m in modules:
            object.__delattr__(m, "forward")
        for m, mode in zip(modules, modes):
            object.__setattr__(m, "training", mode)
    params = list(model.parameters())
    result = ModelSummary(type(model).__name__, [r for r in rows if r is not None],
                          sum(p.numel() for p in params),
                          sum(p.numel() for p in params if p.requires_grad),
                          sum(p.numel() * p.dtype.itemsize for p in params))
    if verbose:
        print(result)
    return result
