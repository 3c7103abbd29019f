"""Plot training curves from metrics files (JSON lines, or CSV with a header row) to a PNG.

    python scripts/plot_run.py runs/charlm.metrics.jsonl         # -> runs/charlm.metrics.png
    python scripts/plot_run.py a.jsonl b.jsonl --out compare.png --x elapsed

Reads what scripts/train_charlm.py and scripts/train_mnist.py --metrics write: one record per line
with a step or epoch counter, *_loss values and, for MNIST, test_accuracy. Losses go in the left
panel, accuracies (when any file has them) in the right one; one line per file and key. Needs
matplotlib (pip install matplotlib); reading the files does not.
"""
import argparse
import csv
import json
import math
import os


def read_metrics(path):
    """The records of a metrics file as dicts: JSON lines, or CSV whose first row names the
    columns (numbers parsed, empty cells dropped). Blank or torn lines are skipped."""
    with open(path, newline="") as f:
        text = f.read()
    first = text.lstrip()[:1]
    if first and first != "{":  # CSV
        records = []
        for row in csv.DictReader(text.splitlines()):
            records.append({k: _number(v) for k, v in row.items() if k and v not in (None, "")})
        return records
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value):
    try:
        return float(value)
    except ValueError:
        return value


def series(records, x=None):
    """(x name, {key: (xs, ys)}) for every numeric loss or accuracy key. x defaults to step, then
    epoch, then the record's position."""
    if x is None:
        x = next((k for k in ("step", "epoch") if any(k in r for r in records)), None)
    out = {}
    for i, r in enumerate(records):
        xv = r.get(x) if x else i + 1
        for key, v in r.items():
            if not (key.endswith("loss") or "accuracy" in key) or not _finite(v) or not _finite(xv):
                continue
            xs, ys = out.setdefault(key, ([], []))
            xs.append(xv), ys.append(v)
    return x or "record", out


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plot(paths, out, x=None):
    """Draw the curves of every file into one PNG at `out`; returns the keys drawn per file."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SystemExit("plot_run: matplotlib is not installed; pip install matplotlib to draw "
                         "the curves") from None
    curves = {path: series(read_metrics(path), x) for path in paths}
    if not any(s for _, s in curves.values()):
        raise SystemExit(f"plot_run: no loss or accuracy values in {', '.join(paths)}")
    accuracy = any("accuracy" in k for _, s in curves.values() for k in s)
    fig = Figure(figsize=(11 if accuracy else 6.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if accuracy else 1, squeeze=False)[0]
    names = _short_names(paths)
    for path, (xname, s) in curves.items():
        for key, (xs, ys) in s.items():
            ax = axes[1] if accuracy and "accuracy" in key else axes[0]
            label = f"{names[path]}: {key}" if len(paths) > 1 else key
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
    xlabels = sorted({xname for xname, _ in curves.values()})
    for ax, ylabel in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel(" / ".join(xlabels)), ax.set_ylabel(ylabel), ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(", ".join(names.values()))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    return {path: sorted(s) for path, (_, s) in curves.items()}


def _short_names(paths):
    names = {p: os.path.basename(p).removesuffix(".jsonl").removesuffix(".csv")
             .removesuffix(".metrics") for p in paths}
    if len(set(names.values())) < len(paths):  # same file names in different folders
        names = {p: os.path.relpath(p) for p in paths}
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="metrics files (JSON lines or CSV)")
    parser.add_argument("--out", help="the PNG to write (default: the first file's name with "
                                      ".png)")
    parser.add_argument("--x", help="the key on the x axis (default: step, else epoch); e.g. "
                                    "elapsed")
    args = parser.parse_args(argv)
    for path in args.files:
        if not os.path.exists(path):
            parser.error(f"{path} does not exist")
    out = args.out or os.path.splitext(args.files[0])[0] + ".png"
    drawn = plot(args.files, out, args.x)
    keys = "; ".join(f"{path}: {', '.join(k)}" for path, k in drawn.items())
    print(f"wrote {out} ({keys})")
    return out


if __name__ == "__main__":
    main()
