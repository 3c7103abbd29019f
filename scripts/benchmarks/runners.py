"""One framework training one network: gpuad (eager, compiled, CUDA-graphed, autocast), the
hand-written floor and PyTorch (eager, autocast), all behind reset/run/loss/accuracy."""
import numpy

import gpuad
import gpuad.nn.functional as F
from gpuad import backend

from . import floor

FRAMEWORKS = ("gpuad", "floor", "torch")
# the mlp_compiled and cnn_compiled benchmarks' frameworks (overhead_compiled: all but gpuad_model)
COMPILED = ("gpuad_compiled", "gpuad_model", "floor", "torch")


def import_torch():
    """PyTorch when it is installed, else None (the benchmarks then run without it)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


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
        # fresh arrays, as a user's new run has: writing into the old ones would keep them views
        # of the flat buffers an earlier round's compiled step moved them into, and each round's
        # new gpuad.compile would move them out of those first (compiler/flat.py)
        for p, value in zip(self.model.parameters(), self.spec["init"]):
            p.array = backend.to_device(numpy.array(value, dtype=p.array.dtype), self.dev)
            p.grad = None
        kind, lr, extra = self.spec["optimizer"]
        params = self.model.parameters()
        self.opt = (gpuad.optim.SGD(params, lr=lr, momentum=extra) if kind == "sgd" else
                    gpuad.optim.Adam(params, lr=lr))
        self.forward = self.model

    def step(self, x, y):
        loss = F.cross_entropy(self.forward(gpuad.Tensor(x)), gpuad.Tensor(y))
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
        self.static_x = gpuad.Tensor(self.x[:b].copy())
        self.static_y = gpuad.Tensor(self.y[:b].copy())
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


class CompiledGpuadRunner(GpuadRunner):
    """gpuad with the training step compiled (gpuad.compile): the first two calls of a round
    record it (empty optimizer state, then full), every later one replays the recorded array
    program (as CUDA graphs on cuda). Recording happens inside the timed run, as a user's first
    epoch pays it."""

    def reset(self):
        super().reset()
        self.compiled = gpuad.compile(super().step)

    def step(self, x, y):
        return self.compiled(x, y)


class CompiledModelGpuadRunner(GpuadRunner):
    """gpuad with the model compiled (gpuad.compile(model), torch.compile's commonest use): its
    forward replays and the logits carry the recorded backward; the loss, backward() and the
    optimizer step run eagerly. The first call of a round records."""

    def reset(self):
        super().reset()
        self.forward = gpuad.compile(self.model)


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
        elif name == "gpuad_compiled":
            runners[name] = CompiledGpuadRunner(spec, x, y, dev)
        elif name == "gpuad_model":
            runners[name] = CompiledModelGpuadRunner(spec, x, y, dev)
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

