"""The five research programs of scripts/examples/ run a few steps and head where they should."""
import importlib.util
import os
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_example_is_short_and_has_a_main():
    for path in EXAMPLES.glob("*.py"):
        assert len(path.read_text().splitlines()) < 150, f"{path.name} is over 150 lines"
        assert callable(load(path.stem).main)


def test_pinn_fits_the_sine():
    assert load("pinn").main(["--steps", "3", "--points", "32"]) < 0.05


def test_gcn_learns_the_communities():
    assert load("gcn").main(["--epochs", "60", "--nodes", "200"]) > 0.6


def test_maml_meta_loss_falls(capsys):
    load("maml").main(["--steps", "40", "--tasks", "4"])
    losses = [float(line.split('"query_loss": ')[1].rstrip("}"))
              for line in capsys.readouterr().out.splitlines()]
    assert losses[-1] < losses[0]


def test_reinforce_balances_longer(capsys):
    assert load("reinforce").main(["--episodes", "50"]) > 30  # a random policy lasts about 20


def test_vae_loss_falls():
    data = os.environ.get("GPUAD_DATA")
    if not data or not (pathlib.Path(data) / "mnist").is_dir():
        pytest.skip("needs MNIST under $GPUAD_DATA/mnist")
    vae = load("vae")
    first = vae.main(["--max-steps", "1", "--data", data])
    assert vae.main(["--max-steps", "60", "--data", data]) < first
