"""Train a reference model on MNIST, on the GPU when there is one and on the CPU otherwise.

    python scripts/train_mnist.py                          # MLP, 5 epochs: about 98% test accuracy
    python scripts/train_mnist.py --model cnn --epochs 2   # LeNet-5-style CNN: about 98.8%
    python scripts/train_mnist.py --checkpoint run.ckpt --resume
    mpiexec -n 2 python scripts/train_mnist.py --distributed --batch-size 64   # 2 CPU processes
    mpiexec -n 4 python scripts/train_mnist.py --distributed --device cuda     # NCCL, 1 GPU each

Prints one JSON line per epoch (train loss, test loss, test accuracy, samples/s, device), shows tqdm
progress bars, writes a checkpoint after every epoch (atomically, so a crash or kill -9 leaves the
last complete one intact) and with --resume continues from it exactly as an uninterrupted run.
SIGTERM, SIGINT (Ctrl-C) or SIGUSR1 stops training after the current step: the checkpoint, which
then holds the position inside the epoch, is written, one line on stderr says where, and the
process exits with status 75 (EX_TEMPFAIL; --resume continues bit for bit). A second signal exits
at once with status 130, leaving the last complete checkpoint. --metrics PATH also writes each
epoch's summary to a JSON-lines file (scripts/plot_run.py draws it).

--distributed trains data-parallel (gpuad.nn.parallel.DistributedDataParallel) over the ranks of
its launcher: MPI for CPU processes, NCCL for one GPU per process. --batch-size is per rank, so N
ranks with batch B train like one process with batch N*B; rank 0 alone prints, logs and writes
checkpoints.
"""
import argparse
import json
import os
import pathlib
import sys

_ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # this checkout's gpuad and models/ (installed: gpuad_models)
    sys.path.insert(0, _ROOT)

import numpy

import gpuad
import gpuad.nn.functional as F
import models
from gpuad import distributed as dist
from gpuad import optim
from gpuad.data import DataLoader, DistributedSampler
from gpuad.data.datasets import MNIST
from gpuad.nn.parallel import DistributedDataParallel
from gpuad.preemption import EXIT_PREEMPTED, StopOnSignal
from gpuad.serialization import remove_stale_temp_files
from gpuad.training import (
    RunningMean,
    evaluate,
    exit_interrupted,
    exit_preempted,
    train_epoch,
    training_step,
)

MODELS = {"mlp": models.MLP, "cnn": models.LeNet5, "resnet": models.ResNet}
# per model: optimizer, learning rate, batch size that train well in the default epochs
DEFAULTS = {"mlp": ("sgd", 0.02, 128), "cnn": ("adam", 1e-3, 64), "resnet": ("adam", 1e-3, 64)}
OPTIMIZERS = {"sgd": lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9),
              "adam": lambda p, lr: optim.Adam(p, lr=lr),
              "adamw": lambda p, lr: optim.AdamW(p, lr=lr),
              "rmsprop": lambda p, lr: optim.RMSprop(p, lr=lr),
              "adagrad": lambda p, lr: optim.Adagrad(p, lr=lr)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when available), cpu, cuda, cuda:N")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, help="default: 128 for mlp, 64 otherwise")
    parser.add_argument("--lr", type=float, help="default: 0.02 for sgd (mlp), 1e-3 for adam")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                        help="default: sgd with momentum 0.9 for mlp, adam otherwise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="folder with the MNIST files (default: $GPUAD_DATA, then "
                                       "~/.cache/gpuad)")
    parser.add_argument("--download", action="store_true", help="fetch MNIST if it is missing")
    parser.add_argument("--checkpoint", help="write a checkpoint here after every epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--max-steps", type=int,
                        help="at most this many training (and test) batches per epoch: smoke tests")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--metrics", help="append each epoch's summary (plus its training seconds) "
                                          "to this JSON-lines file; a run without --resume "
                                          "starts it afresh")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the launcher's ranks (mpiexec -n N; or RANK, "
                             "WORLD_SIZE, MASTER_ADDR, MASTER_PORT for NCCL); batch size per rank")
    parser.add_argument("--backend", choices=("auto", "mpi", "nccl"), default="auto",
                        help="with --distributed: auto is NCCL on cuda, MPI on the CPU")
    parser.add_argument("--compile", nargs="?", const="step", choices=("step", "model"),
                        help="record once and replay with gpuad.compile: the whole training step "
                             "(--compile, or --compile step), or the model alone, its loss, "
                             "backward and update eager (--compile model; also with "
                             "--distributed)")
    args = parser.parse_args(argv)
    optimizer, lr, batch_size = DEFAULTS[args.model]
    args.optimizer = args.optimizer or optimizer
    args.lr = args.lr if args.lr is not None else (lr if args.optimizer == optimizer else 1e-3)
    args.batch_size = args.batch_size or batch_size
    if args.device == "auto":
        args.device = "cuda" if gpuad.cuda.is_available() else "cpu"
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH")
    if args.compile == "step" and args.distributed:
        parser.error("--compile step records a single process's step, and a data-parallel "
                     "backward reduces gradients between processes: use --compile model with "
                     "--distributed")
    return args


def main(argv=None):
    args = parse_args(argv)
    if not args.distributed:
        return train(args)
    dist.init_process_group(args.backend, device=args.device)
    try:
        if args.device == "cuda":  # one GPU per process
            args.device = f"cuda:{dist.get_node_local_rank() % gpuad.cuda.device_count()}"
        return train(args)
    finally:
        dist.destroy_process_group()


def train(args):
    gpuad.manual_seed(args.seed)
    rank, world = (dist.get_rank(), dist.get_world_size()) if args.distributed else (0, 1)
    lead = rank == 0  # the rank that prints, logs and writes files
    wait_for_download = args.distributed and args.download  # rank 0 fetches; the rest then read
    if wait_for_download and not lead:
        dist.barrier()
    train_set = MNIST(args.data, train=True, download=args.download and lead)
    test_set = MNIST(args.data, train=False, download=args.download and lead)
    if wait_for_download and lead:
        dist.barrier()
    if args.distributed:  # each rank its shard; the same order one process with batch N*B sees
        train_loader = DataLoader(train_set, batch_size=args.batch_size, device=args.device,
                                  sampler=DistributedSampler(train_set, seed=args.seed))
        test_loader = DataLoader(test_set, batch_size=1000, device=args.device,
                                 sampler=range(rank, len(test_set), world))
    else:
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed, device=args.device)
        test_loader = DataLoader(test_set, batch_size=1000, device=args.device)
    net = MODELS[args.model]().to(args.device)
    model = gpuad.compile(net) if args.compile == "model" else net  # (its state_dict is net's)
    model = DistributedDataParallel(model) if args.distributed else model
    optimizer = OPTIMIZERS[args.optimizer](model.parameters(), args.lr)
    step = training_step(model, optimizer, F.cross_entropy)
    step = gpuad.compile(step) if args.compile == "step" else step

    first_epoch, skip, meter = 0, 0, RunningMean()
    if lead and args.checkpoint and (stale := remove_stale_temp_files(args.checkpoint)):
        print(f"removed {len(stale)} temp file(s) left by a save that was killed midway",
              file=sys.stderr)
    if args.resume and os.path.exists(args.checkpoint):
        state = gpuad.load(args.checkpoint, device=args.device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        gpuad.set_rng_state(state["rng"])
        first_epoch = state["epoch"] + 1
        resumed = {"resumed_from": args.checkpoint, "epoch": first_epoch}
        if "partial_epoch" in state:  # stopped by a signal after this many steps of the next
            skip = resumed["step"] = state["partial_epoch"]["steps"]
            losses = state["partial_epoch"]["loss"]  # each rank's running sum of the epoch
            if len(losses) == world and losses[rank]["total"] is not None:
                meter.load_state_dict({"total": gpuad.tensor(losses[rank]["total"],
                                                             device=args.device),
                                       "count": losses[rank]["count"]})
        if lead:  # the last completed epoch, numbered from 1 like the summary lines
            print(json.dumps(resumed), flush=True)

    progress = not args.no_progress and lead
    history = []
    metrics = None
    if args.metrics and lead:
        os.makedirs(os.path.dirname(os.path.abspath(args.metrics)), exist_ok=True)
        metrics = open(args.metrics, "a" if args.resume else "w")
    save = dist.save if args.distributed else gpuad.save

    def running_losses():  # every rank's running loss of this epoch, for the one checkpoint
        mine = meter.state_dict()
        mine = {**mine, "total": None if mine["total"] is None else mine["total"].cpu().numpy()}
        if not args.distributed:
            return [mine]
        every = [None] * world
        dist.all_gather_object(every, mine)
        return every

    def checkpoint(epoch, **extra):  # `epoch`: the last one completed
        if args.checkpoint:
            save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                  "epoch": epoch, "rng": gpuad.get_rng_state(), "args": vars(args), **extra},
                 args.checkpoint)

    try:
        with StopOnSignal() as stop:  # every rank checks before each step, all stop together
            for epoch in range(first_epoch, args.epochs):
                train_loader.set_epoch(epoch)
                train = train_epoch(model, train_loader, optimizer, F.cross_entropy,
                                    max_steps=args.max_steps, progress=progress,
                                    desc=f"epoch {epoch + 1}/{args.epochs}",
                                    should_stop=stop.should_stop, start_step=skip, meter=meter,
                                    step=step)
                if train["stopped"]:
                    steps = skip + train["steps"]
                    checkpoint(epoch - 1, partial_epoch={"steps": steps,
                                                         "loss": running_losses()})
                    if lead:
                        exit_preempted(stop.signal, f"epoch {epoch + 1} step {steps}",
                                       args.checkpoint)
                    raise SystemExit(EXIT_PREEMPTED)
                skip, meter = 0, RunningMean()
                test = evaluate(model, test_loader, F.cross_entropy, max_steps=args.max_steps,
                                progress=progress, desc="test")
                if args.distributed:
                    train, test = _over_all_ranks(train, test)
                summary = {"epoch": epoch + 1, "train_loss": round(train["loss"], 5),
                           "test_loss": round(test["loss"], 5),
                           "test_accuracy": round(test["accuracy"], 5),
                           "samples_per_s": round(train["samples_per_s"], 1),
                           "device": str(args.device), "model": args.model}
                if args.distributed:
                    summary["ranks"] = world
                history.append(summary)
                if lead:
                    print(json.dumps(summary), flush=True)
                checkpoint(epoch)
                if metrics is not None:  # after the checkpoint: a resumed run never logs twice
                    metrics.write(json.dumps({**summary, "seconds": round(train["seconds"], 3)})
                                  + "\n")
                    metrics.flush()
    except KeyboardInterrupt:  # a second signal: stop at once
        exit_interrupted(args.checkpoint)
    finally:
        if metrics is not None:
            metrics.close()
    return {"history": history, "model": net}


def _over_all_ranks(train, test):
    """The epoch's summaries over every rank's samples (each rank measured only its own)."""
    sums = numpy.array([train["loss"] * train["samples"], train["samples"],
                        test["loss"] * test["samples"], test["accuracy"] * test["samples"],
                        test["samples"]])
    dist.all_reduce(sums)
    seconds = numpy.array([train["seconds"]])
    dist.all_reduce(seconds, op="max")  # the step is as slow as the slowest rank
    train = {**train, "loss": sums[0] / sums[1], "samples": int(sums[1]),
             "seconds": float(seconds[0]), "samples_per_s": sums[1] / seconds[0]}
    test = {**test, "loss": sums[2] / sums[4], "accuracy": sums[3] / sums[4]}
    return train, test


if __name__ == "__main__":
    main()
