"""RAdam: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
import math

from ..backend import xp_of
from .optimizer import (
    Optimizer,
    check_adam_options,
    decayed_gradient,
    init_state,
    layout_free,
    lerp_inplace,
)


class RAdam(Optimizer):
    """Rectified Adam, exactly like torch.optim.RAdam: plain momentum SGD while the variance
    estimate is untrustworthy (rho_t <= 5), then Adam with the rectification term; weight decay
    is L2 unless decoupled_weight_decay=True."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_adam_options("RAdam", lr, betas, eps, weight_decay, capturable, differentiable)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            init_state(state, p, "exp_avg", "exp_avg_sq")
        lr, (beta1, beta2) = group["lr"], group["betas"]
        g = decayed_gradient(p, g, group)
        state["step"] = step = state["step"] + 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_inplace(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        bias_correction1, bias_correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
        if rho_t > 5.0:  # a host decision on host numbers: no device sync
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = bias_correction2 ** 0.5 / (xp.sqrt(exp_avg_sq) + group["eps"])
            p -= exp_avg / bias_correction1 * lr * adaptive * rect
        else:
            p -= exp_avg / bias_correction1 * lr
