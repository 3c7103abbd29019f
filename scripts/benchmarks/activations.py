"""The activations benchmark: forward and backward of single activation and normalisation ops on
one (2048, 512) float32 batch (a GPT MLP's hidden activations), gpuad against PyTorch, ms per op.
The training benchmarks hide a slow op behind their GEMMs; this one shows each op alone."""
import numpy

import gpuad
import gpuad.nn.functional as F
from gpuad import backend

from .timing import measure, ratios

SHAPE = (2048, 512)
# name: (gpuad's op, torch's op given torch.nn.functional), each taking the input tensor
OPS = {
    "relu": (F.relu, lambda tF: tF.relu),
    "leaky_relu": (F.leaky_relu, lambda tF: tF.leaky_relu),
    "elu": (F.elu, lambda tF: tF.elu),
    "sigmoid": (F.sigmoid, lambda tF: tF.sigmoid),
    "silu": (F.silu, lambda tF: tF.silu),
    "tanh": (F.tanh, lambda tF: tF.tanh),
    "softplus": (F.softplus, lambda tF: tF.softplus),
    "gelu": (F.gelu, lambda tF: tF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda tF: lambda x: tF.gelu(x, approximate="tanh")),
    "softmax": (lambda x: F.softmax(x, dim=-1), lambda tF: lambda x: tF.softmax(x, dim=-1)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1),
                    lambda tF: lambda x: tF.log_softmax(x, dim=-1)),
    "layer_norm": (lambda x: F.layer_norm(x, SHAPE[-1:]),
                   lambda tF: lambda x: tF.layer_norm(x, SHAPE[-1:])),
}


def activation_cases(name, device, torch):
    """gpuad's and torch's forward + backward of op `name` on the same input and gradient."""
    rng = numpy.random.default_rng(0)
    x0 = rng.standard_normal(SHAPE).astype(numpy.float32)
    g0 = rng.standard_normal(SHAPE).astype(numpy.float32)
    op, torch_op = OPS[name]
    dev = gpuad.device(device)
    x = gpuad.tensor(backend.to_device(x0, dev), requires_grad=True)
    g = gpuad.tensor(backend.to_device(g0, dev))

    def gpuad_step():
        x.grad = None
        op(x).backward(g)
    cases = {"gpuad": gpuad_step}
    if torch is not None:
        tdev = "cuda" if dev.type == "cuda" else "cpu"
        tx = torch.tensor(x0, device=tdev, requires_grad=True)
        tg, top = torch.tensor(g0, device=tdev), torch_op(torch.nn.functional)

        def torch_step():
            tx.grad = None
            top(tx).backward(tg)
        cases["torch"] = torch_step
    return cases


def bench_activations(args, torch):
    """One row per op and framework: ms per forward + backward."""
    rows = []
    for name in OPS:
        timings = measure(activation_cases(name, args.device, torch), args.repeats, 5,
                          args.device, torch)
        for framework, (med, lo, hi) in timings.items():
            rows.append({"bench": "activations", "op": name, "shape": list(SHAPE),
                         "framework": framework, "unit": "ms (fwd+bwd)", "median": med * 1e3,
                         "min": lo * 1e3, "max": hi * 1e3, **ratios(timings, framework),
                         "per_round": [t * 1e3 for t in timings.rounds[framework]]})
    return rows
