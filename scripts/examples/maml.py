"""MAML (Finn et al., 2017) on sine regression: learn an initialisation from which one gradient
step on 10 points fits a new sine wave; the inner step runs through functional_call with
create_graph=True, as a PyTorch user writes it with torch.func.

    python scripts/examples/maml.py --steps 200
"""
import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gpuad

import gpuad  # noqa: E402
import gpuad.nn.functional as F  # noqa: E402
from gpuad import nn  # noqa: E402
from gpuad.func import functional_call  # noqa: E402


def sine_task(generator, shots):
    """Support and query sets of one task: amplitude in [0.1, 5], phase in [0, pi]."""
    amplitude = 0.1 + 4.9 * gpuad.rand(1, generator=generator)
    phase = math.pi * gpuad.rand(1, generator=generator)
    x = 10 * gpuad.rand(2 * shots, 1, generator=generator) - 5
    y = amplitude * gpuad.sin(x - phase)
    return (x[:shots], y[:shots]), (x[shots:], y[shots:])


def adapted(model, params, support, inner_lr):
    """The parameters after one inner SGD step, differentiable w.r.t. the initial ones."""
    x, y = support
    loss = F.mse_loss(functional_call(model, params, (x,)), y)
    grads = gpuad.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="meta-updates")
    parser.add_argument("--tasks", type=int, default=8, help="tasks per meta-batch")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--inner-lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpuad.manual_seed(args.seed)
    generator = gpuad.Generator().manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                          nn.Linear(40, 1))
    meta_optimizer = gpuad.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(args.steps):
        meta_optimizer.zero_grad()
        params = dict(model.named_parameters())
        total = 0.0
        for _ in range(args.tasks):
            support, (xq, yq) = sine_task(generator, args.shots)
            fast = adapted(model, params, support, args.inner_lr)
            query_loss = F.mse_loss(functional_call(model, fast, (xq,)), yq) / args.tasks
            query_loss.backward()  # second order: through the inner step
            total += query_loss.item()
        meta_optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(json.dumps({"step": step, "query_loss": total}), flush=True)
    return total


if __name__ == "__main__":
    main()
