"""NAdam: one update rule over the Optimizer base (raw arrays, in place, any backend)."""
from ..backend import xp_of
from .optimizer import (
    Optimizer,
    check_adam_options,
    decayed_gradient,
    init_state,
    layout_free,
    lerp_inplace,
)


class NAdam(Optimizer):
    """Adam with Nesterov momentum and momentum_decay, exactly like torch.optim.NAdam; weight
    decay is L2 unless decoupled_weight_decay=True (then it is AdamW's). The running product of
    momentum coefficients is the state "mu_product" (a Python float)."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        check_adam_options("NAdam", lr, betas, eps, weight_decay, capturable, differentiable,
                           momentum_decay=momentum_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})

    @layout_free
    def _update(self, p, g, state, group):
        xp = xp_of(p)
        if not state:
            init_state(state, p, "exp_avg", "exp_avg_sq", mu_product=1.0)
        lr, (beta1, beta2) = group["lr"], group["betas"]
        g = decayed_gradient(p, g, group)
        state["step"] = step = state["step"] + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * group["momentum_decay"]))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * group["momentum_decay"]))
        state["mu_product"] = mu_product = state["mu_product"] * mu
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_inplace(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        denom = xp.sqrt(exp_avg_sq / (1 - beta2 ** step)) + group["eps"]
        p -= lr * (1.0 - mu) / (1.0 - mu_product) * g / denom
        p -= lr * mu_next / (1.0 - mu_product * mu_next) * exp_avg / denom
