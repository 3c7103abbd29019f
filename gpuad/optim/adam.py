"""Adam and AdamW: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
import math

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
        lr, weight_decay, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
        g = -g if group["maximize"] else g
        if weight_decay and group["decoupled_weight_decay"]:
            p *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * p
        state["step"] = step = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (g - m) * (1 - beta1)  # torch's lerp_
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** step) + group["eps"]
        p -= (lr / (1 - beta1 ** step)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam step), like
    torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
