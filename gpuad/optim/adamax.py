"""Adamax: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from ..backend import xp_of
from .optimizer import (
    Optimizer,
    check_adam_options,
    init_state,
    layout_free,
    lerp_inplace,
)


class Adamax(Optimizer):
    """Adam with the infinity norm, exactly like torch.optim.Adamax (eps is added to |g| before
    the running max)."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        check_adam_options("Adamax", lr, betas, eps, weight_decay, capturable, differentiable)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            init_state(state, p, "exp_avg", "exp_inf")
        beta1, beta2 = group["betas"]
        g = -g if group["maximize"] else g
        state["step"] = step = state["step"] + 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        lerp_inplace(exp_avg, g, 1 - beta1)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(g) + group["eps"], out=exp_inf)
        p -= group["lr"] / (1 - beta1 ** step) * exp_avg / exp_inf
