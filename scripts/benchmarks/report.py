"""What the benchmarks ran on (CPU, BLAS, GPU, library versions) and the table of results."""
import os
import platform

import numpy

import gpuad


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


def environment(args, torch, blas_env_unset=None):
    """The run's environment row: machine, versions, threads, data, and the OpenBLAS overrides
    bench.py dropped (`blas_env_unset`)."""
    dev = gpuad.device(args.device)
    env = {"bench": "environment", "device": args.device, "cpu": _cpu_model(),
           "cpus": os.cpu_count(), "python": platform.python_version(),
           "numpy": numpy.__version__, "blas": blas_info(),
           "blas_env_unset": blas_env_unset or None,
           "torch": torch.__version__ if torch is not None else None,
           "torch_threads": torch.get_num_threads() if torch is not None else None,
           "data": "synthetic" if args.synthetic else "mnist"}
    env["machine"] = env["cpu"]
    if dev.type == "cuda":
        cupy = dev.xp  # the cuda device's array module: versions only, memory is gpuad.cuda's
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


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _kind(r):
    return r["bench"].removesuffix("_compiled")  # mlp_compiled reads like mlp


def _case(r):
    if r["bench"] == "activations":
        return r["op"]
    if _kind(r) == "overhead":
        return "x".join(map(str, r["shape"]))
    if r["bench"] in ("matmul_rate", "amp"):
        return f"b{r['batch']} w{r['widths'][0]}"
    return f"b{r['batch']}x{r['steps']}"


def _extras(r):
    """(throughput, result, memory) columns of a row."""
    if _kind(r) == "mlp":
        out = (f"{r['samples_per_s']:,.0f} samples/s", f"acc {r['test_accuracy']:.4f}")
    elif _kind(r) == "cnn":
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
    """The environment in two lines, then one line per row: medians, ratios, throughput."""
    torch = f"torch {env['torch']} ({env['torch_threads']} threads)" if env["torch"] else "no torch"
    unset = env["blas_env_unset"]
    print(f"\ndevice {env['device']} | {env['machine']} ({env['cpus']} cpus) | numpy "
          f"{env['numpy']}, BLAS {env['blas']} | {torch} | data {env['data']}"
          + (f" | unset for this run: {' '.join(unset)}" if unset else ""))
    if "gpu" in env:
        print(f"cupy {env['cupy']}, CUDA runtime {env['cuda_runtime']}, cuBLAS {env['cublas']}, "
              f"TF32 {env['tf32']}")
    print(f"{'bench':<18}{'case':<14}{'framework':<11}{'median':>10}{'min-max':>19} "
          f"{'unit':<16}{'/floor':>7}{'/torch':>7}  {'throughput':<20}{'result':<17}"
          f"{'peak mem (growth)':<18}")
    for r in rows:
        throughput, result, mem = _extras(r)
        print(f"{r['bench']:<18}{_case(r):<14}{r['framework']:<11}{r['median']:>10.4g}"
              f"{r['min']:>9.4g}-{r['max']:<9.4g} {r['unit']:<16}{_fmt(r['vs_floor'], '.2f'):>7}"
              f"{_fmt(r['vs_torch'], '.2f'):>7}  {throughput:<20}{result:<17}{mem:<18}")
