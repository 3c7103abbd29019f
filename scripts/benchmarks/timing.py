"""Timing: frameworks run interleaved, round by round, in one process, so machine noise hits them
alike; rows carry the medians, min-max, each round's time and the time ratios of the same run.

A ratio is the median over rounds of the two frameworks' times in the same round. The machine's
phases move whole rounds (the floor's MLP epoch took 0.58 s in some rounds of a run and 1.2 s in
others), so a ratio of two medians may set a fast-phase round of one against a slow-phase round of
the other; the rounds' own ratios do not (the ratio of the medians is kept as vs_*_medians)."""
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


class Timings:
    """Seconds per call of each case, round by round: `rounds[name]` in the order they ran;
    timings[name] is its (median, min, max)."""

    def __init__(self, rounds):
        self.rounds = rounds

    def __getitem__(self, name):
        s = self.rounds[name]
        return statistics.median(s), min(s), max(s)

    def __contains__(self, name):
        return name in self.rounds

    def items(self):
        return [(name, self[name]) for name in self.rounds]

    def pop(self, name):
        value = self[name]
        del self.rounds[name]
        return value

    def per(self, count):
        """The same rounds divided by `count` (seconds per step of a round of `count` steps)."""
        return Timings({name: [t / count for t in s] for name, s in self.rounds.items()})

    def ratio(self, name, reference):
        """Median over rounds of name's time over reference's in the same round; None when the
        reference did not run."""
        if reference not in self.rounds:
            return None
        return statistics.median(a / b for a, b in zip(self.rounds[name], self.rounds[reference]))

    def ratio_of_medians(self, name, reference):
        return self[name][0] / self[reference][0] if reference in self.rounds else None


def measure(cases, repeats, inner, device, torch, prepare=None, warmup=None):
    """Seconds per call of each case (Timings), interleaved round by round. `prepare`
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
    return Timings(samples)


def one_round(runner, spec):
    """(prepare, timed) for a round: restart from the initial weights, run the untimed warm-up
    steps, then time spec['steps'] steps (the same batches every round)."""
    warm = spec.get("warmup", 0)

    def prepare():
        runner.reset()
        runner.run(0, warm)
    return prepare, lambda: runner.run(warm, spec["steps"])


def time_runners(runners, spec, args, torch, extra_cases=None):
    """Interleaved rounds of every runner (and any extra cases): Timings."""
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
                     "rounds": max(args.repeats, 3), **ratios(timings, name),
                     "per_round": [t * scale for t in timings.rounds[name]],
                     "data": "synthetic" if args.synthetic else "mnist", **common})
    return rows


def ratios(timings, name, floor="floor", torch="torch"):
    """A row's time ratios against the floor and torch: paired by round, and of the medians."""
    return {"vs_floor": timings.ratio(name, floor), "vs_torch": timings.ratio(name, torch),
            "vs_floor_medians": timings.ratio_of_medians(name, floor),
            "vs_torch_medians": timings.ratio_of_medians(name, torch)}

