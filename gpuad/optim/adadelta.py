"""Adadelta: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from ..backend import xp_of
from .optimizer import (
    Optimizer,
    check_nonnegative,
    init_state,
    layout_free,
    refuse_torch_only_options,
)


class Adadelta(Optimizer):
    """Adadelta with weight decay and maximize, exactly like torch.optim.Adadelta (lr scales the
    step; eps goes inside both square roots)."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        check_nonnegative("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: invalid rho {rho!r}; it must be in [0, 1]")
        refuse_torch_only_options("Adadelta", capturable=capturable, differentiable=differentiable)
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            init_state(state, p, "square_avg", "acc_delta")
        rho, eps = group["rho"], group["eps"]
        g = -g if group["maximize"] else g
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p -= group["lr"] * delta
