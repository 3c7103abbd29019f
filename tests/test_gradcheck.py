"""gpuad.gradcheck itself: it must catch wrong rules, including ones an all-ones gradient hides."""
import numpy as np
import pytest

import gpuad


def _function(forward, backward):
    return type("UserOp", (gpuad.autograd.Function,), {"forward": staticmethod(forward),
                                                      "backward": staticmethod(backward)})


def test_a_wrong_rule_is_reported_with_input_and_element():
    wrong = _function(lambda ctx, x: x * x, lambda ctx, g: g)  # forgets the factor 2x
    x = gpuad.tensor(np.array([0.5, 1.5, -2.0]), requires_grad=True)
    with pytest.raises(gpuad.GradcheckError, match=r"input 0 \(shape \(3,\)\), element "
                                                   r"\(1,\).*analytic.*numeric"):
        gpuad.gradcheck(wrong.apply, [x])
    assert gpuad.gradcheck(wrong.apply, [x], raise_exception=False) is False


def test_a_missing_transpose_is_caught_even_where_ones_hide_it():
    """W has equal row and column sums, so with ones as the upstream gradient g @ W and g @ W.T
    agree and the bug is invisible; gradcheck's random upstream gradient exposes it."""
    w_np = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [2.0, 3.0, 1.0]])  # not symmetric

    def forward(ctx, x):
        return x @ w_np

    buggy = _function(forward, lambda ctx, g: g @ w_np)  # should be g @ w_np.T
    x = gpuad.tensor(np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]]), requires_grad=True)
    buggy.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)) @ w_np.T)  # ones cannot tell
    with pytest.raises(gpuad.GradcheckError):
        gpuad.gradcheck(buggy.apply, [x])


def test_every_input_is_checked():
    half_wrong = _function(lambda ctx, a, b: a * b, lambda ctx, g: (g, g))  # right only at b=1
    a = gpuad.tensor(np.array([2.0, 3.0]), requires_grad=True)
    b = gpuad.tensor(np.array([1.0, 1.0]), requires_grad=True)
    with pytest.raises(gpuad.GradcheckError, match="input 1"):
        gpuad.gradcheck(half_wrong.apply, [a, b])


def test_large_inputs_are_checked_along_random_directions():
    x = gpuad.tensor(np.linspace(-1, 1, 400).reshape(20, 20), requires_grad=True)
    assert gpuad.gradcheck(lambda t: (t * t).sum(1), [x])
    wrong = _function(lambda ctx, t: t * t, lambda ctx, g: g)
    with pytest.raises(gpuad.GradcheckError, match="random direction"):
        gpuad.gradcheck(wrong.apply, [x])


def test_float32_inputs_are_refused():
    x = gpuad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"input 0 is float32.*float64.*x\.double\(\)"):
        gpuad.gradcheck(gpuad.exp, [x])
