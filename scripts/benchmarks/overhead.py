"""The overhead benchmark: the engine's per-op bookkeeping on tiny and small tensors, against the
same chain written by hand on arrays and in PyTorch (us per op, forward + backward)."""
import gpuad
from gpuad import backend

from .timing import measure, ratios

N_OPS = 200


def _chain_gpuad(x):
    y = x
    for _ in range(N_OPS // 4):  # four ops a round: mul, add, tanh, mul
        y = gpuad.tanh(y * 0.9 + 0.1) * 1.1
    return y


def overhead_cases(shape, device, torch, compiled=False):
    """Each case: a callable running N_OPS elementwise ops forward and backward once; with
    `compiled`, gpuad's case is the same step through gpuad.compile ("gpuad_compiled")."""
    gpuad.manual_seed(0)
    x = gpuad.randn(*shape, device=device, requires_grad=True)
    cases = {}

    def gpuad_step():
        x.grad = None
        _chain_gpuad(x).sum().backward()
    if compiled:
        cases["gpuad_compiled"] = gpuad.compile(gpuad_step)  # the warm-up call records it
    else:
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



def bench_overhead(args, torch, compiled=False):
    """Rows of us per op for a (1,) and a (64, 64) tensor (overhead_compiled: gpuad.compile'd)."""
    rows = []
    for shape in [(1,), (64, 64)]:
        timings = measure(overhead_cases(shape, args.device, torch, compiled), args.repeats, 20,
                          args.device, torch)
        for name, (med, lo, hi) in timings.items():
            per_op = 1e6 / N_OPS
            rows.append({"bench": "overhead_compiled" if compiled else "overhead",
                         "shape": list(shape), "framework": name,
                         "unit": "us/op (fwd+bwd)", "median": med * per_op, "min": lo * per_op,
                         "max": hi * per_op, **ratios(timings, name),
                         "per_round": [t * per_op for t in timings.rounds[name]]})
    return rows
