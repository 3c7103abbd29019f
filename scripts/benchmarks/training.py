"""The training benchmarks (mlp, cnn, matmul_rate, amp): each network as a gpuad model, a torch
model and the floor, started from the same weights on the same batches."""
import numpy

import gpuad
import models
from gpuad import backend

from .data import load_mnist, shuffled, torch_init
from .memory import with_memory
from .runners import COMPILED, FRAMEWORKS, make_runners
from .timing import ratios, result_rows, time_runners


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
    x, y = shuffled([x, y], args.seed)
    steps = -(-len(x) // spec["batch"])
    spec["steps"] = steps if args.steps is None else min(steps, args.steps)
    return make_runners(spec, x, y, args, torch, names), spec, (test_x, test_y)


def cnn_setup(args, torch, names=FRAMEWORKS):
    x, y, _, _ = load_mnist(args)
    shapes = [tuple(p.shape) for p in models.LeNet5().parameters()][0::2]
    spec = {"gpuad_model": models.LeNet5, "torch_model": _torch_lenet5, "batch": 64,
            "optimizer": ("adam", 1e-3, None), "init": torch_init(shapes, args.seed),
            "warmup": 5, "steps": 200 if args.steps is None else args.steps}
    x, y = shuffled([x, y], args.seed)
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


def bench_mlp(args, torch, compiled=False):
    """One epoch of the MNIST MLP; `compiled`: gpuad's step is gpuad.compile'd (mlp_compiled)."""
    name = "mlp_compiled" if compiled else "mlp"
    runners, spec, (test_x, test_y) = mlp_setup(args, torch, COMPILED if compiled else FRAMEWORKS)
    timings = time_runners(runners, spec, args, torch)
    samples = min(spec["steps"] * spec["batch"], len(runners["floor"].x))
    rows = result_rows(name, timings, "s/epoch", 1, args, batch=spec["batch"], steps=spec["steps"])
    for row in rows:
        runner = runners[row["framework"]]
        row["samples_per_s"] = samples / row["median"]
        row["train_loss_last"] = runner.loss()
        row["test_accuracy"] = runner.accuracy(test_x, test_y)  # after the last round's epoch
    return with_memory(rows, name, runners, spec, args, torch)


def bench_cnn(args, torch, compiled=False):
    """Adam steps of LeNet5; `compiled`: gpuad's step is gpuad.compile'd (cnn_compiled)."""
    name = "cnn_compiled" if compiled else "cnn"
    runners, spec, _ = cnn_setup(args, torch, COMPILED if compiled else FRAMEWORKS)
    timings = time_runners(runners, spec, args, torch).per(spec["steps"])
    rows = result_rows(name, timings, "ms/step", 1e3, args, batch=spec["batch"],
                       steps=spec["steps"], warmup_steps=spec["warmup"])
    for row in rows:
        row["steps_per_s"] = 1e3 / row["median"]
        row["loss"] = runners[row["framework"]].loss()  # after warm-up + timed steps
    return with_memory(rows, name, runners, spec, args, torch)


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
    timings = timings.per(spec["steps"])
    rows = result_rows("matmul_rate", timings, "ms/step", 1e3, args, batch=batch,
                       widths=list(widths), steps=spec["steps"], matmul_n=n,
                       matmul_tflops=matmul_rate / 1e12, flops_per_step=flops,
                       flops_per_step_6n=flops_6n, data="random")
    for row in rows:
        rate = flops / (row["median"] / 1e3)
        row["tflops"] = rate / 1e12
        row["frac_of_matmul"] = rate / matmul_rate
    return rows


def bench_amp(args, torch):
    """matmul_rate's step in float32 and under autocast, per framework, in the same rounds."""
    runners, spec, _ = matmul_setup(args, torch, names=("gpuad", "gpuad_amp", "torch", "torch_amp"))
    timings = time_runners(runners, spec, args, torch).per(spec["steps"])
    batch, widths, _ = _matmul_sizes(args)
    rows = result_rows("amp", timings, "ms/step", 1e3, args, batch=batch, widths=list(widths),
                       steps=spec["steps"], amp_dtype="float16", data="random")
    for row in rows:
        name = row["framework"]
        base, suffix = name.removesuffix("_amp"), "_amp" if name.endswith("_amp") else ""
        # the floor has no autocast; amp against torch's amp, float32 against float32
        row.update(ratios(timings, name, floor=None, torch="torch" + suffix))
        row["amp_speedup"] = timings.ratio(base, name)
        row["loss"] = runners[name].loss()
    return rows

