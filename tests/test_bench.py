"""scripts/bench.py and its hand-written floor (scripts/benchmarks/floor.py).

The floor is the bar gpuad is measured against, so it must compute exactly what the benchmarked
networks compute: its gradients and optimizer steps are checked against gpuad's autograd and
optimizers in float64. The benchmarks themselves get smoke runs on random data (no timing
assertions: only the shape of the results and that the ratios are those of the medians).
"""
import json
import math
import statistics

import numpy as np
import pytest
from test_scripts import load_script

import gpuad
import gpuad.nn.functional as F
import models
from gpuad.testing import strict

BENCH = load_script("bench")  # also puts scripts/ on sys.path, as running the script does
from benchmarks import floor, memory, runners, timing


@pytest.fixture(scope="module")
def bench():
    return BENCH


def _gpuad_grads(model, x, y):
    loss = F.cross_entropy(model(gpuad.tensor(x)), gpuad.tensor(y))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in model.parameters()]


def _mlp_case(rng):
    model = models.MLP(6, (5, 4), 3).double()
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    return model, x, y


def _cnn_case(rng):
    """A tiny LeNet5 on 8x8 images with a flat background, so pooling windows hold ties (as
    MNIST's do): the gradient must go to each window's first maximum only."""
    model = models.LeNet5(channels=(2, 3), hidden=(5,), image_size=8).double()
    x = np.full((4, 1, 8, 8), -0.4)
    x[:, :, 2:6, 1:5] = rng.standard_normal((4, 1, 4, 4))
    return model, x, rng.integers(0, 10, 4)


@pytest.mark.parametrize("case, net", [(_mlp_case, floor.MLP), (_cnn_case, floor.CNN)],
                         ids=["mlp", "cnn"])
def test_floor_gradients_equal_autograd(case, net):
    model, x, y = case(np.random.default_rng(0))
    params = [p.array.copy() for p in model.parameters()]
    loss, grads = _gpuad_grads(model, x, y)
    ref = net(params)
    assert float(ref.loss_and_grads(x, y)) == pytest.approx(loss, rel=1e-12)
    for (name, _), got, want in zip(model.named_parameters(), ref.torch_grads(), grads):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)
        assert np.abs(want).max() > 0, name  # every layer really gets a gradient


@pytest.mark.parametrize("case, net, make_opt", [
    (_mlp_case, lambda p: floor.MLP(p, lr=0.1, momentum=0.9),
     lambda m: gpuad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)),
    (_cnn_case, lambda p: floor.CNN(p, lr=0.01),
     lambda m: gpuad.optim.Adam(m.parameters(), lr=0.01)),
], ids=["mlp-sgd", "cnn-adam"])
def test_floor_training_steps_equal_gpuad(case, net, make_opt):
    """Three steps of the floor's in-place update on its flat buffers land where gpuad's optimizer
    does (SGD momentum's first step, bias corrections of Adam's first steps)."""
    model, x, y = case(np.random.default_rng(1))
    ref = net([p.array.copy() for p in model.parameters()])
    opt = make_opt(model)
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(gpuad.tensor(x)), gpuad.tensor(y))
        loss.backward()
        opt.step()
        assert float(ref.train_step(x, y)) == pytest.approx(loss.item(), rel=1e-10)
    for (name, p), got in zip(model.named_parameters(), ref.params):
        np.testing.assert_allclose(np.asarray(got).reshape(p.shape), p.array, rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_floor_runs_on_the_strict_backend_without_syncing_and_only_calls_what_cupy_has():
    """The floor is written once for numpy and CuPy: on the strict backend (arrays that refuse what
    CuPy refuses) a training step gives numpy's numbers, never waits for the device, and every
    array function it reaches exists in CuPy."""
    rng = np.random.default_rng(2)
    used_before = set(strict.USED)
    strict.USED.clear()
    try:
        for case, net in ((_mlp_case, floor.MLP), (_cnn_case, floor.CNN)):
            model, x, y = case(rng)
            params = [p.array.astype(np.float32) for p in model.parameters()]
            x = x.astype(np.float32)
            host = net(params)
            host_loss = host.train_step(x, y)
            device = net([strict.wrap(p.copy()) for p in params])
            with strict.forbid_host_sync():
                loss = device.train_step(strict.wrap(x), strict.wrap(y))
            np.testing.assert_allclose(float(loss), host_loss, rtol=1e-6)
            np.testing.assert_allclose(device.flat.unwrap(), host.flat, rtol=1e-5, atol=1e-7)
        used = set(strict.USED)
    finally:
        strict.USED.update(used_before)
    cupy = pytest.importorskip("cupy")
    missing = strict.missing_from(cupy, used)
    assert "lib.stride_tricks.as_strided" in used
    assert not missing, f"CuPy lacks {missing}"


def test_rounds_rotate_so_no_framework_always_follows_the_same_one():
    calls = []
    cases = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    result = timing.measure(cases, repeats=4, inner=1, device="cpu", torch=None,
                            warmup={name: (lambda: None) for name in cases})
    assert calls == list("abc" "bca" "cab" "abc")
    assert list(result.rounds) == list(cases) and all(len(result[name]) == 3 for name in cases)
    assert all(len(rounds) == 4 for rounds in result.rounds.values())


def test_blas_overrides_are_dropped_from_the_environment(bench):
    environ = {"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576",
               "OPENBLAS_NUM_THREADS": "2"}
    env = bench.without_blas_overrides(environ)
    assert env == {"PATH": "/bin", "OPENBLAS_NUM_THREADS": "2",
                   bench.UNSET_NOTE: "OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=1048576"}
    assert "OPENBLAS_CORETYPE" in environ  # the argument is left alone
    assert bench.without_blas_overrides({"OPENBLAS_L2_SIZE": "4"}) == {
        bench.UNSET_NOTE: "OPENBLAS_L2_SIZE=4"}
    assert bench.without_blas_overrides({"PATH": "/bin"}) is None  # nothing to do: no re-exec


TINY = ["--synthetic", "--steps", "2", "--repeats", "3", "--no-memory", "--matmul-batch", "64",
        "--matmul-width", "32"]
COMMON_KEYS = {"bench", "framework", "device", "unit", "median", "min", "max", "vs_floor",
               "vs_torch", "vs_floor_medians", "vs_torch_medians", "per_round", "machine"}
EXTRA_KEYS = {"mlp": {"samples_per_s", "test_accuracy", "train_loss_last", "rounds", "data"},
              "cnn": {"steps_per_s", "loss", "rounds", "data"},
              "matmul_rate": {"tflops", "matmul_tflops", "frac_of_matmul", "rounds"},
              "overhead": set()}


def test_every_benchmark_smoke_runs(bench, tmp_path, capsys):
    torch = runners.import_torch()
    out = tmp_path / "bench.jsonl"
    rows = bench.main(["overhead", "mlp", "cnn", "matmul_rate", "--json", str(out)] + TINY)
    printed = capsys.readouterr().out
    frameworks = ["gpuad", "floor"] + (["torch"] if torch is not None else [])
    by = {}
    for row in rows:
        by.setdefault(row["bench"], []).append(row)
        assert COMMON_KEYS | EXTRA_KEYS[row["bench"]] <= set(row), row["bench"]
        assert row["min"] <= row["median"] <= row["max"]
    assert set(by) == {"overhead", "mlp", "cnn", "matmul_rate"}
    for name, group in by.items():
        if name == "overhead":
            continue  # two shapes, ratios per shape (kept as it was)
        assert [r["framework"] for r in group] == frameworks
        med = {r["framework"]: r["median"] for r in group}
        per_round = {r["framework"]: r["per_round"] for r in group}
        for r in group:  # the ratios are the same rounds' (and of the same run's medians)
            assert r["median"] == pytest.approx(statistics.median(r["per_round"]))
            for ref in ["floor"] + (["torch"] if torch is not None else []):
                paired = statistics.median(a / b for a, b in zip(r["per_round"], per_round[ref]))
                assert r[f"vs_{ref}"] == pytest.approx(paired)
                assert r[f"vs_{ref}_medians"] == pytest.approx(r["median"] / med[ref])
            assert r["rounds"] == 3 == len(r["per_round"])
            assert r["data"] == ("random" if name == "matmul_rate" else "synthetic")
    # same seeds, same weights, same batches: every framework ends at the same loss
    for name, key in (("mlp", "train_loss_last"), ("cnn", "loss")):
        losses = [r[key] for r in by[name]]
        assert all(math.isfinite(v) for v in losses)
        assert max(losses) - min(losses) < 1e-3 * max(losses), (name, losses)
    for r in by["mlp"]:
        assert 0 <= r["test_accuracy"] <= 1
    for r in by["matmul_rate"]:
        assert r["frac_of_matmul"] == pytest.approx(r["tflops"] / r["matmul_tflops"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["bench"] == "environment" and "blas" in lines[0]
    assert lines[1:] == json.loads(json.dumps(rows))
    assert "synthetic" in printed and "/floor" in printed and "cnn" in printed


def test_compiled_benchmarks_smoke_run(bench, capsys):
    """overhead_compiled and mlp_compiled (cnn_compiled is wired the same way, and slower to
    run): gpuad.compile'd steps (and, in mlp_compiled, the compiled model trained eagerly) in
    rounds of their own with the floor and torch; the same batches end at the floor's loss."""
    torch = runners.import_torch()
    names = ["overhead_compiled", "mlp_compiled"]
    rows = bench.main(names + TINY)
    frameworks = ["gpuad_compiled", "gpuad_model", "floor"] + (["torch"] if torch else [])
    by = {}
    for row in rows:
        by.setdefault(row["bench"], []).append(row)
        base = row["bench"].removesuffix("_compiled")
        assert COMMON_KEYS | EXTRA_KEYS[base] <= set(row), row["bench"]
    assert list(by) == names
    for name in names[1:]:
        assert [r["framework"] for r in by[name]] == frameworks
        key = "train_loss_last" if name == "mlp_compiled" else "loss"
        losses = [r[key] for r in by[name]]
        assert max(losses) - min(losses) < 1e-3 * max(losses), (name, losses)
    assert {r["framework"] for r in by["overhead_compiled"]} == set(frameworks) - {"gpuad_model"}
    assert "mlp_compiled" in capsys.readouterr().out
    for name in names + ["cnn_compiled"]:
        assert name in bench.selected(bench.parse_args(["--all"])) and name in bench.BENCHMARKS
    assert set(bench.SETUPS) >= {"mlp_compiled", "cnn_compiled"}


def test_activations_benchmark_times_each_op_forward_and_backward(bench, monkeypatch, capsys):
    from benchmarks import activations
    monkeypatch.setattr(activations, "SHAPE", (16, 8))  # the real batch is (2048, 512)
    torch = runners.import_torch()
    rows = bench.main(["activations", "--repeats", "3"])
    frameworks = ["gpuad"] + (["torch"] if torch is not None else [])
    assert [(r["op"], r["framework"]) for r in rows] == [
        (op, f) for op in activations.OPS for f in frameworks]
    for r in rows:
        assert r["bench"] == "activations" and r["shape"] == [16, 8] and r["vs_floor"] is None
        assert r["min"] <= r["median"] <= r["max"] and len(r["per_round"]) == 3
        if torch is not None:
            torch_row = next(t for t in rows if t["op"] == r["op"] and t["framework"] == "torch")
            paired = statistics.median(a / b for a, b in zip(r["per_round"],
                                                             torch_row["per_round"]))
            assert r["vs_torch"] == pytest.approx(paired)
    printed = capsys.readouterr().out
    assert "layer_norm" in printed and "ms (fwd+bwd)" in printed


def test_all_runs_matmul_rate_and_amp_on_cuda_only(bench):
    for name in ("matmul_rate", "amp"):
        assert name not in bench.selected(bench.parse_args(["--all"]))
        assert name in bench.selected(bench.parse_args(["--all", "--device", "cuda"]))
        assert bench.selected(bench.parse_args([name])) == [name]


def test_amp_bench_compares_each_framework_with_its_own_float32(bench):
    torch = runners.import_torch()
    rows = {r["framework"]: r for r in bench.main(["amp"] + TINY)}
    assert list(rows) == ["gpuad", "gpuad_amp"] + (["torch", "torch_amp"] if torch else [])
    def paired(a, b):
        return statistics.median(x / y for x, y in zip(a["per_round"], b["per_round"]))
    for name, r in rows.items():
        base = name.removesuffix("_amp")
        assert r["amp_speedup"] == pytest.approx(paired(rows[base], r))
        assert r["vs_floor"] is None and math.isfinite(r["loss"])
        if torch is not None:  # gpuad's amp against torch's amp, float32 against float32
            other = rows["torch_amp" if name.endswith("_amp") else "torch"]
            assert r["vs_torch"] == pytest.approx(paired(r, other))
            assert r["vs_torch_medians"] == pytest.approx(r["median"] / other["median"])
    assert abs(rows["gpuad_amp"]["loss"] - rows["gpuad"]["loss"]) < 1e-2  # float16 rounding


def test_memory_probe_runs_in_a_fresh_process(bench):
    args = bench.parse_args(["--synthetic", "--steps", "2"])
    result = memory.probe_in_subprocess("mlp", "floor", args)
    assert result.get("memory_error") is None, result
    assert result["framework"] == "floor" and result["memory_probe"] == "mlp"
    assert result["peak_rss_mb"] >= result["rss_after_setup_mb"] > 0
    assert result["rss_growth_mb"] == pytest.approx(result["peak_rss_mb"]
                                                    - result["rss_after_setup_mb"])


def test_missing_mnist_names_gpuad_data_and_the_data_flag(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("GPUAD_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        bench.main(["mlp", "--no-memory", "--steps", "1"])
    message = str(info.value)
    assert "GPUAD_DATA" in message and "--data" in message and "--synthetic" in message
