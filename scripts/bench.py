"""Benchmarks: gpuad against a hand-written array floor and PyTorch, measured in the same run.

    python scripts/bench.py --all [--device cpu|cuda] [--repeats 5] [--json out.jsonl]
    python scripts/bench.py mlp cnn --steps 20 --synthetic      # a quick look, no MNIST needed

Prints one JSON line per measurement (also appended to --json FILE) and a table of medians with
min-max and time ratios gpuad/floor and gpuad/PyTorch. Frameworks run interleaved, round by round,
in one process, so machine noise hits them alike, each round one place further along (rotated), so
none always runs right after the same other one; each round starts every framework from the same
weights (drawn once with numpy, torch's default init) and feeds it the same batches. A ratio is
the median of the rounds' own ratios, since the machine's phases move whole rounds (the JSON also
has the ratios of the medians, vs_floor_medians and vs_torch_medians, and each round's time,
per_round).

  overhead     the engine's per-op bookkeeping on tiny and small tensors (us per op, fwd+bwd)
  mlp          MNIST 784-256-256-10 ReLU, batch 128, SGD lr 0.1 momentum 0.9: one epoch (s/epoch),
               samples/s, test accuracy, peak memory
  cnn          MNIST models.LeNet5, batch 64, Adam lr 1e-3: 200 timed steps after 5 untimed ones
               (ms/step), steps/s, final loss, peak memory
  matmul_rate  a big-batch MLP step's FLOP/s (batch 8192, 4096-4096-4096-10 on cuda, 1/64 of the
               FLOPs on cpu) as a fraction of a plain square matmul's measured in the same rounds
               (in --all on cuda only)
  amp          the same step under autocast (float16) with a GradScaler against float32, for gpuad
               and torch: amp_speedup = float32 time / autocast time of the same framework, and
               gpuad_amp's vs_torch against torch_amp (in --all on cuda only: numpy has no fast
               float16 matmul)
  activations  forward + backward of one activation or normalisation op (relu, gelu, silu, softmax,
               layer_norm...) on a (2048, 512) float32 batch, against torch (ms per op)
  overhead_compiled, mlp_compiled, cnn_compiled
               the same three with gpuad's step through gpuad.compile (framework gpuad_compiled;
               recording its first calls is part of the timed run), against the floor and torch
               in rounds of their own; mlp_compiled and cnn_compiled also run gpuad_model: the
               model alone compiled (gpuad.compile(model)), the loss, backward and update eager

The floor is scripts/benchmarks/floor.py: forward, backward and update written by hand on
numpy/CuPy arrays. Peak memory on the CPU is per process, so each framework's mlp and cnn run once
more in a fresh subprocess after the timing rounds (`--memory-probe BENCH FRAMEWORK`); on CUDA it
is the growth of CuPy's pool (read through gpuad.cuda) against that of torch's allocator over one
more run, in process. The OpenBLAS kernel overrides OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if
set, are dropped (the script re-executes itself without them before numpy loads) and the output
says so.

This file is the entry point (command line, the benchmark registry, output); the parts live in
scripts/benchmarks/. It runs on this checkout's gpuad and models/, installed or not.
"""
import os
import pathlib
import sys

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_NOTE = "GPUAD_BENCH_UNSET"  # where the re-executed process finds what was dropped


def without_blas_overrides(environ):
    """The environment to re-execute in: `environ` without the OpenBLAS overrides (they force an
    old, slower kernel on current numpy), noting in UNSET_NOTE what was dropped; None when none is
    set. Pure: tests call it; only running the script acts on it."""
    dropped = [f"{name}={environ[name]}" for name in BLAS_OVERRIDES if name in environ]
    if not dropped:
        return None
    env = {k: v for k, v in environ.items() if k not in BLAS_OVERRIDES}
    env[UNSET_NOTE] = " ".join(dropped)
    return env


if __name__ == "__main__":  # OpenBLAS reads the overrides once, when numpy loads it: before that
    _env = without_blas_overrides(os.environ)
    if _env is not None:
        os.execve(sys.executable, list(getattr(sys, "orig_argv", [sys.executable] + sys.argv)),
                  _env)

_ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # this checkout's gpuad and models/ (installed: gpuad_models)
    sys.path.insert(0, _ROOT)

import argparse
import functools
import json

from benchmarks import memory, report
from benchmarks.activations import bench_activations
from benchmarks.overhead import bench_overhead
from benchmarks.runners import import_torch
from benchmarks.training import (
    bench_amp,
    bench_cnn,
    bench_matmul_rate,
    bench_mlp,
    cnn_setup,
    mlp_setup,
)

import gpuad

BENCHMARKS = {"overhead": bench_overhead, "mlp": bench_mlp, "cnn": bench_cnn,
              "overhead_compiled": functools.partial(bench_overhead, compiled=True),
              "mlp_compiled": functools.partial(bench_mlp, compiled=True),
              "cnn_compiled": functools.partial(bench_cnn, compiled=True),
              "matmul_rate": bench_matmul_rate, "amp": bench_amp, "activations": bench_activations}
CUDA_ONLY_IN_ALL = ("matmul_rate", "amp")
SETUPS = {"mlp": mlp_setup, "cnn": cnn_setup,  # what a --memory-probe process runs
          "mlp_compiled": mlp_setup, "cnn_compiled": cnn_setup}


def parse_args(argv):
    """The command line: the benchmarks to run and their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} "
                        "(default: all but matmul_rate and amp, which --all adds on cuda)")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch then uses 'cuda')")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved rounds (at least 3 for mlp, cnn, matmul_rate, amp)")
    parser.add_argument("--json", help="also append the JSON lines to this file")
    parser.add_argument("--data", help="folder with MNIST (default: $GPUAD_DATA, then "
                                       "~/.cache/gpuad)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random data of MNIST's shapes (smoke tests; labelled in the output)")
    parser.add_argument("--steps", type=int, help="timed steps: mlp at most this many batches of "
                        "the epoch, cnn this many instead of 200, matmul_rate and amp instead of "
                        "10 (cuda) or 3 (cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matmul-batch", type=int,
                        help="matmul_rate and amp batch (8192 cuda, 2048 cpu)")
    parser.add_argument("--matmul-width", type=int,
                        help="matmul_rate and amp widths (4096 cuda, 1024 cpu)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--memory-probe", nargs=2, metavar=("BENCH", "FRAMEWORK"),
                        help=argparse.SUPPRESS)  # internal: one framework's run, in a fresh process
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return args


def selected(args):
    """The benchmarks to run: those named, else all; matmul_rate and amp (big GEMMs) only on cuda
    or when named."""
    if args.names and not args.all:
        return args.names
    cuda = gpuad.device(args.device).type == "cuda"
    return [n for n in BENCHMARKS if n not in CUDA_ONLY_IN_ALL or (args.all and cuda)]


def main(argv=None):
    """Run the selected benchmarks; print and return their rows (JSON lines, then a table)."""
    args = parse_args(argv)
    if args.memory_probe:
        bench, name = args.memory_probe
        torch = import_torch() if name == "torch" else None  # a probe imports only its framework
        return memory.memory_probe(args, SETUPS[bench], torch)
    torch = import_torch()
    env = report.environment(args, torch, os.environ.get(UNSET_NOTE, "").split())
    rows = []
    _emit(args, env, [env])
    for name in selected(args):  # each benchmark's lines as it ends: a time limit keeps them
        new = BENCHMARKS[name](args, torch)
        _emit(args, env, new)
        rows += new
    report.print_table(env, rows)
    return rows


def _emit(args, env, rows):
    """Print rows as JSON lines (and append them to --json)."""
    for row in rows:
        row.setdefault("device", args.device)
        row["machine"] = env["machine"]
        line = json.dumps(row)
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
