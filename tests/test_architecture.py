"""The import rules of README's "How it works", checked on the source: the layout read top to
bottom is the data flow, no module imports one above it, and no module uses another's private
names. Fails naming the module, the line and the rule it breaks."""
import ast
import pathlib

import gpuad

PACKAGE = pathlib.Path(gpuad.__file__).parent

# Each stage of the data flow, bottom up; a module may import its own stage and those below.
LAYERS = [
    ("gpuad.backend", "gpuad.deprecation"),            # arrays, devices, CUDA sources
    ("gpuad.autograd",),                               # Node, grad modes, the reverse walk
    ("gpuad.tensor", "gpuad.creation"),                # Tensor and its constructors
    ("gpuad.ops",),                                    # forward + vjp
    ("gpuad.testing", "gpuad.func", "gpuad.tape", "gpuad.amp", "gpuad.serialization",
     "gpuad.cuda", "gpuad.distributed", "gpuad.linalg"),  # tools on the tape and the ops
    ("gpuad.nn", "gpuad.utils", "gpuad.distributions"),  # modules, layers, functional maths
    ("gpuad.optim",),
    ("gpuad.data",),
    ("gpuad.training", "gpuad.preemption", "gpuad.compiler"),
    ("gpuad",),                                        # re-exports only
]
# The one edge upward, resolved late on purpose: Tensor's operators and methods are one-line
# delegations to ops, imported at the bottom of tensor.py and looked up at call time.
ALLOWED_UPWARD = {("gpuad.tensor", "gpuad.ops")}
# Lazy upward references inside functions, each with its reason in the code.
ALLOWED_LAZY_UPWARD = {("gpuad.autograd", "gpuad.ops.function"),  # gpuad.autograd.Function
                       ("gpuad.nn.module", "gpuad.compiler")}  # Module.compile(), torch's


def _modules():
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("gpuad",) + path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _rank(name):
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS in {__file__}"
    return best[0]


def _resolve(module, node):
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if MODULES[module].name == "__init__.py" else parts[:-1]
    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module):
    """(line, imported module, imported names, whether at module level) for gpuad imports."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source.startswith("gpuad"):
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    yield (node.lineno, full if full in MODULES else source,
                           None if full in MODULES else alias.name, id(node) in top)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gpuad"):
                    yield node.lineno, alias.name, None, id(node) in top


def test_every_module_is_in_a_layer():
    for name in MODULES:
        _rank(name)


def test_no_module_imports_one_above_it():
    broken = []
    for module in MODULES:
        for line, target, _, top_level in _imports(module):
            if target not in MODULES or _rank(target) <= _rank(module):
                continue
            allowed = ALLOWED_UPWARD if top_level else ALLOWED_UPWARD | ALLOWED_LAZY_UPWARD
            parent = target.rsplit(".", 1)[0]
            if (module, target) not in allowed and (module, parent) not in allowed:
                broken.append(f"{MODULES[module]}:{line}: {module} imports {target}, a later stage")
    assert not broken, "\n".join(broken)


def test_no_module_uses_another_modules_private_names():
    ops_names = set(gpuad.ops.REGISTRY)  # "_linear" is an op's name, not a private helper
    broken = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for line, target, name, _ in _imports(module):
            if name is None:
                continue
            if name.startswith("_") and not name.startswith("__") and target != module:
                broken.append(f"{path}:{line}: imports {target}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and aliases[node.value.id] != module
                    and node.attr not in ops_names):
                broken.append(f"{path}:{node.lineno}: uses {aliases[node.value.id]}.{node.attr}")
    assert not broken, "\n".join(broken)


def test_only_the_backend_imports_cupy():
    broken = [f"{path}" for name, path in MODULES.items()
              if not name.startswith("gpuad.backend")
              and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "cupy" in ast.unparse(n)
                      for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert not broken, f"modules outside gpuad.backend import cupy: {broken}"
