"""Adagrad: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from ..backend import xp_of
from .optimizer import Optimizer, check_nonnegative, layout_free, refuse_torch_only_options


class Adagrad(Optimizer):
    """Adagrad with lr decay, weight decay and maximize, exactly like torch.optim.Adagrad (dense
    gradients only)."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        refuse_torch_only_options("Adagrad", differentiable=differentiable)
        check_nonnegative("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                     initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps, "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(p, group["initial_accumulator_value"])
        g = -g if group["maximize"] else g
        state["step"] = step = state["step"] + 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = state["sum"]
        total += g * g
        p -= clr * g / (xp.sqrt(total) + group["eps"])
