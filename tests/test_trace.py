"""gpuad.tape.trace (forward and reverse evaluation traces) and gpuad.tape.to_dot (tape as DOT)."""
import dataclasses
import json
import math
import re

import numpy as np
import pytest

import gpuad
from gpuad.tape import AdjointRow, ForwardRow, Term, to_dot, trace


def founding(x1, x2):
    v1 = x1 * x2
    v2 = gpuad.log(x1)
    return v1 + x2 - v2


def rows_by_name(t):
    return {r.name: r for r in t.forward}, {r.name: r for r in t.reverse}


def test_founding_example_forward_rows():
    t = trace(founding, 3.0, -4.0)
    assert [r.name for r in t.forward] == ["v-1", "v0", "v1", "v2", "v3", "v4"]
    assert [r.index for r in t.forward] == [-1, 0, 1, 2, 3, 4]
    assert [r.op for r in t.forward] == ["input", "input", "mul", "log", "add", "sub"]
    assert [r.parents for r in t.forward] == [(), (), ("v-1", "v0"), ("v-1",), ("v1", "v0"),
                                              ("v3", "v2")]
    assert [r.expr for r in t.forward] == ["x1", "x2", "mul(v-1, v0)", "log(v-1)", "add(v1, v0)",
                                           "sub(v3, v2)"]
    values = [r.value for r in t.forward]
    np.testing.assert_allclose(values, [3, -4, -12, math.log(3), -16, -16 - math.log(3)])
    assert t.output == "v4" and t.value == pytest.approx(-17.0986, abs=1e-4)
    assert all(r.dtype == "float64" and r.shape == () for r in t.forward)


def test_founding_example_adjoints_and_terms():
    t = trace(founding, 3.0, -4.0)
    assert [r.name for r in t.reverse] == ["v4", "v3", "v2", "v1", "v0", "v-1"]
    _, rev = rows_by_name(t)
    expected = {"v4": 1, "v3": 1, "v2": -1, "v1": 1, "v0": 4, "v-1": -13 / 3}
    for name, value in expected.items():
        assert rev[name].value == pytest.approx(value), name
    assert rev["v4"].seed == 1 and rev["v4"].terms == []
    assert [(u.consumer, u.arg, u.partial) for u in rev["v3"].terms] == [("v4", 0, 1)]
    assert [(u.consumer, u.arg, u.partial) for u in rev["v2"].terms] == [("v4", 1, -1)]
    assert [(u.consumer, u.arg, u.partial) for u in rev["v1"].terms] == [("v3", 0, 1)]
    # v̄0 = v̄3·1 + v̄1·v-1 ; v̄-1 = v̄2/v-1 + v̄1·v0: newest consumer first
    assert [(u.consumer, u.partial) for u in rev["v0"].terms] == [("v3", 1), ("v1", 3)]
    (c2, c1) = rev["v-1"].terms
    assert (c2.consumer, c2.adjoint, c2.partial, c2.value) == ("v2", -1, pytest.approx(1 / 3),
                                                             pytest.approx(-1 / 3))
    assert (c1.consumer, c1.adjoint, c1.partial, c1.value) == ("v1", 1, -4, -4)
    assert t.grads == (pytest.approx(-13 / 3), pytest.approx(4))
    for row in t.reverse:  # every adjoint is the sum of its terms
        if row.seed is None:
            assert row.value == pytest.approx(sum(u.value for u in row.terms))
            assert all(u.value == pytest.approx(u.adjoint * u.partial) for u in row.terms)


def test_reused_input_and_constants():
    c = gpuad.tensor([0.5], dtype=gpuad.float64)

    def f(x):
        return (x * x + x * 2.0 - c).sum()
    t = trace(f, [1.5])
    fwd, rev = rows_by_name(t)
    assert [r.expr for r in t.forward[1:]] == ["mul(v0, v0)", "mul(v0, 2.0)", "add(v1, v2)",
                                               "sub(v3, [0.5])", "sum(v4)"]
    assert fwd["v2"].parents == ("v0", "2.0")
    # x·x gives two terms (one per argument), x·2.0 a third
    assert [(u.consumer, u.arg) for u in rev["v0"].terms] == [("v2", 0), ("v1", 0), ("v1", 1)]
    np.testing.assert_allclose(rev["v0"].value, [2 * 1.5 + 2.0])
    # one-element tensors are still scalars for partials
    assert [u.partial for u in rev["v0"].terms] == pytest.approx([2.0, 1.5, 1.5])


def test_grad_matches_engine_on_a_small_tensor_function(device):
    x0 = np.array([[0.3, -1.2, 0.7], [1.1, 0.2, -0.4]])
    w0 = np.array([[0.5], [-0.25], [2.0]])

    def f(x, w):
        h = gpuad.tanh(x @ w)               # (2, 1)
        return (h * x[:, 0:1] + gpuad.exp(-x * x) * 0.5).sum() + (w * w).mean()

    x = gpuad.tensor(x0, device=device)
    w = gpuad.tensor(w0, device=device)
    t = trace(f, x, w)
    assert x.grad is None and not x.requires_grad  # the caller's tensors are left alone
    xl, wl = x.detach().requires_grad_(), w.detach().requires_grad_()
    y = f(xl, wl)
    gx, gw = gpuad.grad(y, (xl, wl))
    assert t.value == pytest.approx(y.item())
    np.testing.assert_allclose(t.grads[0], gpuad.backend.asnumpy(gx.array), rtol=1e-12)
    np.testing.assert_allclose(t.grads[1], gpuad.backend.asnumpy(gw.array), rtol=1e-12)
    assert t.labels == ["x", "w"] and t.forward[0].name == "v-1" and t.forward[0].shape == (2, 3)
    for row in t.reverse:
        if row.seed is None and row.terms:
            np.testing.assert_allclose(row.value, sum(u.value for u in row.terms), rtol=1e-12)
    # tensors: the vjp contribution is shown instead of a partial
    x_row = next(r for r in t.reverse if r.name == "v-1")
    assert all(u.partial is None and u.value.shape == (2, 3) for u in x_row.terms)


def test_rows_hold_plain_python_and_numpy_values(device):
    t = trace(lambda x, s: (gpuad.sin(x) * s).sum(), gpuad.tensor([0.1, 0.2], device=device), 2.0)
    for row in t.forward + t.reverse:
        assert isinstance(row, (ForwardRow, AdjointRow))
        assert type(row.value) in (float, int, bool, np.ndarray), (row.name, type(row.value))
    for row in t.reverse:
        for u in row.terms:
            assert isinstance(u, Term)
            for v in (u.adjoint, u.value, u.partial):
                assert v is None or type(v) in (float, int, np.ndarray)
    json.dumps([dataclasses.asdict(r) for r in t.forward + t.reverse],
               default=lambda a: a.tolist())  # serialisable once arrays become lists


def test_table_renders_both_sweeps():
    text = str(trace(founding, 3.0, -4.0))
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == "forward (primal) trace"
    assert "  v-1 = x1           = 3" in lines
    assert "  v1  = mul(v-1, v0) = -12" in lines
    assert "  v2  = log(v-1)     = 1.09861" in lines
    assert "  v4  = sub(v3, v2)  = -17.0986" in lines
    assert "reverse (adjoint) trace" in lines
    assert any(re.fullmatch(r"  v̄0  = v̄3·∂v3/∂v0 \+ v̄1·∂v1/∂v0 += 1·1 \+ 1·3 += 4", line)
               for line in lines)
    assert any(l.startswith("  v̄-1 = v̄2·∂v2/∂v-1 + v̄1·∂v1/∂v-1") and
               l.endswith("= (-1)·0.333333 + 1·(-4) = -4.33333") for l in lines)
    assert lines[-1] == "y = -17.0986;  x̄1 = v̄-1 = -4.33333, x̄2 = v̄0 = 4"
    ascii_text = trace(founding, 3.0, -4.0).table(ascii=True)
    assert ascii_text.isascii() and "v0bar  = v3bar*dv3/dv0 + v1bar*dv1/dv0" in ascii_text


def test_columns_line_up_despite_combining_bars():
    text = str(trace(founding, 3.0, -4.0))
    reverse = text.split("reverse (adjoint) trace\n")[1].split("\n\n")[0].splitlines()
    visible = [line.replace("\u0304", "") for line in reverse]
    assert len({line.index(" = ") for line in visible}) == 1
    assert len({line.rindex(" = ") for line in visible}) == 1


def test_passive_values_are_constants_and_nothing_is_written():
    w = gpuad.tensor(0.5, dtype=gpuad.float64, requires_grad=True)  # a parameter, not an input
    t = trace(lambda x: x * gpuad.exp(w), 2.0)
    assert [r.expr for r in t.forward] == ["x", "mul(v0, 1.64872)"]
    assert t.grads == (pytest.approx(math.exp(0.5)),)
    assert w.grad is None


def test_identity_unused_input_and_non_scalar_output():
    t = trace(lambda x: x, 2.0)
    assert t.output == "v0" and t.grads == (1.0,)
    t = trace(lambda a, b: a * 3.0, 1.0, 5.0)
    assert t.grads == (3.0, 0.0)
    assert next(r for r in t.reverse if r.name == "v0").terms == []
    with pytest.raises(RuntimeError, match="grad_output"):
        trace(lambda x: x * 2.0, [1.0, 2.0])
    t = trace(lambda x: x * 2.0, [1.0, 2.0], grad_output=[1.0, -1.0])
    np.testing.assert_array_equal(t.grads[0], [2.0, -2.0])
    with pytest.raises(RuntimeError, match="grad_output has shape"):
        trace(lambda x: x * 2.0, [1.0, 2.0], grad_output=[1.0])


def test_bad_functions_say_what_is_wrong():
    with pytest.raises(TypeError, match="must return a gpuad.Tensor"):
        trace(lambda x: 1.0, 2.0)
    with pytest.raises(ValueError, match="does not depend on its inputs"):
        trace(lambda x: gpuad.tensor(1.0), 2.0)


# ---- to_dot --------------------------------------------------------------------------------------
def small_graph():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    c = gpuad.tensor([3.0, 4.0])
    return x, c, ((x * c + 2.0).sum(dim=0) + x[1:].sum())


def test_to_dot_is_dot_with_one_node_per_tensor():
    x, _, y = small_graph()
    dot = to_dot(y, names={"x": x})
    assert dot.startswith("digraph gpuad {") and dot.rstrip().endswith("}")
    tensors = re.findall(r"^  (t\d+) \[label=\"([^\"]*)\"", dot, re.MULTILINE)
    ops = re.findall(r"^  (op\d+) \[label=\"([^\"]*)\"", dot, re.MULTILINE)
    edges = re.findall(r"^  (\w+) -> (\w+);$", dot, re.MULTILINE)
    # x, c, x*c, +2, sum, x[1:], sum, + : 8 tensors and 6 ops
    assert len(tensors) == 8 and len(ops) == 6
    assert [label for _, label in ops] == ["mul", "add(·, 2.0)", "sum(·, dim=0)",
                                           "getitem(·, index=1:)", "sum", "add"]
    assert tensors[0][1] == "x\\n(2,) float32\\nrequires_grad"
    assert tensors[1][1] == "(2,) float32\\nconstant"
    assert tensors[-1][1] == "output\\n() float32"
    ids = {t for t, _ in tensors} | {o for o, _ in ops}
    for a, b in edges:  # tensor -> op or op -> tensor, and only known ids
        assert a in ids and b in ids and (a.startswith("t") != b.startswith("t"))
    assert ("t0", "op0") in edges and ("t1", "op0") in edges and ("t0", "op3") in edges
    assert sum(1 for a, b in edges if a.startswith("op")) == len(ops)  # one output per op
    assert dot.count("{") == dot.count("}") == 1


def test_to_dot_is_stable_across_calls_and_builds():
    _, _, y = small_graph()
    first = to_dot(y)
    assert to_dot(y) == first
    _, _, again = small_graph()  # a new tape: different Node.seq numbers, same text
    assert to_dot(again) == first


def test_to_dot_leaf_and_freed_graph():
    x = gpuad.tensor(1.0, requires_grad=True)
    assert "requires_grad" in to_dot(x) and "->" not in to_dot(x)
    y = x * x
    y.backward()
    assert "freed by backward" in to_dot(y)
