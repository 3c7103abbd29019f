"""Timing: frameworks run interleaved, round by round, in one process, so machine noise hits them
alike; rows carry the medians, min-max and the time ratios of the same run."""
import statistics
import time

import gpuad
from gpuad import backend


def sync(device, torch):
    """Wait for the GPU work queued so far (gpuad's and torch's), so the clock reads it."""
    if gpuad.device(device).type == "cuda":
        backend.cuda.synchronize(gpuad.device(device))
        if torch is not None:
            torch.cuda.synchronize()


def measure(cases, repeats, inner, device, torch, prepare=None, warmup=None):
    """Median, min and max seconds per call of each case, interleaved round by round. `prepare`
    maps a case to an untimed callable run before each of its timed calls (to restart it from the
    same state); `warmup` maps a case to what to run once first (default: the case itself).

    Each round starts one case later than the last (rotated order), so no case always runs right
    after the same other one. On 2 cores, with a fixed order, the compiled MLP step measured
    1.08-1.14x the floor when it ran right after torch's epoch and 1.05-1.06x when it ran after
    the floor's (tenth session)."""
    for name, fn in cases.items():  # warm-up: caches, allocator pools, CuPy kernel compilation
        (warmup or cases)[name]()
    samples = {name: [] for name in cases}
    names = list(cases)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            fn = cases[name]
            if prepare:
                prepare[name]()
            sync(device, torch)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            sync(device, torch)
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: (statistics.median(s), min(s), max(s)) for name, s in samples.items()}


def one_round(runner, spec):
    """(prepare, timed) for a round: restart from the initial weights, run the untimed warm-up
    steps, then time spec['steps'] steps (the same batches every round)."""
    warm = spec.get("warmup", 0)

    def prepare():
        runner.reset()
        runner.run(0, warm)
    return prepare, lambda: runner.run(warm, spec["steps"])


def time_runners(runners, spec, args, torch, extra_cases=None):
    """Interleaved rounds of every runner (and any extra cases); {name: (median, min, max)}."""
    prepare, cases, warmup = {}, {}, {}
    for name, runner in runners.items():
        prepare[name], cases[name] = one_round(runner, spec)
        warmup[name] = lambda r=runner: (r.reset(), r.run(0, min(3, spec["steps"])))
    for name, fn in (extra_cases or {}).items():
        prepare[name], cases[name], warmup[name] = (lambda: None), fn, fn
    return measure(cases, max(args.repeats, 3), 1, args.device, torch, prepare, warmup)


def result_rows(bench, timings, unit, scale, args, **common):
    """Rows with median/min/max in `unit` (seconds * scale) and the time ratios of the same run."""
    rows = []
    for name, (med, lo, hi) in timings.items():
        rows.append({"bench": bench, "framework": name, "device": args.device, "unit": unit,
                     "median": med * scale, "min": lo * scale, "max": hi * scale,
                     "rounds": max(args.repeats, 3),
                     "vs_floor": med / timings["floor"][0] if "floor" in timings else None,
                     "vs_torch": med / timings["torch"][0] if "torch" in timings else None,
                     "data": "synthetic" if args.synthetic else "mnist", **common})
    return rows

