"""Adam and AdamW: one update rule over the Optimizer base (raw arrays, in place, one fused kernel
on CUDA)."""
import math

from .. import fused
from ..backend import xp_of
from .optimizer import Optimizer, _nonnegative


class Adam(Optimizer):
    """Adam with optional amsgrad and maximize, exactly like torch.optim.Adam; weight_decay is
    L2 (added to the gradient) unless decoupled_weight_decay=True, which makes it AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        name = type(self).__name__
        _nonnegative(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{name}: invalid betas {betas!r}; each must be in [0, 1)")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(p), xp.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] = step = state["step"] + 1
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        fused.adam_step(p, g, state["exp_avg"], state["exp_avg_sq"], vmax,
                        lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                        weight_decay=group["weight_decay"],
                        decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
                        step_size=group["lr"] / (1 - beta1 ** step),  # bias corrections: host
                        bias_correction2_sqrt=math.sqrt(1 - beta2 ** step))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam step), like
    torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
