"""Peak memory of one framework's run: on the CPU the peak RSS of a fresh process per framework
(`bench.py --memory-probe BENCH FRAMEWORK`), on CUDA the growth of gpuad's (CuPy's) memory pool
against that of torch's allocator, in process. GPU memory is read through gpuad.cuda."""
import json
import pathlib
import resource
import subprocess
import sys

import gpuad
from gpuad import backend

from .timing import one_round

BENCH_SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "bench.py"


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


def memory_probe(args, setup, torch):
    """In a fresh process: set up one framework's benchmark with `setup` (imports + data), then
    run it once (one round, plus test accuracy for mlp) and report its peak RSS and the growth
    over the RSS right after the setup, as one JSON line."""
    bench, name = args.memory_probe
    runners, spec, test = setup(args, torch, names=[name])
    runner = runners[name]
    setup_peak, after_setup = _peak_rss_mb(), (_status_kb("VmRSS") or 0) / 1024
    reset = _reset_peak_rss()
    prepare, timed = one_round(runner, spec)
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


def probe_in_subprocess(bench, name, args):
    """memory_probe's result for one framework, run as `bench.py --memory-probe` in a fresh
    process; {"memory_error": ...} when that fails."""
    cmd = [sys.executable, str(BENCH_SCRIPT), "--memory-probe", bench, name,
           "--device", args.device, "--seed", str(args.seed)]
    cmd += ["--synthetic"] if args.synthetic else []
    cmd += ["--data", args.data] if args.data else []
    cmd += ["--steps", str(args.steps)] if args.steps is not None else []
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"memory_probe"')]
    if done.returncode or not lines:
        return {"memory_error": f"probe exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _cuda_memory(runner, name, spec, device, torch):
    """Device memory one run needs beyond what is already resident (weights, optimizer state and
    the shared data, which CuPy holds for every framework), in MB: the pool's reserved bytes
    after the run over its allocated bytes before (gpuad, floor; cached blocks are freed first, so
    the pool's growth is the run's high-water), or torch's max_memory_allocated over
    memory_allocated."""
    prepare, timed = one_round(runner, spec)
    if name == "torch":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    else:
        backend.cuda.synchronize(device)
        gpuad.cuda.empty_cache()
        start = gpuad.cuda.memory_allocated(device)
    prepare()
    timed()
    if name == "torch":
        torch.cuda.synchronize()
        return {"gpu_mem_mb": (torch.cuda.max_memory_allocated() - start) / 2 ** 20,
                "gpu_mem_kind": "torch max_memory_allocated growth",
                "torch_max_allocated_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
                "torch_max_reserved_mb": torch.cuda.max_memory_reserved() / 2 ** 20}
    backend.cuda.synchronize(device)
    reserved = gpuad.cuda.memory_reserved(device)
    return {"gpu_mem_mb": (reserved - start) / 2 ** 20,
            "gpu_mem_kind": "CuPy pool total_bytes growth",
            "gpu_pool_total_mb": reserved / 2 ** 20}


def with_memory(rows, bench, runners, spec, args, torch):
    """Add each framework's peak memory to its row (after the timing rounds, so they are not
    disturbed), and the gpuad/torch memory ratios."""
    if args.no_memory:
        return rows
    device = gpuad.device(args.device)
    cuda = device.type == "cuda"
    for row in rows:
        name = row["framework"]
        row.update(_cuda_memory(runners[name], name, spec, device, torch) if cuda else
                   probe_in_subprocess(bench, name, args))
    by_name = {r["framework"]: r for r in rows}
    ours = "gpuad_compiled" if "gpuad_compiled" in by_name else "gpuad"
    for key in ("gpu_mem_mb",) if cuda else ("peak_rss_mb", "rss_growth_mb"):
        mine, theirs = (by_name.get(n, {}).get(key) for n in (ours, "torch"))
        if mine is not None and theirs:
            by_name[ours][key.replace("_mb", "_vs_torch")] = mine / theirs
    return rows
