"""Every CUDA source gpuad ships (gpuad.kernels.cuda_sources()) compiles with NVRTC for a current
GPU architecture, wrapped exactly as CuPy wraps it, so a broken kernel fails here, on a machine
without a GPU, instead of on the first run on one. NVRTC is the nvidia-cuda-nvrtc wheel of the dev
extra (Linux x86-64), which CuPy finds through cuda-pathfinder; without it these tests skip, except
in CI on Linux x86-64, where the dev extra installs it and not finding it is an error."""
import os
import platform
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_fused import CASES, _make

import gpuad
from gpuad.backend import kernels


def _load_nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()  # loads libnvrtc: site-packages, then conda, system, CUDA_PATH
    except (ImportError, RuntimeError, OSError) as error:
        if os.environ.get("CI") and sys.platform == "linux" and platform.machine() == "x86_64":
            raise
        pytest.skip(f"NVRTC cannot be loaded ({error}); `pip install -e .[dev]` installs it on "
                    f"Linux x86-64", allow_module_level=True)
    return nvrtc


nvrtc = _load_nvrtc()
import cupy  # noqa: E402  (after the skip: NVRTC loaded, so CuPy imports)
from cupy._core import _carray, _kernel, _scalar, core  # noqa: E402

ARCH = "90"  # sm_90 (H100/H200); CuPy compiles to the device's cubin, ptxas included, as here
_CTYPE = {"float32": "float", "float64": "double"}
_NDARRAY, _INDEXER, _SCALAR = 1, 2, 3  # CuPy's _ArgKind (cupy/_core/_kernel.pxd)
SOURCES = kernels.cuda_sources()


def _options(entry):
    """CuPy's options for an entry: compile_with_cache assembles them (C++ standard, include
    paths), then adds flush-to-zero, the architecture and the default execution space."""
    return core.assemble_cupy_compiler_options(tuple(entry["options"])) + (
        "-ftz=true", f"-arch=sm_{ARCH}", "--device-as-default-execution-space")


def _elementwise_code(entry, dtype):
    """The source cupy.ElementwiseKernel compiles for `entry` called on C-contiguous `dtype` arrays
    and the entry's host scalars: CuPy's own generator on the argument kinds its __call__ builds,
    behind the headers compile_with_cache prepends."""
    kernel = cupy.ElementwiseKernel(entry["in_params"], entry["out_params"], entry["operation"],
                                    entry["name"], options=tuple(entry["options"]))
    scalars = set(entry["scalars"])
    assert scalars <= {p.name for p in kernel.in_params}, f"{entry['name']}: unknown scalars"
    bound = [np.dtype(dtype) if p.dtype is None else p.dtype for p in kernel.params[:-1]]
    in_dtypes = tuple(None if p.name in scalars else t for p, t in zip(kernel.in_params, bound))
    out_dtypes = tuple(bound[len(in_dtypes):])
    in_types, out_types, type_map = kernel._decide_params_type(in_dtypes, out_dtypes)
    infos = [_kernel._ArgInfo(_SCALAR, _scalar.CScalar, t, 0, True, True) if d is None
             else _kernel._ArgInfo(_NDARRAY, cupy.ndarray, t, 1, True, True)
             for d, t in zip(in_dtypes, in_types)]
    infos += [_kernel._ArgInfo(_NDARRAY, cupy.ndarray, t, 1, True, True) for t in out_types]
    infos.append(_kernel._ArgInfo(_INDEXER, _carray.Indexer, None, 1, True, True))
    code = _kernel._get_elementwise_kernel_code(
        tuple(infos), type_map, kernel.params, kernel.operation, kernel.name, kernel.preamble,
        **kernel.kwargs)
    # a changed _ArgKind numbering would generate nonsense that might still compile
    assert code.count("CArray<") == len(in_dtypes) + len(out_dtypes) - len(scalars)
    assert "CIndexer<1" in code
    return "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code


def _compile(label, source, options, functions):
    """Compile `source` with NVRTC as program `label`.cu and check that it defines `functions`
    (templated ones as name expressions, like RawModule's). On an error, or a warning about the
    source itself (CuPy would run it, but warnings here are bugs), fail naming `label`, each line
    NVRTC complains about, and its log."""
    program = nvrtc.createProgram(source, label + ".cu", [], [])
    try:
        templates = [f for f in functions if "<" in f]
        for name in templates:
            nvrtc.addNameExpression(program, name)
        try:
            nvrtc.compileProgram(program, options)
            failed = False
        except nvrtc.NVRTCError:
            failed = True
        log = nvrtc.getProgramLog(program)
        at = dict.fromkeys(int(n) for n in re.findall(rf"{re.escape(label)}\.cu\((\d+)\)", log))
        if failed or at:
            lines = source.splitlines()
            quoted = "".join(f"\n  line {n}: {lines[n - 1].strip()}" for n in at if n <= len(lines))
            raise AssertionError(f"CUDA source {label} does not compile cleanly:{quoted}\n{log}")
        cubin = nvrtc.getCUBIN(program)
        for name in functions:
            symbol = nvrtc.getLoweredName(program, name) if name in templates else name
            assert symbol.encode() in cubin, f"{label}: no kernel {name!r} in the compiled module"
        return cubin
    finally:
        nvrtc.destroyProgram(program)


def _compile_entry(entry, dtype):
    label = f"{entry['name']}_{dtype}"
    if entry["kind"] == "elementwise":
        return _compile(label, _elementwise_code(entry, dtype), _options(entry), [entry["name"]])
    assert entry["kind"] == "raw", f"{entry['name']}: teach this test to compile {entry['kind']!r}"
    ctype = _CTYPE[dtype]  # raw sources: CTYPE is the dtype's C type (no CuPy headers prepended)
    return _compile(label, entry["code"].replace("CTYPE", ctype), _options(entry),
                    [f.replace("CTYPE", ctype) for f in entry["functions"]])


@pytest.mark.parametrize("entry,dtype", [(e, d) for e in SOURCES for d in e["dtypes"]],
                         ids=[f"{e['name']}-{d}" for e in SOURCES for d in e["dtypes"]])
def test_every_cuda_source_compiles(entry, dtype):
    assert _compile_entry(entry, dtype)


def _broken(name, old, new):
    entry = next(dict(e) for e in SOURCES if e["name"] == name)
    key = "operation" if entry["kind"] == "elementwise" else "code"
    assert old in entry[key]
    entry[key] = entry[key].replace(old, new, 1)
    return entry


def test_a_broken_elementwise_body_fails_naming_the_kernel_and_the_line():
    entry = _broken("gpuad_sigmoid", "y = s;", "y = s +;")
    with pytest.raises(AssertionError, match=r"gpuad_sigmoid_float32 does not compile cleanly:\n"
                                             r"  line \d+: .* y = s \+;;\n"):
        _compile_entry(entry, "float32")


def test_a_broken_raw_kernel_fails_naming_the_kernel_and_the_line():
    entry = _broken("gpuad_rows", "row_stats(row, c, buf, &m, &s);",
                    "row_statz(row, c, buf, &m, &s);")
    line = entry["code"].splitlines().index("    row_statz(row, c, buf, &m, &s);") + 1
    with pytest.raises(AssertionError, match=rf"gpuad_rows_float64 does not compile cleanly:\n"
                                             rf"  line {line}: row_statz\(row.*\n(.|\n)*"
                                             rf'identifier "row_statz" is undefined'):
        _compile_entry(entry, "float64")


def test_a_warning_about_the_source_fails_too():
    entry = _broken("gpuad_sigmoid", "y = s;", "int unused = 0; y = s;")
    with pytest.raises(AssertionError, match=r"gpuad_sigmoid_float64 does not compile cleanly:"
                                             r"\n  line \d+: .*int unused(.|\n)*"
                                             r'warning #177-D: variable "unused"'):
        _compile_entry(entry, "float64")


def test_a_misnamed_raw_kernel_fails():
    entry = next(dict(e) for e in SOURCES if e["name"] == "gpuad_rows")
    entry["functions"] = ("gpuad_softmax_nll", "gpuad_softmax_nl_grad")
    with pytest.raises(AssertionError, match="no kernel 'gpuad_softmax_nl_grad'"):
        _compile_entry(entry, "float32")


# ---- the list is complete: the kernels gpuad builds are the listed ones, used as listed ---------
class _KernelRecorder:
    """Stands in for cupy while the fused kernels run on numpy arrays: array functions are numpy's,
    and the kernel constructors record what they get and how the kernels are called."""
    ndarray = np.ndarray

    def __init__(self):
        self.built = []  # (kind, what the constructor got, calls)

    def __getattr__(self, name):
        return getattr(np, name)

    def ElementwiseKernel(self, in_params, out_params, operation, name, **kwargs):
        calls = []
        self.built.append(("elementwise", {"name": name, "in_params": in_params,
                                           "out_params": out_params, "operation": operation,
                                           "options": kwargs.get("options", ())}, calls))
        return lambda *args, **kwargs: calls.append(args)

    def RawModule(self, *, code, options=(), name_expressions=None):
        calls = []
        self.built.append(("raw", {"code": code, "options": options,
                                   "name_expressions": tuple(name_expressions or ())}, calls))
        return SimpleNamespace(get_function=lambda name: calls.append(name) or (lambda *a: None))


def _run_every_kernel(monkeypatch):
    """Build and call every kernel fused has, on every case of tests/test_fused.py and both dtypes,
    with the recorder for cupy; return the recorder."""
    recorder = _KernelRecorder()
    monkeypatch.setattr(kernels, "cupy", recorder)
    monkeypatch.setattr(kernels, "_COMPILED", {})
    for dtype in _CTYPE:
        for name, (_, variants, _) in CASES.items():
            for i in range(len(variants)):
                args, kwargs = _make(name, i, (3, 4), dtype)
                kernels.REGISTRY[name][1](*args, **kwargs)
        kernels._gemm_kernel(np.ones((3, 4), dtype), np.ones((4, 5), dtype))
    return recorder


def test_gpuad_builds_exactly_the_listed_kernels_as_listed(monkeypatch):
    entries = {e["name"]: e for e in SOURCES}
    raw = {}  # what RawModule gets for each raw entry and dtype -> (entry, dtype)
    for e in SOURCES:
        for d in e["dtypes"] if e["kind"] == "raw" else ():
            functions = [f.replace("CTYPE", _CTYPE[d]) for f in e["functions"]]
            raw[e["code"].replace("CTYPE", _CTYPE[d]), tuple(e["options"]),
                tuple(f for f in functions if "<" in f)] = (e, d, functions)
    used = set()
    for kind, got, calls in _run_every_kernel(monkeypatch).built:
        if kind == "raw":
            key = (got["code"], tuple(got["options"]), got["name_expressions"])
            assert key in raw, f"a raw module not in kernels.cuda_sources():\n{got['code'][:300]}"
            entry, dtype, functions = raw[key]
            assert set(calls) <= set(functions), f"{entry['name']}: kernels {calls} not listed"
            used.add((entry["name"], dtype))
            continue
        entry = entries.get(got["name"])
        assert entry is not None, f"elementwise kernel {got['name']} is not in cuda_sources()"
        assert {k: entry[k] for k in got} == got, f"{got['name']} built unlike its listing"
        params = [p.split()[-1] for p in entry["in_params"].split(",")]
        for args in calls:
            scalars = tuple(p for p, a in zip(params, args) if not isinstance(a, np.ndarray))
            assert scalars == tuple(entry["scalars"]), (
                f"{got['name']} called with host scalars {scalars}, listed {entry['scalars']}")
            used.add((got["name"], next(a for a in args if isinstance(a, np.ndarray)).dtype.name))
    listed = {(e["name"], d) for e in SOURCES for d in e["dtypes"]}
    assert used == listed, f"listed but never built: {sorted(listed - used)}"


def test_only_the_source_list_constructs_cuda_kernels():
    """A kernel built anywhere else in gpuad would bypass cuda_sources() (and this test file)."""
    constructor = re.compile(r"\b(ElementwiseKernel|ReductionKernel|RawKernel|RawModule)\(|"
                             r"cupy\.fuse\b|cupyx\.jit\b")
    home = Path(sys.modules[kernels.cuda_sources.__module__].__file__)
    found = {}
    for path in Path(gpuad.__file__).parent.rglob("*.py"):
        for match in constructor.finditer(path.read_text(encoding="utf-8")):
            found.setdefault((path, match.group(0)), 0)
            found[path, match.group(0)] += 1
    elsewhere = sorted(str(p) for p, _ in found if p != home)
    assert not elsewhere, f"CUDA kernels built outside {home.name}: {elsewhere}"
    assert all(n == 1 for n in found.values()), (
        f"{home.name} builds kernels in more than one place: {found}")
