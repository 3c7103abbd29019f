"""The README's quick start must run and train as it says."""
import pathlib
import re
import shlex

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_quick_start_trains(capsys):
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert namespace["loss"].item() < 0.02
    w = np.array(namespace["w"].tolist()).ravel()
    np.testing.assert_allclose(w, [2.0, -1.0, 0.5], atol=0.05)
    assert printed.strip() in section  # the output the README shows is the output it gets


def test_functional_section_prints_what_it_shows(capsys):
    text = README.read_text()
    section = text[text.index("## Functional autodiff"):]
    pattern = r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```"
    code, shown = re.search(pattern, section, re.S).groups()
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)


def test_every_python_block_compiles():
    """Blocks that need a cluster or a model of the reader's (data-parallel, adding an op) cannot
    run here, but they must stay valid Python; the runnable ones are executed above."""
    blocks = _blocks("python")
    assert len(blocks) >= 4
    for code in blocks:
        compile(code, "README.md", "exec")


class _Parsed(Exception):
    pass


def _commands():
    """Each command of the README's bash blocks, as a list of words without comments,
    environment assignments, launchers or line continuations."""
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("  #")[0])
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words = words[1:]
            if words[:1] == ["mpiexec"]:
                words = words[3:]  # mpiexec -n N
            if words:
                yield words


def test_bash_blocks_name_real_scripts_flags_and_extras(monkeypatch):
    import argparse

    import tomllib
    from test_scripts import load_script

    extras = tomllib.loads((README.parent / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        parse(parser, args, namespace)  # an unknown flag exits here (SystemExit: the test fails)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    seen = set()
    for words in _commands():
        if words[:3] == ["pip", "install", "-e"]:
            extra = re.fullmatch(r"\.\[(\w+)\]", words[3]).group(1)
            assert extra in extras, f"README installs the extra {extra!r}, pyproject lacks it"
        elif words[:3] == ["python", "-m", "pytest"]:
            continue
        elif words[0] == "python" and words[1].startswith("scripts/"):
            name = pathlib.Path(words[1]).stem
            with pytest.raises(_Parsed):
                load_script(name).main(words[2:])
            seen.add(name)
        else:
            raise AssertionError(f"README command {' '.join(words)!r}: teach this test to check it")
    assert {"train_mnist", "train_charlm"} <= seen


def test_the_pytorch_names_table_is_current():
    from test_scripts import load_script
    text = README.read_text()
    start = text.index("<!-- torch_names.py -->\n") + len("<!-- torch_names.py -->\n")
    shown = text[start:text.index("\n<!-- /torch_names.py -->")]
    assert shown == load_script("torch_names").table(), (
        "the README's PyTorch names table is stale: paste `python scripts/torch_names.py` into it")
