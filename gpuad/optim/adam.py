"""Adam and AdamW: one update rule over the Optimizer base (raw arrays, in place, one fused kernel
on CUDA)."""
import math

from ..backend import xp_of
from ..backend.kernels import fused
from .optimizer import (
    Optimizer,
    check_nonnegative,
    init_state,
    layout_free,
    refuse_torch_only_options,
    scratch,
)


class Adam(Optimizer):
    """Adam with optional amsgrad and maximize, exactly like torch.optim.Adam; weight_decay is
    L2 (added to the gradient) unless decoupled_weight_decay=True, which makes it AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        name = type(self).__name__
        check_nonnegative(name, lr=lr, eps=eps, weight_decay=weight_decay)
        refuse_torch_only_options(name, capturable=capturable, differentiable=differentiable)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{name}: invalid betas {betas!r}; each must be in [0, 1)")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    @layout_free
    def _update(self, p, g, state, group):
        if not state:
            init_state(state, p, "exp_avg", "exp_avg_sq",
                       *(("max_exp_avg_sq",) if group["amsgrad"] else ()))
        beta1, beta2 = group["betas"]
        state["step"] = step = state["step"] + 1
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        adam_step(p, g, state["exp_avg"], state["exp_avg_sq"], vmax,
                  lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                  weight_decay=group["weight_decay"],
                  decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
                  step_size=group["lr"] / (1 - beta1 ** step),  # bias corrections: host
                  bias_correction2_sqrt=math.sqrt(1 - beta2 ** step))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam step), like
    torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         capturable=capturable, differentiable=differentiable,
                         decoupled_weight_decay=True)


@fused("adam_step", elementwise=True, blocked=True)
def adam_step(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
              step_size, bias_correction2_sqrt):
    """torch.optim.Adam/AdamW's update of p, m, v (and vmax with amsgrad, else None) in place;
    the bias corrections come as host floats: step_size = lr / (1 - beta1^t) and
    bias_correction2_sqrt = sqrt(1 - beta2^t)."""
    xp = xp_of(p)
    d = -g if maximize else g
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        d = d + weight_decay * p
    t = xp.subtract(d, m, out=scratch(m, 0))  # scratch arrays: an array even if 0-d
    t *= 1 - beta1
    m += t  # m + (d - m)(1 - beta1): torch's lerp_
    v *= beta2
    xp.multiply(d, 1 - beta2, out=t)
    t *= d
    v += t
    if vmax is not None:
        v = xp.maximum(vmax, v, out=vmax)
    xp.sqrt(v, out=t)
    t /= bias_correction2_sqrt
    t += eps
    update = xp.multiply(m, step_size, out=scratch(m, 1))
    update /= t
    p -= update
