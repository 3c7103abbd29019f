"""Stochastic weight averaging and EMA, like torch.optim.swa_utils: AveragedModel keeps a running
average of a model's parameters, SWALR anneals the lr to a constant SWA lr, update_bn recomputes
batch-norm statistics for the averaged weights.

Averaging runs under no_grad and writes the averaged model's arrays in place, so an optimizer or
an earlier graph never sees the averages as part of its history.
"""
import itertools
import math
from copy import deepcopy

from .. import backend, nn
from ..autograd import no_grad
from ..creation import tensor
from .lr_scheduler import LRScheduler, per_group


def _lerp_(start, end, weight):
    """start <- lerp(start, end, weight) in place, in torch's two forms (exact at weight 1)."""
    if abs(weight) < 0.5:
        start.copy_(start + (end - start) * weight)
    else:
        start.copy_(end - (end - start) * (1 - weight))


def _is_float(t):
    return t.dtype.kind in "fc"


# torch's update_bn looks for its _BatchNorm base; these are gpuad's batch-norm layers
_BATCH_NORMS = tuple(getattr(nn, name) for name in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
                                                    "SyncBatchNorm") if hasattr(nn, name))


def _check_decay(decay):
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         f"[0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """multi_avg_fn for an exponential moving average: ema <- decay * ema + (1 - decay) * p."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        with no_grad():
            for ema, current in zip(ema_param_list, current_param_list):
                if _is_float(ema):
                    _lerp_(ema, current, 1 - decay)
                else:
                    ema.copy_(ema * decay + current * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """multi_avg_fn for the equal-weight average of all models seen (SWA)."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged)  # one host read per update, as torch's float weight needs
        with no_grad():
            for averaged, current in zip(averaged_param_list, current_param_list):
                if _is_float(averaged):
                    _lerp_(averaged, current, 1 / (n + 1))
                else:
                    averaged.copy_(averaged + (current - averaged) / (n + 1))
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """avg_fn for an exponential moving average (one tensor at a time)."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """avg_fn for the equal-weight average (one tensor at a time)."""
    def swa_update(averaged_param, current_param, num_averaged):
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(nn.Module):
    """A deep copy of `model` whose parameters (and buffers, with use_buffers=True) become a
    running average of `model`'s at each update_parameters(model), like
    torch.optim.swa_utils.AveragedModel: the equal-weight SWA average by default, or avg_fn
    (one tensor at a time, returns the new average) or multi_avg_fn (lists, in place). Without
    use_buffers the buffers are copied from `model`; n_averaged counts the updates. Whether an
    update is the first is known on the host, where torch reads n_averaged every time: an
    update needs no device read, and a compiled step with an EMA update replays (change
    n_averaged through load_state_dict, which reads it)."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=backend.int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers
        # whether n_averaged > 0, known on the host so that an update reads no device value
        # (and a compiled step can replay it); load_state_dict reads it from n_averaged
        self._started = False

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tracked(self, module):
        if self.use_buffers:
            return list(itertools.chain(module.parameters(), module.buffers()))
        return list(module.parameters())

    def update_parameters(self, model):
        """Fold `model`'s current weights into the average."""
        with no_grad():
            averaged = [p.detach() for p in self._tracked(self.module)]
            current = [p.detach().to(a.device) for p, a in zip(self._tracked(model), averaged)]
            n = self.n_averaged
            if not self._started:  # torch reads bool(n == 0) on every update
                for a, c in zip(averaged, current):
                    a.copy_(c)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(averaged, current, n.to(averaged[0].device))
            else:
                avg_fn = self.avg_fn or get_swa_avg_fn()
                for a, c in zip(averaged, current):
                    a.copy_(avg_fn(a, c, n.to(a.device)))
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                    b_swa.detach().copy_(b_model.detach().to(b_swa.device))
            self.n_averaged.add_(1)
            self._started = True

    def load_state_dict(self, state_dict, strict=True):
        result = super().load_state_dict(state_dict, strict)
        self._started = int(self.n_averaged.item()) > 0  # (one host read, at the load)
        return result


def update_bn(loader, model, device=None):
    """Recompute the running statistics of every batch-norm layer of `model` with one pass over
    `loader` (a cumulative average over its batches), like torch.optim.swa_utils.update_bn; a
    batch that is a tuple or list contributes its first element."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            if device is not None:
                input = input.to(device)
            model(input)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to swa_lr over anneal_epochs ("cos" or "linear"), then hold it, like
    torch.optim.swa_utils.SWALR."""
    _not_saved = ("optimizer", "anneal_func")

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
                 last_epoch=-1):
        for lr, group in zip(per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        groups = self.optimizer.param_groups
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._set_anneal_func(self._anneal_strategy)
