"""Finite differences against autodiff: the step-size dilemma, and why reverse mode wins for n >> m.

    python scripts/numeric_vs_autodiff.py                    # both tables, about 2 s on 2 cores
    python scripts/numeric_vs_autodiff.py --plot fd.png      # also a log-log plot (matplotlib)
    python scripts/numeric_vs_autodiff.py --quick --json     # small sizes; rows as JSON lines too

Table 1: the relative error |FD - AD|inf / |AD|inf of one-sided (forward) and central differences
against the tape's gradient, for h = 1e-1 ... 1e-15, in float32 and float64. Truncation error
shrinks with h (as h for one-sided, h^2 for central) until round-off (about eps/h) takes over, so
each column has a best h near sqrt(eps) (one-sided) or cbrt(eps) (central) and gets worse below it.
Table 2: wall time of the full gradient of f(x) = sum(sin(x)*x) with n inputs and one output:
reverse mode is one forward and one backward pass whatever n is; forward mode (n jvp's, from
gpuad.func when it is there) and central differences (2n evaluations) need n passes. The n-pass
methods are measured on as many columns as fit in --budget seconds and extrapolated linearly.
"""
import argparse
import importlib
import json
import math
import statistics
import time

import numpy

import gpuad
from gpuad import backend

FUNCTIONS = [  # name, f of a 1-d tensor returning a 0-d tensor, the point
    ("exp(x)", lambda x: gpuad.exp(x).sum(), [1.0]),
    ("sin(x)·x²", lambda x: (gpuad.sin(x) * x * x).sum(), [1.3]),
    ("log(1+x²)", lambda x: gpuad.log(1 + x * x).sum(), [0.7]),
    ("x·y+e^y·sin z", lambda v: v[0] * v[1] + gpuad.exp(v[1]) * gpuad.sin(v[2]), [0.5, -1.2, 2.0]),
]
STEPS = [10.0 ** -k for k in range(1, 16)]
DTYPES = {"float32": numpy.float32, "float64": numpy.float64}


# ---- table 1: error against the step ----------------------------------------------------------
def _value(f, host, device):
    return f(gpuad.tensor(host, device=device)).item()


def fd_errors(name, f, point, dtype_name, device):
    """Rows {function, dtype, h, forward, central}: relative errors against the tape's gradient,
    every evaluation in `dtype` (x + h, the differences and the division too)."""
    dtype = DTYPES[dtype_name]
    base = numpy.array(point, dtype=dtype)
    x = gpuad.tensor(base, device=device, requires_grad=True)
    (g,) = gpuad.grad(f(x), x)
    exact = backend.asnumpy(g.array).astype(numpy.float64)
    scale = numpy.max(numpy.abs(exact))
    rows = []
    with gpuad.no_grad():
        f0 = dtype(_value(f, base, device))
        for h in STEPS:
            step = dtype(h)
            forward, central = numpy.empty(base.size), numpy.empty(base.size)
            for i in range(base.size):
                plus, minus = base.copy(), base.copy()
                plus[i] += step
                minus[i] -= step
                fp, fm = dtype(_value(f, plus, device)), dtype(_value(f, minus, device))
                forward[i] = (fp - f0) / step
                central[i] = (fp - fm) / (dtype(2) * step)
            rows.append({"table": "fd_error", "function": name, "dtype": dtype_name, "h": h,
                         "forward": float(numpy.max(numpy.abs(forward - exact)) / scale),
                         "central": float(numpy.max(numpy.abs(central - exact)) / scale)})
    return rows


def _e(v):
    return f"{v:.1e}" if v else "0"


def print_errors(rows):
    names = [name for name, _, _ in FUNCTIONS]
    for dtype_name, dtype in DTYPES.items():
        eps = float(numpy.finfo(dtype).eps)
        mine = [r for r in rows if r["dtype"] == dtype_name]
        print(f"\nfinite differences against autodiff, {dtype_name}: relative error "
              f"|FD - AD|inf / |AD|inf")
        print((f"{'h':<8}" + "".join(f"{n:<18}" for n in names)).rstrip())
        print((f"{'':<8}" + "forward  central   " * len(names)).rstrip())
        for h in STEPS:
            cells = []
            for n in names:
                (r,) = [r for r in mine if r["function"] == n and r["h"] == h]
                cells.append(f"{_e(r['forward']):<9}{_e(r['central']):<9}")
            print((f"{h:<8.0e}" + "".join(cells)).rstrip())
        best = []
        for n in names:
            col = [r for r in mine if r["function"] == n]
            best.append("".join(f"{min(col, key=lambda r: r[k])['h']:<9.0e}"
                                for k in ("forward", "central")))
        print((f"{'best h':<8}" + "".join(best)).rstrip())
        print(f"theory: forward error ~ h + eps/h, best h ~ sqrt(eps) = {math.sqrt(eps):.1e}; "
              f"central ~ h^2 + eps/h, best h ~ cbrt(eps) = {eps ** (1 / 3):.1e} (eps = {eps:.1e})")


# ---- table 2: one reverse pass against n forward passes -------------------------------------
def objective(x):
    return (gpuad.sin(x) * x).sum()


def _load_jvp(device):
    """gpuad.func.jvp when that module exists and agrees with reverse mode on a small case."""
    try:
        jvp = importlib.import_module("gpuad.func").jvp
        x = gpuad.tensor([0.3, -1.2, 2.0], dtype=gpuad.float64, device=device)
        (g,) = _reverse_gradient(x)
        for i in range(3):
            _, t = jvp(objective, (x,), (_one_hot(3, i, device),))
            if abs(t.item() - backend.asnumpy(g.array)[i]) > 1e-9:
                return None
    except (ImportError, AttributeError, TypeError, ValueError, RuntimeError):
        return None  # absent, or an API this script does not know: central differences only
    return jvp


def _reverse_gradient(x):
    leaf = x.detach().requires_grad_()
    return gpuad.grad(objective(leaf), leaf)


def _one_hot(n, i, device):
    e = numpy.zeros(n)
    e[i] = 1.0
    return gpuad.tensor(e, device=device)


def _fd_column(host, device, h=1e-5):  # h about cbrt(eps) for float64
    def column(i):
        plus, minus = host.copy(), host.copy()
        plus[i] += h
        minus[i] -= h
        with gpuad.no_grad():
            fp = objective(gpuad.tensor(plus, device=device))
            fm = objective(gpuad.tensor(minus, device=device))
        return (fp - fm) / (2 * h)
    return column


def _jvp_column(jvp, x, device):
    def column(i):
        return jvp(objective, (x,), (_one_hot(x.shape[0], i, device),))[1]
    return column


def _n_pass(column, n, budget, sync):
    """(seconds for all n columns, columns measured, their values): the columns are measured
    while within budget, the rest extrapolated linearly."""
    column(0)  # warm-up
    sync()
    found = []
    start = time.perf_counter()
    while len(found) < n:
        found.append(column(len(found)))
        if len(found) % 8 == 0 or len(found) == n:
            sync()
            if time.perf_counter() - start > budget:
                break
    sync()
    spent = time.perf_counter() - start
    return spent * n / len(found), len(found), found


def timings(sizes, budget, repeats, device, seed):
    """Rows {n, method, passes, seconds, extrapolated, columns_measured, max_error}."""
    dev = gpuad.device(device)

    def sync():
        backend.cuda.synchronize(dev)
    jvp = _load_jvp(device)
    rows = []
    for n in sizes:
        gpuad.manual_seed(seed)
        x = gpuad.randn(n, dtype=gpuad.float64, device=device)
        host = backend.asnumpy(x.array).copy()
        _reverse_gradient(x)  # warm-up
        samples = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            (g,) = _reverse_gradient(x)
            sync()
            samples.append(time.perf_counter() - start)
        reverse = backend.asnumpy(g.array)
        analytic = numpy.sin(host) + host * numpy.cos(host)
        rows.append({"table": "timing", "n": n, "method": "reverse", "passes": 1,
                     "seconds": statistics.median(samples), "extrapolated": False,
                     "columns_measured": n,
                     "max_error": float(numpy.max(numpy.abs(reverse - analytic)))})
        methods = [("central_fd", _fd_column(host, device), 2 * n)]
        if jvp is not None:
            methods.insert(0, ("jvp", _jvp_column(jvp, x, device), n))
        for method, column, passes in methods:
            seconds, done, found = _n_pass(column, n, budget, sync)
            error = max(abs(d.item() - reverse[i]) for i, d in enumerate(found))
            rows.append({"table": "timing", "n": n, "method": method, "passes": passes,
                         "seconds": seconds, "extrapolated": done < n, "columns_measured": done,
                         "max_error": float(error)})
    return rows


def _t(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def print_timings(rows, device, budget):
    methods = list(dict.fromkeys(r["method"] for r in rows))
    titles = {"reverse": "reverse (1 pass)", "jvp": "forward: n jvp's",
              "central_fd": "central FD (2n evals)"}
    print(f"\nfull gradient of f(x) = sum(sin(x)*x): n inputs, one output, float64, {device}")
    print(f"{'n':<8}" + "".join(f"{titles[m]:<26}" for m in methods).rstrip())
    for n in dict.fromkeys(r["n"] for r in rows):
        mine = {r["method"]: r for r in rows if r["n"] == n}
        cells = []
        for m in methods:
            text = _t(mine[m]["seconds"]) + (" *" if mine[m]["extrapolated"] else "")
            if m != "reverse":
                text += f" ({mine[m]['seconds'] / mine['reverse']['seconds']:,.0f}x)"
            cells.append(f"{text:<26}")
        print((f"{n:<8}" + "".join(cells)).rstrip())
    print(f"* extrapolated linearly from the columns measured within {budget} s ("
          + ", ".join(f"{r['method']} n={r['n']}: {r['columns_measured']} of {r['n']}"
                           for r in rows if r["extrapolated"]) + ")")
    worst = {m: max(r["max_error"] for r in rows if r["method"] == m) for m in methods}
    print("max |error| of the measured columns: reverse vs sin(x)+x·cos(x) "
          f"{worst['reverse']:.1e}" + "".join(f", {m} vs reverse {worst[m]:.1e}"
                                             for m in methods if m != "reverse"))
    if "jvp" not in methods:
        print("gpuad.func.jvp not available: forward mode shown by central differences only")


# ---- the plot, when matplotlib is there ---------------------------------------------------------
def plot(errors, times, path):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"matplotlib is not installed: no plot written to {path} (pip install matplotlib)")
        return None
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, dtype_name in zip(axes, DTYPES):
        for k, (name, _, _) in enumerate(FUNCTIONS):
            mine = [r for r in errors if r["dtype"] == dtype_name and r["function"] == name]
            hs = [r["h"] for r in mine]
            for kind, style in (("forward", "--"), ("central", "-")):
                ax.loglog(hs, [max(r[kind], 1e-17) for r in mine], style, color=f"C{k}",
                          marker="o", markersize=3, label=f"{name}, {kind}")
        ax.invert_xaxis()
        ax.set(title=f"finite differences vs autodiff, {dtype_name}", xlabel="step h",
               ylabel="relative error")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=7)
    ax = axes[2]
    for k, method in enumerate(dict.fromkeys(r["method"] for r in times)):
        mine = [r for r in times if r["method"] == method]
        ax.loglog([r["n"] for r in mine], [r["seconds"] for r in mine], "-o", color=f"C{k}",
                  label=method)
        ax.loglog([r["n"] for r in mine if r["extrapolated"]],
                  [r["seconds"] for r in mine if r["extrapolated"]], "o", color="white",
                  markeredgecolor=f"C{k}")
    ax.set(title="full gradient, one output (hollow: extrapolated)", xlabel="n inputs",
           ylabel="seconds")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (or strict, for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="n for the timing table (default 10 100 1000 10000)")
    parser.add_argument("--budget", type=float,
                        help="seconds per n-pass measurement before extrapolating (default 0.4)")
    parser.add_argument("--repeats", type=int, help="reverse-mode timings, median (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="for tests: defaults become n up to 1000, 0.05 s budget, 3 repeats")
    parser.add_argument("--plot", metavar="PATH", help="save a log-log plot (needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="also print every row as a JSON line")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = args.sizes or ([10, 100, 1000] if quick else [10, 100, 1000, 10000])
    args.budget = args.budget if args.budget is not None else (0.05 if quick else 0.4)
    args.repeats = args.repeats or (3 if quick else 5)
    errors = [row for name, f, point in FUNCTIONS for dtype_name in DTYPES
              for row in fd_errors(name, f, point, dtype_name, args.device)]
    print_errors(errors)
    times = timings(args.sizes, args.budget, args.repeats, args.device, args.seed)
    print_timings(times, args.device, args.budget)
    if args.plot:
        plot(errors, times, args.plot)
    if args.json:
        for row in errors + times:
            print(json.dumps(row, ensure_ascii=False))
    return {"errors": errors, "timings": times}


if __name__ == "__main__":
    main()
