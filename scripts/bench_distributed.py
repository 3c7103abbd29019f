"""Data-parallel throughput: scripts/train_mnist.py --distributed under mpiexec -n 1, 2, 3, ...

    python scripts/bench_distributed.py                      # ranks 1 2 3, 3 interleaved rounds
    python scripts/bench_distributed.py --ranks 1 2 --rounds 5 --batch-size 64

Each round runs every rank count once (interleaved, so drift on a shared machine hits them all
alike) for one epoch of the MLP on MNIST with --batch-size per rank, and reads the epoch's global
samples/s from the script's summary line. Prints, per rank count, the median samples/s and its
ratio to one rank measured in the same run; --json appends the same as JSON lines. Needs mpi4py,
mpiexec and MNIST ($GPUAD_DATA or --data).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

from gpuad.distributed.mpi import find_mpiexec

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(ranks, args):
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise SystemExit('bench_distributed: mpiexec not found; pip install "gpuad[mpi]"')
    command = [mpiexec, "-n", str(ranks), sys.executable, str(ROOT / "scripts" / "train_mnist.py"),
               "--distributed", "--device", "cpu", "--epochs", "1", "--no-progress",
               "--batch-size", str(args.batch_size), "--model", args.model]
    if args.data:
        command += ["--data", args.data]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"bench_distributed: {ranks} ranks failed:\n{done.stderr}")
    summary = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")][-1]
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="per rank")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--data", help="folder with the MNIST files (default: $GPUAD_DATA)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    args = parser.parse_args(argv)
    rates = {n: [] for n in args.ranks}
    accuracy = {}
    for _ in range(args.rounds):
        for n in args.ranks:
            summary = run(n, args)
            rates[n].append(summary["samples_per_s"])
            accuracy[n] = summary["test_accuracy"]
    base = statistics.median(rates[args.ranks[0]])
    print(f"{'ranks':>5} {'samples/s':>10} {'vs ' + str(args.ranks[0]) + ' rank(s)':>12} "
          f"{'accuracy':>9}   (per-rank batch {args.batch_size}, {os.cpu_count()} cores)")
    results = []
    for n in args.ranks:
        median = statistics.median(rates[n])
        row = {"bench": "distributed", "ranks": n, "samples_per_s": round(median, 1),
               "ratio": round(median / base, 3), "test_accuracy": accuracy[n],
               "batch_per_rank": args.batch_size, "rounds": args.rounds,
               "all_samples_per_s": rates[n]}
        results.append(row)
        print(f"{n:>5} {median:>10.0f} {median / base:>12.2f} {accuracy[n]:>9.4f}")
    if args.json:
        with open(args.json, "a") as f:
            for row in results:
                f.write(json.dumps(row) + "\n")
    return results


if __name__ == "__main__":
    main()
