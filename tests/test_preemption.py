"""Preemption: a signal is a checkpoint, not a lost run.

gpuad.preemption.StopOnSignal on its own; train_epoch's should_stop and mid-epoch resume;
scripts/train_charlm.py and scripts/train_mnist.py stopped by SIGTERM, SIGUSR1 and SIGINT at a
random step (train_mnist in a subprocess, on real MNIST: GPUAD_DATA), exiting with status 75 and
resuming to the same weights, optimizer state, random state and printed losses, bit for bit, as a
run that was never stopped; and the same for 2 ranks under mpiexec, the signal sent to one rank.
"""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_charlm import TINY, metrics, text  # noqa: F401  (text: a fixture)
from test_reliability_crash import assert_same_state
from test_scripts import load_script, needs_mnist

import gpuad
import gpuad.nn.functional as F
from gpuad import nn, optim
from gpuad.data import DataLoader, TensorDataset
from gpuad.preemption import EXIT_PREEMPTED, StopOnSignal
from gpuad.training import RunningMean, train_epoch

ROOT = pathlib.Path(__file__).resolve().parent.parent
posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="reads /proc to see when a child catches signals")


def kill_self(name):
    os.kill(os.getpid(), getattr(signal, name))


# ---- StopOnSignal -----------------------------------------------------------------------------
@posix_signals
def test_the_first_signal_asks_the_second_interrupts_and_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    with StopOnSignal() as stop:
        assert not stop.requested and not stop.should_stop()
        kill_self("SIGUSR1")
        assert stop.requested and stop.received == "SIGUSR1"
        assert stop.should_stop() and stop.signal == "SIGUSR1"
        assert stop.should_stop()  # stays stopped
        with pytest.raises(KeyboardInterrupt, match="second signal"):
            kill_self("SIGINT")
    assert {s: signal.getsignal(s) for s in before} == before
    with StopOnSignal(["SIGTERM"]) as stop:
        kill_self("SIGTERM")
        assert stop.should_stop() and stop.signal == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before[signal.SIGTERM]


def test_only_in_the_main_thread():
    caught = []

    def enter():
        try:
            with StopOnSignal():
                pass
        except RuntimeError as e:
            caught.append(str(e))
    worker = threading.Thread(target=enter)
    worker.start()
    worker.join()
    assert caught and "main thread" in caught[0]
    with pytest.raises(ValueError, match="every must be a positive int"):
        StopOnSignal(every=0)


# ---- train_epoch: stop at a step boundary, resume inside the epoch -----------------------------
def _tiny_run():
    gpuad.manual_seed(1)
    data = TensorDataset(gpuad.randn(40, 5), gpuad.randint(0, 3, (40,)))
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=2)
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 3))
    return model, loader, optim.Adam(model.parameters(), lr=1e-2)


def test_train_epoch_stops_at_a_step_boundary_and_resumes_inside_the_epoch():
    model, loader, optimizer = _tiny_run()
    straight = train_epoch(model, loader, optimizer, F.cross_entropy, progress=False)
    expected = [p.detach().numpy().copy() for p in model.parameters()]

    model, loader, optimizer = _tiny_run()
    calls, meter = [], RunningMean()
    first = train_epoch(model, loader, optimizer, F.cross_entropy, progress=False, meter=meter,
                        should_stop=lambda: calls.append(1) or len(calls) > 4)
    assert first["stopped"] and first["steps"] == 4 and len(calls) == 5
    rng = gpuad.get_rng_state()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "meter": meter.state_dict()}
    model, loader, optimizer = _tiny_run()  # a fresh process, as far as training can tell
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gpuad.set_rng_state(rng)
    meter = RunningMean()
    meter.load_state_dict(state["meter"])
    rest = train_epoch(model, loader, optimizer, F.cross_entropy, progress=False, start_step=4,
                       meter=meter, should_stop=lambda: False)
    assert not rest["stopped"] and rest["steps"] == 6
    assert rest["loss"] == straight["loss"]  # the epoch's mean loss, bit for bit
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.detach().numpy(), e)


# ---- train_charlm ------------------------------------------------------------------------------
@posix_signals
def test_train_charlm_stops_on_sigterm_and_resumes_bit_for_bit(text, tmp_path,  # noqa: F811
                                                                monkeypatch, capsys):
    """A real SIGTERM (sent to this process from inside the optimizer's step 13, between the
    evaluations at 10 and 20) stops the run after that step; --resume ends like a straight run:
    weights, logged losses (the running training loss was saved) and the sample."""
    train = load_script("train_charlm")
    common = ["--text", str(text), "--max-steps", "20", "--seed", "3", "--dropout", "0.1"] + TINY
    straight = train.main(common + ["--metrics", str(tmp_path / "a.jsonl")])
    ck = tmp_path / "run.ckpt"
    calls = {"n": 0}
    real_step = gpuad.optim.AdamW.step

    def step_then_signal(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 13:
            kill_self("SIGTERM")
        return real_step(self, *a, **k)
    monkeypatch.setattr(gpuad.optim.AdamW, "step", step_then_signal)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main(common + ["--checkpoint", str(ck)])
    assert exit_info.value.code == EXIT_PREEMPTED
    assert f"stopped by SIGTERM at step 13: saved {ck}; continue with --resume" \
        in capsys.readouterr().err
    assert gpuad.load(ck)["step"] == 13
    monkeypatch.undo()
    resumed = train.main(common + ["--checkpoint", str(ck), "--resume"])
    for (name, a), (_, b) in zip(straight["model"].state_dict().items(),
                                 resumed["model"].state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    drop = ("elapsed",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in metrics(tmp_path / "a.jsonl")] \
        == [{k: v for k, v in r.items() if k not in drop}
            for r in metrics(tmp_path / "run.metrics.jsonl")]
    assert resumed["sample"] == straight["sample"]


# ---- train_mnist, one process ------------------------------------------------------------------
ARGS = ["--epochs", "4", "--max-steps", "10", "--no-progress", "--device", "cpu", "--seed", "7",
        "--checkpoint", "run.ckpt", "--metrics", "run.jsonl"]


def _env(**extra):
    """This process's environment (the same BLAS threads: the same bits), this checkout first."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}


def _catches(pid, number):
    """Whether process `pid` has a handler for signal `number` (Linux: SigCgt in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) >> (number - 1) & 1)


def _wait_until(condition, proc, what, timeout=90):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{what} did not happen (status {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.005)


def _summaries(output):
    return [json.loads(line) for line in output.splitlines()
            if line.startswith("{") and "test_accuracy" in line]


def _losses(summaries):
    return [(s["epoch"], s["train_loss"], s["test_loss"], s["test_accuracy"]) for s in summaries]


def _start(command, cwd, ready, env=None):
    """Popen(command), returned once ready(proc) holds (its signal handlers are in)."""
    proc = subprocess.Popen(command, cwd=cwd, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_until(lambda: ready(proc), proc, "installing the signal handlers")
    return proc


def _finish(proc, what, timeout=120):
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{what}: still running after {timeout} s (a hang)")


def _straight(command, cwd, ready, env=None):
    """An uninterrupted run: its stdout, and the seconds that training an epoch takes (a signal
    within that time after the handlers are in stops a run less than an epoch further on)."""
    proc = _start(command, cwd, ready, env)
    out, err = _finish(proc, "the uninterrupted run")
    assert proc.returncode == 0, err
    seconds = [json.loads(line)["seconds"] for line in (cwd / "run.jsonl").read_text().splitlines()]
    return out, min(seconds)


MNIST_RUN = [sys.executable, str(ROOT / "scripts" / "train_mnist.py"), *ARGS]


def _one_process_ready(proc):
    return _catches(proc.pid, signal.SIGUSR1)


@needs_mnist
@needs_proc
@posix_signals
def test_train_mnist_stopped_by_sigterm_sigusr1_then_sigint_resumes_bit_for_bit(tmp_path):
    """One run stopped three times, each time by a signal at a seeded random moment within the
    time an epoch's training takes after the handlers are in (so mostly inside an epoch, else in
    an evaluation or a save) and resumed with --resume: each stop exits with status 75 naming its
    epoch and step, each resume starts there, and the last one ends with the uninterrupted run's
    weights, optimizer state, random state and printed losses, bit for bit. About 20 s."""
    env = _env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")  # every run alike, and quick
    (tmp_path / "straight").mkdir()
    out, seconds = _straight(MNIST_RUN, tmp_path / "straight", _one_process_ready, env)
    losses = _losses(_summaries(out))
    cwd, printed, at = tmp_path / "stopped", [], None
    cwd.mkdir()
    for i, name in enumerate(["SIGTERM", "SIGUSR1", "SIGINT", None]):
        proc = _start(MNIST_RUN + (["--resume"] if i else []), cwd, _one_process_ready, env)
        if name is not None:
            time.sleep(random.Random(name).uniform(0, 0.8) * seconds)
            os.kill(proc.pid, getattr(signal, name))
        out, err = _finish(proc, f"run {i}")
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if at is not None:  # where the last one stopped
            assert lines[0] == {"resumed_from": "run.ckpt", "epoch": at[0] - 1, "step": at[1]}
        printed += _summaries(out)
        if name is None:
            assert proc.returncode == 0, err
            break
        assert proc.returncode == EXIT_PREEMPTED, err
        (line,) = [line for line in err.splitlines() if line.startswith("stopped by")]
        words = line.split(" at ")[1].split(":")[0].split()  # epoch E step K
        assert line == f"stopped by {name} at {' '.join(words)}: saved run.ckpt; continue with " \
                       f"--resume"
        at = int(words[1]), int(words[3])
        assert [s["epoch"] for s in printed] == list(range(1, at[0]))
    assert _losses(printed) == losses  # each epoch printed once, with the same losses
    mine, straight = gpuad.load(cwd / "run.ckpt"), gpuad.load(tmp_path / "straight" / "run.ckpt")
    for key in ("model", "optimizer", "rng", "epoch"):
        assert_same_state(mine[key], straight[key], key)


@needs_mnist
@posix_signals
def test_a_second_signal_exits_at_once_leaving_the_last_complete_checkpoint(tmp_path,
                                                                           monkeypatch, capsys):
    train = load_script("train_mnist")
    ck = tmp_path / "run.ckpt"
    common = ["--max-steps", "5", "--no-progress", "--device", "cpu", "--checkpoint", str(ck)]
    train.main(common + ["--epochs", "1"])
    before = ck.read_bytes()
    calls = {"n": 0}
    real_step = gpuad.optim.SGD.step

    def step_with_two_signals(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            kill_self("SIGINT")  # asks to stop after this step
            kill_self("SIGINT")  # then: now
        return real_step(self, *a, **k)
    monkeypatch.setattr(gpuad.optim.SGD, "step", step_with_two_signals)
    with pytest.raises(SystemExit) as exit_info:
        train.main(common + ["--epochs", "3", "--resume"])
    assert exit_info.value.code == 130
    assert "last complete checkpoint is intact" in capsys.readouterr().err
    assert ck.read_bytes() == before


# ---- train_mnist, 2 ranks under mpiexec -------------------------------------------------------
def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _ranks(pid):
    """{rank: pid} of the Python processes that mpiexec `pid` started (PMI_RANK in their
    environment)."""
    ranks = {}
    for child in _descendants(pid):
        try:
            with open(f"/proc/{child}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"train_mnist.py" not in f.read():
                    continue
        except OSError:
            continue
        if b"PMI_RANK" in env:
            ranks[int(env[b"PMI_RANK"])] = child
    return ranks


@needs_mnist
@needs_proc
@posix_signals
def test_a_signal_to_one_rank_stops_both_at_the_same_step_then_resume_is_bit_for_bit(tmp_path):
    """mpiexec -n 2: SIGTERM to rank 1 alone at a random moment (within an epoch's training
    time); both ranks stop at the same
    step, rank 0 writes the one checkpoint, mpiexec exits with 75 and no rank hangs (a timeout
    fails the test). Resumed under mpiexec, it ends like an uninterrupted 2-rank run. About 15 s."""
    from test_distributed import MPIEXEC, needs_mpi
    if needs_mpi.args[0]:
        pytest.skip(needs_mpi.kwargs["reason"])
    command = [MPIEXEC, "-n", "2", *MNIST_RUN, "--distributed", "--batch-size", "32"]

    def both_ready(proc):
        ranks = _ranks(proc.pid)
        return len(ranks) == 2 and all(_catches(p, signal.SIGTERM) for p in ranks.values())

    for name in ("straight", "stopped"):
        (tmp_path / name).mkdir()
    env = _env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")  # one core each
    out, seconds = _straight(command, tmp_path / "straight", both_ready, env)
    losses = _losses(_summaries(out))

    stopped = _start(command, tmp_path / "stopped", both_ready, env)
    time.sleep(random.Random(2).uniform(0, 0.8) * seconds)
    os.kill(_ranks(stopped.pid)[1], signal.SIGTERM)
    out, err = _finish(stopped, "the run stopped by SIGTERM")
    assert stopped.returncode == EXIT_PREEMPTED, err
    (line,) = [line for line in err.splitlines() if line.startswith("stopped by")]  # rank 0 only
    assert line.startswith("stopped by SIGTERM at epoch ") and "saved run.ckpt" in line
    where = line.split(" at ")[1].split(":")[0].split()
    before = _summaries(out)

    resumed = subprocess.Popen(command + ["--resume"], cwd=tmp_path / "stopped", env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _finish(resumed, "the resumed run")
    assert resumed.returncode == 0, err
    assert json.loads(out.splitlines()[0]) == {"resumed_from": "run.ckpt",
                                               "epoch": int(where[1]) - 1, "step": int(where[3])}
    assert _losses(before + _summaries(out)) == losses
    mine = gpuad.load(tmp_path / "stopped" / "run.ckpt")
    reference = gpuad.load(tmp_path / "straight" / "run.ckpt")
    for key in ("model", "optimizer", "rng", "epoch"):
        assert_same_state(mine[key], reference[key], key)
