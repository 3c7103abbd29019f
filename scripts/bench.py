"""Benchmarks: gpuad against a hand-written array floor and PyTorch, measured in the same run.

    python scripts/bench.py --all [--device cpu|cuda] [--repeats 5] [--json out.jsonl]

Prints one JSON line per measurement and a table of medians with ratios (gpuad/floor,
gpuad/PyTorch). Frameworks are interleaved round by round so machine noise hits them alike.
Benchmarks so far: `overhead` (the engine's per-op bookkeeping on tiny and small tensors).
"""
import argparse
import json
import statistics
import sys
import time

import gpuad
from gpuad import backend

N_OPS = 200


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _chain_gpuad(x):
    y = x
    for _ in range(N_OPS // 4):  # four ops a round: mul, add, tanh, mul
        y = gpuad.tanh(y * 0.9 + 0.1) * 1.1
    return y


def overhead_cases(shape, device, torch):
    """Each case: a callable running N_OPS elementwise ops forward and backward once."""
    gpuad.manual_seed(0)
    x = gpuad.randn(*shape, device=device, requires_grad=True)
    cases = {}

    def gpuad_step():
        x.grad = None
        _chain_gpuad(x).sum().backward()
    cases["gpuad"] = gpuad_step

    xp = gpuad.device(device).xp
    data = x.data.copy()

    def floor_step():  # the same chain by hand: forward saving tanh outputs, then backward
        y, saved = data, []
        for _ in range(N_OPS // 4):
            t = xp.tanh(y * 0.9 + 0.1)
            saved.append(t)
            y = t * 1.1
        y.sum()
        g = xp.ones_like(y)
        for t in reversed(saved):
            g = g * 1.1
            g = g * (1 - t * t)
            g = g * 0.9
        return g
    cases["floor"] = floor_step

    if torch is not None:
        tdev = "cuda" if gpuad.device(device).type == "cuda" else "cpu"
        tx = torch.tensor(backend.asnumpy(data), device=tdev, requires_grad=True)

        def torch_step():
            tx.grad = None
            y = tx
            for _ in range(N_OPS // 4):
                y = torch.tanh(y * 0.9 + 0.1) * 1.1
            y.sum().backward()
        cases["torch"] = torch_step
    return cases


def _sync(device, torch):
    if gpuad.device(device).type == "cuda":
        backend.synchronize(gpuad.device(device))
        if torch is not None:
            torch.cuda.synchronize()


def measure(cases, repeats, inner, device, torch):
    """Median, min and max seconds per call of each case, interleaved round by round."""
    for fn in cases.values():  # warm-up
        fn()
    samples = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            _sync(device, torch)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            _sync(device, torch)
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: (statistics.median(s), min(s), max(s)) for name, s in samples.items()}


def bench_overhead(args, torch):
    rows = []
    for shape in [(1,), (64, 64)]:
        timings = measure(overhead_cases(shape, args.device, torch), args.repeats, 20, args.device, torch)
        for name, (med, lo, hi) in timings.items():
            per_op = 1e6 / N_OPS
            rows.append({"bench": "overhead", "shape": list(shape), "framework": name,
                         "unit": "us/op (fwd+bwd)", "median": med * per_op, "min": lo * per_op,
                         "max": hi * per_op,
                         "vs_floor": med / timings["floor"][0],
                         "vs_torch": med / timings["torch"][0] if "torch" in timings else None})
    return rows


BENCHMARKS = {"overhead": bench_overhead}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if args.all or not args.names else args.names
    torch = _torch()
    rows = []
    for name in names:
        rows += BENCHMARKS[name](args, torch)
    for row in rows:
        line = json.dumps(row)
        print(line)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")
    print(f"\n{'bench':<10}{'shape':<10}{'framework':<10}{'median':>10}{'min-max':>18}"
          f"{'/floor':>8}{'/torch':>8}   ({rows[0]['unit'] if rows else ''}, device {args.device})")
    for r in rows:
        vs_torch = f"{r['vs_torch']:.2f}" if r["vs_torch"] is not None else "-"
        print(f"{r['bench']:<10}{str(tuple(r['shape'])):<10}{r['framework']:<10}{r['median']:>10.2f}"
              f"{r['min']:>9.2f}-{r['max']:<8.2f}{r['vs_floor']:>8.2f}{vs_torch:>8}")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
