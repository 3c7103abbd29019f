"""scripts/train_charlm.py end to end on a tiny synthetic text, the metrics file of
scripts/train_mnist.py, and scripts/plot_run.py."""
import json
import math
import sys

import numpy as np
import pytest
from test_scripts import load_script, needs_mnist

import gpuad

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "8", "--eval-batches", "2", "--eval-every", "10", "--warmup-steps", "3",
        "--lr", "1e-2", "--no-progress", "--device", "cpu"]
KEYS = {"step", "train_loss", "val_loss", "lr", "elapsed"}


@pytest.fixture
def text(tmp_path):
    """A few kilobytes of text with structure to learn: words from a small list, with a
    deterministic order."""
    words = ["the", "cat", "sat", "on", "mat", "and", "a", "dog", "ran", "far"]
    rng = np.random.default_rng(0)
    lines = [" ".join(words[i] for i in rng.integers(0, len(words), 8)) + "." for _ in range(120)]
    path = tmp_path / "input.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_trains_checkpoints_and_resumes(text, tmp_path, capsys):
    train = load_script("train_charlm")
    ck = tmp_path / "run.ckpt"
    common = ["--text", str(text), "--checkpoint", str(ck)] + TINY
    first = train.main(common + ["--max-steps", "20"])
    records = metrics(tmp_path / "run.metrics.jsonl")  # default: next to the checkpoint
    assert [r["step"] for r in records] == [10, 20] and all(set(r) == KEYS for r in records)
    vocab = sorted(set(text.read_text()))
    assert records[0]["val_loss"] < math.log(len(vocab))  # below the uniform guess
    state = gpuad.load(ck)
    assert state["step"] == 20 and state["vocab"] == "".join(vocab)
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "config", "elapsed"}
    assert first["final"]["step"] == 20 and first["final"]["stopped"] == "max_steps"
    assert set(first["sample"]) <= set(vocab) and len(first["sample"]) == 300

    resumed = train.main(common + ["--max-steps", "40", "--resume"])
    out = capsys.readouterr().out
    assert '"resumed_from"' in out and '"step": 20' in out
    records = metrics(tmp_path / "run.metrics.jsonl")
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert records[-1]["val_loss"] < records[0]["val_loss"]  # it learns
    assert records[-1]["elapsed"] >= records[1]["elapsed"]  # training seconds accumulate
    assert resumed["final"]["step"] == 40 and gpuad.load(ck)["step"] == 40


def test_resume_after_an_interrupt_matches_an_uninterrupted_run(text, tmp_path, monkeypatch,
                                                               capsys):
    train = load_script("train_charlm")
    common = ["--text", str(text), "--max-steps", "20", "--seed", "3", "--dropout", "0.1"] + TINY
    straight = train.main(common + ["--metrics", str(tmp_path / "a.jsonl")])["model"]
    ck = tmp_path / "run.ckpt"
    calls = {"n": 0}
    real_step = gpuad.optim.AdamW.step

    def interrupted_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 15:  # after the checkpoint at step 10
            raise KeyboardInterrupt
        return real_step(self, *a, **k)
    monkeypatch.setattr(gpuad.optim.AdamW, "step", interrupted_step)
    with pytest.raises(SystemExit) as exit_info:
        train.main(common + ["--checkpoint", str(ck)])
    assert exit_info.value.code == 130
    assert "last complete checkpoint is intact" in capsys.readouterr().err
    assert gpuad.load(ck)["step"] == 10
    monkeypatch.undo()
    resumed = train.main(common + ["--checkpoint", str(ck), "--resume"])["model"]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)  # bit for bit
    assert [r["step"] for r in metrics(tmp_path / "run.metrics.jsonl")] == [10, 20]


def test_compiled_training_matches_eager_training(text, tmp_path, recwarn, monkeypatch):
    """--compile replays the recorded step (AdamW, the scheduler's learning rate, clipping,
    dropout), --compile model the model's training forward with its recorded backward: the same
    weights, losses and sample as eager training, bit for bit, and neither falls back."""
    train = load_script("train_charlm")
    common = ["--text", str(text), "--max-steps", "20", "--dropout", "0.1"] + TINY
    modes = [[], ["--compile"], ["--compile", "model"]]
    compiled, real_compile = [], gpuad.compile
    monkeypatch.setattr(gpuad, "compile", lambda fn: compiled.append(real_compile(fn))
                        or compiled[-1])
    runs = [train.main(common + ["--metrics", str(tmp_path / f"{i}.jsonl")] + extra)
            for i, extra in enumerate(modes)]
    assert len(compiled) == 2 and all(c.programs() for c in compiled)  # each mode replayed
    logged = [[{k: r[k] for k in ("step", "train_loss", "val_loss", "lr")}
               for r in metrics(tmp_path / f"{i}.jsonl")] for i in range(len(modes))]
    assert logged[1] == logged[0] and logged[2] == logged[0]
    for run in runs[1:]:
        assert run["sample"] == runs[0]["sample"]
        for (name, a), (_, b) in zip(runs[0]["model"].state_dict().items(),
                                     run["model"].state_dict().items()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert not [w for w in recwarn if issubclass(w.category, gpuad.compiler.CompileWarning)]


def test_sample_from_a_checkpoint(text, tmp_path, capsys):
    train = load_script("train_charlm")
    ck = tmp_path / "run.ckpt"
    train.main(["--text", str(text), "--checkpoint", str(ck), "--max-steps", "10"] + TINY)
    capsys.readouterr()
    vocab = set(text.read_text())
    result = train.main(["--checkpoint", str(ck), "--sample", "57", "--device", "cpu"])
    assert len(result["sample"]) == 57 and set(result["sample"]) <= vocab
    assert capsys.readouterr().out == result["sample"] + "\n"
    a = train.main(["--checkpoint", str(ck), "--sample", "40", "--prompt", "the cat",
                    "--top-k", "3", "--temperature", "0.5", "--seed", "7"])
    b = train.main(["--checkpoint", str(ck), "--sample", "40", "--prompt", "the cat",
                    "--top-k", "3", "--temperature", "0.5", "--seed", "7"])
    assert a["sample"] == b["sample"] and len(a["sample"]) == 40
    assert capsys.readouterr().out.startswith("the cat")
    with pytest.raises(SystemExit, match="outside the model's vocabulary"):
        train.main(["--checkpoint", str(ck), "--sample", "5", "--prompt", "XYZ"])
    with pytest.raises(SystemExit):
        train.main(["--checkpoint", str(tmp_path / "missing.ckpt"), "--sample", "5"])
    assert "--checkpoint PATH of an existing checkpoint" in capsys.readouterr().err


def test_missing_text_names_the_option(tmp_path, monkeypatch, capsys):
    train = load_script("train_charlm")
    monkeypatch.delenv("GPUAD_DATA", raising=False)
    with pytest.raises(SystemExit):
        train.main(TINY)
    assert "--text PATH" in capsys.readouterr().err
    monkeypatch.setenv("GPUAD_DATA", str(tmp_path))  # set, but without tinyshakespeare/
    with pytest.raises(SystemExit):
        train.main(TINY)
    err = capsys.readouterr().err
    assert "--text PATH" in err and "tinyshakespeare" in err
    with pytest.raises(SystemExit, match="--text"):
        train.main(TINY + ["--text", str(tmp_path / "nope.txt")])


def test_default_text_and_metrics_locations(text, tmp_path, monkeypatch):
    train = load_script("train_charlm")
    (tmp_path / "data" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "data" / "tinyshakespeare" / "input.txt").write_text(text.read_text())
    monkeypatch.setenv("GPUAD_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    result = train.main(TINY + ["--max-steps", "5"])
    (written,) = (tmp_path / "runs").glob("charlm-*.metrics.jsonl")
    assert [r["step"] for r in metrics(written)] == [5]
    assert result["final"]["metrics"] == str(written.relative_to(tmp_path))


def test_time_limit_stops_cleanly(text, tmp_path):
    train = load_script("train_charlm")
    ck = tmp_path / "run.ckpt"
    result = train.main(["--text", str(text), "--checkpoint", str(ck), "--max-steps", "50",
                         "--time-limit", "0"] + TINY)
    assert result["final"]["stopped"] == "time_limit" and result["final"]["step"] == 0
    assert math.isfinite(result["final"]["val_loss"])


def test_too_short_a_text_is_refused(tmp_path):
    train = load_script("train_charlm")
    short = tmp_path / "short.txt"
    short.write_text("abc" * 30)
    with pytest.raises(SystemExit, match="too few for block_size 16"):
        train.main(["--text", str(short), "--metrics", str(tmp_path / "m.jsonl")] + TINY)


# ---- the MNIST script's metrics file ------------------------------------------------------------
@needs_mnist
def test_train_mnist_writes_metrics(tmp_path, capsys):
    train = load_script("train_mnist")
    path = tmp_path / "logs" / "mnist.jsonl"
    common = ["--max-steps", "3", "--no-progress", "--device", "cpu", "--metrics", str(path),
              "--checkpoint", str(tmp_path / "ck")]
    train.main(common + ["--epochs", "1"])
    train.main(common + ["--epochs", "2", "--resume"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{") and "test_accuracy" in line]
    records = metrics(path)
    assert [r["epoch"] for r in records] == [1, 2]
    for record, summary in zip(records, printed):
        assert record == {**summary, "seconds": record["seconds"]} and record["seconds"] > 0
    assert {"epoch", "train_loss", "test_loss", "test_accuracy", "samples_per_s"} <= set(records[0])


# ---- plot_run -----------------------------------------------------------------------------------
@pytest.fixture
def runs(tmp_path):
    a = tmp_path / "charlm.metrics.jsonl"
    a.write_text("\n".join(json.dumps({"step": s, "train_loss": 3 / s, "val_loss": 3.2 / s,
                                       "lr": 1e-3, "elapsed": s / 10}) for s in (1, 2, 3))
                 + "\n{\"step\": 4, \"train")  # a line torn by a kill is skipped
    b = tmp_path / "mnist.csv"
    b.write_text("epoch,train_loss,test_loss,test_accuracy\n1,0.5,0.4,0.9\n2,0.3,0.3,0.95\n")
    return a, b


def test_plot_run_reads_json_lines_and_csv(runs):
    plot_run = load_script("plot_run")
    a, b = runs
    assert [r["step"] for r in plot_run.read_metrics(a)] == [1, 2, 3]
    x, curves = plot_run.series(plot_run.read_metrics(b))
    assert x == "epoch" and curves["test_accuracy"] == ([1.0, 2.0], [0.9, 0.95])
    x, curves = plot_run.series(plot_run.read_metrics(a), "elapsed")
    assert x == "elapsed" and set(curves) == {"train_loss", "val_loss"}


def test_plot_run_without_matplotlib_says_how_to_install(runs, tmp_path, monkeypatch):
    plot_run = load_script("plot_run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(SystemExit, match="pip install matplotlib"):
        plot_run.main([str(runs[0]), "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_plot_run_writes_a_png(runs, tmp_path):
    pytest.importorskip("matplotlib")
    plot_run = load_script("plot_run")
    out = plot_run.main([str(p) for p in runs] + ["--out", str(tmp_path / "plots" / "run.png")])
    assert (tmp_path / "plots" / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out == str(tmp_path / "plots" / "run.png")
    plot_run.main([str(runs[0])])  # default: next to the first file
    assert (tmp_path / "charlm.metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
