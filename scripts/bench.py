"""Benchmarks: gpuad against a hand-written array floor and PyTorch, measured in the same run.

    python scripts/bench.py --all [--device cpu|cuda] [--repeats 5] [--json out.jsonl]
    python scripts/bench.py mlp cnn --steps 20 --synthetic      # a quick look, no MNIST needed

Prints one JSON line per measurement (also appended to --json FILE) and a table of medians with
min-max and time ratios gpuad/floor and gpuad/PyTorch. Frameworks run interleaved, round by round,
in one process, so machine noise hits them alike; each round starts every framework from the same
weights (drawn once with numpy, torch's default init) and feeds it the same batches.

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

The floor is gpuad/testing/floor.py: forward, backward and update written by hand on numpy/CuPy
arrays. Peak memory on the CPU is per process, so each framework's mlp and cnn run once more in a
fresh subprocess after the timing rounds (`--memory-probe BENCH FRAMEWORK`); on CUDA it is the
growth of CuPy's pool against that of torch's allocator over one more run, in process. The OpenBLAS
kernel overrides OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if set, are dropped (the script
re-executes itself without them before numpy loads) and the output says so.
"""
import os
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

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import time

import numpy

import gpuad
import gpuad.nn.functional as F
from gpuad import backend
from gpuad.testing import floor

import models

N_OPS = 200
FRAMEWORKS = ("gpuad", "floor", "torch")


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
    data = x.array.copy()

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
        backend.cuda.synchronize(gpuad.device(device))
        if torch is not None:
            torch.cuda.synchronize()


def measure(cases, repeats, inner, device, torch, prepare=None, warmup=None):
    """Median, min and max seconds per call of each case, interleaved round by round. `prepare`
    maps a case to an untimed callable run before each of its timed calls (to restart it from the
    same state); `warmup` maps a case to what to run once first (default: the case itself)."""
    for name, fn in cases.items():  # warm-up: caches, allocator pools, CuPy kernel compilation
        (warmup or cases)[name]()
    samples = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            if prepare:
                prepare[name]()
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


# ---- data and initial weights -------------------------------------------------------------------
SYNTHETIC_SIZES = (2048, 512)  # train, test images of random --synthetic data
_DATA = {}  # (device, source) -> arrays: loaded once per process, shared by mlp and cnn


def load_mnist(args):
    """(train x, train y, test x, test y) on the device: all of MNIST (or --synthetic random data
    of its shapes), images normalised float32 (N, 1, 28, 28), labels int64. Loaded once."""
    dev = gpuad.device(args.device)
    key = (dev, "synthetic" if args.synthetic else args.data)
    if key not in _DATA:
        if args.synthetic:
            rng = numpy.random.default_rng([args.seed, 7])
            arrays = []
            for n in SYNTHETIC_SIZES:
                arrays += [rng.standard_normal((n, 1, 28, 28), numpy.float32),
                           rng.integers(0, 10, n)]
        else:
            from gpuad.data.datasets import MNIST
            try:
                sets = [MNIST(args.data, train=train) for train in (True, False)]
            except FileNotFoundError as e:
                raise SystemExit(f"bench: MNIST not found ({e}).\nSet GPUAD_DATA to a folder whose "
                                 f"mnist/ holds the four IDX files, pass --data FOLDER, or run "
                                 f"with --synthetic (random data, labelled so).") from None
            arrays = [t.array for s in sets for t in s.tensors]
        _DATA[key] = [backend.to_device(a, dev) for a in arrays]
    return _DATA[key]


def torch_init(shapes, seed):
    """Weights and biases for (out, in, ...) weight shapes, drawn once with numpy like torch's
    default Linear/Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both. float32, torch's
    layout, [W1, b1, W2, b2, ...]."""
    rng = numpy.random.default_rng(seed)
    params = []
    for shape in shapes:
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        params += [rng.uniform(-bound, bound, shape).astype(numpy.float32),
                   rng.uniform(-bound, bound, shape[0]).astype(numpy.float32)]
    return params


def _shuffled(arrays, seed):
    """The epoch's order: one permutation, applied once on the device, shared by every framework
    (each step then takes a contiguous slice: no gather inside the timed loop)."""
    order = numpy.random.default_rng([seed, 1]).permutation(len(arrays[0]))
    order = backend.to_device(order, backend.device_of(arrays[0]))
    return [a[order] for a in arrays]


# ---- one framework's training run ---------------------------------------------------------------
class Runner:
    """One framework training one network: `reset()` restarts from the initial weights with a fresh
    optimizer (untimed), `run(first, count)` trains on batches first..first+count-1 of the shared
    data (the timed part), `loss()` and `accuracy()` read results back (untimed)."""

    def __init__(self, spec, x, y):
        self.spec, self.x, self.y, self.last = spec, x, y, None

    def loss(self):
        return float(self.last.item())  # a 0-d gpuad or torch tensor (the floor overrides this)

    def run(self, first, count):
        b = self.spec["batch"]
        batches = -(-len(self.x) // b)  # wrapping around: matmul_rate reuses its one batch
        for i in range(first, first + count):
            i %= batches
            self.last = self.step(self.x[i * b:(i + 1) * b], self.y[i * b:(i + 1) * b])


class GpuadRunner(Runner):
    def __init__(self, spec, x, y, dev):
        super().__init__(spec, x, y)
        self.model = spec["gpuad_model"]().to(dev)
        self.dev = dev
        _check_shapes("gpuad", [p.shape for p in self.model.parameters()], spec["init"])

    def reset(self):
        for p, value in zip(self.model.parameters(), self.spec["init"]):
            p.array[...] = backend.to_device(value, self.dev)
            p.grad = None
        kind, lr, extra = self.spec["optimizer"]
        params = self.model.parameters()
        self.opt = (gpuad.optim.SGD(params, lr=lr, momentum=extra) if kind == "sgd" else
                    gpuad.optim.Adam(params, lr=lr))

    def step(self, x, y):
        loss = F.cross_entropy(self.model(gpuad.Tensor(x)), gpuad.Tensor(y))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def accuracy(self, x, y):
        with gpuad.no_grad():
            logits = self.model(gpuad.Tensor(x)).array
        return float((logits.argmax(axis=1) == y).mean())


class GraphedGpuadRunner(GpuadRunner):
    """gpuad with the training step recorded once as a CUDA graph (gpuad.cuda.graph) and replayed:
    two eager steps warm up (kernels compile, momentum buffers appear), the third records, every
    step after is one graph launch. Recording happens inside the timed epoch. SGD only: a graph
    freezes Adam's host-side step count."""

    def reset(self):
        super().reset()
        b = self.spec["batch"]
        self.static_x, self.static_y = gpuad.Tensor(self.x[:b].copy()), gpuad.Tensor(self.y[:b].copy())
        self.replay, self.eager_steps = None, 0

    def _static_step(self):
        return GpuadRunner.step(self, self.static_x.array, self.static_y.array)

    def step(self, x, y):
        if len(x) != self.spec["batch"]:  # the epoch's short last batch runs eagerly
            return super().step(x, y)
        self.static_x.array[...] = x
        self.static_y.array[...] = y
        if self.replay is None:
            self.eager_steps += 1
            if self.eager_steps <= 2:
                return self._static_step()
            self.replay = gpuad.cuda.graph(self._static_step, device=self.dev)
        return self.replay()


class AmpGpuadRunner(GpuadRunner):
    """GpuadRunner's step under gpuad.autocast (float16) with loss scaling, torch's recipe."""

    def reset(self):
        super().reset()
        self.scaler = gpuad.amp.GradScaler()

    def step(self, x, y):
        with gpuad.autocast(self.dev.type, dtype=gpuad.float16):
            loss = F.cross_entropy(self.model(gpuad.Tensor(x)), gpuad.Tensor(y))
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss


class FloorRunner(Runner):
    def __init__(self, spec, x, y, dev):
        super().__init__(spec, x, y)
        self.dev = dev

    def reset(self):
        kind, lr, extra = self.spec["optimizer"]
        init = [backend.to_device(p, self.dev) for p in self.spec["init"]]
        self.net = (floor.MLP(init, lr=lr, momentum=extra) if kind == "sgd" else
                    floor.CNN(init, lr=lr))

    def step(self, x, y):
        return self.net.train_step(x, y)

    def loss(self):
        return float(self.last)

    def accuracy(self, x, y):
        return float((self.net.logits(x).argmax(axis=1) == y).mean())


class TorchRunner(Runner):
    def __init__(self, spec, x, y, dev, torch):
        self.torch, self.tdev = torch, "cuda" if dev.type == "cuda" else "cpu"
        super().__init__(spec, self.tensor(x), self.tensor(y))
        self.model = spec["torch_model"](torch).to(self.tdev)
        _check_shapes("torch", [tuple(p.shape) for p in self.model.parameters()], spec["init"])

    def tensor(self, a):
        """The same memory as a torch tensor (numpy or, on CUDA, CuPy's array interface)."""
        if self.tdev == "cpu":
            return self.torch.from_numpy(a)
        return self.torch.as_tensor(a, device=self.tdev)

    def reset(self):
        torch = self.torch
        with torch.no_grad():
            for p, value in zip(self.model.parameters(), self.spec["init"]):
                p.copy_(torch.from_numpy(value))
                p.grad = None
        kind, lr, extra = self.spec["optimizer"]
        params = self.model.parameters()
        self.opt = (torch.optim.SGD(params, lr=lr, momentum=extra) if kind == "sgd" else
                    torch.optim.Adam(params, lr=lr))

    def step(self, x, y):
        loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def accuracy(self, x, y):
        with self.torch.no_grad():
            logits = self.model(self.tensor(x))
        return float((logits.argmax(1) == self.tensor(y)).float().mean().item())


class AmpTorchRunner(TorchRunner):
    def reset(self):
        super().reset()
        self.scaler = self.torch.amp.GradScaler(self.tdev)

    def step(self, x, y):
        torch = self.torch
        with torch.autocast(self.tdev, dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss


def _check_shapes(name, shapes, init):
    if [tuple(s) for s in shapes] != [p.shape for p in init]:
        raise RuntimeError(f"bench: the {name} network's parameter shapes {shapes} differ from "
                           f"the benchmark's {[p.shape for p in init]}")


def make_runners(spec, x, y, args, torch, names=FRAMEWORKS):
    dev = gpuad.device(args.device)
    if torch is not None and dev.type == "cuda":  # float32 means float32 for every framework
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    runners = {}
    for name in names:
        if name == "gpuad":
            runners[name] = GpuadRunner(spec, x, y, dev)
        elif name == "floor":
            runners[name] = FloorRunner(spec, x, y, dev)
        elif name == "torch" and torch is not None:
            runners[name] = TorchRunner(spec, x, y, dev, torch)
        elif name == "gpuad_amp":
            runners[name] = AmpGpuadRunner(spec, x, y, dev)
        elif name == "torch_amp" and torch is not None:
            runners[name] = AmpTorchRunner(spec, x, y, dev, torch)
    if (names == FRAMEWORKS and dev.type == "cuda" and spec["optimizer"][0] == "sgd"
            and not spec.get("no_graph")):
        runners["gpuad_graph"] = GraphedGpuadRunner(spec, x, y, dev)
    return runners


# ---- the networks -------------------------------------------------------------------------------
def _torch_mlp(widths):
    def build(torch):
        nn = torch.nn
        layers = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    return build


def _torch_lenet5(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def _mlp_spec(widths, batch, optimizer, seed):
    return {"gpuad_model": lambda: models.MLP(widths[0], tuple(widths[1:-1]), widths[-1]),
            "torch_model": _torch_mlp(widths), "batch": batch, "optimizer": optimizer,
            "init": torch_init([(b, a) for a, b in zip(widths, widths[1:])], seed)}


def mlp_setup(args, torch, names=FRAMEWORKS):
    """The mlp benchmark's runners (sharing the epoch's shuffled data) and test set."""
    x, y, test_x, test_y = load_mnist(args)
    spec = _mlp_spec((784, 256, 256, 10), 128, ("sgd", 0.1, 0.9), args.seed)
    x, y = _shuffled([x, y], args.seed)
    steps = -(-len(x) // spec["batch"])
    spec["steps"] = steps if args.steps is None else min(steps, args.steps)
    return make_runners(spec, x, y, args, torch, names), spec, (test_x, test_y)


def cnn_setup(args, torch, names=FRAMEWORKS):
    x, y, _, _ = load_mnist(args)
    shapes = [tuple(p.shape) for p in models.LeNet5().parameters()][0::2]
    spec = {"gpuad_model": models.LeNet5, "torch_model": _torch_lenet5, "batch": 64,
            "optimizer": ("adam", 1e-3, None), "init": torch_init(shapes, args.seed),
            "warmup": 5, "steps": 200 if args.steps is None else args.steps}
    x, y = _shuffled([x, y], args.seed)
    needed = (spec["warmup"] + spec["steps"]) * spec["batch"]
    if needed > len(x):
        raise SystemExit(f"bench: cnn needs {needed} training images for {spec['steps']} steps; "
                         f"the data has {len(x)} (lower --steps)")
    return make_runners(spec, x, y, args, torch, names), spec, None


def _matmul_sizes(args):
    """(batch, widths, square matmul size): the issue's sizes on cuda, about 1/64 of the FLOPs on
    the CPU; --matmul-batch/--matmul-width override. The square matmul is as large as the step's
    largest dimension, so its rate is near the best the BLAS reaches: a smaller one can run slower
    than the step's own GEMMs."""
    cuda = gpuad.device(args.device).type == "cuda"
    batch = args.matmul_batch or (8192 if cuda else 2048)
    width = args.matmul_width or (4096 if cuda else 1024)
    return batch, (width, width, width, 10), max(batch, width)


def matmul_setup(args, torch, names=FRAMEWORKS):
    batch, widths, _ = _matmul_sizes(args)
    dev = gpuad.device(args.device)
    rng = numpy.random.default_rng([args.seed, 2])
    x = backend.to_device(rng.standard_normal((batch, widths[0]), numpy.float32), dev)
    y = backend.to_device(rng.integers(0, widths[-1], batch), dev)
    spec = _mlp_spec(widths, batch, ("sgd", 0.01, 0.9), args.seed)
    spec["no_graph"] = True  # a recorded step multiplies on gpuad's tiled kernel, not cuBLAS
    spec["steps"] = args.steps or (10 if dev.type == "cuda" else 3)
    return make_runners(spec, x, y, args, torch, names), spec, None


# ---- the training benchmarks --------------------------------------------------------------------
def _one_round(runner, spec):
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
        prepare[name], cases[name] = _one_round(runner, spec)
        warmup[name] = lambda r=runner: (r.reset(), r.run(0, min(3, spec["steps"])))
    for name, fn in (extra_cases or {}).items():
        prepare[name], cases[name], warmup[name] = (lambda: None), fn, fn
    return measure(cases, max(args.repeats, 3), 1, args.device, torch, prepare, warmup)


def _rows(bench, timings, unit, scale, args, **common):
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


def bench_mlp(args, torch):
    runners, spec, (test_x, test_y) = mlp_setup(args, torch)
    timings = time_runners(runners, spec, args, torch)
    samples = min(spec["steps"] * spec["batch"], len(runners["floor"].x))
    rows = _rows("mlp", timings, "s/epoch", 1, args, batch=spec["batch"], steps=spec["steps"])
    for row in rows:
        runner = runners[row["framework"]]
        row["samples_per_s"] = samples / row["median"]
        row["train_loss_last"] = runner.loss()
        row["test_accuracy"] = runner.accuracy(test_x, test_y)  # after the last round's epoch
    return _with_memory(rows, "mlp", runners, spec, args, torch)


def bench_cnn(args, torch):
    runners, spec, _ = cnn_setup(args, torch)
    timings = time_runners(runners, spec, args, torch)
    timings = {k: (med / spec["steps"], lo / spec["steps"], hi / spec["steps"])
               for k, (med, lo, hi) in timings.items()}
    rows = _rows("cnn", timings, "ms/step", 1e3, args, batch=spec["batch"], steps=spec["steps"],
                 warmup_steps=spec["warmup"])
    for row in rows:
        row["steps_per_s"] = 1e3 / row["median"]
        row["loss"] = runners[row["framework"]].loss()  # after warm-up + timed steps
    return _with_memory(rows, "cnn", runners, spec, args, torch)


def bench_matmul_rate(args, torch):
    """A training step of a wide MLP in FLOP/s, as a fraction of a plain xp.matmul of square
    matrices of the same dtype timed in the same rounds. The step's FLOPs are the work it does:
    the usual 6 * batch * sum(in * out) (also recorded, as flops_per_step_6n) less the first
    layer's input gradient, which no framework computes (the data needs none)."""
    runners, spec, _ = matmul_setup(args, torch)
    batch, widths, n = _matmul_sizes(args)
    xp = gpuad.device(args.device).xp
    rng = numpy.random.default_rng([args.seed, 3])
    a, b = (backend.to_device(rng.standard_normal((n, n), numpy.float32), args.device)
            for _ in range(2))

    def matmuls():
        for _ in range(spec["steps"]):
            xp.matmul(a, b)
    timings = time_runners(runners, spec, args, torch, {"xp.matmul": matmuls})
    matmul_rate = 2 * n ** 3 * spec["steps"] / timings.pop("xp.matmul")[0]
    flops_6n = 6 * batch * sum(i * o for i, o in zip(widths, widths[1:]))
    flops = flops_6n - 2 * batch * widths[0] * widths[1]
    timings = {k: tuple(t / spec["steps"] for t in v) for k, v in timings.items()}
    rows = _rows("matmul_rate", timings, "ms/step", 1e3, args, batch=batch, widths=list(widths),
                 steps=spec["steps"], matmul_n=n, matmul_tflops=matmul_rate / 1e12,
                 flops_per_step=flops, flops_per_step_6n=flops_6n, data="random")
    for row in rows:
        rate = flops / (row["median"] / 1e3)
        row["tflops"] = rate / 1e12
        row["frac_of_matmul"] = rate / matmul_rate
    return rows


def bench_amp(args, torch):
    """matmul_rate's step in float32 and under autocast, per framework, in the same rounds."""
    runners, spec, _ = matmul_setup(args, torch, names=("gpuad", "gpuad_amp", "torch", "torch_amp"))
    timings = time_runners(runners, spec, args, torch)
    timings = {k: tuple(t / spec["steps"] for t in v) for k, v in timings.items()}
    batch, widths, _ = _matmul_sizes(args)
    rows = _rows("amp", timings, "ms/step", 1e3, args, batch=batch, widths=list(widths),
                 steps=spec["steps"], amp_dtype="float16", data="random")
    for row in rows:
        name = row["framework"]
        base, suffix = name.removesuffix("_amp"), "_amp" if name.endswith("_amp") else ""
        row["vs_floor"] = None  # the floor has no autocast
        row["vs_torch"] = (timings[name][0] / timings["torch" + suffix][0]
                           if "torch" + suffix in timings else None)  # amp against torch's amp
        row["amp_speedup"] = timings[base][0] / timings[name][0]
        row["loss"] = runners[name].loss()
    return rows


BENCHMARKS = {"overhead": bench_overhead, "mlp": bench_mlp, "cnn": bench_cnn,
              "matmul_rate": bench_matmul_rate, "amp": bench_amp}
CUDA_ONLY_IN_ALL = ("matmul_rate", "amp")
SETUPS = {"mlp": mlp_setup, "cnn": cnn_setup}


# ---- peak memory --------------------------------------------------------------------------------
def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_rss_mb():
    """This process's peak RSS: VmHWM on Linux, ru_maxrss elsewhere. (On Linux ru_maxrss is no
    good here: exec carries the parent's peak over to the child, so every probe would report at
    least the RSS of the benchmark process that started it.)"""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)  # bytes on macOS, else KiB


def _reset_peak_rss():
    """Restart the kernel's peak-RSS count (Linux >= 4.0), so the data loading's transient peak
    does not hide the training's; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_probe(args):
    """In a fresh process: set up one framework's benchmark (imports + data), then run it once
    (one round, plus test accuracy for mlp) and report its peak RSS and the growth over the RSS
    right after the setup, as one JSON line."""
    bench, name = args.memory_probe
    torch = _torch() if name == "torch" else None  # a probe imports only its own framework
    runners, spec, test = SETUPS[bench](args, torch, names=[name])
    runner = runners[name]
    setup_peak, after_setup = _peak_rss_mb(), (_status_kb("VmRSS") or 0) / 1024
    reset = _reset_peak_rss()
    prepare, timed = _one_round(runner, spec)
    prepare()
    timed()
    if test is not None:
        runner.accuracy(*test)
    peak = _peak_rss_mb()
    result = {"memory_probe": bench, "framework": name, "peak_rss_mb": peak,
              "peak_rss_source": "VmHWM" if _status_kb("VmHWM") is not None else "ru_maxrss",
              "rss_after_setup_mb": after_setup, "rss_growth_mb": peak - after_setup,
              "setup_peak_rss_mb": setup_peak,
              "peak_since": "setup" if reset else "process start (could not reset the count)"}
    print(json.dumps(result))
    return result


def _probe_in_subprocess(bench, name, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", bench, name,
           "--device", args.device, "--seed", str(args.seed)]
    cmd += ["--synthetic"] if args.synthetic else []
    cmd += ["--data", args.data] if args.data else []
    cmd += ["--steps", str(args.steps)] if args.steps is not None else []
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"memory_probe"')]
    if done.returncode or not lines:
        return {"memory_error": f"probe exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _cuda_memory(runner, name, spec, torch):
    """Device memory one run needs beyond what is already resident (weights, optimizer state and
    the shared data, which CuPy holds for every framework), in MB: CuPy's pool total_bytes after
    the run over its used bytes before (gpuad, floor; cached blocks are freed first, so the pool's
    growth is the run's high-water), or torch's max_memory_allocated over memory_allocated."""
    import cupy
    prepare, timed = _one_round(runner, spec)
    pool = cupy.get_default_memory_pool()
    if name == "torch":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    else:
        backend.cuda.synchronize("cuda")
        pool.free_all_blocks()
        start = pool.used_bytes()
    prepare()
    timed()
    if name == "torch":
        torch.cuda.synchronize()
        return {"gpu_mem_mb": (torch.cuda.max_memory_allocated() - start) / 2 ** 20,
                "gpu_mem_kind": "torch max_memory_allocated growth",
                "torch_max_allocated_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
                "torch_max_reserved_mb": torch.cuda.max_memory_reserved() / 2 ** 20}
    backend.cuda.synchronize("cuda")
    return {"gpu_mem_mb": (pool.total_bytes() - start) / 2 ** 20,
            "gpu_mem_kind": "CuPy pool total_bytes growth",
            "gpu_pool_total_mb": pool.total_bytes() / 2 ** 20}


def _with_memory(rows, bench, runners, spec, args, torch):
    """Add each framework's peak memory to its row (after the timing rounds, so they are not
    disturbed), and the gpuad/torch memory ratios."""
    if args.no_memory:
        return rows
    cuda = gpuad.device(args.device).type == "cuda"
    for row in rows:
        name = row["framework"]
        row.update(_cuda_memory(runners[name], name, spec, torch) if cuda else
                   _probe_in_subprocess(bench, name, args))
    by_name = {r["framework"]: r for r in rows}
    for key in ("gpu_mem_mb",) if cuda else ("peak_rss_mb", "rss_growth_mb"):
        mine, theirs = (by_name.get(n, {}).get(key) for n in ("gpuad", "torch"))
        if mine is not None and theirs:
            by_name["gpuad"][key.replace("_mb", "_vs_torch")] = mine / theirs
    return rows


# ---- environment --------------------------------------------------------------------------------
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """The BLAS libraries loaded in this process, from threadpoolctl, or 'unknown'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    found = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
             f"{i.get('num_threads')} threads ({os.path.basename(i.get('filepath', ''))})"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "unknown (threadpoolctl found no BLAS)"


def environment(args, torch):
    dev = gpuad.device(args.device)
    env = {"bench": "environment", "device": args.device, "cpu": _cpu_model(),
           "cpus": os.cpu_count(), "python": platform.python_version(),
           "numpy": numpy.__version__, "blas": blas_info(),
           "blas_env_unset": os.environ.get(UNSET_NOTE, "").split() or None,
           "torch": torch.__version__ if torch is not None else None,
           "torch_threads": torch.get_num_threads() if torch is not None else None,
           "data": "synthetic" if args.synthetic else "mnist"}
    env["machine"] = env["cpu"]
    if dev.type == "cuda":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(dev.index)
        env["machine"] = env["gpu"] = props["name"].decode()
        env["cupy"] = cupy.__version__
        env["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        try:
            env["cublas"] = cupy.cuda.cublas.getVersion(cupy.cuda.device.get_cublas_handle())
        except Exception:  # noqa: BLE001  (informational only)
            env["cublas"] = "unknown"
        env["tf32"] = "off (torch allow_tf32 False, CuPy default)"
    return env


# ---- output -------------------------------------------------------------------------------------
def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _case(r):
    if r["bench"] == "overhead":
        return "x".join(map(str, r["shape"]))
    if r["bench"] in ("matmul_rate", "amp"):
        return f"b{r['batch']} w{r['widths'][0]}"
    return f"b{r['batch']}x{r['steps']}"


def _extras(r):
    """(throughput, result, memory) columns of a row."""
    if r["bench"] == "mlp":
        out = (f"{r['samples_per_s']:,.0f} samples/s", f"acc {r['test_accuracy']:.4f}")
    elif r["bench"] == "cnn":
        out = (f"{r['steps_per_s']:.1f} steps/s", f"loss {r['loss']:.4f}")
    elif r["bench"] == "matmul_rate":
        out = (f"{r['tflops'] * 1e3:,.1f} GFLOP/s", f"{r['frac_of_matmul']:.2f} of matmul")
    elif r["bench"] == "amp":
        out = (f"{r['amp_speedup']:.2f}x float32", f"loss {r['loss']:.4f}")
    else:
        return "", "", ""
    if "peak_rss_mb" in r:
        mem = f"{r['peak_rss_mb']:.0f} MB (+{r['rss_growth_mb']:.0f})"
    elif "gpu_mem_mb" in r:
        mem = f"+{r['gpu_mem_mb']:.1f} MB"
    else:
        mem = r.get("memory_error", "")[:40]
    return out + (mem,)


def print_table(env, rows):
    torch = f"torch {env['torch']} ({env['torch_threads']} threads)" if env["torch"] else "no torch"
    unset = env["blas_env_unset"]
    print(f"\ndevice {env['device']} | {env['machine']} ({env['cpus']} cpus) | numpy "
          f"{env['numpy']}, BLAS {env['blas']} | {torch} | data {env['data']}"
          + (f" | unset for this run: {' '.join(unset)}" if unset else ""))
    if "gpu" in env:
        print(f"cupy {env['cupy']}, CUDA runtime {env['cuda_runtime']}, cuBLAS {env['cublas']}, "
              f"TF32 {env['tf32']}")
    print(f"{'bench':<12}{'case':<14}{'framework':<11}{'median':>10}{'min-max':>19} "
          f"{'unit':<16}{'/floor':>7}{'/torch':>7}  {'throughput':<20}{'result':<17}"
          f"{'peak mem (growth)':<18}")
    for r in rows:
        throughput, result, mem = _extras(r)
        print(f"{r['bench']:<12}{_case(r):<14}{r['framework']:<11}{r['median']:>10.4g}"
              f"{r['min']:>9.4g}-{r['max']:<9.4g} {r['unit']:<16}{_fmt(r['vs_floor'], '.2f'):>7}"
              f"{_fmt(r['vs_torch'], '.2f'):>7}  {throughput:<20}{result:<17}{mem:<18}")


def parse_args(argv):
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
                        "the epoch, cnn this many instead of 200, matmul_rate and amp instead of 10 (cuda) "
                        "or 3 (cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matmul-batch", type=int, help="matmul_rate and amp batch (8192 cuda, 2048 cpu)")
    parser.add_argument("--matmul-width", type=int, help="matmul_rate and amp widths (4096 cuda, 1024 cpu)")
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
    args = parse_args(argv)
    if args.memory_probe:
        return memory_probe(args)
    torch = _torch()
    env = environment(args, torch)
    rows = []
    for name in selected(args):
        rows += BENCHMARKS[name](args, torch)
    for row in [env] + rows:
        row.setdefault("device", args.device)
        row["machine"] = env["machine"]
        line = json.dumps(row)
        print(line)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")
    print_table(env, rows)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
