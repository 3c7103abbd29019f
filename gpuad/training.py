"""The epoch loop and its meters: what every training script would otherwise write again.

Sits above nn, optim and data. Losses and accuracies are accumulated on the device and read back
(a host synchronisation) only every `log_every` steps for the progress bar and once at the end.
"""
import itertools
import sys
import time

from tqdm.auto import tqdm

from .autograd import no_grad
from .preemption import EXIT_PREEMPTED


def accuracy(logits, targets):
    """Fraction of rows whose arg-max equals the integer target, as a 0-d tensor on the device."""
    return (logits.argmax(dim=-1) == targets).float().mean()


class RunningMean:
    """A weighted running mean kept on the device: add(value, n) costs no host sync; .value does."""

    def __init__(self):
        self.total, self.count = None, 0

    def add(self, value, n=1):
        value = value.detach() * n
        self.total = value if self.total is None else self.total + value
        self.count += n

    @property
    def value(self):
        return float(self.total.item()) / self.count if self.count else float("nan")

    def state_dict(self):
        """The sum and count so far, for a checkpoint: a run resumed mid-epoch from them reports
        the same mean, bit for bit, as one that never stopped."""
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state):
        self.total, self.count = state["total"], state["count"]


def _show(bar, start, samples, **meters):
    """Running means and throughput on the progress bar (reading the meters syncs the device)."""
    bar.set_postfix(**{name: f"{m.value:.4f}" for name, m in meters.items()},
                    samples_s=f"{samples / (time.perf_counter() - start):.0f}")


def training_step(model, optimizer, loss_fn):
    """The step train_epoch runs per batch, as a function of (inputs, targets) returning the loss:
    forward, loss, zero_grad, backward, optimizer step. Pass gpuad.compile(training_step(...))
    as train_epoch's `step` to record it once and replay it."""
    def step(inputs, targets):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return step


def train_epoch(model, loader, optimizer, loss_fn, *, max_steps=None, progress=True,
                desc="train", log_every=20, scheduler=None, should_stop=None, start_step=0,
                meter=None, step=None):
    """One pass over `loader`: forward, loss, backward, optimizer step (and scheduler step per batch
    when given). Returns {"loss", "samples", "steps", "seconds", "samples_per_s", "stopped"}.

    should_stop: a function called before each step (gpuad.preemption.StopOnSignal().should_stop);
    when it returns True the epoch ends there, with "stopped": True. start_step: the batches of
    this epoch done before (a run resumed mid-epoch skips them); max_steps counts them too.
    meter: the RunningMean of this epoch's losses to continue (its state_dict is saved with a
    mid-epoch checkpoint); "loss" is its mean, "steps" and "samples" count this call's only.
    step: `step(inputs, targets) -> loss` run per batch instead (gpuad.compile(training_step(...)),
    made once for all epochs)."""
    step = step or training_step(model, optimizer, loss_fn)
    model.train()
    meter = RunningMean() if meter is None else meter
    samples, steps, stopped = 0, 0, False
    total = len(loader) if max_steps is None else min(len(loader), max_steps)
    start = time.perf_counter()
    with tqdm(total=total, initial=min(start_step, total), desc=desc, unit="batch",
              disable=not progress, leave=False) as bar:
        for inputs, targets in itertools.islice(loader, start_step, None):
            if max_steps is not None and start_step + steps >= max_steps:
                break
            if should_stop is not None and should_stop():
                stopped = True
                break
            loss = step(inputs, targets)
            if scheduler is not None:
                scheduler.step()
            n = len(targets)
            meter.add(loss, n)
            samples, steps = samples + n, steps + 1
            bar.update(1)
            if progress and steps % log_every == 0:  # the only host syncs in the loop
                _show(bar, start, samples, loss=meter)
    seconds = time.perf_counter() - start
    return {"loss": meter.value, "samples": samples, "steps": steps, "seconds": seconds,
            "samples_per_s": samples / seconds if seconds else float("nan"), "stopped": stopped}


def evaluate(model, loader, loss_fn, *, max_steps=None, progress=True, desc="eval", log_every=20):
    """Mean loss and accuracy over `loader` (its first max_steps batches) in eval mode, without
    recording a graph."""
    model.eval()
    losses, correct, samples, steps = RunningMean(), RunningMean(), 0, 0
    total = len(loader) if max_steps is None else min(len(loader), max_steps)
    start = time.perf_counter()
    with no_grad(), tqdm(total=total, desc=desc, unit="batch", disable=not progress,
                         leave=False) as bar:
        for inputs, targets in loader:
            if max_steps is not None and steps >= max_steps:
                break
            logits = model(inputs)
            n = len(targets)
            losses.add(loss_fn(logits, targets), n)
            correct.add(accuracy(logits, targets), n)
            samples, steps = samples + n, steps + 1
            bar.update(1)
            if progress and steps % log_every == 0:
                _show(bar, start, samples, loss=losses, accuracy=correct)
    seconds = time.perf_counter() - start
    return {"loss": losses.value, "accuracy": correct.value, "samples": samples,
            "seconds": seconds, "samples_per_s": samples / seconds if seconds else float("nan")}


def exit_interrupted(checkpoint=None):
    """What a training script does on Ctrl-C: say that the last complete checkpoint is intact
    (saves are atomic) and how to continue, then exit with the shell's code for SIGINT."""
    print("interrupted: the last complete checkpoint is intact"
          + (f" at {checkpoint}; continue with --resume" if checkpoint else ""), file=sys.stderr)
    raise SystemExit(130)


def exit_preempted(signal_name, where, checkpoint=None):
    """What a training script does once it has stopped on a signal at a step boundary and saved
    `checkpoint`: say so in one line, then exit with EXIT_PREEMPTED (75, EX_TEMPFAIL)."""
    saved = (f"saved {checkpoint}; continue with --resume" if checkpoint else
             "nothing saved (no --checkpoint)")
    print(f"stopped by {signal_name} at {where}: {saved}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_PREEMPTED)
