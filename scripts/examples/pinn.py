"""A physics-informed network: solve u''(x) = -sin(x) on [0, pi] with u(0) = u(pi) = 0 (exact
solution sin x) by minimising the equation's residual with L-BFGS, as a PyTorch user writes it.

    python scripts/examples/pinn.py --steps 50
"""
import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gpuad

import gpuad  # noqa: E402
from gpuad import nn  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="L-BFGS steps (20 evaluations each)")
    parser.add_argument("--points", type=int, default=64, help="collocation points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpuad.manual_seed(args.seed)
    dtype = gpuad.float64
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 1)).to(dtype)
    x = gpuad.linspace(0, math.pi, args.points, dtype=dtype).reshape(-1, 1).requires_grad_()
    edges = gpuad.tensor([[0.0], [math.pi]], dtype=dtype)
    optimizer = gpuad.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        u = model(x)
        du, = gpuad.autograd.grad(u.sum(), x, create_graph=True)
        d2u, = gpuad.autograd.grad(du.sum(), x, create_graph=True)
        residual = d2u + gpuad.sin(x)
        loss = (residual ** 2).mean() + (model(edges) ** 2).mean()
        loss.backward()
        return loss

    for step in range(args.steps):
        loss = optimizer.step(closure)
        if step % 10 == 0 or step == args.steps - 1:
            with gpuad.no_grad():
                error = (model(x) - gpuad.sin(x)).abs().max().item()
            print(json.dumps({"step": step, "loss": loss.item(), "max_error": error}), flush=True)
    return error


if __name__ == "__main__":
    main()
