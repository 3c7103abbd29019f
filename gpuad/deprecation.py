"""Names gpuad does not have: old ones that keep working for one release after a rename, each with
a DeprecationWarning that names its replacement (packages call `moved` from their module
__getattr__, and a renamed module leaves a two-line file that calls `module_moved`), and PyTorch
names gpuad lacks, which raise an AttributeError that says so (`missing_name`)."""
import importlib
import sys
import warnings


def moved(old, new, target):
    """Warn that `old` is now `new` and return what `new` names: `target` is a "module" or a
    "module:attribute" path."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=3)
    module, _, attribute = target.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


def module_moved(old, new):
    """Make the module `old` an alias of module `new` (so `from old import x` still works)."""
    sys.modules[old] = moved(old, new, new)


# PyTorch names whose gpuad spelling differs, or that need a word of advice.
_INSTEAD = {
    "gpuad.Size": "shapes are plain tuples (t.shape)",
    "gpuad.set_default_device": "pass device= to creation functions, or move with .to(device)",
    "gpuad.cuda.max_memory_allocated": "CuPy's pool keeps no peak: sample "
                                       "gpuad.cuda.memory_allocated() where it matters",
    "gpuad.cuda.reset_peak_memory_stats": "CuPy's pool keeps no peak: sample "
                                          "gpuad.cuda.memory_allocated() where it matters",
    "gpuad.cuda.amp": "use gpuad.autocast('cuda') and gpuad.amp.GradScaler (torch.cuda.amp is "
                      "deprecated in torch too)",
    "gpuad.cuda.Stream": "gpuad queues all work on CuPy's current stream",
    "gpuad.cuda.stream": "gpuad queues all work on CuPy's current stream",
    "gpuad.cuda.current_stream": "gpuad queues all work on CuPy's current stream",
    "gpuad.jit": "not available: gpuad runs eagerly",
    "gpuad.fx": "not available: gpuad.tape.trace and gpuad.tape.to_dot read the recorded graph",
}


def missing_name(where, name):
    """The AttributeError for `where.name`: gpuad does not have this PyTorch name (never a silent
    fall-through to something else)."""
    full = f"{where}.{name}"
    torch_name = "torch" + full[len("gpuad"):] if full.startswith("gpuad") else full
    advice = _INSTEAD.get(full)
    message = f"{where} has no attribute {name!r}"
    if not name.startswith("_"):
        message += (f": gpuad does not have {torch_name}" + (f" ({advice})" if advice else
                    "; the README's table of PyTorch names lists what exists"))
    return AttributeError(message)
