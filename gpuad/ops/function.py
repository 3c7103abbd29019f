"""User-defined ops (gpuad.autograd.Function, PyTorch's shape): a forward and a backward on raw
arrays, recorded as the same Node a built-in op records."""
from ..autograd import Node, grad_mode
from ..tensor import Tensor
from . import apply


class FunctionCtx:
    """What a custom Function's forward leaves for its backward (PyTorch's ctx)."""

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays


def _function_forward(*arrays, ctx, function):
    return function.forward(ctx, *arrays)


def _function_vjp(g, y, *inputs, ctx, function):
    grads = function.backward(ctx, g.array)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(inputs):
        raise RuntimeError(f"{function.__name__}.backward returned {len(grads)} gradients, but "
                           f"forward took {len(inputs)} inputs; return None for an input without "
                           f"one")
    grads = tuple(None if gx is None else Tensor(gx) for gx in grads)
    recorded = [x for x in (g,) + inputs if getattr(x, "_requires_grad", False)]
    if grad_mode.enabled and recorded:  # create_graph: differentiating these again must fail loudly
        for gx in grads:
            if gx is not None:
                gx._node = Node(f"{function.__name__}Backward", _not_twice, tuple(recorded),
                                {"function": function.__name__})
                gx._requires_grad = True
    return grads


def _not_twice(g, y, *inputs, function):
    raise RuntimeError(f"{function}: the backward of a custom Function works on raw arrays, so it "
                       f"cannot be differentiated again (create_graph=True reached it); write "
                       f"the backward with gpuad ops, or make {function} a composite of gpuad ops")


class Function:
    """A user-defined op with its own backward rule, on raw arrays of either backend:

        class Cube(gpuad.autograd.Function):
            @staticmethod
            def forward(ctx, x):            # x: a numpy or CuPy array
                ctx.save_for_backward(x)
                return x ** 3
            @staticmethod
            def backward(ctx, g):           # one gradient array per forward input (or None)
                x, = ctx.saved_tensors
                return 3 * x ** 2 * g
        y = Cube.apply(t)

    It records the same Node as a built-in op, so it is as fast and as gradcheck-able; its
    gradient is not differentiable again (like PyTorch's once_differentiable).
    """

    @staticmethod
    def forward(ctx, *arrays):
        raise NotImplementedError("Function subclasses define a static forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses define a static backward(ctx, grad)")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(getattr(a, "requires_grad", False) for a in args)
        return apply(cls.__name__, _function_forward, _function_vjp, args,
                        {"ctx": ctx, "function": cls})
