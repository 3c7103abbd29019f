"""Train a small GPT (models.GPT) on the characters of a plain-text file, then sample from it.

    python scripts/train_charlm.py --text input.txt         # the default run: under 10 minutes
    GPUAD_DATA=/data python scripts/train_charlm.py  # $GPUAD_DATA/tinyshakespeare/input.txt
    python scripts/train_charlm.py --text input.txt --checkpoint runs/charlm.ckpt --resume
    python scripts/train_charlm.py --checkpoint runs/charlm.ckpt --sample 500 --prompt "ROMEO:"

The vocabulary is the text's distinct characters; the first 90% of the text trains, the last 10%
validates. Batches are random contiguous blocks drawn from gpuad's seeded generator. AdamW with
linear warm-up and cosine decay, gradient clipping at --grad-clip. Every --eval-every steps (and at
the end) the validation loss over --eval-batches fixed batches is printed as a JSON line, appended
to the metrics file (JSON lines: step, train_loss, val_loss, lr, elapsed) and, with --checkpoint,
saved atomically with everything --resume needs to continue exactly (model, optimizer, scheduler,
step, random state, vocabulary, configuration). --time-limit ends training cleanly, then
evaluates, checkpoints and prints a sample. SIGTERM, SIGINT (Ctrl-C) or SIGUSR1 stops training
after the current step: the checkpoint is written (with the running training loss, so a resumed
run logs what an uninterrupted one would), one line on stderr says where, and the process exits
with status 75 (EX_TEMPFAIL); --resume continues bit for bit. A second signal exits at once
(status 130), leaving the last complete checkpoint.

The default configuration (3 layers, 4 heads, 128 wide, 64-character context, 0.6M parameters;
2000 steps of 32 blocks) reached a validation loss of 1.63 nats per character on Tiny
Shakespeare in 6.3 minutes on a shared 2-core CPU. On a CPU shared with other busy processes,
--threads 1 can be several times faster than OpenBLAS's default of one thread per core.
"""
import argparse
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import sys
import time

_ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # this checkout's gpuad and models/ (installed: gpuad_models)
    sys.path.insert(0, _ROOT)

import numpy
from tqdm.auto import tqdm

import gpuad
import models
from gpuad import optim
from gpuad.nn.utils import clip_grad_norm_
from gpuad.preemption import StopOnSignal
from gpuad.serialization import remove_stale_temp_files
from gpuad.training import RunningMean, exit_interrupted, exit_preempted

SAMPLE_AFTER_TRAINING = 300  # characters printed at the end of a training run


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", help="a UTF-8 text file to train on (default: "
                                       "$GPUAD_DATA/tinyshakespeare/input.txt)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, "
                                                         "cuda:N")
    parser.add_argument("--threads", type=int,
                        help="BLAS threads on the CPU (default: the BLAS's own, usually one per "
                             "core); 1 is often faster when other processes share the cores. "
                             "Needs threadpoolctl")
    model = parser.add_argument_group("model (a resumed run keeps its checkpoint's)")
    model.add_argument("--n-layer", type=int, default=3)
    model.add_argument("--n-head", type=int, default=4)
    model.add_argument("--n-embd", type=int, default=128)
    model.add_argument("--block-size", type=int, default=64, help="context length in characters")
    model.add_argument("--dropout", type=float, default=0.0)
    train = parser.add_argument_group("training")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--max-steps", type=int, default=2000)
    train.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    train.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine "
                                                    "(default: lr / 10)")
    train.add_argument("--warmup-steps", type=int, default=100)
    train.add_argument("--weight-decay", type=float, default=0.1,
                       help="AdamW's, on weight matrices and embeddings only")
    train.add_argument("--beta2", type=float, default=0.99)
    train.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    train.add_argument("--time-limit", type=float, default=540.0,
                       help="seconds after which this run stops training, then evaluates, "
                            "checkpoints and samples (default 540: 9 minutes)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--compile", nargs="?", const="step", choices=("step", "model"),
                       help="record once and replay with gpuad.compile: the whole training step "
                            "(--compile, or --compile step), or the model's training forward "
                            "alone, its loss, backward, clipping and update eager (--compile "
                            "model); evaluation and sampling run the model eagerly")
    log = parser.add_argument_group("evaluation, checkpoints and logs")
    log.add_argument("--eval-every", type=int, default=250)
    log.add_argument("--eval-batches", type=int, default=20,
                     help="fixed validation batches per evaluation")
    log.add_argument("--log-every", type=int, default=25,
                     help="read the training loss (a device sync) every this many steps")
    log.add_argument("--checkpoint", help="save here at every evaluation and at the end")
    log.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    log.add_argument("--metrics", help="JSON-lines metrics file (default: next to --checkpoint, "
                                       "else runs/charlm-<date>-<time>.metrics.jsonl)")
    log.add_argument("--no-progress", action="store_true", help="no progress bar")
    sample = parser.add_argument_group("sampling")
    sample.add_argument("--sample", type=int, metavar="N",
                        help="only generate N characters from --checkpoint (no training)")
    sample.add_argument("--prompt", default="", help="text to continue (characters of the "
                                                     "vocabulary)")
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int, help="sample only among the k likeliest characters")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if gpuad.cuda.is_available() else "cpu"
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH")
    if args.sample is not None and not (args.checkpoint and os.path.exists(args.checkpoint)):
        parser.error("--sample N generates from a trained model: pass --checkpoint PATH of an "
                     "existing checkpoint written by this script")
    if args.sample is None and args.text is None:
        data = os.environ.get("GPUAD_DATA")
        args.text = os.path.join(data, "tinyshakespeare", "input.txt") if data else None
        if not (args.text and os.path.exists(args.text)):
            parser.error("no text to train on: pass --text PATH (a UTF-8 file, e.g. Tiny "
                         "Shakespeare's input.txt), or set GPUAD_DATA to a folder holding "
                         "tinyshakespeare/input.txt"
                         + (f" ({args.text} does not exist)" if args.text else ""))
    if args.min_lr is None:
        args.min_lr = args.lr / 10
    if args.metrics is None and args.sample is None:
        args.metrics = (os.path.splitext(args.checkpoint)[0] + ".metrics.jsonl" if args.checkpoint
                        else os.path.join("runs", time.strftime("charlm-%Y%m%d-%H%M%S") +
                                          ".metrics.jsonl"))
    return args


# ---- data ----------------------------------------------------------------------------------------
def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise SystemExit(f"train_charlm: --text {path} does not exist; pass --text PATH of a UTF-8 "
                         f"text file") from None


def encode(text, vocab, what):
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise SystemExit(f"train_charlm: {what} has characters outside the model's vocabulary: "
                         f"{''.join(unknown)[:40]!r}")
    return numpy.array([index[c] for c in text], dtype=numpy.int64)


def split(tokens, block_size):
    """The first 90% trains, the last 10% validates; each must hold a block and its targets."""
    n = int(0.9 * len(tokens))
    train, val = tokens[:n], tokens[n:]
    if len(val) <= block_size + 1:
        raise SystemExit(f"train_charlm: the text has {len(tokens)} characters, too few for "
                         f"block_size {block_size}: its last 10% (validation) must be longer than "
                         f"{block_size + 1}; use a longer text or a smaller --block-size")
    return train, val


def blocks(data, starts, block_size):
    """Inputs data[s:s+T] and targets data[s+1:s+T+1] for each start s, gathered on the device."""
    chunk = data[starts.unsqueeze(1) + gpuad.arange(block_size + 1, device=data.device)]
    return chunk[:, :-1], chunk[:, 1:]


def random_batch(data, batch_size, block_size):
    starts = gpuad.randint(0, len(data) - block_size, (batch_size,), device=data.device)
    return blocks(data, starts, block_size)


def fixed_batches(data, count, batch_size, block_size, seed):
    """The same `count` validation batches at every evaluation, drawn without touching gpuad's
    generator (so evaluating more or less often does not change training)."""
    starts = numpy.random.default_rng(seed).integers(0, len(data) - block_size,
                                                     (count, batch_size))
    return [blocks(data, gpuad.tensor(s, device=data.device), block_size) for s in starts]


# ---- training ------------------------------------------------------------------------------------
def warmup_cosine(warmup_steps, max_steps, min_ratio):
    """The factor on the peak learning rate at each step: linear warm-up to 1 over warmup_steps,
    cosine decay to min_ratio at max_steps, then constant. Built from the current arguments on
    every run, so a resumed run with a larger --max-steps stretches the decay."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if step >= max_steps:
            return min_ratio
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def make_optimizer(model, args):
    """AdamW; weight decay only on matrices and embeddings (dim >= 2), not biases or norms."""
    params = list(model.parameters())  # the tied head is the token embedding: listed once
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": args.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2))
    scheduler = optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(args.warmup_steps, args.max_steps, args.min_lr / args.lr))
    return optimizer, scheduler


def evaluate(model, batches):
    """Mean loss over the fixed batches in eval mode without a graph; one host read."""
    model.eval()
    meter = RunningMean()
    with gpuad.no_grad():
        for x, y in batches:
            meter.add(model.loss(x, y))
    model.train()
    return meter.value


def sample(model, vocab, prompt, length, temperature, top_k, device):
    """`length` characters continuing `prompt` (the text before it: a newline when empty)."""
    start = prompt or ("\n" if "\n" in vocab else vocab[0])
    idx = gpuad.tensor(encode(start, vocab, "--prompt")[None], device=device)
    model.eval()
    out = model.generate(idx, length, temperature=temperature, top_k=top_k)
    return "".join(vocab[i] for i in out[0, idx.shape[1]:].tolist())


def _metrics_file(path, keep_through_step):
    """Open the metrics file for writing; a fresh run (None) empties it, a resumed one keeps the
    lines up to its checkpoint's step (an interrupted run may have logged past it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    kept = []
    if keep_through_step is not None and os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    if json.loads(line)["step"] <= keep_through_step:
                        kept.append(line if line.endswith("\n") else line + "\n")
                except (ValueError, KeyError, TypeError):
                    pass  # a line torn by a kill, or not ours
    f = open(path, "w")  # noqa: SIM115 -- closed by train()'s finally
    f.writelines(kept)
    f.flush()
    return f


def run_sampling(args):
    state = gpuad.load(args.checkpoint, device=args.device)
    model = models.GPT(models.GPTConfig(**state["config"])).to(args.device)
    model.load_state_dict(state["model"])
    gpuad.manual_seed(args.seed)
    text = sample(model, state["vocab"], args.prompt, args.sample, args.temperature, args.top_k,
                  args.device)
    print(args.prompt + text, flush=True)
    return {"sample": text, "model": model}


def blas_threads(threads):
    """A context that limits the BLAS's threads (nothing when threads is None)."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("train_charlm: --threads needs threadpoolctl (pip install threadpoolctl); "
                         "or set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting "
                         "Python") from None
    return threadpool_limits(limits=threads, user_api="blas")


def main(argv=None):
    started = time.perf_counter()
    args = parse_args(argv)
    with blas_threads(args.threads):
        if args.sample is not None:
            return run_sampling(args)
        return train(args, started)


def train(args, started):
    gpuad.manual_seed(args.seed)
    text = read_text(args.text)
    vocab = "".join(sorted(set(text)))
    config = models.GPTConfig(vocab_size=len(vocab), block_size=args.block_size,
                              n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                              dropout=args.dropout)
    if args.checkpoint and (stale := remove_stale_temp_files(args.checkpoint)):
        print(f"removed {len(stale)} temp file(s) left by a save that was killed midway",
              file=sys.stderr)
    state = None
    if args.resume and os.path.exists(args.checkpoint):
        state = gpuad.load(args.checkpoint, device=args.device)
        vocab, config = state["vocab"], models.GPTConfig(**state["config"])
    train_tokens, val_tokens = split(encode(text, vocab, f"--text {args.text}"), config.block_size)
    train_data = gpuad.tensor(train_tokens, device=args.device)
    val_data = gpuad.tensor(val_tokens, device=args.device)
    val_batches = fixed_batches(val_data, args.eval_batches, args.batch_size, config.block_size,
                                seed=args.seed + 1)

    model = models.GPT(config).to(args.device)
    optimizer, scheduler = make_optimizer(model, args)
    step, elapsed_before = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for group, lr in zip(optimizer.param_groups, scheduler.get_lr()):
            group["lr"] = lr  # this run's schedule (a new --max-steps) from the next step on
        gpuad.set_rng_state(state["rng"])
        step, elapsed_before = state["step"], state["elapsed"]
        print(json.dumps({"resumed_from": args.checkpoint, "step": step}), flush=True)
    # the step the checkpoint holds survives in the metrics file; a fresh run starts it anew
    metrics = _metrics_file(args.metrics, step if state is not None else None)

    def save(**extra):
        if args.checkpoint:
            gpuad.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step, "elapsed": elapsed(),
                        "rng": gpuad.get_rng_state(), "vocab": vocab,
                        "config": dataclasses.asdict(config), "args": vars(args), **extra},
                       args.checkpoint)

    def elapsed():  # training seconds over all runs of this checkpoint
        return round(elapsed_before + time.perf_counter() - started, 2)

    def report(train_loss, lr):
        record = {"step": step, "train_loss": round(train_loss, 5),
                  "val_loss": round(evaluate(model, val_batches), 5), "lr": lr,
                  "elapsed": elapsed()}
        save()
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        tqdm.write(json.dumps(record), file=sys.stdout)
        return record

    # --compile model: the training forward only; sampling's growing sequences would re-trace
    # at every length, and evaluation is a few no-grad calls, so both stay eager
    forward = gpuad.compile(model) if args.compile == "model" else model

    def train_step(x, y):
        loss = models.next_token_loss(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        return loss
    if args.compile == "step":  # recorded once, replayed after; the scheduler steps outside it
        train_step = gpuad.compile(train_step)

    model.train()
    meter, record, stopped, lr = RunningMean(), None, "max_steps", scheduler.get_last_lr()[0]
    if state is not None and "meter" in state:  # stopped by a signal between evaluations
        meter.load_state_dict(state["meter"])
    first_step = step
    bar = tqdm(total=args.max_steps, initial=step, desc="train", unit="step", leave=False,
               disable=args.no_progress, dynamic_ncols=True)
    try:
        with StopOnSignal() as stop:
            while step < args.max_steps:
                if stop.should_stop():
                    save(meter=meter.state_dict())
                    bar.close()
                    exit_preempted(stop.signal, f"step {step}", args.checkpoint)
                if time.perf_counter() - started >= args.time_limit:
                    stopped = "time_limit"
                    break
                x, y = random_batch(train_data, args.batch_size, config.block_size)
                lr = optimizer.param_groups[0]["lr"]
                loss = train_step(x, y)
                scheduler.step()
                meter.add(loss)
                step += 1
                bar.update(1)
                if step % args.log_every == 0 and not args.no_progress:  # the only host reads
                    bar.set_postfix(loss=f"{meter.value:.4f}", lr=f"{lr:.2e}")
                if step % args.eval_every == 0 or step == args.max_steps:
                    record, meter = report(meter.value, lr), RunningMean()
            if step > first_step and (record is None or record["step"] != step):
                record = report(meter.value, lr)  # stopped between evaluations
    except KeyboardInterrupt:
        exit_interrupted(args.checkpoint)
    finally:
        bar.close()
        metrics.close()
    if record is None:  # nothing left to train: report the checkpoint's model as it is
        record = {"step": step, "val_loss": round(evaluate(model, val_batches), 5)}
    final = {"final": True, "step": step, "val_loss": record["val_loss"], "stopped": stopped,
             "elapsed": elapsed(), "device": str(args.device), "metrics": args.metrics}
    print(json.dumps(final), flush=True)
    text_out = sample(model, vocab, args.prompt, SAMPLE_AFTER_TRAINING, args.temperature,
                      args.top_k, args.device)
    print("---- sample ----\n" + args.prompt + text_out, flush=True)
    return {"final": final, "model": model, "sample": text_out}


if __name__ == "__main__":
    main()
