"""Old names that keep working for one release after a rename, each with a DeprecationWarning that
names its replacement: packages call `moved` from their module __getattr__, and a renamed module
leaves a two-line file that calls `module_moved`."""
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
