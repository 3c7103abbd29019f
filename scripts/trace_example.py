"""The evaluation trace of f(x1, x2) = x1·x2 + x2 − ln(x1) at (3, −4), read off gpuad's tape.

    python scripts/trace_example.py                  # the table: forward sweep, then reverse sweep
    python scripts/trace_example.py --x1 2 --x2 0.5  # another point
    python scripts/trace_example.py --json           # also every row as a JSON line

In Griewank & Walther's notation (Evaluating Derivatives): inputs are v−1 = x1 and v0 = x2, every
op is numbered in the order it ran, and each adjoint v̄i is the sum over the ops that read vi of
v̄consumer · ∂consumer/∂vi, the partials coming from the ops' own vjp rules (run with g = 1).
At (3, −4): y ≈ −17.10, x̄1 = x2 − 1/x1 ≈ −4.33, x̄2 = x1 + 1 = 4.
"""
import argparse
import dataclasses
import json

import numpy

import gpuad
from gpuad.tape import trace


def f(x1, x2):
    """In Griewank's evaluation order: v1 = v−1·v0, v2 = ln v−1, v3 = v1 + v0, v4 = v3 − v2."""
    v1 = x1 * x2
    v2 = gpuad.log(x1)
    return v1 + x2 - v2


def _plain(value):
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--x1", type=float, default=3.0)
    parser.add_argument("--x2", type=float, default=-4.0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (or strict, for tests)")
    parser.add_argument("--json", action="store_true", help="also print every row as a JSON line")
    parser.add_argument("--ascii", action="store_true", help="write v3bar, d, * for v̄3, ∂, ·")
    args = parser.parse_args(argv)
    x1, x2 = (gpuad.tensor(v, dtype=gpuad.float64, device=args.device) for v in (args.x1, args.x2))
    result = trace(f, x1, x2)
    print(result.table(ascii=args.ascii))
    if args.json:
        for row in result.forward:
            print(json.dumps({"trace": "forward", **_plain(dataclasses.asdict(row))},
                             ensure_ascii=False))
        for row in result.reverse:
            print(json.dumps({"trace": "reverse", **_plain(dataclasses.asdict(row))},
                             ensure_ascii=False))
    summary = {"y": result.value, "grad": list(result.grads), "device": args.device}
    print(json.dumps(summary))
    return result


if __name__ == "__main__":
    main()
