"""Reliability, part 2: crash-proof training and determinism.

scripts/train_mnist.py is killed with SIGKILL mid-epoch and mid-save, again and again, and resumed
until done: the checkpoint always loads, training goes on from the last completed epoch, and the
final weights equal an uninterrupted run's bit for bit. The same seed gives bit-identical training
on the CPU, in one process and across processes. Needs the real MNIST files (GPUAD_DATA).
"""
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_scripts import load_script, needs_mnist

import gpuad
from gpuad import backend
from gpuad.serialization import remove_stale_temp_files, save

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPOCHS = 4
ARGS = ["--epochs", str(EPOCHS), "--max-steps", "30", "--no-progress", "--device", "cpu",
        "--seed", "5", "--checkpoint", "run.ckpt"]  # relative: the same args, so the same bytes
TEMP = re.compile(r"\.run\.ckpt\.[0-9a-f]{8}\.tmp")  # gpuad.serialization temp files for run.ckpt


class Run:
    """scripts/train_mnist.py in a subprocess, its stdout and stderr in files under `logs`."""

    def __init__(self, cwd, logs, name, resume=True, save_delay=None):
        path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        if save_delay:
            env["GPUAD_TEST_SAVE_DELAY"] = str(save_delay)
        self.out, self.err = logs / f"{name}.out", logs / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "train_mnist.py"), *ARGS]
                + (["--resume"] if resume else []), cwd=cwd, env=env, stdout=out, stderr=err)

    def lines(self):
        """The JSON lines printed so far (complete lines only)."""
        return [json.loads(line) for line in self.out.read_text().split("\n")[:-1]
                if line.startswith("{")]

    def epochs(self):
        return [line["epoch"] for line in self.lines() if "test_accuracy" in line]

    def wait_for(self, condition, timeout=60):
        """Poll every 2 ms until condition() holds (True) or the process exits (False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"train_mnist.py: nothing happened for {timeout} s; stderr:\n"
                            f"{self.err.read_text()}")
            time.sleep(0.002)
        return True

    def kill(self):
        """SIGKILL (kill -9) this process; False if it had already exited on its own."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait() == -signal.SIGKILL

    def finish(self, timeout=120):
        assert self.proc.wait(timeout) == 0, self.err.read_text()
        return self


def temp_files(folder):
    return {name for name in os.listdir(folder) if TEMP.fullmatch(name)}


def completed_epochs(ck):
    """Epochs the checkpoint holds (0 without one); loading it is the integrity check."""
    if not ck.exists():
        return 0
    state = gpuad.load(ck)
    assert set(state) == {"model", "optimizer", "epoch", "rng", "args"}
    return state["epoch"] + 1


def assert_same_state(a, b, where="state"):
    """Bit-for-bit equality of checkpoint contents (Tensors, arrays, numbers, containers)."""
    if isinstance(a, gpuad.Tensor):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(backend.asnumpy(a.array), backend.asnumpy(b.array),
                                      err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}.{i}")
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: one uninterrupted run in a fresh process. Returns its checkpoint's path and
    how long an epoch takes on this machine (from when its lines appear), to time the kills."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    run = Run(folder, folder, "log", resume=False)
    run.wait_for(run.lines)  # epoch 1 is done
    first = time.monotonic()
    run.finish()
    return folder / "run.ckpt", (time.monotonic() - first) / (EPOCHS - 1)


# ---- crash safety --------------------------------------------------------------------------

@needs_mnist
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 is POSIX")
def test_kill_9_mid_epoch_and_mid_save_then_resume_ends_like_an_uninterrupted_run(
        uninterrupted, tmp_path):
    """Six runs killed by SIGKILL, each resuming from what the last left, then one that finishes.
    A "save" run dies inside its first save: the test hook holds the fsynced temp file back from
    os.replace for 2 s and the kill comes within 0.1 s. A "moment" run dies at a seeded random
    moment up to 1.5 epochs (timed on the uninterrupted run) after it starts training, so in an
    epoch, an evaluation or a save, and at the latest when it prints its second epoch: each kill
    costs at most one epoch of progress whatever the machine's speed. About 10 s."""
    reference, epoch_seconds = uninterrupted
    cwd, logs = tmp_path / "run", tmp_path / "logs"
    cwd.mkdir()
    logs.mkdir()
    ck = cwd / "run.ckpt"
    rng = random.Random(37)  # moments 0.14, 1.26 and 0.77 epochs into training
    for i, when in enumerate(["save", "moment"] * 3):
        done = completed_epochs(ck)
        temps = temp_files(cwd)
        run = Run(cwd, logs, f"{i}-{when}", save_delay=2.0 if when == "save" else None)
        if when == "save":
            run.wait_for(lambda temps=temps: temp_files(cwd) - temps)
            time.sleep(rng.uniform(0, 0.1))
        else:  # training: it printed that it resumed, or finished its first epoch
            run.wait_for(run.lines)
            kill_at = time.monotonic() + rng.uniform(0, 1.5) * epoch_seconds
            run.wait_for(lambda run=run, kill_at=kill_at: time.monotonic() > kill_at
                         or len(run.epochs()) >= 2)
        assert run.kill(), f"run {i} ended before the kill:\n{run.err.read_text()}"
        after = completed_epochs(ck)  # the checkpoint is intact whenever the kill came
        lines, epochs = run.lines(), run.epochs()
        resumed = [line for line in lines if "resumed_from" in line]
        assert resumed == ([{"resumed_from": "run.ckpt", "epoch": done}] if done else [])
        assert epochs == list(range(done + 1, done + 1 + len(epochs)))  # went on from there
        # an epoch's line is printed just before its checkpoint is saved
        assert after in (done + len(epochs), done + len(epochs) - 1), (done, epochs, after)
        if when == "save":
            assert len(epochs) == 1 and after == done  # died in the save of its first epoch
            assert temp_files(cwd) - temps, "the killed save left its temp file behind"
        assert set(os.listdir(cwd)) - temp_files(cwd) <= {"run.ckpt"}

    done = completed_epochs(ck)
    final = Run(cwd, logs, "final").finish()
    assert final.epochs() == list(range(done + 1, EPOCHS + 1))
    assert completed_epochs(ck) == EPOCHS
    assert temp_files(cwd) == set(), "the next run removes temp files of killed saves"
    resumed, straight = gpuad.load(ck), gpuad.load(reference)
    for key in ("model", "optimizer", "rng", "epoch"):
        assert_same_state(resumed[key], straight[key], key)  # bit for bit


def test_remove_stale_temp_files_takes_only_this_checkpoints_temp_files(tmp_path):
    ck = tmp_path / "run.ckpt"
    save({"w": gpuad.ones(2)}, ck)
    names = [".run.ckpt.0123abcd.tmp", ".run.ckpt.ffffffff.tmp", ".other.ckpt.0123abcd.tmp",
             ".run.ckpt.notahex.tmp", "run.ckpt.0123abcd.tmp", ".run.ckpt.0123abcd.tmp.bak"]
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    assert sorted(remove_stale_temp_files(ck)) == names[:2]
    assert sorted(os.listdir(tmp_path)) == sorted(names[2:] + ["run.ckpt"])
    assert remove_stale_temp_files(tmp_path / "missing" / "x.ckpt") == []
    np.testing.assert_array_equal(gpuad.load(ck)["w"].numpy(), [1, 1])


def test_save_delay_hook_pauses_between_the_temp_file_and_the_replace(tmp_path, monkeypatch):
    ck = tmp_path / "run.ckpt"
    seen = []
    monkeypatch.setenv("GPUAD_TEST_SAVE_DELAY", "0.01")
    monkeypatch.setattr("gpuad.serialization.time.sleep",
                        lambda s: seen.append((s, sorted(os.listdir(tmp_path)))))
    save({"epoch": 1}, ck)
    ((seconds, listing),) = seen
    assert seconds == 0.01 and len(listing) == 1 and TEMP.fullmatch(listing[0])  # not yet replaced
    assert gpuad.load(ck) == {"epoch": 1} and os.listdir(tmp_path) == ["run.ckpt"]


# ---- determinism -------------------------------------------------------------------------------

@needs_mnist
def test_the_same_seed_writes_the_same_checkpoint_bytes_every_run(uninterrupted, tmp_path,
                                                                   monkeypatch, capsys):
    """Two runs of train_mnist.main in this process and one in another process (the fixture) write
    byte-identical checkpoints: weights, optimizer state, random state and arguments."""
    train = load_script("train_mnist")
    written = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        train.main(ARGS)
        written.append((tmp_path / name / "run.ckpt").read_bytes())
    capsys.readouterr()
    assert written[0] == written[1], "two runs in one process differ"
    assert written[0] == uninterrupted[0].read_bytes(), "a run in another process differs"
