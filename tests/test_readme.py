"""The README's quick start must run and train as it says."""
import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_quick_start_trains(capsys):
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert namespace["loss"].item() < 0.02
    np.testing.assert_allclose(np.array(namespace["w"].tolist()).ravel(), [2.0, -1.0, 0.5], atol=0.05)
    assert printed.strip() in section  # the output the README shows is the output it gets


def test_functional_section_prints_what_it_shows(capsys):
    text = README.read_text()
    section = text[text.index("## Functional autodiff"):]
    code, shown = re.search(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", section, re.S).groups()
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown
