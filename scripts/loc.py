"""Lines of code per file, without blank lines, comments and docstrings (like tinygrad's sz.py).

    python scripts/loc.py [paths...]      (default: gpuad/, plus the engine's subtotal)

Printed for review, never a CI gate: the engine should stay readable in an afternoon.
"""
import ast
import io
import pathlib
import re
import sys
import tokenize

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gpuad"
# the engine proper: the backend seam, tensor, autograd and the op decorator (ops/__init__)
ENGINE = ("backend/__init__.py", "tensor", "autograd", "ops/__init__.py")
# Tensor's API table: `def exp(self): return ops.exp(self)` and `shape = property(lambda ...)`
DELEGATION = re.compile(r"^    (?:def \w+\(.*\): return |\w+ = property\(lambda )", re.M)


def code_lines(source):
    """Line numbers holding code: not blank, not only a comment, not part of a docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - docstrings


def engine_files():
    """The engine's files in this checkout's gpuad/."""
    files = []
    for name in ENGINE:
        path = PACKAGE / name
        files += ([path] if path.suffix == ".py" else
                  [path.with_suffix(".py")] if path.with_suffix(".py").is_file() else
                  sorted(path.rglob("*.py")))
    return files


def _name(path):
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main(argv=None):
    args = argv if argv is not None else sys.argv[1:]
    paths = [pathlib.Path(p) for p in args] or [PACKAGE]
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    counts = {_name(f): len(code_lines(f.read_text())) for f in files}
    for name, n in counts.items():
        print(f"{n:6d}  {name}")
    print(f"{sum(counts.values()):6d}  total")
    if not args:
        engine = sum(len(code_lines(f.read_text())) for f in engine_files())
        table = len(DELEGATION.findall((PACKAGE / "tensor.py").read_text()))
        print(f"{engine:6d}  engine ({', '.join(ENGINE)})")
        print(f"{engine - table:6d}  engine without the {table} one-line Tensor method delegations")
    return counts


if __name__ == "__main__":
    main()
