"""Preemption: a signal asks a training loop to stop at the next step boundary, not to die.

Schedulers stop jobs with SIGTERM (SLURM sends it, or a chosen signal such as SIGUSR1, some seconds
before the kill); laptops get Ctrl-C. Inside StopOnSignal the first SIGTERM, SIGINT or SIGUSR1
only records itself; the loop asks should_stop() once per step, saves a checkpoint and exits with
EXIT_PREEMPTED. A second signal raises KeyboardInterrupt at once. Sits with gpuad.training, above
gpuad.distributed, through which the ranks of a process group agree to stop at the same step.
"""
import signal
import threading

import numpy

from . import distributed

EXIT_PREEMPTED = 75  # EX_TEMPFAIL (sysexits.h): stopped on request, checkpoint written; resume
SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")  # those this platform lacks (Windows: SIGUSR1) skipped


class StopOnSignal:
    """While inside, SIGTERM, SIGINT and SIGUSR1 ask the loop to stop instead of ending the process;
    a second one raises KeyboardInterrupt at once. The previous handlers come back on exit. Python
    runs signal handlers in the main thread only, so enter it there (elsewhere: RuntimeError).

        with gpuad.preemption.StopOnSignal() as stop:
            for step in range(start, steps):
                train_step()
                if stop.should_stop():
                    gpuad.save(state, path)   # then exit with EXIT_PREEMPTED
                    break

    should_stop() is what a loop calls once per step. In a process group of more than one rank it
    is a collective: every rank must call it at the same steps, and a signal to any rank stops
    all of them at the same step (an all-reduce of a 4-byte flag; with every=N only every Nth
    call communicates, so a stop comes up to N - 1 steps later). `requested` is this process's
    own flag (`received`: which signal), `signal` the name of the one that stopped the loop."""

    def __init__(self, signals=SIGNALS, *, every=1):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"StopOnSignal: every must be a positive int, got {every!r}")
        self.signals = [getattr(signal, name) for name in signals if hasattr(signal, name)]
        self.every = every
        self.received = None  # the name of the first signal that reached this process
        self.signal = None  # the name of the signal that stopped the loop (here or on any rank)
        self._stop = False
        self._calls = 0
        self._previous = {}

    @property
    def requested(self):
        """Whether a signal reached this process (the other ranks may not know yet)."""
        return self.received is not None

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("StopOnSignal: Python delivers signals to the main thread only; "
                               "enter it in the main thread (the one that runs the training loop)")
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        while self._previous:
            number, handler = self._previous.popitem()
            signal.signal(number, handler)
        return False

    def _handle(self, number, frame):
        name = signal.Signals(number).name
        if self.received is not None:
            raise KeyboardInterrupt(f"a second signal ({name}) after {self.received}: stopping now")
        self.received = name

    def should_stop(self):
        """True from the first step boundary after a signal on (any rank of) this process group."""
        if self._stop:
            return True
        self._calls += 1
        if not distributed.is_initialized() or distributed.get_world_size() == 1:
            self.signal = self.received
        elif self._calls % self.every == 0:
            self.signal = self._agree()
        self._stop = self.signal is not None
        return self._stop

    def _agree(self):
        """The name of a signal that some rank received (the same on every rank), or None."""
        mine = signal.Signals[self.received].value if self.received else 0
        if distributed.get_backend() == "nccl":  # its collectives move GPU arrays only
            numbers = [0] * distributed.get_world_size()
            distributed.all_gather_object(numbers, mine)
            first = max(numbers)
        else:
            flag = numpy.array([mine], dtype=numpy.int32)
            distributed.all_reduce(flag, op="max")
            first = int(flag[0])
        return signal.Signals(first).name if first else None
