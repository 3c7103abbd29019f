"""ASGD: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from .optimizer import (
    Optimizer,
    check_nonnegative,
    init_state,
    layout_free,
    refuse_torch_only_options,
)


class ASGD(Optimizer):
    """Averaged SGD, exactly like torch.optim.ASGD: the state "ax" holds the running average of
    the iterates (averaging starts after t0 steps); "eta" and "mu" are Python floats."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        check_nonnegative("ASGD", lr=lr, weight_decay=weight_decay)
        refuse_torch_only_options("ASGD", capturable=capturable, differentiable=differentiable)
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                                  "weight_decay": weight_decay, "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        if not state:
            init_state(state, p, "ax", eta=float(group["lr"]), mu=1.0)
        lr, lambd = group["lr"], group["lambd"]
        g = -g if group["maximize"] else g
        state["step"] = step = state["step"] + 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        eta, ax = state["eta"], state["ax"]
        p *= 1 - lambd * eta
        p -= eta * g
        if state["mu"] != 1:
            ax += (p - ax) * state["mu"]
        else:
            ax[...] = p
        state["eta"] = lr / ((1 + lambd * lr * step) ** group["alpha"])
        state["mu"] = 1 / max(1, step - group["t0"])
