"""RMSprop: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from ..backend import xp_of
from .optimizer import (
    Optimizer,
    check_nonnegative,
    init_state,
    layout_free,
    refuse_torch_only_options,
)


class RMSprop(Optimizer):
    """RMSprop with optional momentum, centering, weight decay and maximize, exactly like
    torch.optim.RMSprop (eps is added after the square root)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        refuse_torch_only_options("RMSprop", capturable=capturable, differentiable=differentiable)
        check_nonnegative("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                     momentum=momentum)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            init_state(state, p, "square_avg", *(("grad_avg",) if group["centered"] else ()))
        alpha, momentum = group["alpha"], group["momentum"]
        g = -g if group["maximize"] else g
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (g - grad_avg) * (1 - alpha)  # torch's lerp_
            avg = xp.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = xp.sqrt(square_avg) + group["eps"]
        if momentum > 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # created on first use, so OneCycleLR may turn momentum on later
                buf = state["momentum_buffer"] = xp.zeros_like(p)
            buf *= momentum
            buf += g / avg
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * g / avg
